"""Cluster: what a second node costs. Two parts, each with its baseline in the same run.

Events: N WebSocket clients (county operators) on node B; a village terminal connects and
disconnects on node A, and each of its presence events travels A → Redis pub/sub → B → every
client. Baseline: the terminal connects to node B itself (no hop). Each event is timed at every
client from its `at` (stamped by the node it happened on) to its arrival; p50/p99 over all.

Relay leg: a 720p25 RTSP camera (GStreamer) configured on node A only; WHEP viewers (aiortc
peers counting frames, bench/viewer_proc.py) connect to node B, which pulls the camera over one
hub-to-hub leg. Baseline: the same viewers on node A directly. Node A's CPU should not grow with
node B's viewers; node B's grows as A's does with direct viewers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import resource
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
from redis.exceptions import RedisError

from bench.common import (
    CENTRE,
    PYTHON,
    SECRET,
    Hub,
    Proc,
    cpu_percent,
    cpu_seconds,
    free_port,
    median,
    spawn,
    start_camera,
    start_hub,
    workdir,
    write_section,
)
from bench.signaling import _pct
from bench.viewers import PER_PROCESS, WARMUP, _mark

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


@contextlib.asynccontextmanager
async def _two_nodes(wd: Path, cameras_a: dict[str, str]) -> AsyncIterator[tuple[Hub, Hub, int]]:
    """redis-server and hub nodes A (with `cameras_a`) and B on it: (A, B, redis-server pid)."""
    redis_proc, url = await _start_redis(wd)
    hubs: list[Hub] = []
    try:
        for name, cameras in (("node-a", cameras_a), ("node-b", {})):
            section = {"url": url, "node_id": name, "heartbeat": 1.0, "node_ttl": 5.0}
            hubs.append(await start_hub(wd, cameras, name=name, extra={"redis": section}))
        await asyncio.sleep(3.0)  # both beat and see each other; B reads the camera map
        yield hubs[0], hubs[1], redis_proc.pid
    finally:
        for hub in hubs:
            await hub.stop()
        if redis_proc.returncode is None:
            redis_proc.terminate()
            await redis_proc.wait()


async def _variant(
    wd: Path, a: Hub, b: Hub, cross: bool, total: int, pids: list[int]
) -> dict[str, float]:
    from config.schema import Role
    from hub.core.auth import TokenIssuer

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
    async with _two_nodes(wd, {}) as (a, b, redis_pid):
        pids = [a.proc.pid, b.proc.pid, redis_pid]
        same = await _variant(wd, a, b, False, total, pids)
        cross = await _variant(wd, a, b, True, total, pids)
    return {"same": same, "cross": cross}


async def _viewers(
    wd: Path,
    name: str,
    hub: Hub,
    counts: tuple[int, ...],
    pids: list[int],
    window: float,
    runs: int,
) -> list[dict[str, float]]:
    """Add WHEP viewers of `cam` on `hub` up to each count; per step the median CPU of each
    of `pids` over `runs` windows and the frames completed per viewer per second."""
    procs: list[Proc] = []
    out = []
    total = 0
    try:
        for target in counts:
            new: list[Proc] = []
            while total < target:
                n = min(PER_PROCESS, target - total)
                cmd = [
                    PYTHON,
                    "-m",
                    "bench.viewer_proc",
                    "--count",
                    str(n),
                    "--whep",
                    f"{hub.base}/api/cameras/cam/whep",
                    "--token",
                    hub.token,
                ]
                new.append(await spawn(f"{name}-{len(procs) + len(new)}", cmd, wd, stdin=True))
                total += n
            procs += new
            await asyncio.gather(*(p.wait_for("READY", 120) for p in new))
            await asyncio.sleep(WARMUP)
            cpus, fps = [], []
            for _ in range(runs):
                before = await _mark(procs)
                cpus.append(await cpu_percent(pids, window))
                after = await _mark(procs)
                frames = sum(x["frames"] - y["frames"] for x, y in zip(after, before, strict=True))
                fps.append(frames / window / target)
            row = {"viewers": float(target), "fps": median(fps)}
            for i in range(len(pids)):
                row[f"cpu{i}"] = median([c[i] for c in cpus])
            print(f"  {name} {target}: {row}", flush=True)
            out.append(row)
    finally:
        for p in procs:
            if p.proc.returncode is None:
                try:
                    await p.send("quit")
                except (ConnectionError, RuntimeError):
                    pass
        await asyncio.gather(*(p.stop() for p in procs))
    return out


async def _drained(hub: Hub, timeout: float = 120.0) -> float:
    """Seconds until `hub` has no viewer of `cam` left (sessions of killed viewers end when
    their peer connections fail)."""
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    headers = {"Authorization": f"Bearer {hub.token}"}
    async with aiohttp.ClientSession(headers=headers) as http:
        while loop.time() - t0 < timeout:
            async with http.get(f"{hub.base}/api/streams") as resp:
                streams = await resp.json()
            if all(s.get("viewers", 0) == 0 for s in streams if s.get("camera") == "cam"):
                await asyncio.sleep(2.0)  # let the closing settle
                return loop.time() - t0
            await asyncio.sleep(0.5)
    raise RuntimeError(f"node A still had viewers {timeout:.0f} s after they left")


async def _relay(quick: bool) -> str:
    counts = (1, 5) if quick else (1, 10, 25)
    runs, window = (1, 5.0) if quick else (3, 8.0)
    wd = workdir("cluster-relay")
    camera, (url,) = await start_camera(wd)
    try:
        async with _two_nodes(wd, {"cam": url}) as (a, b, _):
            pids = [a.proc.pid, b.proc.pid]
            direct = await _viewers(wd, "on-a", a, counts, pids, window, runs)
            # viewers that vanished without a DELETE still cost node A until their sessions end
            drained = await _drained(a)
            via_b = await _viewers(wd, "on-b", b, counts, pids, window, runs)
    finally:
        await camera.stop()
    lines = [
        "| viewers | A, viewers on A (baseline) | A, viewers on B | B, viewers on B | fps on A / on B |",
        "|---|---|---|---|---|",
    ]
    for d, v in zip(direct, via_b, strict=True):
        lines.append(
            f"| {d['viewers']:.0f} | {d['cpu0']:.1f} % | **{v['cpu0']:.1f} %** | {v['cpu1']:.1f} % | "
            f"{d['fps']:.1f} / {v['fps']:.1f} |"
        )
    span = direct[-1]["viewers"] - direct[0]["viewers"]
    grow_direct = (direct[-1]["cpu0"] - direct[0]["cpu0"]) / span
    grow_a = (via_b[-1]["cpu0"] - via_b[0]["cpu0"]) / span
    grow_b = (via_b[-1]["cpu1"] - via_b[0]["cpu1"]) / span
    return (
        "Relay leg: one 720p25 GStreamer RTSP camera on node A only; WHEP viewers (aiortc "
        "peers counting frames, 10 per process) on node A (baseline), then on node B. CPU is % "
        f"of one core, median of {runs} windows of {window:.0f} s; fps is frames completed per "
        "viewer per second (25 expected).\n\n" + "\n".join(lines) + "\n\n"
        f"Per extra viewer: node A with direct viewers {grow_direct:.2f} %; node A while the "
        f"viewers are on B **{grow_a:+.2f} %** (one leg, whatever their number); node B "
        f"{grow_b:.2f} %. Between the two series node A took {drained:.0f} s to end the "
        "sessions of the direct viewers, whose processes were killed without a WHEP DELETE."
    )


async def run(quick: bool = False) -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    relay = await _relay(quick)
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
        "No target set; measured so the cost of a second node is known.\n\n" + relay
    )
    command = "python -m bench cluster" + (" --quick" if quick else "")
    write_section(
        "cluster", "Cluster: an event across two nodes, a camera over a relay leg", command, body
    )
