"""Which way up is the page, and how skewed? Answered from the text detector's
line boxes (their shape and slope) and the PP-OCR direction classifier.

RapidOcrEngine.read_page uses the helpers directly on its own detection;
``find_orientation_and_skew`` serves engines without a detector (tesseract).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from archive.imaging import small_copy

LAYOUT_SIDE = 1280


def sides(quads: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Widths and heights of detector quadrilaterals (points: tl, tr, br, bl)."""
    widths = np.linalg.norm(quads[:, 1] - quads[:, 0], axis=1)
    heights = np.linalg.norm(quads[:, 3] - quads[:, 0], axis=1)
    return widths, heights


def is_mostly_tall(quads: np.ndarray) -> bool:
    """True when most elongated text boxes stand upright: the page lies on its side."""
    widths, heights = sides(quads)
    elongated = np.maximum(widths, heights) > 2 * np.minimum(widths, heights)
    if elongated.sum() < 2:
        return False
    return float(np.mean((heights > widths)[elongated])) > 0.5


def skew_degrees(quads: np.ndarray) -> float:
    """Median slope of the long text lines, as the counter-clockwise turn that
    levels them (image y points down, so a line falling to the right needs a
    positive turn). Slopes beyond 10° are layout, not skew."""
    widths, heights = sides(quads)
    lines = quads[widths > 3 * heights]
    if len(lines) == 0:
        return 0.0
    angles = np.degrees(np.arctan2(lines[:, 1, 1] - lines[:, 0, 1], lines[:, 1, 0] - lines[:, 0, 0]))
    skew = float(np.median(angles))
    return round(skew, 2) if abs(skew) <= 10 else 0.0


def find_orientation_and_skew(image: Image.Image) -> tuple[int, float]:
    """(turn, skew): counter-clockwise degrees (0/90/180/270) that stand the page
    upright, then the counter-clockwise degrees that straighten it."""
    from archive.ocr import RapidOcrEngine, _crop, get_engine

    detector = get_engine("rapidocr")
    assert isinstance(detector, RapidOcrEngine)
    small = small_copy(image.convert("RGB"), LAYOUT_SIDE)
    quads = detector.detect(np.asarray(small))
    turn = 0
    if len(quads) and is_mostly_tall(quads):
        turn = 90
        small = small.transpose(Image.Transpose.ROTATE_90)
        quads = detector.detect(np.asarray(small))
    if len(quads) == 0:
        return turn, 0.0
    widths, heights = sides(quads)
    arr = np.asarray(small)
    voters = [_crop(arr, quads[i]) for i in np.argsort(-(widths * heights))[:16] if widths[i] > 2 * heights[i]]
    if detector.upside_down_share(voters) > 0.5:
        turn += 180
    return turn % 360, skew_degrees(quads)
