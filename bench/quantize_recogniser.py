"""Make the 8-bit recogniser that OpenVINO runs (archive/capture/models/): PP-OCRv6's recogniser,
as RapidOCR bundles it, quantized after training by NNCF on text lines rendered here.

Why: on CPUs without AMX (AMD's among them) the bf16 recogniser is most of a page's model
time, and an 8-bit one is the next step down. Measured (README, "The engine's options"): on
the dev set it reads ~20% faster at the same CER, but on the hard set equal CER needs so many
lines read again in f32 that little is saved, so the pipeline does not use it; this script and
the ``int8...`` options of bench/engine_options.py are there to measure it again (another CPU,
a better calibration). The calibration lines are synthetic (this domain's phrases, two CJK
fonts, paper tones, speckle, blur, bitonal and low-resolution copies): no labelled scan set is
used to make the model, and every set measures it unseen. The model files are not committed.

NNCF is needed only here:

    .venv/bin/pip install nncf && .venv/bin/python bench/quantize_recogniser.py
    .venv/bin/python bench/engine_options.py --options default,int8,int8-reread990
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from archive.capture.backends import INT8_RECOGNISER  # noqa: E402
from archive.capture.ocr import REC_HEIGHT, REC_MIN_WIDTH, RapidOcrEngine  # noqa: E402

NOTO = "/usr/share/fonts/opentype/noto/"
FONTS = [NOTO + "NotoSansCJK-Regular.ttc", NOTO + "NotoSerifCJK-Regular.ttc"]
PLACES = ["南宁", "柳州", "桂林", "梧州", "北海", "玉林", "百色", "河池", "来宾", "崇左"]
FIRMS = ["建设工程", "建筑安装", "市政工程", "信息技术", "医疗器械", "环境科技", "物业服务", "交通设施"]
KINDS = ["有限公司", "有限责任公司", "股份有限公司", "集团有限公司"]
TEMPLATES = [
    "项目编号：{code}",
    "项目名称：{place}市{thing}采购项目",
    "采购人：{place}市{office}",
    "中标（成交）供应商：{firm}",
    "中标金额：人民币{amount}元（大写：{capital}）",
    "开标时间：{date} 09:30",
    "公告期限：自本公告发布之日起{days}个工作日",
    "投标人名称 {firm} 投标报价 {amount}",
    "{n}. {firm}",
    "评标委员会按照招标文件规定的评标方法和标准进行评审",
    "合同签订日期：{date}",
    "联系人：{name} 电话：0771-{phone}",
    "{place}市公共资源交易中心",
    "本项目预算金额为{amount}万元，最高限价{amount}万元",
    "质量标准：合格  工期：{days}日历天",
]
THINGS = ["办公设备", "道路改造", "医疗设备", "绿化养护", "校舍维修", "信息化平台", "污水管网"]
OFFICES = ["教育局", "卫生健康委员会", "住房和城乡建设局", "交通运输局", "人民医院"]
CAPITALS = "零壹贰叁肆伍陆柒捌玖拾佰仟万亿元角分整"
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高"


def line_text(rng: random.Random) -> str:
    place = rng.choice(PLACES)
    firm = f"{rng.choice(PLACES)}{rng.choice(['市', ''])}{rng.choice(['华', '正', '信', '达', '恒'])}" \
           f"{rng.choice(['泰', '源', '通', '诚', '安'])}{rng.choice(FIRMS)}{rng.choice(KINDS)}"  # fmt: skip
    return rng.choice(TEMPLATES).format(
        code=f"{rng.choice(['NNZC', 'LZZC', 'GXZC'])}{rng.randint(2018, 2024)}-G{rng.randint(1, 3)}-"
             f"{rng.randint(0, 999999):06d}",
        place=place, thing=rng.choice(THINGS), office=rng.choice(OFFICES), firm=firm, n=rng.randint(1, 9),
        amount=f"{rng.randint(1, 99_999_999) / 100:,.2f}", capital="".join(rng.choices(CAPITALS, k=rng.randint(6, 14))),
        date=f"{rng.randint(2018, 2024)}年{rng.randint(1, 12)}月{rng.randint(1, 28)}日", days=rng.randint(3, 365),
        name=rng.choice(SURNAMES) + rng.choice(SURNAMES[::-1]) + rng.choice("明华强伟芳军"),
        phone=rng.randint(1_000_000, 9_999_999),
    )  # fmt: skip


def line_image(text: str, rng: random.Random) -> np.ndarray:
    """One text line as a page worker crops it: RGB, a few pixels of paper round the ink."""
    font = ImageFont.truetype(rng.choice(FONTS), rng.randint(22, 44))
    left, top, right, bottom = font.getbbox(text)
    pad = rng.randint(2, 8)
    paper = tuple(rng.randint(215, 250) for _ in range(3))
    image = Image.new("RGB", (right - left + 2 * pad, bottom - top + 2 * pad), paper)
    ink = rng.randint(10, 80)
    ImageDraw.Draw(image).text((pad - left, pad - top), text, font=font, fill=(ink, ink, ink))
    image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.2, 1.0)))
    if rng.random() < 0.3:  # a low-resolution scan, enlarged again
        small = image.resize((max(1, image.width // 2), max(1, image.height // 2)), Image.Resampling.BILINEAR)
        image = small.resize(image.size, Image.Resampling.BILINEAR)
    noise = np.random.default_rng(rng.randint(0, 2**31)).standard_normal((image.height, image.width, 1))
    pixels = np.asarray(image).astype(np.int16) + (rng.randint(3, 12) * noise).astype(np.int16)
    pixels = np.clip(pixels, 0, 255).astype(np.uint8)
    if rng.random() < 0.25:  # a bitonal scan
        pixels = np.where(pixels.mean(axis=2, keepdims=True) < 140, 0, 255).repeat(3, axis=2).astype(np.uint8)
    return pixels


def recogniser_input(recogniser: object, line: np.ndarray) -> np.ndarray:
    """The tensor ``recogniser`` (the pipeline engine's, width steps included) is given for one
    line run alone (RapidOCR's TextRecognizer: a run is padded to its widest line, at least 320 px)."""
    height, width = line.shape[:2]
    return recogniser.resize_norm_img(line, max(REC_MIN_WIDTH / REC_HEIGHT, width / height))[None]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=400, help="synthetic text lines to calibrate on")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    import nncf
    import openvino
    import rapidocr

    rng = random.Random(args.seed)
    recogniser = RapidOcrEngine("onnxruntime")._ocr._load_rec_model()  # its input, whatever the backend
    data = [recogniser_input(recogniser, line_image(line_text(rng), rng)) for _ in range(args.lines)]
    source = Path(rapidocr.__file__).parent / "models" / "PP-OCRv6_rec_small.onnx"
    model = openvino.Core().read_model(source)
    # TRANSFORMER: SVTR's attention blocks keep their sensitive ops in floats (the default
    # preset quantized them too: CER 1.45% -> 6.08% on the dev set)
    quantized = nncf.quantize(model, nncf.Dataset(data), subset_size=len(data), preset=nncf.QuantizationPreset.MIXED,
                              model_type=nncf.ModelType.TRANSFORMER)  # fmt: skip
    INT8_RECOGNISER.parent.mkdir(parents=True, exist_ok=True)
    openvino.save_model(quantized, INT8_RECOGNISER)
    print(f"{INT8_RECOGNISER} from {source.name}: {len(data)} synthetic lines, seed {args.seed}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
