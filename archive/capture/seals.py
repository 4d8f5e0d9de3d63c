"""Red seals (印章): find them, keep their ink out of the body text, and read
the name around the ring separately (who stamped a document is worth keeping).

Only red that forms a seal-sized, roughly round blob is treated as a seal, so
red-printed headings (红头) and red handwriting stay in the body text.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

from archive.capture.imaging import paper_colour, small_copy

SEAL_MIN_INCHES, SEAL_MAX_INCHES = 0.8, 2.8  # official seals are 38-45 mm across; allow for the odd one
SEAL_LUMA_SHARE = 0.8  # a pixel darker than this share of the seal ink's typical lightness is text: kept
RING_SIDE = 500  # seals are resampled to this size before their glyphs are taken out
REDNESS = 22  # red above both green and blue, in grey levels, for seal ink and its pink halo


@dataclass(frozen=True)
class Seal:
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 in the page image

    @property
    def centre(self) -> tuple[float, float]:
        x0, y0, x1, y1 = self.box
        return ((x0 + x1) / 2, (y0 + y1) / 2)

    @property
    def radius(self) -> float:
        x0, y0, x1, y1 = self.box
        return max(x1 - x0, y1 - y0) / 2

    def scaled(self, factor: float) -> Seal:
        """The same seal in an image ``factor`` times larger."""
        return Seal(tuple(round(v * factor) for v in self.box))  # type: ignore[arg-type]


def redness(rgb: np.ndarray) -> np.ndarray:
    """How much redder than green and blue each pixel is (0 where it is not)."""
    arr = rgb.astype(np.int16)
    return np.clip(arr[..., 0] - np.maximum(arr[..., 1], arr[..., 2]), 0, 255).astype(np.uint8)


def red_mask(rgb: np.ndarray) -> np.ndarray:
    return (redness(rgb) > REDNESS) & (rgb[..., 0] > 110)


def find_seals(image: Image.Image, dpi: int) -> list[Seal]:
    """Seal-sized, roughly square clusters of red ink."""
    shrunk = small_copy(image, 800).convert("RGB")
    scale = shrunk.width / image.width
    small = np.asarray(shrunk)
    mask = red_mask(small).astype(np.uint8)
    if mask.mean() < 0.0005:
        return []
    # Close the gaps between a seal's ring, characters and star so it is one blob.
    size = max(3, round(0.12 * dpi * scale) | 1)
    blobs = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size)))
    count, _labels, stats, _centroids = cv2.connectedComponentsWithStats(blobs, connectivity=8)
    seals = []
    for x, y, w, h, _area in stats[1:count]:
        inches = max(w, h) / scale / dpi
        if SEAL_MIN_INCHES <= inches <= SEAL_MAX_INCHES and 0.7 <= w / h <= 1.45:
            x0, y0, x1, y1 = (round(v / scale) for v in (x, y, x + w, y + h))
            seals.append(Seal((x0, y0, x1, y1)))
    return seals


def without_seals(image: Image.Image, seals: list[Seal], paper: tuple[int, int, int] | None = None) -> Image.Image:
    """The page with the seals' red ink (and halo) painted in the paper colour (``paper``,
    when the caller knows it already); black text under a seal stays, because it is not red."""
    if not seals:
        return image
    arr = np.array(image.convert("RGB"))
    paper = paper or paper_colour(image)
    pad = 6
    for seal in seals:
        x0, y0, x1, y1 = seal.box
        x0, y0 = max(0, x0 - pad), max(0, y0 - pad)
        region = arr[y0 : y1 + pad, x0 : x1 + pad]
        red = red_mask(region)
        mask = cv2.dilate(red.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
        # Text under the seal is darker than the seal's ink even where a JPEG's coarse colour
        # tints it red (faded text, low quality): only pixels about as light as the ink go.
        luma = region.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
        light = luma >= SEAL_LUMA_SHARE * float(np.median(luma[red])) if red.any() else True
        region[mask & (region[..., 0] > 110) & light] = paper
    return Image.fromarray(arr)


def ring_glyphs(image: Image.Image, seal: Seal, radial: bool) -> Image.Image | None:
    """The seal's ring characters side by side on one line (black on white), in
    reading order: clockwise from the lower left. ``radial`` turns each glyph
    by its place on the ring (characters set along the ring, as most real seals
    are); without it glyphs are taken as they stand (characters set upright)."""
    x0, y0, x1, y1 = seal.box
    ink = redness(np.asarray(image.convert("RGB").crop((x0, y0, x1, y1))))
    ink = cv2.resize(ink, (RING_SIDE, RING_SIDE), interpolation=cv2.INTER_CUBIC)
    mask = (ink > REDNESS).astype(np.uint8)
    merged = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (13, 13)))
    count, _labels, stats, centroids = cv2.connectedComponentsWithStats(merged, connectivity=8)
    centre = RING_SIDE / 2
    glyphs = []
    for (gx, gy, gw, gh, _area), (cx, cy) in zip(stats[1:count], centroids[1:count]):
        distance = np.hypot(cx - centre, cy - centre) / centre
        if not (0.04 * RING_SIDE < max(gw, gh) < 0.3 * RING_SIDE and 0.4 < distance < 0.95):
            continue  # the ring itself, the star in the middle, specks
        angle = np.degrees(np.arctan2(cy - centre, cx - centre)) % 360  # image coordinates: clockwise
        glyph = 255 - np.clip(ink[gy : gy + gh, gx : gx + gw].astype(np.int16) * 3, 0, 255).astype(np.uint8)
        if radial:  # the glyph's top points away from the centre
            glyph = np.asarray(Image.fromarray(glyph).rotate(angle - 270, expand=True, fillcolor=255))
        glyphs.append(((angle - 90) % 360, glyph))  # reading starts at the bottom, going clockwise
    if len(glyphs) < 2:
        return None
    glyphs.sort(key=lambda item: item[0])
    height = 64
    parts = []
    for _key, glyph in glyphs:
        scale = height / glyph.shape[0]
        resized = cv2.resize(glyph, (max(1, round(glyph.shape[1] * scale)), height))
        parts += [resized, np.full((height, height // 4), 255, np.uint8)]
    line = np.hstack(parts)
    return Image.fromarray(np.pad(line, 16, constant_values=255)).convert("RGB")


STAMP_RED_SHARE = 0.03  # of a picture's pixels in seal red: a stamp, not a photo or a logo in other colours


def stamp_ink(picture: Image.Image) -> Image.Image | None:
    """A picture placed on a page (a born-digital page's stamp) as black ink on white, for
    reading, when it is mostly seal red; None otherwise."""
    if picture.width < 8 or picture.height < 8:
        return None
    rgb = np.asarray(picture.convert("RGB"))
    if red_mask(rgb).mean() < STAMP_RED_SHARE:
        return None
    ink = 255 - np.clip(redness(rgb).astype(np.int16) * 3, 0, 255).astype(np.uint8)
    return Image.fromarray(np.pad(ink, 16, constant_values=255)).convert("RGB")


SEAL_LUMA_SHARE = 0.8  # a pixel darker than this share of the seal ink's typical lightness is text: kept
RING_SIDE = 500  # long side of the copy searched for rings
RING_INK = 0.85  # share of a seal's outline that must be ink (text clutter and table rules make no closed ring)


@dataclass(frozen=True)
class Ring:
    """A seal's round outline found by its shape (a black seal on a bitonal scan): centre and radius."""

    x: float
    y: float
    r: float

    @classmethod
    def around(cls, box: list[int] | tuple[int, ...]) -> Ring:
        """The ring of a seal found by its colour, from its box."""
        x0, y0, x1, y1 = box
        return cls((x0 + x1) / 2, (y0 + y1) / 2, max(x1 - x0, y1 - y0) / 2)

    def scaled(self, factor: float) -> Ring:
        return Ring(self.x * factor, self.y * factor, self.r * factor)

    def holds_ring_text(self, box: tuple[float, float, float, float]) -> bool:
        """Whether a text box lies wholly inside the outline and off its centre: the seal's
        name set around the ring. A line of the page under the seal runs out of it."""
        x0, y0, x1, y1 = box
        corners = ((x0, y0), (x1, y0), (x0, y1), (x1, y1))
        # corners of an upright box round text that follows the ring stick out a little
        inside = all((x - self.x) ** 2 + (y - self.y) ** 2 <= (1.2 * self.r) ** 2 for x, y in corners)
        centre = ((x0 + x1) / 2 - self.x) ** 2 + ((y0 + y1) / 2 - self.y) ** 2
        return inside and (0.4 * self.r) ** 2 <= centre <= self.r**2


def find_rings(image: Image.Image, dpi: float) -> list[Ring]:
    """Round seals told by their shape, whatever their colour: circles of seal size
    (Hough) whose outline is mostly ink. For pages where colour cannot tell (bitonal,
    grey), so that the seal's ring text can be kept out of the page's text."""
    small = small_copy(image, RING_SIDE)  # Hough's cost grows with the radii tried: a small copy
    shrink = small.width / image.width
    grey, dpi = np.asarray(small.convert("L")), dpi * shrink
    low, high = SEAL_MIN_INCHES / 2 * dpi, SEAL_MAX_INCHES / 2 * dpi
    if low < 4 or min(grey.shape) < 2 * low:
        return []  # a page too small (or a dpi too low) to hold a seal
    circles = cv2.HoughCircles(cv2.medianBlur(grey, 3), cv2.HOUGH_GRADIENT, dp=2, minDist=low,
                               param1=120, param2=50, minRadius=int(low), maxRadius=int(high))  # fmt: skip
    if circles is None:
        return []
    ink = grey < min(160, int(np.percentile(grey, 90)) - 60)
    x, y, r = (circles[0][:, i, None, None] for i in range(3))  # every candidate at once
    angles = np.linspace(0, 2 * np.pi, 180, endpoint=False)[None, None, :]
    radii = r + np.arange(-2, 3)[None, :, None]  # the outline is a few pixels thick and the fit approximate
    xs = np.clip(np.round(x + radii * np.cos(angles)).astype(int), 0, grey.shape[1] - 1)
    ys = np.clip(np.round(y + radii * np.sin(angles)).astype(int), 0, grey.shape[0] - 1)
    inked = ink[ys, xs].any(axis=1).mean(axis=1)  # share of directions with ink at the outline
    return [Ring(float(cx), float(cy), float(cr)).scaled(1 / shrink)
            for (cx, cy, cr), share in zip(circles[0], inked) if share >= RING_INK]  # fmt: skip
