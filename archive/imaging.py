"""Pixel-level page checks and corrections: blankness, red seal ink, turning and
straightening. Plain numpy/Pillow; no OCR engine here."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageFilter

ANALYSIS_SIDE = 1000  # long side of the small copy used for the cheap checks
# A page is blank when less than this share of it is ink after noise removal.
# Dev scans: blank backs measure < 0.0005, the sparsest real page > 0.01.
BLANK_INK_FRACTION = 0.003
INK_CONTRAST = 60  # grey levels darker than the paper to count as ink


def small_copy(image: Image.Image, side: int = ANALYSIS_SIDE) -> Image.Image:
    scale = side / max(image.size)
    if scale >= 1:
        return image.copy()
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.BILINEAR)


def paper_colour(rgb: Image.Image) -> tuple[int, int, int]:
    """The page's background tone: the bright end of each channel, which is paper."""
    arr = np.asarray(small_copy(rgb, 400).convert("RGB")).reshape(-1, 3)
    return tuple(int(v) for v in np.percentile(arr, 90, axis=0))  # type: ignore[return-value]


def ink_fraction(image: Image.Image) -> float:
    """Share of the page covered by ink, robust to paper tone and scanner speckle:
    darkness is measured against the page's own paper level, and a median filter
    removes isolated noise pixels before counting."""
    grey = small_copy(image).convert("L").filter(ImageFilter.MedianFilter(3))
    arr = np.asarray(grey, dtype=np.int16)
    paper = np.percentile(arr, 90)
    ink = arr < paper - INK_CONTRAST
    # Ignore a margin: scanner edges and punch holes are not content.
    h, w = ink.shape
    my, mx = h // 25, w // 25
    return float(ink[my : h - my, mx : w - mx].mean())


def is_blank(image: Image.Image) -> bool:
    return ink_fraction(image) < BLANK_INK_FRACTION


def turn_upright(image: Image.Image, orientation: int, skew: float) -> Image.Image:
    """Undo the scan's turn (``orientation``: degrees clockwise the content was
    turned) and its skew (degrees, counter-clockwise positive) in one resampling."""
    if abs(skew) < 0.05:
        if orientation % 360 == 0:
            return image
        transpose = {90: Image.Transpose.ROTATE_90, 180: Image.Transpose.ROTATE_180, 270: Image.Transpose.ROTATE_270}
        return image.transpose(transpose[orientation % 360])
    angle = orientation + skew  # PIL rotates counter-clockwise
    fill = paper_colour(image) if image.mode == "RGB" else 255
    return image.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=fill)
