"""`Hook` and its `Connection`: order, results, failing listeners, disconnecting."""

from __future__ import annotations

import logging

import pytest

from streams.hooks import Connection, Hook


def test_listeners_run_in_connection_order_with_the_arguments() -> None:
    calls: list[tuple[str, int, str]] = []
    hook: Hook[[int, str]] = Hook("x")
    hook.connect(lambda n, s: calls.append(("a", n, s)))
    hook.connect(lambda n, s: calls.append(("b", n, s)))
    hook.connect(lambda n, s: calls.append(("c", n, s)))
    hook.emit(1, "one")
    hook.emit(2, "two")
    assert calls == [
        ("a", 1, "one"),
        ("b", 1, "one"),
        ("c", 1, "one"),
        ("a", 2, "two"),
        ("b", 2, "two"),
        ("c", 2, "two"),
    ]


def test_emit_returns_results_in_order() -> None:
    hook: Hook[[int]] = Hook()
    hook.connect(lambda n: n + 1)
    hook.connect(lambda n: n * 10)
    hook.connect(lambda n: None)
    assert hook.emit(4) == [5, 40, None]


def test_emit_without_listeners() -> None:
    hook: Hook[[]] = Hook("empty")
    assert hook.emit() == []
    assert len(hook) == 0
    assert bool(hook) is True  # not falsy like an empty list


def test_raising_listener_is_logged_and_the_others_still_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[str] = []
    hook: Hook[[str]] = Hook("room ended")

    def bad(_: str) -> str:
        raise RuntimeError("listener bug")

    def first(_: str) -> str:
        seen.append("first")
        return "r1"

    def third(_: str) -> str:
        seen.append("third")
        return "r3"

    hook.connect(first)
    hook.connect(bad)
    hook.connect(third)
    with caplog.at_level(logging.ERROR, logger="streams.hooks"):
        results = hook.emit("room-1")
    assert seen == ["first", "third"]
    assert results == ["r1", "r3"]  # the failing listener contributes no result
    records = [r for r in caplog.records if r.name == "streams.hooks"]
    assert len(records) == 1
    assert records[0].getMessage() == "a listener of room ended failed"
    assert records[0].exc_info is not None and records[0].exc_info[0] is RuntimeError


def test_unnamed_hook_logs_a_generic_name(caplog: pytest.LogCaptureFixture) -> None:
    hook: Hook[[]] = Hook()

    def bad() -> None:
        raise ValueError("x")

    hook.connect(bad)
    with caplog.at_level(logging.ERROR, logger="streams.hooks"):
        assert hook.emit() == []
    assert [r.getMessage() for r in caplog.records] == ["a listener of a hook failed"]


def test_base_exceptions_are_not_swallowed() -> None:
    hook: Hook[[]] = Hook()

    def stop() -> None:
        raise KeyboardInterrupt

    hook.connect(stop)
    with pytest.raises(KeyboardInterrupt):
        hook.emit()


def test_disconnect_removes_only_that_listener_and_is_idempotent() -> None:
    calls: list[str] = []
    hook: Hook[[]] = Hook()
    hook.connect(lambda: calls.append("a"))
    b = hook.connect(lambda: calls.append("b"))
    hook.connect(lambda: calls.append("c"))
    assert isinstance(b, Connection) and b.connected
    b.disconnect()
    assert not b.connected
    assert len(hook) == 2
    b.disconnect()  # again: nothing more is removed
    assert len(hook) == 2
    hook.emit()
    assert calls == ["a", "c"]


def test_bound_methods_disconnect_correctly() -> None:
    class Listener:
        def __init__(self, name: str, out: list[str]) -> None:
            self.name, self.out = name, out

        def on(self, value: int) -> None:
            self.out.append(f"{self.name}:{value}")

    out: list[str] = []
    first, second = Listener("first", out), Listener("second", out)
    hook: Hook[[int]] = Hook()
    h1 = hook.connect(first.on)  # a fresh bound-method object each attribute access
    hook.connect(second.on)
    hook.emit(1)
    h1.disconnect()
    hook.emit(2)
    assert out == ["first:1", "second:1", "second:2"]
    assert len(hook) == 1


def test_same_listener_connected_twice_runs_twice_until_each_handle_disconnects() -> None:
    calls: list[int] = []

    def f(n: int) -> None:
        calls.append(n)

    hook: Hook[[int]] = Hook()
    one, two = hook.connect(f), hook.connect(f)
    hook.emit(1)
    one.disconnect()
    hook.emit(2)
    two.disconnect()
    hook.emit(3)
    assert calls == [1, 1, 2]
    assert len(hook) == 0


def test_disconnecting_a_later_duplicate_keeps_the_earlier_position() -> None:
    calls: list[str] = []

    def f() -> None:
        calls.append("f")

    def g() -> None:
        calls.append("g")

    hook: Hook[[]] = Hook()
    hook.connect(f)
    hook.connect(g)
    later = hook.connect(f)
    later.disconnect()
    hook.emit()
    assert calls == ["f", "g"]


def test_listener_disconnecting_itself_during_emit() -> None:
    calls: list[str] = []
    hook: Hook[[]] = Hook()
    handles: list[Connection] = []

    def once() -> None:
        calls.append("once")
        handles[0].disconnect()

    handles.append(hook.connect(once))
    hook.connect(lambda: calls.append("after"))
    hook.emit()  # the emit runs over a copy: "after" still runs
    hook.emit()
    assert calls == ["once", "after", "after"]


def test_listener_connected_during_emit_runs_from_the_next_emit() -> None:
    calls: list[str] = []
    hook: Hook[[]] = Hook()

    def adder() -> None:
        calls.append("adder")
        if len(hook) == 1:
            hook.connect(lambda: calls.append("late"))

    hook.connect(adder)
    hook.emit()
    hook.emit()
    assert calls == ["adder", "adder", "late"]
