"""Who may act on which centres: the scope rules of calls, roll calls, broadcasts and notices.

Calls and roll calls:
- Dispatchers and admins act on their own centre and every centre below it (calls and roll
  calls), and may also call up their own chain (a township dispatcher calls the county).
- Every other person (receptionist, mediator, operator, terminal) may only call *up* its own
  chain: a village terminal calls its township and its county, never a sibling village.
- Only dispatchers and admins run roll calls, and only over centres at or below their own: a
  township dispatcher cannot roll-call another township.
- Petitioners call nobody.

Broadcasts and notices: only dispatchers and admins of a county or township centre address a
subtree. Targets are given as a list of centre codes (each at or below the sender's centre) or
as one `subtree` root, optionally narrowed to one `level` ("village": every village under the
root).

Refusals raise `Forbidden` naming the centre and the rule, `NotFound` for an unknown centre,
`Invalid` for malformed targets. What a person sees (`Principal.can_see`: its centre and
everything below) is the one rule underneath them all.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from config.schema import Level, Role
from hub.core.auth import Principal
from hub.core.centres import Centre, CentreTree
from hub.core.errors import Forbidden, Invalid, NotFound

DISPATCH_ROLES = frozenset({Role.ADMIN, Role.DISPATCHER})


def _known(tree: CentreTree, codes: Iterable[str]) -> list[Centre]:
    out: list[Centre] = []
    seen: set[str] = set()
    for code in codes:
        if code in seen:
            continue
        seen.add(code)
        centre = tree.get(code)
        if centre is None:
            raise NotFound(f"no centre {code!r}")
        out.append(centre)
    return out


def may_call(p: Principal, tree: CentreTree, code: str) -> bool:
    """May `p` ring centre `code` (or a person sitting at it)?"""
    if p.role is Role.PETITIONER:
        return False
    if p.role in DISPATCH_ROLES and p.can_see(code):
        return True
    return code != p.centre and code in {c.code for c in tree.chain(p.centre)}


def call_targets(p: Principal, tree: CentreTree, codes: Iterable[str]) -> list[Centre]:
    """The centres named, if `p` may call every one of them; 403/404 otherwise."""
    if p.role is Role.PETITIONER:
        raise Forbidden("a petitioner link cannot place calls")
    centres = _known(tree, codes)
    for centre in centres:
        if not may_call(p, tree, centre.code):
            if p.role in DISPATCH_ROLES:
                rule = f"a {p.role} calls centres at or below {p.centre} or up its own chain"
            else:
                rule = f"a {p.role} may only call up its own chain ({_chain_text(tree, p)})"
            raise Forbidden(f"you may not call {centre.code} ({centre.name}): {rule}")
    return centres


def rollcall_targets(p: Principal, tree: CentreTree, codes: Iterable[str]) -> list[Centre]:
    """The centres named, if `p` may roll-call every one of them; 403/404 otherwise."""
    if p.role not in DISPATCH_ROLES:
        raise Forbidden(f"only dispatchers and admins run roll calls, not a {p.role}")
    centres = _known(tree, codes)
    for centre in centres:
        if not p.can_see(centre.code):
            raise Forbidden(
                f"you may not roll-call {centre.code} ({centre.name}): "
                f"it is not at or below your centre {p.centre}",
            )
    return centres


def _chain_text(tree: CentreTree, p: Principal) -> str:
    above = [c.code for c in tree.chain(p.centre) if c.code != p.centre]
    return ", ".join(above) or "none"


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
    if level is not None and (not isinstance(level, str) or level not in {str(v) for v in Level}):
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
