"""Money as Chinese documents write it: figures (¥1,234,567.89元, 123.4万元)
and capitals (人民币壹佰贰拾叁万肆仟伍佰陆拾柒元捌角玖分). The two forms on one
page must agree, which is a free check of the OCR."""

from __future__ import annotations

import re

DIGITS = {"零": 0, "〇": 0, "壹": 1, "贰": 2, "貳": 2, "叁": 3, "參": 3, "肆": 4, "伍": 5, "陆": 6, "陸": 6,
          "柒": 7, "捌": 8, "玖": 9, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7,
          "八": 8, "九": 9}  # fmt: skip
SMALL_UNITS = {"拾": 10, "十": 10, "佰": 100, "百": 100, "仟": 1000, "千": 1000}
BIG_UNITS = {"万": 10_000, "萬": 10_000, "亿": 100_000_000, "億": 100_000_000}

FIGURES = re.compile(r"(?:[¥￥]|金额[为是：:]?|价款[为是：:]?|报价[为是：:]?)\s*([\d,，]+(?:\.\d{1,2})?)\s*(万)?元")
CAPITALS = re.compile(
    r"(?:人民币|大写[：:]?)\s*([零〇壹贰貳叁參肆伍陆陸柒捌玖拾佰仟万萬亿億]+元(?:整|正)?(?:[零〇壹贰貳叁參肆伍陆陸柒捌玖]角)?零?(?:[零〇壹贰貳叁參肆伍陆陸柒捌玖]分)?)"
)


def parse_figures(text: str) -> float | None:
    if match := FIGURES.search(text):
        amount = float(re.sub(r"[,，]", "", match.group(1)))
        return round(amount * 10_000, 2) if match.group(2) else amount
    return None


def parse_capitals(text: str) -> float | None:
    """人民币伍佰贰拾陆万肆仟壹佰叁拾壹元肆角壹分 -> 5264131.41 (None if absent or malformed)."""
    match = CAPITALS.search(text)
    if not match:
        return None
    words = match.group(1)
    yuan_part, _, fraction = words.partition("元")
    try:
        yuan = _integer(yuan_part)
    except ValueError:
        return None
    jiao = re.search(r"([零〇壹贰貳叁參肆伍陆陸柒捌玖])角", fraction)
    fen = re.search(r"([零〇壹贰貳叁參肆伍陆陸柒捌玖])分", fraction)
    cents = (DIGITS[jiao.group(1)] * 10 if jiao else 0) + (DIGITS[fen.group(1)] if fen else 0)
    return round(yuan + cents / 100, 2)


def _integer(words: str) -> int:
    total, section, digit = 0, 0, 0
    for ch in words:
        if ch in DIGITS:
            digit = DIGITS[ch]
        elif ch in SMALL_UNITS:
            section += (digit or 1) * SMALL_UNITS[ch]
            digit = 0
        elif ch in BIG_UNITS:
            section += digit
            total = (total + section) * BIG_UNITS[ch] if BIG_UNITS[ch] > 10_000 else total + section * BIG_UNITS[ch]
            section, digit = 0, 0
        else:
            raise ValueError(f"not a capital numeral: {ch!r}")
    return total + section + digit
