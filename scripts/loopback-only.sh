#!/usr/bin/env bash
# Run a command in a fresh network namespace that has only the loopback interface, so that no
# packet can leave 127.0.0.0/8 (WebRTC stacks pick other interfaces by themselves). Falls back
# to running it directly, with a warning, where namespaces are not available.
set -euo pipefail
if [ "${ZZHUB_NO_NETNS:-}" != "1" ] && command -v unshare >/dev/null && unshare -n true 2>/dev/null; then
  exec unshare -n -- bash -c 'ip link set lo up && exec "$@"' bash "$@"
fi
echo "warning: no network namespace (not root?); tests still only target 127.0.0.1" >&2
exec "$@"
