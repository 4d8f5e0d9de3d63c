import numpy as np
from PIL import Image, ImageDraw
from pypdf import PdfReader
from reportlab.pdfgen import canvas

from archive.capture.imaging import is_blank, turn_upright
from archive.capture.ocr import rotate_points
from archive.capture.pageproc import read_seals
from archive.capture.pages import extract_pages
from archive.capture.seals import find_seals, red_mask, without_seals


def test_scanned_jpeg_pages_are_extracted_byte_for_byte(tmp_path, resources):
    pdf = resources / "award-notice.pdf"
    reader = PdfReader(pdf)
    pages = list(extract_pages(reader, pdf, tmp_path))
    assert [p.method for p in pages] == ["extracted", "extracted"]
    assert pages[0].dpi == 150
    [stream] = [x.get_object() for x in reader.pages[0]["/Resources"]["/XObject"].values()]
    assert pages[0].path.read_bytes() == stream.get_data()  # the scanner's own JPEG, not a re-encoding


def test_extracted_page_images_are_not_kept_in_memory(tmp_path, resources):
    pdf = resources / "award-notice.pdf"
    reader = PdfReader(pdf)
    for _page in extract_pages(reader, pdf, tmp_path):
        pass
    cached = [o for o in reader.resolved_objects.values() if getattr(o, "get", lambda _k: None)("/Subtype") == "/Image"]
    assert cached == []  # a 300-page scan would otherwise hold every page's JPEG until it is closed


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


def _page_with_seal_and_red_heading() -> Image.Image:
    page = Image.new("RGB", (1240, 1754), (245, 242, 235))
    draw = ImageDraw.Draw(page)
    draw.rectangle((100, 80, 1100, 140), fill=(200, 40, 40))  # a red heading bar (红头): not a seal
    draw.rectangle((700, 700, 900, 720), fill=(30, 30, 30))  # black text under the seal
    draw.ellipse((650, 550, 900, 800), outline=(200, 60, 60), width=6)
    draw.ellipse((740, 640, 810, 710), fill=(200, 60, 60))
    return page


def test_seals_are_found_and_painted_out_but_black_text_and_red_headings_stay():
    page = _page_with_seal_and_red_heading()
    seals = find_seals(page, dpi=150)
    assert len(seals) == 1
    x0, y0, x1, y1 = seals[0].box
    assert abs(x0 - 650) < 12 and abs(y1 - 800) < 12
    cleaned = np.asarray(without_seals(page, seals))
    assert not red_mask(cleaned[540:810, 640:910]).any()
    assert cleaned[710, 800].tolist() == [30, 30, 30]
    assert red_mask(cleaned[80:140, 100:1100]).all()


def test_seal_name_is_read_from_the_fixture(resources):
    image = PdfReader(resources / "award-notice.pdf").pages[0].images[0].image
    seals = read_seals(image.rotate(-1.2, fillcolor=(246, 243, 236)), dpi=150)
    assert [s["text"] for s in seals] == ["南宁市住建局"]


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
