"""The record of a batch: what became of each document (``DocumentOutcome``) and
of the whole batch (``BatchSummary``), as saved in reports/<batch>.json. The ingest
writes it; acceptance, the inbox and ``report`` read it, by attribute."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from typing import Any, TypeVar

from archive.errors import ExitCode

log = logging.getLogger(__name__)

_Record = TypeVar("_Record")


def _from_json(cls: type[_Record], data: dict[str, Any]) -> _Record:
    """A record from its JSON: keys it does not know kept in ``other``, missing ones defaulted."""
    known = {f.name for f in dataclasses.fields(cls)} - {"other"}  # type: ignore[arg-type]
    return cls(**{k: v for k, v in data.items() if k in known},
               other={k: v for k, v in data.items() if k not in known})  # type: ignore[call-arg]  # fmt: skip


def _to_json(record: Any) -> dict[str, Any]:
    data = {f.name: getattr(record, f.name) for f in dataclasses.fields(record) if f.name != "other"}
    return data | record.other


@dataclass
class DocumentOutcome:
    source: str
    status: str  # archived | duplicate | quarantined | failed (even after retries) | interrupted (batch stopped)
    sha256: str = ""
    document: str | None = None
    pages: int = 0
    path: str | None = None
    reason: str | None = None
    message: str | None = None
    seconds: float = 0.0
    qc_flags: list[str] = field(default_factory=list)
    # seconds per stage: extract, pages, pdf, metadata, package; worker_*: inside pages, summed over pages
    stages: dict[str, float] = field(default_factory=dict)
    engine_seconds: float = 0.0  # of which inside the OCR models (summed over pages)
    rerun: bool = False  # a duplicate of the document archived from this very file (a batch run again)
    # a duplicate whose manifest row now says otherwise than when it was archived: field -> [then, now]
    manifest_changes: dict[str, list] = field(default_factory=dict)

    manifest_pages: str | None = None  # the page count the manifest declares (acceptance: 漏扫/多扫)
    other: dict[str, Any] = field(default_factory=dict, repr=False)  # keys a newer version wrote

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DocumentOutcome:
        return _from_json(cls, data)

    def to_json(self) -> dict[str, Any]:
        return _to_json(self)


@dataclass
class BatchSummary:
    """A batch's outcome: saved as reports/<batch>.json (``archive.acceptance.report``
    saves and loads it), returned by the flow and printed by ``ingest``."""

    batch: str
    archive: str
    run: str | None = None  # the Prefect flow run that started it (an inbox run: one batch per delivery)
    documents: int = 0
    archived: int = 0
    duplicates: int = 0
    duplicate_files: list[dict] = field(default_factory=list)  # same bytes as an archived (or quarantined) file
    quarantined: list[dict] = field(default_factory=list)
    failed: list[dict] = field(default_factory=list)  # could not be processed even after retries
    interrupted: list[str] = field(default_factory=list)  # not done: the batch was stopped; the next run does them
    ignored: list[str] = field(default_factory=list)
    manifest_rows_without_file: list[str] = field(default_factory=list)
    files_without_manifest_row: list[str] = field(default_factory=list)
    manifest_problems: list[str] = field(default_factory=list)  # "row 7: amount '12,3a' is not a number of yuan"
    filed_by_name: list[dict] = field(default_factory=list)  # unfiled documents matched to a transaction
    recovered: list[str] = field(default_factory=list)  # filed by a stopped run that did not log it: logged now
    # already archived, but their manifest row says otherwise now: {source, document, changes: {field: [then, now]}}
    manifest_changes: list[dict] = field(default_factory=list)
    qc_flags: dict[str, list[str]] = field(default_factory=dict)  # source file -> what QC should look at
    stage_seconds: dict[str, float] = field(default_factory=dict)  # summed over documents (they overlap in time)
    engine_seconds: float = 0.0  # time inside the OCR models, summed over pages (all workers)
    pages: int = 0
    indexed_pages: int = 0
    seconds: float = 0.0
    pages_per_minute: float = 0.0
    outcomes: list[DocumentOutcome] = field(default_factory=list)
    other: dict[str, Any] = field(default_factory=dict, repr=False)  # keys a newer version wrote

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BatchSummary:
        summary = _from_json(cls, data)
        summary.outcomes = [DocumentOutcome.from_json(o) for o in data.get("outcomes", [])]
        return summary

    def to_json(self) -> dict[str, Any]:
        return _to_json(self) | {"outcomes": [o.to_json() for o in self.outcomes]}

    @property
    def exit_code(self) -> ExitCode:
        """130 when stopped (run it again to finish), 15 when a document failed even after retries."""
        return ExitCode.interrupted if self.interrupted else ExitCode.other_error if self.failed else ExitCode.ok

    def add(self, outcome: DocumentOutcome) -> None:
        """Count one document's outcome under its status."""
        self.outcomes.append(outcome)
        status = outcome.status
        if status == "archived":
            self.archived += 1
            self.pages += outcome.pages
        elif status == "duplicate":
            self.duplicates += 1
            self.duplicate_files.append({"source": outcome.source, "archived_as": outcome.path,
                                         "rerun": outcome.rerun})  # fmt: skip
            if changes := outcome.manifest_changes:
                self.manifest_changes.append(
                    {"source": outcome.source, "document": outcome.document, "changes": changes}
                )
                log.warning("%s is archived already; its manifest row changed since (%s): the archive keeps the "
                            "values it was given; apply a correction with `trade-archive review fix-metadata %s "
                            "FIELD=VALUE --note ...`", outcome.source, ", ".join(changes),
                            outcome.document)  # fmt: skip
        elif status == "failed":
            self.failed.append({"source": outcome.source, "message": outcome.message})
        elif status == "interrupted":
            self.interrupted.append(outcome.source)
        else:
            self.quarantined.append({"source": outcome.source, "reason": outcome.reason, "message": outcome.message})
