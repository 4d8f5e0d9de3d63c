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
from collections.abc import Iterable, Iterator
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from archive.han import HAN, join_han

if TYPE_CHECKING:  # numpy is imported where it is used, by the tantivy backend only
    import numpy
    from whoosh.analysis import Tokenizer

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


@cache
def _traditional() -> re.Pattern[str]:
    """A character ``_t2s_table`` folds, or any character past U+FFFF. Python's re looks a
    character up in a bitmap when the class is all U+0000-U+FFFF, but checks a class with
    one character past it member by member (180 times slower): the rare text with such a
    character is translated whether it needs it or not (same result)."""
    folds = "".join(re.escape(chr(code)) for code in sorted(_t2s_table()) if code <= 0xFFFF)
    return re.compile(f"[{folds}]|[\U00010000-\U0010ffff]" if folds else "[\U00010000-\U0010ffff]")


def _lower(text: str) -> str:
    """Lower case, one character for one (positions stay): the odd letter whose lower case
    is two characters (İ) is left as it is."""
    lower = text.lower()
    if len(lower) != len(text):
        lower = "".join(ch if len(ch.lower()) != 1 else ch.lower() for ch in text)
    return lower


def fold(text: str) -> str:
    """Lower case and traditional characters as simplified, one character for one: positions
    in the result are positions in ``text`` (so a match found in it can be marked in ``text``)."""
    lower = _lower(text)
    # str.translate looks up every character (slow); most pages hold no traditional one at all
    return lower.translate(_t2s_table()) if _traditional().search(lower) else lower


@cache
def _compatibility_forms() -> tuple[re.Pattern[str], dict[str, str]]:
    """Full-width forms and CJK symbols whose NFKC is their compatibility decomposition (，-> ,)."""
    forms = {}
    for code in (*range(0x3000, 0x3040), *range(0xFF00, 0xFFF0)):
        char = chr(code)
        decomposed = unicodedata.normalize("NFKD", char)
        if decomposed != char and decomposed == unicodedata.normalize("NFKC", char):
            forms[char] = decomposed
    return re.compile("[" + "".join(map(re.escape, forms)) + "]"), forms


def nfkc(text: str) -> str:
    """``unicodedata.normalize("NFKC", text)``, fast for Chinese text. NFKC starts by fully
    decomposing every character, so replacing a character by its decomposition first does not
    change the result; with the full-width punctuation of Chinese text (，：（）) replaced, the
    text usually passes ``normalize``'s quick check and is returned as it is, instead of being
    decomposed and recomposed character by character (about 7 times slower)."""
    if text.isascii():
        return text
    pattern, forms = _compatibility_forms()
    return unicodedata.normalize("NFKC", pattern.sub(lambda found: forms[found.group()], text))


def flatten(text: str) -> str:
    """NFKC, spaces between Han characters removed: ``normalise`` before folding, and
    ``index.query.flat_text`` (the snippet text) but for its line breaks."""
    return join_han(nfkc(text))


def normalise(text: str) -> str:
    return fold(flatten(text))


def terms(text: str) -> list[str]:
    """The token texts of ``text`` in position order."""
    return [text for text, _pos, _start, _end in _tokens(normalise(text))]


# Between two runs (Han, or alphanumeric) a token string has this filler token: the
# next run starts one position later than it would. A phrase can then be matched by
# every other bigram of a run (``sparse_phrase``) without matching across a run's end.
RUN_GAP = "|"


def token_string(text: str) -> str:
    """The tokens of ``text`` joined by single spaces, in position order, with ``RUN_GAP``
    between runs: ``terms`` with a gap after each run, for backends that index
    pre-tokenised text with a whitespace tokenizer (one token, one position)."""
    return flat_token_string(flatten(text))


def flat_token_string(flat: str) -> str:
    """``token_string`` of a text already ``flatten``ed (a backend that also stores it flat).

    The same tokens as ``_tokens``, built with numpy over the code points: a Python loop over
    the characters costs more than the rest of indexing a page (tests/test_index.py checks the
    two agree). Each character writes a row of five code points, 0 where nothing goes: itself
    if it is kept (Han or [0-9a-z]); the next character if both are Han (their bigram); a
    space after a Han character or a run's last character; and "| " after a run's last
    character. The rows, read in order without the 0s, are the token string (the last
    " | " cut off). Rows and one mask, not a cumulative sum and scatters: 30% faster."""
    import numpy as np  # here: the search CLI and whoosh never pay for importing it

    points = np.frombuffer(_lower(flat).encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    folded, kinds = _fold_codes()
    space, gap = np.uint32(ord(" ")), np.uint32(ord(RUN_GAP))  # numpy types: a Python int would make int64
    count = len(points)
    kind = np.zeros(count + 1, dtype=np.uint8)  # one more: the character after the last is neither
    kind[:count] = kinds[points]
    this, after = kind[:count], kind[1:]
    han, kept = this == _HAN_KIND, this != 0
    run_end = kept & (after != this)
    codes = folded[points]
    rows = np.zeros((count, 5), dtype=np.uint32)
    np.multiply(codes, kept, out=rows[:, 0])
    np.multiply(codes[1:], (han & ~run_end)[:-1], out=rows[:-1, 1])
    np.multiply(han | run_end, space, out=rows[:, 2])
    np.multiply(run_end, gap, out=rows[:, 3])
    np.multiply(run_end, space, out=rows[:, 4])
    out = rows.ravel()
    return out[out != 0][:-3].tobytes().decode("utf-32-le")


def _is_bigram(token: str) -> bool:
    return len(token) == 2 and is_han(token[0])


def sparse_phrase(tokens: tuple[str, ...] | list[str]) -> list[tuple[int, str]]:
    """A phrase's tokens (``terms``) as (position, token) pairs for an index with ``RUN_GAP``
    between runs, leaving out every other bigram inside a run: fewer terms to look up and
    check, the same matches.

    Why the same: two kept bigrams of a run are one or two positions apart, and two bigrams
    so placed in an indexed text are in one run (a run's last bigram is followed by its
    last character and the gap), so they are the characters of the phrase, in a row.
    Unigrams and alphanumeric tokens, which end a run, are all kept."""
    pairs: list[tuple[int, str]] = []
    position = run_start = 0
    for index, token in enumerate(tokens):
        bigram = _is_bigram(token)
        last_of_run = index + 1 == len(tokens) or not _is_bigram(tokens[index + 1])
        if not bigram or (position - run_start) % 2 == 0 or last_of_run:
            pairs.append((position, token))
        position += 1
        if not bigram:  # a run ends here: the gap, and the next run starts
            position += 1
            run_start = position
    return pairs


HAN_RANGES = tuple((int(low, 16), int(high, 16)) for low, high in re.findall(r"\\u(\w{4})-\\u(\w{4})", HAN))
_HAN_KIND, _WORD_KIND = 1, 2


@cache
def _fold_codes() -> tuple[numpy.ndarray, numpy.ndarray]:
    """Two arrays over every code point: its traditional -> simplified fold (``_t2s_table``),
    and what the folded character is to ``_RUN``: Han (_HAN_KIND), [0-9a-z] (_WORD_KIND) or 0."""
    import numpy as np

    folded = np.arange(0x110000, dtype=np.uint32)
    folds = _t2s_table()
    folded[list(folds)] = [ord(simplified) for simplified in folds.values()]
    kind_of = np.zeros(0x110000, dtype=np.uint8)
    for low, high in HAN_RANGES:
        kind_of[low : high + 1] = _HAN_KIND
    kind_of[ord("0") : ord("9") + 1] = _WORD_KIND
    kind_of[ord("a") : ord("z") + 1] = _WORD_KIND
    return folded, kind_of[folded]


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


def __getattr__(name: str) -> type:
    """``CjkTokenizer``, whoosh's tokenizer, made when first asked for (PEP 562).

    It subclasses whoosh's ``Tokenizer``: defined at the top, it would import whoosh (~100 ms)
    into every command's start-up, as the command line imports this module (through
    index.query). Whoosh pickles the schema, analyzer included, into the index, so the
    class keeps the name ``index.analysis.CjkTokenizer`` that indexes already built hold."""
    if name == "CjkTokenizer":
        return _cjk_tokenizer()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@cache
def _cjk_tokenizer() -> type[Tokenizer]:
    from whoosh.analysis import Token, Tokenizer

    class CjkTokenizer(Tokenizer):
        __qualname__ = "CjkTokenizer"  # pickled by this name, as index.analysis.CjkTokenizer

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

    return CjkTokenizer


def cjk_analyzer() -> Tokenizer:
    return _cjk_tokenizer()()


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


def parties_text(meta: dict, bidders: Iterable[dict] | None = None) -> str:
    """Purchaser, agency, winner and every bidder (the transaction's, from its bid-opening
    record: a losing bidder is a party too) as one text for the ``parties`` field, each
    name once, kept apart by " ; " so no bigram or phrase runs from one name into the
    next (spaces alone would be removed between Han characters)."""
    names = [str(meta[k]) for k in ("purchaser", "agency", "winner") if meta.get(k)]
    names += [str(bid["name"]) for bid in bidders or () if bid.get("name")]
    return " ; ".join(dict.fromkeys(names))
