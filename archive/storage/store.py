"""The archive on disk (layout in docs/contracts.md) and the few operations that
touch more than one package: finding, listing, quarantining, logging."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from archive.errors import ArchiveBusy, ArchiveError, InvalidValue
from archive.storage.events import append_event
from archive.storage.fixity import atomic_write_json

ENV_HOME = "TRADE_ARCHIVE_HOME"
DEFAULT_HOME = "archive-data"


def resolve_root(explicit: str | os.PathLike | None = None) -> Path:
    """``--archive DIR``, else ``$TRADE_ARCHIVE_HOME``, else ``home`` in the config
    file, else ``./archive-data``."""
    if explicit or os.environ.get(ENV_HOME):
        return Path(explicit or os.environ[ENV_HOME]).resolve()
    from archive.config import load_config

    return Path(load_config().home or DEFAULT_HOME).resolve()


_UNSAFE = re.compile(r"[^\w\-.()（）〔〕﹝﹞\[\]]+")
NAME_MAX_BYTES = 200  # file systems allow 255 bytes per name; 80 CJK Extension B characters are 320


def check_project_code(code: str) -> str:
    """``code``, stripped, unless it is no code at all: empty, only dots, or with a
    path separator or control character (ingest files any other code, its folder
    named by ``safe_name``, and so may an archivist, e.g. 桂财采【2023】001号)."""
    code = unicodedata.normalize("NFKC", code).strip()  # ＧＸＣＱ2022-519 as typed on a Chinese keyboard
    if not code.strip(".") or re.search(r"[/\\\x00-\x1f\x7f]", code):
        raise InvalidValue(f"{code!r} is not a project code: use the platform's code as it is, "
                           "e.g. GXZC2023-G1-001234-KWZB (no slashes or control characters)")  # fmt: skip
    return code


def safe_name(text: str, limit: int = 80) -> str:
    """A folder name from a project code or file name that cannot leave its parent
    folder: NFKC, no separators, control characters, NUL or leading dots (so never
    ``.`` or ``..``), at most ``limit`` characters and ``NAME_MAX_BYTES`` bytes."""
    name = _UNSAFE.sub("_", unicodedata.normalize("NFKC", str(text))).strip("._")[:limit]
    while len(name.encode("utf-8", "surrogatepass")) > NAME_MAX_BYTES:
        name = name[:-1]
    return name.strip("._") or "_"


def code_key(project_code: str) -> str:
    """What makes two spellings of a project code the same code: NFKC (ＧＸＣＱ2022 is
    GXCQ2022) and no white space (桂财采【2023】 001号 is 桂财采【2023】001号), as search has it."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", project_code))


def transaction_folder_name(project_code: str, transactions: Path) -> str:
    """The folder of a transaction: its code's key (``code_key``) where that is a safe name,
    else the safe name plus a short hash of the key, so two codes that differ only in what
    ``safe_name`` replaces (桂财采【2023】001号, 桂财采《2023》001号) never share a folder. A
    folder named the older way (the code's safe form, spaces made _) is still found, by the
    code in its transaction.json."""
    key = code_key(project_code)
    name = safe_name(key)
    older = safe_name(unicodedata.normalize("NFKC", project_code).strip())
    if name == key and older == name:
        return name  # a plain code, e.g. GXZC2023-G1-001234-KWZB: its own name, as it always was
    if _recorded_code(transactions / older / "transaction.json") == project_code:
        return older
    if name == key:
        return name
    digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{safe_name(key, limit=70)}~{digest}"


def _recorded_code(record: Path) -> str | None:
    try:
        return read_json(record).get("project_code")
    except (OSError, ValueError, AttributeError):  # no record, or a damaged one
        return None


def is_inside(path: Path, folder: Path) -> bool:
    """Whether ``path`` is ``folder`` or lies under it, links resolved (e.g. an archive kept
    inside the inbox, SRC or a transfer's destination)."""
    inner, outer = path.resolve(), folder.resolve()
    return inner == outer or outer in inner.parents


def readable_path(path: str | os.PathLike) -> str:
    """A path as text that can always be written to JSON, logs and bag-info.txt.

    Names on disk are bytes: files copied from Chinese Windows machines carry
    GBK/GB18030 names that are not UTF-8 (Python shows them with surrogate
    escapes, which no UTF-8 writer accepts). Each component is decoded as UTF-8,
    else GB18030, else with its bad bytes escaped; control characters are
    escaped (``\\x0a``) so a name cannot forge a line of a log or tag file."""
    parts = []
    for raw in os.fsencode(path).split(b"/"):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            try:
                text = raw.decode("gb18030")
            except UnicodeDecodeError:
                text = raw.decode("utf-8", "backslashreplace")
        parts.append("".join(f"\\x{ord(ch):02x}" if unicodedata.category(ch) == "Cc" else ch for ch in text))
    return "/".join(parts)


@dataclass(frozen=True)
class Archive:
    root: Path

    @classmethod
    def open(cls, root: Path, create: bool = False) -> Archive:
        if create:
            for sub in ("transactions", "unfiled", "quarantine", "reports", ".staging"):
                (root / sub).mkdir(parents=True, exist_ok=True)
        elif not (root / "transactions").is_dir():
            raise ArchiveError(
                f"no archive at {root}: pass --archive DIR or set {ENV_HOME}, or run `trade-archive ingest` first."
            )
        return cls(root)

    @property
    def events_path(self) -> Path:
        return self.root / "events.jsonl"

    @property
    def index_dir(self) -> Path:
        return self.root / "index"

    @property
    def staging_dir(self) -> Path:
        return self.root / ".staging"

    def log(self, event_type: str, outcome: str = "success", **detail: object) -> dict:
        return append_event(self.events_path, event_type, outcome, **detail)

    def transaction_dir(self, project_code: str | None) -> Path:
        if not project_code:
            return self.root / "unfiled"
        return self.root / "transactions" / transaction_folder_name(project_code, self.root / "transactions")

    def documents(self) -> Iterator[Path]:
        """Every filed document package (BagIt bag), in a stable order."""
        bags = [*self.root.glob("transactions/*/*/bagit.txt"), *self.root.glob("unfiled/*/bagit.txt")]
        yield from sorted((bag.parent for bag in bags), key=lambda p: (p.parent.name, p.name))

    def find_document(self, document_id: str) -> Path | None:
        for pattern in (f"transactions/*/{document_id}", f"unfiled/{document_id}"):
            for hit in self.root.glob(pattern):
                if (hit / "bagit.txt").exists():
                    return hit
        return None

    def quarantined(self, sha256: str) -> Path | None:
        folder = self.root / "quarantine" / sha256
        return folder if (folder / "reason.json").exists() else None

    def quarantine(self, source: Path, sha256: str, reason: str, message: str, batch: str) -> Path:
        """Keep a rejected file byte for byte with the reason, so nothing is lost.

        The folder is named by the file's SHA-256 and the copy is ``original.pdf``
        (``original.bin`` for any other suffix): nothing of the source's name, which
        may hold ``..``, control characters or undecodable bytes, reaches a path."""
        if not re.fullmatch(r"[0-9a-f]{64}", sha256):
            raise ValueError(f"not a SHA-256 hex digest: {sha256!r}")
        folder = self.root / "quarantine" / sha256
        folder.mkdir(parents=True, exist_ok=True)
        if source.is_file():
            shutil.copyfile(source, folder / ("original.pdf" if source.suffix.lower() == ".pdf" else "original.bin"))
        shown = readable_path(source)
        atomic_write_json(
            folder / "reason.json",
            {"source": shown, "sha256": sha256, "reason": reason, "message": message, "batch": batch},
        )
        self.log("quarantine", "failure", source=shown, sha256=sha256, reason=reason, message=message, batch=batch)
        return folder

    @contextmanager
    def writer_lock(self, wait: bool = False) -> Iterator[None]:
        """One writer at a time (ingest, reindex, filing): two batches writing one
        archive would race on transaction.json and the index. The lock is an
        ``flock``, so a killed writer never leaves it stuck."""
        path = self.root / ".writer.lock"
        with open(path, "a+") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except BlockingIOError:
                handle.seek(0)
                holder = handle.read().strip() or "another process"
                raise ArchiveBusy(
                    f"{self.root} is being written by {holder}; "
                    "run this again when it has finished (`ingest --wait` queues behind it)."
                ) from None
            handle.seek(0)
            handle.truncate()
            handle.write(f"pid {os.getpid()} since {datetime.now(timezone.utc).isoformat(timespec='seconds')}")
            handle.flush()
            try:
                yield
            finally:
                handle.seek(0)
                handle.truncate()
                fcntl.flock(handle, fcntl.LOCK_UN)

    def clear_staging(self) -> list[str]:
        """Remove packages a crash left half-written; they were never filed."""
        removed = []
        if self.staging_dir.exists():
            for leftover in self.staging_dir.iterdir():
                shutil.rmtree(leftover, ignore_errors=True)
                removed.append(leftover.name)
        return removed


def read_json(path: Path | str) -> dict:
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def read_archived(path: Path | str) -> dict:
    """A JSON file of the archive, or an error that names it: one damaged file must say
    where it is, not end an export or a reindex in a bare traceback."""
    try:
        return read_json(path)
    except (OSError, ValueError) as error:
        raise ArchiveError(
            f"{path} cannot be read ({type(error).__name__}: {error}): `trade-archive verify` shows what changed; "
            "restore the package from a backup (a transaction.json: `trade-archive reindex` rewrites it)"
        ) from error
