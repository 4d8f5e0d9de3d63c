"""Live progress of an ingest batch, counted in pages.

A batch's work is its pages, not its documents (one file may hold 1 page,
the next 400), so the total is the page count of every PDF, taken up front.
``BatchProgress`` advances one page as each page comes back from the OCR pool
and, when a document finishes however it finished (archived, duplicate,
quarantined, failed, or run elsewhere on Dask), by that document's pages not
ticked yet: the count ends exactly at the total. Listeners (the CLI's bar, a
test's recorder) see a snapshot after every change.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from rich.console import Console
from rich.progress import BarColumn, Progress, ProgressColumn, Task
from rich.table import Column
from rich.text import Text

from archive.storage.store import readable_path

log = logging.getLogger(__name__)

Event = Literal["start", "page", "document"]


@dataclass(frozen=True)
class ProgressSnapshot:
    event: Event  # what changed: the batch started, a page came back, a document finished
    current: str  # the file name the event is about ("" for start)
    pages_done: int
    pages_total: int
    documents_done: int
    documents_total: int

    @property
    def fraction(self) -> float:
        """Share of the batch done, by pages; by documents when no file has a readable page."""
        if self.pages_total:
            return self.pages_done / self.pages_total
        return self.documents_done / self.documents_total if self.documents_total else 1.0


class ProgressListener(Protocol):
    def update(self, snapshot: ProgressSnapshot) -> None:
        """Called from any thread (document tasks run in threads), one call at a time."""


def count_pages(path: Path) -> int:
    """Pages in ``path``, cheaply (pdfium reads the page tree, no page content);
    0 for anything it cannot open: such files are quarantined in seconds anyway."""
    import pypdfium2

    from archive.capture.pages import PDFIUM_LOCK

    with PDFIUM_LOCK:  # pdfium is not thread-safe: document tasks may be extracting pages
        try:
            document = pypdfium2.PdfDocument(str(path))
        except Exception:  # noqa: BLE001 - empty, not a PDF, encrypted, truncated: no pages to wait for
            return 0
        try:
            return len(document)
        finally:
            document.close()


class BatchProgress:
    """Thread-safe page accounting for one batch. Keys are the source paths as
    the flow submits them; page ticks beyond a document's counted pages (a task
    retried after an I/O error reads its pages again) are not counted twice."""

    def __init__(self, pages: dict[str, int], listeners: Iterable[ProgressListener] = ()) -> None:
        self._expected = dict(pages)
        self._ticked = dict.fromkeys(pages, 0)
        self._finished: set[str] = set()
        self._listeners = list(listeners)
        self._lock = threading.Lock()
        self._pages_done = 0
        self._pages_total = sum(pages.values())
        self._latest: ProgressSnapshot
        with self._lock:
            self._notify("start", "")

    def page_done(self, source: str) -> None:
        with self._lock:
            if source in self._finished or self._ticked.get(source, 0) >= self._expected.get(source, 0):
                return
            self._ticked[source] += 1
            self._pages_done += 1
            self._notify("page", source)

    def page_callback(self, source: str) -> Callable[[], None]:
        """A no-argument callable ticking one page of ``source`` (what PagePool.run takes)."""
        return lambda: self.page_done(source)

    def document_done(self, source: str) -> None:
        """``source`` finished, however it did; calling it again changes nothing."""
        with self._lock:
            if source in self._finished or source not in self._expected:
                return
            self._finished.add(source)
            self._pages_done += self._expected[source] - self._ticked[source]
            self._ticked[source] = self._expected[source]
            self._notify("document", source)

    def snapshot(self) -> ProgressSnapshot:
        """The latest snapshot (for a caller that polls rather than listens)."""
        with self._lock:
            return self._latest

    def _snapshot(self, event: Event, source: str) -> ProgressSnapshot:
        return ProgressSnapshot(
            event=event,
            current=readable_path(Path(source).name) if source else "",
            pages_done=self._pages_done,
            pages_total=self._pages_total,
            documents_done=len(self._finished),
            documents_total=len(self._expected),
        )

    def _notify(self, event: Event, source: str) -> None:
        # Under the lock, so listeners see the counts in order. A listener is a
        # display: if it breaks, the batch must go on (a page tick runs inside
        # the document's processing, where an exception would quarantine it).
        snapshot = self._latest = self._snapshot(event, source)
        for listener in list(self._listeners):
            try:
                listener.update(snapshot)
            except Exception:  # noqa: BLE001 - see above
                log.warning("progress display %r failed; it is switched off for this batch", listener, exc_info=True)
                self._listeners.remove(listener)


class PassProgress:
    """Progress of one pass over the archive's pages (``trade-archive reindex``): call
    ``page_done`` with each page in export shape. Listeners see a snapshot as a document
    begins, at most ten times a second (a pass reads thousands of pages a second), and
    at ``finish``."""

    def __init__(
        self,
        name: str,
        pages_total: int,
        documents_total: int,
        listeners: Iterable[ProgressListener] = (),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clock = clock
        self._name, self._pages_total, self._documents_total = name, pages_total, documents_total
        self._listeners = list(listeners)
        self._pages = self._documents = 0
        self._document: str | None = None
        self._told_at = -1.0

    def page_done(self, page: dict) -> None:
        if page["document"] != self._document:
            self._documents += self._document is not None
            self._document = page["document"]
            self._tell("page")
        self._pages += 1

    def document_done(self, pages: int) -> None:
        """For a pass that goes by whole documents (verify): one more, of ``pages`` pages."""
        self._documents += 1
        self._pages += pages
        self._tell("document")

    def finish(self) -> None:
        self._documents += self._document is not None
        self._notify("document")

    def _tell(self, event: Event) -> None:
        """``_notify``, at most ten times a second."""
        if (now := self._clock()) - self._told_at >= 0.1:
            self._told_at = now
            self._notify(event)

    def _notify(self, event: Event) -> None:
        snapshot = ProgressSnapshot(event, self._name, self._pages, self._pages_total, self._documents,
                                    self._documents_total)  # fmt: skip
        for listener in self._listeners:
            listener.update(snapshot)


class LiveBar:
    """A rich progress bar (on stderr by default) fed with snapshots, on one line:

    [1/7] award-notice.pdf ━━━━━━━╸━━━━━━━━━━━━  3/300 pages  41.2 pages/min  ETA 0:05:12  0:01:02

    (files done/total, the file a page or document just came from, the bar,
    pages done/total, pages/min, time to go, time so far). Use as a context
    manager around the batch. ``drawing_thread=False``: no thread of its own (for a
    caller that forks, as whoosh's writer processes do); the bar is drawn as it is
    updated, at most ten times a second."""

    def __init__(self, console: Console | None = None, drawing_thread: bool = True) -> None:
        console = console or Console(stderr=True)
        self._progress = Progress(
            _FileColumn(console),
            BarColumn(bar_width=None, table_column=Column(ratio=1)),  # the bar takes what the text leaves
            _PagesColumn(),
            console=console,
            expand=True,
            auto_refresh=drawing_thread,
        )
        self._task = self._progress.add_task("ingest", total=None, name="starting", files="")
        self._drawn_at = 0.0 if not drawing_thread else None  # when it was last drawn, without a thread

    @property
    def console(self) -> Console:
        return self._progress.console

    def update(self, snapshot: ProgressSnapshot) -> None:
        if snapshot.event == "start":  # the clock starts with the batch, not with Prefect's server
            self._progress.reset(self._task)
        self._progress.update(
            self._task,
            completed=snapshot.pages_done,
            total=snapshot.pages_total or None,  # None: rich pulses the bar rather than divide by 0
            name=snapshot.current or "starting",
            files=f"[{snapshot.documents_done}/{snapshot.documents_total}]",
        )
        if self._drawn_at is not None and time.monotonic() - self._drawn_at >= 0.1:
            self._progress.refresh()
            self._drawn_at = time.monotonic()

    def __enter__(self) -> LiveBar:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.update(self._task, name="done" if exc[0] is None else "stopped")
        self._progress.stop()


class LogAboveBar(logging.Filter):
    """Put on a console log handler while the bar is live: records below WARNING
    are dropped (the bar says the same), warnings and errors are printed above
    the bar (written by the handler itself, they would land on the bar's line)."""

    def __init__(self, bar: LiveBar, handler: logging.Handler) -> None:
        super().__init__()
        self._bar, self._handler = bar, handler

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.WARNING:
            style = "red" if record.levelno >= logging.ERROR else "yellow"
            # Text, not markup: file names may hold brackets.
            self._bar.console.print(Text(self._handler.format(record), style=style), soft_wrap=True)
        return False


class _FileColumn(ProgressColumn):
    """Files done/total and the current file's name, cut to fit: the numbers
    on the right matter more on a narrow terminal (a Chinese character is 2 cells)."""

    def __init__(self, console: Console) -> None:
        super().__init__()
        self._console = console

    def render(self, task: Task) -> Text:
        text = Text(f"{task.fields['files']} {task.fields['name']}", no_wrap=True)
        # 80 columns: 20 for the file, ~10 for the bar, the rest for the numbers.
        text.truncate(min(40, max(12, self._console.width - 60)), overflow="ellipsis", pad=True)
        return text


class _PagesColumn(ProgressColumn):
    """Pages done/total, pages/min, time to go and time so far, as one unbroken text.

    Rates are over the whole run, not rich's recent window: a duplicate or a
    document finished on Dask adds all its pages at once, which would make a
    windowed rate leap; over a batch of hundreds of pages the average is steady."""

    def render(self, task: Task) -> Text:
        elapsed = task.finished_time or task.elapsed or 0.0
        done = task.completed
        measured = done > 0 and elapsed >= 1  # before that, no rate worth showing
        rate = f"{60 * done / elapsed:.1f}" if measured else "–"
        total = "?" if task.total is None else f"{task.total:.0f}"
        if task.total is not None and done >= task.total:
            to_go = _clock(0)
        elif measured and task.total is not None:
            to_go = _clock(elapsed * (task.total - done) / done)
        else:
            to_go = "–:––:––"
        return Text(f"{done:.0f}/{total} pages  {rate} pages/min  ETA {to_go}  {_clock(elapsed)}",
                    no_wrap=True, style="progress.data.speed")  # fmt: skip


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{secs:02d}"


@contextlib.contextmanager
def pass_progress(name: str, show: bool | None, totals: Callable[[], tuple[int, int]]) -> Iterator[PassProgress | None]:
    """A progress bar on stderr over a pass through the archive (``totals``: what gives its
    pages and documents), or None where no bar is wanted (``show`` None: only on a terminal)."""
    if not (sys.stderr.isatty() if show is None else show):
        yield None
        return
    # No drawing thread: whoosh writes a fresh index in forked processes only from a process without threads.
    with LiveBar(drawing_thread=False) as bar:
        progress = PassProgress(name, *totals(), [bar])
        yield progress
        progress.finish()
