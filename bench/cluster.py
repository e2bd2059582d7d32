"""Cluster: what the Redis hop costs an event. N WebSocket clients (county operators) on node
B; a village terminal connects and disconnects on node A, and each of its presence events
travels A → Redis pub/sub → B → every client. Baseline in the same run, on the same two nodes
and the same kind of clients: the terminal connects to node B itself (no hop). Each event is
timed at every client from its `at` (stamped by the node it happened on) to its arrival;
p50/p99 over all of them. Also: the CPU of A, B and redis-server while events flow.
"""

from __future__ import annotations

import asyncio
import json
import resource
import shutil
from pathlib import Path

import aiohttp
from redis.exceptions import RedisError

from bench.common import (
    CENTRE,
    PYTHON,
    SECRET,
    Hub,
    Proc,
    cpu_seconds,
    free_port,
    median,
    spawn,
    start_hub,
    workdir,
    write_section,
)
from bench.signaling import _pct

CLIENT_PROCS = 4
EVENTS = 10  # the terminal connects + disconnects → 2 events each
REDIS = shutil.which("redis-server") or "/usr/bin/redis-server"


async def _start_redis(wd: Path) -> tuple[asyncio.subprocess.Process, str]:
    import redis.asyncio as aioredis

    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        REDIS, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
        "--dir", str(wd), stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    url = f"redis://127.0.0.1:{port}/0"
    r = aioredis.from_url(url)
    try:
        for _ in range(100):
            try:
                await r.ping()
                return proc, url
            except (OSError, RedisError):  # not listening yet
                await asyncio.sleep(0.05)
    finally:
        await r.aclose()
    proc.kill()
    raise RuntimeError("redis-server did not start")


async def _node(wd: Path, name: str, url: str) -> Hub:
    section = {"url": url, "node_id": name, "heartbeat": 1.0, "node_ttl": 5.0}
    return await start_hub(wd, {}, name=name, extra={"redis": section})


async def _variant(
    wd: Path, a: Hub, b: Hub, cross: bool, total: int, pids: list[int]
) -> dict[str, float]:
    from config.schema import Role
    from hub.auth import TokenIssuer

    issuer = TokenIssuer(SECRET, 3600)
    actor_user = f"actor-{'cross' if cross else 'same'}"
    viewer = issuer.issue("bench-viewer", Role.OPERATOR, CENTRE)
    url = f"{b.base.replace('http', 'ws')}/ws?token={viewer}"
    per = total // CLIENT_PROCS
    clients: list[Proc] = []
    try:
        for i in range(CLIENT_PROCS):
            out = wd / f"delays-{actor_user}-{i}.json"
            cmd = [PYTHON, "-m", "bench.ws_clients", "--url", url, "--count", str(per),
                   "--user", actor_user, "--out", str(out)]  # fmt: skip
            clients.append(await spawn(f"clients-{actor_user}-{i}", cmd, wd, stdin=True))
        for c in clients:
            await c.wait_for("READY", 180)
        await asyncio.sleep(1.0)
        cpu0 = [cpu_seconds(pid) for pid in pids]
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        home = a if cross else b
        actor = issuer.issue(actor_user, Role.TERMINAL, CENTRE + "100201")
        async with aiohttp.ClientSession() as http:
            for _ in range(EVENTS // 2):
                ws = await http.ws_connect(f"{home.base.replace('http', 'ws')}/ws?token={actor}")
                await ws.receive()
                await asyncio.sleep(0.5)
                await ws.close()
                await asyncio.sleep(0.5)
        elapsed = loop.time() - t0
        cpu = [100 * (cpu_seconds(pid) - c0) / elapsed for pid, c0 in zip(pids, cpu0, strict=True)]
        delays: list[float] = []
        for i, c in enumerate(clients):
            await c.send("report")
            await c.wait_for("DONE", 60)
            delays += json.loads((wd / f"delays-{actor_user}-{i}.json").read_text())
        return {
            "p50": 1000 * _pct(delays, 0.5),
            "p99": 1000 * _pct(delays, 0.99),
            "samples": float(len(delays)),
            "expected": float(EVENTS * per * CLIENT_PROCS),
            "cpu_a": cpu[0],
            "cpu_b": cpu[1],
            "cpu_redis": cpu[2],
        }
    finally:
        for c in clients:
            await c.stop()


async def _run_once(total: int) -> dict[str, dict[str, float]]:
    wd = workdir("cluster")
    redis_proc, url = await _start_redis(wd)
    hubs: list[Hub] = []
    try:
        hubs.append(await _node(wd, "node-a", url))
        hubs.append(await _node(wd, "node-b", url))
        a, b = hubs
        await asyncio.sleep(2.5)  # both beat and see each other
        pids = [a.proc.pid, b.proc.pid, redis_proc.pid]
        same = await _variant(wd, a, b, False, total, pids)
        cross = await _variant(wd, a, b, True, total, pids)
        return {"same": same, "cross": cross}
    finally:
        for hub in hubs:
            await hub.stop()
        if redis_proc.returncode is None:
            redis_proc.terminate()
            await redis_proc.wait()


async def run(quick: bool = False) -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    total = 500 if quick else 2000
    runs = 1 if quick else 3
    results = [await _run_once(total) for _ in range(runs)]
    rows = []
    med: dict[str, dict[str, float]] = {}
    for kind, label in (
        ("same", "terminal on node B (baseline: no Redis hop)"),
        ("cross", "terminal on node A (A → Redis → B)"),
    ):
        r = [x[kind] for x in results]
        med[kind] = {k: median([x[k] for x in r]) for k in r[0]}
        got = sum(x["samples"] for x in r)
        want = sum(x["expected"] for x in r)
        m = med[kind]
        each = " / ".join(f"{x['p99']:.0f}" for x in r)
        rows.append(
            f"| {label} | {m['p50']:.0f} ms | **{m['p99']:.0f} ms** | "
            f"{each} ms | {got:.0f} / {want:.0f} | "
            f"{m['cpu_a']:.0f} % / {m['cpu_b']:.0f} % / {m['cpu_redis']:.1f} % |"
        )
    ratio = med["cross"]["p99"] / med["same"]["p99"]
    body = (
        f"{total} WebSocket clients on node B ({CLIENT_PROCS} processes), {EVENTS} presence "
        f"events per variant per run, {runs} run(s), one redis-server, both nodes and the "
        "clients on the same 2 cores.\n\n"
        "| event raised | p50 | p99 (median of runs) | p99 of each run | delivered | "
        "CPU A / B / redis |\n|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n\n"
        f"Cross-node p99 / same-node p99: **{ratio:.2f}×** "
        f"({med['cross']['p99'] - med['same']['p99']:+.0f} ms for the Redis hop). "
        "No target in issue 8; measured so the cost of a second node is known."
    )
    command = "python -m bench cluster" + (" --quick" if quick else "")
    write_section("cluster", "Cluster: an event across two nodes", command, body)
