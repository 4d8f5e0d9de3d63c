"""Everything done to one page, in a worker process: blank check, orientation,
deskew, seal-ink removal, OCR, reading order. Takes paths, returns a small
JSON-able record, so it crosses process (and Dask) boundaries cheaply.

A page that brings its own text layer (``PageJob.text_boxes``, from a born-digital
PDF) is not OCR'd: its lines come from the PDF (``text_source: "pdf"``).

What decides how a page is read (engine, the library that runs its models, low-confidence
threshold, time limit) is a
``PageSettings``, carried in each ``PageJob``: a worker on another machine reads the
page as the archivist configured it, never from its own environment.

Each page has a time limit (``page_seconds``, default 120 s): past it the page raises
``page_timeout`` and its document goes to quarantine. The limit is a SIGALRM timer, so
it holds where pages run on a process's main thread (the worker processes of
``archive.capture.parallel``, also on a Dask worker, a plain ``ingest_document`` call);
a page run on another thread has none. A call stuck inside native code (onnxruntime,
OpenCV) is interrupted only when it returns to Python."""

from __future__ import annotations

import math
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image

from archive.capture.backends import DEFAULT_MODELS, REREAD_BELOW, ModelSettings
from archive.capture.imaging import (
    ANALYSIS_SIDE,
    NO_TEXT_BLANK_INK,
    ink_fraction,
    paper_colour,
    small_copy,
    turn_upright,
    upright_size,
)
from archive.capture.ocr import ENGINES, OcrBox, RapidOcrEngine, get_engine, reading_order
from archive.capture.pages import MAX_PIXELS
from archive.capture.seals import Ring, Seal, find_rings, find_seals, ring_glyphs, stamp_ink, without_seals
from archive.capture.tables import has_ruling, read_page_tables
from archive.capture.textclean import clean_page_lines
from archive.capture.textpdf import AccessPage, write_page_pdf
from archive.capture.timing import StageClock, model_seconds
from archive.config import Config
from archive.errors import InputRejected

# Pillow warns past this and refuses past twice this; ``load_page_image`` refuses past it.
Image.MAX_IMAGE_PIXELS = MAX_PIXELS  # A0 at 300 dpi is ~140 MP; beyond that is a decompression bomb

DEFAULT_PAGE_SECONDS = 120.0
DEFAULT_LOW_CONFIDENCE = 0.80
SEAL_LEGIBLE = 0.8  # below this the seal's name is recorded as unreadable (null)


@dataclass(frozen=True)
class PageSettings:
    """The archivist's settings that change what a page's record says, as plain values
    that travel with the work (pickled to a Dask worker, a deployment's parameters)."""

    engine: str = "rapidocr"
    low_confidence: float = DEFAULT_LOW_CONFIDENCE  # pages below this OCR confidence are flagged for QC
    page_seconds: float = DEFAULT_PAGE_SECONDS  # time limit for one page (0 or less: none)
    ocr_backend: str = "auto"  # what runs RapidOCR's models: auto, onnxruntime, openvino
    ocr_reread_below: float = REREAD_BELOW  # bf16 recogniser's lines below this read again in f32

    @classmethod
    def of(cls, config: Config, engine: str | None = None) -> PageSettings:
        """The settings of a configuration (``engine``: the command line's choice)."""
        return cls(engine or config.engine, config.low_confidence, config.page_seconds, config.ocr_backend,
                   config.ocr_reread_below)  # fmt: skip

    @property
    def models(self) -> ModelSettings:
        return ModelSettings(self.ocr_backend, self.ocr_reread_below)


DEFAULT_SETTINGS = PageSettings()
# A page with ink but no more than this many characters read, at less than this confidence,
# is a blank back showing its front through the paper (mirrored, faint) or only noise.
SHOW_THROUGH_CHARS = 20
SHOW_THROUGH_CONFIDENCE = 0.85
COLOURLESS = 3.0  # mean channel spread (grey levels) below which a page was scanned without colour


@dataclass(frozen=True)
class PageJob:
    number: int
    image_path: str  # the master image (never modified)
    engine: str
    dpi: int = 300
    # The page's own text layer (born-digital PDF), boxes in master-image pixels;
    # None: OCR the page. ``ingest_document(force_ocr=True)`` leaves it None.
    text_boxes: list[dict] | None = None
    page_pdf_path: str | None = None  # where to write this page of the access PDF (None: the caller draws it)
    low_confidence: float = DEFAULT_LOW_CONFIDENCE
    page_seconds: float = DEFAULT_PAGE_SECONDS
    image_boxes: tuple[tuple[float, float, float, float], ...] = ()  # pictures on a text-layer page
    # PageSettings' model settings: the worker's own environment is not asked
    ocr_backend: str = "auto"
    ocr_reread_below: float = REREAD_BELOW

    @property
    def models(self) -> ModelSettings:
        return ModelSettings(self.ocr_backend, self.ocr_reread_below)

    @property
    def key(self) -> str:
        """What a worker notes while it reads this page (names the page if it dies)."""
        return self.image_path


class PageRejected(InputRejected):
    """A page-level rejection raised in a worker process: it must survive pickling
    back to the parent (``InputRejected``'s two-argument constructor does not)."""

    def __reduce__(self):  # noqa: ANN204
        return (type(self), (self.reason, str(self)))


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
            "(limit: page_seconds in the configuration); the document is kept in quarantine. Check the page "
            "for unusual content, or raise the limit and ingest it again.",
        )

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def load_page_image(path: str, number: int, at_least: int | None = None) -> Image.Image:
    """The master image as 8-bit RGB, refusing to decode more than ``MAX_PIXELS``
    (the size is in the header, read before any pixel is decoded).

    ``at_least``: a smaller copy will do, with a long side of at least this many pixels.
    A JPEG is then decoded at the smallest scale its DCT allows (1/2, 1/4, 1/8) that
    keeps that long side: a 300 dpi A4 page at 1/2 is ~4x cheaper to decode, and is
    not resampled afterwards. Other images, and a JPEG too small to halve, come full size."""
    with Image.open(path) as opened:
        width, height = opened.size
        if width * height > MAX_PIXELS:
            raise PageRejected(
                "image_too_large",
                f"page {number} is {width} x {height} pixels ({width * height / 1e6:,.0f} MP), more than the "
                f"{MAX_PIXELS // 1_000_000} MP limit; rescan it at a lower resolution.",
            )
        if at_least and opened.format == "JPEG":
            share = min(1.0, at_least / max(width, height))
            opened.draft(opened.mode, (math.ceil(width * share), math.ceil(height * share)))
        if opened.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):  # 16-bit / 32-bit grey: scale, not clip
            scale = 1 / 257 if opened.mode.startswith("I;16") else 1.0
            return opened.convert("I").point(lambda value: value * scale).convert("L").convert("RGB")
        return opened.convert("RGB")


def master_size(path: str) -> tuple[int, int]:
    """The master image's width and height, from its header."""
    with Image.open(path) as opened:
        return opened.size


def process_page(job: PageJob) -> dict:
    clock = StageClock()
    with time_limit(job.page_seconds, job.number):
        record, access = _process_page(job, clock)
    if job.page_pdf_path:  # draw the page's share of the access PDF here, in parallel with other pages
        write_page_pdf(access, Path(job.page_pdf_path))
        record["page_pdf"] = job.page_pdf_path
        clock.lap("pdf")
    record["stages"] = clock.laps  # prepare, ocr, orient_deskew, pdf: seconds in this worker
    return record


def _process_page(job: PageJob, clock: StageClock) -> tuple[dict, AccessPage]:
    """The page's record, and how to draw it in the access PDF."""
    started = time.monotonic()
    # Every check and the OCR itself read one smaller copy, made once: ~2000 px is
    # plenty for 200-300 dpi text, and each full-size pass over a 300 dpi page costs
    # ~0.1 s. The master is never changed; the access PDF draws it as it is. Only a
    # page with its own text layer (seals at full size) and tesseract (it reads the
    # full page) need the master decoded; RapidOCR's copy may come straight from a
    # reduced JPEG decode.
    full = bool(job.text_boxes) or ENGINES.get(job.engine) is not RapidOcrEngine
    size = master_size(job.image_path)
    image = load_page_image(job.image_path, job.number, at_least=None if full else RapidOcrEngine.MIN_READ_SIDE)
    work = small_copy(image, RapidOcrEngine.READ_SIDE) if max(image.size) > RapidOcrEngine.READ_SIDE else image
    master = image if full else None
    del image  # not held through the OCR where it is not needed (26 MB at 300 dpi)
    scale = size[0] / work.width  # master pixels per work-copy pixel
    # The page-level checks (ink, seals, paper tone) look at a yet smaller copy, made once.
    thumb = small_copy(work, ANALYSIS_SIDE)
    ink = ink_fraction(thumb)
    record: dict = {"page": job.number, "ink": round(ink, 5), "engine": job.engine}
    as_scanned = AccessPage(Path(job.image_path), size[0], size[1], job.dpi, [])
    if job.text_boxes:
        assert master is not None
        return _pdf_text_page(job, master, record, started), as_scanned
    if ink == 0.0:  # not a mark on it (either polarity): blank without asking the recogniser
        clock.lap("prepare")
        return _blank(record, size, started), as_scanned
    engine = get_engine(job.engine, job.models)  # only now: blank pages and pages with a text layer need none
    record["engine_version"] = engine.version  # as this process runs it (OpenVINO or not: this machine's install)
    detector = _detector(job.models)  # orientation for every engine; seals
    model_before = model_seconds(engine, detector)
    work_dpi = job.dpi / scale
    thumb_scale = work.width / thumb.width
    seals = [seal.scaled(thumb_scale) for seal in find_seals(thumb, work_dpi / thumb_scale)]
    paper = paper_colour(thumb)
    body = without_seals(work, seals, paper)  # seal ring text must not join the body
    clock.lap("prepare")
    if isinstance(engine, RapidOcrEngine):
        reading = engine.read_page(body, size)  # one detection serves the layout and the text
        turn, skew, boxes = reading.turn, reading.skew, reading.boxes
    else:  # tesseract reads the full-resolution page
        turn, skew = detector.orientation_and_skew(body)
        clock.lap("orient_deskew")
        master = master or load_page_image(job.image_path, job.number)
        boxes = engine.read(turn_upright(without_seals(master, [s.scaled(scale) for s in seals]), turn, skew))
    clock.lap("ocr")
    upright_thumb = turn_upright(thumb, turn, skew, paper)  # for the shape checks below: a few ms
    # Seal names are read from the work copy, stood upright (a small image to turn); their
    # boxes are given in page pixels. Ring text is no body text: a red seal's, left where its
    # ink was too dark to paint out, and a black seal's (bitonal, grey scan), told by its outline.
    seal_records = read_seals(turn_upright(work, turn, skew, paper), work_dpi, job.models) if seals else []
    for seal in seal_records:
        seal["box"] = [round(v * scale) for v in seal["box"]]
    rings = [Ring.around(seal["box"]) for seal in seal_records]
    if not seals and colourless(thumb):
        factor = size[0] / thumb.width
        rings += [ring.scaled(factor) for ring in find_rings(upright_thumb, job.dpi / factor)]
    boxes = [box for box in boxes if not any(ring.holds_ring_text(box.box) for ring in rings)]
    clock.lap("seals")
    width, height = upright_size(size, turn, skew)
    access = AccessPage(Path(job.image_path), width, height, job.dpi, [], rotation=turn + skew,
                        image_size=size, background=paper)  # fmt: skip
    clock.lap("orient_deskew")
    # Ruled tables (a look at the small copy first, so a page of prose pays a few milliseconds),
    # before the lines: a box a table's rule runs through is read again without the rule, and
    # that reading is the page text's too.
    tables: list = []
    if has_ruling(upright_thumb):
        recognise = engine.recognise_lines if isinstance(engine, RapidOcrEngine) else None
        tables, boxes = read_page_tables(turn_upright(body, turn, skew, paper), boxes, scale, recognise)
    clock.lap("tables")
    lines = reading_order(boxes)
    for line, text in zip(lines, clean_page_lines([line.text for line in lines])):
        line.text = text
    chars = sum(len(line.text) for line in lines)
    confidence = sum(line.confidence * len(line.text) for line in lines) / chars if chars else 0.0
    # Blank only where nothing legible is on it, whatever the ink's polarity: nothing read on
    # little ink (punch holes, dirt), or a few characters read with no confidence (the front
    # showing through a blank back). One short word read well is text.
    illegible = 0 < chars <= SHOW_THROUGH_CHARS and confidence < SHOW_THROUGH_CONFIDENCE
    if (not chars and ink < NO_TEXT_BLANK_INK) or illegible:
        clock.lap("ocr")
        spent = sum(model_seconds(engine, detector).values()) - sum(model_before.values())
        record["engine_seconds"] = round(spent, 3)  # the page was read, though nothing came of it
        return _blank(record, size, started, show_through=illegible), as_scanned
    blank = False
    clock.lap("ocr")
    record.update(
        blank=blank,
        # export's ``orientation`` is how far the scan was turned (clockwise), i.e. the
        # counter-clockwise turn that undoes it
        orientation=(360 - turn) % 360,
        skew=skew,
        lines=[line.to_json() for line in lines],
        text="\n".join(line.text for line in lines),
        confidence=round(confidence, 4),
        low_confidence=confidence < job.low_confidence,
        text_source="none" if blank else "ocr",
        seals=seal_records,
        tables=tables,  # rows of cell strings, header first (bid-opening records)
        width=width,
        height=height,
        seconds=round(time.monotonic() - started, 3),
    )
    clock.lap("ocr")
    model = model_seconds(engine, detector)
    spent = {name: seconds - model_before.get(name, 0.0) for name, seconds in model.items()}
    # The direction classifier runs inside the OCR call but is orientation's work.
    clock.move(spent.get("upside_down_share", 0.0), "ocr", "orient_deskew")
    record["engine_seconds"] = round(sum(spent.values()), 3)  # time inside the OCR models
    return record, replace(access, lines=record["lines"])


def colourless(image: Image.Image) -> bool:
    """Whether a (small) page image has no colour at all: a bitonal or grey scan."""
    rgb = np.asarray(image.convert("RGB"))[::4, ::4].astype(np.int16)  # every 16th pixel tells
    return float((rgb.max(axis=2) - rgb.min(axis=2)).mean()) < COLOURLESS


def _blank(record: dict, size: tuple[int, int], started: float, show_through: bool = False) -> dict:
    """A blank page's record; ``show_through``: it had ink, but nothing OCR could read
    (the front seen through a blank back, dirt); its master keeps whatever is there."""
    record.update(blank=True, orientation=0, skew=0.0, lines=[], text="", confidence=1.0, low_confidence=False)
    record.update(seals=[], text_source="none", width=size[0], height=size[1], tables=[])
    if show_through:
        record["show_through"] = True
    record["seconds"] = round(time.monotonic() - started, 3)
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
        seals=_born_digital_seals(image, job),  # 电子签章, stamps
        width=image.width,
        height=image.height,
        seconds=round(time.monotonic() - started, 3),
    )
    return record


def _born_digital_seals(image: Image.Image, job: PageJob) -> list[dict]:
    """Round seals on the rendered page, and the red pictures placed on it (a rectangular
    stamp, an electronic seal as an image) with the text read off them."""
    found = find_seals(image, job.dpi)
    seals = read_seals(image, job.dpi, job.models, found) if found else []
    for box in job.image_boxes:
        box = tuple(round(v) for v in box)
        if any(_overlaps(box, seal.box) for seal in found):
            continue  # a round seal, read already
        stamp = stamp_ink(image.crop(box))
        if stamp is not None:
            lines = reading_order(_detector(job.models).read(stamp))
            text = "".join(line.text for line in lines)
            confidence = sum(line.confidence * len(line.text) for line in lines) / len(text) if text else 0.0
            seals.append({"text": text if confidence >= SEAL_LEGIBLE else None, "confidence": round(confidence, 4),
                          "box": list(box)})  # fmt: skip
    return seals


def _overlaps(a: tuple, b: tuple) -> bool:
    return min(a[2], b[2]) > max(a[0], b[0]) and min(a[3], b[3]) > max(a[1], b[1])


def read_seals(upright: Image.Image, dpi: int, models: ModelSettings = DEFAULT_MODELS,
               found: list[Seal] | None = None) -> list[dict]:  # fmt: skip
    """Each seal on the upright page with the name around its ring, when legible (PP-OCR's
    recogniser, run as ``models`` say). ``found``: the seals already located on this very image."""
    seals = []
    engine = _detector(models)
    for seal in find_seals(upright, dpi) if found is None else found:
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


def _detector(models: ModelSettings) -> RapidOcrEngine:
    """PP-OCR's models, run as ``models`` say: orientation for every engine, seals' names."""
    detector = get_engine("rapidocr", models)
    assert isinstance(detector, RapidOcrEngine)
    return detector
