"""Config: strict schema, env secrets, tree checks, `zzhub check` exit codes, shipped examples."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from config import ConfigError, load_config, parse_config
from config.schema import HubConfig, Level
from tests.conftest import topology

ROOT = Path(__file__).resolve().parents[2]


def test_demo_and_example_configs_are_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    demo = load_config(ROOT / "config" / "demo.yaml")
    levels = [c.level for c in demo.centres]
    assert levels.count(Level.COUNTY) == 1 and levels.count(Level.TOWNSHIP) == 2
    assert levels.count(Level.VILLAGE) == 4
    assert all(c.cameras for c in demo.centres), "cameras on each level"
    monkeypatch.setenv("ZZHUB_SECRET", "s" * 40)
    monkeypatch.setenv("CAM_GATE_URL", "rtsp://u:p@10.0.0.1/x")
    monkeypatch.setenv("ZZHUB_ADMIN_PASSWORD", "x")
    monkeypatch.setenv("ZZHUB_TERMINAL_PASSWORD", "y")
    example = load_config(ROOT / "config" / "example.yaml")
    assert example.auth.secret == "s" * 40
    assert example.centres[0].cameras[0].url == "rtsp://u:p@10.0.0.1/x"


def test_defaults_match_documented_values() -> None:
    cfg = parse_config(topology())
    defaults = HubConfig.model_fields
    assert defaults["streams"].default.linger == 10.0
    assert list(defaults["streams"].default.backoff) == [(1.0, 5), (5.0, 5), (10.0, 10), (60.0, 1)]
    assert cfg.http.host == "127.0.0.1"


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(colour="red"), "colour: unknown key"),
        (lambda d: d["streams"].update(lingr=3), "streams.lingr: unknown key"),
        (
            lambda d: d["centres"][0]["cameras"][0].update(uri="x"),
            "centres.0.cameras.0.uri: unknown key",
        ),
        (
            lambda d: d["centres"].append({"code": "4109", "name": "x"}),
            "must be 6 (county), 9 (township) or 12",
        ),
        (
            lambda d: d["centres"].append({"code": "410922999001", "name": "x"}),
            "parent 410922999 is not in centres",
        ),
        (lambda d: d["centres"].append(dict(d["centres"][0])), "listed twice"),
        (
            lambda d: d["centres"][1]["cameras"].append(dict(d["centres"][0]["cameras"][0])),
            "used twice",
        ),
        (lambda d: d["auth"].update(secret="short"), "auth.secret"),
        (
            lambda d: d["users"].append({"name": "u", "role": "king", "centre": "410922"}),
            "users.2.role",
        ),
        (
            lambda d: d["users"].append({"name": "u", "role": "admin", "centre": "999999"}),
            "centre 999999 is not in centres",
        ),
        (
            lambda d: d["auth"].update(secret="env:ZZHUB_TEST_UNSET_VAR"),
            "ZZHUB_TEST_UNSET_VAR is not set",
        ),
    ],
)
def test_bad_configs_name_the_problem(mutate: Any, message: str) -> None:
    data = topology()
    mutate(data)
    with pytest.raises(ConfigError) as err:
        parse_config(data)
    assert message in str(err.value)


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hub.cli", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )


def test_check_command_exit_codes(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump(topology(), allow_unicode=True), encoding="utf-8")
    ok = run_cli("check", "-c", str(good))
    assert ok.returncode == 0, ok.stderr
    assert "4 centres" in ok.stdout
    data = topology()
    data["centres"][0]["cameras"][0]["recrod"] = "continuous"
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    res = run_cli("check", "-c", str(bad))
    assert res.returncode == 2
    assert "centres.0.cameras.0.recrod: unknown key" in res.stderr
    assert "Traceback" not in res.stderr
    broken = tmp_path / "broken.yaml"
    broken.write_text("centres: [\n", encoding="utf-8")
    res = run_cli("check", "-c", str(broken))
    assert res.returncode == 2 and "not valid YAML" in res.stderr
    res = run_cli("check", "-c", str(tmp_path / "missing.yaml"))
    assert res.returncode == 2 and "cannot read" in res.stderr


def test_token_command_prints_a_token_the_hub_accepts() -> None:
    from hub.core.auth import TokenIssuer

    res = run_cli(
        "token",
        "--user",
        "kiosk-1",
        "--role",
        "terminal",
        "--centre",
        "410922100201",
        "--ttl",
        "120",
    )
    assert res.returncode == 0, res.stderr
    token = res.stdout.strip().splitlines()[-1]
    demo = load_config(ROOT / "config" / "demo.yaml")
    p = TokenIssuer(demo.auth.secret, 60).verify(token)
    assert (p.user, str(p.role), p.centre) == ("kiosk-1", "terminal", "410922100201")
    bad = run_cli("token", "--user", "x", "--role", "admin", "--centre", "41")
    assert bad.returncode == 2
