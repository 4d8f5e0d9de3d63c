"""A blank back of a bound volume: a dark gutter shadow (ink to the ink check) and the
front's title faintly showing through, mirrored. It is blank."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageFont, ImageOps

FONT = "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"


@pytest.mark.slow
def test_a_gutter_and_show_through_make_no_page_of_content(tmp_path: Path) -> None:
    from archive.capture.pageproc import PageJob, process_page

    if not Path(FONT).exists():
        pytest.skip("no CJK font (fonts-noto-cjk)")
    page = Image.new("RGB", (1240, 1754), (238, 238, 236))
    draw = ImageDraw.Draw(page)
    draw.text((350, 150), "中标（成交）通知书", font=ImageFont.truetype(FONT, 40), fill=(222, 222, 220))
    page = ImageOps.mirror(page)  # the front's title, seen from the back
    draw = ImageDraw.Draw(page)
    for x in range(1110, 1200):  # the gutter's shadow, darkest at the binding
        grey = int(236 - (x - 1110) * 1.6)
        draw.line((x, 90, x, 1754), fill=(grey, grey, grey))
    page.save(tmp_path / "back.png")
    record = process_page(PageJob(1, str(tmp_path / "back.png"), "rapidocr", 150))
    assert record["ink"] > 0.003  # the ink check alone would call it a page of content
    assert record["blank"] and record["text"] == "" and record.get("show_through")
