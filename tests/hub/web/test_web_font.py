"""The console's web font has every Chinese character the console and the config examples use.

A label added with a character outside the subset would show as a box on a PC without a CJK
font: this test names the characters, and `scripts/make-font.py` rebuilds the font.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

from fontTools.ttLib import TTFont

ROOT = Path(__file__).resolve().parents[3]
WEB = ROOT / "hub" / "web"
FONT = WEB / "fonts" / "zzhub-sans-sc.woff2"


def make_font() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_font", ROOT / "scripts" / "make-font.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def face_ranges() -> list[tuple[int, int]]:
    """The unicode-range of the @font-face in style.css: what the browser takes from the font."""
    css = (WEB / "style.css").read_text(encoding="utf-8")
    face = re.search(r'@font-face\s*{[^}]*"Zzhub Sans SC"[^}]*}', css)
    assert face, "style.css has no @font-face for Zzhub Sans SC"
    assert "/static/fonts/zzhub-sans-sc.woff2" in face.group(0)
    found = re.search(r"unicode-range:([^;]*);", face.group(0))
    assert found
    ranges = []
    for part in found.group(1).split(","):
        low, _, high = part.strip().removeprefix("U+").partition("-")
        ranges.append((int(low, 16), int(high or low, 16)))
    return ranges


def test_the_font_covers_every_cjk_character_the_console_shows() -> None:
    cmap = TTFont(str(FONT)).getBestCmap()
    ranges = face_ranges()
    text = make_font().console_text()
    shown = [ch for ch in text if any(lo <= ord(ch) <= hi for lo, hi in ranges)]
    assert len(shown) > 200, "the console has far more hanzi than this: is the scan broken?"
    missing = "".join(ch for ch in shown if ord(ch) not in cmap)
    assert not missing, f"not in {FONT.name} (run scripts/make-font.py): {missing}"


def test_the_font_covers_common_names_and_punctuation() -> None:
    cmap = TTFont(str(FONT)).getBestCmap()
    common = make_font().gb2312_level1()
    assert len(common) == 3755
    assert all(ord(ch) in cmap for ch in common + "，。、：；？！（）《》「」")


def test_the_font_is_served_under_its_licence() -> None:
    licence = (WEB / "fonts" / "OFL.txt").read_text(encoding="utf-8")
    assert "SIL OPEN FONT LICENSE Version 1.1" in licence
    names = TTFont(str(FONT))["name"]
    assert names.getDebugName(1) == "Noto Sans CJK SC"
    assert "Open Font License" in (names.getDebugName(13) or "")
