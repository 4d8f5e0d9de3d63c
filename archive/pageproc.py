"""Everything done to one page, in a worker process: blank check, orientation,
deskew, seal-ink removal, OCR, reading order. Takes paths, returns a small
JSON-able record, so it crosses process (and Dask) boundaries cheaply.

A page that brings its own text layer (``PageJob.text_boxes``, from a born-digital
PDF) is not OCR'd: its lines come from the PDF (``text_source: "pdf"``).

Each page has a time limit (``TRADE_ARCHIVE_PAGE_SECONDS``, default 120 s): past
it the page raises ``page_timeout`` and its document goes to quarantine. The
limit is a SIGALRM timer, so it holds where pages run on a process's main
thread (the worker processes of ``archive.parallel``, a plain ``ingest_document``
call); a page run on another thread has none. A call stuck inside native code
(onnxruntime, OpenCV) is interrupted only when it returns to Python."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from archive.errors import InputRejected
from archive.imaging import BLANK_INK_FRACTION, ink_fraction, turn_upright
from archive.ocr import OcrBox, RapidOcrEngine, get_engine, reading_order
from archive.orientation import find_orientation_and_skew
from archive.pages import MAX_PIXELS
from archive.seals import find_seals, ring_glyphs, without_seals
from archive.textclean import clean_page_lines
from archive.textpdf import AccessPage, write_page_pdf

# Pillow warns past this and refuses past twice this; ``load_page_image`` refuses past it.
Image.MAX_IMAGE_PIXELS = MAX_PIXELS  # A0 at 300 dpi is ~140 MP; beyond that is a decompression bomb

PAGE_SECONDS_ENV = "TRADE_ARCHIVE_PAGE_SECONDS"
DEFAULT_PAGE_SECONDS = 120.0


SEAL_LEGIBLE = 0.8  # below this the seal's name is recorded as unreadable (null)
LOW_CONFIDENCE = float(os.environ.get("TRADE_ARCHIVE_LOW_CONFIDENCE", "0.80"))


@dataclass(frozen=True)
class PageJob:
    number: int
    image_path: str  # the master image (never modified)
    access_path: str  # where to write the upright, straightened image if one is needed
    engine: str
    dpi: int = 300
    # The page's own text layer (born-digital PDF), boxes in master-image pixels;
    # None: OCR the page. ``ingest_document(force_ocr=True)`` leaves it None.
    text_boxes: list[dict] | None = None
    page_pdf_path: str | None = None  # where to write this page of the access PDF (None: the caller draws it)


class PageRejected(InputRejected):
    """A page-level rejection raised in a worker process: it must survive pickling
    back to the parent (``InputRejected``'s two-argument constructor does not)."""

    def __reduce__(self):  # noqa: ANN204
        return (type(self), (self.reason, str(self)))


def page_seconds() -> float:
    """The per-page time limit in seconds (0 or less: none)."""
    raw = os.environ.get(PAGE_SECONDS_ENV, "")
    try:
        return float(raw) if raw.strip() else DEFAULT_PAGE_SECONDS
    except ValueError:
        return DEFAULT_PAGE_SECONDS


@contextmanager
def time_limit(seconds: float, number: int) -> Iterator[None]:
    """Raise ``page_timeout`` in this (main) thread after ``seconds``. Where SIGALRM
    cannot be used (another thread, no setitimer) or is already in use by a caller
    with a timer running, the page runs without a limit rather than break theirs."""
    if (
        seconds <= 0
        or not hasattr(signal, "setitimer")
        or threading.current_thread() is not threading.main_thread()
        or signal.getitimer(signal.ITIMER_REAL)[0] > 0
    ):
        yield
        return

    def expired(_signum: int, _frame: object) -> None:
        raise PageRejected(
            "page_timeout",
            f"page {number} took longer than {seconds:g} s to process and was stopped "
            f"(limit: {PAGE_SECONDS_ENV}); the document is kept in quarantine. Check the page for unusual "
            "content, or raise the limit and ingest it again.",
        )

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def load_page_image(path: str, number: int) -> Image.Image:
    """The master image as 8-bit RGB, refusing to decode more than ``MAX_PIXELS``
    (the size is in the header, read before any pixel is decoded)."""
    with Image.open(path) as opened:
        width, height = opened.size
        if width * height > MAX_PIXELS:
            raise PageRejected(
                "image_too_large",
                f"page {number} is {width} x {height} pixels ({width * height / 1e6:,.0f} MP), more than the "
                f"{MAX_PIXELS // 1_000_000} MP limit; rescan it at a lower resolution.",
            )
        if opened.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):  # 16-bit / 32-bit grey: scale, not clip
            scale = 1 / 257 if opened.mode.startswith("I;16") else 1.0
            return opened.convert("I").point(lambda value: value * scale).convert("L").convert("RGB")
        return opened.convert("RGB")


def process_page(job: PageJob) -> dict:
    with time_limit(page_seconds(), job.number):
        record = _process_page(job)
    if job.page_pdf_path:  # draw the page's share of the access PDF here, in parallel with other pages
        page = AccessPage(Path(record["access_image"]), record["width"], record["height"], job.dpi, record["lines"])
        write_page_pdf(page, Path(job.page_pdf_path))
        record["page_pdf"] = job.page_pdf_path
    return record


def _process_page(job: PageJob) -> dict:
    started = time.monotonic()
    image = load_page_image(job.image_path, job.number)
    ink = ink_fraction(image)
    record: dict = {"page": job.number, "ink": round(ink, 5), "engine": job.engine}
    if job.text_boxes:
        return _pdf_text_page(job, image, record, started)
    if ink < BLANK_INK_FRACTION:
        record.update(blank=True, orientation=0, skew=0.0, lines=[], text="", confidence=1.0, low_confidence=False)
        record.update(seals=[], text_source="none")
        record.update(access_image=job.image_path, width=image.width, height=image.height)
        record["seconds"] = round(time.monotonic() - started, 3)
        return record
    engine = get_engine(job.engine)
    detector = get_engine("rapidocr")  # orientation for every engine; seals
    model_before = getattr(engine, "model_seconds", 0.0) + (
        getattr(detector, "model_seconds", 0.0) if detector is not engine else 0.0
    )
    body = without_seals(image, find_seals(image, job.dpi))  # seal ring text must not join the body
    if isinstance(engine, RapidOcrEngine):
        reading = engine.read_page(body)
        turn, skew, boxes = reading.turn, reading.skew, reading.boxes
        upright = turn_upright(image, turn, skew)
    else:
        turn, skew = find_orientation_and_skew(body)
        upright = turn_upright(image, turn, skew)
        boxes = engine.read(turn_upright(body, turn, skew))
    if upright is image:
        access_image = job.image_path  # nothing to correct: the access PDF reuses the master bytes
    else:
        upright.save(job.access_path, format="JPEG", quality=88)
        access_image = job.access_path
    lines = reading_order(boxes)
    for line, text in zip(lines, clean_page_lines([line.text for line in lines])):
        line.text = text
    chars = sum(len(line.text) for line in lines)
    confidence = sum(line.confidence * len(line.text) for line in lines) / chars if chars else 0.0
    record.update(
        blank=False,
        # export's ``orientation`` is how far the scan was turned (clockwise), i.e. the
        # counter-clockwise turn that undoes it
        orientation=(360 - turn) % 360,
        skew=skew,
        lines=[line.to_json() for line in lines],
        text="\n".join(line.text for line in lines),
        confidence=round(confidence, 4),
        low_confidence=confidence < LOW_CONFIDENCE,
        text_source="ocr",
        seals=read_seals(upright, job.dpi),
        access_image=access_image,
        width=upright.width,
        height=upright.height,
        seconds=round(time.monotonic() - started, 3),
    )
    model_after = getattr(engine, "model_seconds", 0.0) + (
        getattr(detector, "model_seconds", 0.0) if detector is not engine else 0.0
    )
    record["engine_seconds"] = round(model_after - model_before, 3)  # time inside the OCR models
    return record


def _pdf_text_page(job: PageJob, image: Image.Image, record: dict, started: float) -> dict:
    """A page with its own text layer: lines from the PDF, in reading order, as
    they are (no OCR clean-up); the rendered page is upright by construction."""
    boxes = [OcrBox(str(b["text"]), tuple(float(v) for v in b["box"]), 1.0) for b in job.text_boxes or []]
    lines = reading_order(boxes)
    record.update(
        blank=False,
        orientation=0,
        skew=0.0,
        lines=[line.to_json() for line in lines],
        text="\n".join(line.text for line in lines),
        confidence=1.0,
        low_confidence=False,
        text_source="pdf",
        seals=read_seals(image, job.dpi) if find_seals(image, job.dpi) else [],  # electronic seals (电子签章)
        access_image=job.image_path,
        width=image.width,
        height=image.height,
        seconds=round(time.monotonic() - started, 3),
    )
    return record


def read_seals(upright: Image.Image, dpi: int) -> list[dict]:
    """Each seal on the upright page with the name around its ring, when legible."""
    seals = []
    engine = get_engine("rapidocr")
    assert isinstance(engine, RapidOcrEngine)
    for seal in find_seals(upright, dpi):
        best_text, best_confidence = None, 0.0
        for radial in (False, True):  # characters set upright, or along the ring
            glyphs = ring_glyphs(upright, seal, radial)
            if glyphs is None:
                continue
            texts, scores = engine.recognise_lines([glyphs])
            if texts and scores[0] > best_confidence:
                best_text, best_confidence = texts[0], scores[0]
        legible = best_confidence >= SEAL_LEGIBLE
        seals.append({"text": best_text if legible else None, "confidence": round(best_confidence, 4),
                      "box": list(seal.box)})  # fmt: skip
    return seals
