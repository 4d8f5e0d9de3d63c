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
from archive.metadata import FIELDS
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
    """Add a document to its transaction's record. Values already there stay; a
    manifest value replaces one read from text. Locked: documents of one
    transaction may be filed at the same time."""
    if not project_code:
        return
    folder = archive.transaction_dir(project_code)
    with open(archive.root / ".transactions.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        path = folder / "transaction.json"
        record = (
            read_json(path)
            if path.exists()
            else {
                "project_code": project_code,
                "metadata": {name: None for name in FIELDS},
                "provenance": {name: None for name in FIELDS},
                "documents": [],
            }
        )
        for name in FIELDS:
            value, source = document["metadata"].get(name), document["provenance"].get(name)
            current = (record["provenance"].get(name) or "").split(":")[0]  # "manifest:<document>"
            if value is not None and (not current or (source == "manifest" and current != "manifest")):
                record["metadata"][name] = value
                record["provenance"][name] = f"{source}:{document['document']}"
        entry = {"document": document["document"], "source": document["source"], "doc_type": document["doc_type"]}
        record["documents"] = [d for d in record["documents"] if d["document"] != document["document"]] + [entry]
        atomic_write_json(path, record)
