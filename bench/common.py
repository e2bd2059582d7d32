"""What every benchmark shares: processes, CPU sampling, the hub and camera launchers, the
machine description and BENCHMARKS.md sections."""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
SYSTEM_PYTHON = "/usr/bin/python3"  # has python3-gi for the GStreamer camera
RESULTS = ROOT / "BENCHMARKS.md"
CLK_TCK = os.sysconf("SC_CLK_TCK")
CENTRE = "410922"
SECRET = "zzhub-bench-secret-not-for-deployment"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def cpu_seconds(pid: int) -> float:
    """utime + stime of one process (all its threads, not its children)."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


async def cpu_percent(pids: Sequence[int], seconds: float) -> list[float]:
    """% of one core used by each process over a window of `seconds`."""
    before = [cpu_seconds(p) for p in pids]
    start = time.monotonic()
    await asyncio.sleep(seconds)
    elapsed = time.monotonic() - start
    return [100 * (cpu_seconds(p) - b) / elapsed for p, b in zip(pids, before, strict=True)]


class Proc:
    """A child process with line-based stdout; stderr goes to a log file."""

    def __init__(self, name: str, proc: asyncio.subprocess.Process, log: Path) -> None:
        self.name = name
        self.proc = proc
        self.log = log

    @property
    def pid(self) -> int:
        return self.proc.pid

    async def readline(self, timeout: float) -> str:
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        if not line:
            tail = self.log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{self.name} exited ({self.proc.returncode}); log tail:\n{tail}")
        return line.decode().rstrip("\n")

    async def wait_for(self, prefix: str, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            line = await self.readline(max(0.1, deadline - time.monotonic()))
            if line.startswith(prefix):
                return line

    async def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line.encode() + b"\n")
        await self.proc.stdin.drain()

    async def stop(self, timeout: float = 10.0) -> None:
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), timeout)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    self.proc.kill()
                await self.proc.wait()


async def spawn(name: str, cmd: Sequence[str], workdir: Path, stdin: bool = False) -> Proc:
    log = workdir / f"{name}.log"
    proc = await asyncio.create_subprocess_exec(
        *cmd,
        cwd=ROOT,
        stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=log.open("wb"),
        env={**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT)},
    )
    return Proc(name, proc, log)


def workdir(prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=f"zzhub-bench-{prefix}-"))


async def start_camera(wd: Path, *args: str, name: str = "camera") -> tuple[Proc, list[str]]:
    """bench/camera.py (GStreamer RTSP server) with `args`; returns it and its URLs."""
    port = free_port()
    cam = await spawn(
        name, [SYSTEM_PYTHON, str(ROOT / "bench" / "camera.py"), "--port", str(port), *args], wd
    )
    urls = [(await cam.wait_for("READY ", 20)).split()[1]]
    while "--path" in args and len(urls) < args.count("--path"):
        urls.append((await cam.wait_for("READY ", 5)).split()[1])
    return cam, urls


@dataclass
class Hub:
    proc: Proc
    base: str
    token: str
    config: Path

    async def stop(self) -> None:
        await self.proc.stop()


async def start_hub(
    wd: Path,
    cameras: dict[str, str],
    *,
    instant_start: bool = True,
    name: str = "hub",
    fast_rtp: bool = True,
    extra: dict[str, object] | None = None,
) -> Hub:
    """`python -m hub.cli serve -c generated.yaml` with `cameras` ({id: url}), always pulled.
    `instant_start=False`: new viewers wait for the next keyframe (the config switch when the
    schema has it, else bench/hub_runner.py patches the relay in the hub process). `extra`:
    more top-level config sections (e.g. `redis`)."""
    from config.schema import StreamsConfig

    port = free_port()
    streams: dict[str, object] = {"linger": 30}
    module = "hub.cli"
    if not instant_start:
        if "instant_start" in StreamsConfig.model_fields:
            streams["instant_start"] = False
        else:
            module = "bench.hub_runner"
    config = {
        "http": {"host": "127.0.0.1", "port": port, "data_dir": str(wd / f"{name}-data")},
        "auth": {"secret": SECRET},
        "webrtc": {"ice_addresses": ["127.0.0.1"], "fast_rtp": fast_rtp},
        "streams": streams,
        "centres": [
            {
                "code": CENTRE,
                "name": "bench",
                "cameras": [
                    {"id": cid, "name": cid, "url": url, "always_on": True}
                    for cid, url in cameras.items()
                ],
            }
        ],
        **(extra or {}),
    }
    return await serve_config(wd, config, name, module=module, ready_within=20)


async def serve_config(
    wd: Path,
    config: dict[str, object],
    name: str,
    *,
    module: str = "hub.cli",
    ready_within: float = 30,
) -> Hub:
    """Write `config`, mint an admin token for it and run `python -m MODULE serve -c` on it
    (its `http.port` must be set); stops the process if it does not come up."""
    http = config["http"]
    assert isinstance(http, dict)
    path = wd / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True))
    tok = await spawn(
        f"{name}-token",
        [
            PYTHON,
            "-m",
            "hub.cli",
            "token",
            "--user",
            "bench",
            "--role",
            "admin",
            "--centre",
            CENTRE,
            "-c",
            str(path),
        ],
        wd,
    )
    out, _ = await tok.proc.communicate()
    token = out.decode().strip().splitlines()[-1]
    proc = await spawn(name, [PYTHON, "-m", module, "serve", "-c", str(path)], wd)
    try:
        await proc.wait_for("zzhub listening", ready_within)
    except BaseException:
        await proc.stop()
        raise
    return Hub(proc, f"http://127.0.0.1:{http['port']}", token, path)


def _version(module: str) -> str:
    try:
        mod = __import__(module)
        return str(getattr(mod, "__version__", "?"))
    except ImportError:
        return "not installed"


def revision() -> str:
    """The commit measured, `-dirty` when the working tree had changes."""
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return out.stdout.strip() or "unknown"


def machine() -> str:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = re.search(r"model name\s*:\s*(.*)", cpuinfo)
    return (
        f"`nproc` {os.cpu_count()}, {model.group(1) if model else 'unknown CPU'}, "
        f"Linux {platform.release()}, Python {platform.python_version()}, "
        f"aiortc {_version('aiortc')}, av {_version('av')}, "
        f"{time.strftime('%Y-%m-%d %H:%M %Z')}, tree `{revision()}`"
    )


def write_section(name: str, title: str, command: str, body: str) -> None:
    """Replace (or append) this benchmark's section of BENCHMARKS.md."""
    start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    section = f"{start}\n## {title}\n\n`{command}`  \n{machine()}\n\n{body.strip()}\n{end}"
    text = RESULTS.read_text() if RESULTS.exists() else HEADER
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
    text = (
        pattern.sub(lambda _: section, text)
        if pattern.search(text)
        else (text.rstrip("\n") + "\n\n" + section + "\n")
    )
    RESULTS.write_text(text)
    print(section, flush=True)


HEADER = """# zzhub benchmarks

Written by `python -m bench [name…] [--quick]` (`make bench`); each section is replaced by its
benchmark's latest run. Every number has its baseline measured in the same run. CPU is % of
one core, from `/proc/PID/stat` utime+stime of that process over a steady window; figures
are medians of the runs stated. Everything runs on 127.0.0.0/8 (in a network namespace with
only `lo` under `make bench`). Sections say plainly when a target is missed.
"""
