import shutil

import pytest
from PIL import Image
from pypdf import PdfReader

from archive.capture.ocr import OcrBox, TesseractEngine, reading_order
from archive.han import join_han


def test_join_han_removes_spaces_between_chinese_only():
    assert join_han("中 标 通知书 GXZC 2023") == "中标通知书 GXZC 2023"


def test_table_cells_of_one_row_read_as_one_line():
    # Two rows of a bid-opening table; cells of row 2 sit slightly lower (skew residue).
    boxes = [
        OcrBox("投标人", (10, 100, 120, 130), 0.99),
        OcrBox("报价（元）", (400, 104, 560, 134), 0.98),
        OcrBox("广西宏达公司", (10, 150, 200, 180), 0.97),
        OcrBox("1,234,567.89", (400, 156, 600, 186), 0.96),
        OcrBox("开标记录表", (200, 20, 400, 60), 0.99),
    ]
    lines = reading_order(boxes)
    assert [line.text for line in lines] == ["开标记录表", "投标人 报价（元）", "广西宏达公司 1,234,567.89"]
    assert 0.96 <= lines[2].confidence <= 0.97


def test_prose_boxes_on_one_line_join_without_space():
    lines = reading_order([OcrBox("交易", (10, 10, 60, 40), 0.9), OcrBox("中心", (62, 10, 112, 40), 0.9)])
    assert lines[0].text == "交易中心"


@pytest.mark.skipif(not shutil.which("tesseract"), reason="tesseract not installed (make test installs it)")
def test_tesseract_engine_reads_chinese(resources):
    image: Image.Image = PdfReader(resources / "notice-upside-down.pdf").pages[0].images[0].image
    boxes = TesseractEngine().read(image.rotate(180))
    text = "".join(b.text for b in boxes)
    assert "档案" in text
    assert all(0 <= b.confidence <= 1 for b in boxes)


@pytest.mark.skipif(not shutil.which("tesseract"), reason="tesseract not installed (make test installs it)")
def test_a_page_read_by_tesseract_is_stood_upright_first(resources, tmp_path):
    from archive.capture.pageproc import PageJob, process_page
    from archive.capture.pages import extract_pages

    pdf = resources / "notice-upside-down.pdf"
    [page] = extract_pages(PdfReader(pdf), pdf, tmp_path)
    record = process_page(PageJob(1, str(page.path), "tesseract", page.dpi, None, str(tmp_path / "page.pdf")))
    assert record["orientation"] == 180 and "档案" in record["text"]
    assert PdfReader(tmp_path / "page.pdf").pages[0].extract_text()  # the access page carries the text layer
