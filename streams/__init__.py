"""Media plane: camera sources (one module per protocol), Stream supervision and the Relay.

Owns: sources registered by URL scheme, `Stream` (on-demand pull, reconnect with backoff),
`Relay` (GOP cache, bounded queue per consumer), transcoding, snapshots.
May import: `config`, the standard library, PyAV, numpy, OpenCV. Never `hub` or `signaling`.
"""
