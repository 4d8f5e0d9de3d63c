"""The hot folder: scanners and network copies drop files into the inbox; a
scheduled run takes the files whose size has settled, and moves each to
``done/`` only once it is archived and its package verified, or to
``failed/`` with the reason beside it. Nothing is deleted.

    INBOX/                 files arrive here; each folder is a delivery, ingested as a batch of its
                           own with the manifests in it (loose files make one delivery together)
    INBOX/processing/<batch>/
    INBOX/done/<batch>/
    INBOX/failed/<batch>/  plus <file>.reason.txt
"""

from __future__ import annotations

import fcntl
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from archive.records.batch import DocumentOutcome
from archive.storage.fixity import sha256_file
from archive.storage.store import is_inside, readable_path

RESERVED = ("processing", "done", "failed")
MANIFEST_SUFFIXES = (".csv", ".xlsx", ".xlsm")
COMPANIONS = (*MANIFEST_SUFFIXES, ".json", ".md", ".txt")  # what may travel with scans (ingest's "notes")


def _snapshot(inbox: Path, archive_root: Path | None) -> dict[Path, tuple[int, float]]:
    files = {}
    for path in inbox.rglob("*"):
        relative = path.relative_to(inbox)
        if relative.parts[0] in RESERVED or path.name.startswith(".") or not path.is_file():
            continue
        if archive_root is not None and is_inside(path, archive_root):
            continue  # an archive kept inside the inbox is not something dropped there to ingest
        stat = path.stat()
        files[path] = (stat.st_size, stat.st_mtime)
    return files


def settled_files(inbox: Path, stable_seconds: float, archive_root: Path | None = None) -> list[Path]:
    """Files whose size and modification time did not change over
    ``stable_seconds`` (a scanner or a copy still writing one is left for the next run)."""
    return sorted(_settling(inbox, stable_seconds, archive_root)[0])


def settled_deliveries(inbox: Path, stable_seconds: float, archive_root: Path | None = None) -> dict[str, list[Path]]:
    """The deliveries (``deliveries``) all of whose files have settled: a box still being
    copied in waits whole, so its later files are not split from its manifest."""
    settled, present = _settling(inbox, stable_seconds, archive_root)
    return {name: files for name, files in deliveries(inbox, sorted(present)).items() if settled.issuperset(files)}


def _settling(inbox: Path, stable_seconds: float, archive_root: Path | None) -> tuple[set[Path], set[Path]]:
    """(files settled over ``stable_seconds``, every file present now)."""
    before = _snapshot(inbox, archive_root)
    if stable_seconds > 0:
        time.sleep(stable_seconds)
    after = _snapshot(inbox, archive_root)
    now = time.time()
    settled = {path for path, state in after.items() if before.get(path) == state and now - state[1] >= stable_seconds}
    return settled, set(after)


def deliveries(inbox: Path, files: list[Path]) -> dict[str, list[Path]]:
    """Settled files by delivery: each folder dropped into the inbox is one (a box of scans
    with its own manifest); files dropped loose make one together (named "")."""
    groups: dict[str, list[Path]] = {}
    for path in files:
        parts = path.relative_to(inbox).parts
        groups.setdefault(parts[0] if len(parts) > 1 else "", []).append(path)
    return dict(sorted(groups.items()))


def claim(inbox: Path, files: list[Path], batch: str) -> list[Path]:
    """Move settled files into ``processing/<batch>/``, keeping their sub-folders; return
    those moved (a file another run claimed a moment before is left to it)."""
    target = inbox / "processing" / batch
    claimed = []
    for path in files:
        destination = target / path.relative_to(inbox)
        destination.parent.mkdir(parents=True, exist_ok=True)
        try:
            shutil.move(str(path), str(destination))
        except FileNotFoundError:
            continue
        claimed.append(destination)  # its folder stays: a scanner may save into it again
    return claimed


@contextmanager
def batch_lock(inbox: Path, batch: str) -> Iterator[bool]:
    """Whether this run holds ``batch`` (True) or another run works on it (False). The
    schedule starts a run every 15 minutes, and a batch may take longer: a run takes up
    a claimed batch only where no other run holds it."""
    path = inbox / "processing" / f".{batch}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            path.unlink(missing_ok=True)  # a run that opened it before this unlink re-checks the batch folder
            fcntl.flock(handle, fcntl.LOCK_UN)


def find_manifests(folder: Path) -> list[Path]:
    """Every manifest of a delivery (one per box where it came in boxes)."""
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in MANIFEST_SUFFIXES and p.is_file())


def claimed_batches(inbox: Path) -> list[Path]:
    """Batches claimed by a run that did not finish (stopped, crashed): taken up again."""
    processing = inbox / "processing"
    return sorted(p for p in processing.iterdir() if p.is_dir()) if processing.is_dir() else []


def settle(inbox: Path, batch: str, outcomes: list[DocumentOutcome], verified: set[str]) -> dict[str, list[str]]:
    """Move each claimed file to done/ (archived or already archived, and its
    package verified) or failed/ (with a reason file). Returns both lists. A PDF
    is matched to its outcome by name, else by its SHA-256 (a name that is not
    text, e.g. GBK bytes or a newline, is recorded in a readable form)."""
    processing = inbox / "processing" / batch
    by_source = {o.source: o for o in outcomes}
    by_sha256 = {o.sha256: o for o in outcomes if o.sha256}
    moved: dict[str, list[str]] = {"done": [], "failed": []}
    for path in sorted(p for p in processing.rglob("*") if p.is_file()):
        if path.suffix.lower() in COMPANIONS:  # a manifest or notes go with their batch
            _move(inbox, processing, batch, path, None, moved)
            continue
        if path.suffix.lower() != ".pdf":  # done/ holds only what is archived: a TIFF is not
            _move(inbox, processing, batch, path, "not a PDF: trade-archive ingests PDF scans; convert it "
                  "(e.g. img2pdf scan.tif -o scan.pdf) and drop the PDF in the inbox", moved)  # fmt: skip
            continue
        outcome = by_source.get(readable_path(path)) or by_sha256.get(sha256_file(path))
        if outcome is None:
            _move(inbox, processing, batch, path, "not ingested: the batch stopped before it (or it is hidden)", moved)
        elif outcome.status in ("archived", "duplicate") and outcome.document in verified:
            _move(inbox, processing, batch, path, None, moved)
        else:
            _move(inbox, processing, batch, path, outcome.message or outcome.reason or outcome.status, moved)
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
