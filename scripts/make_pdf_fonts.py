"""Remake the small CJK font of the printable customs PDFs (tradewindow/customs/documents.py):
tradewindow/web/static/fonts/DroidSansFallback-GB2312.ttf, a subset of DroidSansFallbackFull.ttf
beside it (Droid Sans Fallback, Apache-2.0), made with fontTools.

    .venv/bin/python scripts/make_pdf_fonts.py

Why: fpdf2 parses every font a PDF uses, for every PDF. The full font has 49,382 glyphs and costs
some 200 ms of CPU to parse; this subset, a quarter of it, some 45 ms. It keeps the characters of
GB 2312 (the 6,763 hanzi of everyday use and the symbols the font has), CJK Symbols and
Punctuation (the ideographic space, 、。「」【】) and Halfwidth and Fullwidth Forms (，（）：；),
plus the component glyphs they are drawn from, and drops what fpdf2 never reads (layout tables
and vertical metrics). A printout whose text has a character outside it (a rarer ideograph in an
enterprise's name, say) embeds the full font as well. Latin text is set in Liberation Sans, so
the subset needs no Latin.

The output is deterministic: the same source font gives the same bytes."""

from __future__ import annotations

from pathlib import Path

from fontTools import subset
from fontTools.ttLib import TTFont

FONTS = Path(__file__).resolve().parent.parent / "tradewindow" / "web" / "static" / "fonts"
SOURCE = FONTS / "DroidSansFallbackFull.ttf"
TARGET = FONTS / "DroidSansFallback-GB2312.ttf"


def gb2312() -> set[int]:
    """Every character of GB 2312 (rows 1-87 of its 94 x 94 table, EUC-CN bytes A1-F7 x A1-FE)."""
    characters = set()
    for first in range(0xA1, 0xF8):
        for second in range(0xA1, 0xFF):
            try:
                characters.add(ord(bytes((first, second)).decode("gb2312")))
            except UnicodeDecodeError:      # an unassigned cell
                continue
    return characters


def characters() -> set[int]:
    punctuation = set(range(0x3000, 0x3040))          # CJK Symbols and Punctuation
    full_width = set(range(0xFF00, 0xFFF0))           # Halfwidth and Fullwidth Forms
    return gb2312() | punctuation | full_width


def make(source: Path = SOURCE, target: Path = TARGET) -> tuple[int, int]:
    """Write the subset; return (characters it maps, glyphs it holds)."""
    font = TTFont(source, recalcTimestamp=False)
    options = subset.Options()
    options.layout_features = []
    options.drop_tables += ["GSUB", "GPOS", "GDEF", "vhea", "vmtx"]
    options.name_IDs = ["*"]            # keep the copyright and licence records
    options.name_languages = ["*"]
    options.notdef_outline = True
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=sorted(characters()))
    subsetter.subset(font)
    # Name it as what it is, a modified version (Apache-2.0 section 4).
    for record in font["name"].names:
        if record.nameID in (3, 4, 6):
            suffix = "-GB2312" if record.nameID == 6 else " GB2312 subset"
            record.string = record.toUnicode() + suffix
    font.save(target)
    return len(font.getBestCmap()), len(font.getGlyphOrder())


if __name__ == "__main__":
    mapped, glyphs = make()
    print(f"wrote {TARGET}: {mapped:,} characters, {glyphs:,} glyphs, {TARGET.stat().st_size:,} bytes")
