"""The console's rule for which HTTP refusals end a WebRTC session (hub/web/lib/rtc-session.js,
shared by the WHEP player and the WHIP publisher), checked in node by web_status_test.mjs."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

NODE = shutil.which("node")


@pytest.mark.skipif(NODE is None, reason="needs node (the console's session logic is plain JS)")
def test_final_statuses_are_one_rule_for_player_and_publisher() -> None:
    script = Path(__file__).parent / "web_status_test.mjs"
    done = subprocess.run(
        [str(NODE), str(script)], capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ok" in done.stdout
