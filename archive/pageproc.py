"""Everything done to one page, in a worker process: blank check, orientation,
deskew, seal-ink removal, OCR, reading order. Takes paths, returns a small
JSON-able record, so it crosses process (and Dask) boundaries cheaply."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from PIL import Image

from archive.imaging import BLANK_INK_FRACTION, ink_fraction, turn_upright
from archive.ocr import RapidOcrEngine, get_engine, reading_order
from archive.orientation import find_orientation_and_skew
from archive.seals import find_seals, ring_glyphs, without_seals
from archive.textclean import clean_page_lines

Image.MAX_IMAGE_PIXELS = 200_000_000  # A0 at 300 dpi is ~140 MP; beyond that is a decompression bomb


SEAL_LEGIBLE = 0.8  # below this the seal's name is recorded as unreadable (null)
LOW_CONFIDENCE = float(os.environ.get("TRADE_ARCHIVE_LOW_CONFIDENCE", "0.80"))


@dataclass(frozen=True)
class PageJob:
    number: int
    image_path: str  # the master image (never modified)
    access_path: str  # where to write the upright, straightened image if one is needed
    engine: str
    dpi: int = 300


def process_page(job: PageJob) -> dict:
    started = time.monotonic()
    with Image.open(job.image_path) as opened:
        image = opened.convert("RGB")
    ink = ink_fraction(image)
    record: dict = {"page": job.number, "ink": round(ink, 5), "engine": job.engine}
    if ink < BLANK_INK_FRACTION:
        record.update(blank=True, orientation=0, skew=0.0, lines=[], text="", confidence=1.0, low_confidence=False)
        record.update(seals=[])
        record.update(access_image=job.image_path, width=image.width, height=image.height)
        record["seconds"] = round(time.monotonic() - started, 3)
        return record
    engine = get_engine(job.engine)
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
        seals=read_seals(upright, job.dpi),
        access_image=access_image,
        width=upright.width,
        height=upright.height,
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
