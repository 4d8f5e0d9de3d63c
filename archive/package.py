"""Filing a finished document package: BagIt (via the Library of Congress
``bagit`` package), fsync, then one rename into its transaction folder, so a
crash leaves a whole package or none. Also keeps ``transaction.json``, the
transaction's merged metadata, up to date."""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import threading
from pathlib import Path

import bagit

from archive.fixity import atomic_write_json, fsync_dir, fsync_tree
from archive.metadata import FIELDS, TEXT_PRIORITY
from archive.store import Archive, read_json

logging.getLogger("bagit").setLevel(logging.WARNING)

# bagit.make_bag chdirs into the bag while it works: the process's working
# directory is shared by threads, so two bags at once would strand each other.
_BAGIT_CWD_LOCK = threading.Lock()


def make_bag(staging: Path, bag_info: dict[str, str]) -> None:
    """Turn ``staging`` (its files become ``data/``) into a BagIt bag with SHA-256 manifests."""
    with _BAGIT_CWD_LOCK:
        bagit.make_bag(str(staging), bag_info=bag_info, processes=1, checksums=["sha256"])
    fsync_tree(staging)


def file_package(archive: Archive, staging: Path, document_id: str, project_code: str | None) -> Path:
    """Move a bagged package from staging into its transaction folder (atomic rename)."""
    parent = archive.transaction_dir(project_code)
    parent.mkdir(parents=True, exist_ok=True)
    target = parent / document_id
    if target.exists():
        raise FileExistsError(errno.EEXIST, "already filed", str(target))
    try:
        os.rename(staging, target)
    except OSError as error:  # another writer filed the same bytes a moment ago
        if error.errno in (errno.EEXIST, errno.ENOTEMPTY):
            raise FileExistsError(errno.EEXIST, "already filed", str(target)) from error
        raise
    fsync_dir(parent)
    return target


def update_transaction(archive: Archive, project_code: str | None, document: dict) -> None:
    """Add a document to its transaction's merged record: a manifest value beats
    one read from text, and among text readings the document most likely to
    state the fact wins (the award notice over the contract over the bid
    opening). Locked: documents of one transaction may be filed at once."""
    if not project_code:
        return
    folder = archive.transaction_dir(project_code)
    with open(archive.root / ".transactions.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        path = folder / "transaction.json"
        record = read_json(path) if path.exists() else new_transaction_record(project_code)
        doc_types = {d["document"]: d["doc_type"] for d in record["documents"]}
        doc_types[document["document"]] = document["doc_type"]
        for name in FIELDS:
            value, source = document["metadata"].get(name), document["provenance"].get(name)
            if value is None:
                continue
            current = record["provenance"].get(name)
            if current is None or _outranks(source, document["doc_type"], current, doc_types):
                record["metadata"][name] = value
                record["provenance"][name] = f"{source}:{document['document']}"
        entry = {"document": document["document"], "source": document["source"], "doc_type": document["doc_type"]}
        record["documents"] = [d for d in record["documents"] if d["document"] != document["document"]] + [entry]
        atomic_write_json(path, record)


def new_transaction_record(project_code: str) -> dict:
    return {
        "project_code": project_code,
        "metadata": {name: None for name in FIELDS},
        "provenance": {name: None for name in FIELDS},
        "documents": [],
    }


def _outranks(source: str | None, doc_type: str, current: str, doc_types: dict[str, str]) -> bool:
    current_source, _, current_document = current.partition(":")  # "manifest:<document>"
    if current_source == "manifest":
        return False
    if source == "manifest":
        return True
    worst = len(TEXT_PRIORITY)
    return TEXT_PRIORITY.get(doc_type, worst) < TEXT_PRIORITY.get(doc_types.get(current_document, ""), worst)
