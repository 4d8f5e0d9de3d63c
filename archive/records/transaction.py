"""A transaction's record, ``transactions/<code>/transaction.json``: the metadata of
the transaction merged from the documents filed under it (the award notice's
amount and date belong to the contract too; export and the index read it).

The record is derived, never edited: it is written afresh from the packages in
the folder and the archivists' corrections whenever either changes (a document
is filed there or moved away, a field is corrected), so it cannot keep a value
from a document that has left. ``verify`` compares it with a fresh merge and
``reindex`` rewrites every record.

Which document's value wins a field: an archivist's correction, then the
platform manifest, then text read from the document most likely to state the
fact (the award notice over the contract over the bid opening); among equals,
the document filed first.

The bidders (name and price per bidder, read from bid-opening tables) are the
transaction's too: the record's ``bidders`` are those of its bid-opening record
(a document of another type whose tables listed bidders where there is none;
among equals the first filed), ``provenance["bidders"]`` names it. A record
whose documents list no bidder has no ``bidders`` key at all, as records written
before they were kept: such a record still matches a fresh merge. A record an
older version wrote for a transaction whose documents list bidders is taken as it
is, not as damaged (``reindex`` adds them). An archivist's correction of a
document's bidders (``records.corrections.correct_bidders``) replaces its list, and
the provenance then says ``correction:<document>``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from archive.errors import ArchiveError
from archive.records.corrections import bidders_as_corrected, latest_metadata
from archive.records.document import DocumentRecord
from archive.records.metadata import FIELDS, TEXT_PRIORITY
from archive.storage.events import read_events
from archive.storage.fixity import atomic_write_bytes, atomic_write_json, fsync_dir
from archive.storage.store import Archive, code_key, read_json

RECORD = "transaction.json"
STALE_INDEX = ".index-stale"  # journal: documents to reindex (note_stale_index)
INDEXED = ("metadata", "bidders")  # what the index takes from the record: a change reindexes its documents
BID_OPENING = "bid_opening"


def refresh_transaction(archive: Archive, project_code: str | None) -> list[str]:
    """Write ``project_code``'s record afresh (``refresh_folder``). Unfiled documents have none."""
    if not project_code:
        return []
    folder = archive.transaction_dir(project_code)
    # The code the transaction already has beats the form typed now (ＧＸＣＱ… for GXCQ…).
    return refresh_folder(archive, folder, code_of_folder(archive, folder) or project_code)


def refresh_folder(archive: Archive, folder: Path, project_code: str | None = None) -> list[str]:
    """Write the record of the transaction in ``folder`` afresh from the documents now in
    it; return their ids where its merged metadata changed (their index entries carry it),
    else none. A folder left with no document is removed with its record. ``project_code``:
    the folder's, where the caller knows it; else it is read from the folder (a folder
    whose code cannot be told is left for ``verify`` to report)."""
    code = project_code or code_of_folder(archive, folder)
    if code is None:
        return []
    with _records_lock(archive):  # documents of one transaction may be filed at once
        documents = _documents_in(archive, folder)
        if not documents:
            _remove_empty(folder)
            return []
        previous = _previous(folder)
        record = _merged_as_filed(code, documents, previous)
        if record == previous:
            return []
        changed = previous is None or any(record.get(key) != previous.get(key) for key in INDEXED)
        stale = [document.document for document, _ in documents] if changed else []
        note_stale_index(archive, stale)  # before the record: a stop between them loses no reindex
        atomic_write_json(folder / RECORD, record)
    return stale


def note_stale_index(archive: Archive, documents: Iterable[str]) -> None:
    """Journal documents whose index entries no longer match the archive (their merged
    metadata changed); ``index.update`` and ``index.refresh`` reindex them and clear the
    journal. So a stop or a full disk between a change and its reindex is healed by the
    next command that writes the index, not left for a full ``reindex`` to find."""
    lines = "".join(f"{document}\n" for document in documents)
    if lines:
        with open(archive.root / STALE_INDEX, "a", encoding="utf-8") as journal:
            journal.write(lines)
            journal.flush()
            os.fsync(journal.fileno())


def stale_index(archive: Archive) -> set[str]:
    """The documents the journal names (see ``note_stale_index``)."""
    try:
        return set((archive.root / STALE_INDEX).read_text(encoding="utf-8").split())
    except FileNotFoundError:
        return set()


def clear_stale_index(archive: Archive, documents: set[str]) -> None:
    """Forget these documents once reindexed (the index writer holds the archive's writer lock)."""
    left = stale_index(archive) - documents
    if left:
        atomic_write_bytes(archive.root / STALE_INDEX, "".join(f"{d}\n" for d in sorted(left)).encode())
    else:
        (archive.root / STALE_INDEX).unlink(missing_ok=True)


def refresh_all_transactions(archive: Archive) -> int:
    """Rewrite every transaction's record (``reindex``); return how many there are."""
    folders = [f for f in sorted((archive.root / "transactions").glob("*")) if f.is_dir()]
    for folder in folders:
        refresh_folder(archive, folder)
    return len(folders)


def stale_records(archive: Archive) -> Iterator[tuple[Path, str]]:
    """(record path, what is wrong) for each transaction whose record does not match a
    fresh merge of its documents (``verify``)."""
    for folder in sorted((archive.root / "transactions").glob("*")):
        if not folder.is_dir():
            continue
        try:
            documents = _documents_in(archive, folder)
        except ArchiveError:
            continue  # a damaged document.json or correction: the bag and correction checks name it
        path = folder / RECORD
        if not documents:
            continue  # an empty folder holds nothing to describe; verify's other checks see strays
        code = code_of_folder(archive, folder)
        if code is None:
            yield path, "the folder's project code cannot be told: file its documents again with `trade-archive file`"
            continue
        previous = _previous(folder)
        if previous is None:
            yield path, "missing or unreadable"
        elif previous != (fresh := _merged_as_filed(code, documents, previous)) and not _before_bidders(
            previous, fresh
        ):
            yield path, "does not match its documents"


def _before_bidders(previous: dict, fresh: dict) -> bool:
    """Whether a record is as a version before records kept the bidders wrote it, and right in
    all else: not damaged (export and the index take the bid-opening record's own bidders
    meanwhile), and ``reindex`` adds them."""
    return "bidders" not in previous and previous == _without_bidders(fresh)


def _without_bidders(record: dict) -> dict:
    provenance = {name: source for name, source in record["provenance"].items() if name != "bidders"}
    return {**{key: value for key, value in record.items() if key != "bidders"}, "provenance": provenance}


def merged_record(project_code: str, documents: list[tuple[DocumentRecord, dict]], filed: Sequence[str] = ()) -> dict:
    """The record of a transaction from its documents: (document.json, its corrections).
    ``filed``: the documents in the order they were filed, as the record had them (a batch
    files several in one second, so ingestion times tie); others follow, by time."""
    position = {document: number for number, document in enumerate(filed)}

    def order(pair: tuple[DocumentRecord, dict]) -> tuple[int, str, str]:
        document = pair[0]
        return (
            position.get(document.document, len(position)),
            document.process.get("time") or "",
            document.document,
        )

    ordered = sorted(documents, key=order)
    metadata: dict[str, object] = dict.fromkeys(FIELDS)
    provenance: dict[str, str | None] = dict.fromkeys(FIELDS)
    best: dict[str, tuple[int, float]] = {}
    for document, corrected in ordered:
        for name, value, source, rank in _readings(document, corrected, project_code):
            if name == "project_code" and code_key(str(value)) != code_key(project_code):
                continue  # the folder decides the code; only a document stating that code is its source
            if name not in best or rank < best[name]:  # strictly better: among equals the first filed stays
                best[name] = rank
                metadata[name], provenance[name] = value, f"{source}:{document.document}"
    metadata["project_code"] = project_code
    provenance["project_code"] = provenance["project_code"] or "filing"  # filed by hand or by project name
    record: dict = {"project_code": project_code, "metadata": metadata}
    if listed := _bidding_record(ordered):
        record["bidders"] = list(listed.bidders or [])
        provenance["bidders"] = f"{listed.provenance.get('bidders', 'table')}:{listed.document}"
    record["provenance"] = provenance
    record["documents"] = [
        {"document": d.document, "source": d.source, "doc_type": c.get("doc_type") or d.doc_type} for d, c in ordered
    ]
    return record


def _bidding_record(ordered: list[tuple[DocumentRecord, dict]]) -> DocumentRecord | None:
    """The document whose bidders the transaction takes: the first filed bid-opening record
    (its type as corrected) that lists any, else the first filed document that does (a
    record filed under another type); None where no document lists a bidder."""
    listing = [(document, corrected) for document, corrected in ordered if document.bidders]
    if not listing:
        return None
    # min() keeps the first of equals: the filing order decides between two bid-opening records
    return min(listing, key=lambda pair: (pair[1].get("doc_type") or pair[0].doc_type) != BID_OPENING)[0]


def bidders_of(record: dict | None) -> list[dict]:
    """The bidders a transaction record holds, as ``{"name", "price"}`` (price in yuan, or
    None): [] where it has none, or was written before records kept them."""
    return [dict(bid) for bid in (record or {}).get("bidders") or []]


def _merged_as_filed(project_code: str, documents: list[tuple[DocumentRecord, dict]], previous: dict | None) -> dict:
    """``merged_record``, in the filing order the record on disk (``previous``) keeps."""
    return merged_record(project_code, documents, [d["document"] for d in (previous or {}).get("documents", [])])


def _readings(
    document: DocumentRecord, corrected: dict, project_code: str
) -> Iterator[tuple[str, object, str | None, tuple[int, float]]]:
    """(field, value, source, rank) for each field a document gives a value; a lower rank
    wins. An archivist's correction outranks everything, the latest across the transaction
    first, and one that clears a field clears it for the transaction. A manifest row that
    names another transaction (the document was filed here by hand) describes that one:
    its values count as no more than text read from the document."""
    doc_type = corrected.get("doc_type") or document.doc_type
    own_code = document.metadata.get("project_code")
    row_is_about_here = own_code is None or code_key(own_code) == code_key(project_code)
    times = getattr(corrected, "times", {})
    for name in FIELDS:
        if name in corrected:
            yield name, corrected[name], "correction", (0, -times.get(name, 0.0))
            continue
        value, source = document.metadata.get(name), document.provenance.get(name)
        if value is None:
            continue
        if source == "manifest" and row_is_about_here:
            rank = (1, 0.0)
        else:
            rank = (2, float(TEXT_PRIORITY.get(doc_type, len(TEXT_PRIORITY))))
        yield name, value, source, rank


def _documents_in(archive: Archive, folder: Path) -> list[tuple[DocumentRecord, dict]]:
    packages = sorted(bag.parent for bag in folder.glob("*/bagit.txt"))
    documents = [DocumentRecord.load(package) for package in packages]
    return [(_with_corrected_bidders(archive, document), latest_metadata(archive, document.document))
            for document in documents]  # fmt: skip


def _with_corrected_bidders(archive: Archive, document: DocumentRecord) -> DocumentRecord:
    """The document as the transaction sees it: its bidders as an archivist corrected them."""
    bidders = bidders_as_corrected(archive, document)
    if bidders == (document.bidders or []):
        return document
    return dataclasses.replace(document, bidders=bidders, provenance={**document.provenance, "bidders": "correction"})


def code_of_folder(archive: Archive, folder: Path) -> str | None:
    """A transaction folder's project code: the first of its record's code, its documents'
    codes (corrected, then as read), its name, and the codes it was filed under by hand
    (the event log) that names this very folder (a folder name is the code made safe for
    a file name, with a hash where that changed it). None where none does."""

    def first_naming_it(codes: Iterable[str | None]) -> str | None:
        return next((code for code in codes if code and archive.transaction_dir(code) == folder), None)

    if code := first_naming_it(_candidate_codes(archive, folder)):
        return code
    # Filed by hand under a code no document states, and the record is gone: the log says.
    here = {bag.parent.name for bag in folder.glob("*/bagit.txt")}
    filed = [event.get("project_code") for event in read_events(archive.events_path)
             if event.get("type") == "filing" and event.get("document") in here]  # fmt: skip
    return first_naming_it(reversed(filed))


def _candidate_codes(archive: Archive, folder: Path) -> Iterator[str]:
    """The codes ``code_of_folder`` tries, in its order, read only as far as they are needed
    (the record settles it nearly always, without reading every document)."""
    if (record := _previous(folder)) is not None:
        yield record.get("project_code") or ""
    for bag in sorted(folder.glob("*/bagit.txt")):
        with contextlib.suppress(ArchiveError, KeyError, TypeError):
            document = DocumentRecord.load(bag.parent)
            yield latest_metadata(archive, document.document).get("project_code") or ""
            yield document.metadata.get("project_code") or ""
    yield folder.name


def transaction_metadata(folder: Path) -> dict:
    """The merged metadata the record in ``folder`` holds ({} where there is none)."""
    return dict((_previous(folder) or {}).get("metadata") or {})


def _previous(folder: Path) -> dict | None:
    """The record as it is on disk, or None where it is missing or unreadable."""
    try:
        record = read_json(folder / RECORD)
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def _remove_empty(folder: Path) -> None:
    """A transaction whose last document moved away: its record goes, and the folder
    too when nothing else is in it (a stray file stays, for verify to report)."""
    (folder / RECORD).unlink(missing_ok=True)
    try:
        folder.rmdir()
    except OSError:
        return
    fsync_dir(folder.parent)


@contextlib.contextmanager
def _records_lock(archive: Archive) -> Iterator[None]:
    """Serialises record writes across threads and processes (an ingest files the
    documents of one transaction at once)."""
    with open(archive.root / ".transactions.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield
