"""The GStreamer test camera itself: every element it needs is installed by `make test`, and a
pipeline that cannot be built fails the fixture at once with GStreamer's own error."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.fixtures.camera import SCRIPT, SYSTEM_PYTHON, RtspCamera, requires_rtsp_camera

INSTALL = Path(__file__).resolve().parents[2] / "scripts" / "install-system-deps.sh"


def installed_and_checked() -> set[str]:
    """The elements scripts/install-system-deps.sh checks after installing."""
    block = re.search(r"^elements=\((.*?)\)", INSTALL.read_text(), re.S | re.M)
    assert block, "no elements=( … ) list in install-system-deps.sh"
    return {entry.split(":")[0] for entry in block.group(1).split() if ":" in entry}


@requires_rtsp_camera
def test_the_install_script_checks_every_element_the_camera_uses() -> None:
    done = subprocess.run(
        [SYSTEM_PYTHON, str(SCRIPT), "--elements"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    used = set(done.stdout.split())
    assert {"videotestsrc", "timeoverlay", "x264enc", "x265enc", "jpegenc"} <= used
    unchecked = used - installed_and_checked()
    assert not unchecked, f"install-system-deps.sh does not check {sorted(unchecked)}"


@requires_rtsp_camera
def test_a_camera_that_cannot_build_its_pipeline_fails_at_once() -> None:
    # waiting for READY would outlast the test's own timeout: only an early exit passes
    with pytest.raises(RuntimeError) as failed:
        RtspCamera(overlay="nosuchoverlay").start(ready_within=600)
    assert 'no element "nosuchoverlay"' in str(failed.value)
