"""The ingest flow: one Prefect task per document, pages OCR'd in a shared
process pool, then one index writer for the whole batch."""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.cache_policies import NO_CACHE
from prefect.futures import PrefectFuture
from prefect.task_runners import ThreadPoolTaskRunner
from prefect.tasks import exponential_backoff

import index
from archive.errors import BatchInterrupted, ExitCode
from archive.filing import file_unfiled_by_project_name
from archive.fixity import copies_of_earlier
from archive.inbox import COMPANIONS
from archive.manifest import Manifest, read_manifest, read_manifests
from archive.parallel import PagePool, default_workers
from archive.pipeline import ingest_document, record_stopped_filings
from archive.progress import BatchProgress, ProgressListener, count_pages
from archive.report import render_markdown, save_report
from archive.store import Archive, is_inside, readable_path
from archive.timing import add_up

_pool: PagePool | None = None  # set for the length of a flow run; tasks run pages on it
_progress: BatchProgress | None = None  # likewise: page accounting of the running batch
# Who watches batches run in this process (the CLI's progress bar). Not a flow
# parameter: parameters must serialise, and a listener only lives here.
_listeners: list[ProgressListener] = []
_ready_pools: list[PagePool] = []  # started before the flow run (see ``pages_ready``)
_stopping = threading.Event()  # set by ``stop_batches``: documents not started are left for the next run
_stop_signals: dict[int, Callable] = {}  # signal -> its handler, while ``stoppable`` is in force


def stop_batches() -> None:
    """Stop the ingest batches running in this process, soon and cleanly (the CLI
    calls this on Ctrl-C or SIGTERM): documents not started are not started, pages
    not yet read are not read, and a document not finished is not archived. Each
    batch still indexes what it archived and writes its report, which lists the
    files left for the next run. (On Dask, documents already sent to the cluster
    run to their end.)"""
    _stopping.set()
    for pool in [_pool, *_ready_pools]:
        if pool is not None:
            pool.stop()


@contextlib.contextmanager
def pages_ready(workers: int, engine: str) -> Iterator[PagePool]:
    """Start the OCR workers before the flow, for the ingest batches run in this
    process inside the block: their models load while Prefect starts its server
    (~7 s of one core) rather than after it."""
    with PagePool(workers, engine).warm() as pool:
        _ready_pools.append(pool)
        try:
            yield pool
        finally:
            _ready_pools.remove(pool)


@contextlib.contextmanager
def stoppable(*signals: signal.Signals) -> Iterator[None]:
    """For the block, the first of ``signals`` (the CLI: SIGINT, SIGTERM) calls
    ``stop_batches``; a second stops the process at once (threads would otherwise
    hold the exit until their documents end; the next run clears what it left).
    Main thread only. The stop ends with the block."""
    global _stop_signals

    def first(signum: int, _frame: object) -> None:
        stop_batches()  # first: the message below must not be able to lose the stop
        for each in signals:
            signal.signal(each, again)
        _say(f"\n{signal.Signals(signum).name}: stopping after the pages being read; "
             "press Ctrl-C again to stop at once\n")  # fmt: skip

    def again(signum: int, _frame: object) -> None:
        _say(f"{signal.Signals(signum).name}: stopped at once; run the same command again to finish\n")
        os._exit(int(ExitCode.interrupted))

    previous = {each: signal.signal(each, first) for each in signals}
    _stop_signals = {each: first for each in signals}
    try:
        yield
    finally:
        _stop_signals = {}
        for each, handler in previous.items():
            signal.signal(each, handler)
        _stopping.clear()


def _say(text: str) -> None:
    """To stderr from a signal handler: os.write, since the handler may interrupt a
    write to sys.stderr in progress (a reentrant call raises)."""
    os.write(2, text.encode("utf-8", "replace"))


def stop_requested() -> bool:
    """Whether the batches of this process were asked to stop."""
    return _stopping.is_set()


def _keep_stop_signals() -> None:
    """In the flow: Prefect's flow engine puts in its own SIGTERM handler, which
    crashes the run (no report, nothing indexed); a batch run under ``stoppable``
    keeps its clean stop. Prefect puts the handler before it back when the run ends."""
    if _stop_signals and threading.current_thread() is threading.main_thread():
        for each, handler in _stop_signals.items():
            if signal.getsignal(each) is not handler and not _stopping.is_set():
                signal.signal(each, handler)


@contextlib.contextmanager
def report_progress(listener: ProgressListener) -> Iterator[ProgressListener]:
    """Send ``listener`` a snapshot of pages and documents done after every page
    and document of the ingest batches run in this process inside the block."""
    _listeners.append(listener)
    try:
        yield listener
    finally:
        _listeners.remove(listener)


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


def _under(path: Path, src: Path) -> str:
    """A file's path under the batch folder, as text (names copied from Chinese Windows
    machines may be GBK bytes)."""
    return readable_path(path.relative_to(src) if path != src else path.name)


def _transient(task, task_run, state) -> bool:  # noqa: ANN001 - Prefect's retry_condition_fn signature
    """Retry I/O trouble; a bad PDF is quarantined inside the task and never raises."""
    try:
        state.result()
    except OSError:
        return True
    except Exception:
        return False
    return False


@task(
    name="ingest-document",
    cache_policy=NO_CACHE,
    retries=2,
    retry_delay_seconds=exponential_backoff(backoff_factor=2),
    retry_jitter_factor=0.5,
    retry_condition_fn=_transient,
    task_run_name="ingest {source}",
)
def ingest_document_task(source: str, archive_root: str, batch: str, manifest_row: dict | None, engine: str) -> dict:
    # Module globals, read once; None on Dask (pages run on the worker, unticked).
    pool, progress = _pool, _progress
    kwargs = {}
    if pool is not None:
        on_page = progress.page_callback(source) if progress is not None else None
        kwargs["run_pages"] = functools.partial(pool.run, on_page=on_page)
    try:
        if stop_requested():  # a function, not the Event: Dask pickles what the task reads; an Event cannot go
            raise BatchInterrupted("the batch was stopped before this document was started")
        outcome = ingest_document(Path(source), Archive(Path(archive_root)), batch, manifest_row, engine, **kwargs)
    except BatchInterrupted as stopped:
        return {"source": readable_path(Path(source)), "status": "interrupted", "message": str(stopped), "pages": 0}
    if progress is not None:
        progress.document_done(source)  # now, not when the flow reaches this document's future
    # A quarantine needs the archivist: a warning, so it shows even under the CLI's progress bar.
    level = logging.WARNING if outcome.status == "quarantined" else logging.INFO
    get_run_logger().log(level, "%s: %s (%d pages, %.1f s)%s", Path(source).name, outcome.status, outcome.pages,
                         outcome.seconds, f": {outcome.message}" if outcome.message else "")  # fmt: skip
    return outcome.to_json()


@dataclass
class BatchSummary:
    batch: str
    archive: str
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
    outcomes: list[dict] = field(default_factory=list)


# Documents in flight: more than the OCR processes, so that while some documents
# are being extracted, written as PDF or bagged, the pool still has pages to read.
DOCUMENTS_IN_FLIGHT = 4


@flow(name="ingest-batch", task_runner=ThreadPoolTaskRunner(max_workers=DOCUMENTS_IN_FLIGHT), log_prints=True)
def ingest_batch(
    src: str,
    archive_root: str,
    manifest: str | list[str] | None = None,
    engine: str = "rapidocr",
    workers: int | None = None,
    wait: bool = False,
    columns: dict[str, str] | None = None,
    distributed: bool = False,
) -> dict:
    """Ingest every PDF under ``src``. ``distributed``: the flow runs on a Dask task
    runner, and document tasks read their own pages on the Dask workers."""
    _keep_stop_signals()
    archive = Archive.open(Path(archive_root), create=True)
    workers = workers or default_workers()
    with archive.writer_lock(wait=wait):
        return _ingest_locked(archive, Path(src), manifest, engine, workers, columns, distributed)


def _ingest_locked(
    archive: Archive,
    src: Path,
    manifest: str | list[str] | None,
    engine: str,
    workers: int,
    columns: dict[str, str] | None,
    distributed: bool,
) -> dict:
    global _pool, _progress
    started = time.monotonic()
    logger = get_run_logger()
    batch = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    if leftovers := archive.clear_staging():
        logger.warning("removed %d half-written packages left by an interrupted run", len(leftovers))
    pdfs, others = find_sources(src, archive.root)
    summary = BatchSummary(
        batch=batch, archive=str(archive.root), documents=len(pdfs), ignored=[readable_path(p) for p in others]
    )
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
            logger.warning("manifest: %s", problem)
    # Pages up front (milliseconds a file), so progress and time to go are in pages.
    progress = BatchProgress({str(p): count_pages(p) for p in pdfs}, list(_listeners))
    logger.info("batch %s: %d PDFs (%d pages) under %s", batch, len(pdfs), progress.snapshot().pages_total, src)

    # Locally, pages go to a process pool shared by the document tasks. On Dask
    # (``distributed``), each document task runs on a worker, which reads its
    # pages itself: the cluster's workers are the parallelism.
    ready = next((p for p in _ready_pools if (p.workers, p.engine) == (workers, engine)), None)
    if distributed:
        pages: contextlib.AbstractContextManager[PagePool | None] = contextlib.nullcontext()
    elif ready is not None:
        pages = contextlib.nullcontext(ready)  # started by the caller, who also shuts it down
    else:
        pages = PagePool(workers, engine).warm()  # models load while the first document is extracted
    with pages as pool:
        # Only locally: Dask pickles the task function by value with the globals it
        # reads, and a BatchProgress (a lock, the CLI's bar) cannot travel. Documents
        # done there complete their pages below, as the flow collects them.
        _pool, _progress = (pool, progress) if isinstance(pool, PagePool) else (None, None)
        try:
            # A file with the same bytes as an earlier one in the batch starts only once that
            # one is done: the first in file order is archived, the later ones are recorded as
            # its duplicates, whatever the threads' timing.
            copies = copies_of_earlier(pdfs)

            def submit(path: Path) -> PrefectFuture:
                return ingest_document_task.submit(str(path), str(archive.root), batch, row_of[path], engine)

            futures = {number: submit(path) for number, path in enumerate(pdfs) if number not in copies}
            artifact = create_progress_artifact(0.0, key=f"batch-{batch.lower()}-progress",
                                                description=f"Batch {batch}: pages done")  # fmt: skip
            pages_archived = 0
            for number, path in enumerate(pdfs, start=1):
                # a copy starts now: the file it copies is earlier, so its outcome is in
                future = futures.pop(number - 1) if number - 1 in futures else submit(path)
                outcome = future.result(raise_on_failure=False)
                if not isinstance(outcome, dict):  # failed even after retries (I/O): say so, go on
                    outcome = {"source": readable_path(path), "status": "failed", "message": str(outcome), "pages": 0}
                # for acceptance (漏扫/多扫)
                outcome["manifest_pages"] = (row_of[path] or {}).get("pages")
                summary.outcomes.append(outcome)
                # Failed, or run on Dask: its pages were not counted as they came back.
                progress.document_done(str(path))
                done = progress.snapshot().fraction
                pages_archived += outcome.get("pages", 0)
                elapsed = time.monotonic() - started
                left = elapsed * (1 - done) / done if done else 0.0
                logger.info("[%d/%d] %s: %s — %.1f pages/min, about %d s to go", number, len(pdfs), _under(path, src),
                            outcome["status"], 60 * pages_archived / elapsed, left)  # fmt: skip
                update_progress_artifact(artifact, 100.0 * done)
        finally:
            _pool = _progress = None

    for outcome in summary.outcomes:
        if outcome["status"] == "archived":
            summary.archived += 1
            summary.pages += outcome["pages"]
        elif outcome["status"] == "duplicate":
            summary.duplicates += 1
            summary.duplicate_files.append({"source": outcome["source"], "archived_as": outcome["path"],
                                            "rerun": outcome.get("rerun", False)})  # fmt: skip
            if changes := outcome.get("manifest_changes"):
                summary.manifest_changes.append(
                    {"source": outcome["source"], "document": outcome["document"], "changes": changes}
                )
                logger.warning("%s is archived already; its manifest row changed since (%s): the archive keeps "
                               "the values it was given; apply a correction with `trade-archive review fix-metadata "
                               "%s FIELD=VALUE --note ...`", outcome["source"], ", ".join(changes),
                               outcome["document"])  # fmt: skip
        elif outcome["status"] == "failed":
            summary.failed.append({"source": outcome["source"], "message": outcome["message"]})
        elif outcome["status"] == "interrupted":
            summary.interrupted.append(outcome["source"])
        else:
            summary.quarantined.append(
                {"source": outcome["source"], "reason": outcome["reason"], "message": outcome["message"]}
            )
    for document in record_stopped_filings(archive, summary.outcomes, summary.batch):
        logger.warning("%s was filed by a run stopped before it logged the filing: its ingestion is logged now",
                       document)  # fmt: skip
        summary.recovered.append(document)
    for document, code in file_unfiled_by_project_name(archive):
        logger.info("filed %s under %s (project name matches)", document, code)
        summary.filed_by_name.append({"document": document, "project_code": code})
    summary.engine_seconds = round(sum(o.get("engine_seconds") or 0.0 for o in summary.outcomes), 2)
    summary.stage_seconds = add_up((o.get("stages") or {} for o in summary.outcomes), digits=2)
    summary.qc_flags = {Path(o["source"]).name: o["qc_flags"] for o in summary.outcomes if o.get("qc_flags")}
    index_started = time.monotonic()
    # New documents, and those of earlier batches whose transaction gained one (the journal)
    summary.indexed_pages = index.update(archive)
    summary.stage_seconds["index"] = round(time.monotonic() - index_started, 2)
    summary.seconds = round(time.monotonic() - started, 1)
    summary.pages_per_minute = round(60 * summary.pages / summary.seconds, 1) if summary.seconds else 0.0
    report = asdict(summary)
    save_report(archive, report)
    _publish_artifacts(report)
    archive.log("batch", batch=batch, documents=summary.documents, archived=summary.archived,
                duplicates=summary.duplicates, quarantined=len(summary.quarantined), pages=summary.pages,
                interrupted=len(summary.interrupted))  # fmt: skip
    return report


def _publish_artifacts(report: dict) -> None:
    """The batch report in the Prefect UI: a table of documents and the markdown summary."""
    rows = [
        {"file": Path(o["source"]).name, "status": o["status"], "pages": o.get("pages", 0),
         "reason": o.get("reason") or "", "qc": ", ".join(o.get("qc_flags") or []), "seconds": o.get("seconds", 0)}
        for o in report["outcomes"]
    ]  # fmt: skip
    key = f"batch-{report['batch'].lower()}"
    create_table_artifact(rows, key=f"{key}-documents", description=f"Documents of batch {report['batch']}")
    create_markdown_artifact(render_markdown(report), key=f"{key}-report", description="Batch report")
