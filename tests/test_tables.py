"""Ruled tables as data: the table finder on a drawn bid-opening page (no OCR: the text
boxes are where the drawing put the text), and the page worker's ``tables`` with real OCR."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from archive.capture.ocr import OcrBox
from archive.capture.tables import _without_rule, has_ruling, mend_amounts, read_page_tables, read_tables

FONTS = [  # as tests/resources/make_fixtures.py
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
]
ROWS = [
    ["序号", "投标人名称", "投标报价（元）", "工期"],
    ["1", "广西柳州桂建信息技术有限公司", "112337.24", "180"],
    ["2", "广西柳州宏达医疗器械有限公司", "110048.06", "90"],
    ["3", "广西柳州中联信息技术有限公司", "99730.41", "60"],
]
COLUMNS = [100, 220, 900, 1250, 1450]  # x of the vertical rules
TOP, ROW_HEIGHT = 300, 90


def _font(size: int) -> ImageFont.FreeTypeFont:
    path = next((p for p in FONTS if Path(p).exists()), None)
    if path is None:
        pytest.skip("no CJK font (fonts-noto-cjk)")
    return ImageFont.truetype(path, size)


def table_page(bow: float = 0.0) -> tuple[Image.Image, list[OcrBox]]:
    """A landscape page with a ruled 4 x 4 table (its right half ``bow`` px lower, as a
    bound volume's page bends), a title above and a signature line with an underline below."""
    page = Image.new("RGB", (1600, 1000), (246, 243, 236))
    draw = ImageDraw.Draw(page)
    font, boxes = _font(30), []

    def text(x: float, y: float, value: str) -> None:
        draw.text((x, y), value, font=font, fill=(30, 30, 30))
        boxes.append(OcrBox(value, tuple(float(v) for v in draw.textbbox((x, y), value, font=font)), 0.95))

    text(500, 150, "柳州市垃圾转运站建设开标记录表")
    shift = [0.0, 0.0, bow, bow, bow]  # per vertical rule: the right part of the grid sits lower
    for r in range(len(ROWS) + 1):
        y = TOP + r * ROW_HEIGHT
        for c in range(len(COLUMNS) - 1):
            draw.line((COLUMNS[c], y + shift[c], COLUMNS[c + 1], y + shift[c + 1]), fill=(20, 20, 20), width=3)
    for c, x in enumerate(COLUMNS):
        draw.line((x, TOP + shift[c], x, TOP + len(ROWS) * ROW_HEIGHT + shift[c]), fill=(20, 20, 20), width=3)
    for r, row in enumerate(ROWS):
        for c, value in enumerate(row):
            text(COLUMNS[c] + 12, TOP + r * ROW_HEIGHT + 28 + (shift[c] + shift[c + 1]) / 2, value)
    text(110, 800, "唱标人：罗刚")
    draw.line((300, 840, 700, 840), fill=(20, 20, 20), width=3)  # an underline is no table
    return page, boxes


def prose_page() -> Image.Image:
    page = Image.new("RGB", (1240, 1754), (246, 243, 236))
    draw = ImageDraw.Draw(page)
    line = "为推进纸质档案与电子档案单轨运行，请于年底前完成历史档案的扫描。"
    for i in range(30):
        draw.text((110, 150 + i * 48), line, font=_font(30), fill=(30, 30, 30))
    return page


def test_a_ruled_table_is_read_cell_by_cell() -> None:
    page, boxes = table_page()
    assert has_ruling(page.resize((1000, 625)))
    assert read_tables(page, boxes, 1.0) == [ROWS]


def test_a_bowed_grid_and_boxes_in_another_scale() -> None:
    page, boxes = table_page(bow=40)  # the right half of every row sits almost half a row lower
    doubled = [OcrBox(b.text, tuple(2 * v for v in b.box), b.confidence) for b in boxes]
    assert read_tables(page, doubled, 2.0) == [ROWS]


def test_a_box_across_rules_is_split_and_an_overrun_is_not() -> None:
    page, boxes = table_page()
    header = [b for b in boxes if b.text in ("投标报价（元）", "工期")]
    merged = OcrBox("投标报价（元）工期", (header[0].box[0], header[0].box[1], header[1].box[2], header[1].box[3]), 0.9)
    price = next(b for b in boxes if b.text == "112337.24")
    overrun = OcrBox(price.text, (price.box[0] + 20, price.box[1], 1250 + 15, price.box[3]), 0.9)  # past its rule
    boxes = [b for b in boxes if b not in header and b is not price] + [merged, overrun]
    assert read_tables(page, boxes, 1.0) == [ROWS]


def test_pages_without_a_table() -> None:
    assert not has_ruling(prose_page().resize((707, 1000)))
    page = Image.new("RGB", (1600, 1000), (246, 243, 236))
    assert read_tables(page, [OcrBox("x", (1, 1, 5, 5), 1.0)], 1.0) == []


def test_handwritten_prices_glued_to_their_neighbours_are_mended() -> None:
    table = [["名称", "报价", "工期"], ["广西某公司1", "0782462.", "98180"], ["广西某公司", "3545000.00", "90"],
             ["广西另一公司", "4248738", "60"]]  # fmt: skip
    assert mend_amounts(table) == [["名称", "报价", "工期"], ["广西某公司", "10782462.98", "180"],
                                   ["广西某公司", "3545000.00", "90"], ["广西另一公司", "42487.38", "60"]]  # fmt: skip


def test_figures_lose_stray_marks_and_extra_points() -> None:
    table = [
        ["名称", "报价", "工期"],
        ["甲", "3.8216173.90", ",180"],
        ["乙", "10449989..", "06 120"],
        ["丙", "1.50", "90"],
    ]
    assert mend_amounts(table) == [["名称", "报价", "工期"], ["甲", "38216173.90", "180"], ["乙", "10449989.06", "120"],
                                   ["丙", "1.50", "90"]]  # fmt: skip


def test_a_rule_is_taken_out_where_no_stroke_crosses_it() -> None:
    """A 0 with a rule through it (read as 9 or Φ): the bar inside the ring and the rule above
    and below go, the ring's arcs where they cross the rule stay; beside a stroke that only
    touches it (a 7 would read as T) the rule goes."""
    crop = np.full((60, 60, 3), 240, np.uint8)
    ink = np.zeros((60, 60), bool)
    yy, xx = np.mgrid[:60, :60]
    ring = np.abs(np.hypot((yy - 30) / 20, (xx - 30) / 12) - 1) < 0.12
    rule = np.zeros((60, 60), bool)
    rule[:, 29:32] = True
    beside = np.zeros((60, 60), bool)
    beside[52:58, 27:29] = True  # a stroke along the rule's left side (a 7's foot), not across it
    ink |= ring | rule | beside
    crop[ink] = 20
    clean = _without_rule(crop, ink, rule)
    assert (clean[30, 29:32] == 240).all()  # the bar through the middle of the 0
    assert (clean[2, 29:32] == 240).all() and (clean[57, 29:32] == 240).all()  # the rule outside it
    assert (clean[ring & ~rule] == 20).all()  # the ring beside the rule is untouched
    top = np.flatnonzero(ring[:, 30])[0]
    assert (clean[top, 29:32] == 20).all()  # where the arc crosses the rule, it is kept
    assert (clean[55, 29:32] == 240).all() and (
        clean[55, 27:29] == 20
    ).all()  # beside it: the rule goes, not the stroke


def test_a_box_a_rule_crosses_is_read_again_and_the_surer_reading_kept() -> None:
    page, boxes = table_page()
    price = next(b for b in boxes if b.text == "110048.06")
    crossing = OcrBox("110048.9", (price.box[0], price.box[1], 1250 + 40, price.box[3]), 0.99)  # 06 over the rule
    others = [b for b in boxes if b is not price]
    asked = []

    def recognise(crops):
        asked.extend(crops)
        return ["110048.06"] * len(crops), [0.9] * len(crops)

    tables, read = read_page_tables(page, [*others, crossing], 1.0, recognise)
    assert len(asked) == 1 and asked[0].shape[1] > crossing.box[2] - crossing.box[0]  # only the crossed box
    assert tables[0][2][2] == "110048.06" and read[-1].text == "110048.06"  # to the fen: kept, though less sure
    tables, read = read_page_tables(page, [*others, crossing], 1.0, lambda crops: (["110048.9"], [0.5]))
    assert read[-1] == crossing  # not surer: the first reading stands
    assert read_page_tables(page, boxes, 1.0, lambda crops: pytest.fail("no box is crossed"))[0] == [ROWS]


@pytest.mark.slow
def test_the_page_worker_stores_the_table(tmp_path: Path) -> None:
    from archive.capture.pageproc import PageJob, process_page

    page, _ = table_page()
    page.save(tmp_path / "page.png")
    record = process_page(PageJob(1, str(tmp_path / "page.png"), "rapidocr", 200))
    assert len(record["tables"]) == 1
    assert [len(row) for row in record["tables"][0]] == [4, 4, 4, 4]
    assert record["tables"][0][1][2] == "112337.24"


def test_tiny_and_empty_pages() -> None:
    for size in ((8, 8), (40, 3000), (1600, 1000)):
        page = Image.new("RGB", size, (255, 255, 255))
        assert not has_ruling(page)
        assert read_tables(page, [], 1.0) == []
