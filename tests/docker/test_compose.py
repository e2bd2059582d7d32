"""docker/: the compose file, Dockerfile, coturn config and dashboard, checked without an engine.

`docker compose config` needs the compose plugin; where the client lacks it (no engine here,
and often no plugin either) the structure is checked from the YAML itself.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from config import load_config

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
COMPOSE = DOCKER / "compose.yaml"


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return data


def test_docker_compose_config_when_the_client_can(tmp_path: Path) -> None:
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("no docker client")
    probe = subprocess.run([docker, "compose", "version"], capture_output=True, timeout=20)
    if probe.returncode != 0:
        pytest.skip("the docker client has no compose plugin (structure checked below)")
    env = DOCKER / ".env"
    created = not env.exists()
    if created:
        shutil.copy(DOCKER / "env.example", env)
    try:
        out = subprocess.run(
            [docker, "compose", "-f", str(COMPOSE), "config", "--quiet"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        if created:
            env.unlink()
    assert out.returncode == 0, out.stderr


def test_services_and_their_shape() -> None:
    data = compose()
    services = data["services"]
    assert {"hub-a", "hub-b", "redis", "coturn", "cert"} <= set(services)
    assert {"tls", "hub-a-data", "hub-b-data", "redis-data"} <= set(data["volumes"])
    for name in ("hub-a", "hub-b"):
        hub = services[name]  # PyYAML resolves `<<: *hub` merge keys
        assert hub["build"]["dockerfile"] == "docker/Dockerfile"
        assert hub["env_file"] == ".env"
        assert hub["healthcheck"]["test"][-1].endswith("healthcheck.py")
        assert hub["depends_on"]["redis"]["condition"] == "service_healthy"
        assert hub["depends_on"]["cert"]["condition"] == "service_completed_successfully"
        mounts = {m.split(":")[1]: m for m in hub["volumes"]}
        assert mounts["/etc/zzhub/tls"].startswith("tls:") and mounts["/etc/zzhub/tls"].endswith(
            ":ro"
        )
        assert mounts["/var/lib/zzhub"].startswith(f"{name}-data:")
        assert hub["hostname"] == name
    redis_cmd = services["redis"]["command"]
    assert redis_cmd[redis_cmd.index("--appendonly") + 1] == "yes"
    assert services["redis"]["volumes"] == ["redis-data:/data"]
    assert "ports" not in services["redis"]  # never published
    assert services["redis"]["healthcheck"]["test"][1:] == ["redis-cli", "ping"]
    coturn = services["coturn"]
    assert any("--static-auth-secret=${ZZHUB_TURN_SECRET" in a for a in coturn["command"])
    cert_cmd = " ".join(services["cert"]["entrypoint"])
    assert "zzhub cert --out /etc/zzhub/tls" in cert_cmd


def test_no_secret_is_written_into_the_compose_file() -> None:
    text = COMPOSE.read_text() + (DOCKER / "zzhub.yaml").read_text()
    assert not re.search(r"(secret|password)\s*[:=]\s*(?!env:|\$\{)[\"']?\w{6,}", text, re.I)


def test_compose_hub_config_is_valid_and_uses_tls(monkeypatch: pytest.MonkeyPatch) -> None:
    for line in (DOCKER / "env.example").read_text().splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            monkeypatch.setenv(key, value)
    config = load_config(DOCKER / "zzhub.yaml")
    assert config.http.tls_cert == "/etc/zzhub/tls/server.crt"
    assert config.http.port == 8443
    assert config.redis.url == "redis://redis:6379/0"
    assert config.webrtc.turn is not None and config.webrtc.turn.secret
    # the hubs publish their container port 8443
    for name in ("hub-a", "hub-b"):
        assert all(p.endswith(":8443") for p in compose()["services"][name]["ports"])


def test_dockerfile_is_small_non_root_with_healthcheck() -> None:
    text = (DOCKER / "Dockerfile").read_text()
    froms = re.findall(r"^FROM (\S+)", text, re.M)
    assert froms == ["python:3.11-slim-bookworm"] * 2  # build stage, runtime stage
    runtime = text.split("\nFROM ")[-1]
    user = re.findall(r"^USER (\S+)", runtime, re.M)
    assert user and not user[-1].startswith(("root", "0"))
    assert "HEALTHCHECK" in runtime and "healthcheck.py" in runtime
    assert "apt-get install" not in runtime and "build-essential" not in text
    assert "COPY --from=build /opt/zzhub /opt/zzhub" in runtime
    assert re.search(r"^ENTRYPOINT \[\"zzhub\"\]", runtime, re.M)
    assert "/api/health" in (DOCKER / "healthcheck.py").read_text()


def test_coturn_uses_the_shared_secret_scheme() -> None:
    conf = (DOCKER / "coturn.conf").read_text().splitlines()
    options = {line.split("=")[0].strip() for line in conf if line and not line.startswith("#")}
    assert "use-auth-secret" in options
    assert "static-auth-secret" not in options  # from the env, never in the file
    assert "lt-cred-mech" not in options


def _documented_ports() -> set[tuple[str, str]]:
    text = (ROOT / "docs" / "deploy.md").read_text()
    section = text.split("## Ports", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| ([\d-]+) \| (tcp|udp) \|", section, re.M)
    return set(rows)


def _compose_ports() -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    for service in compose()["services"].values():
        for port in service.get("ports", []):
            published, _, rest = str(port).partition(":")
            proto = rest.split("/")[1] if "/" in rest else "tcp"
            found.add((published, proto))
    conf = (DOCKER / "coturn.conf").read_text()
    settings = dict(re.findall(r"^([a-z-]+)=(\S+)", conf, re.M))
    listening = settings["listening-port"]
    found |= {(listening, "udp"), (listening, "tcp")}
    found.add((f"{settings['min-port']}-{settings['max-port']}", "udp"))
    return found


def test_documented_ports_agree_with_the_compose_file() -> None:
    assert _documented_ports() == _compose_ports()


def test_deploy_doc_has_systemd_unit_and_ca_install() -> None:
    text = (ROOT / "docs" / "deploy.md").read_text()
    unit = text.split("```ini", 1)[1].split("```", 1)[0]
    assert "ExecStart=/opt/zzhub/bin/zzhub serve -c /etc/zzhub/zzhub.yaml" in unit
    assert "User=zzhub" in unit and "EnvironmentFile=" in unit
    assert "certutil -addstore -f Root ca.crt" in text and "update-ca-certificates" in text


def test_grafana_dashboard_uses_exported_families() -> None:
    dash = json.loads((DOCKER / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    used = {m for e in exprs for m in re.findall(r"zzhub_[a-z_]+", e)}
    # each slice's families are registered by its app.py (hub/<slice>/app.py)
    source = "".join(path.read_text() for path in (ROOT / "hub").glob("*/app.py"))
    missing = {name for name in used if f'"{name}"' not in source}
    assert not missing, f"dashboard queries unknown families: {missing}"
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids)) >= 8
