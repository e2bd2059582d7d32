#!/usr/bin/env python3
"""Build the console's Chinese web font, `hub/web/fonts/zzhub-sans-sc.woff2`.

Centre PCs often have no internet and some (Debian kiosks, thin clients) have no CJK font, so
the hub serves one itself. It is a subset of Noto Sans CJK SC Regular (SIL Open Font License
1.1, `hub/web/fonts/OFL.txt`): CJK punctuation and full-width forms, the 3,755 level-1 hanzi
of GB 2312 (the common characters of names and places), and every other non-ASCII character
that the console's files and the shipped config examples contain.

    apt-get install fonts-noto-cjk          # the source font, only needed here
    pip install fonttools brotli            # in any venv
    python scripts/make-font.py             # rewrites hub/web/fonts/zzhub-sans-sc.woff2

`tests/hub/web/test_web_font.py` fails when a console file uses a character the font lacks: run
this script again then.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "hub" / "web" / "fonts" / "zzhub-sans-sc.woff2"
SOURCE = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")
FAMILY = "Noto Sans CJK SC"
# what the console and the example configs are made of; their non-ASCII characters go in
TEXT_FILES = ("hub/web/**/*.html", "hub/web/**/*.js", "hub/web/**/*.css", "config/*.yaml")


def gb2312_level1() -> str:
    """The 3,755 level-1 hanzi of GB 2312: rows 16–55 (bytes 0xB0–0xD7), 94 cells each."""
    cells = bytes(b for hi in range(0xB0, 0xD8) for lo in range(0xA1, 0xFF) for b in (hi, lo))
    return cells.decode("gb2312", errors="ignore")  # row 55 has 89 cells: 5 undefined ones go


def console_text(root: Path = ROOT) -> str:
    """Every non-ASCII character in the console's files and the config examples."""
    seen: set[str] = set()
    for pattern in TEXT_FILES:
        for path in root.glob(pattern):
            seen.update(ch for ch in path.read_text(encoding="utf-8") if ord(ch) > 0x7F)
    return "".join(sorted(seen))


def wanted() -> str:
    punctuation = "".join(chr(c) for c in range(0x3000, 0x3040))  # CJK symbols and punctuation
    fullwidth = "".join(chr(c) for c in range(0xFF01, 0xFF5F))  # full-width forms
    return "".join(sorted(set(punctuation + fullwidth + gb2312_level1() + console_text())))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--source", type=Path, default=SOURCE, help="NotoSansCJK-Regular.ttc")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    try:
        from fontTools import subset
        from fontTools.ttLib import TTCollection
    except ImportError:
        print(
            "make-font: needs fontTools and brotli (pip install fonttools brotli)", file=sys.stderr
        )
        return 2
    if not args.source.exists():
        print(f"make-font: {args.source} missing (apt-get install fonts-noto-cjk)", file=sys.stderr)
        return 2
    fonts = [f for f in TTCollection(str(args.source)).fonts if f["name"].getDebugName(1) == FAMILY]
    if not fonts:
        print(f"make-font: no {FAMILY!r} in {args.source}", file=sys.stderr)
        return 2
    font = fonts[0]
    options = subset.Options()
    options.flavor = "woff2"
    options.layout_features = ["*"]  # vertical forms, locl: keep what the source has
    options.name_IDs = ["*"]  # keep the copyright and licence records
    options.notdef_outline = True
    subsetter = subset.Subsetter(options)
    text = wanted()
    subsetter.populate(text=text)
    subsetter.subset(font)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    font.flavor = "woff2"
    font.save(str(args.out))
    size = args.out.stat().st_size
    print(f"{args.out.relative_to(ROOT)}: {len(text)} characters, {size:,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
