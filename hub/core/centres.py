"""The centre tree (county → township → village) built from config."""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web

from config.schema import CentreConfig, HubConfig, Level


@dataclass(frozen=True, slots=True)
class Centre:
    code: str
    name: str
    level: Level
    parent: str | None
    children: tuple[str, ...] = field(default=())

    def to_json(self) -> dict[str, object]:
        return {
            "code": self.code,
            "name": self.name,
            "level": str(self.level),
            "parent": self.parent,
            "children": list(self.children),
        }


class CentreTree:
    def __init__(self, centres: list[CentreConfig]) -> None:
        children: dict[str, list[str]] = {c.code: [] for c in centres}
        for c in centres:
            if c.parent is not None:
                children[c.parent].append(c.code)
        self._centres = {
            c.code: Centre(c.code, c.name, c.level, c.parent, tuple(sorted(children[c.code])))
            for c in centres
        }

    @classmethod
    def from_config(cls, config: HubConfig) -> CentreTree:
        return cls(config.centres)

    def get(self, code: str) -> Centre | None:
        return self._centres.get(code)

    def __contains__(self, code: object) -> bool:
        return code in self._centres

    def __len__(self) -> int:
        return len(self._centres)

    def visible_from(self, scope: str) -> list[Centre]:
        """Centres at or below `scope`, tree order (by code)."""
        return [c for code, c in sorted(self._centres.items()) if code.startswith(scope)]

    def chain(self, code: str) -> list[Centre]:
        """The centre and its ancestors up to the county."""
        out = []
        current: str | None = code
        while current is not None and current in self._centres:
            out.append(self._centres[current])
            current = self._centres[current].parent
        return out


CENTRES = web.AppKey("centres", CentreTree)
