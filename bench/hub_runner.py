"""`python -m hub.cli serve` with new viewers made to wait for the next keyframe, for the
instant-start baseline when the config has no `streams.instant_start` switch.

    python -m bench.hub_runner serve -c FILE

Patches `Relay.subscribe` in this process only (replay=False); the hub's code is unchanged.
"""

from __future__ import annotations

import sys
from typing import Any

from hub import cli
from streams.relay import Consumer, Relay

_subscribe = Relay.subscribe


def _no_replay(self: Relay, name: str = "", **kwargs: Any) -> Consumer:
    kwargs["replay"] = False
    return _subscribe(self, name, **kwargs)


if __name__ == "__main__":
    Relay.subscribe = _no_replay  # type: ignore[method-assign]
    sys.exit(cli.main(sys.argv[1:]))
