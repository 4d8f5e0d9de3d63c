"""The searchable access PDF: each page is the upright, straightened page image
with the OCR text laid over it invisibly (render mode 3), line by line, so that
selecting, searching and extracting text (pypdf, pdftotext) give the reading
order with no spaces between Chinese characters.

The text uses Adobe's STSong-Light CID font with the UniGB-UCS2-H encoding: a
standard CJK font every PDF reader knows, so nothing needs embedding for text
that is never drawn. JPEG page images go in as they are (no re-encoding); a
turned or skewed scan is turned by the PDF as it is drawn, not resampled.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pikepdf
from reportlab import rl_config
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen import canvas

FONT = "STSong-Light"
# Images go in as binary streams, not ASCII85 text: reportlab's ASCII85 encoder is
# pure Python (no C accelerator since reportlab 4) and was measured at ~1 s per
# 300-dpi page, a third of a page's whole processing time; binary is 20% smaller too.
rl_config.useA85 = 0
pdfmetrics.registerFont(UnicodeCIDFont(FONT))


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


def write_access_pdf(pages: Iterable[AccessPage], out_path: Path, title: str = "") -> None:
    """Draw each page into its own small PDF, then join them (see ``join_pages``)."""
    with tempfile.TemporaryDirectory(prefix="access-pdf-", dir=out_path.parent) as scratch:
        singles = []
        for number, page in enumerate(pages, start=1):
            singles.append(Path(scratch) / f"{number:05d}.pdf")
            write_page_pdf(page, singles[-1])
        join_pages(singles, out_path, title)


def join_pages(singles: list[Path], out_path: Path, title: str = "") -> None:
    """Join one-page PDFs into the access PDF with pikepdf (qpdf), which reads each
    page's image from disk as it writes. reportlab keeps a whole document in
    memory until it saves (a 300-page scan measured 1.4 GB); this stays flat,
    and the pages can be drawn in the OCR worker processes, in parallel."""
    combined = pikepdf.Pdf.new()
    sources = []
    try:
        for single in singles:
            sources.append(pikepdf.Pdf.open(single))
            combined.pages.extend(sources[-1].pages)
        with combined.open_metadata(set_pikepdf_as_editor=False) as meta:
            meta["dc:title"] = title
            meta["xmp:CreatorTool"] = "trade-archive"
        combined.save(out_path, compress_streams=True)
    finally:
        for source in sources:
            source.close()
        combined.close()


def write_page_pdf(page: AccessPage, out_path: Path) -> None:
    """One page of the access PDF: the image, and the text invisible over it."""
    pdf = canvas.Canvas(str(out_path), pageCompression=1, invariant=1)
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
        pdf.drawImage(str(page.image_path), -image_w / 2, -image_h / 2, width=image_w, height=image_h)
        pdf.restoreState()
    else:
        pdf.drawImage(str(page.image_path), 0, 0, width=width, height=height)
    for line in page.lines:
        _draw_invisible_line(pdf, line, scale, height)
    pdf.showPage()
    pdf.save()


def _draw_invisible_line(pdf: canvas.Canvas, line: dict, scale: float, page_height: float) -> None:
    text = line["text"]
    if not text:
        return
    x0, y0, x1, y1 = (v * scale for v in line["box"])
    size = max(1.0, (y1 - y0) * 0.85)
    natural = pdfmetrics.stringWidth(text, FONT, size)
    stretch = 100.0 * (x1 - x0) / natural if natural else 100.0
    writer = pdf.beginText()
    writer.setTextRenderMode(3)  # invisible: neither filled nor stroked
    writer.setFont(FONT, size)
    writer.setHorizScale(stretch)
    writer.setTextOrigin(x0, page_height - y1 + 0.15 * size)  # baseline a little above the box bottom
    writer.textOut(text)
    pdf.drawText(writer)
