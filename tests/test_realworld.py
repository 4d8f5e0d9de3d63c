"""Real-world PDFs, reproduced small: the kinds of file that broke the pipeline on
public test corpora (issue 18), made here with reportlab / pikepdf, and run through
the batch path (``run_batch`` with the worker pool, as ``ingest`` runs it).

No OCR is needed for most of them: born-digital pages carry their own text."""

from __future__ import annotations

import json
import os
import signal
import unicodedata
from pathlib import Path

import pytest
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen import canvas

import index
from archive.capture.pageproc import PageSettings
from archive.capture.pages import ExtractJob, extract_page
from archive.capture.parallel import PagePool
from archive.ingest.batch import HOST, run_batch, submit_here
from archive.records.export import export_pages
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
        summary = run_batch(
            archive, src, submit_here, index.update, workers=pool.workers, settings=PageSettings(engine=pool.engine)
        )
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


# --- the corpus: one small file per kind of trouble met in real files -----------------------------

pdfmetrics.registerFont(UnicodeCIDFont("MSung-Light"))  # traditional Chinese (Adobe-CNS1)
_TO_UNICODE = b"""/CIDInit /ProcSet findresource begin 12 dict begin begincmap
/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def
/CMapName /Adobe-Identity-UCS def /CMapType 2 def
1 begincodespacerange <0000> <FFFF> endcodespacerange
3 beginbfchar
<0001> <80E1>
<0002> <99FF>
<0003> <D855DD5B>
endbfchar
endcmap CMapName currentdict /CMap defineresource pop end end"""


def _drawn_twice(page: canvas.Canvas) -> None:
    """Each character drawn on its own, a hair from its neighbour, in alternating sizes (a
    producer's bold effect): taken by rectangles, each character came out twice."""
    x = 72
    for number, ch in enumerate("关于红军作战的决定"):
        page.setFont("STSong-Light", 20 + number % 2)
        page.drawString(x, 700 - (number % 2) * 0.8, ch)
        x += 19
    for shift in (0, 0.4):  # and a line drawn twice, a hair apart
        page.setFont("STSong-Light", 16)
        page.drawString(72 + shift, 650, "全世界无产者联合起来")


def _positioned_words(page: canvas.Canvas) -> None:
    """Words placed one by one, no space character between them (spacing by position)."""
    page.setFont("Helvetica", 14)
    x = 72
    for word in "Lorem ipsum dolor sit amet consectetur".split():
        page.drawString(x, 700, word)
        x += page.stringWidth(word, "Helvetica", 14) + 4.5


def _private_and_control(path: Path) -> Path:
    """A Type0 font whose ToUnicode maps a code to a character beyond the BMP (U+2555B),
    and a simple font whose code 2 (no Unicode meaning) sits inside a word."""
    import pikepdf

    pdf = pikepdf.new()
    descendant = pikepdf.Dictionary(
        Type=pikepdf.Name.Font, Subtype=pikepdf.Name.CIDFontType2, BaseFont=pikepdf.Name.SimSun, DW=1000,
        CIDSystemInfo=pikepdf.Dictionary(Registry=pikepdf.String("Adobe"), Ordering=pikepdf.String("Identity"),
                                         Supplement=0),
        FontDescriptor=pikepdf.Dictionary(Type=pikepdf.Name.FontDescriptor, FontName=pikepdf.Name.SimSun, Flags=4,
                                          FontBBox=[0, -200, 1000, 800], ItalicAngle=0, Ascent=800, Descent=-200,
                                          CapHeight=700, StemV=80),
    )  # fmt: skip
    han = pikepdf.Dictionary(Type=pikepdf.Name.Font, Subtype=pikepdf.Name.Type0, BaseFont=pikepdf.Name.SimSun,
                             Encoding=pikepdf.Name("/Identity-H"), DescendantFonts=[descendant],
                             ToUnicode=pikepdf.Stream(pdf, _TO_UNICODE))  # fmt: skip
    latin = pikepdf.Dictionary(Type=pikepdf.Name.Font, Subtype=pikepdf.Name.Type1, BaseFont=pikepdf.Name.Helvetica)
    content = b"BT /F1 24 Tf 72 700 Td <000100020003> Tj ET BT /F2 18 Tf 72 650 Td (a dan\x02gerous road) Tj ET"
    page = pikepdf.Dictionary(Type=pikepdf.Name.Page, MediaBox=[0, 0, 595, 842],
                              Resources=pikepdf.Dictionary(Font=pikepdf.Dictionary(F1=han, F2=latin)),
                              Contents=pikepdf.Stream(pdf, content))  # fmt: skip
    pdf.pages.append(pikepdf.Page(page))
    pdf.save(path)
    return path


def _traditional(page: canvas.Canvas) -> None:
    _lines(page, ["收據", "機號：A123 日期：2023年5月1日", "金額：壹佰元整"], font="MSung-Light")


def _stamped(page: canvas.Canvas) -> None:
    """Born-digital text with a red rectangular stamp placed over it as a picture."""
    from PIL import Image, ImageDraw, ImageFont
    from reportlab.lib.utils import ImageReader

    _lines(page, ["关于公布试行办法的通知", "各有关单位：现将办法印发给你们，请遵照执行。"])
    stamp = Image.new("RGB", (900, 260), "white")
    draw = ImageDraw.Draw(stamp)
    draw.rectangle((8, 8, 891, 251), outline=(215, 30, 30), width=14)
    draw.text((70, 70), "VALID 2024", fill=(215, 30, 30), font=ImageFont.load_default(size=110))
    page.drawImage(ImageReader(stamp), 300, 700, width=180, height=52)


def _brotli(path: Path) -> Path:
    """A page whose content stream says it is Brotli-compressed (pdf.js has such files)."""
    import pikepdf

    pdf = pikepdf.new()
    pdf.add_blank_page(page_size=A4)
    content = pikepdf.Stream(pdf, b"\x1b\x03\x00\xf8\x8d\x94\x6e\xde\x44\x67")
    content.Filter = pikepdf.Name("/BrotliDecode")
    pdf.pages[0].Contents = content
    pdf.save(path, compress_streams=False)
    return path


def _headerless(path: Path) -> Path:
    """A PDF without its %PDF- header line, which pdfium, poppler and pypdf all open."""
    _pdf(path, lambda c: _lines(c, ["无文件头的文件"]))
    path.write_bytes(path.read_bytes().replace(b"%PDF-1.4", b"", 1))
    return path


@pytest.fixture(scope="module")
def corpus_batch(tmp_path_factory):
    """The corpus through one batch, on a one-worker pool; (report, archive, exported pages by file)."""
    root = tmp_path_factory.mktemp("realworld")
    src = root / "scans"
    src.mkdir()
    _pdf(src / "drawn-twice.pdf", _drawn_twice)
    _pdf(src / "positioned-words.pdf", _positioned_words)
    _private_and_control(src / "private-use.pdf")
    _pdf(src / "traditional.pdf", _traditional)
    _pdf(src / "stamped.pdf", _stamped)
    _brotli(src / "brotli.pdf")
    _headerless(src / "no-header.pdf")
    with PagePool(1, "rapidocr") as pool:
        report = _batch(src, root / "archive", pool)
    archive = Archive(root / "archive")
    pages = {Path(p["source"]).name: p for p in export_pages(archive)[1]}
    return report, archive, pages


def test_every_corpus_file_is_archived_or_quarantined_for_its_real_cause(corpus_batch):
    report, _archive, pages = corpus_batch
    assert report["archived"] == 6, report["quarantined"]
    assert all(not page["blank"] for page in pages.values())
    assert pages["no-header.pdf"]["text"] == "无文件头的文件"  # no header line, yet a PDF: not 'not a PDF'
    [brotli] = report["quarantined"]
    assert brotli["source"].endswith("brotli.pdf") and brotli["reason"] == "unsupported_compression"
    assert "Brotli" in brotli["message"] and "not damaged" in brotli["message"] and "pip" not in brotli["message"]


def test_library_advice_to_install_packages_is_not_passed_on():
    from archive.capture.intake import brief

    error = RuntimeError("brotli is required for BrotliDecode. Install it with: pip install pypdf[brotli]")
    assert brief(error) == "brotli is required for BrotliDecode."


def test_text_drawn_twice_is_read_once(corpus_batch):
    text = corpus_batch[2]["drawn-twice.pdf"]["text"]
    assert text.splitlines() == ["关于红军作战的决定", "全世界无产者联合起来"]


def test_word_spaces_made_by_position_are_kept_and_searchable(corpus_batch):
    _report, archive, pages = corpus_batch
    assert pages["positioned-words.pdf"]["text"] == "Lorem ipsum dolor sit amet consectetur"
    assert [hit["source"] for hit in index.search(archive, "Lorem")] == ["positioned-words.pdf"]


def test_characters_beyond_the_bmp_kept_and_control_characters_dropped(corpus_batch):
    assert corpus_batch[2]["private-use.pdf"]["text"].splitlines() == ["胡駿\U0002555b", "a dangerous road"]


def test_no_exported_page_holds_control_or_private_use_characters(corpus_batch):
    for name, page in corpus_batch[2].items():
        odd = [ch for ch in page["text"] if ch != "\n" and unicodedata.category(ch) in ("Cc", "Cf", "Co", "Cs")]
        assert not odd, (name, odd)


def test_a_traditional_page_keeps_its_script_and_is_found_in_either(corpus_batch):
    _report, archive, pages = corpus_batch
    assert pages["traditional.pdf"]["text"].splitlines()[0] == "收據"
    assert "機號" in pages["traditional.pdf"]["text"]
    for query in ("收据", "收據", "机号"):
        assert [hit["source"] for hit in index.search(archive, query)] == ["traditional.pdf"], query


def _page_image(path: Path, dark: bool, words: str, size: int) -> Path:
    from PIL import Image, ImageDraw, ImageFont

    ground, ink = (20, 20, 20) if dark else (255, 255, 255), (235, 235, 235) if dark else (0, 0, 0)
    image = Image.new("RGB", (1240, 1754), ground)
    font = ImageFont.load_default(size=size)
    draw = ImageDraw.Draw(image)
    for number, line in enumerate(words.splitlines()):
        draw.text((120, 200 + number * int(size * 1.6)), line, fill=ink, font=font)
    image.save(path)
    return path


def test_light_text_on_a_dark_ground_is_ink_and_is_read(tmp_path):
    """Not blank whatever the polarity: the page is read, and its words are there."""
    from PIL import Image

    from archive.capture.imaging import ink_fraction
    from archive.capture.pageproc import PageJob, process_page

    page = _page_image(tmp_path / "dark.png", True, "INVOICE 2023\nTOTAL AMOUNT 1234.00\nPAID IN FULL", 64)
    with Image.open(page) as opened:
        assert ink_fraction(opened) > 0.003
    record = process_page(PageJob(1, str(page), "rapidocr", dpi=150))
    assert record["blank"] is False and "INVOICE" in record["text"].upper(), record["text"]


def test_a_page_with_one_short_word_is_not_blank(tmp_path):
    """Far below the blank page's ink share, yet text: a page is blank only without any."""
    from PIL import Image

    from archive.capture.imaging import BLANK_INK_FRACTION, ink_fraction
    from archive.capture.pageproc import PageJob, process_page

    page = _page_image(tmp_path / "word.png", False, "PAID", 40)
    with Image.open(page) as opened:
        assert 0 < ink_fraction(opened) < BLANK_INK_FRACTION
    record = process_page(PageJob(1, str(page), "rapidocr", dpi=150))
    assert record["blank"] is False and "PAID" in record["text"].upper(), record


def test_a_stamp_on_a_born_digital_page_is_recorded_with_its_text(corpus_batch):
    report, _archive, pages = corpus_batch
    assert pages["stamped.pdf"]["text"].startswith("关于公布试行办法的通知")
    [outcome] = [o for o in report["outcomes"] if o["source"].endswith("stamped.pdf")]
    record = json.loads((Path(outcome["path"]) / "data" / "ocr" / "0001.json").read_text(encoding="utf-8"))
    [stamp] = record["seals"]
    assert stamp["text"] and "VALID" in stamp["text"].upper() and "2024" in stamp["text"], stamp


def test_a_page_with_marks_but_no_text_is_blank(tmp_path):
    """Punch holes and show-through are ink, not text: nothing read, little ink, blank."""
    from PIL import Image, ImageDraw

    from archive.capture.pageproc import PageJob, process_page

    image = Image.new("RGB", (1240, 1754), "white")
    draw = ImageDraw.Draw(image)
    for y in (500, 1250):
        draw.ellipse((90, y, 150, y + 60), fill=(40, 40, 40))  # punch holes
    image.save(tmp_path / "holes.png")
    record = process_page(PageJob(1, str(tmp_path / "holes.png"), "rapidocr", dpi=150))
    assert record["blank"] is True and record["ink"] > 0 and record["text"] == "", record
