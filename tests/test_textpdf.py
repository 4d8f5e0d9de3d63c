import shutil
import subprocess

import pikepdf
import pikepdf.pdfa
import pytest
from PIL import Image
from pypdf import PdfReader

from archive.capture.textpdf import AccessPage, join_pages, write_access_pdf, write_page_pdf

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

    from archive.capture.imaging import turn_upright, upright_size

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


def test_access_pdf_is_validated_pdfa_2b_with_one_embedded_text_font(tmp_path):
    """PDF/A-2b as written (pikepdf's validator, veraPDF's rules): the text font is
    embedded, maps back to Unicode, and is one object for the whole document."""
    jpeg, grey = tmp_path / "page.jpg", tmp_path / "grey.png"
    Image.new("RGB", (1240, 1754), "white").save(jpeg)
    Image.new("L", (1240, 1754), "white").save(grey)
    out = tmp_path / "access.pdf"
    pages = [AccessPage(jpeg, 1240, 1754, 150, LINES),
             AccessPage(grey, 1262, 1774, 150, LINES, rotation=1.5, image_size=(1240, 1754))]  # fmt: skip
    conformance = write_access_pdf(pages, out, title="中标通知书.pdf")
    assert conformance.pdfa == "2b" and not conformance.problems
    assert pikepdf.pdfa.validate_written(out, "2b").passed
    with pikepdf.open(out) as pdf:
        fonts = [dict(page.Resources.Font) for page in pdf.pages]
        assert [list(f) for f in fonts] == [["/TAText"], ["/TAText"]]  # reportlab's Helvetica is gone
        assert fonts[0]["/TAText"].objgen == fonts[1]["/TAText"].objgen
        descendant = fonts[0]["/TAText"].DescendantFonts[0]
        assert "/FontFile2" in descendant.FontDescriptor and "/ToUnicode" in fonts[0]["/TAText"]
        with pdf.open_metadata() as meta:
            assert meta.pdfa_status == "2B" and meta["dc:title"] == "中标通知书.pdf"
    assert PdfReader(out).pages[1].extract_text().splitlines() == [line["text"] for line in LINES]


def test_a_cmyk_scan_is_drawn_from_an_rgb_copy_to_stay_pdfa(tmp_path):
    scan = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (600, 800), (0, 0, 0, 0)).save(scan)
    out = tmp_path / "access.pdf"
    assert write_access_pdf([AccessPage(scan, 600, 800, 72, LINES)], out).pdfa == "2b"
    with pikepdf.open(out) as pdf:
        (image,) = pdf.pages[0].get_images().values()
        assert image.ColorSpace == "/DeviceRGB"
    assert Image.open(scan).mode == "CMYK" and not list(tmp_path.rglob("*.rgb.jpg"))  # scan untouched, copy gone


@pytest.mark.parametrize("mode", ["1", "L"])
def test_a_bitonal_or_grey_scan_keeps_its_bits_of_grey(tmp_path, mode):
    """Not 24-bit RGB (reportlab's way): 24x the pixels to compress for a bitonal page, a PDF twice
    the master's size. The pixels are the master's, white is white, and the file is PDF/A."""
    import numpy as np
    import pypdfium2

    master = Image.new("L", (400, 600), 255)
    master.paste(0, (50, 100, 350, 140))  # a black bar
    scan = tmp_path / "page.png"
    master.convert(mode).save(scan)
    out = tmp_path / "access.pdf"
    assert write_access_pdf([AccessPage(scan, 400, 600, 72, LINES)], out).pdfa == "2b"
    with pikepdf.open(out) as pdf:
        (image,) = pdf.pages[0].get_images().values()
        assert (image.ColorSpace, image.BitsPerComponent) == ("/DeviceGray", 1 if mode == "1" else 8)
        assert pikepdf.PdfImage(image).as_pil_image().convert("L").tobytes() == master.tobytes()
    shown = np.asarray(pypdfium2.PdfDocument(out)[0].render(scale=1).to_pil().convert("L"))
    assert shown[120, 200] < 20 and shown[300, 200] > 235  # the bar black, the paper white


def test_a_file_pdfa_refuses_is_saved_as_a_plain_searchable_pdf_and_says_why(tmp_path):
    image = tmp_path / "page.jpg"
    Image.new("RGB", (600, 800), "white").save(image)
    single = tmp_path / "single.pdf"
    write_page_pdf(AccessPage(image, 600, 800, 72, LINES), single)
    with pikepdf.open(single, allow_overwriting_input=True) as pdf:  # a page action: never allowed in PDF/A
        pdf.pages[0].obj.AA = pikepdf.Dictionary(O=pikepdf.Dictionary(S=pikepdf.Name.JavaScript, JS="app.alert(1)"))
        pdf.save()
    conformance = join_pages([single], tmp_path / "access.pdf")
    assert conformance.pdfa is None and "additional actions" in conformance.problems[0]
    with pikepdf.open(tmp_path / "access.pdf") as pdf, pdf.open_metadata() as meta:
        assert not meta.pdfa_status  # the failed attempt's PDF/A claim is not left in
    assert "中标（成交）通知书" in PdfReader(tmp_path / "access.pdf").pages[0].extract_text()


def test_control_characters_in_a_text_layer_keep_the_file_pdfa(tmp_path):
    """A born-digital page's text may carry NULs and other control characters: code 0
    would select .notdef, which PDF/A forbids; they go in as spaces."""
    image = tmp_path / "page.jpg"
    Image.new("RGB", (600, 800), "white").save(image)
    lines = [{"text": "中标\x00通知\x07书\x9f", "box": (10, 10, 300, 40)}]
    assert write_access_pdf([AccessPage(image, 600, 800, 72, lines)], tmp_path / "a.pdf").pdfa == "2b"
