"""Clean-up of recognised text that is safe on any page: full-width letters and
digits folded to ASCII (CJK punctuation kept as printed), spaces between
Chinese characters removed, and no control or private-use characters.

The script is kept as recognised: traditional characters stay traditional (the
stored text is what is on the page; search matches either form, and metadata is
read through a simplified copy)."""

from __future__ import annotations

import unicodedata

from archive.han import join_han

# Full-width ASCII letters and digits (Ａ-Ｚ, ａ-ｚ, ０-９) -> ASCII; punctuation stays full-width.
_FULLWIDTH_ALNUM = {code: code - 0xFEE0 for code in range(0xFF10, 0xFF5B) if chr(code - 0xFEE0).isalnum()}


def without_control(text: str) -> str:
    """``text`` without control, format, surrogate and private-use characters (a
    font's raw glyph codes, a recogniser's stray output): they are not text. Tabs
    become spaces; line breaks stay."""
    return "".join(
        " " if ch == "\t" else ch
        for ch in text
        if ch == "\n" or ch == "\t" or ch == "\u200d" or unicodedata.category(ch) not in ("Cc", "Cf", "Co", "Cs")
    )


def clean_page_lines(lines: list[str]) -> list[str]:
    """The page's lines, cleaned."""
    return [without_control(join_han(line.translate(_FULLWIDTH_ALNUM))) for line in lines]
