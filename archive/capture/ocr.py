"""OCR engines behind one small interface, and the reading-order pass that turns
an engine's text boxes into lines.

Two real engines: RapidOCR (PP-OCR models bundled in the wheel, offline; the
default, far better on Chinese) and tesseract through pytesseract. Both run
single-threaded: pages are parallelised across processes instead, which was
measured 5-7x faster than oversubscribed threads on 2 cores.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from functools import cache
from typing import Protocol

import numpy as np
from PIL import Image

from archive.capture import backends
from archive.capture.backends import (
    DEFAULT_MODELS,
    OPENVINO_F32,
    REREAD_BELOW,
    ModelSettings,
    compile_openvino,
    has_bf16,
    int8_recogniser,
    rapidocr_backend,
    rapidocr_params,
)
from archive.capture.imaging import small_copy
from archive.capture.orientation import skew_degrees, stand_upright
from archive.han import join_han, script_counts

os.environ.setdefault("OMP_THREAD_LIMIT", "1")  # tesseract's OpenMP

# The recogniser's input widths in steps of this many px (RapidOcrEngine's width_step): with
# OpenVINO, 0.63 -> 0.39 CPU s/page in the recogniser at the same CER (README, the engine's options).
REC_WIDTH_STEP = 64


@dataclass
class OcrBox:
    """One detected text region as the engine read it."""

    text: str
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 in page-image pixels
    confidence: float  # 0-1


@dataclass
class OcrLine:
    text: str
    box: tuple[float, float, float, float]
    confidence: float
    parts: list[OcrBox] = field(default_factory=list)

    def to_json(self) -> dict:
        return asdict(self)


class OcrEngine(Protocol):
    name: str

    @property
    def version(self) -> str: ...

    def read(self, image: Image.Image) -> list[OcrBox]: ...


def timed(method):  # noqa: ANN001, ANN201 - a decorator for engine methods
    """Add the method's run time to the engine's ``model_seconds_by[method name]``: the
    throughput bench separates time in the OCR models from the pipeline's own overhead
    (``archive.capture.timing.model_seconds`` reads it)."""

    def wrapper(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        started = time.monotonic()
        try:
            return method(self, *args, **kwargs)
        finally:
            if not hasattr(self, "model_seconds_by"):
                self.model_seconds_by = {}
            spent = self.model_seconds_by.get(method.__name__, 0.0)
            self.model_seconds_by[method.__name__] = spent + time.monotonic() - started

    return wrapper


def _quad_to_box(quad: np.ndarray) -> tuple[float, float, float, float]:
    xs, ys = quad[:, 0], quad[:, 1]
    return (float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max()))


class RapidOcrEngine:
    """RapidOCR with its bundled PP-OCR models on onnxruntime, one thread.

    ``read_page`` detects text once on a small copy of the page and takes the
    layout evidence (orientation, skew) from those same boxes, then recognises
    each box from a larger copy: one detection per page instead of one for
    layout and one for OCR.
    """

    name = "rapidocr"
    DETECT_SIDE = 1024  # detector input: plenty for 200-300 dpi text, 2x cheaper than 2000
    READ_SIDE = 2000  # recogniser crops come from this copy (RapidOCR's own default)
    # A copy at least this long will do: a 300 dpi A4 page decoded at half size (1754 px)
    # instead of resampled from full size (dev set CER: see bench/ocr_quality.py)
    MIN_READ_SIDE = 1700
    LAYOUT_SIDE = 1280  # orientation alone (for another engine) needs less than reading

    def __init__(self, backend: str = "auto", rec_batch: int = 1, f32: tuple[str, ...] | None = None,
                 reread_below: float = REREAD_BELOW, width_step: int = REC_WIDTH_STEP,
                 rec_int8: bool = False) -> None:  # fmt: skip
        """``backend``: onnxruntime, openvino or auto (the ``ocr_backend`` setting, see
        ``rapidocr_backend``). ``rec_batch``: the most line crops recognised in one model run;
        only crops the model pads to the same width share a run (``_same_width_runs``).
        ``f32``: on OpenVINO, the models held to 32-bit floats (default ``OPENVINO_F32``).
        ``reread_below``: on OpenVINO with bf16 units, a line the bf16 recogniser reads with less
        confidence than this, or with a traditional-only character, is read again in 32-bit
        floats (the ``ocr_reread_below`` setting; 1 or more: every line in f32, 0: none).
        ``width_step``: the recogniser's input is padded to a width that is a multiple of this
        (0: none), so that line crops share input shapes (see ``_padded_to_step``).
        ``rec_int8``: on OpenVINO, the lines are read by the 8-bit recogniser (``INT8_RECOGNISER``,
        made by bench/quantize_recogniser.py; an option of bench/engine_options.py, not the
        pipeline's: README, the engine's options) and those it reads with less confidence than
        ``reread_below`` read again in f32; ``reread_below`` of 1 or more reads every line in f32."""
        import cv2
        from rapidocr import RapidOCR

        cv2.setNumThreads(1)
        self.backend = rapidocr_backend(backend)
        self.rec_batch = rec_batch
        self.reread_below = reread_below
        self._ocr = RapidOCR(params=rapidocr_params(self.backend))
        if width_step:
            recogniser = self._ocr._load_rec_model()
            recogniser.resize_norm_img = _padded_to_step(recogniser.resize_norm_img, width_step)
        self._exact = None  # the recogniser in 32-bit floats, for the lines read again
        self.lines_read_again = 0  # how many lines it has read again (bench/engine_options.py)
        self.rec_int8 = False  # whether the 8-bit recogniser reads the lines (engine_version says so)
        if self.backend == "openvino":
            f32 = OPENVINO_F32 if f32 is None else f32
            int8 = int8_recogniser() if rec_int8 and reread_below < 1 and "rec" not in f32 else None
            self.rec_int8 = int8 is not None
            if int8 is None and (reread_below >= 1 or not has_bf16()):  # every line in f32 (no bf16 units: all f32)
                f32 = tuple({*f32, "rec"})
            self._compile_again(f32, int8)
            if "rec" not in f32 and reread_below > 0:
                model = self._ocr._load_rec_model().session.model
                self._exact = compile_openvino(model, f32=True, shapes=backends.OPENVINO_SHAPE_CACHE)

    def _compile_again(self, f32: tuple[str, ...], int8: object | None = None) -> None:
        """Compile the recogniser, and the models in ``f32``, again with settings RapidOCR cannot
        pass. Precision: OpenVINO runs a model in bfloat16 where the CPU has bf16 units (AMX,
        AVX512-BF16); bf16 is what makes it fast, and it costs the recogniser a little accuracy
        (bench/engine_options.py), so the models in ``f32`` keep 32-bit floats (the recogniser's
        uncertain lines are read again in f32 instead: ``_reread``). Memory: it keeps the kernels
        of every input shape it has seen (1,000s by default) and each line crop is a new width, so
        the recogniser keeps only the last OPENVINO_SHAPE_CACHE (as fast: bench/engine_options.py).
        ``int8``: the 8-bit recogniser, compiled in place of RapidOCR's."""
        loaders = {"det": self._ocr._load_det_model, "cls": self._ocr._load_cls_model, "rec": self._ocr._load_rec_model}
        for name in sorted({"rec", *f32}):
            session = loaders[name]().session  # RapidOCR's OpenVINOInferSession: .model, .session
            shapes = backends.OPENVINO_SHAPE_CACHE if name == "rec" else None  # read now: the bench sets it
            model = int8 if name == "rec" and int8 is not None else session.model
            session.session = compile_openvino(model, name in f32, shapes)

    @property
    def version(self) -> str:
        return engine_version(self.name, self.backend, self.rec_int8)

    def read(self, image: Image.Image) -> list[OcrBox]:
        return self.read_page(image).boxes

    def read_page(self, image: Image.Image, page_size: tuple[int, int] | None = None) -> PageReading:
        """``page_size``: the master's size, when ``image`` is a smaller copy of it; the
        boxes come back in the master's (upright, straightened) pixels either way."""
        page_size = page_size or image.size
        # Only read from here on: an RGB image already at most READ_SIDE (the page worker's
        # work copy) is used as it is, not copied twice more.
        small_rgb = image.mode == "RGB" and max(image.size) <= self.READ_SIDE
        work = image if small_rgb else small_copy(image.convert("RGB"), self.READ_SIDE)
        upright = stand_upright(work, self._detect_scaled, _crop, self.upside_down_share)
        turn, work, quads, crops = upright.turn, upright.work, upright.quads, upright.crops
        if len(quads) == 0:
            return PageReading(turn, 0.0, [])
        skew = skew_degrees(quads)
        texts, scores = self.recognise_lines(crops)
        # Map boxes from the work copy into the upright, straightened page image.
        scale = max(page_size) / max(work.size)
        upright_quads = rotate_points(quads, skew, work.size) * scale
        boxes = [
            OcrBox(text=text, box=_quad_to_box(quad), confidence=float(score))
            for quad, text, score in zip(upright_quads, texts, scores)
            if text.strip() and score >= 0.5
        ]
        return PageReading(turn, skew, boxes)

    def orientation_and_skew(self, image: Image.Image) -> tuple[int, float]:
        """(turn, skew) of a page another engine will read (tesseract has no detector of
        its own that tells): counter-clockwise degrees (0/90/180/270) that stand the page
        upright, then the counter-clockwise degrees that straighten it."""
        small = small_copy(image.convert("RGB"), self.LAYOUT_SIDE)
        upright = stand_upright(small, lambda work: self.detect(np.asarray(work)), _crop, self.upside_down_share)
        return upright.turn, skew_degrees(upright.quads) if len(upright.quads) else 0.0

    def _detect_scaled(self, work: Image.Image) -> np.ndarray:
        small = small_copy(work, self.DETECT_SIDE)
        quads = self.detect(np.asarray(small))
        return quads * (work.width / small.width) if len(quads) else quads

    @timed
    def recognise_lines(self, crops: list[np.ndarray | Image.Image]) -> tuple[list[str], list[float]]:
        """Recognition only, one text line per image (no detection)."""
        arrays = [np.asarray(c) if isinstance(c, Image.Image) else c for c in crops]
        texts, scores = self._recognise(arrays)
        if self._exact is not None:
            self._reread(arrays, texts, scores)
        return texts, scores

    def _reread(self, arrays: list[np.ndarray], texts: list[str], scores: list[float]) -> None:
        """Read again in 32-bit floats, in place, the lines bf16 may have got wrong: those read
        with little confidence, and those with a traditional-only character (on the simplified
        pages of this domain a misread: 醫 for 医, 時 for 时, which f32 mostly reads right).
        bench/engine_options.py: all-bf16 made 2-7 more errors per ~10k characters than all-f32;
        re-reading the 3-5% of lines under 0.97 gave all-f32's CER on both dev sets."""
        again = [i for i, (text, score) in enumerate(zip(texts, scores))
                 if score < self.reread_below or script_counts(text)[1]]  # fmt: skip
        self.lines_read_again += len(again)
        if not again:
            return
        session = self._ocr._load_rec_model().session
        fast, session.session = session.session, self._exact
        try:
            exact_texts, exact_scores = self._recognise([arrays[i] for i in again])
        finally:
            session.session = fast
        for i, text, score in zip(again, exact_texts, exact_scores):
            texts[i], scores[i] = text, score

    def _recognise(self, arrays: list[np.ndarray]) -> tuple[list[str], list[float]]:
        """The recogniser as it is compiled now, one line per run or in runs of like width."""
        from rapidocr.ch_ppocr_rec.typings import TextRecInput

        recogniser = self._ocr._load_rec_model()
        recogniser.rec_batch_num = self.rec_batch
        if self.rec_batch == 1:  # one line per run: RapidOCR's own loop
            result = recogniser(TextRecInput(img=arrays))
            return list(result.txts or []), [float(s) for s in (result.scores or [])]
        texts: list[str] = [""] * len(arrays)
        scores: list[float] = [0.0] * len(arrays)
        for run in _same_width_runs(arrays, self.rec_batch):
            result = recogniser(TextRecInput(img=[arrays[i] for i in run]))
            for i, text, score in zip(run, result.txts or [], result.scores or []):
                texts[i], scores[i] = text, float(score)
        return texts, scores

    @timed
    def detect(self, rgb: np.ndarray) -> np.ndarray:
        """Text-region quadrilaterals only (no recognition)."""
        result = self._ocr(rgb, use_det=True, use_cls=False, use_rec=False)
        boxes = getattr(result, "boxes", None)
        return np.zeros((0, 4, 2)) if boxes is None else np.asarray(boxes, dtype=np.float32)

    @timed
    def upside_down_share(self, crops: list[np.ndarray]) -> float:
        """Share of text-line crops the PP-OCR direction classifier calls 180°."""
        if not crops:
            return 0.0
        classifier = self._ocr._load_cls_model()  # the public call rotates crops but hides the labels
        labels = classifier(list(crops)).cls_res or []
        flipped = sum(1 for label, score in labels if str(label) == "180" and score > 0.6)
        return flipped / len(crops)


REC_HEIGHT, REC_MIN_WIDTH = 48, 320  # the recogniser's input: 48 px high, padded to at least 320 wide


def _padded_to_step(resize: Callable[[np.ndarray, float], np.ndarray],
                    step: int) -> Callable[[np.ndarray, float], np.ndarray]:  # fmt: skip
    """RapidOCR's ``resize_norm_img`` (a line crop scaled to 48 px high, padded on the right to the
    width ``48 * max_wh_ratio``), padding instead to the next multiple of ``step`` px. Every crop is
    a width of its own, and OpenVINO compiles kernels for every input shape it meets: with widths
    in steps, lines share shapes (a batch pads its lines the same way)."""

    def resize_norm_img(image: np.ndarray, max_wh_ratio: float) -> np.ndarray:
        width = math.ceil(int(REC_HEIGHT * max_wh_ratio) / step) * step
        return resize(image, (width + 0.5) / REC_HEIGHT)  # + 0.5: int() of the product is width again

    return resize_norm_img


def _same_width_runs(crops: list[np.ndarray], most: int) -> list[list[int]]:
    """Indexes of ``crops`` in runs of at most ``most`` that the recogniser pads to (nearly) one width:
    a batch is padded to its widest line, so only lines within 10% of each other's width (or all
    narrower than the model's 320 px minimum, padded to it anyway) share a run."""
    widths = [max(REC_MIN_WIDTH, REC_HEIGHT * c.shape[1] / max(1, c.shape[0])) for c in crops]
    runs: list[list[int]] = []
    for i in sorted(range(len(crops)), key=widths.__getitem__):
        if runs and len(runs[-1]) < most and widths[i] <= 1.1 * widths[runs[-1][0]]:
            runs[-1].append(i)
        else:
            runs.append([i])
    return runs


@dataclass
class PageReading:
    turn: int  # counter-clockwise degrees that stand the page upright
    skew: float  # further counter-clockwise degrees that straighten it
    boxes: list[OcrBox]  # in the upright, straightened page's pixels


def _crop(arr: np.ndarray, quad: np.ndarray) -> np.ndarray:
    from rapidocr.utils.process_img import get_rotate_crop_image

    return get_rotate_crop_image(arr, quad.astype(np.float32).copy())


def rotate_points(points: np.ndarray, angle: float, size: tuple[int, int]) -> np.ndarray:
    """Where points of an image of ``size`` land after PIL's
    ``rotate(angle, expand=True)`` (counter-clockwise degrees)."""
    if abs(angle) < 0.05:
        return points
    width, height = size
    theta = np.radians(angle)
    cos, sin = np.cos(theta), np.sin(theta)
    new_w = abs(width * cos) + abs(height * sin)
    new_h = abs(width * sin) + abs(height * cos)
    dx = points[..., 0] - width / 2
    dy = points[..., 1] - height / 2
    out = np.empty_like(points)
    out[..., 0] = cos * dx + sin * dy + new_w / 2
    out[..., 1] = -sin * dx + cos * dy + new_h / 2
    return out


class TesseractEngine:
    """tesseract (chi_sim+eng) through pytesseract, OMP_THREAD_LIMIT=1."""

    name = "tesseract"

    def __init__(self, lang: str = "chi_sim+eng") -> None:
        self.lang = lang

    @property
    def version(self) -> str:
        return engine_version(self.name)

    @timed
    def read(self, image: Image.Image) -> list[OcrBox]:
        import pytesseract

        data = pytesseract.image_to_data(
            image.convert("RGB"), lang=self.lang, config="--psm 3", output_type=pytesseract.Output.DICT
        )
        lines: dict[tuple[int, int, int], list[int]] = {}
        for i, word in enumerate(data["text"]):
            if word.strip() and float(data["conf"][i]) >= 0:
                key = (data["block_num"][i], data["par_num"][i], data["line_num"][i])
                lines.setdefault(key, []).append(i)
        boxes = []
        for indexes in lines.values():
            x0 = min(data["left"][i] for i in indexes)
            y0 = min(data["top"][i] for i in indexes)
            x1 = max(data["left"][i] + data["width"][i] for i in indexes)
            y1 = max(data["top"][i] + data["height"][i] for i in indexes)
            text = join_han(" ".join(data["text"][i] for i in indexes))
            conf = sum(float(data["conf"][i]) for i in indexes) / len(indexes) / 100
            boxes.append(OcrBox(text=text, box=(x0, y0, x1, y1), confidence=conf))
        return boxes


ENGINES = {"rapidocr": RapidOcrEngine, "tesseract": TesseractEngine}


@cache
def engine_version(name: str, backend: str = "auto", rec_int8: bool = False) -> str:
    """Engine, model and backend versions for the process metadata, without loading models
    (``backend``: as ``rapidocr_backend`` resolves it; ``rec_int8``: the 8-bit recogniser reads the lines)."""
    from importlib.metadata import version

    if name == "rapidocr":
        runs_on = rapidocr_backend(backend)
        int8 = ", 8-bit recogniser" if rec_int8 else ""
        return f"rapidocr {version('rapidocr')} PP-OCR ({runs_on} {version(runs_on)}{int8})"
    import pytesseract

    return f"tesseract {pytesseract.get_tesseract_version()} chi_sim+eng (pytesseract {version('pytesseract')})"


def get_engine(name: str, models: ModelSettings = DEFAULT_MODELS) -> OcrEngine:
    """One engine per process and settings: models load once, not per page. ``models``: the
    settings the page came with; pages of batches with different settings get different
    engines, "auto" and the backend it picks the same one."""
    if name not in ENGINES:
        raise ValueError(f"unknown OCR engine {name!r}; choose one of {', '.join(ENGINES)}")
    # Only PP-OCR's models have these settings: tesseract is one engine whatever they say.
    return _engine(name, replace(models, backend=rapidocr_backend(models.backend)) if name == "rapidocr" else None)


@cache
def _engine(name: str, models: ModelSettings | None) -> OcrEngine:
    if models is None:
        return ENGINES[name]()
    return ENGINES[name](models.backend, reread_below=models.reread_below)


def reading_order(boxes: list[OcrBox]) -> list[OcrLine]:
    """Group boxes into lines top-to-bottom, left-to-right (on a deskewed page).

    A box joins a line when it overlaps the line vertically by more than half the
    smaller height, so the cells of one table row read as one line. Boxes within a
    line are joined directly, or with one space across a wide gap (table cells).
    """
    rows: list[list[OcrBox]] = []
    for box in sorted(boxes, key=lambda b: (b.box[1] + b.box[3]) / 2):
        y0, y1 = box.box[1], box.box[3]
        for row in rows:
            ry0 = sum(b.box[1] for b in row) / len(row)
            ry1 = sum(b.box[3] for b in row) / len(row)
            overlap = min(y1, ry1) - max(y0, ry0)
            if overlap > 0.5 * min(y1 - y0, ry1 - ry0):
                row.append(box)
                break
        else:
            rows.append([box])
    lines = []
    for row in rows:
        row.sort(key=lambda b: b.box[0])
        text = join_han(row[0].text)
        for left, right in zip(row, row[1:]):
            height = max(1.0, min(left.box[3] - left.box[1], right.box[3] - right.box[1]))
            gap = right.box[0] - left.box[2]
            text += (" " if gap > 0.8 * height else "") + join_han(right.text)
        box = (
            min(b.box[0] for b in row),
            min(b.box[1] for b in row),
            max(b.box[2] for b in row),
            max(b.box[3] for b in row),
        )
        weight = sum(max(1, len(b.text)) for b in row)
        confidence = sum(b.confidence * max(1, len(b.text)) for b in row) / weight
        lines.append(OcrLine(text=text, box=box, confidence=round(confidence, 4), parts=row))
    lines.sort(key=lambda line: (line.box[1] + line.box[3]) / 2)
    return lines
