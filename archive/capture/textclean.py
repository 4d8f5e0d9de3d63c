"""Clean-up of recognised text that is safe on any page: full-width letters and
digits folded to ASCII (CJK punctuation kept as printed), spaces between
Chinese characters removed, a ¥ read as a space before an amount restored, no control
or private-use characters, and the page's text kept in the page's own script.

A page keeps the script it is written in. Most characters are common to both scripts
(a traditional receipt may show hardly any traditional-only character), so a page is
taken as simplified only on evidence: its simplified-only characters outnumber its
traditional-only ones many times over. Then the odd traditional form the recogniser
emits (開標, 廣西) is what it misread, and is mapped back. Otherwise nothing is
converted (search matches either form; metadata is read through a simplified copy)."""

from __future__ import annotations

import re
import unicodedata

from archive.han import join_han, script_counts, to_simplified

# A page is simplified where it has at least this many simplified-only characters and this
# many times more of them than traditional-only ones (recognition slips, on a simplified page).
SIMPLIFIED_EVIDENCE = 3
SIMPLIFIED_MAJORITY = 4
# Full-width ASCII letters and digits (Ａ-Ｚ, ａ-ｚ, ０-９) -> ASCII; punctuation stays full-width.
_FULLWIDTH_ALNUM = {code: code - 0xFEE0 for code in range(0xFF10, 0xFF5B) if chr(code - 0xFEE0).isalnum()}
# Chinese text has no spaces: a space the recogniser puts between a word and an amount in
# figures (thousands separated, 元 after) stands for the ¥ it could not read (faded, small).
_LOST_YUAN_SIGN = re.compile(r"(?<=[\u4e00-\u9fff：:]) (?=\d{1,3}(?:,\d{3})+(?:\.\d{1,2})?元)")


def without_control(text: str) -> str:
    """``text`` without control, format, surrogate and private-use characters (a
    font's raw glyph codes, a recogniser's stray output): they are not text. Tabs
    become spaces; line breaks stay."""
    return "".join(
        " " if ch == "\t" else ch
        for ch in text
        if ch == "\n" or ch == "\t" or ch == "\u200d" or unicodedata.category(ch) not in ("Cc", "Cf", "Co", "Cs")
    )


def simplified_page(text: str) -> bool:
    """Whether ``text`` is plainly written in simplified characters (see the module's note)."""
    simplified, traditional = script_counts(text)
    return simplified >= SIMPLIFIED_EVIDENCE and simplified >= SIMPLIFIED_MAJORITY * traditional


def clean_page_lines(lines: list[str]) -> list[str]:
    """The page's lines, cleaned; stray traditional forms mapped back on a simplified page
    (phrase by phrase: 乾隆 stays)."""
    cleaned = [without_control(_LOST_YUAN_SIGN.sub("¥", join_han(line.translate(_FULLWIDTH_ALNUM)))) for line in lines]
    if not any(script_counts(line)[1] for line in cleaned) or not simplified_page("".join(cleaned)):
        return cleaned
    return [to_simplified(line) for line in cleaned]
