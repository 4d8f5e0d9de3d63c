"""Reading the archive back out, page by page, in the export contract's shape
(docs/contracts.md). ``export`` and the indexer both read through here."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from archive.errors import NotFound
from archive.records.arrangement import Arrangement
from archive.records.corrections import bidders_as_corrected, latest_metadata, latest_page_texts
from archive.records.document import DocumentRecord
from archive.records.metadata import DESCRIPTION, FIELDS
from archive.records.transaction import bidders_of
from archive.storage.access import access_level
from archive.storage.audit import record_use, user_levels
from archive.storage.store import Archive, read_archived


def document_record(package: Path, records: dict[Path, dict | None] | None = None) -> DocumentRecord:
    """The document's record, with its transaction's merged metadata where the document
    is filed (the award notice's date and amount belong to the contract too).
    ``records``: transaction records already read, by folder (a pass over many documents
    reads each once)."""
    document = DocumentRecord.load(package)
    records = {} if records is None else records
    if package.parent not in records:
        if len(records) >= 4096:  # bounded: an archive of 100,000 transactions streams in constant memory
            records.clear()
        transaction = package.parent / "transaction.json"
        records[package.parent] = read_archived(transaction) if transaction.exists() else None
    if (record := records[package.parent]) is not None:
        merged, own, source = record["metadata"], document.metadata, record.get("provenance", {})
        document.metadata = {  # a field an archivist cleared stays cleared for the whole transaction
            name: merged.get(name) if merged.get(name) is not None or str(source.get(name)).startswith("correction:")
            else own.get(name) for name in FIELDS
        }  # fmt: skip
    return document


@dataclass(frozen=True)
class ExportedDocument:
    """A document as export and the index see it: archivists' corrections applied."""

    package: Path
    record: DocumentRecord  # with its transaction's metadata (``document_record``)
    metadata: dict
    doc_type: str
    access: str
    # archival_code, retention and the description (title, responsible, doc_date, doc_number): all
    # None until the document is filed and arranged; an archivist's corrections of the description win
    archival: dict
    # the transaction's bidders ({"name", "price"}, from its bid-opening record), on every document
    # filed under it; an unfiled document's own (a record written before records kept them: the document's)
    bidders: list[dict]


ARCHIVAL_KEYS = ("archival_code", "retention", *DESCRIPTION)


def archival_description(record: DocumentRecord, corrected: dict) -> dict:
    """A document's 档号, 保管期限 and description as export and the catalogue show them."""
    arranged = Arrangement.of(record)
    if arranged is None:
        return dict.fromkeys(ARCHIVAL_KEYS)
    described = record.description or {}
    return {"archival_code": arranged.archival_code, "retention": arranged.retention,
            **{name: corrected.get(name, described.get(name)) for name in DESCRIPTION}}  # fmt: skip


def iter_documents(
    archive: Archive,
    documents: Iterator[Path] | None = None,
    visible: tuple[str, ...] | None = None,
    in_source_order: bool = True,
) -> Iterator[ExportedDocument]:
    """Every document, in source order unless ``in_source_order`` is False (sorting reads
    every document.json once more); ``visible``: only documents of these access levels."""
    packages = documents if documents is not None else archive.documents()
    records: dict[Path, dict | None] = {}
    for package in sorted(packages, key=_source_order) if in_source_order else packages:
        document = document_record(package, records)
        corrected = latest_metadata(archive, document.document)  # an archivist's fixes win
        if records.get(package.parent) is not None:
            # Filed: the transaction's record holds the corrections of all its documents, the latest
            # winning, and its code is the folder's (not an older correction of this document's).
            metadata = {name: document.metadata.get(name) for name in FIELDS}
        else:
            metadata = {name: corrected.get(name, document.metadata.get(name)) for name in FIELDS}
        doc_type = corrected.get("doc_type", document.doc_type)
        level = access_level(doc_type, document.manifest_row, corrected)
        bidders = bidders_of(records.get(package.parent)) or bidders_as_corrected(archive, document)
        if visible is None or level in visible:
            yield ExportedDocument(package, document, metadata, doc_type, level,
                                   archival_description(document, corrected), bidders)  # fmt: skip


def iter_pages(
    archive: Archive, documents: Iterator[Path] | None = None, visible: tuple[str, ...] | None = None
) -> Iterator[dict]:
    """Every page in export shape; ``visible``: only documents of these access levels."""
    for exported in iter_documents(archive, documents, visible):
        document = exported.record
        corrected_texts = latest_page_texts(archive, document.document)
        ocr = f"{exported.package}/data/ocr"  # a string: joining Paths three times a page was a fifth of reading it
        for number in range(1, document.pages + 1):
            page = read_archived(f"{ocr}/{number:04d}.json")
            text = corrected_texts.get(number)
            yield {
                "document": document.document,
                "source": document.source,
                "source_sha256": document.source_sha256,
                "page": number,
                "text": page["text"] if text is None else text,
                "orientation": page["orientation"],
                "blank": page["blank"],
                "confidence": page["confidence"],
                "tables": page.get("tables", []),  # pages archived before tables were read have none
                "bidders": exported.bidders,  # the transaction's: searched with --party
                "doc_type": exported.doc_type,
                "metadata": exported.metadata,
                **exported.archival,
                "access": exported.access,
            }


def visible_document(archive: Archive, document: str) -> ExportedDocument | None:
    """A document as this OS user may see it: None where it does not exist or the
    user's roles do not reach its access level (one answer for both, so that a
    hidden document cannot be told from a missing one)."""
    package = archive.find_document(document)
    if package is None:
        return None
    return next(iter_documents(archive, iter([package]), user_levels(archive)[1]), None)


def show_pages(archive: Archive, document: str, page: int | None = None) -> tuple[Path, list[dict]]:
    """(package, pages) of a document (only ``page`` when given) as this OS user may
    see them, logged as use before they are shown."""
    _user, visible = user_levels(archive)
    package = archive.find_document(document)
    pages = [p for p in iter_pages(archive, iter([package]), visible) if page in (None, p["page"])] if package else []
    record_use(archive, "show", len(pages), document=document, page=page)
    if not pages or package is None:  # the same answer whether it does not exist or the user may not see it
        raise NotFound(f"no document {document}" + (f" page {page}" if page is not None else ""))
    return package, pages


def render_shown(package: Path, pages: list[dict]) -> str:
    """What ``show`` prints: the document, its access PDF, its metadata, each page's text."""
    first = pages[0]
    metadata = json.dumps(first["metadata"], ensure_ascii=False, indent=2)
    lines = [f"{first['source']}  ({first['doc_type']}, {first['access']})",
             f"access PDF: {package / 'data' / 'access.pdf'}", metadata]  # fmt: skip
    lines += [f"--- page {p['page']}{' (blank)' if p['blank'] else ''} ---\n{p['text']}" for p in pages]
    return "\n".join(lines)


def export_pages(archive: Archive, fmt: str = "jsonl") -> tuple[tuple[int, int], Iterator[dict]]:
    """((pages, documents), the pages) this OS user may export, the use logged before
    any page is read (counted first, so that the record says how many)."""
    _user, visible = user_levels(archive)
    totals = page_totals(archive, visible)
    record_use(archive, "export", totals[0], format=fmt)
    return totals, iter_pages(archive, visible=visible)


def page_totals(archive: Archive, visible: tuple[str, ...] | None = None) -> tuple[int, int]:
    """(pages, documents) that ``iter_pages(archive, visible=visible)`` yields, without reading a page."""
    pages = [exported.record.pages for exported in iter_documents(archive, visible=visible, in_source_order=False)]
    return sum(pages), len(pages)


def tapped(pages: Iterable[dict], on_page: Callable[[dict], None] | None) -> Iterable[dict]:
    """``pages``, calling ``on_page`` with each as it goes by (progress of a pass over the archive)."""
    if on_page is None:
        return pages
    return (_tap(page, on_page) for page in pages)


def _tap(page: dict, on_page: Callable[[dict], None]) -> dict:
    on_page(page)
    return page


def _source_order(package: Path) -> tuple[str, str]:
    return (DocumentRecord.load(package).source, package.name)
