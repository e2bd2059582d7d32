"""Hub CPU per extra 720p25 passthrough viewer, against Janus and the naive aiortc way.

One GStreamer camera (1280x720, 25 fps, ~2 Mbit/s, x264 ultrafast, one shared encoder) feeds,
one after the other: the hub (`python -m hub.cli serve`), Janus 1.1's streaming plugin (RTSP
mountpoint) and bench/naive_server.py (MediaPlayer + MediaRelay + one encoder per viewer).
Viewers are aiortc peers in processes of up to 10 (bench/viewer_proc.py) that receive RTP
and count completed frames without decoding. At each step the server's CPU is sampled over
RUNS windows and the median reported.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import (
    PYTHON,
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
from bench.janus import JanusUnavailable, start_janus

PER_PROCESS = 10
WARMUP = 3.0


@dataclass
class Step:
    viewers: int
    cpu: float = float("nan")
    fps: float = float("nan")  # frames completed per viewer per second
    connected: int = 0
    runs: list[float] = field(default_factory=list)
    error: str = ""


@dataclass
class Series:
    name: str
    steps: list[Step] = field(default_factory=list)
    error: str = ""

    def per_viewer(self) -> float:
        """% of one core per extra viewer, from the first to the last measured step."""
        ok = [s for s in self.steps if not s.error]
        if len(ok) < 2:
            return float("nan")
        return (ok[-1].cpu - ok[0].cpu) / (ok[-1].viewers - ok[0].viewers)


async def _mark(procs: list[Proc]) -> list[dict[str, int]]:
    async def one(p: Proc) -> dict[str, int]:
        await p.send("mark")
        reply: dict[str, int] = json.loads(await p.wait_for("{", 30))
        return reply

    return list(await asyncio.gather(*(one(p) for p in procs)))


async def measure(
    series: Series,
    pid: int,
    steps: tuple[int, ...],
    viewer_args: list[str],
    wd: Path,
    runs: int,
    window: float,
) -> None:
    procs: list[Proc] = []
    total = 0
    try:
        for target in steps:
            step = Step(target)
            series.steps.append(step)
            new: list[Proc] = []
            while total < target:
                count = min(PER_PROCESS, target - total)
                name = f"{series.name}-viewers{len(procs) + len(new)}"
                new.append(
                    await spawn(
                        name,
                        [PYTHON, "-m", "bench.viewer_proc", "--count", str(count), *viewer_args],
                        wd,
                        stdin=True,
                    )
                )
                total += count
            procs += new
            try:
                await asyncio.gather(*(p.wait_for("READY", 120) for p in new))
            except (TimeoutError, RuntimeError) as err:
                step.error = f"viewers did not all start: {type(err).__name__} {err}"[:300]
                print(f"  {series.name} {target} viewers: {step.error}", flush=True)
                return
            await asyncio.sleep(WARMUP)
            fps_runs = []
            try:
                for _ in range(runs):
                    before = await _mark(procs)
                    step.runs.append((await cpu_percent([pid], window))[0])
                    after = await _mark(procs)
                    frames = sum(
                        a["frames"] - b["frames"] for a, b in zip(after, before, strict=True)
                    )
                    fps_runs.append(frames / window / target)
                    step.connected = sum(a["connected"] for a in after)
            except (TimeoutError, RuntimeError, ConnectionError) as err:
                dead = [p.name for p in procs if p.proc.returncode is not None]
                step.error = f"a viewer process failed ({', '.join(dead)}): {err!r}"[:300]
                print(f"  {series.name} {target} viewers: {step.error}", flush=True)
                return
            step.cpu, step.fps = median(step.runs), median(fps_runs)
            print(
                f"  {series.name} {target} viewers: cpu {step.cpu:.1f} % "
                f"(runs {', '.join(f'{r:.1f}' for r in step.runs)}), "
                f"{step.fps:.1f} fps/viewer, {step.connected} connected",
                flush=True,
            )
    finally:
        for p in procs:
            if p.proc.returncode is None:
                try:
                    await p.send("quit")
                except (ConnectionError, RuntimeError):
                    pass
        await asyncio.gather(*(p.stop() for p in procs))


def _cell(series: Series, n: int) -> str:
    for s in series.steps:
        if s.viewers == n:
            return f"{s.cpu:.1f} % ({s.fps:.1f} fps)" if not s.error else "did not start"
    return "—"


def report(series: list[Series], camera_cpu: float, runs: int, window: float) -> str:
    counts = sorted({s.viewers for x in series for s in x.steps})
    lines = [
        "| viewers | " + " | ".join(x.name for x in series) + " |",
        "|---" * (len(series) + 1) + "|",
    ]
    for n in counts:
        lines.append(f"| {n} | " + " | ".join(_cell(x, n) for x in series) + " |")
    hub, others = series[0], {x.name: x for x in series[1:]}
    per = {x.name: x.per_viewer() for x in series}
    janus = others.get("Janus")
    out = [
        "Server process CPU (% of one core, median of "
        f"{runs} windows of {window:.0f} s) and frames completed per viewer per second "
        "(25 expected). Viewers: aiortc peers, 10 per process, receiving RTP with the "
        "receiver's decoder swapped for a frame counter (no decoding).",
        "",
        *lines,
        "",
        f"Camera (GStreamer x264, one shared encoder) used {camera_cpu:.0f} % of a core "
        "over the whole run.",
        "",
        "Per extra viewer (first to last step): "
        + ", ".join(f"{k} {v:.2f} %" for k, v in per.items())
        + ".",
    ]
    hub_pv = per[hub.name]
    verdict = "met" if hub_pv <= 0.3 else "MISSED"
    out.append(f"- Target ≤ 0.3 % per extra viewer: **{verdict}** ({hub_pv:.2f} %).")
    if janus is not None and not janus.error and janus.per_viewer() > 0:
        ratio = hub_pv / janus.per_viewer()
        verdict = "met" if ratio <= 3 else "MISSED"
        out.append(f"- Target within 3× of Janus per viewer: **{verdict}** ({ratio:.1f}×).")
    for x in series:
        if x.error:
            out.append(f"- {x.name}: not measured — {x.error}")
        for s in x.steps:
            if s.error:
                out.append(f"- {x.name} at {s.viewers} viewers: {s.error}")
    return "\n".join(out)


async def run(quick: bool = False) -> None:
    runs, window = (1, 5.0) if quick else (3, 8.0)
    steps = (1, 10) if quick else (1, 10, 25, 50)
    naive_steps = (1, 5) if quick else (1, 5, 10)
    wd = workdir("viewers")
    camera, (url,) = await start_camera(wd)
    camera_start, started = cpu_seconds(camera.pid), time.monotonic()
    results: list[Series] = []
    try:
        hub_series = Series("hub")
        results.append(hub_series)
        hub = await start_hub(wd, {"cam": url})
        try:
            whep = f"{hub.base}/api/cameras/cam/whep"
            await measure(
                hub_series,
                hub.proc.pid,
                steps,
                ["--whep", whep, "--token", hub.token],
                wd,
                runs,
                window,
            )
        finally:
            await hub.stop()
        janus_series = Series("Janus")
        results.append(janus_series)
        try:
            janus = await start_janus(wd, url)
        except JanusUnavailable as err:
            janus_series.error = str(err)
        else:
            try:
                await measure(
                    janus_series,
                    janus.proc.pid,
                    steps,
                    ["--janus", janus.api, "--mountpoint", str(janus.mountpoint)],
                    wd,
                    runs,
                    window,
                )
            finally:
                await janus.stop()
        naive_series = Series("naive aiortc (encode per viewer)")
        results.append(naive_series)
        naive = await spawn(
            "naive",
            [PYTHON, "-m", "bench.naive_server", "--camera", url, "--port", str(free_port())],
            wd,
        )
        try:
            endpoint = (await naive.wait_for("READY", 30)).split()[1]
            await asyncio.sleep(2)  # MediaPlayer opens the RTSP URL (blocks 1-2 s)
            await measure(
                naive_series, naive.pid, naive_steps, ["--whep", endpoint], wd, runs, window
            )
        finally:
            await naive.stop()
        camera_cpu = 100 * (cpu_seconds(camera.pid) - camera_start) / (time.monotonic() - started)
    finally:
        await camera.stop()
    cmd = "python -m bench viewers" + (" --quick" if quick else "")
    write_section(
        "viewers",
        "viewers — hub CPU per extra passthrough viewer",
        cmd,
        report(results, camera_cpu, runs, window) + f"\n\nLogs: `{wd}`",
    )
