"""The searchable access PDF, written to PDF/A-2b: each page is the upright,
straightened page image with the OCR text laid over it invisibly (render mode 3),
line by line, so that selecting, searching and extracting text (pypdf,
pdftotext) give the reading order with no spaces between Chinese characters.

reportlab draws the page image: JPEG page images go in as they are (no
re-encoding; CMYK ones excepted, see ``write_page_pdf``), bitonal and grey ones
keep their 1 or 8 bits of grey (``_embed_grey``), and a turned or skewed
scan is turned by the PDF as it is drawn, not resampled. The text layer is written here, in a font made for text that is
never drawn (as OCRmyPDF and tesseract do): a tiny embedded TrueType font with
one blank glyph (and a half-width one for ASCII), codes that are the
characters' own UTF-16 values (Identity-H) and a ToUnicode map back to them.
PDF/A asks for every font to be embedded and for text to map to Unicode; a
standard CJK font such as STSong-Light cannot be embedded (it is not free).

The joined file is saved with ``pikepdf.pdfa``, which adds the sRGB output
intent and the PDF/A identification, then validates the bytes it wrote
against the PDF/A-2b rules (veraPDF's rule catalogue). A file it does not
approve is saved as a plain searchable PDF and said to be so.
"""

from __future__ import annotations

import functools
import io
import tempfile
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

import pikepdf
import pikepdf.pdfa
from PIL import Image
from reportlab import rl_config
from reportlab.lib.utils import ImageReader
from reportlab.pdfgen import canvas

PDFA_FLAVOUR = "2b"  # PDF/A-2 (ISO 19005-2), level B: the page looks the same forever
TEXT_FONT = "/TAText"  # the invisible-text font's name in every page's resources
WIDE, HALF = 1000, 500  # glyph advances (per 1000 em): CJK and other full-width, printable ASCII
# Images go in as binary streams, not ASCII85 text: reportlab's ASCII85 encoder is
# pure Python (no C accelerator since reportlab 4) and was measured at ~1 s per
# 300-dpi page, a third of a page's whole processing time; binary is 20% smaller too.
rl_config.useA85 = 0


@dataclass(frozen=True)
class AccessPage:
    image_path: Path
    width_px: int  # the (upright, straightened) page, in pixels at ``dpi``
    height_px: int
    dpi: int
    lines: list[dict]  # OcrLine.to_json() records, boxes in page pixels
    # Counter-clockwise degrees that stand the image upright and straight: the PDF
    # turns it as it draws it, so the scan's own bytes go in, never resampled or
    # re-encoded. Then ``image_size`` is the image's own size in pixels.
    rotation: float = 0.0
    image_size: tuple[int, int] | None = None
    background: tuple[int, int, int] = (255, 255, 255)  # the paper's tone, for corners a skew uncovers


@dataclass(frozen=True)
class Conformance:
    """What the access PDF was saved as: ``pdfa`` is the PDF/A flavour it was
    validated against ("2b"), or None with ``problems`` saying why it is not PDF/A."""

    pdfa: str | None
    problems: tuple[str, ...] = ()


def write_access_pdf(pages: Iterable[AccessPage], out_path: Path, title: str = "") -> Conformance:
    """Draw each page into its own small PDF, then join them (see ``join_pages``)."""
    with tempfile.TemporaryDirectory(prefix="access-pdf-", dir=out_path.parent) as scratch:
        singles = []
        for number, page in enumerate(pages, start=1):
            singles.append(Path(scratch) / f"{number:05d}.pdf")
            write_page_pdf(page, singles[-1])
        return join_pages(singles, out_path, title)


def join_pages(singles: list[Path], out_path: Path, title: str = "") -> Conformance:
    """Join one-page PDFs into the access PDF with qpdf's own page join (``pikepdf.Job``,
    as ``qpdf --empty --pages``), which copies each page's image from its file as it
    writes. reportlab keeps a whole document in memory until it saves (a 300-page scan
    measured 1.4 GB), and copying pages between open pikepdf documents held every image
    until the save (+190 MiB for 300 pages; this join: +19 MiB); so the pages are drawn
    in the OCR worker processes, in parallel, and joined here. Every page brings its own
    copy of the text font; the document keeps one."""
    joined = out_path.with_name(f".{out_path.name}.joined")  # beside the result: the same disk
    try:
        pikepdf.Job(["qpdf", "--empty", "--pages", *map(str, singles), "--", str(joined)]).run()
        with pikepdf.open(joined) as combined:
            shared = None
            for sheet in combined.pages:
                fonts = sheet.obj.get("/Resources", {}).get("/Font", {})
                if TEXT_FONT in fonts:
                    shared = shared if shared is not None else fonts[TEXT_FONT]
                    fonts[TEXT_FONT] = shared
            with combined.open_metadata(set_pikepdf_as_editor=False) as meta:
                meta["dc:title"] = title
                meta["xmp:CreatorTool"] = "trade-archive"
            return _save(combined, out_path)
    finally:
        joined.unlink(missing_ok=True)


def _save(pdf: pikepdf.Pdf, out_path: Path) -> Conformance:
    """Save as PDF/A (validated as written), else as a plain PDF, saying why."""
    try:
        pikepdf.pdfa.save(pdf, out_path, PDFA_FLAVOUR, compress_streams=True)
        return Conformance(PDFA_FLAVOUR)
    except pikepdf.pdfa.PdfaError as error:
        with pdf.open_metadata(set_pikepdf_as_editor=False) as meta:  # the attempt wrote the claim in
            for claim in ("pdfaid:part", "pdfaid:conformance"):
                if claim in meta:
                    del meta[claim]
        pdf.save(out_path, compress_streams=True)
        return Conformance(None, tuple(str(finding) for finding in error.report.findings))


def write_page_pdf(page: AccessPage, out_path: Path) -> None:
    """One page of the access PDF: the image (reportlab), and the text invisible over it."""
    with Image.open(page.image_path) as opened:
        cmyk = opened.mode == "CMYK"
        grey = opened.format != "JPEG" and opened.mode in ("1", "L")
    if cmyk:  # PDF/A with an sRGB output intent takes no DeviceCMYK: draw an RGB copy (the master keeps its CMYK)
        rgb = out_path.with_suffix(".rgb.jpg")
        with Image.open(page.image_path) as opened:
            opened.convert("RGB").save(rgb, quality=92)
        try:
            return write_page_pdf(replace(page, image_path=rgb), out_path)
        finally:
            rgb.unlink()
    # A bitonal or grey master: reportlab draws a stand-in, replaced by the master's own pixels below
    image = ImageReader(Image.new("L", (1, 1), 255)) if grey else str(page.image_path)
    drawn = io.BytesIO()
    pdf = canvas.Canvas(drawn, pageCompression=1, invariant=1)
    scale = 72.0 / page.dpi  # pixels -> points
    width, height = page.width_px * scale, page.height_px * scale
    pdf.setPageSize((width, height))
    if page.rotation and page.image_size:
        pdf.setFillColorRGB(*(v / 255 for v in page.background))
        pdf.rect(0, 0, width, height, stroke=0, fill=1)
        pdf.saveState()
        pdf.translate(width / 2, height / 2)  # turn about the page centre, as imaging.turn_upright does
        pdf.rotate(page.rotation)  # counter-clockwise, as in the image
        image_w, image_h = page.image_size[0] * scale, page.image_size[1] * scale
        pdf.drawImage(image, -image_w / 2, -image_h / 2, width=image_w, height=image_h)
        pdf.restoreState()
    else:
        pdf.drawImage(image, 0, 0, width=width, height=height)
    pdf.showPage()
    pdf.save()
    with pikepdf.open(drawn) as single:
        sheet = single.pages[0]
        if grey:
            _embed_grey(sheet, page.image_path)
        image_content = _without_empty_text(sheet)
        text_content = b"".join(_invisible_line(line, scale, height) for line in page.lines)
        sheet.obj.Contents = single.make_stream(b"q\n" + image_content + b"\nQ\n" + text_content)
        resources = sheet.obj.Resources
        if "/Font" in resources:
            del resources["/Font"]  # reportlab's Helvetica, which no text uses any more
        if text_content:
            resources.Font = pikepdf.Dictionary({TEXT_FONT: _text_font(single)})
        if "/Trans" in sheet.obj:
            del sheet.obj["/Trans"]  # reportlab's empty slideshow transition: not a PDF/A key
        single.save(out_path, compress_streams=True)


def _embed_grey(sheet: pikepdf.Page, master: Path) -> None:
    """Put a bitonal or grey master in as it is, 1 or 8 bits of grey (Flate), in place of the
    stand-in drawn on ``sheet``. reportlab would draw it as 24-bit RGB: for a 300 dpi bitonal
    page 24x the pixels to compress (~0.25 s, as long as the page's OCR models) and an access
    PDF twice the size of the master. PIL packs a bitonal row as PDF does (1 is white)."""
    with Image.open(master) as opened:
        bits = 1 if opened.mode == "1" else 8
        width, height = opened.size
        pixels = zlib.compress(opened.tobytes())
    [image] = [xobject for xobject in sheet.obj.Resources.XObject.values() if xobject.Subtype == "/Image"]
    image.write(pixels, filter=pikepdf.Name.FlateDecode)
    for key in ("/DecodeParms", "/Decode", "/SMask", "/Mask", "/Interpolate"):
        if key in image:
            del image[key]
    image.Width, image.Height, image.BitsPerComponent = width, height, bits
    image.ColorSpace = pikepdf.Name.DeviceGray


def _without_empty_text(sheet: pikepdf.Page) -> bytes:
    """The page's content without text objects that show no text: reportlab opens
    every page by choosing Helvetica in one, and PDF/A would ask for it embedded."""
    kept, pending = [], []
    for instruction in pikepdf.parse_content_stream(sheet):
        operator = str(instruction.operator)
        if operator == "BT" or pending:
            pending.append(instruction)
            if operator in ("Tj", "TJ", "'", '"'):
                kept, pending = kept + pending, []
            elif operator == "ET":
                pending = []  # nothing shown: the whole text object goes
        else:
            kept.append(instruction)
    return pikepdf.unparse_content_stream(kept + pending)


def _invisible_line(line: dict, scale: float, page_height: float) -> bytes:
    """One OCR line as invisible text, stretched to its box on the page."""
    codes = [_code(character) for character in line["text"]]
    if not codes:
        return b""
    x0, y0, x1, y1 = (v * scale for v in line["box"])
    size = max(1.0, (y1 - y0) * 0.85)
    natural = sum(HALF if 0x20 <= code <= 0x7E else WIDE for code in codes) * size / 1000
    stretch = 100.0 * (x1 - x0) / natural
    baseline = page_height - y1 + 0.15 * size  # a little above the box bottom
    hexed = "".join(f"{code:04X}" for code in codes)
    return (f"BT 3 Tr {TEXT_FONT} {size:.2f} Tf {stretch:.2f} Tz 1 0 0 1 {x0:.2f} {baseline:.2f} Tm "
            f"<{hexed}> Tj ET\n").encode()  # fmt: skip


def _code(character: str) -> int:
    """The character's code in the text font: its UTF-16 value. The few characters
    beyond the Basic Multilingual Plane (and lone surrogates) become U+FFFD in the
    text layer, control characters a space (code 0 would select .notdef, which PDF/A
    forbids); the archived page text keeps them all."""
    code = ord(character)
    if code < 0x20 or 0x7F <= code <= 0x9F:
        return 0x20
    return 0xFFFD if code > 0xFFFF or 0xD800 <= code <= 0xDFFF else code


def _text_font(pdf: pikepdf.Pdf) -> pikepdf.Dictionary:
    """The invisible-text font as objects of ``pdf``: Type 0, Identity-H, over a
    CIDFontType2 whose every code maps to one blank glyph (half-width for ASCII)."""
    program = pdf.make_stream(_glyphless_program())
    program.Length1 = len(_glyphless_program())
    descriptor = pikepdf.Dictionary(
        Type=pikepdf.Name.FontDescriptor, FontName=pikepdf.Name("/TradeArchiveInvisible"), Flags=4,
        FontBBox=[0, -120, WIDE, 880], ItalicAngle=0, Ascent=880, Descent=-120, CapHeight=700, StemV=80,
        FontFile2=program,
    )  # fmt: skip
    cid_font = pikepdf.Dictionary(
        Type=pikepdf.Name.Font, Subtype=pikepdf.Name.CIDFontType2, BaseFont=pikepdf.Name("/TradeArchiveInvisible"),
        CIDSystemInfo=pikepdf.Dictionary(Registry="Adobe", Ordering="Identity", Supplement=0),
        FontDescriptor=descriptor, DW=WIDE, W=[0x20, 0x7E, HALF],
        CIDToGIDMap=pdf.make_stream(_cid_to_gid_map()),
    )  # fmt: skip
    return pdf.make_indirect(
        pikepdf.Dictionary(
            Type=pikepdf.Name.Font,
            Subtype=pikepdf.Name.Type0,
            BaseFont=pikepdf.Name("/TradeArchiveInvisible"),
            Encoding=pikepdf.Name("/Identity-H"),
            DescendantFonts=[pdf.make_indirect(cid_font)],
            ToUnicode=pdf.make_stream(_to_unicode_cmap()),
        )  # fmt: skip
    )


@functools.cache
def _glyphless_program() -> bytes:
    """A TrueType font of two blank glyphs after .notdef: glyph 1 full width, glyph 2 half."""
    from fontTools.fontBuilder import FontBuilder
    from fontTools.pens.ttGlyphPen import TTGlyphPen

    names = [".notdef", "wide", "half"]
    builder = FontBuilder(unitsPerEm=1000, isTTF=True)
    builder.setupGlyphOrder(names)
    builder.setupCharacterMap({0x20: "half", 0x3000: "wide"})
    builder.setupGlyf({name: TTGlyphPen(None).glyph() for name in names})
    builder.setupHorizontalMetrics({".notdef": (WIDE, 0), "wide": (WIDE, 0), "half": (HALF, 0)})
    builder.setupHorizontalHeader(ascent=880, descent=-120)
    builder.setupNameTable({"familyName": "TradeArchiveInvisible", "styleName": "Regular"})
    builder.setupOS2(sTypoAscender=880, sTypoDescender=-120, usWinAscent=880, usWinDescent=120)
    builder.setupPost()
    out = io.BytesIO()
    builder.save(out)
    return out.getvalue()


@functools.cache
def _cid_to_gid_map() -> bytes:
    """Every code (CID) to glyph 1, printable ASCII to glyph 2: two bytes per CID."""
    glyphs = bytearray(b"\x00\x01" * 0x10000)
    glyphs[0x20 * 2 : 0x7F * 2] = b"\x00\x02" * (0x7F - 0x20)
    return bytes(glyphs)


@functools.cache
def _to_unicode_cmap() -> bytes:
    """Each code back to the same UTF-16 value (surrogates excepted: never written).
    A bfrange may vary only in its last byte, hence one range per high byte."""
    ranges = [f"<{high:02X}00> <{high:02X}FF> <{high:02X}00>" for high in range(256) if not 0xD8 <= high <= 0xDF]
    blocks = [ranges[start : start + 100] for start in range(0, len(ranges), 100)]  # at most 100 per block
    body = "".join(f"{len(block)} beginbfrange\n" + "\n".join(block) + "\nendbfrange\n" for block in blocks)
    return (
        "/CIDInit /ProcSet findresource begin\n12 dict begin\nbegincmap\n"
        "/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def\n"
        "/CMapName /Adobe-Identity-UCS def\n/CMapType 2 def\n"
        "1 begincodespacerange\n<0000> <FFFF>\nendcodespacerange\n"
        f"{body}endcmap\nCMapName currentdict /CMap defineresource pop\nend\nend\n"
    ).encode()
