"""Wall mosaic: hub CPU of a 16-tile 1920x1080 mosaic at 15 fps, with 1 and with 20 viewers.

    python -m bench.mosaic [--quick]

A hub process (`zzhub serve`) with 16 synthetic cameras (replayed loops, moving picture) and
one configured 16-tile wall; viewers are bench/viewer_proc.py aiortc peers (no decoding) that
POST to /api/walls/bench/whep. CPU is the hub process's % of one core over a steady window;
fps is frames completed per viewer per second (15 expected). Two camera kinds: 640x360
substreams (what wall tiles read when configured) and 1280x720 main streams.
"""

from __future__ import annotations

import argparse
import asyncio
import json

from bench.common import (
    CENTRE,
    PYTHON,
    SECRET,
    Proc,
    cpu_percent,
    free_port,
    median,
    serve_config,
    spawn,
    workdir,
    write_section,
)

KINDS = {
    "640x360@15 substreams": "size=640x360&fps=15&gop=30",
    "1280x720@25 main streams": "size=1280x720&fps=25&gop=50",
}


async def start_hub(wd: object, query: str, name: str) -> tuple[Proc, str, str]:
    from pathlib import Path

    assert isinstance(wd, Path)
    port = free_port()
    cams = [
        {"id": f"c{i}", "name": f"CAM {i:02d}", "url": f"synthetic://mosaic?{query}"}
        for i in range(16)
    ]
    config = {
        "http": {"host": "127.0.0.1", "port": port, "data_dir": str(wd / f"{name}-data")},
        "auth": {"secret": SECRET},
        "webrtc": {"ice_addresses": ["127.0.0.1"]},
        "streams": {"linger": 30},
        "centres": [{"code": CENTRE, "name": "bench", "cameras": cams}],
        "walls": [
            {
                "id": "bench",
                "centre": CENTRE,
                "layout": 16,
                "cameras": [c["id"] for c in cams],
                "width": 1920,
                "height": 1080,
                "fps": 15,
            }
        ],
    }
    hub = await serve_config(wd, config, name)
    return hub.proc, hub.base, hub.token


async def mark(procs: list[Proc]) -> int:
    total = 0
    for p in procs:
        await p.send("mark")
        total += int(json.loads(await p.readline(30))["frames"])
    return total


async def measure(
    kind: str, query: str, counts: tuple[int, ...], runs: int, window: float
) -> list[tuple[int, float, float]]:
    wd = workdir("mosaic")
    hub, base, token = await start_hub(wd, query, "hub")
    procs: list[Proc] = []
    out = []
    try:
        for n in counts:
            while sum(10 for _ in procs) < n:
                count = min(10, n - 10 * len(procs))
                p = await spawn(
                    f"viewers{len(procs)}",
                    [
                        PYTHON,
                        "-m",
                        "bench.viewer_proc",
                        "--count",
                        str(count),
                        "--whep",
                        f"{base}/api/walls/bench/whep",
                        "--token",
                        token,
                    ],
                    wd,
                    stdin=True,
                )
                await p.wait_for("READY", 60)
                procs.append(p)
            await asyncio.sleep(3)
            cpus, fpss = [], []
            for _ in range(runs):
                f0 = await mark(procs)
                cpu = (await cpu_percent([hub.pid], window))[0]
                f1 = await mark(procs)
                cpus.append(cpu)
                fpss.append((f1 - f0) / window / n)
            out.append((n, median(cpus), median(fpss)))
            print(f"{kind}: {n} viewers: hub {out[-1][1]:.1f} %, {out[-1][2]:.1f} fps", flush=True)
    finally:
        for p in procs:
            await p.stop()
        await hub.stop()
    return out


async def run(quick: bool = False) -> None:
    runs, window = (1, 5.0) if quick else (3, 8.0)
    rows = []
    for kind, query in KINDS.items():
        for n, cpu, fps in await measure(kind, query, (1, 20), runs, window):
            rows.append(f"| {kind} | {n} | {cpu:.1f} % | {fps:.1f} |")
    body = "\n".join(
        [
            "Hub process CPU (% of one core, median of "
            f"{runs} window(s) of {window:.0f} s) for one 16-tile 1920x1080 15 fps wall: 16 "
            "camera decodes (one decoded tap each), composition with numpy, one libx264 "
            "ultrafast encode, WebRTC fan-out. Viewers: aiortc peers without decoding "
            "(bench/viewer_proc.py).",
            "",
            "| cameras | viewers | hub CPU | fps per viewer |",
            "|---|---|---|---|",
            *rows,
        ]
    )
    write_section("mosaic", "mosaic — 16-tile 1080p wall at 15 fps", "python -m bench.mosaic", body)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    asyncio.run(run(parser.parse_args().quick))
