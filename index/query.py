"""The query syntax staff expect, parsed into whoosh queries:
space = AND, "..." or “...” = phrase, -word = NOT, OR between two terms."""

from __future__ import annotations

import re
from dataclasses import dataclass

from whoosh import query as q

from archive.errors import QueryError
from index.analysis import code_terms, is_han, normalise, terms

# The page text, the parties' names and what staff call the document type.
TEXT_FIELDS = ("text", "parties", "doc_type_names")
_TOKEN = re.compile(r'-?"[^"]*"?|-?“[^”]*”?|\S+')


@dataclass(frozen=True)
class QueryPart:
    text: str
    negated: bool
    phrase: bool


def split_query(raw: str) -> list[QueryPart | str]:
    """Words, phrases and the OR operator, in order."""
    if raw.count('"') % 2 or raw.count("“") != raw.count("”"):
        raise QueryError(f'unbalanced quotes in {raw!r}: close the phrase with a matching " or ”')
    parts: list[QueryPart | str] = []
    for token in _TOKEN.findall(raw):
        if token == "OR":
            parts.append("OR")
            continue
        negated = token.startswith("-") and len(token) > 1
        body = token[1:] if negated else token
        phrase = body[:1] in ('"', "“")
        text = body.strip('"“”')
        if text.strip():
            parts.append(QueryPart(text, negated, phrase))
    if not [p for p in parts if isinstance(p, QueryPart)]:
        raise QueryError("empty query: give at least one word, phrase or project code")
    if parts[0] == "OR" or parts[-1] == "OR":
        raise QueryError("OR needs a term on each side, e.g. 中标 OR 成交")
    return parts


def term_query(text: str) -> q.Query:
    """One word or phrase: its tokens as a phrase in the page text, or an exact
    project-code match."""
    tokens = terms(text)
    options: list[q.Query] = []
    for field in TEXT_FIELDS:
        if len(tokens) == 1 and is_han(tokens[0]):
            options.append(q.Prefix(field, tokens[0]))  # a single character: bigrams starting with it
        elif len(tokens) == 1:
            options.append(q.Term(field, tokens[0]))
        elif tokens:
            options.append(_phrase(field, tokens))
    codes = code_terms(text)
    if codes:
        options.append(q.Term("code_terms", codes[0]))
    if not options:
        raise QueryError(f"{text!r} has nothing searchable in it (only punctuation?)")
    return options[0] if len(options) == 1 else q.Or(options)


def _phrase(field: str, tokens: list[str]) -> q.Query:
    # A phrase of Han bigrams ends with the run's last character as a unigram
    # token; drop it, the final bigram already covers that character.
    if len(tokens) > 1 and len(tokens[-1]) == 1 and is_han(tokens[-1]) and len(tokens[-2]) == 2:
        tokens = tokens[:-1]
    return q.Term(field, tokens[0]) if len(tokens) == 1 else q.Phrase(field, tokens)


def build_query(raw: str) -> q.Query:
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
    must: list[q.Query] = []
    must_not: list[q.Query] = []
    for group in (g for g in groups if g):
        positives = [term_query(p.text) for p in group if not p.negated]
        for p in group:
            if p.negated:
                must_not.append(term_query(p.text))
        if positives:
            must.append(positives[0] if len(positives) == 1 else q.Or(positives))
    if not must:
        raise QueryError("a query cannot be only exclusions: add a word to search for, e.g. 中标 -废标")
    result: q.Query = must[0] if len(must) == 1 else q.And(must)
    return q.AndNot(result, q.Or(must_not)) if must_not else result


def normalise_quotes(raw: str) -> str:
    return raw.replace("＂", '"')


def highlight_terms(raw: str) -> list[str]:
    """What the snippet should mark: each positive word or phrase, normalised."""
    try:
        parts = split_query(normalise_quotes(raw))
    except QueryError:
        return []
    return [normalise(p.text) for p in parts if isinstance(p, QueryPart) and not p.negated]
