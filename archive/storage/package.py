"""Filing a finished document package: BagIt (via the Library of Congress
``bagit`` package), fsync, then one rename into its transaction folder, so a
crash leaves a whole package or none. (The transaction's record beside it is
``archive.records.transaction``'s.)"""

from __future__ import annotations

import errno
import logging
import os
import re
import threading
from pathlib import Path

from archive.storage.fixity import atomic_write_bytes, fsync_dir, fsync_tree, sha256_file
from archive.storage.store import Archive

logging.getLogger("bagit").setLevel(logging.WARNING)

# bagit.make_bag chdirs into the bag while it works: the process's working
# directory is shared by threads, so two bags at once would strand each other.
_BAGIT_CWD_LOCK = threading.Lock()
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")  # a value must stay one line of bag-info.txt


def make_bag(staging: Path, bag_info: dict[str, str]) -> None:
    """Turn ``staging`` (its files become ``data/``) into a BagIt bag with SHA-256 manifests."""
    import bagit  # here, not at the top: ~15 ms of every command's start-up (the CLI imports this module)

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


def update_bag(package: Path, payload: list[str], info: dict[str, str]) -> None:
    """After ``payload`` files (paths under the bag, e.g. ``data/document.json``) were rewritten
    in place: their manifest lines, ``info``'s tags in bag-info.txt (Payload-Oxum too) and the
    tag manifest, so the bag validates again. Only the rewritten files are hashed."""
    import bagit  # here: start-up of every command (see make_bag)

    manifest = package / "manifest-sha256.txt"
    fresh = {name: sha256_file(package / name) for name in payload}
    lines = []
    for line in manifest.read_text(encoding="utf-8").splitlines():
        digest, _, name = line.partition("  ")
        lines.append(f"{fresh.pop(name, digest)}  {name}")
    lines += [f"{digest}  {name}" for name, digest in fresh.items()]  # a payload file new to the bag
    atomic_write_bytes(manifest, ("\n".join(lines) + "\n").encode("utf-8"))
    files = [p for p in (package / "data").rglob("*") if p.is_file()]
    with _BAGIT_CWD_LOCK:  # Bag.save chdirs into the bag
        bag = bagit.Bag(str(package))
        bag.info.update({key: _CONTROL.sub(" ", value).strip() for key, value in info.items()})
        bag.info["Payload-Oxum"] = f"{sum(p.stat().st_size for p in files)}.{len(files)}"
        bag.save(manifests=False)


def rebag(package: Path) -> None:
    """Rewrite a bag's manifests after a payload file was replaced on purpose (signing an
    archived document): the new manifests are what the signing event records."""
    import bagit  # here: start-up of every command (see make_bag)

    with _BAGIT_CWD_LOCK:
        bagit.Bag(str(package)).save(processes=1, manifests=True)
    fsync_tree(package)


def read_bag_info(package: Path) -> dict[str, str]:
    """A package's bag-info.txt tags as written ({} where it cannot be read): the check of a
    package reads what is there, and never fails on it. A line that starts with white space
    continues the tag before it (RFC 8493 2.2.2: another tool's long values are folded)."""
    info: dict[str, str] = {}
    key = None
    try:
        for line in (package / "bag-info.txt").read_text(encoding="utf-8").splitlines():
            if line[:1].isspace() and key is not None:
                info[key] = f"{info[key]} {line.strip()}".strip()
            elif line.strip():
                key, _, value = line.partition(":")
                key = key.strip()
                info[key] = value.strip()
    except (OSError, UnicodeDecodeError):
        pass
    return info
