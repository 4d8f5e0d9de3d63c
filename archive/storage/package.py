"""Filing a finished document package: BagIt (via the Library of Congress
``bagit`` package), fsync, then one rename into its transaction folder, so a
crash leaves a whole package or none. (The transaction's record beside it is
``archive.records.transaction``'s.)"""

from __future__ import annotations

import errno
import logging
import os
import threading
from pathlib import Path

import bagit

from archive.storage.fixity import fsync_dir, fsync_tree
from archive.storage.store import Archive

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


def rebag(package: Path) -> None:
    """Rewrite a bag's manifests after a payload file was replaced on purpose (signing an
    archived document): the new manifests are what the signing event records."""
    with _BAGIT_CWD_LOCK:
        bagit.Bag(str(package)).save(processes=1, manifests=True)
    fsync_tree(package)
