"""Page images out of a PDF: lossless extraction where the page is one scanned
image (what scanners write), rendering with pdfium otherwise.

Nothing is decoded before its size is known: every image a page draws (through
its resources, form XObjects, patterns and annotation appearances) declares its
/Width and /Height, and a page whose images or rendering would exceed
``MAX_PIXELS`` is rejected as ``image_too_large`` (a 40,000 x 40,000 image can
be a 200 KB Flate stream that inflates to gigabytes).

A page that carries its own text layer (born digital, or already OCR'd) is
rendered for its master image, and its text is taken from the PDF, with boxes,
so the page worker need not OCR it (``PageImage.text_boxes``).

pdfium is not thread-safe: no two threads of a process may call it at once, not even
on two documents (pypdfium2's documentation). Every pdfium call here holds
``PDFIUM_LOCK``. In a batch, pages are extracted in the worker processes of
``archive.capture.parallel`` (``extract_page``): a crash inside pdfium on a damaged
file then costs that file (``worker_crashed``), not the batch."""

from __future__ import annotations

import io
import threading
import warnings
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pypdfium2
from PIL import Image
from pypdf import PageObject, PdfReader
from pypdf.generic import ArrayObject, DictionaryObject, IndirectObject

from archive.capture.textlayer import RESOURCE_DEPTH, pdf_text_boxes, pictures_on
from archive.errors import InputRejected

RENDER_DPI = 300
# Pixels one page may decode to: A0 at 300 dpi is ~140 MP; beyond that is a
# decompression bomb or a scan nobody can process on a 24 GB machine.
MAX_PIXELS = 200_000_000
PDFIUM_LOCK = threading.RLock()  # pdfium: one call at a time per process
_OPEN_IN_WORKER = 2  # documents a worker process keeps open between the pages it extracts


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
    # The page's own text layer as boxes in master-image pixels ({"text", "box",
    # "confidence": 1.0}), when it has a usable one; None: the page must be OCR'd.
    text_boxes: list[dict] | None = None
    # Pictures placed on a page with a text layer (a stamp, a signature, a logo), in
    # master-image pixels: the page worker records the red ones as seals.
    image_boxes: tuple[tuple[float, float, float, float], ...] = ()


def extract_pages(reader: PdfReader, pdf_path: Path, out_dir: Path) -> Iterator[PageImage]:
    """Write each page's master image to ``out_dir/NNNN.<ext>``, one page at a time
    (a 300-page scan never sits in memory as a whole)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    renderer = _Renderer(pdf_path)
    try:
        for index, page in _pages(reader, pdf_path):
            yield _extract(page, index, out_dir, renderer)
    finally:
        renderer.close()


@dataclass(frozen=True)
class ExtractJob:
    """One page to extract in a worker process (plain values: it is pickled)."""

    source: str
    number: int  # 1-based
    out_dir: str

    @property
    def key(self) -> str:
        """What a worker notes while it works on this job (names the file if it dies)."""
        return f"{self.source}#extract-{self.number}"


_open: OrderedDict[tuple, tuple[PdfReader, _Renderer]] = OrderedDict()


def extract_page(job: ExtractJob) -> PageImage:
    """``job``'s page, in a worker process: the document stays open for its next pages
    (the worker's last few documents; each is parsed once, not once a page)."""
    path = Path(job.source)
    stat = path.stat()
    key = (job.source, stat.st_mtime_ns, stat.st_size)
    if key not in _open:
        handle = open(path, "rb")  # noqa: SIM115 - a handle, not a path: pypdf reads objects as needed (not the whole scan)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                _open[key] = (PdfReader(handle, strict=False), _Renderer(path))
        except BaseException:
            handle.close()
            raise
        while len(_open) > _OPEN_IN_WORKER:
            _, (reader, renderer) = _open.popitem(last=False)
            renderer.close()
            reader.stream.close()
    _open.move_to_end(key)
    reader, renderer = _open[key]
    index = job.number - 1
    return _extract(_page(reader, index, path.name), index, Path(job.out_dir), renderer)


def _extract(page: PageObject, index: int, out_dir: Path, renderer: _Renderer) -> PageImage:
    number = index + 1
    check_declared_pixels(page, number, renderer.pdf_path.name)  # before anything is decoded
    try:
        image = _extract_single_image(page, number, out_dir)
    except Exception:  # any oddity in the image stream: fall back to rendering
        image = None
    return image or renderer.render(index, number, out_dir)


def _pages(reader: PdfReader, pdf_path: Path) -> Iterator[tuple[int, PageObject]]:
    try:
        count = len(reader.pages)
    except Exception as exc:  # noqa: BLE001 - RecursionError, pypdf limits, damaged trees
        raise InputRejected(
            "unreadable_pdf", f"the page tree of {pdf_path.name} cannot be read ({type(exc).__name__}); rescan it."
        ) from exc
    for index in range(count):
        yield index, _page(reader, index, pdf_path.name)


def _page(reader: PdfReader, index: int, name: str) -> PageObject:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return reader.pages[index]
    except Exception as exc:  # noqa: BLE001
        raise InputRejected(
            "unreadable_page", f"page {index + 1} of {name} cannot be read ({type(exc).__name__}); rescan it."
        ) from exc


def check_declared_pixels(page: PageObject, number: int, name: str) -> None:
    """Raise ``image_too_large`` when the images ``page`` draws declare more than
    ``MAX_PIXELS`` pixels in all. Reads dictionaries only, never image data."""
    total, largest = 0, (0, 0)
    try:
        for width, height in declared_image_sizes(page):
            total += width * height
            if width * height > largest[0] * largest[1]:
                largest = (width, height)
    except Exception:  # noqa: BLE001 - resources too broken to read: pdfium decides, within its bitmap check
        pass
    if total > MAX_PIXELS:
        raise InputRejected(
            "image_too_large",
            f"page {number} of {name} holds images of {total / 1e6:,.0f} megapixels (the largest "
            f"{largest[0]} x {largest[1]}), more than the {MAX_PIXELS // 1_000_000} MP limit (A0 at 300 dpi is "
            "about 140 MP); it was not decoded. Rescan it at a lower resolution or split it into pages.",
        )


def declared_image_sizes(page: PageObject) -> Iterator[tuple[int, int]]:
    """(/Width, /Height) of every image XObject (and its masks) that ``page`` can
    draw, each counted once, without recursion and without decoding anything."""
    seen: set[object] = set()
    stack: list[tuple[object, int]] = [(page.get("/Resources"), 0)]
    for annotation in _resolve_array(page.get("/Annots")):
        appearance = _resolve(_resolve(annotation).get("/AP")) if isinstance(_resolve(annotation), dict) else None
        if isinstance(appearance, dict):
            for state in appearance.values():
                state = _resolve(state)
                streams = state.values() if isinstance(state, DictionaryObject) and "/Subtype" not in state else [state]
                for stream in streams:
                    stream = _resolve(stream)
                    if isinstance(stream, dict):
                        stack.append((stream.get("/Resources"), 1))
    while stack:
        resources, depth = stack.pop()
        resources = _resolve(resources)
        if not isinstance(resources, dict) or depth > RESOURCE_DEPTH:
            continue
        for category in ("/XObject", "/Pattern"):
            entries = _resolve(resources.get(category))
            if not isinstance(entries, dict):
                continue
            for ref in entries.values():
                key = (ref.idnum, ref.generation) if isinstance(ref, IndirectObject) else id(ref)
                if key in seen:
                    continue
                seen.add(key)
                xobject = _resolve(ref)
                if not isinstance(xobject, dict):
                    continue
                if xobject.get("/Subtype") == "/Image":
                    yield _size(xobject)
                    for mask in ("/SMask", "/Mask"):
                        masked = _resolve(xobject.get(mask))
                        if isinstance(masked, dict) and "/Width" in masked:
                            yield _size(masked)
                elif "/Resources" in xobject:  # a form XObject or a tiling pattern
                    stack.append((xobject.get("/Resources"), depth + 1))


def _forget(ref: object) -> None:
    """Drop pypdf's cached copy of an object read once (a page's image stream): the reader
    otherwise keeps every page's image until the document is closed (a 300-page scan: 190 MB)."""
    if isinstance(ref, IndirectObject):
        ref.pdf.resolved_objects.pop((ref.generation, ref.idnum), None)


def _resolve(value: object) -> object:
    try:
        return value.get_object() if isinstance(value, IndirectObject) else value
    except Exception:  # noqa: BLE001 - a dangling or broken reference: nothing to count
        return None


def _resolve_array(value: object) -> list:
    value = _resolve(value)
    return list(value) if isinstance(value, ArrayObject) else []


def _size(image: dict) -> tuple[int, int]:
    try:
        width, height = (int(float(_resolve(image.get(key)) or 0)) for key in ("/Width", "/Height"))
    except (TypeError, ValueError, OverflowError):
        return 0, 0
    return max(0, width), max(0, height)


def _extract_single_image(page: PageObject, number: int, out_dir: Path) -> PageImage | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        images = page.images
        if len(images) != 1 or _has_text(page):
            return None
        width_in = float(page.mediabox.width) / 72
        height_in = float(page.mediabox.height) / 72
        if width_in <= 0:
            return None
        if (page.get("/Rotate") or 0) % 180:
            width_in, height_in = height_in, width_in
        if (jpeg := scanner_jpeg(page)) is not None:
            data, width, height, mode = jpeg
            if (dpi := _page_dpi(width, height, width_in, height_in)) is None:
                return None
            target = out_dir / f"{number:04d}.jpg"
            target.write_bytes(data)  # the JPEG exactly as the scanner wrote it: never decoded here
            return PageImage(number, target, width, height, dpi, mode, "extracted", "jpeg")
        image_file = images[0]  # anything else: decoded by pypdf (colour spaces, masks, /Decode)
        pil = image_file.image
    if pil is None or (dpi := _page_dpi(*pil.size, width_in, height_in)) is None:
        return None
    ext = Path(image_file.name).suffix.lower()
    if ext in (".jpg", ".jpeg"):
        target = out_dir / f"{number:04d}.jpg"
        target.write_bytes(image_file.data)  # pypdf's JPEG, with its colours made right (CMYK, /Decode)
        compression = "jpeg"
    else:
        target = out_dir / f"{number:04d}.png"
        pil.save(target, format="PNG", dpi=(dpi, dpi))
        compression = "png"
    return PageImage(number, target, pil.width, pil.height, dpi, pil.mode, "extracted", compression)


def _page_dpi(width: int, height: int, width_in: float, height_in: float) -> int | None:
    """The image's resolution on the page, or None where it does not cover the page
    (then it is not a full-page scan)."""
    dpi = round(width / width_in)
    return dpi if abs(height / height_in - dpi) <= 0.05 * dpi + 1 else None


_PLAIN_COLOUR = {"/DeviceRGB": "RGB", "/DeviceGray": "L"}


def scanner_jpeg(page: PageObject) -> tuple[bytes, int, int, str] | None:
    """(bytes, width, height, mode) of the page's one image when it is a plain JPEG as
    scanners write them (DCTDecode alone, 8-bit grey or RGB, no mask, no /Decode):
    its stream is a complete JPEG file, taken as it is. pypdf's ``page.images``
    decodes and re-encodes it (a different file, and ~0.1 s a page); None: anything else."""
    xobjects = _resolve((_resolve(page.get("/Resources")) or {}).get("/XObject"))
    if not isinstance(xobjects, dict) or len(xobjects) != 1:
        return None
    ref = next(iter(xobjects.values()))
    image = _resolve(ref)
    if not isinstance(image, dict) or image.get("/Subtype") != "/Image":
        return None
    filters = _resolve(image.get("/Filter"))
    filters = [_resolve(f) for f in filters] if isinstance(filters, ArrayObject) else [filters]
    colour = _resolve(image.get("/ColorSpace"))
    if (
        filters != ["/DCTDecode"]
        or any(key in image for key in ("/Decode", "/SMask", "/Mask", "/ImageMask"))
        or _resolve(image.get("/BitsPerComponent")) != 8
        or colour not in _PLAIN_COLOUR
    ):
        return None
    data = image.get_data()
    _forget(ref)
    with Image.open(io.BytesIO(data)) as header:  # the header only: nothing is decoded
        if header.format != "JPEG" or header.size != _size(image) or header.mode != _PLAIN_COLOUR[colour]:
            return None
        return data, header.width, header.height, header.mode


def _has_text(page: PageObject) -> bool:
    """A born-digital or already-OCR'd page: render it rather than take one image."""
    fonts = (page.get("/Resources") or {}).get("/Font")
    return bool(fonts)


class _Renderer:
    """pdfium, opened once per document (not once per page: a 1,000-page file)."""

    def __init__(self, pdf_path: Path) -> None:
        self.pdf_path = pdf_path
        self._document: pypdfium2.PdfDocument | None = None

    def close(self) -> None:
        with PDFIUM_LOCK:
            if self._document is not None:
                self._document.close()
                self._document = None

    def render(self, index: int, number: int, out_dir: Path) -> PageImage:
        with PDFIUM_LOCK:
            pil, boxes, pictures = self._render(index, number)
        target = out_dir / f"{number:04d}.png"
        pil.save(target, format="PNG", dpi=(RENDER_DPI, RENDER_DPI))
        return PageImage(number, target, pil.width, pil.height, RENDER_DPI, "RGB", "rendered", "png", boxes, pictures)

    def _render(self, index: int, number: int) -> tuple[Image.Image, list[dict] | None, tuple]:
        try:
            if self._document is None:
                self._document = pypdfium2.PdfDocument(str(self.pdf_path))
            page = self._document[index]
            try:
                return self._render_page(page, number)
            finally:
                page.close()  # here, under the lock: not whenever (and in whichever thread) it is collected
        except InputRejected:
            raise
        except Exception as exc:  # noqa: BLE001 - pdfium's errors, MemoryError
            raise InputRejected(
                "unreadable_page",
                f"page {number} of {self.pdf_path.name} cannot be read or rendered ({exc}); rescan it.",
            ) from exc

    def _render_page(self, page: pypdfium2.PdfPage, number: int) -> tuple[Image.Image, list[dict] | None, tuple]:
        width_pt, height_pt = page.get_size()
        scale = RENDER_DPI / 72
        pixels = abs(width_pt * scale * height_pt * scale)
        if pixels > MAX_PIXELS:
            raise InputRejected(
                "image_too_large",
                f"page {number} of {self.pdf_path.name} is {width_pt / 72:.0f} x {height_pt / 72:.0f} inches: at "
                f"{RENDER_DPI} dpi that is {pixels / 1e6:,.0f} megapixels, more than the "
                f"{MAX_PIXELS // 1_000_000} MP limit; it was not rendered. Check the page size or split it.",
            )
        bitmap = page.render(scale=scale)
        pil: Image.Image = bitmap.to_pil().convert("RGB")
        bitmap.close()
        try:
            boxes = pdf_text_boxes(page, pil.width, pil.height, (self.pdf_path, number))
            pictures = pictures_on(page, pil.width, pil.height) if boxes else ()
        except Exception:  # noqa: BLE001 - an odd text layer: OCR the page instead
            boxes, pictures = None, ()
        return pil, boxes, pictures
