"""The tantivy backend: one index document per archived page, same functions and
same query semantics as the whoosh backend (index/whoosh_index.py).

Text is analysed here, in Python, by index/analysis.py (CJK bigrams + run-final
unigram, alphanumeric runs, NFKC, spaces between Han removed) and handed to
tantivy as a space-separated token string indexed with its ``whitespace``
tokenizer: one token, one position, so phrase queries see true positions and
both backends index exactly the same terms. Runs are a position apart (a
``RUN_GAP`` filler token between them), which lets a phrase be looked up by
every other bigram (index.analysis.sparse_phrase): half the terms to check on
pages that share boilerplate (measured at 200,000 pages: a 7-character phrase
84 -> 41 ms). The page text is stored as
bytes, already flattened for snippets (index.query.flat_text). Award dates are also indexed as the integer YYYYMMDD
for range filters.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path

import tantivy

from archive.errors import ArchiveError, QueryError
from archive.records.export import iter_pages, tapped
from archive.records.metadata import DOC_TYPE_NAMES
from archive.storage.store import Archive
from index import check_marker, write_marker
from index.analysis import (
    HAN_RANGES,
    RUN_GAP,
    code_terms,
    flat_token_string,
    flatten,
    parties_text,
    sparse_phrase,
    token_string,
)
from index.query import (
    DOC_TYPE_NAMES_BOOST,
    FIELD_BOOSTS,
    SEARCH_FIELDS,
    TEXT_FIELDS,
    Filters,
    Match,
    check_filters,
    code_filter_term,
    date_number,
    highlight_terms,
    match,
    page_hit,
    parse_query,
)

NAME = "tantivy"
WRITER_HEAP = 128_000_000


def schema(later_fields: bool = True) -> tantivy.Schema:
    """``later_fields=False``: the schema as it was before LATER_FIELDS (tests of old indexes)."""
    b = tantivy.SchemaBuilder()
    b.add_text_field("page_id", tokenizer_name="raw", index_option="basic")
    b.add_text_field("document", stored=True, tokenizer_name="raw", index_option="basic")
    b.add_text_field("source", stored=True, tokenizer_name="raw", index_option="basic")
    b.add_integer_field("page", stored=True)
    b.add_text_field("project_code", stored=True, tokenizer_name="raw", index_option="basic")
    b.add_text_field("code_terms", tokenizer_name="whitespace", index_option="basic")
    b.add_text_field("doc_type", stored=True, tokenizer_name="raw", index_option="basic")
    b.add_text_field("access", tokenizer_name="raw", index_option="basic")
    b.add_text_field("transaction_type", tokenizer_name="raw", index_option="basic")
    b.add_text_field("award_date", stored=True, tokenizer_name="raw", index_option="basic")
    b.add_integer_field("award_day", indexed=True, fast=True)
    b.add_float_field("amount", stored=True, indexed=True, fast=True)
    for field in TEXT_FIELDS:  # text, parties, doc_type_names: pre-tokenised, with positions
        b.add_text_field(field, tokenizer_name="whitespace", index_option="position")
    b.add_bytes_field("body", stored=True)  # the page text as OCR'd, for snippets
    if later_fields:  # added later: they go last, so an index built before them keeps its field numbers
        b.add_text_field("project_name", tokenizer_name="whitespace", index_option="position")
        b.add_text_field("part", tokenizer_name="raw", index_option="basic")  # see PARTS
    return b.build()


SCHEMA = schema()
LATER_FIELDS = ("project_name", "part")

# Pages are indexed in runs of PART_RUN, runs alternating between PARTS parts, and a
# search runs one query per part, each on its own thread, and merges their hits. Why:
# tantivy-py searches an index on one thread, and a word on every page of 200,000
# (中标人) took 43 ms there (tantivy releases the GIL, so parts run at once). Runs, not
# a page-by-page hash: pages indexed together sit together in a segment, so each
# thread skips the other part's blocks of postings and positions instead of decoding
# them too. Scores are the same as one query's, since both parts are in one index and
# share its statistics; ties keep tantivy's order (by address), so hits, totals and
# paging are exactly one query's.
PARTS = 2
PART_RUN = 1024


def page_part(sequence: int) -> str:
    """The part of the ``sequence``-th page written to an index."""
    return str(sequence // PART_RUN % PARTS)


def index_fields(folder: Path) -> set[str]:
    """The fields of the index in ``folder`` (one built before a field existed lacks it)."""
    try:
        return {field["name"] for field in json.loads((folder / "meta.json").read_text(encoding="utf-8"))["schema"]}
    except (OSError, ValueError, KeyError, TypeError):
        return set()


# A file in the index folder: its token strings have RUN_GAP between runs. An index
# built before (without it) is written and searched as it was until it is rebuilt.
RUN_GAPS_MARKER = "run-gaps"


def has_run_gaps(folder: Path) -> bool:
    return (folder / RUN_GAPS_MARKER).is_file()


def exists(folder: Path) -> bool:
    """Whether ``folder`` holds a tantivy index."""
    return (folder / "meta.json").is_file()


def _open_or_create(folder: Path) -> tantivy.Index:
    check_marker(folder, NAME)
    if exists(folder):
        ix = tantivy.Index.open(str(folder))
    else:
        folder.mkdir(parents=True, exist_ok=True)
        ix = tantivy.Index(SCHEMA, path=str(folder), reuse=False)
        (folder / RUN_GAPS_MARKER).write_text("runs are a position apart (index.analysis.RUN_GAP)\n")
    write_marker(folder, NAME)
    return ix


@lru_cache(maxsize=4096)
def _metadata_tokens(text: str, gaps: bool = True) -> str:
    """``token_string`` of a metadata value: every page of a document has the same, so it is
    analysed once a document, not once a page."""
    return _gapped(token_string(text), gaps)


def _gapped(tokens: str, gaps: bool) -> str:
    """``tokens`` for an index with run gaps, or without them (one built before them)."""
    return tokens if gaps else tokens.replace(f" {RUN_GAP} ", " ")


@lru_cache(maxsize=4096)
def _code_tokens(code: str | None) -> str:
    return " ".join(code_terms(code))


def _page_document(page: dict, skip: Iterable[str] = (), gaps: bool = True, sequence: int = 0) -> tantivy.Document:
    meta = page["metadata"]
    doc_type = page["doc_type"] or ""
    flat = flatten(page["text"])  # NFKC and Han spaces once, for both the tokens and the stored text
    fields: dict = {
        "page_id": f"{page['document']}:{page['page']}",
        "document": page["document"],
        "source": page["source"],
        "page": int(page["page"]),
        "project_code": meta.get("project_code") or "",
        "code_terms": _code_tokens(meta.get("project_code")),
        "doc_type": doc_type,
        "access": page.get("access", "open"),
        "transaction_type": meta.get("transaction_type") or "",
        "award_date": meta.get("award_date") or "",
        "parties": _metadata_tokens(parties_text(meta, page.get("bidders")), gaps),
        "doc_type_names": _metadata_tokens(DOC_TYPE_NAMES.get(doc_type, ""), gaps),
        "text": _gapped(flat_token_string(flat), gaps),
        "body": flat.replace("\n", " ").encode("utf-8"),  # index.query.flat_text(page["text"])
        "project_name": _metadata_tokens(meta.get("project_name") or "", gaps),
        "part": page_part(sequence),
    }
    for name in skip:  # an index built before the field existed: `trade-archive reindex` adds it
        fields.pop(name, None)
    if (day := date_number(meta.get("award_date"))) is not None:
        fields["award_day"] = day
    if meta.get("amount") is not None:
        fields["amount"] = float(meta["amount"])
    return tantivy.Document.from_dict(fields, SCHEMA)


def _writer(ix: tantivy.Index, folder: Path) -> tantivy.IndexWriter:
    try:
        return ix.writer(heap_size=WRITER_HEAP, num_threads=1)
    except ValueError as error:
        raise ArchiveError(
            f"the index at {folder} is being written by another process (an ingest or reindex?): "
            f"try again when it has finished ({error})"
        ) from error


def _write(ix: tantivy.Index, folder: Path, pages: Iterable[dict], replace: Iterable[str] = ()) -> int:
    count = 0
    have = index_fields(folder)
    skip = [name for name in LATER_FIELDS if name not in have]
    gaps = has_run_gaps(folder)
    writer = _writer(ix, folder)
    ix.reload()
    start = ix.searcher().num_docs  # runs of parts go on from the pages already there
    try:
        for document in replace:  # deletes and adds land in one commit
            writer.delete_documents("document", document)
        for page in pages:
            writer.add_document(_page_document(page, skip, gaps, start + count))
            count += 1
    except BaseException:
        writer.rollback()
        raise
    writer.commit()
    writer.wait_merging_threads()
    return count


def indexed_documents(ix: tantivy.Index) -> set[str]:
    ix.reload()
    return {term for term, _count in ix.searcher().terms_with_prefix("document", "")}


def indexed_document_ids(archive: Archive) -> set[str]:
    return indexed_documents(_open_or_create(archive.index_dir))


def add_pages(archive: Archive, pages: Iterable[dict], replace: Iterable[str] = ()) -> int:
    """Index page dicts in the export shape (archive.records.export.iter_pages); the documents
    in ``replace`` lose their old entries in the same commit."""
    return _write(_open_or_create(archive.index_dir), archive.index_dir, pages, replace=replace)


def rebuild(archive: Archive, on_page: Callable[[dict], None] | None = None) -> int:
    """Build a whole new index from the archive, then swap it in; ``on_page``: called with each page read."""
    fresh = archive.root / "index.new"
    shutil.rmtree(fresh, ignore_errors=True)
    count = _write(_open_or_create(fresh), fresh, tapped(iter_pages(archive), on_page))
    old = archive.root / "index.old"
    shutil.rmtree(old, ignore_errors=True)
    if archive.index_dir.exists():
        archive.index_dir.rename(old)
    fresh.rename(archive.index_dir)
    shutil.rmtree(old, ignore_errors=True)
    return count


# --- queries -------------------------------------------------------------------------------------------------------

Occur = tantivy.Occur
Query = tantivy.Query


def _any(queries: list[tantivy.Query]) -> tantivy.Query:
    return queries[0] if len(queries) == 1 else Query.boolean_query([(Occur.Should, x) for x in queries])


def field_query(field: str, m: Match, gaps: bool = True) -> tantivy.Query | None:
    """A match within one pre-tokenised text field (see index.query.field_query for whoosh);
    ``gaps``: the index has ``RUN_GAP`` between runs."""
    if not m.tokens:
        return None
    if m.prefix:  # a single Han character: itself and every bigram starting with it
        return Query.regex_query(SCHEMA, field, re.escape(m.tokens[0]) + HAN_NEXT)
    if len(m.tokens) == 1:
        return Query.term_query(SCHEMA, field, m.tokens[0])
    return Query.phrase_query(SCHEMA, field, sparse_phrase(m.tokens) if gaps else list(m.tokens))


# What may follow a single Han character in a token: a token that starts with one is that character
# or its bigram with the next Han character (index.analysis), so this matches what ".?" would, but
# compiles to a smaller automaton than any character (0.2 ms against 0.6, in each of four fields).
HAN_NEXT = "[" + "".join(f"{chr(low)}-{chr(high)}" for low, high in HAN_RANGES) + "]?"
BOOSTS = {**FIELD_BOOSTS, "doc_type_names": DOC_TYPE_NAMES_BOOST}


def match_query(
    m: Match, fields: tuple[str, ...] = SEARCH_FIELDS, gaps: bool = True, within: tuple[tantivy.Query, ...] = ()
) -> tantivy.Query:
    """``fields``: the analysed fields the index has (one built before a field existed lacks it).
    ``within``: filters (unscored) each field's match must also pass.

    Why filters go inside: a match is a union over fields, and tantivy's union scores every
    document of each field's match in blocks, whatever a filter beside it would allow; a
    filter next to each field's match lets the phrase be checked only on pages that pass it
    (a word matching every page, with a date filter passing a quarter: 55 -> 29 ms at 200,000 pages)."""
    options = []
    for field in fields:
        query = field_query(field, m, gaps)
        if query is not None and (boost := BOOSTS.get(field, 1.0)) != 1.0:
            query = Query.boost_query(query, boost)
        if query is not None:
            options.append(_within(query, within))
    if m.code:
        code = Query.const_score_query(Query.term_query(SCHEMA, "code_terms", m.code), m.code_boost)
        options.append(_within(code, within))
    return _any(options)


def _within(query: tantivy.Query, filters: tuple[tantivy.Query, ...]) -> tantivy.Query:
    """``query`` restricted to the pages that pass every filter, scored as ``query`` alone."""
    if not filters:
        return query
    return Query.boolean_query([(Occur.Must, query), *((Occur.Must, Query.const_score_query(f, 0.0)) for f in filters)])


def build_query(
    raw: str, fields: tuple[str, ...] = SEARCH_FIELDS, gaps: bool = True, within: tuple[tantivy.Query, ...] = ()
) -> tantivy.Query:
    """The staff query syntax (index.query.parse_query) as a tantivy query; ``within``: filters
    every hit passes (see ``match_query``)."""
    parsed = parse_query(raw)
    clauses = [(Occur.Must, _any([match_query(m, fields, gaps, within) for m in group])) for group in parsed.must]
    clauses += [(Occur.MustNot, match_query(m, fields, gaps)) for m in parsed.must_not]
    return clauses[0][1] if len(clauses) == 1 else Query.boolean_query(clauses)


def filter_queries(filters: Filters, gaps: bool = True) -> list[tantivy.Query]:
    clauses: list[tantivy.Query] = []
    if filters.transaction_type:
        clauses.append(Query.term_query(SCHEMA, "transaction_type", filters.transaction_type))
    if filters.doc_type:
        clauses.append(Query.term_query(SCHEMA, "doc_type", filters.doc_type))
    if filters.code:
        clauses.append(Query.term_query(SCHEMA, "code_terms", code_filter_term(filters.code)))
    if filters.date_from or filters.date_to:
        low, high = date_number(filters.date_from), date_number(filters.date_to)
        clauses.append(Query.range_query(SCHEMA, "award_day", tantivy.FieldType.Integer, low, high))
    if filters.amount_min is not None or filters.amount_max is not None:
        low = float(filters.amount_min) if filters.amount_min is not None else None
        high = float(filters.amount_max) if filters.amount_max is not None else None
        clauses.append(Query.range_query(SCHEMA, "amount", tantivy.FieldType.Float, low, high))
    if filters.party:
        party = field_query("parties", match(filters.party, with_code=False), gaps)
        if party is not None:
            clauses.append(party)
    if filters.access is not None:  # in the query, not after it: counts and limits never see hidden pages
        levels = [Query.term_query(SCHEMA, "access", level) for level in filters.access] or [Query.empty_query()]
        clauses.append(_any(levels))
    return clauses


def search_page(
    archive: Archive, raw_query: str, filters: Filters | None = None, limit: int = 20, offset: int = 0
) -> tuple[list[dict], int]:
    """The hits ranked ``offset`` .. ``offset + limit - 1`` and how many pages match in all."""
    parse_query(raw_query)  # a malformed query is refused even where there is no index yet (built once, below)
    filters = check_filters(filters or Filters())
    check_marker(archive.index_dir, NAME)
    if not exists(archive.index_dir):
        return [], 0
    have, gaps = index_fields(archive.index_dir), has_run_gaps(archive.index_dir)
    fields = tuple(f for f in SEARCH_FIELDS if f in have or f not in LATER_FIELDS)
    # Filters narrow the hits without changing their scores.
    within = tuple(filter_queries(filters, gaps))
    searcher = tantivy.Index.open(str(archive.index_dir)).searcher()
    try:
        ranked, total = ranked_hits(
            searcher, lambda part: build_query(raw_query, fields, gaps, within=within + part), limit, offset,
            parted="part" in have,
        )  # fmt: skip
    except ValueError as error:  # tantivy refused the query: say so, no traceback
        raise QueryError(f"the index could not run {raw_query!r}: {error}") from error
    marks = highlight_terms(raw_query)
    hits = []
    for score, address in ranked:
        doc = searcher.doc(address)
        body = bytes(doc.get_first("body") or b"").decode("utf-8")
        hits.append(page_hit(doc.get_first("document"), doc.get_first("source"), doc.get_first("page"),
                             doc.get_first("project_code"), doc.get_first("doc_type"), score, body, marks,
                             is_flat=True))  # fmt: skip
    return hits, total


Hit = tuple[float, tantivy.DocAddress]


def ranked_hits(
    searcher: tantivy.Searcher,
    query_for: Callable[[tuple[tantivy.Query, ...]], tantivy.Query],
    limit: int,
    offset: int,
    parted: bool = True,
) -> tuple[list[Hit], int]:
    """The hits ranked ``offset`` .. ``offset + limit - 1`` and the total of ``query_for(filters)``;
    ``parted``: the index has the ``part`` field, so search its PARTS parts at once (see PARTS)."""
    if not parted:
        result = searcher.search(query_for(()), limit, count=True, offset=offset)
        return result.hits, int(result.count or 0)
    queries = [query_for((Query.term_query(SCHEMA, "part", str(k)),)) for k in range(PARTS)]
    with ThreadPoolExecutor(PARTS - 1) as pool:  # a thread per search: nothing is left running
        others = [pool.submit(searcher.search, q, offset + limit, True) for q in queries[1:]]
        results = [searcher.search(queries[0], offset + limit, count=True), *(f.result() for f in others)]
    hits = sorted((hit for r in results for hit in r.hits), key=lambda h: (-h[0], h[1].segment_ord, h[1].doc))
    return hits[offset : offset + limit], sum(int(r.count or 0) for r in results)


def search(
    archive: Archive, raw_query: str, filters: Filters | None = None, limit: int = 20, offset: int = 0
) -> list[dict]:
    return search_page(archive, raw_query, filters, limit, offset)[0]
