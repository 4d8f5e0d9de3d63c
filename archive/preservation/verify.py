"""Fixity check of the whole archive: every bag re-hashed with ``bagit``'s own
validator, every filed package still present, the event log's hash chain intact.

The event log doubles as the catalogue: each ingestion event names the
package's path and the SHA-256 of its tag manifest, so a package that vanished
entirely, or was edited and re-bagged, is caught too.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from archive.config import load_config
from archive.errors import ArchiveError
from archive.preservation.signatures import check_signatures
from archive.preservation.signing import SigningSettings
from archive.records.document import DocumentRecord
from archive.records.transaction import stale_records
from archive.storage.events import check_chain, logged_tag_manifests, read_events
from archive.storage.fixity import sha256_file
from archive.storage.store import Archive, read_json

if TYPE_CHECKING:
    import bagit


@dataclass
class Problem:
    kind: (
        str  # changed | missing | untracked | invalid_bag | missing_package | rebagged | log_chain | quarantine_changed
        # | transaction_record | signature_invalid | signature_missing | timestamp_invalid
    )
    path: str
    detail: str
    document: str | None = None
    transaction: str | None = None


@dataclass
class VerifyReport:
    documents: int = 0
    files: int = 0
    problems: list[Problem] = field(default_factory=list)
    unrecorded: str | None = None  # why the check could not be logged (a read-only copy, a full disk)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict:
        return {"ok": self.ok, "documents": self.documents, "files": self.files,
                "problems": [asdict(p) for p in self.problems]}  # fmt: skip

    def render(self) -> str:
        """What ``verify`` prints: each problem with its document and transaction, then the outcome."""
        lines = [f"{p.kind.upper()}: {p.path}" + (f" (document {p.document}, transaction {p.transaction})"
                 if p.document else "") + f": {p.detail}" for p in self.problems]  # fmt: skip
        state = "OK" if self.ok else f"{len(self.problems)} PROBLEM(S)"
        return "\n".join([*lines, f"verify: {self.documents} documents, {self.files} files: {state}"])


def check_fixity(
    archive: Archive, on_document: Callable[[Path], None] | None = None, signing: SigningSettings | None = None
) -> VerifyReport:
    """``verify``: the whole archive checked, and the check logged as a fixity event.
    A log that cannot be written (a read-only copy) leaves the check standing."""
    report = verify_archive(archive, on_document, signing)
    try:
        archive.log("fixity check", "success" if report.ok else "failure", documents=report.documents,
                    files=report.files, problems=len(report.problems))  # fmt: skip
    except OSError as error:
        report.unrecorded = f"this check is not recorded in {archive.events_path} ({error})"
    return report


def verify_archive(
    archive: Archive, on_document: Callable[[Path], None] | None = None, signing: SigningSettings | None = None
) -> VerifyReport:
    """``on_document``: called with each document package once it is checked (progress).
    ``signing``: the keys signatures are checked against (default: the configuration's)."""
    signing = signing if signing is not None else SigningSettings.from_config(load_config())
    report = VerifyReport()
    seen: set[str] = set()
    for package in archive.documents():
        seen.add(str(package.relative_to(archive.root)))
        report.documents += 1
        report.files += _verify_bag(archive.root, package, report.problems)
        report.problems += signature_problems(archive.root, package, signing)
        if on_document is not None:
            on_document(package)
    _check_stray_files(archive, report.problems)
    _check_catalogue(archive, seen, report.problems)
    _check_quarantine(archive, report.problems)
    _check_transaction_records(archive, report.problems)
    for brk in check_chain(archive.events_path):
        report.problems.append(Problem("log_chain", f"events.jsonl line {brk.line}", brk.problem))
    return report


def declared_pages(package: Path) -> int:
    """A document's pages as its document.json says, or 0 where that cannot be read
    (for progress only: ``verify_archive`` reports the damage)."""
    try:
        return DocumentRecord.load(package).pages
    except (ArchiveError, TypeError):
        return 0


def verify_totals(archive: Archive) -> tuple[int, int]:
    """(pages, documents) ``verify_archive`` will go through, for progress; never raises on a damaged bag."""
    packages = list(archive.documents())
    return sum(map(declared_pages, packages)), len(packages)


def signature_problems(root: Path, package: Path, signing: SigningSettings) -> list[Problem]:
    """The package's signatures and timestamps (``archive.preservation.signing``) as problems:
    a file altered and its bag's checksums rewritten to match still breaks these."""
    transaction = package.parent.name if package.parent.parent.name == "transactions" else None
    relative = package.relative_to(root) if package.is_relative_to(root) else package
    return [Problem(f.kind, str(relative / f.file), f.detail, package.name, transaction)
            for f in check_signatures(package, signing)]  # fmt: skip


def bag_problems(root: Path, package: Path) -> tuple[int, list[Problem]]:
    """(files, problems) of one bag, re-hashed with ``bagit``; paths relative to ``root``
    (the archive, or a hand-over's folder)."""
    problems: list[Problem] = []
    return _verify_bag(root, package, problems), problems


def _verify_bag(root: Path, package: Path, problems: list[Problem]) -> int:
    import bagit  # here, not at the top: ~15 ms of every command's start-up (the CLI imports this module)

    transaction = package.parent.name if package.parent.parent.name == "transactions" else None
    where = {"document": package.name, "transaction": transaction}
    relative = package.relative_to(root) if package.is_relative_to(root) else package
    try:
        bag = bagit.Bag(str(package))
        with _bagit_quiet():
            bag.validate(processes=1)
        return len(bag.entries)
    except bagit.BagValidationError as error:
        details = _all_details(bag) or []
        if not details:
            problems.append(Problem("invalid_bag", str(relative), str(error), **where))
    except bagit.BagError as error:
        problems.append(Problem("invalid_bag", str(relative), str(error), **where))
        return 0
    for detail in details:
        path = str(relative / detail.path)
        if isinstance(detail, bagit.ChecksumMismatch):
            problems.append(Problem("changed", path, f"sha256 was {detail.expected}, now {detail.found}", **where))
        elif isinstance(detail, bagit.FileMissing):
            problems.append(Problem("missing", path, "listed in the bag manifest but not on disk", **where))
        elif isinstance(detail, bagit.UnexpectedFile):
            problems.append(Problem("untracked", path, "on disk but in no manifest", **where))
        else:
            problems.append(Problem("invalid_bag", path, str(detail), **where))
    return len(bag.entries)


def _all_details(bag: bagit.Bag) -> list:
    """Every missing, unexpected and changed file. ``Bag.validate`` stops at the
    first failing stage (a file-count mismatch hides which file changed), so the
    stages run here one by one."""
    import bagit  # here: start-up of every command (see _verify_bag)

    details = []
    for stage in (bag._validate_completeness, lambda: bag._validate_entries(1)):
        try:
            with _bagit_quiet():  # it logs each problem too: the report says them once
                stage()
        except bagit.BagValidationError as error:
            details.extend(error.details or [])
    # a missing file fails both stages (missing, then unreadable): name it once
    missing = {d.path for d in details if isinstance(d, bagit.FileMissing)}
    return [d for d in details if isinstance(d, bagit.FileMissing) or d.path not in missing]


@contextlib.contextmanager
def _bagit_quiet() -> Iterator[None]:
    logger = logging.getLogger("bagit")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def _check_stray_files(archive: Archive, problems: list[Problem]) -> None:
    """Files beside the packages, where only transaction.json belongs."""
    for folder in [*sorted((archive.root / "transactions").glob("*")), archive.root / "unfiled"]:
        if not folder.is_dir():
            continue
        transaction = folder.name if folder.parent.name == "transactions" else None
        for entry in sorted(folder.iterdir()):
            if entry.name == "transaction.json" or (entry / "bagit.txt").exists():
                continue
            relative = str(entry.relative_to(archive.root))
            problems.append(Problem("untracked", relative, "not part of any package", transaction=transaction))


def _check_transaction_records(archive: Archive, problems: list[Problem]) -> None:
    """Each transaction's merged record matches its documents (export and the index read it)."""
    for path, wrong in stale_records(archive):
        problems.append(Problem("transaction_record", str(path.relative_to(archive.root)),
                                f"{wrong}: `trade-archive reindex` writes it afresh from the documents",
                                transaction=path.parent.name))  # fmt: skip


def _check_catalogue(archive: Archive, present: set[str], problems: list[Problem]) -> None:
    """Every package the event log says was filed is still where the log last put it."""
    events = list(read_events(archive.events_path))
    where: dict[str, dict] = {}  # document -> its ingestion event, path updated by filing events
    for event in events:
        if event.get("type") == "ingestion" and event.get("outcome") == "success" and event.get("path"):
            where[event["document"]] = dict(event)
        elif event.get("type") == "filing" and event.get("document") in where:
            where[event["document"]]["path"] = event["to"]
    tag_manifests = logged_tag_manifests(events)  # signing and arrangement re-bag after ingest
    _check_corrections(archive, problems)
    # ...and every package present was logged: a log cut short or removed loses the
    # record of how packages came to be, which the hash chain alone cannot show.
    if present and not archive.events_path.exists():
        problems.append(Problem("log_missing", "events.jsonl", "the event log is gone, but the archive holds "
                                f"{len(present)} packages: restore it from a backup"))  # fmt: skip
    else:
        for path in sorted(present):
            document = Path(path).name
            if document not in where:
                parts = Path(path).parts
                problems.append(Problem("unlogged", path, "no ingestion event in events.jsonl: the log was cut short, "
                                        "or the package was put here by hand", document=document,
                                        transaction=parts[1] if parts[0] == "transactions" else None))  # fmt: skip
    for document, event in where.items():
        path = event["path"]
        parts = Path(path).parts
        owner = {"document": document, "transaction": parts[1] if parts[0] == "transactions" else None}
        if path not in present:
            problems.append(
                Problem("missing_package", path, "filed (see events.jsonl) but no longer in the archive", **owner)
            )
            continue
        expected = tag_manifests.get(document)
        tagmanifest = archive.root / path / "tagmanifest-sha256.txt"
        if expected and tagmanifest.exists() and sha256_file(tagmanifest) != expected:
            problems.append(Problem("rebagged", str(Path(path) / "tagmanifest-sha256.txt"),
                                    "the bag's manifests were rewritten after ingest", **owner))  # fmt: skip


def _check_corrections(archive: Archive, problems: list[Problem]) -> None:
    """Archivists' corrections (review/) still hash as the event log recorded them."""
    for event in read_events(archive.events_path):
        if event.get("type") != "metadata modification" or not event.get("file"):
            continue
        path = archive.root / event["file"]
        if not path.exists():
            problems.append(Problem("missing", event["file"], "a correction recorded in events.jsonl is gone",
                                    document=event.get("document")))  # fmt: skip
        elif sha256_file(path) != event.get("sha256"):
            problems.append(Problem("changed", event["file"], "a correction was altered after it was recorded",
                                    document=event.get("document")))  # fmt: skip


def _check_quarantine(archive: Archive, problems: list[Problem]) -> None:
    for reason in sorted(archive.root.glob("quarantine/*/reason.json")):
        expected = read_json(reason).get("sha256")
        for kept in reason.parent.glob("original*"):
            if expected and sha256_file(kept) != expected:
                relative = str(kept.relative_to(archive.root))
                problems.append(
                    Problem("quarantine_changed", relative, "quarantined file no longer matches its checksum")
                )
