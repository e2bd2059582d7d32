"""Who may broadcast or send notices to which centres: the target rules of issue 7.

Only dispatchers and admins of a county or township centre address a subtree. Targets are
given as a list of centre codes (each at or below the sender's centre) or as one `subtree`
root, optionally narrowed to one `level` ("village": every village under the root).
Refusals: `Invalid` for malformed input, `NotFound` for an unknown centre, `Forbidden` for scope.
"""

from __future__ import annotations

from typing import Any

from config.schema import Level, Role
from hub.core.auth import Principal
from hub.core.centres import CentreTree
from hub.core.errors import Forbidden, Invalid, NotFound

SENDER_ROLES = frozenset({Role.ADMIN, Role.DISPATCHER})
SENDER_LEVELS = frozenset({Level.COUNTY, Level.TOWNSHIP})


def check_sender(p: Principal, tree: CentreTree, what: str) -> None:
    if p.role not in SENDER_ROLES:
        raise Forbidden(f"only dispatchers and admins start {what}, not a {p.role}")
    centre = tree.get(p.centre)
    if centre is None or centre.level not in SENDER_LEVELS:
        raise Forbidden(f"{what} are started from a county or township centre")


def targets(p: Principal, tree: CentreTree, body: dict[str, Any]) -> list[str]:
    """The target centre codes named by `body` ({centres: [...]} or {subtree, level?})."""
    centres, subtree, level = body.get("centres"), body.get("subtree"), body.get("level")
    if (centres is None) == (subtree is None):
        raise Invalid("give either centres (a list of codes) or subtree (one code)")
    if level is not None and level not in {str(v) for v in Level}:
        raise Invalid("level must be county, township or village")
    if centres is not None:
        if not isinstance(centres, list) or not centres:
            raise Invalid("centres must be a non-empty list of centre codes")
        if not all(isinstance(c, str) for c in centres):
            raise Invalid("centres must be a list of strings")
        codes = list(dict.fromkeys(centres))
        if len(codes) > len(tree):
            raise Invalid("too many centres")
    else:
        if not isinstance(subtree, str):
            raise Invalid("subtree must be a centre code")
        codes = [subtree]
    for code in codes:
        if code not in tree:
            raise NotFound(f"no centre {code!r}")
        if not p.can_see(code):
            raise Forbidden(f"centre {code} is outside your scope (at or below {p.centre})")
    if subtree is not None:
        codes = [c.code for c in tree.visible_from(subtree)]
    if level is not None:
        codes = [c for c in codes if str(tree.get(c).level) == level]  # type: ignore[union-attr]
    codes = [c for c in codes if c != p.centre] or codes  # the sender's own centre is not a target
    if not codes:
        raise Invalid(f"no {level} centre under {subtree}")
    return codes


def township_of(tree: CentreTree, code: str) -> str:
    """The township a centre belongs to (itself for a township; the county for the county)."""
    for centre in tree.chain(code):
        if centre.level is Level.TOWNSHIP:
            return centre.code
    return code
