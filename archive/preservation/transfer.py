"""Handing packages over (to an archives bureau, or Archivematica's bag
transfer): validated bag copies plus a transfer manifest, nothing else."""

from __future__ import annotations

import logging
import os
import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from archive.errors import DamagedBag, InvalidValue, NotFound
from archive.records.export import iter_documents
from archive.storage.fixity import atomic_write_json, sha256_file
from archive.storage.store import Archive, is_inside, read_json

if TYPE_CHECKING:
    import bagit

logger = logging.getLogger(__name__)


def transfer(archive: Archive, destination: Path, project_code: str | None = None) -> dict:
    """Copy every bag (or one transaction's) to ``destination/<transaction>/<document>``,
    validating each bag before and after the copy, and write ``transfer-manifest.json``.
    A bag already at its place from an earlier transfer (the same tag manifest) is kept;
    anything else there is refused, never overwritten."""
    check_destination(archive, destination)
    folder = archive.transaction_dir(project_code) if project_code else None
    packages = [p for p in archive.documents() if folder is None or p.parent == folder]
    if not packages:
        raise NotFound(f"nothing to transfer{f' for {project_code}' if project_code else ''}")
    destination.mkdir(parents=True, exist_ok=True)
    entries = []
    for package in packages:
        target = destination / package.parent.name / package.name
        copied = copy_bag(package, target)
        document = next(iter_documents(archive, iter([package]), in_source_order=False))  # as corrected
        entries.append({
            "bag": str(target.relative_to(destination)),
            "document": document.record.document,
            "source": document.record.source,
            "project_code": document.metadata["project_code"],
            "doc_type": document.doc_type,
            "payload_oxum": copied.info.get("Payload-Oxum"),
            "tagmanifest_sha256": sha256_file(target / "tagmanifest-sha256.txt"),
        })  # fmt: skip
    # Bags an earlier transfer put here stay listed: the manifest describes the whole folder.
    earlier = _earlier_entries(destination, {entry["bag"] for entry in entries})
    manifest = {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "archive": str(archive.root),
        "transaction": project_code,
        "bags": earlier + entries,
    }
    atomic_write_json(destination / "transfer-manifest.json", manifest)
    try:
        archive.log("transfer", destination=str(destination), transaction=project_code, bags=len(entries))
    except OSError as error:  # a read-only archive: the hand-over itself is done and valid
        logger.warning("the transfer is not recorded in %s (%s)", archive.events_path, error)
    return manifest


def copy_bag(package: Path, target: Path) -> bagit.Bag:
    """``package`` validated, copied to ``target`` and the copy validated (a bag already
    there from an earlier hand-over is kept when it is the same; anything else is refused)."""
    import bagit  # here, not at the top: ~15 ms of every command's start-up (the CLI imports this module)

    try:
        bagit.Bag(str(package)).validate(processes=1)  # never hand over a bag that is already bad
    except bagit.BagError as error:
        raise DamagedBag(f"{package} fails validation ({error}): it is not handed over; `trade-archive "
                         "verify` shows what changed; restore the package from a backup") from error  # fmt: skip
    _copy_bag(package, target)
    return _validated_copy(package, target)


def check_destination(archive: Archive, destination: Path) -> None:
    """A hand-over goes outside the archive: copied into it, the bags would land on (and
    replace) the packages they are copied from, or be taken for untracked files."""
    if is_inside(destination, archive.root):
        raise InvalidValue(f"{destination} is inside the archive {archive.root}: transfer to a folder outside it")


def _copy_bag(package: Path, target: Path) -> None:
    """Copy ``package`` to ``target`` through a temporary name, so a stop or a full disk
    leaves no half-copied bag under the bag's own name."""
    if target.exists():
        if _same_bag(package, target):
            return  # handed over before: validated again by the caller
        raise InvalidValue(f"{target} exists and is not a copy of this bag: move it away, or transfer elsewhere")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)  # left by a stopped transfer: ours, by its name
    try:
        shutil.copytree(package, partial)
        os.rename(partial, target)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise


def _validated_copy(package: Path, target: Path) -> bagit.Bag:
    """The copy at ``target``, validated. An earlier copy that was altered since is set
    aside (``.<name>.damaged-<time>``, nothing is deleted) and the bag copied afresh."""
    import bagit  # here: start-up of every command (see copy_bag)

    try:
        copied = bagit.Bag(str(target))
        copied.validate(processes=1)
        return copied
    except bagit.BagError:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        os.rename(target, target.with_name(f".{target.name}.damaged-{stamp}"))
    _copy_bag(package, target)
    try:
        copied = bagit.Bag(str(target))
        copied.validate(processes=1)
    except bagit.BagError as error:  # copied from a valid bag a moment ago: the destination's disk
        raise DamagedBag(f"the copy at {target} fails validation ({error}): check the destination's disk") from error
    return copied


def _same_bag(package: Path, target: Path) -> bool:
    manifest = target / "tagmanifest-sha256.txt"
    return manifest.is_file() and sha256_file(manifest) == sha256_file(package / "tagmanifest-sha256.txt")


def _earlier_entries(destination: Path, now: set[str]) -> list[dict]:
    path = destination / "transfer-manifest.json"
    try:
        bags = read_json(path).get("bags", []) if path.exists() else []
    except (OSError, ValueError, AttributeError):
        return []  # not ours to read: it is replaced
    return [b for b in bags if isinstance(b, dict) and isinstance(b.get("bag"), str) and b["bag"] not in now
            and (destination / b["bag"]).is_dir()]  # fmt: skip
