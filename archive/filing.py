"""Filing documents under their transaction after ingest: an unfiled document
whose project name matches a known transaction, or one an archivist assigns
by hand. The package moves whole (one rename); its bag is not touched, and
the move is an event, so verify follows it."""

from __future__ import annotations

import os
from pathlib import Path

from archive.errors import NotFound
from archive.fixity import atomic_write_json, fsync_dir
from archive.metadata import same_name
from archive.package import update_transaction
from archive.store import Archive, read_json


def file_document(archive: Archive, document_id: str, project_code: str, reason: str) -> Path:
    """Move a document's package into ``project_code``'s transaction folder."""
    package = archive.find_document(document_id)
    if package is None:
        raise NotFound(f"no document {document_id} in {archive.root}; `trade-archive export` lists them")
    target_parent = archive.transaction_dir(project_code)
    if package.parent == target_parent:
        return package
    target_parent.mkdir(parents=True, exist_ok=True)
    target = target_parent / document_id
    os.rename(package, target)
    fsync_dir(target_parent)
    fsync_dir(package.parent)
    _forget_in_transaction(package.parent, document_id)
    document = read_json(target / "data" / "document.json")
    document["metadata"] = {**document["metadata"], "project_code": project_code}
    document["provenance"] = {**document["provenance"], "project_code": "filing"}
    update_transaction(archive, project_code, document)
    moved = {"from": str(package.relative_to(archive.root)), "to": str(target.relative_to(archive.root))}
    archive.log("filing", document=document_id, project_code=project_code, reason=reason, **moved)
    return target


def _forget_in_transaction(folder: Path, document_id: str) -> None:
    record_path = folder / "transaction.json"
    if record_path.exists():
        record = read_json(record_path)
        record["documents"] = [d for d in record["documents"] if d["document"] != document_id]
        atomic_write_json(record_path, record)


def file_unfiled_by_project_name(archive: Archive) -> list[tuple[str, str]]:
    """File each unfiled document whose project name (read from its title, e.g.
    关于<项目>有关事项的通知) is exactly one known transaction's project name."""
    transactions = [read_json(p) for p in (archive.root / "transactions").glob("*/transaction.json")]
    filed = []
    for package in sorted((archive.root / "unfiled").glob("*/bagit.txt")):
        document = read_json(package.parent / "data" / "document.json")
        name = document["metadata"].get("project_name")
        if not name:
            continue
        matches = [t["project_code"] for t in transactions if t["metadata"].get("project_name")
                   and same_name(t["metadata"]["project_name"], name)]  # fmt: skip
        if len(matches) == 1:
            file_document(archive, document["document"], matches[0], f"project name {name} matches")
            filed.append((document["document"], matches[0]))
    return filed
