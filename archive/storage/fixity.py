"""Checksums and atomic writes: the two primitives every archive write uses."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def copies_of_earlier(paths: list[Path]) -> dict[int, int]:
    """Which of ``paths`` hold the same bytes as an earlier one: index -> index of the first.
    Only files of equal size are hashed (few, in a batch of scans), each once."""
    by_size: dict[int, list[int]] = {}
    for number, path in enumerate(paths):
        try:
            by_size.setdefault(path.stat().st_size, []).append(number)
        except OSError:  # unreadable: its own ingest says why
            continue
    copies: dict[int, int] = {}
    for numbers in (group for group in by_size.values() if len(group) > 1):
        first_of: dict[str, int] = {}
        for number in numbers:
            try:
                digest = sha256_file(paths[number])
            except OSError:
                continue
            if digest in first_of:
                copies[number] = first_of[digest]
            else:
                first_of[digest] = number
    return copies


def fsync_dir(path: Path) -> None:
    """Make a rename inside ``path`` durable (POSIX needs the directory fsynced)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temp name beside ``path``, fsync, rename: readers see old or new, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def atomic_write_json(path: Path, obj: Any) -> None:
    text = json.dumps(obj, ensure_ascii=False, indent=2, sort_keys=False)
    atomic_write_bytes(path, (text + "\n").encode("utf-8"))


def fsync_tree(root: Path) -> None:
    """fsync every file and folder under ``root`` before it is renamed into place."""
    for folder, _dirs, files in os.walk(root):
        for name in files:
            fd = os.open(Path(folder, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(Path(folder))
