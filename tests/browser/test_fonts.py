"""Chinese labels render as 汉字 in Chromium on a machine without a CJK font of its own.

Chromium reports, through the DevTools protocol, which fonts drew a node's text
(`CSS.getPlatformFontsForNode`). On a machine with no local CJK font (a fresh Debian, as CI is)
the console's labels must be drawn by the hub's own web font; where a local CJK font exists the
stack may prefer it, and either way no CJK glyph may fall to a font without them (boxes).
"""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

import pytest

from tests.browser.conftest import Hub

pytestmark = pytest.mark.browser

Page = Any


def local_cjk_fonts() -> list[str]:
    """Families fontconfig knows for Chinese on this machine ([] on a fresh Debian)."""
    fc_list = shutil.which("fc-list")
    if fc_list is None:
        return []
    done = subprocess.run(
        [fc_list, ":lang=zh", "family"], capture_output=True, text=True, timeout=30, check=False
    )
    return [line for line in done.stdout.splitlines() if line.strip()]


async def fonts_drawing(page: Page, selector: str) -> list[dict[str, Any]]:
    cdp = await page.context.new_cdp_session(page)
    await cdp.send("DOM.enable")
    await cdp.send("CSS.enable")
    root = await cdp.send("DOM.getDocument", {"depth": -1})
    found = await cdp.send(
        "DOM.querySelector", {"nodeId": root["root"]["nodeId"], "selector": selector}
    )
    assert found["nodeId"], f"no {selector} on the page"
    fonts = await cdp.send("CSS.getPlatformFontsForNode", {"nodeId": found["nodeId"]})
    await cdp.detach()
    used: list[dict[str, Any]] = fonts["fonts"]
    return used


async def test_the_login_page_draws_its_chinese_with_a_cjk_font(page: Page, hub: Hub) -> None:
    await page.wait_for_selector("#login-submit")
    await page.evaluate("() => document.fonts.ready")
    text = await page.inner_text("#login-submit")
    assert any("\u4e00" <= ch <= "\u9fff" for ch in text), f"no hanzi on the button: {text!r}"
    used = await fonts_drawing(page, "#login-submit")
    assert used, "Chromium reports no font for the button"
    if not local_cjk_fonts():
        custom = [f for f in used if f.get("isCustomFont")]
        assert custom, f"hanzi drawn without the hub's web font: {used}"
        assert any("CJK" in f["familyName"] for f in custom), custom
        loaded = await page.evaluate(
            """() => [...document.fonts].filter(f => f.family.includes('Zzhub Sans SC'))
                                        .map(f => f.status)"""
        )
        assert "loaded" in loaded, loaded
    else:
        families = {name.strip() for line in local_cjk_fonts() for name in line.split(",")}
        assert any(f.get("isCustomFont") or f["familyName"] in families for f in used), used
