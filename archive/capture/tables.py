"""Ruled tables (bid-opening records, 开标记录表) as data: rows and columns from the ruling
lines, each cell's text from the OCR boxes that fall in it.

Ruling lines are found by morphology on the upright page (a long thin opening keeps
lines, drops characters). Each line is kept as a curve (a polynomial fitted to its
pixels), not a straight line: a bound volume bows its lines, and a page may be sheared
so that one part of the table sits half a row off the other. A box's row is then the
number of horizontal lines above it *at its own x* (and its column the number of
vertical lines to its left at its own y), which holds on a bowed or broken grid where
cells from line intersections would not.

``has_ruling`` is the cheap first look (a 1000-px copy): pages without ruling lines
pay nothing more.

A handwritten price runs over its cell's rule, and the recogniser, taught on lines
with no rule through them, reads a 0 crossed by a rule as 9 or Φ, a 2 as 4. A box
that a vertical rule crosses is read once more from a copy with the rule taken out
where no stroke crosses it (``read_page_tables``), and the surer reading kept.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import cv2
import numpy as np
from PIL import Image

from archive.capture.ocr import OcrBox

MIN_LINES = 3  # a table has at least 2 x 2 cells: three lines each way
LONG_ACROSS = 0.25  # a horizontal rule spans at least this share of the page's width (first look)
TALL = 0.04  # a vertical rule: at least this share of the page's height (one row, small type)


@dataclass(frozen=True)
class Rule:
    """A ruling line: ``across = polynomial(along)`` for ``along`` in [start, end]."""

    horizontal: bool
    start: float
    end: float
    coef: tuple[float, ...]

    def at(self, along: float) -> float:
        return float(np.polyval(self.coef, along))

    def covers(self, along: float, slack: float) -> bool:
        return self.start - slack <= along <= self.end + slack


def ink_mask(image: Image.Image) -> np.ndarray:
    """Dark pixels (ink, rules) as 255 on a local threshold: copes with paper tone, lid shadows, faded rules."""
    grey = np.asarray(image.convert("L"))
    block = max(15, (min(grey.shape) // 40) | 1)
    return cv2.adaptiveThreshold(grey, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY_INV, block, 15)


def line_masks(mask: np.ndarray, min_length: int) -> tuple[np.ndarray, np.ndarray]:
    """(horizontal, vertical) rules: the mask opened with a long thin kernel each way.
    Thickened across first, so a line still slanted by a degree or two (a bowed page)
    keeps runs long enough to survive the opening."""
    thick_h = cv2.dilate(mask, np.ones((3, 1), np.uint8))
    thick_v = cv2.dilate(mask, np.ones((1, 3), np.uint8))
    horizontal = cv2.morphologyEx(thick_h, cv2.MORPH_OPEN, np.ones((1, min_length), np.uint8))
    vertical = cv2.morphologyEx(thick_v, cv2.MORPH_OPEN, np.ones((min_length, 1), np.uint8))
    return horizontal, vertical


def has_ruling(upright_small: Image.Image) -> bool:
    """Whether an upright page (a small copy will do) has rules both ways enough for a table."""
    mask = ink_mask(upright_small)
    height, width = mask.shape
    horizontal, vertical = line_masks(mask, max(10, int(min(width, height) * TALL)))
    across = _rules(horizontal, True, width * LONG_ACROSS)
    down = _rules(vertical, False, height * TALL)
    return len(across) >= MIN_LINES and len(down) >= MIN_LINES


Grid = tuple[list[Rule], list[Rule]]  # a table's horizontal and vertical rules
# Recognition only, one text line per image: (texts, confidences) (ocr.RapidOcrEngine.recognise_lines)
Recognise = Callable[[list[np.ndarray]], tuple[list[str], list[float]]]


def find_tables(upright: Image.Image) -> list[Grid]:
    """The ruled tables on an upright page: for each, its horizontal and vertical rules
    (top to bottom, left to right). Rules that meet no rule of the other kind
    (underlines, a scanner's edge) belong to no table."""
    return _find_tables(ink_mask(upright))[0]


def _find_tables(mask: np.ndarray) -> tuple[list[Grid], np.ndarray]:
    """``find_tables`` on the page's ink mask, and the mask of its vertical rules."""
    height, width = mask.shape
    horizontal, vertical = line_masks(mask, max(15, int(min(width, height) * 0.03)))
    across = _rules(horizontal, True, width * 0.08)
    down = _rules(vertical, False, height * 0.015)
    slack = 0.01 * max(width, height)
    groups = _connected(across, down, slack)
    tables = []
    for h_rules, v_rules in groups:
        if len(h_rules) >= MIN_LINES and len(v_rules) >= MIN_LINES:
            h_rules.sort(key=lambda r: r.at((r.start + r.end) / 2))
            v_rules.sort(key=lambda r: r.at((r.start + r.end) / 2))
            tables.append((h_rules, v_rules))
    tables.sort(key=lambda t: t[0][0].at((t[0][0].start + t[0][0].end) / 2))
    return tables, vertical


def cells_of(
    rules: tuple[list[Rule], list[Rule]], boxes: Sequence[OcrBox], scale: float, slack: float
) -> list[list[str]]:
    """The table's rows of cell strings (header first), each box's text in the cell its
    centre falls in; a box that runs across a vertical rule (small type read as one
    line) is split there in proportion to its width. ``scale``: box pixels per rule pixel."""
    h_rules, v_rules = rules
    rows = max(_count_covering(h_rules, along) for along in _samples(h_rules)) - 1
    cols = max(_count_covering(v_rules, along) for along in _samples(v_rules)) - 1
    parts: dict[tuple[int, int], list[tuple[float, float, str]]] = {}
    for box in boxes:
        x0, y0, x1, y1 = (v / scale for v in box.box)
        cy = (y0 + y1) / 2
        row = _index(h_rules, (x0 + x1) / 2, cy, slack)
        if not 0 <= row < rows:
            continue
        for col, text, left in _split_across(v_rules, box.text, (x0, x1), cy, 0.8 * (y1 - y0), slack):
            if 0 <= col < cols and text:
                parts.setdefault((row, col), []).append((cy, left, text))
    return [["".join(text for *_, text in sorted(parts.get((r, c), []))) for c in range(cols)] for r in range(rows)]


def read_tables(upright: Image.Image, boxes: Sequence[OcrBox], scale: float) -> list[list[list[str]]]:
    """Every ruled table on the upright page as rows of cell strings; ``boxes`` in
    pixels ``scale`` times the image's. Tables with no text at all are left out."""
    return read_page_tables(upright, boxes, scale)[0]


def read_page_tables(
    upright: Image.Image, boxes: Sequence[OcrBox], scale: float, recognise: Recognise | None = None
) -> tuple[list[list[list[str]]], list[OcrBox]]:
    """(``read_tables``, the page's boxes), where with ``recognise`` each box that a table's
    vertical rule crosses is read again without the rule (``_reread_crossed``): the boxes
    come back with the reading kept, for the page's text too."""
    mask = ink_mask(upright)
    grids, vertical = _find_tables(mask)
    slack = 0.01 * max(upright.size)
    if recognise is not None and grids:
        boxes = _reread_crossed(np.asarray(upright.convert("RGB")), mask, vertical, grids, list(boxes), scale,
                                recognise)  # fmt: skip
    tables = [mend_amounts(cells_of(grid, boxes, scale, slack)) for grid in grids]
    return [table for table in tables if any(cell for row in table for cell in row)], list(boxes)


def _reread_crossed(
    rgb: np.ndarray,
    mask: np.ndarray,
    vertical: np.ndarray,
    grids: list[Grid],
    boxes: list[OcrBox],
    scale: float,
    recognise: Recognise,
) -> list[OcrBox]:
    """``boxes``, each one a table's vertical rule runs through read again from its crop with
    the rule taken out (``_without_rule``); the new reading is kept where it is surer
    (``_surer``). One recogniser call for all of a page's crossed boxes."""
    slack = 0.01 * max(mask.shape)
    crossed, crops = [], []
    for number, box in enumerate(boxes):
        x0, y0, x1, y1 = (v / scale for v in box.box)
        if not _crossed(grids, (x0, x1), (y0 + y1) / 2, 0.1 * (y1 - y0), slack):
            continue
        pad = max(2, round(0.08 * (y1 - y0)))
        window = (slice(max(0, int(y0) - pad), int(y1) + pad), slice(max(0, int(x0) - pad), int(x1) + pad))
        if rgb[window].size:
            crossed.append(number)
            crops.append(_without_rule(rgb[window], mask[window] > 0, vertical[window] > 0))
    if not crops:
        return boxes
    texts, scores = recognise(crops)
    kept = list(boxes)
    for number, text, score in zip(crossed, texts, scores):
        again = replace(boxes[number], text=text, confidence=float(score))
        if text.strip() and _surer(again, boxes[number]):
            kept[number] = again
    return kept


def _crossed(grids: list[Grid], span: tuple[float, float], cy: float, margin: float, slack: float) -> bool:
    """Whether a vertical rule of a table runs through the box spanning ``span`` at height
    ``cy``, more than ``margin`` inside its ends (a rule along a box's end is its cell's
    edge, not a rule through its text)."""
    x0, x1 = span
    return any(r.covers(cy, slack) and x0 + margin < r.at(cy) < x1 - margin for _, v_rules in grids for r in v_rules)


def _without_rule(crop: np.ndarray, ink: np.ndarray, rule: np.ndarray) -> np.ndarray:
    """The crop with a vertical rule's pixels painted as paper on every row where no stroke
    crosses it (a stroke crosses where there is ink within two pixels of the rule on both
    sides): a 0 crossed by the rule keeps its arcs and loses the bar through it, and a
    stroke that only comes up to the rule (a 7's foot) keeps no piece of rule beside it.
    A stroke lying on the rule itself goes with it (a 9's right side): hence the new
    reading is kept only where it is surer (``_surer``)."""
    clean = crop.copy()
    paper = np.median(crop.reshape(-1, crop.shape[-1]), axis=0)
    beside = ink & ~rule
    width = rule.shape[1]
    for y, row in enumerate(rule):
        xs = np.flatnonzero(row)
        if not len(xs):
            continue
        for run in np.split(xs, np.flatnonzero(np.diff(xs) > 1) + 1):
            left, right = int(run[0]), int(run[-1])
            if not (beside[y, max(0, left - 2) : left].any() and beside[y, right + 1 : min(width, right + 3)].any()):
                clean[y, left : right + 1] = paper
    return clean


_TO_THE_FEN = re.compile(r"\d\.+\d\d(?!\d)")  # a doubled point is one point


def _surer(again: OcrBox, first: OcrBox) -> bool:
    """Whether the second reading of a box beats the first: an amount written to the fen (a
    point and two digits, as bid prices are) over one that is not, else the recogniser's
    confidence (a tie keeps the first)."""
    return (bool(_TO_THE_FEN.search(again.text)), again.confidence) > (
        bool(_TO_THE_FEN.search(first.text)),
        first.confidence,
    )


def _rules(mask: np.ndarray, horizontal: bool, min_length: float) -> list[Rule]:
    """Each connected line of the mask at least ``min_length`` long, as a fitted curve."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    rules = []
    for label in range(1, count):
        x, y, w, h = stats[label, :4]
        length, thickness = (w, h) if horizontal else (h, w)
        if length < min_length or thickness > max(12, length / 8):
            continue
        ys, xs = np.nonzero(labels[y : y + h, x : x + w] == label)
        along, across = (xs + x, ys + y) if horizontal else (ys + y, xs + x)
        step = max(1, len(along) // 2000)  # a few thousand points fit as well as all
        degree = 2 if length > 300 else 1
        coef = np.polyfit(along[::step].astype(float), across[::step].astype(float), degree)
        rules.append(Rule(horizontal, float(along.min()), float(along.max()), tuple(float(c) for c in coef)))
    return rules


def _meets(a: Rule, b: Rule, slack: float) -> bool:
    """Whether a horizontal rule ``a`` and a vertical rule ``b`` cross or touch."""
    x = b.at(a.at((a.start + a.end) / 2))  # the vertical's x at the horizontal's height
    y = a.at(x)
    return a.covers(x, slack) and b.covers(y, slack)


def _connected(across: list[Rule], down: list[Rule], slack: float) -> list[tuple[list[Rule], list[Rule]]]:
    """Rules grouped into tables: horizontal and vertical rules that meet, transitively."""
    parent = list(range(len(across) + len(down)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, a in enumerate(across):
        for j, b in enumerate(down):
            if _meets(a, b, slack):
                parent[root(i)] = root(len(across) + j)
    groups: dict[int, tuple[list[Rule], list[Rule]]] = {}
    for i, rule in enumerate(across + down):
        group = groups.setdefault(root(i), ([], []))
        (group[0] if rule.horizontal else group[1]).append(rule)
    return list(groups.values())


def _samples(rules: list[Rule]) -> list[float]:
    start, end = min(r.start for r in rules), max(r.end for r in rules)
    return list(np.linspace(start, end, 25)[1:-1])


def _count_covering(rules: list[Rule], along: float) -> int:
    return sum(rule.covers(along, 0) for rule in rules)


def _index(rules: list[Rule], along: float, across: float, slack: float) -> int:
    """How many of ``rules`` (covering ``along``) lie before ``across``, less one: the
    row (or column) a point is in; -1 before the first rule."""
    return sum(rule.at(along) < across for rule in rules if rule.covers(along, slack)) - 1


def _split_across(
    v_rules: list[Rule], text: str, span: tuple[float, float], cy: float, glyph: float, slack: float
) -> list[tuple[int, str, float]]:
    """(column, text, left edge) of each piece of a box cut at the vertical rules inside it.
    A rule less than ``glyph`` (about a character) from the box's end is not a cut: a
    handwritten price that runs over its cell's rule stays whole, in the cell it is mostly in."""
    x0, x1 = span
    cuts = sorted(x for rule in v_rules if rule.covers(cy, slack) and x0 + glyph < (x := rule.at(cy)) < x1 - glyph)
    edges = [x0, *cuts, x1]
    pieces, taken = [], 0
    for left, right in zip(edges, edges[1:]):
        upto = len(text) if right == x1 else round(len(text) * (right - x0) / max(1.0, x1 - x0))
        middle = (left + right) / 2 if len(edges) > 2 else _mostly_in(v_rules, x0, x1, cy, slack)
        col = _index(v_rules, cy, middle, slack)
        pieces.append((col, text[taken:upto], left))
        taken = max(taken, upto)
    return pieces


def _mostly_in(v_rules: list[Rule], x0: float, x1: float, cy: float, slack: float) -> float:
    """A point of the column holding most of [x0, x1] (its centre unless a rule cuts off more than half)."""
    inside = sorted(x for rule in v_rules if rule.covers(cy, slack) and x0 < (x := rule.at(cy)) < x1)
    edges = [x0, *inside, x1]
    left, right = max(zip(edges, edges[1:]), key=lambda pair: pair[1] - pair[0])
    return (left + right) / 2


_AMOUNT = re.compile(r"^\d[\d,]*\.?\d*$")
_TAIL_DIGITS = re.compile(r"(\d+)$")
_FIGURE = re.compile(r"^\d[\d,.]*$")  # an amount as read, a stray point or two included
_LEADING_MARK = re.compile(r"^[,，、.。·'‘’`]+(?=\d[\d,.]*$)")  # no figure starts with one: a stroke's tail
_POINTS = re.compile(r"\d[\d.]*\.\d{1,2}")  # a figure with its decimal point and maybe others before it


def mend_amounts(table: list[list[str]]) -> list[list[str]]:
    """Handwritten prices run over their cell's rules, and the detector then reads a
    price's first digits with the name on its left, or its last ones with the figure on
    its right. In a column of amounts (most cells figures with a decimal point), digits
    glued to the end of the cell on the left move back, a price short of its two decimals
    (yuan to the fen) takes them from the start of the cell on its right, a figure
    whose point was lost gets it back before its last two digits, and of two points (a
    speck of the pen or the scan read as one) the last is the decimal point. In any
    column, a figure loses the comma or point read before it (a stroke's tail from the
    cell on its left: no figure starts with one)."""
    if len(table) < 2:
        return table
    rows = [[_LEADING_MARK.sub("", cell.strip()) for cell in row] for row in table]
    for col in range(len(rows[0])):
        values = [row[col] for row in rows[1:] if col < len(row)]
        if sum(bool(_FIGURE.match(v)) and "." in v for v in values) * 2 < len(values):
            continue
        for row in rows[1:]:
            _mend_price(row, col)
    return rows


def _mend_price(row: list[str], col: int) -> None:
    """A row's cell in a column of amounts mended in place, with its neighbours (``mend_amounts``)."""
    if col > 0 and (tail := _TAIL_DIGITS.search(row[col - 1])) and not _AMOUNT.match(row[col - 1]):
        row[col - 1], row[col] = row[col - 1][: tail.start()], tail.group(1) + row[col]
    decimals = row[col].split(".")[-1] if "." in row[col] else None
    if decimals is not None and len(decimals) < 2 and col + 1 < len(row):
        need = 2 - len(decimals)
        if re.match(rf"^\d{{{need}}}", row[col + 1]) and len(row[col + 1]) > need:
            row[col], row[col + 1] = row[col] + row[col + 1][:need], row[col + 1][need:].strip()
    if re.fullmatch(r"\d{4,}", row[col]):  # the point lost (a handwritten dot is small): fen are two digits
        row[col] = f"{row[col][:-2]}.{row[col][-2:]}"
    if row[col].count(".") > 1 and _POINTS.fullmatch(row[col]):  # a speck read as a point: the last one is
        whole, _, fen = row[col].rpartition(".")
        row[col] = f"{whole.replace('.', '')}.{fen}"
