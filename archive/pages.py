"""Page images out of a PDF: lossless extraction where the page is one scanned
image (what scanners write), rendering with pdfium otherwise."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pypdfium2
from PIL import Image
from pypdf import PageObject, PdfReader

from archive.errors import InputRejected

RENDER_DPI = 300
# Images smaller than this share of the page are logos, not a scan of the page.
MIN_PAGE_COVER = 0.8


@dataclass(frozen=True)
class PageImage:
    number: int  # 1-based
    path: Path  # the master image as stored in the package
    width: int
    height: int
    dpi: int
    mode: str  # PIL mode of the master image: RGB, L, 1, CMYK
    method: str  # "extracted" (bytes as in the PDF) or "rendered"
    compression: str  # jpeg / png


def extract_pages(reader: PdfReader, pdf_path: Path, out_dir: Path) -> Iterator[PageImage]:
    """Write each page's master image to ``out_dir/NNNN.<ext>``, one page at a time
    (a 300-page scan never sits in memory as a whole)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for index, page in enumerate(reader.pages):
        number = index + 1
        try:
            image = _extract_single_image(page, number, out_dir)
        except Exception:  # any oddity in the image stream: fall back to rendering
            image = None
        yield image or _render(pdf_path, index, number, out_dir)


def _extract_single_image(page: PageObject, number: int, out_dir: Path) -> PageImage | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        images = page.images
        if len(images) != 1 or _has_text(page):
            return None
        image_file = images[0]
        width_in = float(page.mediabox.width) / 72
        height_in = float(page.mediabox.height) / 72
        pil = image_file.image
    if pil is None or width_in <= 0:
        return None
    width, height = pil.size
    if (page.get("/Rotate") or 0) % 180:
        width_in, height_in = height_in, width_in
    dpi = round(width / width_in)
    if abs(height / height_in - dpi) > 0.05 * dpi + 1:
        return None  # the image does not cover the page; it is not a full-page scan
    ext = Path(image_file.name).suffix.lower()
    if ext in (".jpg", ".jpeg"):
        target = out_dir / f"{number:04d}.jpg"
        target.write_bytes(image_file.data)  # the JPEG exactly as the scanner wrote it
        compression = "jpeg"
    else:
        target = out_dir / f"{number:04d}.png"
        pil.save(target, format="PNG", dpi=(dpi, dpi))
        compression = "png"
    return PageImage(number, target, width, height, dpi, pil.mode, "extracted", compression)


def _has_text(page: PageObject) -> bool:
    """A born-digital or already-OCR'd page: render it rather than take one image."""
    fonts = (page.get("/Resources") or {}).get("/Font")
    return bool(fonts)


def _render(pdf_path: Path, index: int, number: int, out_dir: Path) -> PageImage:
    try:
        document = pypdfium2.PdfDocument(str(pdf_path))
        try:
            bitmap = document[index].render(scale=RENDER_DPI / 72)
            pil: Image.Image = bitmap.to_pil().convert("RGB")
        finally:
            document.close()
    except Exception as exc:
        raise InputRejected(
            "unreadable_page", f"page {number} of {pdf_path.name} cannot be read or rendered ({exc}); rescan it."
        ) from exc
    target = out_dir / f"{number:04d}.png"
    pil.save(target, format="PNG", dpi=(RENDER_DPI, RENDER_DPI))
    return PageImage(number, target, pil.width, pil.height, RENDER_DPI, "RGB", "rendered", "png")
