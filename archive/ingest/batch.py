"""The batch use case, as plain Python: every PDF under a folder through
``ingest_document``, with the manifest joined, progress counted in pages, filing by
project name, the index brought up to date and the batch report written.

Where each document runs is the caller's: ``run_batch`` is given ``submit``, which
starts one document and returns something whose ``outcome()`` waits for it. The
Prefect flow submits Prefect tasks (threads, or a Dask cluster); ``submit_here`` runs
the document in the calling thread. Search is the caller's too (``update_index``):
archive/ is built below the index.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Protocol

from archive.acceptance.report import save_report
from archive.capture.backends import ModelSettings
from archive.capture.pageproc import DEFAULT_SETTINGS, PageSettings
from archive.capture.parallel import PagePool, default_workers
from archive.capture.timing import add_up
from archive.errors import BadArgument, BatchInterrupted
from archive.ingest.document import ingest_document, record_stopped_filings
from archive.ingest.inbox import COMPANIONS
from archive.ingest.progress import BatchProgress, ProgressListener, count_pages
from archive.preservation.signing import reseal
from archive.records.arrangement import arrange_pending, check_arrangement_settings
from archive.records.batch import BatchSummary, DocumentOutcome
from archive.records.filing import file_unfiled_by_project_name
from archive.records.manifest import Manifest, read_manifest, read_manifests
from archive.storage.fixity import copies_of_earlier
from archive.storage.store import Archive, is_inside, readable_path

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DocumentJob:
    """One document of a batch, as it travels to wherever it runs (plain values: a
    Dask worker receives it pickled). ``settings``: how its pages are read, the
    archivist's, whatever the environment of the machine that reads them says."""

    source: str
    archive_root: str
    batch: str
    manifest_row: dict | None
    settings: PageSettings


class Pending(Protocol):
    def outcome(self) -> DocumentOutcome | BaseException:
        """Wait for the document; its outcome, or the exception that ended it."""
        ...


Submit = Callable[[DocumentJob], Pending]


class BatchHost:
    """What the batches run in this process share: who watches them (the CLI's bar),
    OCR pools started before a batch, the stop, and each running batch's pool and
    page accounting (tasks find them by batch; on Dask they are not there)."""

    def __init__(self) -> None:
        self.listeners: list[ProgressListener] = []
        self.ready_pools: list[PagePool] = []
        self.stopping = threading.Event()
        self.running: dict[str, tuple[PagePool, BatchProgress]] = {}
        # (engine, model settings) -> pool, for documents of batches run elsewhere
        self._own_pools: dict[tuple[str, ModelSettings], PagePool] = {}
        self._own_lock = threading.Lock()

    def stop(self) -> None:
        """Stop the batches of this process soon and cleanly: documents not started are
        not started, pages not yet read are not read, and a document not finished is not
        archived. Each batch still indexes what it archived and writes its report."""
        self.stopping.set()
        for pool in [*(pool for pool, _ in self.running.values()), *self.ready_pools]:
            pool.stop()

    def own_pool(self, settings: PageSettings) -> PagePool:
        """A pool for the pages of documents whose batch runs in another process (a Dask
        worker): pages read in worker processes, on their main thread, where the per-page
        time limit holds (a Dask worker's task thread has none). Kept for the process's
        life: the models load once, not for every document."""
        key = (settings.engine, settings.models)
        with self._own_lock:
            if key not in self._own_pools:
                self._own_pools[key] = PagePool(default_workers(), settings.engine, models=settings.models).warm()
            return self._own_pools[key]

    def close_own_pools(self) -> None:
        """Shut the pools ``own_pool`` started (their processes exit with this one anyway)."""
        with self._own_lock:
            pools, self._own_pools = list(self._own_pools.values()), {}
        for pool in pools:
            pool.__exit__(None, None, None)

    @contextlib.contextmanager
    def pages_ready(self, workers: int, settings: PageSettings) -> Iterator[PagePool]:
        """OCR workers started before the batch: their models load while Prefect starts."""
        with PagePool(workers, settings.engine, models=settings.models).warm() as pool:
            self.ready_pools.append(pool)
            try:
                yield pool
            finally:
                self.ready_pools.remove(pool)

    @contextlib.contextmanager
    def report_progress(self, listener: ProgressListener) -> Iterator[ProgressListener]:
        """Send ``listener`` a snapshot after every page and document of the batches
        run in this process inside the block."""
        self.listeners.append(listener)
        try:
            yield listener
        finally:
            self.listeners.remove(listener)


HOST = BatchHost()


def stop_requested() -> bool:
    """Whether the batches of this process were asked to stop (a function, not the
    Event: Dask pickles what a task reads, and an Event cannot travel)."""
    return HOST.stopping.is_set()


def run_document(job: DocumentJob) -> DocumentOutcome:
    """One document of a batch, where it was submitted: its pages on the batch's pool
    when the batch runs in this process, else on this process's own pool (a Dask worker)."""
    pool, progress = HOST.running.get(job.batch, (None, None))
    on_page = progress.page_callback(job.source) if progress is not None else None
    try:
        if stop_requested():
            raise BatchInterrupted("the batch was stopped before this document was started")
        workers = pool or HOST.own_pool(job.settings)
        run_pages = functools.partial(workers.run, on_page=on_page)
        # pdfium in the workers too: a crash there costs this file only
        outcome = ingest_document(Path(job.source), Archive(Path(job.archive_root)), job.batch, job.manifest_row,
                                  job.settings, run_pages, extract=workers.extract)  # fmt: skip
    except BatchInterrupted as stopped:
        return DocumentOutcome(readable_path(Path(job.source)), status="interrupted", message=str(stopped))
    if progress is not None:
        progress.document_done(job.source)  # now, not when the batch reaches this document's turn
    return outcome


class _Done:
    def __init__(self, job: DocumentJob) -> None:
        try:
            self._outcome: DocumentOutcome | BaseException = run_document(job)
        except Exception as error:  # noqa: BLE001 - reported as the document's failure, as a task's would be
            self._outcome = error

    def outcome(self) -> DocumentOutcome | BaseException:
        return self._outcome


def submit_here(job: DocumentJob) -> Pending:
    """Run the document now, in this thread (tests, scripts)."""
    return _Done(job)


def find_sources(src: Path, archive_root: Path | None = None) -> tuple[list[Path], list[Path]]:
    """(PDFs, files ignored) under ``src``, recursively, in a stable order. Hidden
    files and folders (``.x.pdf``, macOS's ``._x.pdf`` resource forks, ``.Trash``)
    and links to nothing are ignored, and reported as ignored, as are files that
    are neither PDFs nor a manifest or notes. An archive inside ``src`` is skipped
    whole: its access PDFs are not scans to ingest again."""
    if src.is_file():
        return [src], []
    entries = sorted(p for p in src.rglob("*") if (p.is_file() or (p.is_symlink() and not p.exists()))
                     and (archive_root is None or not is_inside(p, archive_root)))  # fmt: skip
    hidden = {p for p in entries if any(part.startswith(".") for part in p.relative_to(src).parts) or not p.exists()}
    files = [p for p in entries if p not in hidden]
    pdfs = [p for p in files if p.suffix.lower() == ".pdf"]
    others = [p for p in files if p.suffix.lower() not in (".pdf", *COMPANIONS)]
    return pdfs, sorted([*others, *hidden])


def check_request(src: Path, manifest: str | None, columns: dict[str, str], archive_root: Path, wait: bool) -> None:
    """What a batch can tell is wrong before it starts: no PDF to ingest, a manifest it
    cannot read (wrong encoding, no header), an archive another writer holds (the batch
    takes the lock for real later)."""
    pdfs, ignored = find_sources(src, archive_root)
    if not pdfs:
        raise BadArgument("SRC", f"no PDF under {src} ({len(ignored)} other file(s) ignored)")
    if manifest:
        try:
            read_manifest(Path(manifest), columns)
        except Exception as error:  # noqa: BLE001 - whatever keeps it from being read (a damaged .xlsx too)
            raise BadArgument("--manifest", str(error) or type(error).__name__) from None
    if not wait and archive_root.is_dir():
        with Archive(archive_root).writer_lock():
            pass


def _under(path: Path, src: Path) -> str:
    """A file's path under the batch folder, as text (names copied from Chinese Windows
    machines may be GBK bytes)."""
    return readable_path(path.relative_to(src) if path != src else path.name)


def _manifest_rows(summary: BatchSummary, pdfs: list[Path], src: Path, manifest: str | list[str] | None,
                   columns: dict[str, str] | None) -> dict[Path, dict | None]:  # fmt: skip
    """Each file's manifest row (None without one), the manifest's problems in the summary."""
    if isinstance(manifest, list):  # the inbox: one per box of a delivery
        rows = read_manifests([Path(m) for m in manifest], src, columns)
    else:
        rows = read_manifest(Path(manifest), columns) if manifest else Manifest()
    # Rows by each file's whole path: the folders above SRC count too (SRC may be one box of several).
    keys = rows.keys_for([readable_path(p.resolve()) for p in pdfs])
    row_of = {p: rows.rows.get(keys[readable_path(p.resolve())] or "") for p in pdfs}
    if manifest:
        summary.manifest_problems = rows.problems
        summary.manifest_rows_without_file = sorted(set(rows.rows) - set(keys.values()))
        summary.files_without_manifest_row = sorted(_under(p, src) for p in pdfs if row_of[p] is None)
        for problem in rows.problems:
            log.warning("manifest: %s", problem)
    return row_of


def _pool_for(workers: int, settings: PageSettings,
              distributed: bool) -> contextlib.AbstractContextManager[PagePool | None]:  # fmt: skip
    """Locally, pages go to a process pool shared by the documents (one started before the
    batch where there is one); on Dask each document reads its pages on its worker."""
    wanted = (workers, settings.engine, settings.models)
    ready = next((p for p in HOST.ready_pools if (p.workers, p.engine, p.models) == wanted), None)
    if distributed:
        return contextlib.nullcontext()
    if ready is not None:
        return contextlib.nullcontext(ready)  # started by the caller, who also shuts it down
    # models load while the first document is extracted
    return PagePool(workers, settings.engine, models=settings.models).warm()


def run_batch(
    archive: Archive,
    src: Path,
    submit: Submit,
    update_index: Callable[[Archive], int],
    manifest: str | list[str] | None = None,
    settings: PageSettings = DEFAULT_SETTINGS,
    workers: int = 1,
    columns: dict[str, str] | None = None,
    distributed: bool = False,
    on_document: Callable[[BatchSummary, BatchProgress], None] | None = None,
    run: str | None = None,
) -> BatchSummary:
    """Ingest every PDF under ``src`` into ``archive`` (its writer lock held by the
    caller). ``submit`` starts a document; ``settings`` travel with each; ``update_index``
    indexes what the batch changed; ``on_document`` is told after each document (the
    flow's progress artifact); ``run``: the flow run that started it, for the report."""
    started = time.monotonic()
    check_arrangement_settings()
    batch = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    if leftovers := archive.clear_staging():
        log.warning("removed %d half-written packages left by an interrupted run", len(leftovers))
    pdfs, others = find_sources(src, archive.root)
    summary = BatchSummary(batch, str(archive.root), run, len(pdfs), ignored=[readable_path(p) for p in others])
    row_of = _manifest_rows(summary, pdfs, src, manifest, columns)
    # Pages up front (milliseconds a file), so progress and time to go are in pages.
    progress = BatchProgress({str(p): count_pages(p) for p in pdfs}, list(HOST.listeners))
    log.info("batch %s: %d PDFs (%d pages) under %s", batch, len(pdfs), progress.snapshot().pages_total, src)
    with _pool_for(workers, settings, distributed) as pool:
        if pool is not None:
            HOST.running[batch] = (pool, progress)
        try:
            _run_documents(summary, pdfs, src, row_of, submit, settings, progress, started, on_document)
        finally:
            HOST.running.pop(batch, None)
    _finish(archive, summary, update_index, started)
    return summary


def _run_documents(summary: BatchSummary, pdfs: list[Path], src: Path, row_of: dict[Path, dict | None],
                   submit: Submit, settings: PageSettings, progress: BatchProgress, started: float,
                   on_document: Callable[[BatchSummary, BatchProgress], None] | None) -> None:  # fmt: skip
    # A file with the same bytes as an earlier one in the batch starts only once that one is
    # done: the first in file order is archived, the later ones are recorded as its duplicates,
    # whatever the threads' timing.
    copies = copies_of_earlier(pdfs)

    def start(path: Path) -> Pending:
        return submit(DocumentJob(str(path), summary.archive, summary.batch, row_of[path], settings))

    pending = {number: start(path) for number, path in enumerate(pdfs) if number not in copies}
    for number, path in enumerate(pdfs, start=1):
        # a copy starts now: the file it copies is earlier, so its outcome is in
        outcome = (pending.pop(number - 1) if number - 1 in pending else start(path)).outcome()
        if not isinstance(outcome, DocumentOutcome):  # failed even after retries (I/O): say so, go on
            outcome = DocumentOutcome(readable_path(path), status="failed", message=str(outcome))
        outcome.manifest_pages = (row_of[path] or {}).get("pages")  # for acceptance (漏扫/多扫)
        summary.add(outcome)
        progress.document_done(str(path))  # failed, or run on Dask: its pages were not counted as they came
        elapsed = time.monotonic() - started
        done = progress.snapshot().fraction
        left = elapsed * (1 - done) / done if done else 0.0
        log.info("[%d/%d] %s: %s — %.1f pages/min, about %d s to go", number, len(pdfs), _under(path, src),
                 outcome.status, 60 * summary.pages / elapsed, left)  # fmt: skip
        if on_document is not None:
            on_document(summary, progress)


def _finish(archive: Archive, summary: BatchSummary, update_index: Callable[[Archive], int], started: float) -> None:
    """After the documents: stopped filings logged, unfiled documents filed by project
    name, the index brought up to date, the report saved and the batch logged."""
    for document in record_stopped_filings(archive, summary.outcomes, summary.batch):
        log.warning("%s was filed by a run stopped before it logged the filing: its ingestion is logged now",
                    document)  # fmt: skip
        summary.recovered.append(document)
    if any(o.rerun for o in summary.outcomes):  # a batch run again: arrangements a stop cut short
        arrange_pending(archive)
    for document, code in file_unfiled_by_project_name(archive):
        log.info("filed %s under %s (project name matches)", document, code)
        summary.filed_by_name.append({"document": document, "project_code": code})
    reseal(archive, [f["document"] for f in summary.filed_by_name])  # their 档号 went into bag-info.txt
    outcomes = summary.outcomes
    summary.engine_seconds = round(sum(o.engine_seconds for o in outcomes), 2)
    summary.stage_seconds = add_up((o.stages for o in outcomes), digits=2)
    summary.qc_flags = {Path(o.source).name: o.qc_flags for o in outcomes if o.qc_flags}
    index_started = time.monotonic()
    # New documents, and those of earlier batches whose transaction gained one (the journal)
    summary.indexed_pages = update_index(archive)
    summary.stage_seconds["index"] = round(time.monotonic() - index_started, 2)
    summary.seconds = round(time.monotonic() - started, 1)
    summary.pages_per_minute = round(60 * summary.pages / summary.seconds, 1) if summary.seconds else 0.0
    save_report(archive, summary)
    archive.log("batch", batch=summary.batch, documents=summary.documents, archived=summary.archived,
                duplicates=summary.duplicates, quarantined=len(summary.quarantined), pages=summary.pages,
                interrupted=len(summary.interrupted))  # fmt: skip
