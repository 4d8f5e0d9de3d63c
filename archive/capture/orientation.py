"""Which way up is the page, and how skewed? Answered from the text detector's
line boxes (their shape and slope) and the PP-OCR direction classifier.

Geometry and the turning rule only: the engine (``archive.capture.ocr``) brings its
detector and classifier, so this module imports no OCR model and no engine.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image


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


def stand_upright(
    work: Image.Image,
    detect: Callable[[Image.Image], np.ndarray],
    crop: Callable[[np.ndarray, np.ndarray], np.ndarray],
    upside_down_share: Callable[[list[np.ndarray]], float],
) -> Upright:
    """Turn ``work`` upright from its own text lines: a page whose long lines stand
    tall lies on its side (turned 90°, then detected again), and one whose largest
    lines the direction classifier mostly calls 180° is upside down. The detector,
    the crop and the classifier are the engine's; the rule is this module's."""
    quads = detect(work)
    turn = 0
    if len(quads) and is_mostly_tall(quads):  # lines run up/down: the page lies on its side
        turn = 90
        work = work.transpose(Image.Transpose.ROTATE_90)
        quads = detect(work)
    if len(quads) == 0:
        return Upright(turn, work, quads, [])
    arr = np.asarray(work)
    crops = [crop(arr, quad) for quad in quads]
    widths, heights = sides(quads)
    voters = [crops[i] for i in np.argsort(-(widths * heights))[:16] if widths[i] > 2 * heights[i]]
    if upside_down_share(voters) > 0.5:
        turn += 180
        crops = [np.ascontiguousarray(np.rot90(c, 2)) for c in crops]
        quads = rotate_180(quads, work.width, work.height)
    return Upright(turn % 360, work, quads, crops)


@dataclass
class Upright:
    turn: int  # counter-clockwise degrees that stand the page upright (0/90/180/270)
    work: Image.Image  # the copy the quads are in (turned 90° where the page lay on its side)
    quads: np.ndarray  # text-line quadrilaterals, upright
    crops: list[np.ndarray]  # one upright line image per quad


def rotate_180(quads: np.ndarray, width: int, height: int) -> np.ndarray:
    turned = quads.copy()
    turned[..., 0] = width - quads[..., 0]
    turned[..., 1] = height - quads[..., 1]
    return turned[:, [2, 3, 0, 1]]  # keep top-left first
