"""Han-text basics shared by capture (OCR output) and search (analysis): the
ranges of Chinese characters, and joining what engines split. No OCR here, so
the search path imports it without loading a model."""

from __future__ import annotations

import re
from functools import lru_cache

HAN = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_SPACE_BETWEEN_HAN = re.compile(rf"(?<=[{HAN}\u3000-\u303f\uff00-\uffef])\s+(?=[{HAN}\u3000-\u303f\uff00-\uffef])")


def join_han(text: str) -> str:
    """Remove the spaces OCR engines put between Chinese characters."""
    return _SPACE_BETWEEN_HAN.sub("", text)


@lru_cache(maxsize=2)
def _opencc(config: str):  # noqa: ANN202 - opencc's converter
    from opencc import OpenCC

    return OpenCC(config)


def to_simplified(text: str) -> str:
    """``text`` in simplified characters (phrase by phrase: 乾隆 stays), for reading values
    off a page whatever its script."""
    return _opencc("t2s").convert(text)


def script_counts(text: str) -> tuple[int, int]:
    """(simplified-only, traditional-only) Han characters in ``text``: those that change
    when converted to the other script. Most characters are common to both and count
    for neither."""
    simplified = traditional = 0
    for ch in set(text):
        if not ("\u3400" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff"):
            continue
        times = text.count(ch)
        if _opencc("s2t").convert(ch) != ch:
            simplified += times
        elif _opencc("t2s").convert(ch) != ch:
            traditional += times
    return simplified, traditional
