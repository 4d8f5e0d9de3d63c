"""Real-world PDFs, reproduced small: the kinds of file that broke the pipeline on
public test corpora (issue 18), made here with reportlab / pikepdf, and run through
the batch path (``run_batch`` with the worker pool, as ``ingest`` runs it).

No OCR is needed for most of them: born-digital pages carry their own text."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen import canvas

import index
from archive.capture.pages import ExtractJob, extract_page
from archive.capture.parallel import PagePool
from archive.ingest.batch import HOST, run_batch, submit_here
from archive.storage.store import Archive

A4 = (595, 842)
pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))  # a standard CJK font: nothing embedded


def _pdf(path: Path, draw) -> Path:  # noqa: ANN001 - draw(canvas)
    page = canvas.Canvas(str(path), pagesize=A4)
    draw(page)
    page.showPage()
    page.save()
    return path


def _lines(page: canvas.Canvas, lines: list[str], font: str = "STSong-Light", size: int = 16) -> None:
    page.setFont(font, size)
    for number, line in enumerate(lines):
        page.drawString(72, 760 - 28 * number, line)


def _dies_on_crash_pdf(job: ExtractJob):  # noqa: ANN201 - module level: spawned workers import it
    """As a crash inside pdfium would end the worker (SIGSEGV) on one file."""
    if Path(job.source).name == "crashes-pdfium.pdf":
        os.kill(os.getpid(), signal.SIGSEGV)
    return extract_page(job)


def _batch(src: Path, root: Path, pool: PagePool) -> dict:
    """``src`` through the batch use case, on ``pool``, as ``ingest`` runs it (documents in this thread)."""
    archive = Archive.open(root, create=True)
    HOST.ready_pools.append(pool)
    try:
        summary = run_batch(archive, src, submit_here, index.update, workers=pool.workers, engine=pool.engine)
    finally:
        HOST.ready_pools.remove(pool)
    return summary.to_json()


def test_a_crash_inside_pdfium_costs_one_file_and_the_batch_goes_on(tmp_path):
    """Pages are taken out of the PDF in the worker processes: a worker that dies there
    (SIGSEGV in native code) quarantines its file as worker_crashed, and the batch finishes."""
    src = tmp_path / "scans"
    src.mkdir()
    _pdf(src / "a-before.pdf", lambda c: _lines(c, ["关于档案数字化的通知"]))
    _pdf(src / "crashes-pdfium.pdf", lambda c: _lines(c, ["这一份让读取程序崩溃"]))
    _pdf(src / "z-after.pdf", lambda c: _lines(c, ["中标通知书"]))
    with PagePool(1, "rapidocr", extract_function=_dies_on_crash_pdf) as pool:
        report = _batch(src, tmp_path / "archive", pool)
    assert report["archived"] == 2, report["outcomes"]
    [crashed] = report["quarantined"]
    assert crashed["source"].endswith("crashes-pdfium.pdf") and crashed["reason"] == "worker_crashed"
    assert "SIGSEGV" in crashed["message"] and "crashes-pdfium.pdf" in crashed["message"], crashed["message"]
    assert "damaged or unusual" in crashed["message"]


def test_pdfium_is_never_called_from_two_threads_at_once(tmp_path, monkeypatch):
    """Pages extracted here (no pool: Dask workers, scripts) from several threads: every
    pdfium call holds one lock (pdfium is not thread-safe, even across documents)."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from pypdf import PdfReader

    from archive.capture import pages

    threads, inside, most = 4, [0], [0]
    guard = threading.Lock()
    real = pages._Renderer._render

    def counted(self, index, number):  # noqa: ANN001, ANN202
        with guard:
            inside[0] += 1
            most[0] = max(most[0], inside[0])
        try:
            return real(self, index, number)
        finally:
            with guard:
                inside[0] -= 1

    # counted runs inside the lock (render holds it around _render)
    monkeypatch.setattr(pages._Renderer, "_render", counted)
    files = [_pdf(tmp_path / f"{n}.pdf", lambda c: _lines(c, ["通知"] * 3)) for n in range(threads)]

    def extract(path: Path) -> int:
        return len(list(pages.extract_pages(PdfReader(path), path, tmp_path / path.stem)))

    with ThreadPoolExecutor(threads) as pool:
        assert list(pool.map(extract, files)) == [1] * threads
    assert most[0] == 1
