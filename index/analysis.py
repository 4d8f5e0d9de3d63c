"""Chinese-aware analysis for the index, shared by indexing and querying.

CJK bigrams with true token positions (so phrase queries work, as in Lucene's
CJK analyzer), the last character of each Han run also as a unigram (so a
single-character query finds every occurrence through a prefix), alphanumeric
runs as single tokens, NFKC (full-width -> half-width), lower case, traditional
characters folded to simplified (character by character, as case is folded: so
电力 finds a page OCR'd as 電力, and a traditional-Chinese page), and the spaces
OCR puts between Han characters removed.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from functools import cache
from pathlib import Path

from whoosh.analysis import Token, Tokenizer

from archive.ocr import HAN, join_han

_RUN = re.compile(rf"([{HAN}]+)|([0-9a-z]+)")


@cache
def _t2s_table() -> dict[int, str]:
    """Traditional -> simplified, one character for one (OpenCC's character table, first
    choice); characters that are also simplified in their own right (乾, 于) stay as they are."""
    try:
        import opencc

        lines = (Path(opencc.__file__).parent / "dictionary" / "TSCharacters.txt").read_text(encoding="utf-8")
    except (ImportError, OSError):  # no table: no folding, search still works on the text as OCR'd
        return {}
    table: dict[int, str] = {}
    for line in lines.splitlines():
        traditional, _, simplified = line.partition("\t")
        choices = simplified.split()
        if len(traditional) == 1 and choices and len(choices[0]) == 1 and traditional not in choices:
            table[ord(traditional)] = choices[0]
    return table


def fold(text: str) -> str:
    """Lower case and traditional characters as simplified, one character for one: positions
    in the result are positions in ``text`` (so a match found in it can be marked in ``text``)."""
    lower = text.lower()
    if len(lower) != len(text):  # the odd letter whose lower case is two characters (İ)
        lower = "".join(ch if len(ch.lower()) != 1 else ch.lower() for ch in text)
    return lower.translate(_t2s_table())


def normalise(text: str) -> str:
    return fold(join_han(unicodedata.normalize("NFKC", text)))


def terms(text: str) -> list[str]:
    """The token texts of ``text`` in position order."""
    return [text for text, _pos, _start, _end in _tokens(normalise(text))]


def token_string(text: str) -> str:
    """The tokens of ``text`` joined by single spaces, in position order: the
    same tokens as ``terms`` for backends that index pre-tokenised text with a
    whitespace tokenizer (positions stay true: one token, one position)."""
    out: list[str] = []
    for match in _RUN.finditer(normalise(text)):
        han, word = match.groups()
        if word:
            out.append(word)
            continue
        out.extend([han[i : i + 2] for i in range(len(han) - 1)])
        out.append(han[-1])
    return " ".join(out)


def is_han(ch: str) -> bool:
    return bool(re.fullmatch(rf"[{HAN}]", ch))


def _tokens(text: str) -> Iterator[tuple[str, int, int, int]]:
    position = 0
    for match in _RUN.finditer(text):
        han, word = match.groups()
        start = match.start()
        if word:
            yield word, position, start, match.end()
            position += 1
            continue
        if len(han) == 1:
            yield han, position, start, start + 1
            position += 1
            continue
        for i in range(len(han) - 1):
            yield han[i : i + 2], position, start + i, start + i + 2
            position += 1
        yield han[-1], position, start + len(han) - 1, start + len(han)
        position += 1


class CjkTokenizer(Tokenizer):
    def __call__(  # whoosh's tokenizer protocol
        self,
        value: str,
        positions: bool = False,
        chars: bool = False,
        keeporiginal: bool = False,
        removestops: bool = True,
        start_pos: int = 0,
        start_char: int = 0,
        tokenize: bool = True,
        mode: str = "",
        **kwargs: object,
    ) -> Iterator[Token]:
        token = Token(positions, chars, removestops=removestops, mode=mode, **kwargs)
        for text, pos, start, end in _tokens(normalise(value)):
            token.text = text
            token.boost = 1.0
            token.stopped = False
            if keeporiginal:
                token.original = text
            if positions:
                token.pos = start_pos + pos
            if chars:
                token.startchar, token.endchar = start_char + start, start_char + end
            yield token


def cjk_analyzer() -> CjkTokenizer:
    return CjkTokenizer()


def code_terms(code: str | None) -> list[str]:
    """A project code as exact-match terms: the whole code and each segment, so
    GXZC2023-G1-001234-KWZB is found by itself, by 001234 and by gxzc2023."""
    if not code:
        return []
    norm = unicodedata.normalize("NFKC", code).lower()
    parts = [p for p in re.split(r"[^0-9a-z\u3400-\u9fff]+", norm) if p]
    if not parts:
        return []  # only punctuation: nothing to match on
    return list(dict.fromkeys([re.sub(r"\s+", "", norm), *parts]))


def parties_text(meta: dict) -> str:
    """Purchaser, agency and winner as one text for the ``parties`` field, kept
    apart by " ; " so no bigram or phrase runs from one name into the next
    (spaces alone would be removed between Han characters)."""
    return " ; ".join(str(meta[k]) for k in ("purchaser", "agency", "winner") if meta.get(k))
