"""The query syntax staff expect: space = AND, "..." or “...” = phrase, -word = NOT,
OR between two terms; the words AND and NOT (capitals, as OR) say the same as a space
and a minus sign.

``parse_query`` turns the raw text into a backend-neutral ``ParsedQuery`` (groups
of ``Match``es); each backend compiles that into its own query objects, so the
two backends cannot drift apart on what a query means. ``build_query`` is the
whoosh compilation. ``Filters`` and ``check_filters`` are shared the same way.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, replace
from datetime import date
from typing import TYPE_CHECKING

from archive.errors import QueryError
from archive.records.metadata import DOC_TYPE_ALIASES, DOC_TYPES
from index.analysis import code_terms, flatten, fold, is_han, normalise, terms

if TYPE_CHECKING:
    from whoosh import query as q

# The page text, the parties' names and what staff call the document type (the tantivy
# schema adds these in this order: keep it, field numbers of existing indexes depend on it).
TEXT_FIELDS = ("text", "parties", "doc_type_names")
# Every analysed field a word or phrase is looked for in: the project name was added later.
SEARCH_FIELDS = ("text", "project_name", "parties", "doc_type_names")
# Weight of a match on what staff call the document type, against one in the page text.
DOC_TYPE_NAMES_BOOST = 0.5
# Query-time weights against a match in the page text (1.0): a word in the project's name or
# in a party's name says more about the document than the same word somewhere in its pages.
FIELD_BOOSTS = {"project_name": 3.0, "parties": 3.0}
# A match on the project code is a constant score (not BM25) in both backends. A query that is
# a document's whole project code gives that document's pages CODE_BOOST, more than page text
# scores in practice, so they rank first, above pages that merely mention the code or its
# segments. A query that is one segment (001234, gxzc2023) gives the documents filed under
# such codes CODE_SEGMENT_BOOST, about what a metadata match weighs.
CODE_BOOST = 100.0
CODE_SEGMENT_BOOST = 2.0
SNIPPET_CHARS = 36
_TOKEN = re.compile(r'-?"[^"]*"?|-?“[^”]*”?|\S+')


@dataclass(frozen=True)
class QueryPart:
    text: str
    negated: bool
    phrase: bool


@dataclass(frozen=True)
class Match:
    """One word or phrase as index terms.

    ``tokens``: the analysed tokens to match as a phrase (one token: a term);
    ``prefix``: a single Han character, matched as every token starting with it
    (its bigrams and the run-final unigram); ``code``: the whole project code
    as an exact ``code_terms`` term, or None."""

    text: str
    tokens: tuple[str, ...]
    prefix: bool
    code: str | None

    @property
    def code_boost(self) -> float:
        """The weight of a match on ``code``: whole code (it has segments) or one segment."""
        return CODE_BOOST if self.code and len(code_terms(self.code)) > 1 else CODE_SEGMENT_BOOST


@dataclass(frozen=True)
class ParsedQuery:
    """AND of ``must`` groups (each an OR of matches), minus any ``must_not`` match."""

    must: tuple[tuple[Match, ...], ...]
    must_not: tuple[Match, ...]


@dataclass(frozen=True)
class Filters:
    """Restrictions on the hits. Dates are award dates YYYY-MM-DD (inclusive),
    amounts are yuan (inclusive); ``code`` matches the whole project code or any
    segment; ``party`` matches purchaser, agency, winner or any bidder by substring."""

    transaction_type: str | None = None
    doc_type: str | None = None
    code: str | None = None
    date_from: str | None = None
    date_to: str | None = None
    amount_min: float | None = None
    amount_max: float | None = None
    party: str | None = None
    access: tuple[str, ...] | None = None  # access levels the searching user may see (None: all)


def split_query(raw: str) -> list[QueryPart | str]:
    """Words, phrases and the OR operator, in order."""
    if raw.count('"') % 2 or raw.count("“") != raw.count("”"):
        raise QueryError(f'unbalanced quotes in {raw!r}: close the phrase with a matching " or ”')
    parts: list[QueryPart | str] = []
    negate_next = False
    for token in _TOKEN.findall(raw):
        if token == "OR":
            if parts and parts[-1] == "OR":
                raise QueryError("OR OR: put one term between the ORs, e.g. 中标 OR 成交 OR 合同")
            parts.append("OR")
            continue
        if token in ("AND", "NOT"):  # AND is what a space means; NOT x is -x
            negate_next = negate_next or token == "NOT"
            continue
        minus = token.startswith("-") and len(token) > 1
        body = token[1:] if minus else token
        phrase = body[:1] in ('"', "“")
        text = body.strip('"“”')
        if text.strip():
            parts.append(QueryPart(text, minus or negate_next, phrase))
            negate_next = False
    if negate_next:
        raise QueryError("NOT needs a term after it, e.g. 中标 NOT 废标")
    if not [p for p in parts if isinstance(p, QueryPart)]:
        raise QueryError("empty query: give at least one word, phrase or project code")
    if parts[0] == "OR" or parts[-1] == "OR":
        raise QueryError("OR needs a term on each side, e.g. 中标 OR 成交")
    return parts


def match(text: str, with_code: bool = True) -> Match:
    """One word or phrase as a ``Match``; QueryError when nothing in it is searchable."""
    tokens = terms(text)
    prefix = len(tokens) == 1 and is_han(tokens[0])
    # A phrase of Han bigrams ends with the run's last character as a unigram
    # token; drop it, the final bigram already covers that character.
    if len(tokens) > 1 and len(tokens[-1]) == 1 and is_han(tokens[-1]) and len(tokens[-2]) == 2:
        tokens = tokens[:-1]
    codes = code_terms(text) if with_code else []
    if not tokens and not codes:
        raise QueryError(f"{text!r} has nothing searchable in it (only punctuation?)")
    return Match(text, tuple(tokens), prefix, codes[0] if codes else None)


def parse_query(raw: str) -> ParsedQuery:
    parts = split_query(normalise_quotes(raw))
    groups: list[list[QueryPart]] = [[]]
    expect_or_operand = False
    for part in parts:
        if part == "OR":
            expect_or_operand = True
            continue
        assert isinstance(part, QueryPart)
        if expect_or_operand and groups[-1]:
            groups[-1].append(part)
        else:
            groups.append([part])
        expect_or_operand = False
    must: list[tuple[Match, ...]] = []
    must_not: list[Match] = []
    for group in (g for g in groups if g):
        positives = tuple(match(p.text) for p in group if not p.negated)
        must_not.extend(match(p.text) for p in group if p.negated)
        if positives:
            must.append(positives)
    if not must:
        raise QueryError("a query cannot be only exclusions: add a word to search for, e.g. 中标 -废标")
    return ParsedQuery(tuple(must), tuple(must_not))


# --- filters -------------------------------------------------------------------------------------------------------


def check_date(value: str, option: str = "date") -> str:
    """A date as YYYY-MM-DD (full-width digits allowed); QueryError otherwise."""
    text = unicodedata.normalize("NFKC", value).strip()
    try:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            raise ValueError(text)
        date.fromisoformat(text)
    except ValueError:
        raise QueryError(f"{option} {value!r} is not a date: write YYYY-MM-DD, e.g. 2023-01-31") from None
    return text


def check_doc_type(value: str) -> str:
    text = value.strip().lower()
    text = DOC_TYPE_ALIASES.get(text, text)
    if text not in DOC_TYPES:
        raise QueryError(f"unknown document type {value!r}: use one of {', '.join(DOC_TYPES)}")
    return text


def check_filters(filters: Filters) -> Filters:
    """The filters with dates, document type and amounts checked and normalised;
    QueryError with a clear message for anything that cannot be right."""
    changes: dict[str, object] = {}
    if filters.date_from:
        changes["date_from"] = check_date(filters.date_from, "--from")
    if filters.date_to:
        changes["date_to"] = check_date(filters.date_to, "--to")
    if changes.get("date_from") and changes.get("date_to") and changes["date_from"] > changes["date_to"]:
        raise QueryError(f"--from {filters.date_from} is after --to {filters.date_to}")
    if filters.doc_type:
        changes["doc_type"] = check_doc_type(filters.doc_type)
    if filters.transaction_type:
        changes["transaction_type"] = filters.transaction_type.strip()
    for name in ("amount_min", "amount_max"):
        value = getattr(filters, name)
        if value is not None and (not isinstance(value, int | float) or value != value):
            raise QueryError(f"amount {value!r} is not a number of yuan, e.g. 1500000")
    if filters.amount_min is not None and filters.amount_max is not None and filters.amount_min > filters.amount_max:
        raise QueryError(f"--min {filters.amount_min:g} is more than --max {filters.amount_max:g}")
    if filters.code and not code_terms(filters.code):
        raise QueryError(f"project code {filters.code!r} has nothing searchable in it")
    if filters.party:
        match(filters.party, with_code=False)  # raises when nothing searchable
    return replace(filters, **changes) if changes else filters


def code_filter_term(code: str) -> str:
    """The ``code_terms`` term a --code filter matches: the whole code, or one segment."""
    return code_terms(code)[0]


def date_number(value: str | None) -> int | None:
    """YYYY-MM-DD as the integer YYYYMMDD (for numeric range filters), or None."""
    if not value or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        return None
    return int(value.replace("-", ""))


# --- whoosh compilation --------------------------------------------------------------------------------------------
# whoosh is imported in these functions, not at the top: every command imports this module (index.Filters),
# and its start-up would pay ~100 ms for whoosh; the tantivy backend never needs it.


def field_query(field: str, m: Match, boost: float = 1.0) -> q.Query | None:
    """A match within one analysed text field, as a whoosh query."""
    from whoosh import query as q

    if not m.tokens:
        return None
    if m.prefix:
        return q.Prefix(field, m.tokens[0], boost=boost)  # a single character: bigrams starting with it
    if len(m.tokens) == 1:
        return q.Term(field, m.tokens[0], boost=boost)
    return q.Phrase(field, list(m.tokens), boost=boost)


def whoosh_match(m: Match, fields: tuple[str, ...] = SEARCH_FIELDS) -> q.Query:
    """``fields``: the analysed fields the index has (one built before a field existed lacks it).
    (doc_type_names carries its weight in the whoosh schema, as a field boost.)"""
    from whoosh import query as q

    options = [query for field in fields if (query := field_query(field, m, FIELD_BOOSTS.get(field, 1.0))) is not None]
    if m.code:  # code_terms is a KEYWORD field, unscored: a match weighs its boost
        options.append(q.Term("code_terms", m.code, boost=m.code_boost))
    return options[0] if len(options) == 1 else q.Or(options)


def term_query(text: str) -> q.Query:
    """One word or phrase: its tokens as a phrase in the page text, or an exact
    project-code match."""
    return whoosh_match(match(text))


def build_query(raw: str, fields: tuple[str, ...] = SEARCH_FIELDS) -> tuple[q.Query, q.Query | None]:
    """(what a page must match, what it must not: None when the query excludes nothing).

    Exclusions are for the searcher's ``mask``, not an ``AndNot`` query: whoosh-reloaded
    2.7.5's AndNot matcher keeps an excluded page when it is the first match of a segment
    whose first excluded page comes before it (so ``中标 -废标`` found a page with 废标)."""
    from whoosh import query as q

    parsed = parse_query(raw)
    must = [
        whoosh_match(g[0], fields) if len(g) == 1 else q.Or([whoosh_match(m, fields) for m in g]) for g in parsed.must
    ]
    result: q.Query = must[0] if len(must) == 1 else q.And(must)
    excluded = q.Or([whoosh_match(m, fields) for m in parsed.must_not]) if parsed.must_not else None
    return result, excluded


# --- hits ----------------------------------------------------------------------------------------------------------


def normalise_quotes(raw: str) -> str:
    return raw.replace("＂", '"')


def highlight_terms(raw: str) -> list[str]:
    """What the snippet should mark: each positive word or phrase, normalised."""
    try:
        parts = split_query(normalise_quotes(raw))
    except QueryError:
        return []
    return [normalise(p.text) for p in parts if isinstance(p, QueryPart) and not p.negated]


def flat_text(text: str) -> str:
    """The page text as snippets show it: NFKC, no spaces between Han, one line.
    Idempotent, so a backend may store it ready-made."""
    return flatten(text).replace("\n", " ")


def page_hit(
    document: str,
    source: str,
    page: int,
    project_code: str,
    doc_type: str,
    score: float,
    text: str,
    marks: list[str],
    is_flat: bool = False,
) -> dict:
    """One search hit in the contract's shape (docs/contracts.md), whichever backend found it;
    ``is_flat``: ``text`` is already ``flat_text`` (stored so by the backend)."""
    return {
        "document": document,
        "source": source,
        "page": page,
        "project_code": project_code or None,
        "doc_type": doc_type or None,
        "score": round(float(score), 4),
        "snippet": snippet(text, marks, is_flat),
    }


def snippet(text: str, marks: list[str], is_flat: bool = False) -> str:
    """A short window of the page around the first match, matches in 【】 (the text as OCR'd;
    marks are found in it folded as the index folds it: case, traditional characters).
    ``is_flat``: ``text`` is already ``flat_text`` (it is idempotent; this only saves the time)."""
    flat = text if is_flat else flat_text(text)
    folded = fold(flat)  # same length as flat
    first = min((i for m in marks if m and (i := folded.find(m)) >= 0), default=0)
    start = max(0, first - SNIPPET_CHARS // 2)
    end = start + SNIPPET_CHARS * 2
    window = flat[start:end]
    pattern = "|".join(re.escape(m) for m in sorted(set(marks), key=len, reverse=True) if m)
    if pattern:
        parts, last = [], 0
        for found in re.finditer(pattern, folded[start:end]):
            parts += [window[last : found.start()], "【", window[found.start() : found.end()], "】"]
            last = found.end()
        window = "".join(parts) + window[last:]
    return ("…" if start else "") + window + ("…" if end < len(flat) else "")


def is_mark(text: str, marks: list[str]) -> bool:
    """Whether ``text`` (what a snippet put in 【】) is one of ``marks`` (``highlight_terms``)."""
    return fold(text) in set(marks)
