"""`kill -9` the hub (a real `python -m hub.cli serve` process) with cases waiting and one in a
hearing: after a restart the queue and every timeline entry are there, and the interrupted
hearing is marked `interrupted` (the case back at the front of its queue), not lost."""

from __future__ import annotations

import json
import signal
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from config.schema import Role
from hub.core.auth import TokenIssuer
from tests.conftest import SECRET, TOWN, VILLAGE, topology
from tests.hub.recordings.test_recording_crash import start_hub


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Api:
    def __init__(self, port: int, user: str, role: Role, centre: str) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.token = TokenIssuer(SECRET, 3600).issue(user, role, centre)

    def __call__(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {self.token}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read())


def wait_up(api: Api, log: Path) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            api("GET", "/api/health")
            return
        except (urllib.error.URLError, ConnectionError):
            assert time.monotonic() < deadline, log.read_text()[-2000:]
            time.sleep(0.2)


def test_kill_9_keeps_queue_and_marks_the_hearing_interrupted(tmp_path: Path) -> None:
    cfg = topology({})
    port = free_port()
    cfg["http"].update(port=port, data_dir=str(tmp_path / "data"))
    config = tmp_path / "hub.yaml"
    config.write_text(yaml.safe_dump(cfg, allow_unicode=True))
    log = tmp_path / "hub.log"
    kiosk = Api(port, "village-t", Role.TERMINAL, VILLAGE)
    desk = Api(port, "town-r", Role.RECEPTIONIST, TOWN)

    proc = start_hub(config, log)
    try:
        wait_up(desk, log)
        codes = [
            kiosk("POST", "/api/petitions", {"category": c, "text": f"案件 {i}"})["code"]
            for i, c in enumerate(["wage_arrears", "land", "family"])
        ]
        heard = desk("POST", f"/api/petitions/{codes[0]}/accept")
        assert heard["status"] == "in_hearing"
        desk("POST", f"/api/petitions/{codes[0]}/notes", {"text": "听证中的记录"})
        before = {c: desk("GET", f"/api/petitions/{c}")["timeline"] for c in codes}
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    proc = start_hub(config, log)
    try:
        wait_up(desk, log)
        queue = desk("GET", "/api/petitions?status=waiting")
        assert [c["code"] for c in queue] == codes  # the interrupted one first again
        assert [c["position"] for c in queue] == [1, 2, 3]
        for code in codes:
            after = desk("GET", f"/api/petitions/{code}")["timeline"]
            assert after[: len(before[code])] == before[code]  # every entry survived
        last = desk("GET", f"/api/petitions/{codes[0]}")["timeline"][-1]
        assert last["action"] == "interrupted" and last["from"] == "in_hearing"
        assert last["to"] == "triaged" and last["actor"] == "system"
        # and it can be heard again
        again = desk("POST", f"/api/petitions/{codes[0]}/accept")
        assert again["status"] == "in_hearing" and again["room"] != heard["room"]
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
