"""The archivist's review of a batch: its verdict (accept, with the certificate and
the acceptance event), and the flags one by one (list, look, resolve). The command
line and the review page call these same functions."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from archive.acceptance.certificate import page_lines, page_png, page_text, write_certificate
from archive.acceptance.checks import Acceptance, Flag, check_batch, find_flag, flag_known
from archive.config import load_config
from archive.errors import NotFound
from archive.preservation.signing import reseal
from archive.records.corrections import EDITABLE, bidders_as_corrected, correct_page_text, field_values, resolve_flag
from archive.records.document import DocumentRecord
from archive.records.export import ExportedDocument, visible_document
from archive.records.filing import Reindex, correct_document_bidders, correct_document_metadata, file_document
from archive.records.transaction import BID_OPENING
from archive.storage.audit import record_use
from archive.storage.store import Archive, check_project_code

CORRECTABLE = EDITABLE  # the fields ``fix_metadata`` takes (the review page's metadata form)


@dataclass
class Verdict:
    acceptance: Acceptance
    override: str | None  # the reason given for accepting with open flags (None where none was needed)
    certificate: dict[str, Path]  # json, md, html

    @property
    def accepted(self) -> bool:
        return self.acceptance.passed or bool(self.override)

    @property
    def open_flags(self) -> list[Flag]:
        return self.acceptance.open_flags

    @property
    def word(self) -> str:
        if self.acceptance.passed:
            return "ACCEPTED"
        return "ACCEPTED BY OVERRIDE" if self.override else "NOT ACCEPTED"

    def render(self) -> str:
        """What ``accept`` prints: each check with its evidence and open flags, then the verdict."""
        lines = []
        for check in self.acceptance.checks:
            lines.append(f"{'PASS' if check.passed else 'FAIL'}  {check.name}: {'; '.join(check.evidence)}")
            lines += [f"      [{f.id}] {f.message}" + (f" ({f.where})" if f.where else "") for f in check.open_flags]
        lines.append(f"batch {self.acceptance.batch}: {self.word}; {len(self.open_flags)} open flag(s); "
                     f"certificate {self.certificate['html']}")  # fmt: skip
        return "\n".join(lines)


def accept_batch(archive: Archive, batch: str | None = None, override: str | None = None) -> Verdict:
    """Check a batch (the latest when none is named), write its certificate and log
    the acceptance: accepted when every check passed, or by ``override`` (a reason)."""
    acceptance = check_batch(archive, batch)
    override = None if acceptance.passed else override
    verdict = Verdict(acceptance, override, write_certificate(archive, acceptance, override))
    archive.log("acceptance", "success" if verdict.accepted else "failure", batch=acceptance.batch,
                open_flags=len(verdict.open_flags), override=override)  # fmt: skip
    return verdict


def open_flags(archive: Archive, batch: str | None = None) -> tuple[str, list[Flag]]:
    """(batch, its open flags)."""
    acceptance = check_batch(archive, batch)
    return acceptance.batch, acceptance.open_flags


def render_flags(batch: str, flags: list[Flag]) -> str:
    """What ``review list`` prints: one line per open flag, then their number."""
    lines = [f"[{item.id}] {item.check}: {item.message}  {item.where}" for item in flags]
    return "\n".join([*lines, f"{len(flags)} open flag(s) in batch {batch}"])


@dataclass
class FlagView:
    flag: Flag
    document: ExportedDocument | None  # None for a flag on no document (a batch-level one)
    text: str | None  # the page's text, corrections applied (None for a flag on no page)
    # the lines the OCR read with a confidence under the threshold (the original OCR's, for the
    # reviewer's eye: a corrected text may no longer hold them)
    low_lines: list[str] = field(default_factory=list)
    # the document's own bidders as corrected ({"name", "price"}); None where it lists none and is no
    # bid-opening record (nothing to correct there: a transaction's bidders are its bid-opening record's)
    bidders: list[dict] | None = None

    def png(self, archive: Archive, width: int | None = None) -> bytes:
        """The flagged page as PNG (the master image, upright); empty for a flag on no page."""
        if not (self.flag.document and self.flag.page):
            return b""
        return page_png(archive, self.flag.document, self.flag.page, width=width) or b""

    def render(self, image: Path | None = None) -> str:
        """What ``review show`` prints: the flag, where its page image was written, the
        page's text and the document's metadata."""
        lines = [f"[{self.flag.id}] {self.flag.check}: {self.flag.message}"]
        if image is not None:
            lines.append(f"page image: {image}")
        if self.text is not None:
            lines += ["--- text ---", self.text]
        if self.document is not None:
            metadata = self.document.metadata | {"doc_type": self.document.doc_type}
            lines += ["--- metadata ---", json.dumps(metadata, ensure_ascii=False, indent=2)]
        if self.bidders:
            lines += ["--- bidders (review fix-bids corrects them) ---"]
            lines += [f"{bid['name']}\t{'' if bid['price'] is None else bid['price']}" for bid in self.bidders]
        return "\n".join(lines)


def show_flag(archive: Archive, flag_id: str, batch: str | None = None, known: Iterable[Flag] = ()) -> FlagView:
    """A flag with its page and document, as this OS user may see them (logged as use).
    A flag on a document the user may not see answers as a flag that does not exist.
    ``known``: the batch's flags as the caller has them already (the review page's
    list), so that the checks are not run over the whole batch again for each page."""
    missing = NotFound(f"no flag {flag_id} in the batch; `trade-archive review list` shows them")
    flag = next((f for f in known if f.id == flag_id), None) or find_flag(archive, flag_id, batch)
    if flag is None:
        raise missing
    document = None
    if flag.document:
        document = visible_document(archive, flag.document)
        if document is None:
            raise missing
        record_use(archive, "show", 1, document=flag.document, page=flag.page, flag=flag.id)
    bidders = _own_bidders(archive, document) if document is not None else None
    if not (flag.document and flag.page):
        return FlagView(flag, document, None, bidders=bidders)
    lines = page_lines(archive, flag.document, flag.page)
    threshold = low_confidence_of(document.record) if document is not None else load_config().low_confidence
    low = [text for text, confidence in lines if confidence < threshold]
    return FlagView(flag, document, page_text(archive, flag.document, flag.page), low, bidders)


def _own_bidders(archive: Archive, document: ExportedDocument) -> list[dict] | None:
    bidders = bidders_as_corrected(archive, document.record)
    return bidders if bidders or document.doc_type == BID_OPENING else None


def low_confidence_of(record: DocumentRecord) -> float:
    """The confidence under which a line of the document counts as low: the threshold its
    pages were read with, else (read before it was recorded) the configured one."""
    return float(record.process.get("low_confidence") or load_config().low_confidence)


def resolve(archive: Archive, flag_id: str, note: str, batch: str | None = None) -> None:
    """Close a flag with a note (kept in the archive and the event log)."""
    if not flag_known(archive, flag_id, batch):
        raise NotFound(f"no flag {flag_id} in this archive; `trade-archive review list` shows them")
    with archive.writer_lock():
        resolve_flag(archive, flag_id, note)


def fix_text(archive: Archive, document: str, page: int, text: str, note: str, reindex: Reindex) -> Path:
    """A page's corrected text as a new version (the OCR stays), then search refreshed."""
    with archive.writer_lock():  # not while an ingest or reindex writes the index
        path = correct_page_text(archive, document, page, text.strip(), note)
        reindex(archive, [document])
    return path


def fix_metadata(archive: Archive, document: str, fields: dict[str, str] | tuple[str, ...], note: str,
                 reindex: Reindex) -> list[str]:  # fmt: skip
    """Metadata corrections as a new version; returns the documents reindexed (a
    transaction's record is merged from all its documents, so they all change).
    ``fields``: by name, or as typed, ``FIELD=VALUE`` (``winner=`` clears the winner)."""
    values = fields if isinstance(fields, dict) else field_values(fields)
    with archive.writer_lock():
        changed = correct_document_metadata(archive, document, values, note)
        reseal(archive, [document])  # a corrected code files it: its 档号 may have gone into bag-info.txt
        reindex(archive, changed)
    return changed


def fix_bidders(archive: Archive, document: str, prices: dict[str, str] | tuple[str, ...], note: str,
                reindex: Reindex) -> list[str]:  # fmt: skip
    """Bidders' prices as corrected, by name or as typed (``NAME=PRICE``; an empty price takes
    a bidder off), a new version; returns the documents reindexed (its transaction's)."""
    values = prices if isinstance(prices, dict) else field_values(prices)
    with archive.writer_lock():
        changed = correct_document_bidders(archive, document, values, note)
        reindex(archive, changed)
    return changed


def file_by_hand(archive: Archive, document: str, project_code: str, reindex: Reindex) -> Path:
    """``trade-archive file``: a document filed under a transaction by an archivist (its
    arrangement, and its tag manifest's signature where it is signed, follow), under the
    writer lock, and search refreshed for what changed. Returns its new place."""
    with archive.writer_lock():
        target, changed = file_document(archive, document, check_project_code(project_code), "filed by hand")
        reseal(archive, [document])
        reindex(archive, changed)
    return target
