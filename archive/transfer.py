"""Handing packages over (to an archives bureau, or Archivematica's bag
transfer): validated bag copies plus a transfer manifest, nothing else."""

from __future__ import annotations

import shutil
from datetime import datetime, timezone
from pathlib import Path

import bagit

from archive.errors import NotFound
from archive.export import document_record
from archive.fixity import atomic_write_json, sha256_file
from archive.store import Archive, safe_name


def transfer(archive: Archive, destination: Path, project_code: str | None = None) -> dict:
    """Copy every bag (or one transaction's) to ``destination/<transaction>/<document>``,
    validating each bag before and after the copy, and write ``transfer-manifest.json``."""
    packages = [
        p for p in archive.documents()
        if project_code is None or p.parent.name == safe_name(project_code)
    ]  # fmt: skip
    if not packages:
        raise NotFound(f"nothing to transfer{f' for {project_code}' if project_code else ''}")
    destination.mkdir(parents=True, exist_ok=True)
    entries = []
    for package in packages:
        bagit.Bag(str(package)).validate(processes=1)  # never hand over a bag that is already bad
        target = destination / package.parent.name / package.name
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(package, target)
        copied = bagit.Bag(str(target))
        copied.validate(processes=1)
        document = document_record(package)
        entries.append({
            "bag": str(target.relative_to(destination)),
            "document": document["document"],
            "source": document["source"],
            "project_code": document["metadata"]["project_code"],
            "doc_type": document["doc_type"],
            "payload_oxum": copied.info.get("Payload-Oxum"),
            "tagmanifest_sha256": sha256_file(target / "tagmanifest-sha256.txt"),
        })  # fmt: skip
    manifest = {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "archive": str(archive.root),
        "transaction": project_code,
        "bags": entries,
    }
    atomic_write_json(destination / "transfer-manifest.json", manifest)
    archive.log("transfer", destination=str(destination), transaction=project_code, bags=len(entries))
    return manifest
