"""Clean-up of recognised text that is safe on any page: full-width letters and
digits folded to ASCII (CJK punctuation kept as printed), spaces between
Chinese characters removed, a ¥ read as a space before an amount restored, and
traditional forms the recogniser sometimes emits (開標, 廣西) mapped back to
simplified, on Simplified Chinese pages only."""

from __future__ import annotations

import re
from functools import lru_cache

from opencc import OpenCC

from archive.han import join_han

# Full-width ASCII letters and digits (Ａ-Ｚ, ａ-ｚ, ０-９) -> ASCII; punctuation stays full-width.
_FULLWIDTH_ALNUM = {code: code - 0xFEE0 for code in range(0xFF10, 0xFF5B) if chr(code - 0xFEE0).isalnum()}
# A page where more of the Han characters than this are traditional-only is a
# traditional-Chinese page (Hong Kong, Taiwan, old documents): leave it alone.
TRADITIONAL_PAGE_SHARE = 0.3
# Chinese text has no spaces: a space the recogniser puts between a word and an amount in
# figures (thousands separated, 元 after) stands for the ¥ it could not read (faded, small).
_LOST_YUAN_SIGN = re.compile(r"(?<=[\u4e00-\u9fff：:]) (?=\d{1,3}(?:,\d{3})+(?:\.\d{1,2})?元)")


@lru_cache(maxsize=1)
def _t2s() -> OpenCC:
    return OpenCC("t2s")


def traditional_share(text: str) -> float:
    han = [ch for ch in text if "\u4e00" <= ch <= "\u9fff"]
    if not han:
        return 0.0
    converter = _t2s()
    return sum(1 for ch in han if converter.convert(ch) != ch) / len(han)


def clean_page_lines(lines: list[str]) -> list[str]:
    """The page's lines, cleaned; phrase-level conversion keeps words like 乾隆."""
    simplified_page = traditional_share("".join(lines)) < TRADITIONAL_PAGE_SHARE
    converter = _t2s()
    cleaned = []
    for line in lines:
        line = _LOST_YUAN_SIGN.sub("¥", join_han(line.translate(_FULLWIDTH_ALNUM)))
        cleaned.append(converter.convert(line) if simplified_page else line)
    return cleaned
