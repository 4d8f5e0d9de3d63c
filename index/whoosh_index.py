"""The whoosh backend: one index document per archived page.

The index is derived: ``update`` adds the pages of every archived document the
index does not hold yet (so a crash between filing and indexing heals on the
next run), ``rebuild`` builds a fresh index beside the old one and swaps it in.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

from whoosh import index as whoosh_index
from whoosh import query as q
from whoosh.fields import ID, KEYWORD, NUMERIC, STORED, TEXT, Schema

from archive.records.export import iter_pages, tapped
from archive.records.metadata import DOC_TYPE_NAMES
from archive.storage.store import Archive
from index import check_marker, write_marker
from index.analysis import cjk_analyzer, code_terms, parties_text
from index.query import (
    DOC_TYPE_NAMES_BOOST,
    SEARCH_FIELDS,
    SNIPPET_CHARS,  # noqa: F401  (re-exported: older callers import it from here)
    Filters,
    build_query,
    check_filters,
    code_filter_term,
    field_query,
    highlight_terms,
    match,
    page_hit,
    snippet,  # noqa: F401  (re-exported: older callers import it from here)
)

NAME = "whoosh"
LATER_FIELDS = ("project_name",)  # fields added after indexes were built with the schema without them


def schema(later_fields: bool = True) -> Schema:
    """``later_fields=False``: the schema as it was before LATER_FIELDS (tests of old indexes)."""
    analyzer = cjk_analyzer()
    fields = dict(
        page_id=ID(unique=True, stored=True),
        document=ID(stored=True),
        source=STORED,
        page=NUMERIC(int, stored=True),
        project_code=ID(stored=True),
        code_terms=KEYWORD(lowercase=True),
        doc_type=ID(stored=True),
        access=ID(),
        transaction_type=ID(stored=True),
        award_date=ID(stored=True),
        amount=NUMERIC(float, stored=True),
        parties=TEXT(analyzer=analyzer),
        project_name=TEXT(analyzer=analyzer),
        doc_type_names=TEXT(analyzer=analyzer, field_boost=DOC_TYPE_NAMES_BOOST),
        text=TEXT(analyzer=analyzer, stored=True, phrase=True),
    )
    return Schema(**{name: field for name, field in fields.items() if later_fields or name not in LATER_FIELDS})


def exists(folder: Path) -> bool:
    """Whether ``folder`` holds a whoosh index."""
    return whoosh_index.exists_in(str(folder))


def _open_or_create(folder: Path) -> whoosh_index.Index:
    check_marker(folder, NAME)
    if exists(folder):
        ix = whoosh_index.open_dir(str(folder))
        _add_missing_fields(ix)
    else:
        folder.mkdir(parents=True, exist_ok=True)
        ix = whoosh_index.create_in(str(folder), schema())
    write_marker(folder, NAME)
    return ix


def _add_missing_fields(ix: whoosh_index.Index) -> None:
    """An index built before a field existed gets it, so new pages carry it (the pages it
    already holds gain it on `trade-archive reindex`)."""
    have = set(ix.schema.names())
    missing = [(name, field) for name, field in schema().items() if name not in have]
    if missing:
        writer = ix.writer()
        for name, field in missing:
            writer.add_field(name, field)
        writer.commit()


def _page_fields(page: dict) -> dict:
    meta = page["metadata"]
    fields = {
        "page_id": f"{page['document']}:{page['page']}",
        "document": page["document"],
        "source": page["source"],
        "page": page["page"],
        "project_code": meta.get("project_code") or "",
        "code_terms": " ".join(code_terms(meta.get("project_code"))),
        "doc_type": page["doc_type"] or "",
        "access": page.get("access", "open"),
        "transaction_type": meta.get("transaction_type") or "",
        "award_date": meta.get("award_date") or "",
        "parties": parties_text(meta, page.get("bidders")),
        "project_name": meta.get("project_name") or "",
        "doc_type_names": DOC_TYPE_NAMES.get(page["doc_type"] or "", ""),
        "text": page["text"],
    }
    if meta.get("amount") is not None:
        fields["amount"] = float(meta["amount"])
    return fields


# Writer settings, measured on 3,000-5,000 synthetic pages (bench/search_scale.py):
# - limitmb: the posting buffer; the ingest flow must stay well under 2 GB.
# - compound=False: a segment's files stay apart. whoosh reads a compound segment by copying
#   each part into memory whenever the index is opened, a cost that grows with the index:
#   a code query at 5,000 pages took 80 ms with a compound segment, 9 ms without.
WRITER = {"limitmb": 64, "compound": False}


def _parallel_writer() -> dict:
    """For a fresh index: the pages split over two writer processes, each writing its own
    segment (95 against 60 pages/s), when the machine has the cores and this process has no
    other threads (whoosh forks them; forking a threaded process, e.g. a Prefect flow run,
    can deadlock)."""
    if (os.cpu_count() or 1) < 2 or threading.active_count() > 1:
        return {}
    return {"procs": 2, "multisegment": True}


def _write(ix: whoosh_index.Index, pages: Iterable[dict], fresh: bool = False) -> int:
    """``fresh``: ``ix`` is empty, so pages are added without looking for an older entry."""
    count = 0
    skip = [name for name in LATER_FIELDS if name not in ix.schema.names()]
    writer = ix.writer(**WRITER, **(_parallel_writer() if fresh else {}))
    add = writer.add_document if fresh else writer.update_document
    try:
        for page in pages:
            fields = _page_fields(page)
            for name in skip:
                fields.pop(name, None)
            add(**fields)
            count += 1
    except BaseException:
        writer.cancel()
        raise
    writer.commit()
    return count


def indexed_documents(ix: whoosh_index.Index) -> set[str]:
    with ix.searcher() as searcher:
        return {term.decode() if isinstance(term, bytes) else term for term in searcher.lexicon("document")}


def indexed_document_ids(archive: Archive) -> set[str]:
    return indexed_documents(_open_or_create(archive.index_dir))


def optimise(archive: Archive) -> None:
    if exists(archive.index_dir):
        _open_or_create(archive.index_dir).writer(**WRITER).commit(optimize=True)


def add_pages(archive: Archive, pages: Iterable[dict], replace: Iterable[str] = ()) -> int:
    """Index page dicts in the export shape (archive.records.export.iter_pages). Page ids are
    unique, so a re-indexed page (``replace``: its document) takes its old entry's place."""
    return _write(_open_or_create(archive.index_dir), pages)


def rebuild(archive: Archive, on_page: Callable[[dict], None] | None = None) -> int:
    """Build a whole new index from the archive, then swap it in; ``on_page``: called with each page read."""
    fresh = archive.root / "index.new"
    shutil.rmtree(fresh, ignore_errors=True)
    ix = _open_or_create(fresh)
    count = _write(ix, tapped(iter_pages(archive), on_page), fresh=True)
    old = archive.root / "index.old"
    shutil.rmtree(old, ignore_errors=True)
    if archive.index_dir.exists():
        archive.index_dir.rename(old)
    fresh.rename(archive.index_dir)
    shutil.rmtree(old, ignore_errors=True)
    return count


def _filter_query(filters: Filters) -> q.Query | None:
    clauses: list[q.Query] = []
    if filters.transaction_type:
        clauses.append(q.Term("transaction_type", filters.transaction_type))
    if filters.doc_type:
        clauses.append(q.Term("doc_type", filters.doc_type))
    if filters.code:
        clauses.append(q.Term("code_terms", code_filter_term(filters.code)))
    if filters.date_from or filters.date_to:
        clauses.append(q.TermRange("award_date", filters.date_from or "0000", filters.date_to or "9999"))
    if filters.amount_min is not None or filters.amount_max is not None:
        clauses.append(q.NumericRange("amount", filters.amount_min, filters.amount_max))
    if filters.party:
        clauses.append(field_query("parties", match(filters.party, with_code=False)))
    if filters.access is not None:  # in the query, not after it: counts and limits never see hidden pages
        clauses.append(q.Or([q.Term("access", level) for level in filters.access]) if filters.access else q.NullQuery)
    return q.And(clauses) if clauses else None


def search_page(
    archive: Archive, raw_query: str, filters: Filters | None = None, limit: int = 20, offset: int = 0
) -> tuple[list[dict], int]:
    """The hits ranked ``offset`` .. ``offset + limit - 1`` and how many pages match in all."""
    build_query(raw_query)  # a malformed query is refused even where there is no index yet
    filters = check_filters(filters or Filters())
    check_marker(archive.index_dir, NAME)
    if not exists(archive.index_dir):
        return [], 0
    ix = whoosh_index.open_dir(str(archive.index_dir))
    names = set(ix.schema.names())
    query, excluded = build_query(raw_query, tuple(f for f in SEARCH_FIELDS if f in names))
    with ix.searcher() as searcher:
        results = searcher.search(query, limit=offset + limit, filter=_filter_query(filters), mask=excluded)
        # Exact: whoosh runs the query again to count the matches its block skipping passed
        # over. (Scoring every match instead, optimize=False, would count in one pass, ~2x
        # faster, but whoosh-reloaded 2.7.5 then gets OR and NOT wrong over several segments.)
        total = len(results)
        marks = highlight_terms(raw_query)
        hits = [
            page_hit(
                hit["document"],
                hit["source"],
                hit["page"],
                hit.get("project_code"),
                hit.get("doc_type"),
                hit.score,
                hit.get("text", ""),
                marks,
            )  # fmt: skip
            for hit in results[offset : offset + limit]
        ]
    return hits, total


def search(
    archive: Archive, raw_query: str, filters: Filters | None = None, limit: int = 20, offset: int = 0
) -> list[dict]:
    return search_page(archive, raw_query, filters, limit, offset)[0]
