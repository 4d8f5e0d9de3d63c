"""A born-digital page's own text layer, read faithfully: character by character from
pdfium's text page, each glyph drawn twice for a bold effect read once, the word spaces
pdfium works out from positions kept, characters beyond the BMP whole, private-use code
points looked up again in poppler's reading, control characters dropped. Called with
``archive.capture.pages.PDFIUM_LOCK`` held (pdfium is not thread-safe)."""

from __future__ import annotations

import ctypes
import difflib
import subprocess
import unicodedata
from collections.abc import Iterator
from pathlib import Path

import pypdfium2
import pypdfium2.raw as pdfium_c

from archive.capture.textclean import without_control

MIN_PAGE_COVER = 0.8  # an image covering this share of the page is the page (a scan)
RESOURCE_DEPTH = 16  # form XObjects inside form XObjects: deeper is hostile
# A text layer with more than this share of unmappable characters (U+FFFD,
# private-use glyph codes) is broken (no ToUnicode map): the page is OCR'd instead.
MAX_JUNK_TEXT = 0.1


def pdf_text_boxes(
    page: pypdfium2.PdfPage, width_px: int, height_px: int, source: tuple[Path, int] | None = None
) -> list[dict] | None:
    """The page's own text as boxes in the pixels of its rendering at ``width_px``
    x ``height_px``, or None when the page has no usable text layer: no text, a
    broken one (mostly unmappable glyphs), or visible text laid over a full-page
    scan (a stamp or page number on a scan: the scan itself still needs OCR; an
    invisible OCR layer over a scan is used).

    Read character by character from pdfium's text page (not by rectangles: text
    taken by rectangle repeats the characters where two rectangles meet), with the
    spaces pdfium infers from the glyphs' positions, glyphs drawn twice in the same
    place (a bold effect, a page drawn twice) read once, and no control characters.
    ``source`` (the file and page number): where private-use code points are looked up
    again (poppler's reading of the font's ToUnicode map)."""
    textpage = page.get_textpage()
    try:
        if textpage.count_chars() <= 0:
            return None
        chars = _page_chars(textpage)
    finally:
        textpage.close()
    if source is not None and any(_private(ch) for ch, _ in chars):
        chars = _private_use_resolved(chars, poppler_text(*source))
    visible = [ch for ch, _ in chars if not ch.isspace()]
    if not visible:
        return None
    junk = sum(ch == "\ufffd" or unicodedata.category(ch) in ("Co", "Cc", "Cs") for ch in visible)
    if junk > MAX_JUNK_TEXT * len(visible) or visible_text_over_scan(page):
        return None
    boxes = []
    for text, (left, bottom, right, top) in _segments(chars):
        text = " ".join(without_control(text).split())
        if text:
            x0, y0 = _to_device(page, width_px, height_px, left, top)
            x1, y1 = _to_device(page, width_px, height_px, right, bottom)
            box = (float(min(x0, x1)), float(min(y0, y1)), float(max(x0, x1)), float(max(y0, y1)))
            boxes.append({"text": text, "box": box, "confidence": 1.0})
    return boxes or None


Box = tuple[float, float, float, float]  # left, bottom, right, top in PDF points


def _page_chars(textpage: pypdfium2.PdfTextPage) -> list[tuple[str, Box | None]]:
    """(character, its box) in pdfium's reading order; None: a space or line break
    pdfium inferred from the positions. Surrogate pairs are one character; a glyph
    drawn again over the same glyph is dropped."""
    chars: list[tuple[str, Box | None]] = []
    drawn: dict[tuple[str, int, int], list[Box]] = {}  # (character, cell of its centre) -> boxes
    count, index = textpage.count_chars(), 0
    while index < count:
        code = pdfium_c.FPDFText_GetUnicode(textpage.raw, index)
        generated = pdfium_c.FPDFText_IsGenerated(textpage.raw, index) == 1
        box = None if generated else textpage.get_charbox(index)
        index += 1
        if 0xD800 <= code < 0xDC00 and index < count:  # a character beyond the BMP, as UTF-16
            low = pdfium_c.FPDFText_GetUnicode(textpage.raw, index)
            if 0xDC00 <= low < 0xE000:
                code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                index += 1
        ch = chr(code)
        if box is not None and not ch.isspace():
            cell_x, cell_y = int((box[0] + box[2]) / 2 // _CELL), int((box[1] + box[3]) / 2 // _CELL)
            near = (other for dx in (-1, 0, 1) for dy in (-1, 0, 1)
                    for other in drawn.get((ch, cell_x + dx, cell_y + dy), ()))  # fmt: skip
            if any(_same_place(box, other) for other in near):
                continue  # drawn twice: once for the eye, once more to look bold (or the page twice)
            drawn.setdefault((ch, cell_x, cell_y), []).append(box)
        chars.append((ch, box))
    return chars


_CELL = 8.0  # points: glyphs drawn over each other (a bold effect: a hair apart) are in neighbouring cells


def _same_place(a: Box, b: Box) -> bool:
    """Two glyph boxes covering mostly the same spot (a bold effect offsets by a hair)."""
    width = min(a[2] - a[0], b[2] - b[0])
    height = min(a[3] - a[1], b[3] - b[1])
    overlap_x = min(a[2], b[2]) - max(a[0], b[0])
    overlap_y = min(a[3], b[3]) - max(a[1], b[1])
    return width > 0 and height > 0 and overlap_x > 0.6 * width and overlap_y > 0.6 * height


def _segments(chars: list[tuple[str, Box | None]]) -> Iterator[tuple[str, Box]]:
    """Runs of text on one line, split at line breaks and at gaps wider than a
    character (table cells), each with the box around its glyphs."""
    text, box = "", None
    for ch, char_box in chars:
        if ch in "\r\n":
            if box is not None:
                yield text, box
            text, box = "", None
            continue
        if char_box is None or char_box[2] <= char_box[0]:  # an inferred space, or a glyph with no extent
            text += ch
            continue
        if box is not None and _wide_gap(box, char_box):
            yield text, box
            text, box = "", None
        text += ch
        box = char_box if box is None else (min(box[0], char_box[0]), min(box[1], char_box[1]),
                                            max(box[2], char_box[2]), max(box[3], char_box[3]))  # fmt: skip
    if box is not None:
        yield text, box


def _wide_gap(line: Box, char: Box) -> bool:
    height = max(1.0, min(line[3] - line[1], char[3] - char[1]))
    same_row = min(line[3], char[3]) - max(line[1], char[1]) > 0.5 * height
    return same_row and char[0] - line[2] > 1.5 * height


def _private(ch: str) -> bool:
    return unicodedata.category(ch) == "Co"


def poppler_text(pdf_path: Path, number: int) -> str:
    """Page ``number``'s text as poppler's pdftotext reads it ("" where it cannot)."""
    try:
        done = subprocess.run(["pdftotext", "-q", "-enc", "UTF-8", "-f", str(number), "-l", str(number),
                               str(pdf_path), "-"], capture_output=True, timeout=60, check=False)  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):  # no poppler here: the characters stay unresolved
        return ""
    return done.stdout.decode("utf-8", "replace")


def _private_use_resolved(chars: list[tuple[str, Box | None]], other: str) -> list[tuple[str, Box | None]]:
    """``chars`` with each private-use code point replaced by the character poppler reads
    in its place, where the two readings agree around it character for character."""
    ours = [i for i, (ch, _) in enumerate(chars) if not ch.isspace()]
    theirs = [ch for ch in other if not ch.isspace()]
    resolved = list(chars)
    matcher = difflib.SequenceMatcher(None, [chars[i][0] for i in ours], theirs, autojunk=False)
    for tag, a0, a1, b0, b1 in matcher.get_opcodes():
        if tag != "replace" or a1 - a0 != b1 - b0:
            continue
        for offset in range(a1 - a0):
            index, replacement = ours[a0 + offset], theirs[b0 + offset]
            if _private(chars[index][0]) and without_control(replacement):
                resolved[index] = (replacement, chars[index][1])
    return resolved


def _to_device(page: pypdfium2.PdfPage, width: int, height: int, x: float, y: float) -> tuple[int, int]:
    """PDF user space -> pixel of the rendered bitmap (pdfium applies /Rotate, the crop box, ...)."""
    dx, dy = ctypes.c_int(), ctypes.c_int()
    pdfium_c.FPDF_PageToDevice(page.raw, 0, 0, width, height, 0, x, y, ctypes.byref(dx), ctypes.byref(dy))
    return dx.value, dy.value


def pictures_on(page: pypdfium2.PdfPage, width: int, height: int) -> tuple[tuple[float, float, float, float], ...]:
    """The boxes (rendering pixels) of the images drawn on the page, smaller than the page."""
    page_w, page_h = page.get_size()
    boxes = []
    for obj in page.get_objects(filter=(pdfium_c.FPDF_PAGEOBJ_IMAGE,), max_depth=RESOURCE_DEPTH):
        left, bottom, right, top = obj.get_bounds()
        if (right - left) * (top - bottom) >= MIN_PAGE_COVER * page_w * page_h:
            continue
        x0, y0 = _to_device(page, width, height, left, top)
        x1, y1 = _to_device(page, width, height, right, bottom)
        boxes.append((float(min(x0, x1)), float(min(y0, y1)), float(max(x0, x1)), float(max(y0, y1))))
    return tuple(boxes)


def visible_text_over_scan(page: pypdfium2.PdfPage) -> bool:
    page_w, page_h = page.get_size()
    area = max(1.0, page_w * page_h)
    covered = False
    for obj in page.get_objects(filter=(pdfium_c.FPDF_PAGEOBJ_IMAGE,), max_depth=1):
        left, bottom, right, top = obj.get_bounds()
        if (right - left) * (top - bottom) >= MIN_PAGE_COVER * area:
            covered = True
            break
    if not covered:
        return False
    for obj in page.get_objects(filter=(pdfium_c.FPDF_PAGEOBJ_TEXT,), max_depth=1):
        if pdfium_c.FPDFTextObj_GetTextRenderMode(obj.raw) != pdfium_c.FPDF_TEXTRENDERMODE_INVISIBLE:
            return True
    return False
