"""The archive's append-only event log (PREMIS-style), one JSON object per line.

Each entry stores the SHA-256 of the previous line, so editing, reordering or
deleting a line breaks the chain and ``verify`` reports where. Appends take an
exclusive ``flock`` so concurrent writers (two flows, a worker pool) cannot
interleave or fork the chain.
"""

from __future__ import annotations

import contextlib
import fcntl
import getpass
import hashlib
import json
import os
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

GENESIS = "0" * 64


def _line_hash(line: str) -> str:
    return hashlib.sha256(line.rstrip("\n").encode("utf-8")).hexdigest()


def _agent() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry (containers)
        return str(os.getuid())


def append_event(log_path: Path, event_type: str, outcome: str = "success", **detail: Any) -> dict:
    """Append one event and return it. ``event_type`` uses PREMIS vocabulary
    (ingestion, message digest calculation, fixity check, filing, quarantine, ...)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "a+", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            last = _last_line(handle)
            previous = _line_hash(last) if last else GENESIS
            # a line torn by a crash stays a line of its own (verify names it)
            start = "\n" if last and not _ends_with_newline(handle) else ""
            event = {
                "id": str(uuid.uuid4()),
                "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "type": event_type,
                "outcome": outcome,
                "agent": _agent(),
                **detail,
                "prev": previous,
            }
            line = start + json.dumps(event, ensure_ascii=False, sort_keys=True) + "\n"
            _append_whole(handle.fileno(), line.encode("utf-8"))
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
    return event


def _append_whole(fd: int, data: bytes) -> None:
    """Append ``data`` and fsync it, or leave the log as it was: a write cut short (a full
    disk) is cut off again, so no torn line breaks the hash chain for good."""
    size = os.fstat(fd).st_size
    try:
        written = 0
        while written < len(data):
            written += os.write(fd, data[written:])  # O_APPEND: at the end, whoever else appends
        os.fsync(fd)
    except OSError:
        with contextlib.suppress(OSError):
            os.ftruncate(fd, size)
        raise


def _last_line(handle) -> str:  # noqa: ANN001 - a binary-safe text handle opened "a+"
    """The log's last non-empty line, read backwards from the end: appends stay
    O(1) however long the log grows (years of searches are logged here)."""
    handle.seek(0, os.SEEK_END)
    end = handle.tell()
    if end == 0:
        return ""
    raw = handle.buffer
    chunk, data = 65536, b""
    position = end
    while position > 0:
        position = max(0, position - chunk)
        raw.seek(position)
        data = raw.read(end - position)
        lines = [line for line in data.split(b"\n") if line.strip()]
        if len(lines) >= 2 or (position == 0 and lines):
            return lines[-1].decode("utf-8", errors="replace")  # a line torn inside a character too
    return ""


def _ends_with_newline(handle) -> bool:  # noqa: ANN001 - as _last_line
    handle.seek(0, os.SEEK_END)
    if handle.tell() == 0:
        return True
    handle.buffer.seek(handle.tell() - 1)
    return handle.buffer.read(1) == b"\n"


def read_events(log_path: Path) -> Iterator[dict]:
    """The log's events, in order. A line that is not a JSON object (torn by a
    crash, edited) is skipped here; ``check_chain`` reports it."""
    if not log_path.exists():
        return
    with open(log_path, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            if line.strip():
                try:
                    event = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(event, dict):
                    yield event


@dataclass
class ChainBreak:
    line: int  # 1-based line number in events.jsonl
    problem: str


def logged_tag_manifests(events: Iterable[dict]) -> dict[str, str | None]:
    """Each filed document's tag-manifest SHA-256 as the log last recorded it: its ingestion's
    (None where the event does not say), then that of each signing or arrangement that
    re-bagged it since. ``verify``, ``sign`` and the four-property check follow the same one."""
    logged: dict[str, str | None] = {}
    for event in events:
        kind, document = event.get("type"), event.get("document")
        if kind == "ingestion" and event.get("outcome") == "success" and event.get("path"):
            logged[document] = event.get("tagmanifest_sha256")
        elif kind in ("signing", "arrangement") and event.get("tagmanifest_sha256") and document in logged:
            logged[document] = event["tagmanifest_sha256"]
    return logged


def check_chain(log_path: Path) -> list[ChainBreak]:
    """Walk the log and return every place the hash chain does not hold."""
    breaks: list[ChainBreak] = []
    if not log_path.exists():
        return breaks
    previous = GENESIS
    with open(log_path, encoding="utf-8", errors="replace") as handle:  # as _last_line reads it
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                breaks.append(ChainBreak(number, "line is not valid JSON"))
                previous = _line_hash(line)
                continue
            if event.get("prev") != previous:
                breaks.append(
                    ChainBreak(
                        number, "previous-entry hash does not match: a line before it was changed, removed or reordered"
                    )
                )
            previous = _line_hash(line)
    return breaks
