"""A seal scanned in black and white is told from text by its shape: its ring text is
kept out of the page text, the lines under it are not."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from archive.capture.seals import Ring, find_rings

FONT = "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"
DPI = 150
CX, CY, R = 700, 900, 120  # a 40 mm seal at 150 dpi


def bitonal_page_with_seal() -> Image.Image:
    if not Path(FONT).exists():
        pytest.skip("no CJK font (fonts-noto-cjk)")
    page = Image.new("L", (1240, 1754), 255)
    draw = ImageDraw.Draw(page)
    font = ImageFont.truetype(FONT, 30)
    for i in range(14):
        draw.text((110, 300 + i * 50), "甲乙双方经协商一致，签订本合同。合同总价款为贰佰万元。", font=font, fill=0)
    draw.ellipse((CX - R, CY - R, CX + R, CY + R), outline=0, width=5)
    for i, ch in enumerate("柳州市机关事务管理局"):  # the name around the upper arc
        angle = math.radians(200 + i * 140 / 9)
        draw.text((CX + 0.75 * R * math.cos(angle) - 14, CY + 0.75 * R * math.sin(angle) - 14), ch, font=font, fill=0)
    return page.convert("1").convert("RGB")


def test_a_black_seal_is_found_by_its_ring() -> None:
    rings = find_rings(bitonal_page_with_seal(), DPI)
    assert len(rings) == 1
    ring = rings[0]
    assert abs(ring.x - CX) < 8 and abs(ring.y - CY) < 8 and abs(ring.r - R) < 10


def test_ring_text_is_told_from_lines_under_the_seal() -> None:
    ring = Ring(CX, CY, R)
    angle = math.radians(220)
    x, y = CX + 0.75 * R * math.cos(angle), CY + 0.75 * R * math.sin(angle)
    assert ring.holds_ring_text((x - 15, y - 15, x + 15, y + 15))  # one character of the name
    assert not ring.holds_ring_text((110, CY - 15, 1000, CY + 15))  # a line of the page under the seal
    assert not ring.holds_ring_text((CX - 40, CY - 15, CX + 40, CY + 15))  # a date set in the middle


def test_prose_has_no_rings() -> None:
    page = bitonal_page_with_seal()
    ImageDraw.Draw(page).ellipse((CX - R - 8, CY - R - 8, CX + R + 8, CY + R + 8), fill=(255, 255, 255))
    assert find_rings(page, DPI) == []


def test_faded_text_tinted_red_under_a_red_seal_is_not_painted_out() -> None:
    from archive.capture.seals import Seal, without_seals

    page = Image.new("RGB", (600, 600), (246, 243, 236))
    draw = ImageDraw.Draw(page)
    draw.ellipse((150, 150, 450, 450), outline=(225, 120, 120), width=8)  # the seal's ring
    draw.ellipse((260, 260, 340, 340), fill=(225, 120, 120))  # its star, as a blob
    for x in range(120, 480, 24):  # strokes of faded text that a q30 JPEG tinted red, under the ring
        draw.rectangle((x, 430, x + 3, 470), fill=(130, 90, 90))
    cleaned = np.asarray(without_seals(page, [Seal((140, 140, 460, 460))]))
    assert (cleaned[440:460, 121:123] == (130, 90, 90)).all()  # the text stays
    assert (cleaned[440:460, 289:291] == (130, 90, 90)).all()  # where the ring crosses it too
    assert (cleaned[290:310, 290:310] == (246, 243, 236)).all()  # the seal's ink goes


def test_tiny_or_odd_pages_have_no_rings() -> None:
    assert find_rings(Image.new("RGB", (20, 30), (255, 255, 255)), DPI) == []
    assert find_rings(Image.new("RGB", (1240, 1754), (255, 255, 255)), 5) == []
