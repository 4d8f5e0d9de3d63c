"""Pages in parallel across worker processes, each engine single-threaded; the
pages' images are extracted from the PDFs there too (``PagePool.extract``), so a
crash inside pdfium on a damaged file costs that file, not the batch.

On 2 cores, one single-threaded OCR process per core was measured 5-7x faster
than engines fighting over oversubscribed threads. Workers start with
``spawn`` (forking a process that already runs Prefect's threads can deadlock)
and load their models once, in the initializer.

A worker that dies (killed for lack of memory, a crash inside a native library)
breaks a ``ProcessPoolExecutor`` for good: every page queued after it would fail
too. The pool starts a fresh executor instead, finds the page the dead worker was
reading (each worker notes its current page in a file named by its pid), rejects
that page's document as ``worker_crashed`` (it goes to quarantine) and reads the
other documents' unfinished pages again.
"""

from __future__ import annotations

import ctypes
import functools
import multiprocessing
import os
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Protocol, TypeVar

from archive.capture.backends import DEFAULT_MODELS, ModelSettings
from archive.capture.pageproc import PageJob, PageRejected, process_page
from archive.capture.pages import ExtractJob, PageImage, extract_page
from archive.errors import BatchInterrupted

THREAD_ENV = {
    "OMP_THREAD_LIMIT": "1",
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    # glibc keeps one malloc arena per thread that ever allocated; onnxruntime's
    # varying tensor shapes then fragment them. Two arenas keep a worker's RSS flat.
    "MALLOC_ARENA_MAX": "2",
}
# Workers live for the whole batch. They are not recycled with ``max_tasks_per_child``:
# on CPython 3.11 an executor whose workers retire while many pages are queued can
# hang for ever (measured: a 300-page scan stopped at its first worker's retirement;
# 2 workers x 5 tasks each hangs on 40 queued tasks). Two malloc arenas keep a
# worker's RSS flat instead (bench/throughput.py --big 300 reports it).


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def _init_worker(engine: str, models: ModelSettings, parent: int) -> None:
    os.environ.update(THREAD_ENV)
    # Ctrl-C on a terminal reaches every process of its group: the parent decides
    # what stopping means (see PagePool.stop); a worker just goes on with its page.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True).start()
    from archive.capture.ocr import get_engine

    get_engine(engine, models)  # the models the batch's pages will ask for (PageJob.models)
    if engine != "rapidocr":
        get_engine("rapidocr", models)  # orientation still uses the PP-OCR detector


def _allow_children() -> None:
    """Let this process start the pool's workers where it is itself a daemonic process
    (a Dask worker under its nanny is one; multiprocessing refuses children there, so
    that none is left behind when it is killed). Our workers cannot be left behind:
    each exits when its parent is gone (``_exit_with_parent``)."""
    current = multiprocessing.current_process()
    if current.daemon:
        current._config["daemon"] = False  # noqa: SLF001 - the flag has no public setter once started


def _exit_with_parent(parent: int) -> None:
    """A worker whose parent died (SIGKILL, the OOM killer: no chance to shut the
    pool down) exits too, instead of waiting for pages for ever."""
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(1)


PageFunction = Callable[[PageJob], dict]
ExtractFunction = Callable[[ExtractJob], PageImage]


class _Job(Protocol):
    number: int

    @property
    def key(self) -> str: ...


J = TypeVar("J", bound=_Job)
R = TypeVar("R")
# A document whose pages meet this many broken pools (others' crashes) is given up too.
MAX_POOL_BREAKS = 3
# Seconds a document waits for the stop when every worker ended by SIGTERM (the process
# group was signalled: the main thread's handler may run a moment after this thread sees the break).
STOP_GRACE = 5.0
STOP_POLL = 0.25  # seconds between a waiting document's looks at the stop flag


class PagePool:
    """A process pool for page jobs; use as a context manager, call ``extract`` and ``run``.
    ``models``: the model settings whose models the workers load as they start (pages carry
    their own, ``PageJob.models``; this only spares the first page the loading).
    ``page_function`` / ``extract_function``: what a worker does with a job (tests pass ones that crash)."""

    def __init__(self, workers: int, engine: str, page_function: PageFunction = process_page,
                 extract_function: ExtractFunction = extract_page,
                 models: ModelSettings = DEFAULT_MODELS) -> None:  # fmt: skip
        os.environ.update(THREAD_ENV)  # inherited by the spawned workers too
        self.workers, self.engine, self.models = workers, engine, models
        self._page_function = page_function
        self._extract_function = extract_function
        self._reading = tempfile.mkdtemp(prefix="trade-archive-reading-")  # worker pid -> the page it reads
        self._lock = threading.Lock()  # documents run on several threads and share the pool
        self._crashed: dict[str, int | None] = {}  # job key -> exit code of the worker that died on it
        self._stopping = threading.Event()
        self._stopped_from_outside = False
        self._executor = self._start()

    def _start(self) -> ProcessPoolExecutor:
        _allow_children()
        return ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker,
            initargs=(self.engine, self.models, os.getpid()),
        )

    def run(self, jobs: Sequence[PageJob], on_page: Callable[[], None] | None = None) -> list[dict]:
        """The pages' records, in job order. ``on_page`` is called (in this thread)
        as each page comes back, in the order they finish: live progress. Raises
        ``PageRejected("worker_crashed")`` where a worker died reading one of ``jobs``,
        ``BatchInterrupted`` once ``stop`` was called (after the page being read)."""
        return self._run(jobs, self._page_function, on_page, "the OCR worker reading it")

    def extract(self, jobs: Sequence[ExtractJob]) -> list[PageImage]:
        """The pages' master images, extracted from their PDF in the workers, in job order;
        raises as ``run`` does (a worker that died in pdfium: ``worker_crashed``)."""
        return self._run(jobs, self._extract_function, None, "the worker taking it out of the PDF")

    def _run(self, jobs: Sequence[J], function: Callable[[J], R], on_done: Callable[[], None] | None,
             who: str) -> list[R]:  # fmt: skip
        records: dict[int, R] = {}
        for _attempt in range(MAX_POOL_BREAKS):
            executor = self._executor
            futures = {}
            try:
                self._check_stopping()
                for number, job in enumerate(jobs):
                    if number not in records:  # pages read before a break are kept
                        futures[executor.submit(_read_page, self._reading, function, job)] = number
                pending = set(futures)
                while pending:  # not as_completed: a stop must not wait for this document's next page
                    done, pending = wait(pending, timeout=STOP_POLL, return_when=FIRST_COMPLETED)
                    self._check_stopping()
                    for future in done:
                        records[futures[future]] = future.result()  # a rejected page fails the document now
                        if on_done is not None:
                            on_done()
                self._check_stopping()
                return [records[number] for number in range(len(jobs))]
            except BrokenProcessPool:
                self._check_stopping()  # workers stopped with the rest of the process group: not a crash
                if self._restart(executor) and self._stopping.wait(STOP_GRACE):
                    self._check_stopping()  # every worker ended by SIGTERM: the stop is on its way to us
                _reject_crashed(jobs, self._crashed, who)
            finally:
                # After a failed page the document's other pages are not wanted. But never cancel on a
                # broken pool or a stop: the executor's own thread fails or drops those futures itself, and
                # a cancel racing its terminate_broken kills that thread (InvalidStateError, CPython 3.11).
                if not self._stopping.is_set() and not getattr(executor, "_broken", False):
                    for future in futures:
                        future.cancel()
        raise PageRejected(
            "worker_crashed", f"workers died {MAX_POOL_BREAKS} times while this document's pages were "
            "being read (short of memory?); it is kept in quarantine: ingest it again on its own."
        )  # fmt: skip

    def stop(self) -> None:
        """Read no more pages: every ``run`` in progress raises ``BatchInterrupted``
        as its next page comes back (pages being read finish first; the rest are dropped)."""
        self._stopping.set()

    def _check_stopping(self) -> None:
        if self._stopping.is_set():
            raise BatchInterrupted("the batch was stopped before this document's pages were all read")

    def _restart(self, broken: ProcessPoolExecutor) -> bool:
        """A fresh executor in place of ``broken``, once, whichever document saw it break first.
        True where every worker of ``broken`` ended by SIGTERM: stopped from outside, no crash."""
        with self._lock:
            if self._executor is not broken:
                return self._stopped_from_outside
            self._stopped_from_outside, crashed = _pages_being_read(broken, Path(self._reading))
            self._crashed.update(crashed)
            broken.shutdown(wait=False, cancel_futures=True)
            self._executor = self._start()
            return self._stopped_from_outside

    def warm(self) -> PagePool:
        """Start the workers now (they load their models, ~2 s each) instead of at the
        first page, so that start-up overlaps other work (Prefect's, the first extraction)."""
        for _ in range(self.workers):
            self._executor.submit(os.getpid)
        return self

    def __enter__(self) -> PagePool:
        return self

    def __exit__(self, *exc: object) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
        shutil.rmtree(self._reading, ignore_errors=True)


def _read_page(reading: str, function: Callable[[J], R], job: J) -> R:
    """In a worker: ``function(job)``, with a note of the job for as long as it runs."""
    note = Path(reading) / str(os.getpid())
    try:
        note.write_text(job.key, encoding="utf-8")
    except OSError:  # the note only names a page if this worker dies; without it the page is still read
        pass
    try:
        return function(job)
    finally:
        note.unlink(missing_ok=True)
        _give_back_memory()


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's malloc_trim, where the C library is glibc."""
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


def _give_back_memory() -> None:
    """Return the heap a page freed to the system (glibc keeps it otherwise): a worker between
    pages, or idle at a batch's end while the access PDF is joined, then holds ~80 MiB less
    (bench/throughput.py --big 300); a millisecond a page."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


def _pages_being_read(broken: ProcessPoolExecutor, reading: Path) -> tuple[bool, dict[str, int | None]]:
    """(stopped from outside, the jobs the dead workers of ``broken`` were on:
    job key -> exit code).

    When one worker dies, the executor stops the others with SIGTERM; a worker that
    ended otherwise (SIGKILL from the kernel's out-of-memory killer, SIGSEGV, an exit
    code) died of its page. Where every worker ended by SIGTERM, none died of its page:
    the process group was signalled (a stop). Where none can be told apart, every page
    being read is named."""
    processes = dict(getattr(broken, "_processes", None) or {})  # CPython's pid -> Process
    deadline = time.monotonic() + 10
    codes = {pid: _exit_code(process, deadline) for pid, process in processes.items()}
    notes = {int(note.name): note for note in _listing(reading) if note.name.isdigit()}
    pages = {pid: note.read_text(encoding="utf-8") for pid, note in notes.items()}
    for note in notes.values():
        note.unlink(missing_ok=True)
    if codes and all(code == -signal.SIGTERM for code in codes.values()):
        return True, {}  # the executor sends SIGTERM only after another worker died otherwise
    died = {pid: code for pid, code in codes.items() if pid in pages and code not in (-signal.SIGTERM, None)}
    return False, {pages[pid]: code for pid, code in died.items()} or dict.fromkeys(pages.values())


def _listing(folder: Path) -> list[Path]:
    """The notes in ``folder``; none where the folder is gone (a temp-folder cleaner)."""
    try:
        return list(folder.iterdir())
    except OSError:
        return []


def _exit_code(process: multiprocessing.process.BaseProcess, deadline: float) -> int | None:
    """A dead worker's exit code. The executor's own thread reaps its workers at the
    same moment; whichever thread loses that race reads None (waitpid fails with
    ECHILD) until the winner records the code on the shared process object."""
    process.join(timeout=max(0.0, deadline - time.monotonic()))
    while process.exitcode is None and time.monotonic() < deadline:
        time.sleep(0.01)
    return process.exitcode


def _reject_crashed(jobs: Sequence[_Job], crashed: dict[str, int | None], who: str) -> None:
    for job in jobs:
        if job.key in crashed:
            how = _how(crashed[job.key])
            raise PageRejected(
                "worker_crashed", f"page {job.number}: {who} died ({how}); the file is kept in quarantine: "
                f"{_advice(crashed[job.key], isinstance(job, ExtractJob))}"
            )  # fmt: skip


def _advice(exit_code: int | None, extracting: bool) -> str:
    if exit_code == -signal.SIGKILL:
        return "ingest the file alone on a machine with more memory, or rescan the page at a lower resolution."
    if extracting:  # a crash inside pdfium: the file is damaged or built in a way the PDF reader cannot take
        return "the PDF is damaged or unusual; re-export it from the program that made it, or rescan it."
    return "rescan the page, or ingest the file alone on a machine with more memory."


def _how(exit_code: int | None) -> str:
    if exit_code is None:
        return "exit code unknown"
    if exit_code == -signal.SIGKILL:
        return "SIGKILL: killed, most likely for lack of memory"
    if exit_code < 0:
        try:
            return signal.Signals(-exit_code).name
        except ValueError:
            return f"signal {-exit_code}"
    return f"exit code {exit_code}"
