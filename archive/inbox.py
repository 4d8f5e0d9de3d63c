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

RESERVED = ("processing", "done", "failed")
MANIFEST_SUFFIXES = (".csv", ".xlsx")


def _snapshot(inbox: Path) -> dict[Path, tuple[int, float]]:
    files = {}
    for path in inbox.rglob("*"):
        relative = path.relative_to(inbox)
        if relative.parts[0] in RESERVED or path.name.startswith(".") or not path.is_file():
            continue
        stat = path.stat()
        files[path] = (stat.st_size, stat.st_mtime)
    return files


def settled_files(inbox: Path, stable_seconds: float) -> list[Path]:
    """Files whose size and modification time did not change over
    ``stable_seconds`` (a scanner or a copy still writing one is left for the next run)."""
    before = _snapshot(inbox)
    if stable_seconds > 0:
        time.sleep(stable_seconds)
    after = _snapshot(inbox)
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


def settle(inbox: Path, batch: str, outcomes: list[dict], verified: set[str]) -> dict[str, list[str]]:
    """Move each claimed file to done/ (archived or already archived, and its
    package verified) or failed/ (with a reason file). Returns both lists."""
    processing = inbox / "processing" / batch
    moved: dict[str, list[str]] = {"done": [], "failed": []}
    by_source = {Path(o["source"]).resolve(): o for o in outcomes}
    for path in sorted(p for p in processing.rglob("*") if p.is_file()):
        outcome = by_source.get(path.resolve())
        ok = outcome is None or (outcome["status"] in ("archived", "duplicate") and outcome.get("document") in verified)
        where = "done" if ok else "failed"  # a manifest or other non-PDF (outcome None) goes with the batch
        destination = inbox / where / batch / path.relative_to(processing)
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(path), str(destination))
        if not ok:
            reason = outcome.get("message") or outcome.get("reason") or outcome["status"]
            destination.with_name(destination.name + ".reason.txt").write_text(reason + "\n", encoding="utf-8")
        moved[where].append(str(destination.relative_to(inbox)))
    shutil.rmtree(processing, ignore_errors=True)
    return moved
