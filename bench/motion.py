"""Motion analysis: how many cameras one core analyses at 5 fps.

    python -m bench.motion [--quick]

In this process, pinned to one core (`sched_setaffinity`): N synthetic cameras (replayed
loops: next to no ingest cost), each with a `DecodedTap` and a `MotionDetector` exactly as the
hub wires them (streams/decoded.py, streams/motion.py; the box of `scene=intruder` walks in,
so detection does real work). For each N: CPU of the process and the analysed pictures per
camera per second over a steady window. The count reached is the largest N whose median rate
stays >= 90 % of the target (4.5 of 5 fps) with the process under 95 % of the core.

Modes, measured in the same run:
- substream: 640x360 15 fps camera substream, 5 fps, luma at 100 px high (the hub's way);
- main, reduced: 1280x720 25 fps main stream, same 5 fps / 100 px (decode is the floor);
- baseline: 1280x720 25 fps main stream, every frame converted and analysed at full size.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time

from bench.common import cpu_seconds, write_section
from streams.decoded import DecodedTaps
from streams.motion import MotionDetector, MotionSettings
from streams.stream import Stream

SUB = "synthetic://bench-sub?size=640x360&fps=15&gop=30&scene=intruder&enter=1&loop=8"
MAIN = "synthetic://bench-main?size=1280x720&fps=25&gop=50&scene=intruder&enter=1&loop=8"
MODES = {  # name: (url, tap fps, analysis height (0 = full))
    "substream 640x360@15, 5 fps, 100 px": (SUB, 5.0, 100),
    "main 1280x720@25, 5 fps, 100 px": (MAIN, 5.0, 100),
    "baseline: main 1280x720@25, every frame, full size": (MAIN, 25.0, 0),
}


async def measure(url: str, fps: float, height: int, n: int, window: float) -> tuple[float, float]:
    """(process CPU % of one core, median analysed fps per camera) for n cameras."""
    taps = DecodedTaps()
    streams = [Stream(f"cam{i}", url, linger=0.5) for i in range(n)]
    detectors = [
        MotionDetector(settings=MotionSettings(height=height or 720, cooldown=1e9))
        for _ in range(n)
    ]
    try:
        for i, (stream, det) in enumerate(zip(streams, detectors, strict=True)):
            taps.lease(f"cam{i}", stream, fps=fps, height=height, listener=det.listener)
        await asyncio.sleep(4.0 + n * 0.03)  # loops encoded (cached), decoders warm
        before = [d.frames for d in detectors]
        cpu0, t0 = cpu_seconds(os.getpid()), time.monotonic()
        await asyncio.sleep(window)
        elapsed = time.monotonic() - t0
        cpu = 100 * (cpu_seconds(os.getpid()) - cpu0) / elapsed
        rates = [(d.frames - b) / elapsed for d, b in zip(detectors, before, strict=True)]
        return cpu, statistics.median(rates)
    finally:
        await taps.close()
        await asyncio.gather(*(s.close() for s in streams))


async def run(quick: bool = False) -> None:
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    window = 4.0 if quick else 8.0
    rows: list[str] = []
    reached: dict[str, int] = {}
    for mode, (url, fps, height) in MODES.items():
        steps = (1, 10, 25) if "main" in mode else (1, 25, 50, 75, 100, 125)
        if quick:
            steps = steps[:3]
        best = 0
        for n in steps:
            cpu, rate = await measure(url, fps, height, n, window)
            ok = rate >= 0.9 * fps and cpu < 95
            rows.append(f"| {mode} | {n} | {cpu:.0f} % | {rate:.2f} | {'yes' if ok else 'no'} |")
            print(rows[-1], flush=True)
            if ok:
                best = n
            else:
                break
        reached[mode] = best
    sub_mode = next(iter(MODES))
    body = "\n".join(
        [
            "One process pinned to one core; synthetic cameras replayed (ingest ~free), each with "
            "its decoded tap and motion detector. CPU = % of that core over a "
            f"{window:.0f} s window; rate = median analysed pictures per camera per second.",
            "",
            "| mode | cameras | CPU | analysed fps / camera | kept up |",
            "|---|---|---|---|---|",
            *rows,
            "",
            *(f"- {m}: **{n}** cameras kept up on one core" for m, n in reached.items()),
            f"- Target >= 50 cameras at 5 fps on one core (substream): "
            f"**{'met' if reached[sub_mode] >= 50 else 'missed'}** ({reached[sub_mode]}).",
        ]
    )
    write_section(
        "motion", "motion — cameras analysed at 5 fps on one core", "python -m bench.motion", body
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    asyncio.run(run(parser.parse_args().quick))
