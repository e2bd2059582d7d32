"""Scope rules (hub.core.scopes) as tables: every role against every relation between its
centre and the centre it acts on, for calls, roll calls and broadcast/notice targets.

The tree: county C → townships T, T2 → villages V, V2 (under T) and V3 (under T2), and a
second county OC → OT → OV that nobody of the first county may reach.
"""

from __future__ import annotations

from typing import Any

import pytest

from config.schema import CentreConfig, Role
from hub.core.auth import Principal
from hub.core.centres import CentreTree, township_of
from hub.core.errors import Forbidden, Invalid, NotFound
from hub.core.scopes import (
    call_targets,
    check_sender,
    may_call,
    rollcall_targets,
    targets,
)

C, T, T2 = "410922", "410922100", "410922101"
V, V2, V3 = "410922100201", "410922100202", "410922101201"
OC, OT, OV = "410923", "410923100", "410923100201"
UNKNOWN = "410922100299"

TREE = CentreTree(
    [
        CentreConfig(code=code, name=name)
        for code, name in [
            (C, "清丰县"),
            (T, "城关镇"),
            (T2, "马庄桥镇"),
            (V, "东关村"),
            (V2, "西关村"),
            (V3, "南街村"),
            (OC, "南乐县"),
            (OT, "城关镇"),
            (OV, "北街村"),
        ]
    ]
)

DISPATCH = (Role.ADMIN, Role.DISPATCHER)
STAFF = (Role.RECEPTIONIST, Role.MEDIATOR, Role.OPERATOR, Role.TERMINAL)
ALL_ROLES = (*DISPATCH, *STAFF, Role.PETITIONER)

# (where the principal sits, relation, the centre acted on)
RELATIONS = [
    (C, "own", C),
    (C, "child", T),
    (C, "grandchild", V),
    (C, "other county", OC),
    (C, "other county village", OV),
    (T, "own", T),
    (T, "child", V),
    (T, "parent", C),
    (T, "sibling", T2),
    (T, "sibling's child", V3),
    (T, "other county", OC),
    (V, "own", V),
    (V, "parent", T),
    (V, "grandparent", C),
    (V, "sibling", V2),
    (V, "cousin", V3),
    (V, "other county", OV),
]

# may_call, by relation: (dispatchers and admins, every other staff role); petitioners: never
MAY_CALL = {
    "own": (True, False),
    "child": (True, False),
    "grandchild": (True, False),
    "parent": (True, True),
    "grandparent": (True, True),
    "sibling": (False, False),
    "sibling's child": (False, False),
    "cousin": (False, False),
    "other county": (False, False),
    "other county village": (False, False),
}
# rollcall_targets (dispatchers and admins only; staff and petitioners are always refused)
MAY_ROLLCALL = {
    "own": True,
    "child": True,
    "grandchild": True,
    "parent": False,
    "grandparent": False,
    "sibling": False,
    "sibling's child": False,
    "cousin": False,
    "other county": False,
    "other county village": False,
}


def who(role: Role, centre: str, user: str = "someone") -> Principal:
    return Principal(user, role, centre)


def _expected_call(role: Role, relation: str) -> bool:
    if role is Role.PETITIONER:
        return False
    dispatch, staff = MAY_CALL[relation]
    return dispatch if role in DISPATCH else staff


CELLS = [
    pytest.param(role, at, relation, code, id=f"{role}@{at}-{relation}")
    for role in ALL_ROLES
    for at, relation, code in RELATIONS
]


@pytest.mark.parametrize(("role", "at", "relation", "code"), CELLS)
def test_may_call_table(role: Role, at: str, relation: str, code: str) -> None:
    assert may_call(who(role, at), TREE, code) is _expected_call(role, relation)


@pytest.mark.parametrize(("role", "at", "relation", "code"), CELLS)
def test_call_targets_table(role: Role, at: str, relation: str, code: str) -> None:
    p = who(role, at)
    if _expected_call(role, relation):
        got = call_targets(p, TREE, [code])
        assert [c.code for c in got] == [code]
        assert got[0] is TREE.get(code)
    else:
        with pytest.raises(Forbidden) as err:
            call_targets(p, TREE, [code])
        if role is not Role.PETITIONER:
            assert code in err.value.message  # names the refused centre


@pytest.mark.parametrize(("role", "at", "relation", "code"), CELLS)
def test_rollcall_targets_table(role: Role, at: str, relation: str, code: str) -> None:
    p = who(role, at)
    if role in DISPATCH and MAY_ROLLCALL[relation]:
        assert [c.code for c in rollcall_targets(p, TREE, [code])] == [code]
    else:
        with pytest.raises(Forbidden) as err:
            rollcall_targets(p, TREE, [code])
        if role in DISPATCH:
            assert code in err.value.message
        else:
            assert str(role) in err.value.message


@pytest.mark.parametrize("role", ALL_ROLES)
@pytest.mark.parametrize("at", [C, T, V, OC, OT, OV])
def test_check_sender_table(role: Role, at: str) -> None:
    allowed = role in DISPATCH and len(at) in (6, 9)  # county or township centre
    if allowed:
        check_sender(who(role, at), TREE, "broadcasts")  # no refusal
    else:
        with pytest.raises(Forbidden) as err:
            check_sender(who(role, at), TREE, "broadcasts")
        assert "broadcasts" in err.value.message


def test_check_sender_refuses_a_centre_not_in_the_tree() -> None:
    with pytest.raises(Forbidden):
        check_sender(who(Role.ADMIN, "410999"), TREE, "notices")


# -- call_targets and rollcall_targets: lists ------------------------------------------------
def test_call_targets_keeps_order_and_drops_duplicates() -> None:
    p = who(Role.DISPATCHER, C)
    got = call_targets(p, TREE, [V2, T, V2, V, T])
    assert [c.code for c in got] == [V2, T, V]


def test_call_targets_empty_list_is_fine_except_for_a_petitioner() -> None:
    for role in (*DISPATCH, *STAFF):
        assert call_targets(who(role, V), TREE, []) == []
    with pytest.raises(Forbidden, match="petitioner"):
        call_targets(who(Role.PETITIONER, V), TREE, [])


def test_call_targets_unknown_centre_is_not_found_even_after_a_forbidden_one() -> None:
    # every code is looked up first: the unknown one wins over the refused sibling
    with pytest.raises(NotFound, match=UNKNOWN):
        call_targets(who(Role.TERMINAL, V), TREE, [V2, UNKNOWN])


def test_call_targets_one_refused_centre_refuses_the_whole_list() -> None:
    with pytest.raises(Forbidden, match=V2) as err:
        call_targets(who(Role.TERMINAL, V), TREE, [T, C, V2])
    # a staff member is told its own chain
    assert T in err.value.message and C in err.value.message


def test_call_targets_dispatcher_refusal_names_the_rule() -> None:
    with pytest.raises(Forbidden, match="at or below 410922100"):
        call_targets(who(Role.DISPATCHER, T), TREE, [T2])


def test_call_targets_county_staff_has_no_chain_to_call() -> None:
    with pytest.raises(Forbidden, match=r"\(none\)"):
        call_targets(who(Role.OPERATOR, C), TREE, [T])


def test_rollcall_targets_role_check_comes_before_the_list() -> None:
    for role in (*STAFF, Role.PETITIONER):
        with pytest.raises(Forbidden, match="only dispatchers and admins"):
            rollcall_targets(who(role, C), TREE, [])
    assert rollcall_targets(who(Role.DISPATCHER, T), TREE, []) == []


def test_rollcall_targets_dedup_unknown_and_partial_scope() -> None:
    p = who(Role.DISPATCHER, T)
    assert [c.code for c in rollcall_targets(p, TREE, [V, V2, V])] == [V, V2]
    with pytest.raises(NotFound):
        rollcall_targets(p, TREE, [V, UNKNOWN])
    with pytest.raises(Forbidden, match=V3):
        rollcall_targets(p, TREE, [V, V3])


# -- targets: the list form --------------------------------------------------------------
TARGETS_OK: list[tuple[str, str, dict[str, Any], list[str]]] = [
    ("one village", T, {"centres": [V]}, [V]),
    ("duplicates dropped, order kept", T, {"centres": [V2, V, V2]}, [V2, V]),
    ("own centre dropped", T, {"centres": [T, V]}, [V]),
    ("own centre alone stays", T, {"centres": [T]}, [T]),
    ("list narrowed by level", C, {"centres": [T, V, T2], "level": "township"}, [T, T2]),
    ("subtree of own township", T, {"subtree": T}, [V, V2]),
    ("subtree, villages", T, {"subtree": T, "level": "village"}, [V, V2]),
    ("subtree, own level only", T, {"subtree": T, "level": "township"}, [T]),
    ("county subtree", C, {"subtree": C}, [T, V, V2, T2, V3]),
    ("county subtree, townships", C, {"subtree": C, "level": "township"}, [T, T2]),
    ("county subtree, villages", C, {"subtree": C, "level": "village"}, [V, V2, V3]),
    ("county subtree of a township", C, {"subtree": T2}, [T2, V3]),
    ("county, own level", C, {"subtree": C, "level": "county"}, [C]),
    ("a village subtree", C, {"subtree": V}, [V]),
    ("explicit null level", T, {"subtree": T, "level": None}, [V, V2]),
]


@pytest.mark.parametrize(
    ("at", "body", "expected"), [pytest.param(*case[1:], id=case[0]) for case in TARGETS_OK]
)
def test_targets_resolves(at: str, body: dict[str, Any], expected: list[str]) -> None:
    assert targets(who(Role.DISPATCHER, at), TREE, body) == expected


MALFORMED: list[tuple[str, dict[str, Any]]] = [
    ("neither", {}),
    ("both null", {"centres": None, "subtree": None}),
    ("both", {"centres": [V], "subtree": T}),
    ("centres a string", {"centres": V}),
    ("centres empty", {"centres": []}),
    ("centres a dict", {"centres": {V: 1}}),
    ("centres of numbers", {"centres": [410922100201]}),
    ("centres mixed", {"centres": [V, None]}),
    ("subtree a number", {"subtree": 410922100}),
    ("subtree a list", {"subtree": [T]}),
    ("unknown level", {"subtree": T, "level": "city"}),
    ("level a number", {"subtree": T, "level": 3}),
    ("level upper case", {"subtree": T, "level": "Village"}),
    ("no centre at that level", {"subtree": V, "level": "township"}),
    ("list empty after level", {"centres": [V], "level": "township"}),
    ("more codes than centres", {"centres": [f"41092210{i:04d}" for i in range(len(TREE) + 1)]}),
]


@pytest.mark.parametrize("body", [pytest.param(b, id=name) for name, b in MALFORMED])
def test_targets_malformed_body_is_invalid(body: dict[str, Any]) -> None:
    with pytest.raises(Invalid):
        targets(who(Role.DISPATCHER, T), TREE, body)


@pytest.mark.parametrize("level", [["village"], {"v": 1}], ids=["list", "object"])
def test_targets_unhashable_level_is_invalid(level: object) -> None:
    with pytest.raises(Invalid):
        targets(who(Role.DISPATCHER, T), TREE, {"subtree": T, "level": level})


@pytest.mark.parametrize(
    "body",
    [{"centres": [UNKNOWN]}, {"centres": [V, UNKNOWN]}, {"subtree": "410999"}],
    ids=["unknown", "one unknown", "unknown subtree"],
)
def test_targets_unknown_centre_is_not_found(body: dict[str, Any]) -> None:
    with pytest.raises(NotFound):
        targets(who(Role.DISPATCHER, T), TREE, body)


@pytest.mark.parametrize(
    ("at", "body", "refused"),
    [
        (T, {"centres": [T2]}, T2),
        (T, {"centres": [V, V3]}, V3),
        (T, {"centres": [C]}, C),
        (T, {"subtree": C}, C),
        (T, {"subtree": T2, "level": "village"}, T2),
        (C, {"centres": [OC]}, OC),
        (C, {"subtree": OT}, OT),
        (V, {"centres": [T]}, T),
    ],
)
def test_targets_outside_scope_is_forbidden(at: str, body: dict[str, Any], refused: str) -> None:
    with pytest.raises(Forbidden, match=refused):
        targets(who(Role.DISPATCHER, at), TREE, body)


def test_targets_does_not_check_the_role_check_sender_does() -> None:
    terminal = who(Role.TERMINAL, T)
    assert targets(terminal, TREE, {"centres": [V]}) == [V]
    with pytest.raises(Forbidden):
        check_sender(terminal, TREE, "notices")


# -- township_of (hub.core.centres: the one rule of centre codes) ---------------------------
@pytest.mark.parametrize(
    ("code", "township"),
    [(V, T), (V2, T), (V3, T2), (T, T), (T2, T2), (C, C), (OV, OT), (OC, OC)],
)
def test_township_of(code: str, township: str) -> None:
    assert township_of(code) == township
