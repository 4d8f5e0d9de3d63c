"""Ingesting one document: the orchestrator over the step functions, in the
order a person would describe it. Plain Python; ``flows/`` wraps it in a
Prefect task and supplies a process pool for the pages."""

from __future__ import annotations

import getpass
import logging
import platform
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path

import bagit
import pypdf

from archive import PIPELINE_VERSION
from archive.capture.intake import SourcePdf, brief, close_source, open_source_pdf
from archive.capture.ocr import engine_version
from archive.capture.pageproc import DEFAULT_SETTINGS, PageJob, PageSettings, process_page
from archive.capture.pages import ExtractJob, PageImage, extract_pages
from archive.capture.textpdf import join_pages
from archive.capture.timing import StageClock, add_up
from archive.config import load_config
from archive.errors import ArchiveError, BatchInterrupted, InputRejected, TradeArchiveError
from archive.preservation.signing import SigningError, SigningSettings, sign_bag, sign_pdf
from archive.records.arrangement import arrange
from archive.records.batch import DocumentOutcome
from archive.records.bidders import bids_in_tables, winner_price_differs
from archive.records.document import DocumentRecord
from archive.records.metadata import merge
from archive.records.transaction import refresh_folder, refresh_transaction
from archive.storage.events import read_events
from archive.storage.fixity import atomic_write_json, sha256_file
from archive.storage.package import file_package, make_bag
from archive.storage.store import Archive, read_json, readable_path

logger = logging.getLogger(__name__)

PageRunner = Callable[[Sequence[PageJob]], list[dict]]
# Pages' images taken out of the PDF elsewhere (the batch's worker processes: pdfium there
# cannot take the batch down with it); None: here, in this thread.
Extractor = Callable[[Sequence[ExtractJob]], list[PageImage]]


def run_pages_here(jobs: Sequence[PageJob]) -> list[dict]:
    """Pages one after another in this process (tests, one-off runs)."""
    return [process_page(job) for job in jobs]


def document_id_for(sha256: str) -> str:
    """Stable id: the same bytes always get the same id, wherever they arrive from."""
    return sha256[:16]


def ingest_document(
    source: Path,
    archive: Archive,
    batch: str,
    manifest_row: dict[str, str] | None = None,
    settings: PageSettings = DEFAULT_SETTINGS,
    run_pages: PageRunner = run_pages_here,
    force_ocr: bool = False,
    signing: SigningSettings | None = None,
    extract: Extractor | None = None,
) -> DocumentOutcome:
    """Archive or quarantine ``source``; only ``OSError`` (disk or network trouble,
    worth a retry), ``SigningError`` (the key or the timestamp authority failed: the
    document is not filed, a re-run files it) and ``BatchInterrupted`` (the batch was
    stopped) escape. ``settings``: how its pages are read (engine, thresholds, time
    limit). ``force_ocr``: OCR every page even where the PDF has its own text layer.
    ``signing``: the centre's key (default: the configuration's). ``extract``: where the
    page images are taken out of the PDF (default: here)."""
    started = time.monotonic()
    signing = signing if signing is not None else SigningSettings.from_config(load_config())
    sha256 = sha256_file(source)
    document_id = document_id_for(sha256)
    # file names are bytes on disk (GBK from Windows, control characters): record a readable form
    outcome = DocumentOutcome(source=readable_path(source), sha256=sha256, status="archived", document=document_id)

    if existing := archive.find_document(document_id) or archive.quarantined(sha256):
        return _duplicate(archive, outcome, existing, batch, manifest_row)
    try:
        source_pdf, reader = open_source_pdf(source)
        staging = archive.staging_dir / f"{document_id}.{uuid.uuid4().hex[:8]}"
        staging.mkdir(parents=True)
        try:
            with tempfile.TemporaryDirectory(prefix="trade-archive-") as scratch:
                package = _build_package(source_pdf, sha256, document_id, reader, staging, Path(scratch),
                                         manifest_row, settings, (run_pages, extract), batch, force_ocr,
                                         signing)  # fmt: skip
            target = file_package(archive, staging, document_id, package.metadata["project_code"])
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        finally:
            close_source(reader)
    except FileExistsError as error:  # the same bytes arrived twice in this batch and the other copy won
        return _duplicate(archive, outcome, Path(error.filename), batch, manifest_row)
    except (OSError, BatchInterrupted, SigningError):
        raise  # disk or network trouble (the caller may retry), or a stop: nothing was filed
    except Exception as error:  # noqa: BLE001 - any other failure is this input's; keep it, go on
        name = readable_path(source.name)
        if isinstance(error, InputRejected):
            rejected = error
        elif isinstance(error, RecursionError):
            rejected = InputRejected("unreadable_pdf", f"{name} cannot be read: its object tree is nested "
                                     "too deeply or refers to itself (RecursionError); rescan it.")  # fmt: skip
        else:
            rejected = InputRejected(
                "processing_error", f"{name} could not be processed ({type(error).__name__}: {brief(error)}); "
                "it is kept in quarantine; report it with this message.")  # fmt: skip
        message = str(rejected).encode("utf-8", "backslashreplace").decode("utf-8")  # no lone surrogates in JSON
        archive.quarantine(source, sha256, rejected.reason, message, batch)
        outcome.status, outcome.reason, outcome.message = "quarantined", rejected.reason, message
        outcome.seconds = round(time.monotonic() - started, 2)
        return outcome

    outcome.pages, outcome.path = source_pdf.page_count, str(target)
    outcome.qc_flags = package.qc_flags
    outcome.stages = package.process["stage_seconds"]
    outcome.engine_seconds = package.process["engine_seconds"]
    outcome.seconds = round(time.monotonic() - started, 2)
    outcome.stages["package"] = round(max(0.0, outcome.seconds - sum(outcome.stages.values())), 3)
    # Inside the "pages" stage, in the worker processes (so they overlap each other in time)
    outcome.stages.update({f"worker_{k}": v for k, v in package.process["page_stage_seconds"].items()})
    _log_ingestion(archive, target, batch, source=outcome.source, sha256=sha256, pages=outcome.pages,
                   seconds=outcome.seconds, signed=signing.enabled)  # fmt: skip
    try:  # after the event: the package is archived whatever happens to its transaction's record
        refresh_transaction(archive, package.metadata["project_code"])
    except (OSError, ArchiveError) as error:  # verify reports the record; reindex rewrites it
        logger.warning("%s: its transaction's record was not updated (%s); `trade-archive reindex` rewrites it",
                       outcome.source, error)  # fmt: skip
    try:  # with the record written: a signature missing from the page is the transaction's parties
        if arrange(archive, target) is not None and signing.enabled:
            sign_bag(target, signing)  # its 档号 went into bag-info.txt: the tag manifest changed
    except (OSError, TradeArchiveError) as error:  # a number given is kept; reindex completes the arrangement
        logger.warning("%s: not yet arranged (%s); `trade-archive reindex` completes it", outcome.source, error)
    return outcome


def record_stopped_filings(archive: Archive, outcomes: list[DocumentOutcome], batch: str) -> list[str]:
    """Packages a stopped run filed without logging their ingestion (killed between the
    rename and the log line), met again as duplicates when the batch is run again: each
    valid one gets its ingestion event and its transaction record now, so ``verify`` no
    longer reports it ``unlogged``. One pass over the log for the whole batch."""
    # Only files met again from the same path (a batch run again): the log is read whole.
    met = {o.document: o for o in outcomes if o.status == "duplicate" and o.rerun and o.path}
    if not met:
        return []
    logged = {e.get("document") for e in read_events(archive.events_path)
              if e.get("type") == "ingestion" and e.get("outcome") == "success"}  # fmt: skip
    recorded = []
    for document, outcome in sorted(met.items()):
        package = Path(outcome.path)
        if document in logged or not (package / "bagit.txt").exists():
            continue
        try:
            bagit.Bag(str(package)).validate(processes=1)
        except bagit.BagError:
            continue  # altered since: verify reports it; never vouch for it in the log
        archived = DocumentRecord.load(package)
        _log_ingestion(archive, package, batch, source=archived.source_path, sha256=archived.source_sha256,
                       pages=archived.pages, recovered=True)  # fmt: skip
        if package.parent.parent.name == "transactions":
            refresh_folder(archive, package.parent)
            arrange(archive, package)
        recorded.append(document)
    return recorded


def _log_ingestion(archive: Archive, package: Path, batch: str, **detail: object) -> None:
    """The event that files a package: where it is and its tag manifest's SHA-256, which
    ``verify`` follows (and checks, so a package re-bagged since is caught)."""
    archive.log("ingestion", document=package.name, batch=batch, path=str(package.relative_to(archive.root)),
                tagmanifest_sha256=sha256_file(package / "tagmanifest-sha256.txt"), **detail)  # fmt: skip


def _duplicate(
    archive: Archive, outcome: DocumentOutcome, existing: Path, batch: str, manifest_row: dict[str, str] | None
) -> DocumentOutcome:
    """Same SHA-256 as something already archived (or quarantined): keep one copy, log the
    arrival. A file still in quarantine is reported as quarantined again, with its reason,
    so that a batch run again does not hide it among the duplicates. A manifest row that
    changed since (a corrected platform export) is reported: the archive keeps what it
    was given, and ``review fix-metadata`` applies a correction, on the record."""
    outcome.status, outcome.path = "duplicate", str(existing)
    archive.log("ingestion", "duplicate", source=outcome.source, sha256=outcome.sha256, document=outcome.document,
                existing=str(existing.relative_to(archive.root)), batch=batch)  # fmt: skip
    if (existing / "reason.json").exists():
        kept = read_json(existing / "reason.json")
        outcome.status, outcome.reason = "quarantined", kept.get("reason")
        outcome.message = f"already in quarantine: {kept.get('message')}"
    elif (existing / "data" / "document.json").exists():
        archived = DocumentRecord.load(existing)
        outcome.rerun = archived.source_path == outcome.source
        outcome.manifest_changes = _row_changes(archived.manifest_row, manifest_row)
    return outcome


def _row_changes(then: dict[str, str] | None, now: dict[str, str] | None) -> dict[str, list]:
    """Fields a manifest row gives now that differ from the row the document was archived with."""
    if not now:
        return {}
    then = then or {}
    return {name: [then.get(name), value] for name, value in now.items() if name != "file" and then.get(name) != value}


def _build_package(
    source_pdf: SourcePdf,
    sha256: str,
    document_id: str,
    reader: pypdf.PdfReader,
    staging: Path,
    scratch: Path,
    manifest_row: dict[str, str] | None,
    settings: PageSettings,
    runners: tuple[PageRunner, Extractor | None],
    batch: str,
    force_ocr: bool = False,
    signing: SigningSettings | None = None,
) -> DocumentRecord:
    """Write every file of the package into ``staging`` and bag it; return its record.
    With a signing key the access PDF is signed before the bag's manifests are made
    (signing changes it), and the tag manifest once they are."""
    source = source_pdf.path
    name = readable_path(source.name)
    original = staging / "original.pdf"
    shutil.copyfile(source, original)
    if sha256_file(original) != sha256:
        raise OSError(f"copy of {source} does not match its checksum; the disk or the source is changing")

    clock = StageClock()
    run_pages, extract = runners
    images = _page_images(source_pdf, reader, staging / "pages", extract, name)
    clock.lap("extract")
    jobs = [
        PageJob(img.number, str(img.path), settings.engine, img.dpi, None if force_ocr else img.text_boxes,
                str(scratch / f"{img.number:04d}.pdf"), settings.low_confidence, settings.page_seconds,
                img.image_boxes, settings.ocr_backend, settings.ocr_reread_below)
        for img in images
    ]  # fmt: skip
    try:
        records = run_pages(jobs)
    except InputRejected as error:  # a page the worker refused (page_timeout, image_too_large): name the file
        raise InputRejected(error.reason, f"{name}: {error}") from error
    clock.lap("pages")  # orientation, deskew, seals, OCR: mostly the engine, in the worker processes

    (staging / "ocr").mkdir()
    for image, record in zip(images, records):
        record.update(dpi=image.dpi, master_image=f"pages/{image.path.name}")
        atomic_write_json(staging / "ocr" / f"{image.number:04d}.json", _without_paths(record))

    conformance = join_pages([Path(r["page_pdf"]) for r in records], staging / "access.pdf", title=name)
    clock.lap("pdf")
    if signing is not None and signing.enabled:
        sign_pdf(staging / "access.pdf", signing)
        clock.lap("sign")
    text = "\n".join(r["text"] for r in records)
    meta = merge(manifest_row, text)
    bids = bids_in_tables([table for record in records for table in record.get("tables", [])])
    if winner_price_differs(bids, meta.values["winner"], meta.values["amount"]):
        meta.qc_flags.append("winner_bid_vs_amount")  # the bid-opening record's price is not the award's
    document = DocumentRecord(
        document=document_id,
        source=name,
        source_path=readable_path(source),
        source_sha256=sha256,
        pages=len(images),
        doc_type=meta.doc_type,
        metadata=meta.values,
        provenance=meta.provenance,
        extracted=meta.extracted,
        bidders=[bid.to_json() for bid in bids],  # name and price per bidder (bid-opening tables)
        conflicts=meta.conflicts,
        qc_flags=meta.qc_flags
        + source_pdf.qc_flags  # pdf_has_javascript, ...: active content the original keeps and access.pdf not
        + [f"low_confidence_page:{r['page']}" for r in records if r.get("low_confidence")]
        + ([] if conformance.pdfa else ["access_pdf_not_pdfa"]),
        manifest_row=manifest_row,
        # PDF/A flavour access.pdf was validated against as it was written, or why it is a plain PDF
        access_pdf={"pdfa": conformance.pdfa, "problems": list(conformance.problems)},
        process={
            "pipeline_version": PIPELINE_VERSION,
            "engine": _engine_line(records, settings),
            "low_confidence": settings.low_confidence,  # the threshold its low_confidence_page flags came from
            "batch": batch,
            "operator": getpass.getuser(),
            "host": platform.node(),
            "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "pdf_version": source_pdf.pdf_version,
        },
        page_images=[
            {
                "page": img.number,
                "file": f"pages/{img.path.name}",
                "width": img.width,
                "height": img.height,
                "dpi": img.dpi,
                "colour_mode": img.mode,
                "compression": img.compression,
                "method": img.method,
                "text_source": record.get("text_source"),  # pdf (own text layer) | ocr | none (blank)
            }
            for img, record in zip(images, records)
        ],  # fmt: skip
    )
    clock.lap("metadata")
    document.process["stage_seconds"] = clock.laps  # packaging is timed by the caller's total
    document.process["page_stage_seconds"] = add_up(r.get("stages", {}) for r in records)  # summed over pages
    document.process["engine_seconds"] = round(sum(r.get("engine_seconds", 0.0) for r in records), 3)
    document.save(staging)
    make_bag(
        staging,
        {
            key: _tag_value(value)
            for key, value in {
                "Source-Organization": "trade-archive",
                "External-Identifier": document_id,
                "External-Description": name,
                "Project-Code": str(meta.values.get("project_code") or ""),
                "Project-Name": str(meta.values.get("project_name") or ""),
                "Transaction-Type": str(meta.values.get("transaction_type") or ""),
                "Document-Type": meta.doc_type,
                "Source-SHA256": sha256,
                "OCR-Engine": document.process["engine"],
                "Pipeline-Version": PIPELINE_VERSION,
                "Payload-Pages": str(len(images)),
                "Batch": batch,
            }.items()
        },
    )
    if signing is not None and signing.enabled:
        sign_bag(staging, signing)
    return document


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


def _tag_value(text: str) -> str:
    """One line of bag-info.txt: a newline in a manifest value must not start a tag of its own."""
    return _CONTROL.sub(" ", text).strip()


def _page_images(source_pdf: SourcePdf, reader: pypdf.PdfReader, folder: Path, extract: Extractor | None,
                 name: str) -> list[PageImage]:  # fmt: skip
    if extract is None:
        return list(extract_pages(reader, source_pdf.path, folder))
    folder.mkdir(parents=True, exist_ok=True)
    jobs = [ExtractJob(str(source_pdf.path), number, str(folder)) for number in range(1, source_pdf.page_count + 1)]
    try:
        return extract(jobs)
    except InputRejected as error:  # its worker died (worker_crashed): name the file
        if name in str(error):
            raise
        raise InputRejected(error.reason, f"{name}: {error}") from error


def _without_paths(record: dict) -> dict:
    """The OCR JSON keeps no scratch paths (they do not exist after filing), nor timings
    (the engine's version is the document's, in its process record)."""
    return {k: v for k, v in record.items() if k not in ("page_pdf", "stages", "engine_version")}


def _engine_line(records: list[dict], settings: PageSettings) -> str:
    """What read the pages, as the processes that read them report it: with ``ocr_backend``
    auto, a worker on another machine runs OpenVINO only if it has it installed. Where no
    page needed an engine (blank pages, a text layer), what this machine would run."""
    ran = sorted({record["engine_version"] for record in records if record.get("engine_version")})
    return "; ".join(ran) or engine_version(settings.engine, settings.ocr_backend)
