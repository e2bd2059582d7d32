"""Repeated wrong passwords slow down, per user name and per address (`LoginThrottle`), and
`POST /api/login` answers 429 with Retry-After while they do."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp.test_utils import TestClient

from hub.core.auth import THROTTLE, LoginThrottle


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_free_failures_then_doubling_waits() -> None:
    clock = Clock()
    t = LoginThrottle(free=3, window=900, max_wait=10, clock=clock)
    for _ in range(3):
        assert t.wait("wang", "10.0.0.1") == 0
        t.failed("wang", "10.0.0.1")
    assert t.wait("wang", "10.0.0.1") == 1.0  # 2^0 after the third
    clock.now += 1.0
    assert t.wait("wang", "10.0.0.1") == 0
    t.failed("wang", "10.0.0.1")
    assert t.wait("wang", "10.0.0.1") == 2.0
    for _ in range(10):
        t.failed("wang", "10.0.0.1")
    assert t.wait("wang", "10.0.0.1") == 10.0  # capped at max_wait
    assert t.failed_total == 14 and t.refused_total == 3


def test_per_user_and_per_address() -> None:
    clock = Clock()
    t = LoginThrottle(free=2, clock=clock)
    t.failed("wang", "10.0.0.1")
    t.failed("li", "10.0.0.1")  # one address guessing two names
    assert t.wait("zhao", "10.0.0.1") > 0  # the address is slowed for every name
    assert t.wait("wang", "10.0.0.2") == 0  # wang failed once only
    t.failed("wang", "10.0.0.2")
    assert t.wait("wang", "10.0.0.3") > 0  # wang from anywhere
    t.succeeded("wang")
    assert t.wait("wang", "10.0.0.3") == 0
    assert t.wait("zhao", "10.0.0.1") > 0  # a success does not clear the guessing address


def test_failures_older_than_the_window_are_forgotten() -> None:
    clock = Clock()
    t = LoginThrottle(free=1, window=60, clock=clock)
    t.failed("wang", "a")
    assert t.wait("wang", "a") > 0
    clock.now += 61
    assert t.wait("wang", "a") == 0
    t.failed("wang", "a")  # counts from one again
    assert t.wait("wang", "a") == 1.0


def test_the_memory_is_bounded() -> None:
    t = LoginThrottle(max_keys=10, clock=Clock())
    for i in range(100):
        t.failed(f"user{i}", f"10.0.{i}.1")
    assert len(t._failures) == 10


async def test_login_answers_429_with_retry_after(
    client: TestClient[Any, Any], auth: Callable[..., dict[str, str]]
) -> None:
    """Found by the outside check: 200 wrong passwords went through in 0.1 s."""
    statuses = []
    for _ in range(8):
        resp = await client.post("/api/login", json={"user": "admin", "password": "wrong"})
        statuses.append(resp.status)
    assert statuses[:5] == [401] * 5 and 429 in statuses[5:]
    resp = await client.post("/api/login", json={"user": "admin", "password": "admin-pass"})
    body = await resp.json()
    assert resp.status == 429 and body["error"]["code"] == "too_many_requests"
    assert int(resp.headers["Retry-After"]) >= 1
    throttle = client.app[THROTTLE]
    assert throttle.failed_total >= 5 and throttle.refused_total >= 2
    text = await (await client.get("/metrics", headers=auth())).text()
    assert f"zzhub_login_refused_total {float(throttle.refused_total)}" in text
