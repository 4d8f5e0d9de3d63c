"""Pages in parallel across worker processes, each engine single-threaded.

On 2 cores, one single-threaded OCR process per core was measured 5-7x faster
than engines fighting over oversubscribed threads. Workers start with
``spawn`` (forking a process that already runs Prefect's threads can deadlock)
and load their models once, in the initializer.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed

from archive.pageproc import PageJob, process_page

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


def _init_worker(engine: str) -> None:
    os.environ.update(THREAD_ENV)
    from archive.ocr import get_engine

    get_engine(engine)
    if engine != "rapidocr":
        get_engine("rapidocr")  # orientation still uses the PP-OCR detector


class PagePool:
    """A process pool for page jobs; use as a context manager, call ``run``."""

    def __init__(self, workers: int, engine: str) -> None:
        os.environ.update(THREAD_ENV)  # inherited by the spawned workers too
        self.workers, self.engine = workers, engine
        self._executor = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker,
            initargs=(engine,),
        )

    def run(self, jobs: Sequence[PageJob], on_page: Callable[[], None] | None = None) -> list[dict]:
        """The pages' records, in job order. ``on_page`` is called (in this thread)
        as each page comes back, in the order they finish: live progress."""
        futures = [self._executor.submit(process_page, job) for job in jobs]
        try:
            for future in as_completed(futures):
                future.result()  # a rejected page fails the document now
                if on_page is not None:
                    on_page()
            return [future.result() for future in futures]
        finally:
            for future in futures:  # after a failure, the document's other pages are not wanted
                future.cancel()

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
