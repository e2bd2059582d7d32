"""The domain and the application: centre tree, users, auth and scopes, cameras as the hub
sees them, the HTTP API, the CLI and the web console (`hub/web/`).

May import: everything (`config`, `streams`, `signaling`).
"""
