"""Prometheus text exposition (`GET /metrics`): the families each slice registers.

A slice's `setup` adds a source to `app[METRICS]`: a function called with `family(name,
kind, help, samples)` for every family it exports, reading its own services' public counters.
The order of the sources is the order of the families in the text. A source that fails is
logged and skipped: /metrics answers for the rest of the hub.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

log = logging.getLogger(__name__)

Sample = tuple[str, float]
Family = Callable[[str, str, str, list[Sample]], None]
Source = Callable[[Family], Awaitable[None] | None]


def escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def label(value: str) -> str:
    return f'"{escape(value)}"'


class Metrics:
    def __init__(self) -> None:
        self._sources: list[tuple[str, Source]] = []

    def add(self, name: str, source: Source) -> None:
        self._sources.append((name, source))

    async def render(self) -> str:
        lines: list[str] = []

        def family(name: str, kind: str, help_text: str, samples: list[Sample]) -> None:
            lines.append(f"# HELP {name} {help_text}")
            lines.append(f"# TYPE {name} {kind}")
            for labels, value in samples:
                lines.append(f"{name}{{{labels}}} {value}" if labels else f"{name} {value}")

        for name, source in self._sources:
            try:
                work = source(family)
                if inspect.isawaitable(work):
                    await work
            except Exception:
                log.exception("metrics of %s failed", name)
        return "\n".join(lines) + "\n"


METRICS = web.AppKey("metrics", Metrics)
