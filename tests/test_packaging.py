"""The wheel, installed without `-e`, runs: what `docker/Dockerfile` builds, checked without Docker.

The files the Dockerfile's build stage copies are copied alone into a scratch folder, built into
a wheel there, and installed into a fresh venv. Its dependencies come from this test venv (a
`.pth` line naming our site-packages, so nothing is downloaded: the tests run without a network),
but `hub`, `streams`, `signaling` and `config` come only from the wheel. From that venv
`zzhub check` validates the example config and `zzhub demo` serves until `/api/health` answers,
and the container's health check script agrees.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.request
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "docker" / "Dockerfile"
PACKAGES = ("hub", "streams", "signaling", "config")


def build_stage_copies(dockerfile: Path = DOCKERFILE) -> list[str]:
    """The paths the Dockerfile's first stage COPYs from the build context, in order."""
    sources: list[str] = []
    stages = 0
    for raw in dockerfile.read_text().splitlines():
        words = raw.split("#", 1)[0].split()  # FROM and COPY lines here are one line each
        if not words:
            continue
        if words[0].upper() == "FROM":
            stages += 1
            if stages > 1:
                break
        elif words[0].upper() == "COPY" and not any(w.startswith("--from") for w in words):
            sources += [w for w in words[1:-1] if not w.startswith("--")]
    return sources


def test_the_build_stage_copies_what_the_wheel_is_made_of() -> None:
    copies = build_stage_copies()
    assert "pyproject.toml" in copies and "README.md" in copies
    assert set(PACKAGES) <= set(copies), copies


@dataclass
class Installed:
    venv: Path
    wheel: Path
    site: Path

    def bin(self, name: str) -> str:
        return str(self.venv / "bin" / name)


# the secrets config/example.yaml reads from the environment
EXAMPLE_ENV = {
    "ZZHUB_SECRET": "s" * 40,
    "CAM_GATE_URL": "rtsp://u:p@127.0.0.1/x",
    "ZZHUB_ADMIN_PASSWORD": "admin-pass",
    "ZZHUB_TERMINAL_PASSWORD": "terminal-pass",
}


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env = {k: v for k, v in env.items() if k not in EXAMPLE_ENV}
    env["PIP_NO_INDEX"] = "1"  # nothing from the network: the tests run without one
    return {**env, **extra}


def _run(
    *args: str, cwd: Path, timeout: float = 240, env: dict[str, str] | None = None, code: int = 0
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        args, cwd=cwd, env=env or _env(), capture_output=True, text=True, timeout=timeout,
        check=False,
    )  # fmt: skip
    assert done.returncode == code, (
        f"{shlex.join(args)}: exit {done.returncode}:\n{done.stdout}\n{done.stderr}"
    )
    return done


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    scratch = tmp_path_factory.mktemp("wheel")
    src = scratch / "src"
    src.mkdir()
    for name in build_stage_copies():
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(path, src / name)
    dist = scratch / "dist"
    _run(
        sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
        "-w", str(dist), str(src), cwd=scratch,
    )  # fmt: skip
    (wheel,) = dist.glob("zzhub-*.whl")
    venv = scratch / "venv"
    _run(sys.executable, "-m", "venv", str(venv), cwd=scratch)
    _run(str(venv / "bin" / "pip"), "install", "-q", "--no-deps", str(wheel), cwd=scratch)
    probe = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    site = Path(_run(str(venv / "bin" / "python"), "-c", probe, cwd=scratch).stdout.strip())
    # the dependencies (aiohttp, av, aiortc, …) from this venv, after the wheel's own packages
    ours = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (site / "zzhub-test-deps.pth").write_text("".join(f"{p}\n" for p in sorted(ours)))
    yield Installed(venv, wheel, site)


def test_the_wheel_holds_every_package_and_the_console(installed: Installed) -> None:
    names = set(zipfile.ZipFile(installed.wheel).namelist())
    for package in PACKAGES:
        for init in (ROOT / package).rglob("__init__.py"):
            if "__pycache__" in init.parts:
                continue
            assert init.relative_to(ROOT).as_posix() in names, f"{init} is not in the wheel"
    web = [p for p in (ROOT / "hub" / "web").rglob("*") if p.is_file()]
    assert web, "no console files?"
    missing = [p.relative_to(ROOT).as_posix() for p in web]
    missing = [name for name in missing if name not in names]
    assert not missing, f"console files missing from the wheel: {missing}"
    assert "config/example.yaml" in names and "config/demo.yaml" in names


def test_the_installed_package_is_the_wheel_not_the_work_tree(installed: Installed) -> None:
    code = "import hub.app, hub.petitions.api, streams, signaling, config; print(hub.app.__file__)"
    where = _run(installed.bin("python"), "-c", code, cwd=installed.venv).stdout.strip()
    assert Path(where).is_relative_to(installed.site), where


def test_zzhub_check_from_the_wheel(installed: Installed) -> None:
    shipped = installed.site / "config" / "example.yaml"
    assert shipped.exists()
    for example in (shipped, ROOT / "config" / "example.yaml"):
        zzhub = installed.bin("zzhub")
        done = _run(zzhub, "check", "-c", str(example), cwd=installed.venv, env=_env(**EXAMPLE_ENV))
        assert ": ok" in done.stdout
        done = _run(zzhub, "check", "-c", str(example), cwd=installed.venv, code=2)
        assert "ZZHUB_SECRET is not set" in done.stderr and "Traceback" not in done.stderr


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return int(resp.status), bytes(resp.read())


def test_zzhub_demo_from_the_wheel_serves_health_and_the_console(
    installed: Installed, tmp_path: Path
) -> None:
    port = _free_port()
    log = (tmp_path / "demo.log").open("w+")
    demo = subprocess.Popen(
        [installed.bin("zzhub"), "demo", "--host", "127.0.0.1", "--port", str(port),
         "--data", str(tmp_path / "data")],
        cwd=installed.venv, env=_env(), stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        health: dict[str, object] = {}
        while time.monotonic() < deadline and demo.poll() is None:
            try:
                status, body = _get(f"{base}/api/health")
            except OSError:
                time.sleep(0.3)
                continue
            assert status == 200
            health = json.loads(body)
            break
        log.seek(0)
        assert health.get("status") == "ok", f"demo did not answer /api/health:\n{log.read()}"
        status, page = _get(f"{base}/")
        assert status == 200 and b"<script" in page
        status, font = _get(f"{base}/static/fonts/zzhub-sans-sc.woff2")
        assert status == 200 and font[:4] == b"wOF2"
        check = subprocess.run(
            [installed.bin("python"), str(ROOT / "docker" / "healthcheck.py")],
            env={**_env(), "ZZHUB_HEALTH_URL": f"{base}/api/health"},
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        assert check.returncode == 0, check.stdout + check.stderr
    finally:
        demo.send_signal(signal.SIGINT)
        try:
            code = demo.wait(timeout=30)
        except subprocess.TimeoutExpired:
            demo.kill()
            demo.wait(timeout=10)
            raise
        log.close()
    assert code == 0
