"""The ingest flow: the batch use case (``archive.ingest.batch``) with its documents
as Prefect tasks (one task per document; pages OCR'd in a shared process pool, or on
the Dask workers), its report as artifacts in the UI, and a clean stop on signals."""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import signal
import threading
from collections.abc import Iterator
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
from prefect.runtime import flow_run
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner
from prefect.tasks import exponential_backoff

import index
from archive.acceptance.report import render_markdown
from archive.capture.backends import REREAD_BELOW
from archive.capture.pageproc import DEFAULT_LOW_CONFIDENCE, DEFAULT_PAGE_SECONDS, PageSettings
from archive.capture.parallel import default_workers
from archive.config import load_config
from archive.errors import BatchInterrupted, ExitCode
from archive.ingest.batch import HOST, DocumentJob, check_request, run_batch, run_document
from archive.ingest.progress import BatchProgress, LiveBar
from archive.records.batch import BatchSummary, DocumentOutcome
from archive.records.manifest import column_map
from archive.storage.store import Archive, resolve_root
from flows.cluster import check_dask, security
from flows.server import TemporaryServer, console_above

_stop_signals: dict[int, object] = {}  # signal -> its handler, while ``stoppable`` is in force


@contextlib.contextmanager
def stoppable(*signals: signal.Signals) -> Iterator[None]:
    """For the block, the first of ``signals`` (the CLI: SIGINT, SIGTERM) stops the
    batches of this process cleanly; a second stops the process at once (threads would
    otherwise hold the exit until their documents end; the next run clears what it
    left). Main thread only. The stop ends with the block."""
    global _stop_signals

    def first(signum: int, _frame: object) -> None:
        HOST.stop()  # first: the message below must not be able to lose the stop
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
        HOST.stopping.clear()


def _say(text: str) -> None:
    """To stderr from a signal handler: os.write, since the handler may interrupt a
    write to sys.stderr in progress (a reentrant call raises)."""
    os.write(2, text.encode("utf-8", "replace"))


def _keep_stop_signals() -> None:
    """In the flow: Prefect's flow engine puts in its own SIGTERM handler, which
    crashes the run (no report, nothing indexed); a batch run under ``stoppable``
    keeps its clean stop. Prefect puts the handler before it back when the run ends."""
    if _stop_signals and threading.current_thread() is threading.main_thread():
        for each, handler in _stop_signals.items():
            if signal.getsignal(each) is not handler and not HOST.stopping.is_set():
                signal.signal(each, handler)


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
def ingest_document_task(
    source: str, archive_root: str, batch: str, manifest_row: dict | None, settings: PageSettings
) -> dict:
    outcome = run_document(DocumentJob(source, archive_root, batch, manifest_row, settings))
    # A quarantine needs the archivist: a warning, so it shows even under the CLI's progress bar.
    level = logging.WARNING if outcome.status == "quarantined" else logging.INFO
    get_run_logger().log(level, "%s: %s (%d pages, %.1f s)%s", Path(source).name, outcome.status, outcome.pages,
                         outcome.seconds, f": {outcome.message}" if outcome.message else "")  # fmt: skip
    return outcome.to_json()  # plain JSON: what a task returns is kept as its result


class _TaskPending:
    def __init__(self, future: PrefectFuture) -> None:
        self._future = future

    def outcome(self) -> DocumentOutcome | BaseException:
        result = self._future.result(raise_on_failure=False)
        return DocumentOutcome.from_json(result) if isinstance(result, dict) else result


def _submit(job: DocumentJob) -> _TaskPending:
    return _TaskPending(ingest_document_task.submit(job.source, job.archive_root, job.batch, job.manifest_row,
                                                    job.settings))  # fmt: skip


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
    low_confidence: float = DEFAULT_LOW_CONFIDENCE,
    page_seconds: float = DEFAULT_PAGE_SECONDS,
    index_backend: str | None = None,
    run: str | None = None,
    ocr_backend: str = "auto",
    ocr_reread_below: float = REREAD_BELOW,
) -> dict:
    """Ingest every PDF under ``src``. ``distributed``: the flow runs on a Dask task
    runner, and document tasks read their own pages on the Dask workers. ``engine``,
    ``low_confidence``, ``page_seconds``, ``ocr_backend``, ``ocr_reread_below`` travel with every
    document; ``index_backend``: the backend of an index made now (each from the configuration:
    no worker reads its own).
    ``run``: the flow run the report names (an inbox run's; else this run)."""
    _keep_stop_signals()
    archive = Archive.open(Path(archive_root), create=True)
    artifact: list = []

    def on_document(summary: BatchSummary, progress: BatchProgress) -> None:
        if not artifact:
            artifact.append(create_progress_artifact(0.0, key=f"batch-{summary.batch.lower()}-progress",
                                                      description=f"Batch {summary.batch}: pages done"))  # fmt: skip
        update_progress_artifact(artifact[0], 100.0 * progress.snapshot().fraction)

    settings = PageSettings(engine, low_confidence, page_seconds, ocr_backend, ocr_reread_below)
    with archive.writer_lock(wait=wait):
        summary = run_batch(archive, Path(src), _submit, functools.partial(index.update, new_backend=index_backend),
                            manifest, settings, workers or default_workers(), columns, distributed, on_document,
                            run or str(flow_run.get_id() or "") or None)  # fmt: skip
    publish_artifacts([summary], f"batch-{summary.batch.lower()}")
    return summary.to_json()  # the flow run's result: plain JSON (``BatchSummary.from_json`` reads it back)


def publish_artifacts(reports: list[BatchSummary], key: str) -> None:
    """Batch reports in the Prefect UI, on the run in progress: a table of their documents
    and the markdown summaries (an inbox run shows those of all its batches)."""
    rows = [
        {"batch": r.batch, "file": Path(o.source).name, "status": o.status, "pages": o.pages, "reason": o.reason or "",
         "qc": ", ".join(o.qc_flags), "seconds": o.seconds}
        for r in reports for o in r.outcomes
    ]  # fmt: skip
    batches = ", ".join(r.batch for r in reports)
    create_table_artifact(rows, key=f"{key}-documents", description=f"Documents of batch {batches}")
    markdown = "\n\n---\n\n".join(render_markdown(r) for r in reports)
    create_markdown_artifact(markdown, key=f"{key}-report", description=f"Batch report: {batches}")


def ingest_now(
    src: str,
    archive_dir: str | None,
    manifest: str | None = None,
    columns: tuple[str, ...] = (),
    engine: str | None = None,
    workers: int | None = None,
    dask: str | None = None,
    dask_certs: str | None = None,
    wait: bool = False,
    show_progress: bool = False,
    server: TemporaryServer | None = None,
) -> BatchSummary:
    """``trade-archive ingest``: the batch checked before Prefect is waited for, then
    run as the flow with its task runner (threads, or the Dask cluster at ``dask``),
    OCR workers started early, a progress bar on stderr where wanted, and a clean stop
    on Ctrl-C or SIGTERM (what is archived stays, is indexed and reported; the rest is
    left for the next run). Returns the batch summary. A Dask cluster that is open (no
    TLS), or whose workers would have no server to report to, is refused up front."""
    if dask:
        from prefect.settings import PREFECT_API_URL

        check_dask(dask, dask_certs and Path(dask_certs), PREFECT_API_URL.value())
    root, columns_by_field = resolve_root(archive_dir), column_map(columns)  # FIELD=HEADER, e.g. amount=合同价
    check_request(Path(src), manifest, columns_by_field, root, wait)  # said now, not after Prefect's start
    settings = load_config()
    engine, workers = engine or settings.engine, workers or settings.workers or default_workers()
    bar = _live_progress() if show_progress else contextlib.nullcontext()
    pool = contextlib.nullcontext() if dask else HOST.pages_ready(workers, PageSettings.of(settings, engine))
    with stoppable(signal.SIGINT, signal.SIGTERM), bar, pool:
        if server is not None:
            server.wait_ready()
        if HOST.stopping.is_set():  # Ctrl-C while starting: nothing was done, no batch to report
            raise BatchInterrupted("interrupted before the batch started; nothing was done")
        return BatchSummary.from_json(ingest_batch.with_options(task_runner=_task_runner(dask, dask_certs, workers))(
            src=str(Path(src).resolve()), archive_root=str(root), manifest=manifest and str(Path(manifest).resolve()),
            engine=engine, workers=workers, wait=wait, columns=columns_by_field, distributed=bool(dask),
            low_confidence=settings.low_confidence, page_seconds=settings.page_seconds, index_backend=settings.index,
            ocr_backend=settings.ocr_backend, ocr_reread_below=settings.ocr_reread_below,
        ))  # fmt: skip


def _task_runner(dask: str | None, certificates: str | None, workers: int) -> TaskRunner:
    if dask:
        from prefect_dask import DaskTaskRunner

        tls = {"security": security(Path(certificates))} if certificates else {}
        return DaskTaskRunner(address=dask, client_kwargs=tls)  # documents run on the cluster's workers
    return ThreadPoolTaskRunner(max_workers=workers + 2)  # keep every OCR process fed


@contextlib.contextmanager
def _live_progress() -> Iterator[None]:
    """A progress bar on stderr fed by the batches, for the length of the block."""
    with LiveBar() as bar, console_above(bar), HOST.report_progress(bar):
        yield
