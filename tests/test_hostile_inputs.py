"""Hostile and broken inputs (issue 10): every one gets a defined outcome, archived
correctly or quarantined with a reason code and a message a person understands;
never a crash of the batch, a hang, unbounded memory, or a file outside the archive.

The corpus is generated here, small and fast (reportlab, pypdf, Pillow and a raw
PDF writer for the structures no library writes on purpose). Most tests call
``open_source_pdf`` / ``extract_pages`` / ``pageproc`` directly and need no OCR;
``test_batch_of_hostile_inputs`` runs the real pipeline (OCR included, no Prefect)
over all of them plus the two good fixture scans.

| input | outcome |
|---|---|
| zero-byte file | quarantined ``empty_file`` |
| truncated PDF | quarantined ``unreadable_pdf`` |
| JPEG renamed .pdf | quarantined ``not_pdf`` |
| RC4 / AES-256 encrypted, with a user password | quarantined ``encrypted`` |
| RC4 / AES-256 encrypted, owner password only | quarantined ``encrypted``; the message says it opens without |
|   | a password and how to strip the protection (an archive holds no encrypted file) |
| CCITT G4 bitonal page | archived, extracted losslessly (mode 1, pixel-identical) |
| JBIG2 page (MMR generic region) | archived, rendered by pdfium (pypdf needs jbig2dec) |
| CMYK JPEG page | archived, the JPEG bytes kept; processed as RGB |
| 16-bit grey page | archived, scaled to 8 bits (not clipped to white) |
| 40,000 x 40,000 image in a tiny Flate stream | quarantined ``image_too_large`` before decoding |
| 200 x 200 inch page | quarantined ``image_too_large`` before rendering |
| 1,000 tiny blank pages | archived, 1,000 blank pages, no OCR (full ingest marked slow) |
| born-digital page with a text layer | archived, text from the PDF (``text_source: "pdf"``), no OCR |
| /OpenAction JavaScript | archived, ``pdf_has_javascript`` in qc_flags; access.pdf has none |
| embedded file | archived, ``pdf_has_embedded_files`` in qc_flags; access.pdf has none |
| /Launch action, XFA form, rich media | archived, ``pdf_has_launch_action`` / ``_xfa`` / ``_rich_media`` |
| page tree whose /Kids point back / at each other, or 3,000 levels deep | quarantined ``unreadable_pdf`` |
| arrays nested 20,000 deep | quarantined ``unreadable_pdf`` |
| dictionaries nested 5,000 deep, a form XObject that draws itself | archived (rendered) |
| GBK-byte file name, ``..``, backslashes, newline in a name | handled by content; names never reach a path |
| same name in two folders | both archived (ids are SHA-256 based) |
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import shutil
import signal
import struct
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np
import pypdfium2
import pytest
from PIL import Image
from pypdf import PdfReader, PdfWriter
from pypdf.generic import ArrayObject, DictionaryObject, NameObject, TextStringObject
from reportlab.lib.utils import ImageReader
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen import canvas

from archive.capture import pageproc
from archive.capture.imaging import ink_fraction
from archive.capture.intake import open_source_pdf
from archive.capture.pageproc import PageJob, PageRejected, PageSettings, load_page_image, process_page
from archive.capture.pages import extract_pages
from archive.errors import InputRejected
from archive.storage.store import Archive, readable_path, safe_name

RESOURCES = Path(__file__).parent / "resources"
AWARD_CODE = "NNZC2023-G1-004567-KWZB"
BORN_CODE = "NNZC2023-G1-009999-KWZB"


# --- a raw PDF writer: hostile structures no library writes on purpose -------------------------


def raw_pdf(objects: list[bytes]) -> bytes:
    """Objects numbered 1..n (1 is the catalog), with a correct xref table."""
    out = io.BytesIO()
    out.write(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref))
    return out.getvalue()


def stream(entries: bytes, data: bytes) -> bytes:
    return b"<< " + entries + b" /Length %d >>\nstream\n" % len(data) + data + b"\nendstream"


CATALOG = b"<< /Type /Catalog /Pages 2 0 R >>"


def image_page(entries: bytes, data: bytes, width_pt: float = 595.2, height_pt: float = 841.9) -> bytes:
    """One page drawing one image XObject over the whole page."""
    return raw_pdf([
        CATALOG,
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %.2f %.2f] /Resources << /XObject << /Im0 4 0 R >> >> "
        b"/Contents 5 0 R >>" % (width_pt, height_pt),
        stream(b"/Type /XObject /Subtype /Image " + entries, data),
        stream(b"", b"q %.2f 0 0 %.2f 0 0 cm /Im0 Do Q" % (width_pt, height_pt)),
    ])  # fmt: skip


# --- the corpus -------------------------------------------------------------------------------


def fixture_scan() -> Image.Image:
    """Page 1 of the award notice (150 dpi, Chinese text and a red seal)."""
    return PdfReader(RESOURCES / "award-notice.pdf").pages[0].images[0].image.convert("RGB")


def bitonal_scan() -> Image.Image:
    return fixture_scan().convert("L").point(lambda v: 255 if v > 150 else 0).convert("1")


def g4_data(bitonal: Image.Image) -> bytes:
    """CCITT T.6 (Group 4) data from Pillow's libtiff writer, in one strip (each
    strip restarts the coding). libtiff codes 0 bits as white, so the min-is-black
    image Pillow hands it is inverted first."""
    buffer = io.BytesIO()
    bitonal.point(lambda v: 255 - v).save(buffer, format="TIFF", compression="group4", tiffinfo={278: bitonal.height})
    tiff = Image.open(io.BytesIO(buffer.getvalue()))
    raw = buffer.getvalue()
    return b"".join(raw[offset : offset + count] for offset, count in zip(tiff.tag_v2[273], tiff.tag_v2[279]))


def ccitt_g4_pdf() -> bytes:
    bitonal = bitonal_scan()
    width, height = bitonal.size
    entries = (
        b"/Width %d /Height %d /ColorSpace /DeviceGray /BitsPerComponent 1 /Filter /CCITTFaxDecode "
        b"/DecodeParms << /K -1 /Columns %d /Rows %d /BlackIs1 false >>" % (width, height, width, height)
    )
    return image_page(entries, g4_data(bitonal))


def jbig2_pdf() -> bytes:
    """A JBIG2 embedded stream: a page-information segment and one immediate
    lossless generic region coded with MMR, which is exactly CCITT T.6."""
    bitonal = bitonal_scan()
    width, height = bitonal.size

    def segment(number: int, kind: int, payload: bytes) -> bytes:  # header: number, flags, referred, page, length
        return struct.pack(">IBBBI", number, kind, 0, 1, len(payload)) + payload

    page_info = struct.pack(">IIIIBH", width, height, 0, 0, 1, 0)
    region = struct.pack(">IIIIB", width, height, 0, 0, 0) + b"\x01" + g4_data(bitonal)  # flags: MMR
    data = segment(0, 48, page_info) + segment(1, 38, region)
    entries = b"/Width %d /Height %d /ColorSpace /DeviceGray /BitsPerComponent 1 /Filter /JBIG2Decode" % (
        width,
        height,
    )
    return image_page(entries, data)


def cmyk_pdf() -> bytes:
    scan = fixture_scan().resize((620, 877)).convert("CMYK")
    buffer = io.BytesIO()
    scan.point(lambda v: 255 - v).save(buffer, format="JPEG", quality=80)  # Adobe CMYK JPEGs store ink inverted
    entries = b"/Width 620 /Height 877 /ColorSpace /DeviceCMYK /BitsPerComponent 8 /Filter /DCTDecode"
    return image_page(entries, buffer.getvalue())


def sixteen_bit_pdf() -> bytes:
    grey = np.asarray(fixture_scan().resize((620, 877)).convert("L")).astype(">u2") * 257
    entries = b"/Width 620 /Height 877 /ColorSpace /DeviceGray /BitsPerComponent 16 /Filter /FlateDecode"
    return image_page(entries, zlib.compress(grey.tobytes(), 6))


def bomb_pdf() -> bytes:
    """Declares 40,000 x 40,000 pixels (1.6 GP, 1.6 GB as 8-bit grey); the Flate
    stream is 5 KB (its first rows: the size check must not need the rest)."""
    entries = b"/Width 40000 /Height 40000 /ColorSpace /DeviceGray /BitsPerComponent 8 /Filter /FlateDecode"
    return image_page(entries, zlib.compress(bytes(40000 * 125), 9))


def huge_page_pdf() -> bytes:
    return raw_pdf([
        CATALOG,
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 14400 14400] /Contents 4 0 R >>",
        stream(b"", b"0 0 0 rg 100 100 500 500 re f"),
    ])  # fmt: skip


def many_pages_pdf(count: int = 1000) -> bytes:
    kids = b" ".join(b"%d 0 R" % (4 + i) for i in range(count))
    page = b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 72 72] /Contents 3 0 R >>"
    pages = b"<< /Type /Pages /Kids [" + kids + b"] /Count %d >>" % count
    return raw_pdf([CATALOG, pages, stream(b"", b"")] + [page] * count)


def cyclic_kids_pdf() -> bytes:
    return raw_pdf([
        CATALOG,
        b"<< /Type /Pages /Kids [3 0 R 2 0 R] /Count 2 >>",  # the root is its own child
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 72 72] >>",
    ])  # fmt: skip


def cyclic_tree_pdf() -> bytes:
    return raw_pdf([
        CATALOG,
        b"<< /Type /Pages /Kids [3 0 R] /Count 2 >>",
        b"<< /Type /Pages /Parent 2 0 R /Kids [2 0 R] /Count 1 >>",  # two nodes, each the other's child
    ])  # fmt: skip


def deep_page_tree_pdf(depth: int = 3000) -> bytes:
    objects = [CATALOG]
    for level in range(depth):
        number = 2 + level
        parent = b" /Parent %d 0 R" % (number - 1) if level else b""
        objects.append(b"<< /Type /Pages /Kids [%d 0 R] /Count 1%s >>" % (number + 1, parent))
    objects.append(b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 72 72] >>" % (depth + 1))
    return raw_pdf(objects)


def deep_arrays_pdf(depth: int = 20000) -> bytes:
    return raw_pdf([
        CATALOG,
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 72 72] /Deep " + b"[" * depth + b"]" * depth + b" >>",
    ])  # fmt: skip


def deep_dicts_pdf(depth: int = 5000) -> bytes:
    return raw_pdf([
        CATALOG,
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 72 72] /Resources 4 0 R >>",
        b"<< /A " * depth + b">>" * depth,
    ])  # fmt: skip


def self_drawing_form_pdf() -> bytes:
    return raw_pdf([
        CATALOG,
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 72 72] /Resources << /XObject << /F 4 0 R >> >> "
        b"/Contents 5 0 R >>",
        stream(b"/Type /XObject /Subtype /Form /BBox [0 0 72 72] /Resources << /XObject << /F 4 0 R >> >>", b"/F Do"),
        stream(b"", b"/F Do"),
    ])  # fmt: skip


def born_digital_pdf(title: str = "中标通知书", code: str = BORN_CODE) -> bytes:
    pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=(595, 842), invariant=1)
    pdf.setFont("STSong-Light", 14)
    for y, line in ((760, title), (730, f"项目编号：{code}"), (700, "采购人：南宁市公共资源交易中心")):
        pdf.drawString(72, y, line)
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()


def scan_with_stamp_pdf() -> bytes:
    """A full-page scan with a visible typed page number on top: the scan needs OCR."""
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=(595, 842), invariant=1)
    pdf.drawImage(ImageReader(fixture_scan().resize((620, 877))), 0, 0, width=595, height=842)
    pdf.setFont("Helvetica", 9)
    pdf.drawString(500, 20, "Page 1 of 1")
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()


def _rewrite(data: bytes, change) -> bytes:  # noqa: ANN001
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(data)))
    change(writer)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def javascript_pdf() -> bytes:
    def add(writer: PdfWriter) -> None:
        action = DictionaryObject({NameObject("/S"): NameObject("/JavaScript"),
                                   NameObject("/JS"): TextStringObject("app.alert('hello');")})  # fmt: skip
        writer._root_object[NameObject("/OpenAction")] = writer._add_object(action)

    return _rewrite(born_digital_pdf("成交通知书"), add)


def launch_xfa_pdf() -> bytes:
    """An open action that starts a program, an XFA form and a rich-media (Flash) annotation."""

    def add(writer: PdfWriter) -> None:
        launch = DictionaryObject({NameObject("/S"): NameObject("/Launch"),
                                   NameObject("/F"): TextStringObject("cmd.exe")})  # fmt: skip
        writer._root_object[NameObject("/OpenAction")] = writer._add_object(launch)
        form = DictionaryObject({NameObject("/Fields"): ArrayObject(),
                                 NameObject("/XFA"): TextStringObject("<xdp:xdp/>")})  # fmt: skip
        writer._root_object[NameObject("/AcroForm")] = writer._add_object(form)
        flash = DictionaryObject(
            {NameObject("/Type"): NameObject("/Annot"), NameObject("/Subtype"): NameObject("/RichMedia")}
        )
        writer.pages[0][NameObject("/Annots")] = ArrayObject([writer._add_object(flash)])

    return _rewrite(born_digital_pdf("采购合同"), add)


def attachment_pdf() -> bytes:
    return _rewrite(born_digital_pdf("中标结果公告"), lambda w: w.add_attachment("payload.exe", b"MZ\x90\x00"))


def encrypted_pdf(algorithm: str, user_password: str) -> bytes:
    def encrypt(writer: PdfWriter) -> None:
        writer.encrypt(user_password=user_password, owner_password="owner", algorithm=algorithm)

    return _rewrite((RESOURCES / "notice-upside-down.pdf").read_bytes(), encrypt)


def jpeg_bytes() -> bytes:
    buffer = io.BytesIO()
    fixture_scan().resize((200, 283)).save(buffer, format="JPEG")
    return buffer.getvalue()


# name -> (bytes, expected: "archived" or the quarantine reason). Every file differs from the others.
INTAKE_REJECTS = {
    "empty.pdf": (lambda: b"", "empty_file"),
    "truncated.pdf": (lambda: (RESOURCES / "award-notice.pdf").read_bytes()[:400], "unreadable_pdf"),
    "photo.pdf": (jpeg_bytes, "not_pdf"),
    "rc4-user-password.pdf": (lambda: encrypted_pdf("RC4-128", "pw"), "encrypted"),
    "aes256-user-password.pdf": (lambda: encrypted_pdf("AES-256", "pw"), "encrypted"),
    "rc4-owner-password-only.pdf": (lambda: encrypted_pdf("RC4-128", ""), "encrypted"),
    "aes256-owner-password-only.pdf": (lambda: encrypted_pdf("AES-256", ""), "encrypted"),
    "cyclic-kids.pdf": (cyclic_kids_pdf, "unreadable_pdf"),
    "cyclic-tree.pdf": (cyclic_tree_pdf, "unreadable_pdf"),
    "deep-page-tree.pdf": (deep_page_tree_pdf, "unreadable_pdf"),
    "deep-arrays.pdf": (deep_arrays_pdf, "unreadable_pdf"),
}
PAGE_REJECTS = {
    "bomb.pdf": (bomb_pdf, "image_too_large"),
    "huge-page.pdf": (huge_page_pdf, "image_too_large"),
}
ARCHIVED = {
    "ccitt-g4.pdf": (ccitt_g4_pdf, "archived"),
    "jbig2.pdf": (jbig2_pdf, "archived"),
    "cmyk.pdf": (cmyk_pdf, "archived"),
    "16-bit.pdf": (sixteen_bit_pdf, "archived"),
    "born-digital.pdf": (born_digital_pdf, "archived"),
    "javascript.pdf": (javascript_pdf, "archived"),
    "attachment.pdf": (attachment_pdf, "archived"),
    "launch-xfa.pdf": (launch_xfa_pdf, "archived"),
    "deep-dicts.pdf": (deep_dicts_pdf, "archived"),
    "self-drawing-form.pdf": (self_drawing_form_pdf, "archived"),
}
CORPUS = {**INTAKE_REJECTS, **PAGE_REJECTS, **ARCHIVED}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("corpus")
    for name, (make, _expected) in CORPUS.items():
        (folder / name).write_bytes(make())
    return folder


def test_corpus_is_small_and_distinct(corpus):
    sizes = {path.name: path.stat().st_size for path in corpus.iterdir()}
    assert max(sizes.values()) < 400_000, sizes
    digests = {hashlib.sha256(path.read_bytes()).hexdigest() for path in corpus.iterdir()}
    assert len(digests) == len(sizes)  # no two inputs are duplicates of each other


# --- intake: rejected before any work, with a reason and words -------------------------------


@pytest.mark.parametrize("name", sorted(INTAKE_REJECTS))
def test_intake_rejects_with_a_reason(corpus, name):
    started = time.monotonic()
    with pytest.raises(InputRejected) as caught:
        open_source_pdf(corpus / name)
    assert caught.value.reason == INTAKE_REJECTS[name][1]
    assert name in str(caught.value) and len(str(caught.value)) > 40  # names the file, says what to do
    assert time.monotonic() - started < 5


def test_owner_password_only_message_says_it_opens_without_a_password(corpus):
    for name in ("rc4-owner-password-only.pdf", "aes256-owner-password-only.pdf"):
        with pytest.raises(InputRejected, match="owner password only") as caught:
            open_source_pdf(corpus / name)
        assert "qpdf --decrypt" in str(caught.value)
    with pytest.raises(InputRejected, match="needs a password to open"):
        open_source_pdf(corpus / "aes256-user-password.pdf")


# --- pages: decoded only within the pixel budget --------------------------------------------


@pytest.mark.parametrize("name", sorted(PAGE_REJECTS))
def test_oversized_pages_are_rejected_before_decoding(corpus, tmp_path, name):
    started = time.monotonic()
    source, reader = open_source_pdf(corpus / name)
    with pytest.raises(InputRejected) as caught:
        list(extract_pages(reader, source.path, tmp_path))
    assert caught.value.reason == "image_too_large"
    assert "not decoded" in str(caught.value) or "not rendered" in str(caught.value)
    assert time.monotonic() - started < 2  # nothing was inflated or rendered
    assert not list(tmp_path.iterdir())


def test_page_worker_refuses_an_oversized_master_image(tmp_path, monkeypatch):
    path = tmp_path / "big.png"
    Image.new("1", (2000, 1000)).save(path)
    monkeypatch.setattr(pageproc, "MAX_PIXELS", 1_000_000)
    with pytest.raises(PageRejected) as caught:
        load_page_image(str(path), 3)
    assert caught.value.reason == "image_too_large" and "page 3" in str(caught.value)


def test_ccitt_g4_page_is_extracted_losslessly(corpus, tmp_path):
    source, reader = open_source_pdf(corpus / "ccitt-g4.pdf")
    [page] = extract_pages(reader, source.path, tmp_path)
    assert (page.method, page.mode, page.compression, page.dpi) == ("extracted", "1", "png", 150)
    assert np.array_equal(np.asarray(Image.open(page.path)), np.asarray(bitonal_scan()))


def test_jbig2_page_is_rendered_by_pdfium(corpus, tmp_path):
    source, reader = open_source_pdf(corpus / "jbig2.pdf")
    [page] = extract_pages(reader, source.path, tmp_path)
    assert page.method == "rendered" and page.text_boxes is None
    rendered = np.asarray(Image.open(page.path).convert("L").resize((1240, 1754))) < 128
    assert (rendered == (np.asarray(bitonal_scan().convert("L")) < 128)).mean() > 0.95


@pytest.mark.parametrize("name,mode", [("cmyk.pdf", "CMYK"), ("16-bit.pdf", "L")])
def test_cmyk_and_16_bit_pages_keep_their_ink(corpus, tmp_path, name, mode):
    source, reader = open_source_pdf(corpus / name)
    [page] = extract_pages(reader, source.path, tmp_path)
    assert (page.method, page.mode) == ("extracted", mode)
    rgb = load_page_image(str(page.path), 1)
    assert rgb.mode == "RGB"
    assert 0.02 < ink_fraction(rgb) < 0.5  # neither a blank page nor a black one
    if mode == "CMYK":
        assert page.path.read_bytes() == reader.pages[0].images[0].data  # the JPEG as it came


@pytest.mark.parametrize("mode", ["RGB", "L", "CMYK"])
def test_work_copy_of_a_300_dpi_jpeg_is_decoded_at_half_size(tmp_path, mode):
    page = Image.new("RGB", (2480, 3508), "white")
    page.paste((30, 30, 30), (200, 300, 2280, 360))  # a line of "text"
    path = tmp_path / "page.jpg"
    page.convert(mode).save(path, quality=90)
    half = load_page_image(str(path), 1, at_least=1700)
    assert half.mode == "RGB" and half.size == (1240, 1754)  # DCT scaling: 1/2, not resampled
    full = load_page_image(str(path), 1).resize(half.size, Image.Resampling.BOX)
    assert np.abs(np.asarray(half, dtype=int) - np.asarray(full, dtype=int)).mean() < 3
    assert load_page_image(str(path), 1, at_least=2000).size == (2480, 3508)  # half would be too small
    png = tmp_path / "page.png"
    page.save(png)
    assert load_page_image(str(png), 1, at_least=1700).size == (2480, 3508)  # only JPEGs scale on decode


def test_16_bit_png_master_is_scaled_not_clipped(tmp_path):
    values = np.full((100, 100), 65535, dtype=np.uint16)
    values[40:60, 10:90] = 0
    path = tmp_path / "page.png"
    Image.fromarray(values).save(path)
    assert Image.open(path).mode.startswith("I")
    grey = np.asarray(load_page_image(str(path), 1).convert("L"))
    assert grey[0, 0] == 255 and grey[50, 50] == 0


def test_cycles_and_deep_dictionaries_do_not_hang(corpus, tmp_path):
    for name in ("self-drawing-form.pdf", "deep-dicts.pdf"):
        started = time.monotonic()
        source, reader = open_source_pdf(corpus / name)
        [page] = extract_pages(reader, source.path, tmp_path / name)
        assert page.method == "rendered"
        assert time.monotonic() - started < 5


def test_a_thousand_pages_stream_and_blank_pages_skip_ocr(tmp_path, monkeypatch):
    path = tmp_path / "1000-pages.pdf"
    path.write_bytes(many_pages_pdf())
    started = time.monotonic()
    source, reader = open_source_pdf(path)
    assert source.page_count == 1000
    pages = extract_pages(reader, path, tmp_path / "pages")
    first = [next(pages) for _ in range(3)]  # one page at a time: nothing waits for the other 997
    pages.close()
    assert [p.number for p in first] == [1, 2, 3] and len(list((tmp_path / "pages").iterdir())) == 3
    monkeypatch.setattr(pageproc, "get_engine", _no_ocr)
    record = process_page(PageJob(1, str(first[0].path), "rapidocr"))
    assert record["blank"] and record["text_source"] == "none"
    assert time.monotonic() - started < 10


@pytest.mark.slow
def test_a_thousand_page_document_is_archived_without_ocr(tmp_path, monkeypatch):
    from archive.ingest.document import ingest_document

    path = tmp_path / "1000-pages.pdf"
    path.write_bytes(many_pages_pdf())
    monkeypatch.setattr(pageproc, "get_engine", _no_ocr)
    archive = Archive.open(tmp_path / "archive", create=True)
    outcome = ingest_document(path, archive, "slow-batch")
    assert outcome.status == "archived" and outcome.pages == 1000
    document = json.loads((Path(outcome.path) / "data" / "document.json").read_text())
    assert {p["text_source"] for p in document["page_images"]} == {"none"}


def _no_ocr(*_args, **_kwargs):
    raise AssertionError("this page must not be OCR'd")


# --- born-digital pages: the PDF's own text, no OCR -----------------------------------------


def test_born_digital_page_uses_its_own_text_layer(corpus, tmp_path, monkeypatch):
    source, reader = open_source_pdf(corpus / "born-digital.pdf")
    [page] = extract_pages(reader, source.path, tmp_path)
    assert page.method == "rendered" and page.text_boxes
    monkeypatch.setattr(pageproc, "get_engine", _no_ocr)
    job = PageJob(1, str(page.path), "rapidocr", page.dpi, page.text_boxes)
    record = process_page(job)
    assert record["text_source"] == "pdf" and record["confidence"] == 1.0 and not record["blank"]
    assert record["text"].splitlines() == ["中标通知书", f"项目编号：{BORN_CODE}", "采购人：南宁市公共资源交易中心"]
    x0, y0, x1, y1 = record["lines"][0]["box"]  # boxes in master-image pixels, where the title is drawn
    assert abs(x0 - 72 * 300 / 72) < 15 and abs(y1 - (842 - 760) * 300 / 72) < 25


@pytest.mark.parametrize("force_ocr", [False, True])
def test_force_ocr_reaches_the_page_jobs(corpus, page_jobs_of, force_ocr):
    outcome, jobs = page_jobs_of(corpus / "born-digital.pdf", force_ocr=force_ocr)
    assert outcome.reason == "stopped" and len(jobs) == 1
    assert (jobs[0].text_boxes is None) == force_ocr


def test_visible_text_over_a_scan_does_not_replace_ocr(tmp_path):
    path = tmp_path / "stamped.pdf"
    path.write_bytes(scan_with_stamp_pdf())
    source, reader = open_source_pdf(path)
    [page] = extract_pages(reader, path, tmp_path / "pages")
    assert page.method == "rendered" and page.text_boxes is None  # "Page 1 of 1" is not the page's text


def test_active_content_is_flagged_not_rejected(corpus, resources):
    assert open_source_pdf(corpus / "javascript.pdf")[0].qc_flags == ["pdf_has_javascript"]
    assert open_source_pdf(corpus / "attachment.pdf")[0].qc_flags == ["pdf_has_embedded_files"]
    acting = open_source_pdf(corpus / "launch-xfa.pdf")[0].qc_flags
    assert acting == ["pdf_has_launch_action", "pdf_has_rich_media", "pdf_has_xfa"]
    assert open_source_pdf(resources / "award-notice.pdf")[0].qc_flags == []


def test_looking_for_active_content_keeps_no_image_data(resources, tmp_path):
    """The walk reads every stream's dictionary; a 300-page scan's images (~190 MB) must not
    stay cached in the reader for the whole ingest. The pages still extract afterwards."""
    from pypdf.generic import StreamObject

    source, reader = open_source_pdf(resources / "award-notice.pdf")
    assert not [kept for kept in reader.resolved_objects.values() if isinstance(kept, StreamObject)]
    pages = list(extract_pages(reader, source.path, tmp_path / "pages"))
    assert len(pages) == source.page_count and all(page.width > 0 for page in pages)


# --- the page worker's time limit -----------------------------------------------------------


def test_page_settings_come_from_the_configuration_not_the_environment(monkeypatch):
    from archive.config import load_config

    monkeypatch.setenv("TRADE_ARCHIVE_PAGE_SECONDS", "7")
    settings = PageSettings.of(load_config(overrides={"low_confidence": 0.95}), engine="tesseract")
    assert settings == PageSettings("tesseract", 0.95, 7)
    assert PageJob(1, "p.png", "rapidocr").page_seconds == 120  # a job carries its own; the environment is not read


def test_a_page_past_its_time_limit_is_stopped(tmp_path, monkeypatch):
    path = tmp_path / "page.png"
    Image.new("L", (200, 200), 255).save(path)
    monkeypatch.setattr(pageproc, "ink_fraction", lambda _image: time.sleep(30))
    previous = signal.getsignal(signal.SIGALRM)
    started = time.monotonic()
    with pytest.raises(PageRejected) as caught:
        process_page(PageJob(4, str(path), "rapidocr", page_seconds=0.3))
    assert time.monotonic() - started < 5
    assert caught.value.reason == "page_timeout" and "page 4" in str(caught.value)
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0) and signal.getsignal(signal.SIGALRM) == previous


def test_page_rejections_cross_process_boundaries():
    rejected = pickle.loads(pickle.dumps(PageRejected("page_timeout", "page 2 took too long")))
    assert isinstance(rejected, InputRejected)
    assert (rejected.reason, str(rejected)) == ("page_timeout", "page 2 took too long")


def _dies_on_page_two(job: PageJob) -> dict:
    """A worker's page function (module level: spawned workers import it) that is killed
    on page 2, as the kernel's out-of-memory killer would kill it."""
    if job.number == 2:
        os.kill(os.getpid(), signal.SIGKILL)
    return process_page(job)


def test_a_worker_killed_on_a_page_quarantines_its_document_and_the_batch_goes_on(tmp_path):
    """A dead worker breaks a process pool for good; the pool starts afresh, the document
    whose page killed it is quarantined as worker_crashed, and the next ones are read."""
    from concurrent.futures import ThreadPoolExecutor

    from archive.capture.parallel import PagePool
    from archive.ingest.document import ingest_document

    two_pages = tmp_path / "award-notice.pdf"  # its page 2 kills the worker
    shutil.copy(RESOURCES / "award-notice.pdf", two_pages)
    one_page = tmp_path / "notice-upside-down.pdf"
    shutil.copy(RESOURCES / "notice-upside-down.pdf", one_page)
    archive = Archive.open(tmp_path / "archive", create=True)
    with PagePool(2, "rapidocr", page_function=_dies_on_page_two) as pool, ThreadPoolExecutor(2) as documents:
        # both at once: the one-page document's page may be read when the pool breaks
        crashed, survivor = documents.map(lambda pdf: ingest_document(pdf, archive, "B1", run_pages=pool.run),
                                          [two_pages, one_page])  # fmt: skip
        blank = tmp_path / "blank.png"
        Image.new("L", (400, 400), 255).save(blank)
        later = pool.run([PageJob(1, str(blank), "rapidocr")])  # the pool still reads pages
    assert (crashed.status, crashed.reason) == ("quarantined", "worker_crashed")
    assert "page 2" in crashed.message and "SIGKILL" in crashed.message, crashed.message
    assert archive.quarantined(crashed.sha256) is not None
    assert survivor.status == "archived" and survivor.pages == 1
    assert later[0]["blank"] is True


class _ReapedElsewhere:
    """A worker that the executor's own thread reaped first: this thread reads no exit
    code for a moment (waitpid: ECHILD), then the code the other thread recorded."""

    def __init__(self, code: int, reads_before: int) -> None:
        self.code, self.reads = code, reads_before

    def join(self, timeout: float | None = None) -> None:
        pass

    @property
    def exitcode(self) -> int | None:
        self.reads -= 1
        return self.code if self.reads < 0 else None


def test_a_dead_workers_exit_code_is_read_after_the_executor_reaped_it():
    from archive.capture.parallel import _exit_code

    assert _exit_code(_ReapedElsewhere(-signal.SIGKILL, reads_before=5), time.monotonic() + 5) == -signal.SIGKILL
    assert _exit_code(_ReapedElsewhere(0, reads_before=10**9), time.monotonic() + 0.05) is None  # gives up


# --- safe paths (issue 10, item 6) ----------------------------------------------------------

HOSTILE_NAMES = [
    "..", ".", "../../etc/passwd", "/etc/passwd", "a/../../b", "..\\..\\windows", "NUL\x00byte",
    "line\nbreak\r\ttab\x1b[31m", "．．／．．／fullwidth", "\u2028\u2029", "", "   ", "....", "._.", "~",
    "GXZC2023/../../..", "𠀀" * 100, "项目" * 200, "\udcb9\udce3",
]  # fmt: skip


@pytest.mark.parametrize("text", HOSTILE_NAMES)
def test_safe_name_stays_in_its_folder(tmp_path, text):
    name = safe_name(text)
    assert name and name not in (".", "..") and not name.startswith(".")
    assert "/" not in name and "\\" not in name and "\x00" not in name and name.isprintable()
    assert len(name.encode("utf-8", "surrogatepass")) <= 200
    archive = Archive.open(tmp_path, create=True)
    folder = archive.transaction_dir(text)
    assert folder.resolve().parent in ((tmp_path / "transactions").resolve(), tmp_path.resolve())
    folder.mkdir(parents=True, exist_ok=True)  # the file system accepts it
    assert folder.resolve().is_relative_to(tmp_path.resolve())


def test_readable_path_turns_any_name_into_utf8_text():
    gbk = os.fsdecode("中标通知书.pdf".encode("gbk"))
    assert readable_path(Path("/scans") / gbk) == "/scans/中标通知书.pdf"
    assert readable_path("a\nb.pdf") == "a\\x0ab.pdf"
    undecodable = readable_path(os.fsdecode(b"\xff\xfe\xfd.pdf"))
    assert undecodable.encode("utf-8") and undecodable.endswith(".pdf")


def test_manifest_project_code_cannot_escape_the_archive(tmp_path, monkeypatch):
    from archive.ingest.document import ingest_document

    monkeypatch.setattr(pageproc, "get_engine", _no_ocr)  # a born-digital document: no OCR needed
    source = tmp_path / "in" / "typed.pdf"
    source.parent.mkdir()
    source.write_bytes(born_digital_pdf("招标公告", "NNZC2023-G1-000001-KWZB"))
    root = tmp_path / "archive"
    archive = Archive.open(root, create=True)
    code = "../../../escaped\nProject-Code: forged\x00"
    outcome = ingest_document(source, archive, "b", {"project_code": code})
    assert outcome.status == "archived", outcome
    assert Path(outcome.path).resolve().parent.parent == (root / "transactions").resolve()
    bag_info = (Path(outcome.path) / "bag-info.txt").read_text(encoding="utf-8").splitlines()
    assert sum(line.startswith("Project-Code:") for line in bag_info) == 1  # a newline cannot forge a tag
    assert _files_outside(tmp_path, root) == {source}


# --- the batch: everything at once, through the real pipeline (OCR included) ----------------


def _files_outside(top: Path, root: Path) -> set[Path]:
    root = root.resolve()
    return {p for p in top.rglob("*") if (p.is_file() or p.is_symlink()) and not p.resolve().is_relative_to(root)}


def _gbk_name(name: str) -> str:
    return os.fsdecode(name.encode("gbk"))


def test_batch_of_hostile_inputs(corpus, tmp_path, resources, monkeypatch):
    """All bad inputs plus the two good scans (same file name, different folders):
    every good scan archived, each bad one quarantined with its reason, the odd
    but valid ones archived, and nothing written outside the archive root."""
    from archive.ingest.document import ingest_document
    from archive.preservation.verify import verify_archive

    scratch = tmp_path / "system-tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    src = tmp_path / "scans"
    expected: dict[Path, str] = {}
    for folder, fixture in (("a", "award-notice.pdf"), ("b", "notice-upside-down.pdf")):
        (src / folder).mkdir(parents=True)
        (src / folder / "scan.pdf").write_bytes((resources / fixture).read_bytes())
        expected[src / folder / "scan.pdf"] = "archived"
    (src / "odd").mkdir()
    for name, (_make, outcome) in CORPUS.items():
        (src / "odd" / name).write_bytes((corpus / name).read_bytes())
        expected[src / "odd" / name] = outcome
    hostile = {  # names that must never reach a path
        _gbk_name("中标通知书.pdf"): (born_digital_pdf("中标通知书（GBK 文件名）"), "archived"),
        "..pdf": ((corpus / "truncated.pdf").read_bytes()[:300], "unreadable_pdf"),
        "..\\..\\escape.pdf": (jpeg_bytes()[:5000], "not_pdf"),
        "line\nbreak.pdf": (b"%PDF-1.4\n garbage", "unreadable_pdf"),
    }
    (src / "names").mkdir()
    for name, (data, outcome) in hostile.items():
        (src / "names" / name).write_bytes(data)
        expected[src / "names" / name] = outcome
    inputs = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in expected}

    root = tmp_path / "archive"
    archive = Archive.open(root, create=True)
    started = time.monotonic()
    outcomes = {path: ingest_document(path, archive, "hostile-batch") for path in sorted(expected)}
    seconds = time.monotonic() - started

    got = {path: o.status if o.status == "archived" else o.reason for path, o in outcomes.items()}
    assert got == expected
    for path, outcome in outcomes.items():
        assert outcome.source.encode("utf-8")  # always writable text
        if outcome.status == "quarantined":
            folder = root / "quarantine" / inputs[path]
            reason = json.loads((folder / "reason.json").read_text(encoding="utf-8"))
            assert reason["reason"] == expected[path] and reason["message"] == outcome.message
            assert [p.name for p in folder.iterdir() if p.name.startswith("original")] == ["original.pdf"]
            assert (folder / "original.pdf").read_bytes() == path.read_bytes()  # kept byte for byte
        else:
            assert Path(outcome.path).resolve().is_relative_to(root.resolve())
            assert (Path(outcome.path) / "data" / "original.pdf").read_bytes() == path.read_bytes()

    documents = {p: json.loads((Path(o.path) / "data" / "document.json").read_text()) for p, o in outcomes.items()
                 if o.status == "archived"}  # fmt: skip
    odd = src / "odd"
    assert documents[src / "a" / "scan.pdf"]["metadata"]["project_code"] == AWARD_CODE
    assert {d["access_pdf"]["pdfa"] for d in documents.values()} == {"2b"}  # CMYK, 1-bit, 16-bit pages too
    assert documents[odd / "ccitt-g4.pdf"]["page_images"][0]["colour_mode"] == "1"
    assert documents[odd / "cmyk.pdf"]["page_images"][0]["colour_mode"] == "CMYK"
    assert documents[odd / "jbig2.pdf"]["page_images"][0]["method"] == "rendered"
    for name in ("ccitt-g4.pdf", "jbig2.pdf", "cmyk.pdf", "16-bit.pdf"):  # the same page, each way: OCR reads it
        assert documents[odd / name]["page_images"][0]["text_source"] == "ocr"
        text = json.loads((Path(outcomes[odd / name].path) / "data" / "ocr" / "0001.json").read_text())["text"]
        assert "交易中心" in text, (name, text[:200])
    born = documents[odd / "born-digital.pdf"]
    assert born["page_images"][0]["text_source"] == "pdf" and born["metadata"]["project_code"] == BORN_CODE
    assert "pdf_has_javascript" in documents[odd / "javascript.pdf"]["qc_flags"]
    assert "pdf_has_embedded_files" in documents[odd / "attachment.pdf"]["qc_flags"]
    assert "pdf_has_launch_action" in documents[odd / "launch-xfa.pdf"]["qc_flags"]
    for name in ("javascript.pdf", "attachment.pdf", "launch-xfa.pdf"):  # the access copy carries none of it
        access = Path(outcomes[odd / name].path) / "data" / "access.pdf"
        acting = {b"/JavaScript", b"/JS", b"/EmbeddedFile", b"/OpenAction", b"/Launch", b"/XFA", b"/RichMedia"}
        assert not acting & set(_pdf_names(access))
    gbk = documents[src / "names" / _gbk_name("中标通知书.pdf")]
    assert gbk["source"] == "中标通知书.pdf"
    cmyk_access = pypdfium2.PdfDocument(str(Path(outcomes[odd / "cmyk.pdf"].path) / "data" / "access.pdf"))
    assert np.asarray(cmyk_access[0].render(scale=0.3).to_pil().convert("L")).mean() > 120  # not a black page
    cmyk_access.close()

    assert _files_outside(tmp_path, root) == set(inputs)  # the inputs, untouched
    assert {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in inputs} == inputs
    assert not list(scratch.iterdir())  # the scratch folders were removed
    assert not list((root / ".staging").iterdir())
    assert all(p.name == "reason.json" or p.name.startswith("original") for p in root.glob("quarantine/*/*"))
    report = verify_archive(archive)
    assert not report.problems, report.problems
    assert seconds < 600  # no input hangs the batch (35 s under load here; a slow CI machine may take 3x)


def _pdf_names(path: Path) -> list[bytes]:
    """Every name token in the PDF, streams inflated (reportlab compresses them)."""
    data = path.read_bytes()
    names = []
    for chunk in data.split(b"stream")[1:]:
        try:
            names += zlib.decompress(chunk.lstrip(b"\r\n")[: chunk.find(b"endstream")]).split()
        except zlib.error:
            pass
    return [token for token in data.split() + names if token.startswith(b"/")]
