"""The OCR engine's options, A/B on the same pages in one process: CPU seconds inside the
models per page (detect, recognise_lines, upside_down_share), and the CER of each option's
text on the same truth. CPU time (``time.process_time``), not wall time: each engine runs on
one thread, so this holds on a machine other work is loading, where wall time does not.

Each page image is decoded once, as a page worker decodes it (``load_page_image`` at
``MIN_READ_SIDE``, then the ``READ_SIDE`` work copy); the options then read it in turn,
``--repeat`` times, and the median per page is kept. The CER here is the engine's lines
in reading order (no seal removal, no text clean-up), to compare options with each other,
not with bench/ocr_quality.py's whole-pipeline figure.

    python bench/engine_options.py [--set DIR] [--pages N] [--repeat 3] [--options ort,ov,ort-b8,ov-b8]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image
from pypdf import PdfReader

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))
from ocr_quality import DEFAULT_DATA, clean, levenshtein  # noqa: E402

from archive.capture.imaging import small_copy  # noqa: E402
from archive.capture.ocr import RapidOcrEngine, reading_order  # noqa: E402
from archive.capture.pageproc import load_page_image  # noqa: E402
from archive.capture.pages import extract_pages  # noqa: E402

# option name -> (backend, recogniser batch, detector side); "openvino-f32": OpenVINO held to
# 32-bit floats (on a CPU with bf16 units its default is bfloat16: which of the two is the gain?)
OPTIONS = {
    "ort": ("onnxruntime", 1, 1024),
    "ov": ("openvino", 1, 1024),
    "ov-f32": ("openvino-f32", 1, 1024),
    "ort-b8": ("onnxruntime", 8, 1024),
    "ov-b8": ("openvino", 8, 1024),
    "ort-d896": ("onnxruntime", 1, 896),
    "ov-b8-d896": ("openvino", 8, 896),
}
METHODS = ("detect", "recognise_lines", "upside_down_share")


def make_engine(backend: str, batch: int, side: int) -> RapidOcrEngine:
    if backend != "openvino-f32":
        engine = RapidOcrEngine(backend, rec_batch=batch)
    else:  # RapidOCR's OpenVINO settings have no precision key: its Core is given one here
        import openvino
        from rapidocr.inference_engine.openvino import main as ov_main

        class Fp32Core(openvino.Core):
            def __init__(self) -> None:
                super().__init__()
                self.set_property("CPU", {"INFERENCE_PRECISION_HINT": "f32"})

        original, ov_main.Core = ov_main.Core, Fp32Core
        try:
            engine = RapidOcrEngine("openvino", rec_batch=batch)
            engine.read_page(Image.new("RGB", (600, 400), "white"))  # models load lazily: load them now
            engine._ocr._load_rec_model()
            engine._ocr._load_cls_model()
        finally:
            ov_main.Core = original
    engine.DETECT_SIDE = side
    return engine


def cpu_timed(engine: RapidOcrEngine, spent: dict[str, float]) -> None:
    """Charge the CPU seconds of each model method to ``spent`` (instance attributes shadow
    the methods, so the engine's own calls go through them too)."""
    for name in METHODS:
        method = getattr(engine, name)

        def wrapper(*args, _method=method, _name=name, **kwargs):  # noqa: ANN002, ANN003, ANN202
            started = time.process_time()
            try:
                return _method(*args, **kwargs)
            finally:
                spent[_name] = spent.get(_name, 0.0) + time.process_time() - started

        setattr(engine, name, wrapper)


def pages_with_truth(data: Path, limit: int, out: Path) -> list[tuple[str, object, str]]:
    """(label, work copy, truth text) of the set's non-blank pages."""
    pages = []
    for pdf in sorted((data / "scans").glob("*.pdf")):
        truth = json.loads((data / "truth" / f"{pdf.stem}.json").read_text())["pages"]
        for image in extract_pages(PdfReader(pdf), pdf, out / pdf.stem):
            want = truth[image.number - 1]
            if want["blank"] or len(pages) >= limit:
                continue
            loaded = load_page_image(str(image.path), image.number, at_least=RapidOcrEngine.MIN_READ_SIDE)
            work = small_copy(loaded, RapidOcrEngine.READ_SIDE)  # as the page worker makes it (a no-op if small)
            pages.append((f"{pdf.stem} p{image.number}", work, clean(want["text"])))
    return pages


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", dest="data", type=Path, default=DEFAULT_DATA, help="labelled scan set")
    parser.add_argument("--pages", type=int, default=12, help="at most this many non-blank pages")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--options", default="ort,ov,ort-b8,ov-b8", help=f"of: {', '.join(OPTIONS)}")
    args = parser.parse_args()
    names = args.options.split(",")
    engines = {}
    for name in names:
        engines[name] = make_engine(*OPTIONS[name])
    pages = pages_with_truth(args.data, args.pages, Path(tempfile.mkdtemp(prefix="engine-options-")))
    for engine in engines.values():  # load the models and compile their kernels before timing
        engine.read_page(pages[0][1])
    cpu: dict[str, list[dict[str, float]]] = {name: [] for name in names}
    errors = {name: 0 for name in names}
    for _label, work, truth in pages:
        samples: dict[str, list[dict[str, float]]] = {name: [] for name in names}
        for _ in range(args.repeat):
            for name, engine in engines.items():  # interleaved: each option sees the same load
                spent: dict[str, float] = {}
                cpu_timed(engine, spent)
                engine.read_page(work)
                samples[name].append(spent)
        for name in names:
            cpu[name].append({m: statistics.median(s.get(m, 0.0) for s in samples[name]) for m in METHODS})
            text = "".join(line.text for line in reading_order(engines[name].read_page(work).boxes))
            errors[name] += levenshtein(truth, clean(text))
    length = sum(len(truth) for _l, _w, truth in pages)
    print(f"{len(pages)} pages, median of {args.repeat} per page, CPU seconds per page inside the models:")
    for name in names:
        per = {m: sum(p[m] for p in cpu[name]) / len(pages) for m in METHODS}
        print(f"  {name:12s} {engines[name].version:60s} total {sum(per.values()):.3f} s  "
              + "  ".join(f"{m} {v:.3f}" for m, v in per.items())
              + f"   CER {100 * errors[name] / max(1, length):.2f}%")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
