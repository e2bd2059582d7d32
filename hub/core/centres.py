"""Centres: the tree (county → township → village) built from config, and the one home of the
rules of centre codes.

A code is 6 digits (county), 9 (township: the county's code + 3) or 12 (village: the
township's + 3), so a centre is "at or below" another exactly when its code starts with the
other's. Everything that scopes by centre (who sees what, which rows a query returns, where a
village's petitions are queued) goes through `within`, `like`, `township_of` and
`queue_of` here, and request fields use the patterns `CODE` and `UPPER_CODE`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web

from config.schema import CODE_RE, CentreConfig, HubConfig, Level

CODE = CODE_RE.pattern  # any centre: county, township or village
UPPER_CODE = r"^\d{6}(\d{3})?$"  # a county or a township


def within(code: str, scope: str) -> bool:
    """Is centre `code` at or below centre `scope` (itself included)?"""
    return code.startswith(scope)


def like(scope: str) -> str:
    """The SQL `LIKE` pattern of the codes at or below `scope` (codes are digits only)."""
    return scope + "%"


def township_of(code: str) -> str:
    """The township a centre belongs to; a township or the county stands for itself."""
    return code[:9] if len(code) == 12 else code


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
        return [c for code, c in sorted(self._centres.items()) if within(code, scope)]

    def chain(self, code: str) -> list[Centre]:
        """The centre and its ancestors up to the county."""
        out = []
        current: str | None = code
        while current is not None and current in self._centres:
            out.append(self._centres[current])
            current = self._centres[current].parent
        return out

    def queue_of(self, origin: str) -> str:
        """Where a centre's requests wait (a village's petitions): its township's queue when
        that township is configured, else the county's."""
        township = township_of(origin)
        return township if township in self else origin[:6]


CENTRES = web.AppKey("centres", CentreTree)
