"""The full-text index: derived from the archive, always rebuildable from it.

Two backends behind one seam (docs/contracts.md, domain notes): ``whoosh`` (pure Python, the
default) and ``tantivy`` (Rust; for archives past a few thousand pages).
The archive decides which one it uses: the name is stored in
``ARCHIVE/index/backend`` when its index is built. A new index takes
``$TRADE_ARCHIVE_INDEX`` (whoosh|tantivy), else whoosh; ``rebuild(backend=...)`` switches.

    from index import Filters, rebuild, search, update
    update(archive)                       # index the pages of documents the index lacks
    rebuild(archive)                      # fresh index beside the old one, then swap
    rebuild(archive, backend="tantivy")   # ... and switch the archive to tantivy
    search(archive, "中标 -废标", Filters(doc_type="award_notice"), limit=20)
    hits, total = search_page(archive, "中标", limit=20, offset=20)   # the second 20, of total

The backends are imported only when used, so whoosh-only installs never need tantivy.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from archive.errors import ArchiveError, QueryError
from archive.records.arrangement import arrange_pending
from archive.records.export import iter_pages
from archive.records.transaction import clear_stale_index, refresh_all_transactions, stale_index
from archive.storage.store import Archive
from index.query import Filters

__all__ = [
    "BACKENDS",
    "ENV_BACKEND",
    "Filters",
    "backend_module",
    "backend_name",
    "rebuild",
    "search",
    "search_page",
    "update",
]

BACKENDS = ("whoosh", "tantivy")
DEFAULT_BACKEND = "whoosh"
ENV_BACKEND = "TRADE_ARCHIVE_INDEX"
MARKER = "backend"
MAX_QUERY_WORDS = 200  # a search box query is a few words; past a thousand the parsers recurse too deep


def _checked(name: str, where: str) -> str:
    value = name.strip().lower()
    if value not in BACKENDS:
        raise ArchiveError(f"unknown index backend {name!r} in {where}: use one of {', '.join(BACKENDS)}")
    return value


def read_marker(folder: Path) -> str | None:
    """The backend an index folder was built with: its marker file, else what its files look like."""
    marker = folder / MARKER
    if marker.is_file():
        return _checked(marker.read_text(encoding="utf-8"), str(marker))
    if (folder / "meta.json").is_file():
        return "tantivy"
    if any(folder.glob("_MAIN_*.toc")):
        return "whoosh"  # built before the marker existed
    return None


def write_marker(folder: Path, name: str) -> None:
    marker = folder / MARKER
    if not marker.is_file() or marker.read_text(encoding="utf-8").strip() != name:
        marker.write_text(name + "\n", encoding="utf-8")


def check_marker(folder: Path, name: str) -> None:
    """Refuse to mix backends in one index folder."""
    have = read_marker(folder)
    if have and have != name:
        raise ArchiveError(
            f"the index at {folder} is a {have} index, not {name}: use index.update/search, "
            f"or switch it with `trade-archive reindex --backend {name}`"
        )


def env_backend() -> str | None:
    value = os.environ.get(ENV_BACKEND, "").strip()
    return _checked(value, f"${ENV_BACKEND}") if value else None


def backend_name(archive: Archive, new: str | None = None) -> str:
    """The archive's backend: the one its index was built with; for an archive
    without an index, ``new`` (the configuration's, passed with the work), else
    $TRADE_ARCHIVE_INDEX, else whoosh."""
    chosen = _checked(new, "the index setting") if new else None
    return read_marker(archive.index_dir) or chosen or env_backend() or DEFAULT_BACKEND


def backend_module(name: str) -> ModuleType:
    """The backend module (index.whoosh_index or index.tantivy_index)."""
    name = _checked(name, "the backend argument")
    try:
        return importlib.import_module(f"index.{name}_index")
    except ImportError as error:
        if error.name != name:
            raise
        raise ArchiveError(f"the {name} index backend is not installed ({error}): pip install {name}") from error


def update(archive: Archive, new_backend: str | None = None) -> int:
    """Index the pages of every archived document the index lacks, and reindex those the
    stale-index journal names (their merged metadata changed); return pages written.
    (So a crash between filing and indexing heals on the next run.) ``new_backend``:
    the backend of an index made now (an archive without one)."""
    module = backend_module(backend_name(archive, new_backend))
    have = module.indexed_document_ids(archive)
    return _index_documents(archive, module, lambda document: document not in have, replace=set())


def refresh(archive: Archive, documents: list[str]) -> int:
    """Re-index the pages of these documents (their metadata changed, e.g. filing), and
    of those the stale-index journal names."""
    wanted = set(documents)
    if not wanted and not stale_index(archive):
        return 0
    module = backend_module(backend_name(archive))
    return _index_documents(archive, module, wanted.__contains__, replace=wanted)


def _index_documents(archive: Archive, module: ModuleType, chosen: Callable[[str], bool], replace: set[str]) -> int:
    """Index the pages of the documents ``chosen`` picks and of those the stale-index
    journal names, then clear the journal of them; ``replace``: documents whose old
    entries go (the journal's too). Return the pages written."""
    stale = stale_index(archive)
    packages = [p for p in archive.documents() if chosen(p.name) or p.name in stale]
    pages = module.add_pages(archive, iter_pages(archive, iter(packages)), sorted(replace | stale)) if packages else 0
    clear_stale_index(archive, stale)
    return pages


def optimise(archive: Archive) -> str:
    """Merge index segments (nightly): faster queries on a large whoosh index."""
    name = backend_name(archive)
    module = backend_module(name)
    if hasattr(module, "optimise"):
        module.optimise(archive)
    return name


def rebuild(archive: Archive, backend: str | None = None, on_page: Callable[[dict], None] | None = None) -> int:
    """Rebuild the index from the archive and swap it in; return pages indexed.
    ``backend``: whoosh|tantivy; None = the archive's current backend (for an
    archive without an index: $TRADE_ARCHIVE_INDEX, else whoosh). The environment
    names the backend of a new index only: a configuration file exports it, and a
    plain reindex must not switch an archive's backend behind the admin's back.
    ``on_page``: called with each page as it is read (progress)."""
    name = _checked(backend, "the backend argument") if backend else backend_name(archive)
    stale = stale_index(archive)
    pages = backend_module(name).rebuild(archive, on_page)
    clear_stale_index(archive, stale)  # every page was read afresh
    return pages


def reindex(archive: Archive, backend: str | None = None, on_page: Callable[[dict], None] | None = None) -> int:
    """``reindex``: every transaction's record refreshed from its documents (the records
    feed the index; they are derived too), then the index rebuilt, under the writer
    lock, and logged. Returns pages indexed."""
    with archive.writer_lock():
        refresh_all_transactions(archive)
        arrange_pending(archive)  # documents filed before arrangement (or cut short), in filing order
        pages = rebuild(archive, backend, on_page)
    archive.log("reindex", pages=pages, backend=backend_name(archive))
    return pages


def search(archive: Archive, raw_query: str, filters: Filters | None = None, limit: int = 20) -> list[dict]:
    """Hits with the keys document, source, page, project_code, doc_type, score, snippet."""
    return backend_module(backend_name(archive)).search(archive, raw_query, filters, limit)


def search_page(
    archive: Archive, raw_query: str, filters: Filters | None = None, limit: int = 20, offset: int = 0
) -> tuple[list[dict], int]:
    """One page of hits and the total: the hits ranked ``offset`` .. ``offset + limit - 1``
    (0-based; same keys as ``search``) and how many pages match the query and filters in all,
    so a caller can say how many it did not show."""
    if limit < 1 or offset < 0:
        raise ValueError(f"limit must be at least 1 and offset at least 0 (got limit={limit}, offset={offset})")
    if len(words := raw_query.split()) > MAX_QUERY_WORDS:
        raise QueryError(f"the query has {len(words)} words; at most {MAX_QUERY_WORDS} are searched: "
                         "use fewer words, and filters (--type, --code, --party, dates, amounts)")  # fmt: skip
    backend = backend_module(backend_name(archive))
    try:
        hits, total = backend.search_page(archive, raw_query, filters, limit, offset)
    except RecursionError:  # a query nested past what the parsers recurse through
        raise QueryError("the query is too long or too deeply nested to search; shorten it") from None
    if not total and not backend.exists(archive.index_dir) and next(archive.documents(), None) is not None:
        # "no matching pages" would be a lie: nothing was searched
        raise ArchiveError(f"{archive.root} holds documents but no search index (removed?): "
                           f"run `trade-archive reindex --archive {archive.root}`")  # fmt: skip
    return hits, total
