import shutil
import subprocess

import pytest
from PIL import Image
from pypdf import PdfReader

from archive.textpdf import AccessPage, write_access_pdf

LINES = [
    {"text": "中标（成交）通知书", "box": (300, 100, 900, 160), "confidence": 0.99},
    {"text": "项目编号：GXZC2023-G1-001234-KWZB", "box": (100, 200, 1100, 240), "confidence": 0.98},
    {"text": "南宁市公共资源交易中心", "box": (100, 260, 700, 300), "confidence": 0.97},
]


@pytest.fixture
def access_pdf(tmp_path):
    image = tmp_path / "page.jpg"
    Image.new("RGB", (1240, 1754), "white").save(image)
    out = tmp_path / "access.pdf"
    write_access_pdf([AccessPage(image, 1240, 1754, 150, LINES)], out)
    return out


def test_pypdf_reads_text_layer_in_order_without_spaces(access_pdf):
    text = PdfReader(access_pdf).pages[0].extract_text()
    assert text.splitlines() == [line["text"] for line in LINES]


@pytest.mark.skipif(not shutil.which("pdftotext"), reason="poppler-utils not installed")
def test_pdftotext_reads_text_layer(access_pdf):
    text = subprocess.run(["pdftotext", str(access_pdf), "-"], capture_output=True, text=True, check=True).stdout
    assert "南宁市公共资源交易中心" in text and "中标（成交）通知书" in text


def test_page_size_follows_image_resolution(access_pdf):
    box = PdfReader(access_pdf).pages[0].mediabox
    assert round(float(box.width)) == 595 and round(float(box.height)) == 842  # A4


def test_a_turned_skewed_scan_is_drawn_upright_without_resampling_the_image(tmp_path):
    """The access PDF turns the scan's own bytes as it draws them: rendered, the page
    matches the scan stood upright and straightened in pixels (imaging.turn_upright)."""
    import numpy as np
    import pypdfium2

    from archive.imaging import turn_upright, upright_size

    scan = Image.new("L", (400, 600), 255)
    scan.paste(0, (40, 50, 200, 90))  # a dark block near one corner: shows any wrong turn
    path = tmp_path / "scan.jpg"
    scan.convert("RGB").save(path, quality=95)
    turn, skew = 90, 3.0
    width, height = upright_size(scan.size, turn, skew)
    out = tmp_path / "turned.pdf"
    write_access_pdf([AccessPage(path, width, height, 72, [], rotation=turn + skew, image_size=scan.size)], out)
    rendered = pypdfium2.PdfDocument(out)[0].render(scale=1).to_pil().convert("L")
    expected = turn_upright(scan.convert("RGB"), turn, skew).convert("L")
    assert rendered.size == expected.size == (width, height)
    difference = np.abs(np.asarray(rendered, dtype=int) - np.asarray(expected, dtype=int))
    assert difference.mean() < 4
