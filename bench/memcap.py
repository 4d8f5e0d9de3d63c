"""A hard memory limit for a measured command: a Linux memory cgroup (v2, or v1's memory
controller) that the command and every process it starts run in.

Why: summed RSS counts each shared library once per process (the OCR workers share ~135 MiB
of library pages), and PSS is an estimate. A cgroup limit is what the kernel enforces: a
run that finishes under ``--memory-cap 2000000000`` with no process killed by the cgroup's
OOM killer needed no more than 2 GB, page cache included (the kernel reclaims cache first).
The cgroup also counts the tree's anonymous memory once per page (``anon``).

Needs root (or a delegated cgroup); where none can be made, ``MemoryCap.make`` raises
``NoMemoryCap`` saying why, and the bench runs without a cap.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


class NoMemoryCap(Exception):
    """No memory cgroup can be made here; the message says why."""


class MemoryCap:
    """One cgroup with a memory limit; ``join`` (a ``preexec_fn``) puts the calling process in it."""

    def __init__(self, folder: Path, v2: bool, limit: int) -> None:  # noqa: D107 - use ``make``
        self.folder, self.v2, self.limit = folder, v2, limit

    @classmethod
    def make(cls, limit: int) -> MemoryCap:
        """A fresh cgroup limited to ``limit`` bytes (``NoMemoryCap`` where none can be made)."""
        name = f"trade-archive-bench-{os.getpid()}"
        v2 = "memory" in _read(CGROUP_ROOT / "cgroup.controllers").split()
        parent = _own_cgroup(v2)
        if not v2 and not (parent / "memory.limit_in_bytes").exists():
            raise NoMemoryCap("no memory cgroup controller here (neither v2 nor v1's memory hierarchy)")
        try:
            if v2 and "memory" not in _read(parent / "cgroup.subtree_control").split():
                (parent / "cgroup.subtree_control").write_text("+memory")
            (parent / name).mkdir()
        except OSError as error:
            raise NoMemoryCap(f"could not make a memory cgroup in {parent}: {error.strerror} (run as root?)") from error
        try:
            (parent / name / ("memory.max" if v2 else "memory.limit_in_bytes")).write_text(str(limit))
        except OSError as error:
            (parent / name).rmdir()
            raise NoMemoryCap(f"could not limit the memory cgroup {parent / name}: {error.strerror}") from error
        if v2 and (parent / name / "memory.swap.max").exists():
            (parent / name / "memory.swap.max").write_text("0")  # the limit is RAM, not RAM + swap
        return cls(parent / name, v2, limit)

    def join(self) -> None:
        """Move the calling process into the cgroup (its children follow)."""
        (self.folder / "cgroup.procs").write_text(str(os.getpid()))

    def anon(self) -> int:
        """Anonymous memory of every process in the cgroup, each page once (bytes)."""
        stat = _keyed(self.folder / "memory.stat")
        return stat.get("anon", 0) if self.v2 else stat.get("total_rss", 0) + stat.get("total_rss_huge", 0)

    def oom_kills(self) -> int:
        """How many processes the cgroup's OOM killer has killed."""
        return _keyed(self.folder / ("memory.events" if self.v2 else "memory.oom_control")).get("oom_kill", 0)

    def close(self) -> None:
        """Move what still runs (a Prefect server left warm for the next command) back to the
        cgroup this one is in, and remove this one."""
        for pid in _read(self.folder / "cgroup.procs").split():
            try:
                (self.folder.parent / "cgroup.procs").write_text(pid)
            except OSError:  # it exited meanwhile
                pass
        try:
            self.folder.rmdir()
        except OSError:
            pass


def parse_size(text: str) -> int:
    """Bytes from ``2000000000``, ``2G`` (10^9) or ``2GiB`` (2^30)."""
    match = re.fullmatch(r"\s*([\d.]+)\s*([kmg]?)(i?)b?\s*", text.lower())
    if match is None:
        raise ValueError(f"not a size: {text!r} (e.g. 2000000000, 2G, 2GiB)")
    number, unit, binary = match.groups()
    return int(float(number) * (1024 if binary else 1000) ** " kmg".index(unit or " "))


def _own_cgroup(v2: bool) -> Path:
    """The memory cgroup this process is in (the new one goes inside it: its limits still hold)."""
    for line in _read(Path("/proc/self/cgroup")).splitlines():
        _number, controllers, path = line.split(":", 2)
        if (v2 and controllers == "") or (not v2 and "memory" in controllers.split(",")):
            return (CGROUP_ROOT if v2 else CGROUP_ROOT / "memory") / path.lstrip("/")
    return CGROUP_ROOT if v2 else CGROUP_ROOT / "memory"


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _keyed(path: Path) -> dict[str, int]:
    """A cgroup file of ``key value`` lines as a dict."""
    values = {}
    for line in _read(path).splitlines():
        key, _, value = line.partition(" ")
        if value.strip().isdigit():
            values[key] = int(value)
    return values
