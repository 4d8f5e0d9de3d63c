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


@lru_cache(maxsize=1)
def _t2s():  # noqa: ANN202 - opencc's converter
    from opencc import OpenCC

    return OpenCC("t2s")


def to_simplified(text: str) -> str:
    """``text`` in simplified characters (phrase by phrase: 乾隆 stays), for reading values
    off a page whatever its script; the page's stored text keeps the script it was written in."""
    return _t2s().convert(text)
