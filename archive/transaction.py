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
the document ingested first.
"""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterable, Iterator
from pathlib import Path

from archive.errors import ArchiveError
from archive.fixity import atomic_write_json, fsync_dir
from archive.metadata import FIELDS, TEXT_PRIORITY
from archive.review import latest_metadata
from archive.store import Archive, read_archived, read_json

RECORD = "transaction.json"


def refresh_transaction(archive: Archive, project_code: str | None) -> list[str]:
    """Write ``project_code``'s record afresh from the documents now in its folder and
    return their ids (their index entries carry the merged metadata). A folder left
    with no document is removed with its record. Unfiled documents have no record."""
    if not project_code:
        return []
    folder = archive.transaction_dir(project_code)
    with _records_lock(archive):  # documents of one transaction may be filed at once
        documents = _documents_in(archive, folder)
        if not documents:
            _remove_empty(folder)
            return []
        atomic_write_json(folder / RECORD, merged_record(project_code, documents))
    return [document["document"] for document, _ in documents]


def refresh_all_transactions(archive: Archive) -> int:
    """Rewrite every transaction's record (``reindex``); return how many there are."""
    count = 0
    for folder in sorted((archive.root / "transactions").glob("*")):
        if folder.is_dir() and refresh_transaction(archive, code_of_folder(folder)):
            count += 1
    return count


def documents_in_transactions(archive: Archive, folders: Iterable[Path]) -> set[str]:
    """The documents filed in these folders, those of transactions only (not unfiled/)."""
    transactions = archive.root / "transactions"
    return {bag.parent.name for folder in set(folders) if folder.parent == transactions
            for bag in folder.glob("*/bagit.txt")}  # fmt: skip


def stale_records(archive: Archive) -> Iterator[tuple[Path, str]]:
    """(record path, what is wrong) for each transaction whose record does not match a
    fresh merge of its documents (``verify``)."""
    for folder in sorted((archive.root / "transactions").glob("*")):
        if not folder.is_dir():
            continue
        try:
            documents = _documents_in(archive, folder)
        except ArchiveError:
            continue  # a damaged document.json: the bag check names it
        path = folder / RECORD
        if not documents:
            continue  # an empty folder holds nothing to describe; verify's other checks see strays
        if not path.exists():
            yield path, "missing"
            continue
        try:
            current = read_json(path)
        except (OSError, ValueError) as error:
            yield path, f"unreadable ({error})"
            continue
        if current != merged_record(code_of_folder(folder) or "", documents):
            yield path, "does not match its documents"


def merged_record(project_code: str, documents: list[tuple[dict, dict]]) -> dict:
    """The record of a transaction from its documents: (document.json, its corrections)."""
    ordered = sorted(documents, key=lambda pair: (pair[0].get("process", {}).get("time") or "", pair[0]["document"]))
    metadata: dict[str, object] = dict.fromkeys(FIELDS)
    provenance: dict[str, str | None] = dict.fromkeys(FIELDS)
    best: dict[str, tuple[int, int]] = {}
    for document, corrected in ordered:
        for name, value, source, rank in _readings(document, corrected, project_code):
            if name == "project_code" and value != project_code:
                continue  # the folder decides the code; only a document stating that code is its source
            if name not in best or rank < best[name]:  # strictly better: among equals the first ingested stays
                best[name] = rank
                metadata[name], provenance[name] = value, f"{source}:{document['document']}"
    metadata["project_code"] = project_code
    provenance["project_code"] = provenance["project_code"] or "filing"  # filed by hand or by project name
    return {
        "project_code": project_code,
        "metadata": metadata,
        "provenance": provenance,
        "documents": [
            {"document": d["document"], "source": d["source"], "doc_type": c.get("doc_type") or d["doc_type"]}
            for d, c in ordered
        ],
    }


def _readings(
    document: dict, corrected: dict, project_code: str
) -> Iterator[tuple[str, object, str | None, tuple[int, int]]]:
    """(field, value, source, rank) for each field a document gives a value; a lower rank wins.
    A manifest row that names another transaction (the document was filed here by hand)
    describes that one: its values count as no more than text read from the document."""
    doc_type = corrected.get("doc_type") or document["doc_type"]
    own_code = corrected.get("project_code", document["metadata"].get("project_code"))
    row_is_about_here = own_code in (None, project_code)
    for name in FIELDS:
        if name in corrected:  # a correction may clear a field: then this document gives it no value
            value, source = corrected[name], "correction"
        else:
            value, source = document["metadata"].get(name), document.get("provenance", {}).get(name)
        if value is None:
            continue
        if source == "correction":
            rank = (0, 0)
        elif source == "manifest" and row_is_about_here:
            rank = (1, 0)
        else:
            rank = (2, TEXT_PRIORITY.get(doc_type, len(TEXT_PRIORITY)))
        yield name, value, source, rank


def _documents_in(archive: Archive, folder: Path) -> list[tuple[dict, dict]]:
    packages = sorted(bag.parent for bag in folder.glob("*/bagit.txt"))
    documents = [read_archived(package / "data" / "document.json") for package in packages]
    return [(document, latest_metadata(archive, document["document"])) for document in documents]


def code_of_folder(folder: Path) -> str | None:
    """A transaction folder's project code: its record's, else its documents' (the folder
    name is the code made safe for a file name, which may differ from the code)."""
    try:
        return read_json(folder / RECORD)["project_code"]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    for bag in sorted(folder.glob("*/bagit.txt")):
        code = read_json(bag.parent / "data" / "document.json")["metadata"].get("project_code")
        if code:
            return code
    return folder.name


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
    """Serialises record writes across threads and processes (an ingest's documents of
    one transaction are filed at once; ``file`` may run beside it)."""
    with open(archive.root / ".transactions.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield
