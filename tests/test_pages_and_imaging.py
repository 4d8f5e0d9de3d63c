import numpy as np
from PIL import Image, ImageDraw
from pypdf import PdfReader
from reportlab.pdfgen import canvas

from archive.imaging import is_blank, red_ink_mask, turn_upright, without_red_ink
from archive.ocr import rotate_points
from archive.pages import extract_pages


def test_scanned_jpeg_pages_are_extracted_byte_for_byte(tmp_path, resources):
    pdf = resources / "award-notice.pdf"
    reader = PdfReader(pdf)
    pages = list(extract_pages(reader, pdf, tmp_path))
    assert [p.method for p in pages] == ["extracted", "extracted"]
    assert pages[0].dpi == 150
    embedded = reader.pages[0].images[0].data
    assert pages[0].path.read_bytes() == embedded


def test_born_digital_page_is_rendered(tmp_path):
    pdf = tmp_path / "typed.pdf"
    c = canvas.Canvas(str(pdf))
    c.drawString(72, 720, "Typed, not scanned")
    c.showPage()
    c.save()
    pages = list(extract_pages(PdfReader(pdf), pdf, tmp_path / "out"))
    assert pages[0].method == "rendered" and pages[0].dpi == 300


def test_blank_detection_ignores_paper_tone_and_speckle(tmp_path, resources):
    reader = PdfReader(resources / "award-notice.pdf")
    text_page, blank_page = (page.images[0].image for page in reader.pages)
    assert not is_blank(text_page)
    assert is_blank(blank_page)


def test_red_seal_ink_is_painted_out_but_black_text_stays():
    page = Image.new("RGB", (400, 200), (245, 242, 235))
    draw = ImageDraw.Draw(page)
    draw.rectangle((10, 10, 100, 100), fill=(30, 30, 30))
    draw.ellipse((200, 20, 380, 180), outline=(210, 30, 30), width=10)
    cleaned = np.asarray(without_red_ink(page))
    assert not red_ink_mask(cleaned).any()
    assert cleaned[50, 50].tolist() == [30, 30, 30]


def test_turn_upright_undoes_a_quarter_turn():
    page = Image.new("RGB", (300, 100), "white")
    turned = page.rotate(-90, expand=True)
    assert turn_upright(turned, 90, 0.0).size == (300, 100)


def test_rotate_points_agrees_with_pillow():
    image = Image.new("L", (400, 300), 0)
    image.putpixel((300, 50), 255)
    for angle in (2.5, -1.7):
        rotated = np.asarray(image.rotate(angle, expand=True, resample=Image.Resampling.NEAREST))
        ys, xs = np.nonzero(rotated)
        got = rotate_points(np.array([[300.5, 50.5]]), angle, (400, 300))[0]
        assert abs(got[0] - (xs.mean() + 0.5)) < 1.5 and abs(got[1] - (ys.mean() + 0.5)) < 1.5
