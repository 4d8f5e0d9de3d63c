"""The hot folder: scanners and network copies drop files into the inbox; a
scheduled run takes the files whose size has settled, and moves each to
``done/`` only once it is archived and its package verified, or to
``failed/`` with the reason beside it. Nothing is deleted.

    INBOX/                 files arrive here (folders allowed; a manifest may sit beside the scans)
    INBOX/processing/<batch>/
    INBOX/done/<batch>/
    INBOX/failed/<batch>/  plus <file>.reason.txt
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from archive.fixity import sha256_file
from archive.store import readable_path

RESERVED = ("processing", "done", "failed")
MANIFEST_SUFFIXES = (".csv", ".xlsx")


def _snapshot(inbox: Path, archive_root: Path | None) -> dict[Path, tuple[int, float]]:
    files = {}
    inside = archive_root.resolve() if archive_root is not None else None
    for path in inbox.rglob("*"):
        relative = path.relative_to(inbox)
        if relative.parts[0] in RESERVED or path.name.startswith(".") or not path.is_file():
            continue
        if inside is not None and inside in path.resolve().parents:
            continue  # an archive kept inside the inbox is not something dropped there to ingest
        stat = path.stat()
        files[path] = (stat.st_size, stat.st_mtime)
    return files


def settled_files(inbox: Path, stable_seconds: float, archive_root: Path | None = None) -> list[Path]:
    """Files whose size and modification time did not change over
    ``stable_seconds`` (a scanner or a copy still writing one is left for the next run)."""
    before = _snapshot(inbox, archive_root)
    if stable_seconds > 0:
        time.sleep(stable_seconds)
    after = _snapshot(inbox, archive_root)
    now = time.time()
    return sorted(
        path for path, state in after.items()
        if before.get(path) == state and now - state[1] >= stable_seconds
    )  # fmt: skip


def claim(inbox: Path, files: list[Path], batch: str) -> Path:
    """Move settled files into ``processing/<batch>/``, keeping their sub-folders."""
    target = inbox / "processing" / batch
    for path in files:
        destination = target / path.relative_to(inbox)
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(path), str(destination))
    return target


def find_manifest(folder: Path) -> Path | None:
    manifests = sorted(p for p in folder.rglob("*") if p.suffix.lower() in MANIFEST_SUFFIXES)
    return manifests[0] if manifests else None


def claimed_batches(inbox: Path) -> list[Path]:
    """Batches claimed by a run that did not finish (stopped, crashed): taken up again."""
    processing = inbox / "processing"
    return sorted(p for p in processing.iterdir() if p.is_dir()) if processing.is_dir() else []


def settle(inbox: Path, batch: str, outcomes: list[dict], verified: set[str]) -> dict[str, list[str]]:
    """Move each claimed file to done/ (archived or already archived, and its
    package verified) or failed/ (with a reason file). Returns both lists. A PDF
    is matched to its outcome by name, else by its SHA-256 (a name that is not
    text, e.g. GBK bytes or a newline, is recorded in a readable form)."""
    processing = inbox / "processing" / batch
    by_source = {o["source"]: o for o in outcomes}
    by_sha256 = {o["sha256"]: o for o in outcomes if o.get("sha256")}
    moved: dict[str, list[str]] = {"done": [], "failed": []}
    for path in sorted(p for p in processing.rglob("*") if p.is_file()):
        if path.suffix.lower() != ".pdf":  # a manifest or notes go with their batch
            _move(inbox, processing, batch, path, None, moved)
            continue
        outcome = by_source.get(readable_path(path)) or by_sha256.get(sha256_file(path))
        if outcome is None:
            _move(inbox, processing, batch, path, "not ingested: the batch stopped before it (or it is hidden)", moved)
        elif outcome["status"] in ("archived", "duplicate") and outcome.get("document") in verified:
            _move(inbox, processing, batch, path, None, moved)
        else:
            _move(inbox, processing, batch, path, outcome.get("message") or outcome.get("reason") or
                  outcome["status"], moved)  # fmt: skip
    shutil.rmtree(processing, ignore_errors=True)
    return moved


def fail_batch(inbox: Path, batch: str, reason: str) -> dict[str, list[str]]:
    """Move every claimed file of a batch that could not run at all (its manifest cannot
    be read) to failed/, each with the reason: nothing is left stranded in processing/."""
    processing = inbox / "processing" / batch
    moved: dict[str, list[str]] = {"done": [], "failed": []}
    for path in sorted(p for p in processing.rglob("*") if p.is_file()):
        _move(inbox, processing, batch, path, reason, moved)
    shutil.rmtree(processing, ignore_errors=True)
    return moved


def _move(inbox: Path, processing: Path, batch: str, path: Path, failure: str | None,
          moved: dict[str, list[str]]) -> None:  # fmt: skip
    where = "done" if failure is None else "failed"
    destination = inbox / where / batch / path.relative_to(processing)
    destination.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(path), str(destination))
    if failure is not None:
        destination.with_name(destination.name + ".reason.txt").write_text(failure + "\n", encoding="utf-8")
    moved[where].append(str(destination.relative_to(inbox)))
