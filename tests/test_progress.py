"""Live progress of an ingest batch: page accounting that ends exactly at the
total however documents finish, page counting up front, the rich bar, and the
CLI's ``--progress`` on a real (small) batch."""

import io
import json
import logging
import shutil
import threading

import pytest
from click.testing import CliRunner
from rich.console import Console

from archive.ingest.batch import HOST
from archive.ingest.progress import BatchProgress, LiveBar, LogAboveBar, PassProgress, ProgressSnapshot, count_pages
from flows.cli import cli


class Recorder:
    """A listener that keeps every snapshot it is sent."""

    def __init__(self) -> None:
        self.snapshots: list[ProgressSnapshot] = []

    def update(self, snapshot: ProgressSnapshot) -> None:
        self.snapshots.append(snapshot)


def test_pages_and_documents_add_up_exactly_however_documents_finish():
    recorder = Recorder()
    progress = BatchProgress({"/in/a.pdf": 3, "/in/dup.pdf": 2, "/in/bad.pdf": 0, "/in/retried.pdf": 4}, [recorder])
    assert recorder.snapshots[0] == ProgressSnapshot("start", "", 0, 9, 0, 4)

    for _ in range(3):  # archived: every page ticked as it came back, nothing left at the end
        progress.page_done("/in/a.pdf")
    progress.document_done("/in/a.pdf")
    assert (recorder.snapshots[-1].event, recorder.snapshots[-1].pages_done) == ("document", 3)
    assert [s.event for s in recorder.snapshots[1:]] == ["page", "page", "page", "document"]

    progress.document_done("/in/dup.pdf")  # duplicate: no pages read, its share arrives at once
    assert recorder.snapshots[-1] == ProgressSnapshot("document", "dup.pdf", 5, 9, 2, 4)
    progress.document_done("/in/bad.pdf")  # quarantined, no readable pages
    assert recorder.snapshots[-1] == ProgressSnapshot("document", "bad.pdf", 5, 9, 3, 4)

    for _ in range(2 + 4):  # an I/O error after 2 pages, then the retry reads all 4 again
        progress.page_done("/in/retried.pdf")
    assert progress.snapshot().pages_done == 9
    progress.document_done("/in/retried.pdf")

    seen = len(recorder.snapshots)
    progress.document_done("/in/retried.pdf")  # the flow reports every document again: no change
    progress.page_done("/in/a.pdf")  # a late tick of a finished document
    progress.page_done("/elsewhere/unknown.pdf")
    assert len(recorder.snapshots) == seen
    assert recorder.snapshots[-1] == ProgressSnapshot("document", "retried.pdf", 9, 9, 4, 4)
    assert recorder.snapshots[-1].fraction == 1.0
    done = [s.pages_done for s in recorder.snapshots]
    assert done == sorted(done)  # never goes back


def test_ticks_from_many_threads_are_each_counted_once_and_in_order():
    recorder = Recorder()
    sources = [f"/in/{n}.pdf" for n in range(8)]
    progress = BatchProgress(dict.fromkeys(sources, 50), [recorder])

    def document(source: str) -> None:
        for _ in range(50):
            progress.page_done(source)
        progress.document_done(source)

    threads = [threading.Thread(target=document, args=(s,)) for s in sources]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    last = progress.snapshot()
    assert (last.pages_done, last.pages_total, last.documents_done, last.documents_total) == (400, 400, 8, 8)
    pages = [s.pages_done for s in recorder.snapshots if s.event == "page"]
    assert pages == list(range(1, 401))  # listeners see the counts in the order they changed


def test_a_failing_display_is_switched_off_and_the_batch_goes_on(caplog):
    class Broken:
        def update(self, snapshot: ProgressSnapshot) -> None:
            if snapshot.event == "page":
                raise RuntimeError("terminal went away")

    recorder = Recorder()
    progress = BatchProgress({"/in/a.pdf": 2}, [Broken(), recorder])
    progress.page_done("/in/a.pdf")  # runs inside the document's processing: must not raise
    progress.page_done("/in/a.pdf")
    assert recorder.snapshots[-1].pages_done == 2
    assert "switched off" in caplog.text


def test_count_pages_of_good_and_unreadable_files(tmp_path, resources):
    assert count_pages(resources / "award-notice.pdf") == 2
    assert count_pages(resources / "notice-upside-down.pdf") == 1
    (tmp_path / "empty.pdf").write_bytes(b"")
    (tmp_path / "photo.pdf").write_bytes(b"\xff\xd8\xff\xe0JFIF" + b"\0" * 64)
    (tmp_path / "truncated.pdf").write_bytes((resources / "award-notice.pdf").read_bytes()[:300])
    for name in ("empty.pdf", "photo.pdf", "truncated.pdf", "missing.pdf"):
        assert count_pages(tmp_path / name) == 0, name


def test_bar_shows_file_pages_rate_and_time_to_go():
    out = io.StringIO()
    console = Console(file=out, width=100, force_terminal=False)  # not a terminal: one render, at the end
    with LiveBar(console) as bar:
        progress = BatchProgress({"/in/合同-南宁市公共资源交易中心.pdf": 3, "/in/b.pdf": 1}, [bar])
        for _ in range(3):
            progress.page_done("/in/合同-南宁市公共资源交易中心.pdf")
        progress.document_done("/in/合同-南宁市公共资源交易中心.pdf")
        progress.document_done("/in/b.pdf")
    text = out.getvalue()
    assert "[2/2] done" in text and "4/4 pages" in text and "pages/min" in text and "ETA 0:00:00" in text
    assert max(len(line) for line in text.splitlines()) <= 100


def test_a_pass_over_the_archive_reports_as_documents_begin_and_at_the_end():
    recorder = Recorder()
    progress = PassProgress("reindex", 5, 3, [recorder], clock=iter(range(100)).__next__)  # a second a document
    for document, pages in (("a", 2), ("b", 1), ("c", 2)):
        for number in range(1, pages + 1):
            progress.page_done({"document": document, "page": number})
    progress.finish()
    assert [(s.event, s.pages_done, s.documents_done) for s in recorder.snapshots] == [
        ("page", 0, 0), ("page", 2, 1), ("page", 3, 2), ("document", 5, 3)
    ]  # fmt: skip
    assert recorder.snapshots[-1].fraction == 1.0


def test_a_bar_without_a_drawing_thread_starts_none():
    """reindex's bar: whoosh writes a fresh index in forked processes only from a process without threads."""
    before = threading.active_count()
    out = io.StringIO()
    with LiveBar(Console(file=out, width=100, force_terminal=False), drawing_thread=False) as bar:
        assert threading.active_count() == before
        bar.update(ProgressSnapshot("document", "reindex", 4, 4, 1, 1))
    assert "4/4 pages" in out.getvalue()


@pytest.mark.parametrize("command", ["reindex", "export", "verify"])
def test_cli_passes_over_the_archive_show_progress_and_keep_stdout(ingested_archive, tmp_path, command):
    archive = tmp_path / "archive"
    shutil.copytree(ingested_archive.root, archive)
    plain = CliRunner().invoke(cli, [command, "--archive", str(archive)])
    result = CliRunner().invoke(cli, [command, "--archive", str(archive), "--progress"])
    assert result.exit_code == plain.exit_code == 0, result.output
    assert "[2/2] done" in result.stderr and "3/3 pages" in result.stderr, result.stderr
    assert not plain.stderr  # off a terminal, no bar by default
    if command == "export":  # the same pages either way
        assert result.stdout == plain.stdout and len(result.stdout.splitlines()) == 3
    else:
        assert result.stdout.splitlines()[-1] == plain.stdout.splitlines()[-1]


def test_verify_with_progress_still_names_a_damaged_bag(ingested_archive, tmp_path):
    archive = tmp_path / "archive"
    shutil.copytree(ingested_archive.root, archive)
    document_json = next(archive.glob("transactions/*/*/data/document.json"))
    document_json.unlink()  # the progress count cannot read it either: verify goes on and says what is wrong
    result = CliRunner().invoke(cli, ["verify", "--archive", str(archive), "--progress"])
    assert result.exit_code == 4 and "MISSING" in result.stdout and "document.json" in result.stdout, result.output


def test_warnings_print_above_the_bar_and_info_is_dropped():
    out = io.StringIO()
    handler = logging.StreamHandler(io.StringIO())
    with LiveBar(Console(file=out, width=100, force_terminal=False)) as bar:
        log_filter = LogAboveBar(bar, handler)
        info = logging.LogRecord("prefect", logging.INFO, __file__, 1, "a.pdf: archived", None, None)
        warning = logging.LogRecord("prefect", logging.WARNING, __file__, 1, "[x].pdf: quarantined", None, None)
        assert not log_filter.filter(info) and not log_filter.filter(warning)  # the handler itself writes nothing
    assert "[x].pdf: quarantined" in out.getvalue() and "archived" not in out.getvalue()


@pytest.fixture(scope="module")
def progress_batch(tmp_path_factory, resources, prefect_harness):
    """One real page of OCR and one file for quarantine, ingested through the CLI with the bar forced on."""
    src = tmp_path_factory.mktemp("scans")
    shutil.copy(resources / "notice-upside-down.pdf", src / "notice-upside-down.pdf")
    (src / "empty.pdf").write_bytes(b"")
    archive = tmp_path_factory.mktemp("archive")
    recorder = Recorder()
    with HOST.report_progress(recorder):
        result = CliRunner().invoke(cli, ["ingest", str(src), "--archive", str(archive), "--progress"])
    return {"src": src, "archive": archive, "result": result, "snapshots": recorder.snapshots}


def test_cli_progress_bar_counts_each_page_as_it_comes_back(progress_batch):
    result = progress_batch["result"]
    assert result.exit_code == 0, result.output
    assert "[2/2] done" in result.stderr and "1/1 pages" in result.stderr and "pages/min" in result.stderr
    assert "empty.pdf: quarantined" in result.stderr  # the warning still shows under the bar
    assert "1 archived (1 pages)" in result.stdout  # the summary is untouched, on stdout

    events = [(s.event, s.current, s.pages_done) for s in progress_batch["snapshots"]]
    notice = [e for e in events if e[1] == "notice-upside-down.pdf"]
    assert notice == [("page", "notice-upside-down.pdf", 1), ("document", "notice-upside-down.pdf", 1)]
    assert ("document", "empty.pdf") in [e[:2] for e in events]
    assert progress_batch["snapshots"][-1] == ProgressSnapshot("document", events[-1][1], 1, 1, 2, 2)


def test_cli_leaves_prefect_logging_as_it_was(progress_batch):
    from prefect.logging.handlers import PrefectConsoleHandler

    handlers = [h for h in logging.getLogger().handlers if isinstance(h, PrefectConsoleHandler)]
    assert all(not any(isinstance(f, LogAboveBar) for f in h.filters) for h in handlers)


def test_no_bar_by_default_off_a_terminal_and_json_stays_clean(progress_batch):
    args = ["ingest", str(progress_batch["src"]), "--archive", str(progress_batch["archive"]), "--json"]
    result = CliRunner().invoke(cli, args)  # a re-run: nothing to OCR
    assert result.exit_code == 0, result.output
    assert "pages/min" not in result.stderr
    summary = json.loads(result.stdout)
    assert summary["duplicates"] == 1 and len(summary["quarantined"]) == 1  # empty.pdf: still in quarantine
