"""Regenerate the small scanned-PDF fixtures in this folder.

The fixtures are committed, so tests need neither fonts nor this script; run
it (needs fonts-noto-cjk or fonts-wqy-zenhei) only to change them:

    python tests/resources/make_fixtures.py
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter, ImageFont

HERE = Path(__file__).parent
DPI = 150
A4 = (1240, 1754)  # A4 at 150 dpi
FONTS = [
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
]

AWARD = [
    "中标（成交）通知书",
    "南宁新宇建设工程有限公司：",
    "南宁市公共资源交易中心的南宁市排水管网改造工程",
    "（项目编号：NNZC2023-G1-004567-KWZB）于2023年5月12日",
    "经评标委员会评审并依法公示，确定你单位为中标人，",
    "中标金额为¥1,234,567.89元（大写：人民币壹佰贰拾叁万",
    "肆仟伍佰陆拾柒元捌角玖分）。",
    "采购人：南宁市住房和城乡建设局",
    "代理机构：广西正和招标代理有限公司",
    "2023年5月12日",
]
NOTICE = [
    "关于做好档案数字化工作的通知",
    "各交易中心：",
    "为推进纸质档案与电子档案单轨运行，",
    "请于年底前完成历史档案的扫描和归档工作。",
    "项目编号：GXZC2023-G1-001234-KWZB",
    "2023年6月1日",
]


def _font(size: int) -> ImageFont.FreeTypeFont:
    for path in FONTS:
        if Path(path).exists():
            return ImageFont.truetype(path, size)
    raise SystemExit("install fonts-noto-cjk (or fonts-wqy-zenhei) to regenerate the fixtures")


def render_page(lines: list[str], seal: str | None = None, skew: float = 0.0, turn: int = 0) -> Image.Image:
    page = Image.new("RGB", A4, (246, 243, 236))
    draw = ImageDraw.Draw(page)
    y = 150
    for i, line in enumerate(lines):
        size = 40 if i == 0 else 30
        x = (A4[0] - draw.textlength(line, font=_font(size))) / 2 if i == 0 else 110
        draw.text((x, y), line, font=_font(size), fill=(30, 30, 30))
        y += size + 34
    if seal:  # a round official seal: name set upright around the upper arc, a star inside
        cx, cy, r = 900, y - 60, 125
        red = (200, 60, 60)
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), outline=red, width=6)
        for i, ch in enumerate(seal):
            angle = math.radians(200 + i * 140 / (len(seal) - 1))
            gx, gy = cx + 0.72 * r * math.cos(angle), cy + 0.72 * r * math.sin(angle)
            draw.text((gx - 15, gy - 15), ch, font=_font(30), fill=red)
        star = [(cx + 40 * math.cos(math.radians(-90 + k * 144)), cy + 40 * math.sin(math.radians(-90 + k * 144)))
                for k in range(5)]  # fmt: skip
        draw.polygon(star, fill=red)
    rng = random.Random(7)
    for _ in range(1500):  # scanner speckle
        px, py = rng.randrange(A4[0]), rng.randrange(A4[1])
        draw.point((px, py), fill=(120, 120, 120))
    page = page.filter(ImageFilter.GaussianBlur(0.6))
    if skew:
        page = page.rotate(skew, resample=Image.Resampling.BICUBIC, fillcolor=(246, 243, 236))
    if turn:
        page = page.rotate(turn, expand=True)
    return page


def blank_page() -> Image.Image:
    page = Image.new("RGB", A4, (244, 240, 232))
    draw = ImageDraw.Draw(page)
    rng = random.Random(3)
    for _ in range(3000):
        draw.point((rng.randrange(A4[0]), rng.randrange(A4[1])), fill=(150, 150, 150))
    return page.filter(ImageFilter.GaussianBlur(0.6))


def save_pdf(pages: list[Image.Image], path: Path) -> None:
    """One JPEG per page, as scanners write them (Pillow embeds JPEG as DCTDecode)."""
    pages[0].save(path, format="PDF", save_all=True, append_images=pages[1:], resolution=DPI, quality=80)


def main() -> None:
    save_pdf([render_page(AWARD, seal="南宁市住建局", skew=1.2), blank_page()], HERE / "award-notice.pdf")
    save_pdf([render_page(NOTICE, turn=180)], HERE / "notice-upside-down.pdf")
    truth = {
        "award-notice.pdf": {"pages": [{"text": "\n".join(AWARD), "blank": False}, {"text": "", "blank": True}]},
        "notice-upside-down.pdf": {"pages": [{"text": "\n".join(NOTICE), "blank": False, "rotation": 180}]},
    }
    (HERE / "truth.json").write_text(json.dumps(truth, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    (HERE / "manifest.csv").write_text(
        "file,project_code,project_name,transaction_type,doc_type,pages\n"
        "award-notice.pdf,NNZC2023-G1-004567-KWZB,南宁市排水管网改造工程,政府采购,award,2\n",
        encoding="utf-8",
    )
    print("wrote fixtures to", HERE)


if __name__ == "__main__":
    main()
