"""Filing documents under their transaction after ingest: an unfiled document
whose project name matches a known transaction, or one an archivist assigns
by hand. The package moves whole (one rename); its bag is not touched, and
the move is an event, so verify follows it."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path

from archive.errors import InvalidValue, NotFound
from archive.records.arrangement import arrange, note_group_change
from archive.records.corrections import correct_bidders, correct_metadata
from archive.records.document import DocumentRecord
from archive.records.metadata import same_name
from archive.records.redhead import project_name_in_title, read_red_header
from archive.records.transaction import code_of_folder, note_stale_index, refresh_folder, refresh_transaction
from archive.storage.fixity import fsync_dir
from archive.storage.store import Archive, read_json

Reindex = Callable[[Archive, list[str]], object]
"""What refreshes search for documents whose metadata changed (``index.refresh``):
injected, since search is built on the archive, not the other way round."""


def file_document(archive: Archive, document_id: str, project_code: str, reason: str) -> tuple[Path, list[str]]:
    """Move a document's package into ``project_code``'s transaction folder. Returns its
    new place and the documents whose index entries are stale: it, and those of the
    transactions it left and joined whose merged metadata changed."""
    package = archive.find_document(document_id)
    if package is None:
        raise NotFound(f"no document {document_id} in {archive.root}; `trade-archive export` lists them")
    target_parent = archive.transaction_dir(project_code)
    if package.parent == target_parent:  # filed there already; a run cut short may not have written the record
        return package, _with(document_id, refresh_transaction(archive, project_code))
    left = package.parent if package.parent.parent.name == "transactions" else None
    left_code = code_of_folder(archive, left) if left is not None else None  # read now: the folder may go
    target_parent.mkdir(parents=True, exist_ok=True)
    target = target_parent / document_id
    os.rename(package, target)
    moved = {"from": str(package.relative_to(archive.root)), "to": str(target.relative_to(archive.root))}
    try:
        fsync_dir(target_parent)
        fsync_dir(package.parent)
        archive.log("filing", document=document_id, project_code=project_code, reason=reason, **moved)
    except OSError:  # not recorded (a full disk): undone, or it would look like a lost package
        os.rename(target, package)
        with contextlib.suppress(OSError):
            target_parent.rmdir()  # made for this move, and empty again
        raise
    note_stale_index(archive, [document_id])  # its merged metadata is now its new transaction's
    changed = refresh_folder(archive, left, left_code) if left is not None else []
    changed += refresh_transaction(archive, project_code)
    arrange(archive, target)  # an unfiled document is arranged when it is filed; a filed one keeps its number
    return target, _with(document_id, changed)


def correct_document_metadata(archive: Archive, document_id: str, fields: dict[str, str], note: str) -> list[str]:
    """An archivist's metadata correction (``review.correct_metadata``), carried to the
    document's transaction record; a corrected project code files the document under
    it. Returns the documents whose index entries are now stale (it, at least)."""
    path = correct_metadata(archive, document_id, fields, note)
    note_stale_index(archive, [document_id])
    if code := read_json(path)["fields"].get("project_code"):
        target, changed = file_document(archive, document_id, code, f"project code corrected: {note}")
        note_group_change(archive, target)
        return changed
    package = _still_there(archive, document_id)
    note_group_change(archive, package)
    return _with_its_transaction(archive, document_id, package)


def correct_document_bidders(archive: Archive, document_id: str, prices: dict[str, str], note: str) -> list[str]:
    """An archivist's correction of a document's bidders (``corrections.correct_bidders``),
    carried to its transaction's record. Returns the documents whose index entries are now
    stale: a transaction's bidders are searched on all its documents."""
    correct_bidders(archive, document_id, prices, note)
    note_stale_index(archive, [document_id])
    return _with_its_transaction(archive, document_id, _still_there(archive, document_id))


def _still_there(archive: Archive, document_id: str) -> Path:
    """The package of a document just corrected (the correction found it; moved by hand since?)."""
    package = archive.find_document(document_id)
    if package is None:
        raise InvalidValue(f"document {document_id} left the archive while it was corrected")
    return package


def _with_its_transaction(archive: Archive, document_id: str, package: Path) -> list[str]:
    """The document, and the others of its transaction once its record is merged again."""
    in_transaction = package.parent.parent.name == "transactions"
    return _with(document_id, refresh_folder(archive, package.parent) if in_transaction else [])


def _with(document_id: str, documents: list[str]) -> list[str]:
    return [document_id, *(d for d in dict.fromkeys(documents) if d != document_id)]


def file_unfiled_by_project_name(archive: Archive) -> list[tuple[str, str]]:
    """File each unfiled document whose project name (read from its title, e.g.
    关于<项目>有关事项的通知, after a red header's issuer and 文号 where it has one) is
    exactly one known transaction's project name."""
    transactions = [read_json(p) for p in (archive.root / "transactions").glob("*/transaction.json")]
    filed = []
    for package in sorted((archive.root / "unfiled").glob("*/bagit.txt")):
        document = DocumentRecord.load(package.parent)
        name = document.metadata.get("project_name") or _name_in_real_title(package.parent)
        if not name:
            continue
        matches = [t["project_code"] for t in transactions if t["metadata"].get("project_name")
                   and same_name(t["metadata"]["project_name"], name)]  # fmt: skip
        if len(matches) == 1:
            file_document(archive, document.document, matches[0], f"project name {name} matches")
            filed.append((document.document, matches[0]))
    return filed


def _name_in_real_title(package: Path) -> str | None:
    """The project named by a document's real title, read again from its first page's
    OCR: documents ingested before red headers were read kept no name."""
    first = package / "data" / "ocr" / "0001.json"
    return project_name_in_title(read_red_header(read_json(first).get("text", "")).title) if first.exists() else None
