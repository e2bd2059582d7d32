"""The console's plain-JS logic checked in node: the rule for which HTTP refusals end a WebRTC
session (hub/web/lib/rtc-session.js, shared by the WHEP player and the WHIP publisher;
web_status_test.mjs) and how every page starts (hub/web/lib/boot.js; boot_test.mjs)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

NODE = shutil.which("node")


def run_node(name: str) -> None:
    script = Path(__file__).parent / name
    done = subprocess.run(
        [str(NODE), str(script)], capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ok" in done.stdout


@pytest.mark.skipif(NODE is None, reason="needs node (the console's session logic is plain JS)")
def test_final_statuses_are_one_rule_for_player_and_publisher() -> None:
    run_node("web_status_test.mjs")


@pytest.mark.skipif(NODE is None, reason="needs node (the console's boot logic is plain JS)")
def test_every_page_boots_one_way() -> None:
    run_node("boot_test.mjs")
