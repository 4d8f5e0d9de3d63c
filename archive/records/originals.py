"""The paper originals (档案法 Art. 38: digitised originals are still kept properly): where
each is kept (box 盒号 and shelf 架位: a manifest's columns, or ``trade-archive paper``), which
are due for appraisal (鉴定) when their retention ends, and the appraisal decisions. All of
it lives in the event log; the electronic copies are never touched by it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from archive.errors import InvalidValue, NotFound
from archive.records.arrangement import Arrangement
from archive.records.document import DocumentRecord
from archive.storage.events import read_events
from archive.storage.store import Archive

PAPER = "paper location"
APPRAISAL = "appraisal"
DECISIONS = ("destroy", "keep")


def record_paper_location(archive: Archive, document: str, box: str, shelf: str) -> dict:
    """Where a document's paper original is now kept (the latest record holds)."""
    box, shelf = box.strip(), shelf.strip()
    if not box or not shelf:
        raise InvalidValue("give the box and the shelf, e.g. --box 2023-015 --shelf A-03-2")
    _package(archive, document)
    return archive.log(PAPER, document=document, box=box, shelf=shelf)


def paper_locations(archive: Archive) -> dict[str, tuple[str, str]]:
    """document -> (box, shelf): the latest ``paper`` record, else the manifest's columns."""
    found = {}
    for package in archive.documents():
        row = DocumentRecord.load(package).manifest_row or {}
        if row.get("box") or row.get("shelf"):
            found[package.name] = (row.get("box", ""), row.get("shelf", ""))
    for event in read_events(archive.events_path):
        if event.get("type") == PAPER:
            found[event["document"]] = (event["box"], event["shelf"])
    return found


@dataclass(frozen=True)
class DueForAppraisal:
    """A document whose retention ends by the year asked, with its last appraisal decision."""

    document: str
    archival_code: str
    title: str | None
    retention: str
    year: int
    retention_ends: int
    box: str
    shelf: str
    decision: str | None  # destroy | keep | None (not yet appraised)
    approver: str | None
    decided: str | None  # when

    def line(self) -> str:
        """One line of ``disposal``'s list."""
        decided = f"{self.decision} ({self.approver})" if self.decision else "not appraised"
        box = self.box or "-"
        return f"{self.archival_code}  ends {self.retention_ends}  box {box}  {decided}  {self.title}"


@dataclass(frozen=True)
class Appraisal:
    """An appraisal decision as logged."""

    archival_code: str
    decision: str  # destroy | keep
    approver: str
    early: bool  # decided before the retention period ends

    def summary(self) -> str:
        early = " (before its retention ends)" if self.early else ""
        return f"{self.archival_code}: {self.decision}{early}, approved by {self.approver}; logged"


def due_for_appraisal(archive: Archive, due: int | None = None) -> list[DueForAppraisal]:
    """Documents whose retention period ends in ``due`` (default: this year) or before, in
    档号 order; 永久 documents never are."""
    due = due or datetime.now(timezone.utc).year
    decisions = {e["document"]: e for e in read_events(archive.events_path) if e.get("type") == APPRAISAL}
    paper = paper_locations(archive)
    listed = []
    for package in archive.documents():
        record = DocumentRecord.load(package)
        arranged = Arrangement.of(record)
        if arranged is None or arranged.retention_ends is None or arranged.retention_ends > due:
            continue
        decision = decisions.get(record.document, {})
        box, shelf = paper.get(record.document, ("", ""))
        listed.append(DueForAppraisal(record.document, arranged.archival_code,
                                      (record.description or {}).get("title"), arranged.retention,
                                      arranged.year, arranged.retention_ends, box, shelf, decision.get("decision"),
                                      decision.get("approver"), decision.get("time")))  # fmt: skip
    return sorted(listed, key=lambda d: d.archival_code)


def record_appraisal(archive: Archive, document: str, decision: str, approver: str, note: str) -> Appraisal:
    """An appraisal decision (鉴定) on a document's paper original, logged: who approved
    it and why. Nothing is deleted: the electronic copy stays whatever is decided."""
    if decision not in DECISIONS:
        raise InvalidValue(f"decision {decision!r}: one of {', '.join(DECISIONS)}")
    if not approver.strip() or not note.strip():
        raise InvalidValue("an appraisal names its approver and says why: --approver NAME --note TEXT")
    arranged = Arrangement.of(DocumentRecord.load(_package(archive, document)))
    if arranged is None:
        raise InvalidValue(f"document {document} is not yet filed and arranged: it has no retention period")
    if decision == "destroy" and arranged.retention_ends is None:
        raise InvalidValue(f"{arranged.archival_code} is kept permanently (永久): it is never destroyed")
    early = arranged.retention_ends is not None and arranged.retention_ends > datetime.now(timezone.utc).year
    archive.log(APPRAISAL, document=document, archival_code=arranged.archival_code, decision=decision,
                approver=approver.strip(), note=note.strip(), retention_ends=arranged.retention_ends,
                before_retention_ends=early)  # fmt: skip
    return Appraisal(arranged.archival_code, decision, approver.strip(), early)


def _package(archive: Archive, document: str) -> Path:
    package = archive.find_document(document)
    if package is None:
        raise NotFound(f"no document {document} in {archive.root}; `trade-archive catalogue` lists them")
    return package
