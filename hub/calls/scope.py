"""Who may call or roll-call which centres: the scope rules shared by calls and roll calls.

- Dispatchers and admins act on their own centre and every centre below it (calls and roll
  calls), and may also call up their own chain (a township dispatcher calls the county).
- Every other person (receptionist, mediator, operator, terminal) may only call *up* its own
  chain: a village terminal calls its township and its county, never a sibling village.
- Only dispatchers and admins run roll calls, and only over centres at or below their own: a
  township dispatcher cannot roll-call another township.
- Petitioners call nobody.
Refusals raise `Forbidden` naming the centre and the rule; an unknown centre `NotFound`.
"""

from __future__ import annotations

from collections.abc import Iterable

from config.schema import Role
from hub.core.auth import Principal
from hub.core.centres import Centre, CentreTree
from hub.core.errors import Forbidden, NotFound

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
