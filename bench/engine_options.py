"""The OCR engine's options, A/B on the same pages in one process: CPU seconds inside the
models per page (detect, recognise_lines, upside_down_share), and the CER of each option's
text on the same truth. CPU time (``time.process_time``), not wall time: each engine runs on
one thread, so this holds on a machine other work is loading, where wall time does not.

Each page image is decoded once, as a page worker decodes it (``load_page_image`` at
``MIN_READ_SIDE``, then the ``READ_SIDE`` work copy); the options then read it in turn,
``--repeat`` times, and the median per page is kept. The CER here is the engine's lines
in reading order (no seal removal, no text clean-up), to compare options with each other,
not with bench/ocr_quality.py's whole-pipeline figure.

``--memory`` instead reads the pages in one fresh process per option and prints its peak
RSS after the first page and after all of them (one page worker's share of the bound).

    python bench/engine_options.py [--set DIR] [--pages N] [--repeat 3] [--options ort,ov-recf32,default] [--memory]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pypdf import PdfReader

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))
from ocr_quality import DEFAULT_DATA, clean, levenshtein  # noqa: E402

from archive.capture import backends  # noqa: E402
from archive.capture.imaging import small_copy  # noqa: E402
from archive.capture.ocr import RapidOcrEngine, reading_order  # noqa: E402
from archive.capture.pageproc import load_page_image  # noqa: E402
from archive.capture.pages import extract_pages  # noqa: E402

# option name -> RapidOcrEngine's arguments, and "detect_side": the detector's input as it is,
# at most this long (default: the DETECT_SIDE copy, scaled by RapidOCR to a short side >= 736).
# OpenVINO's default on a CPU with bf16 units (AMX, AVX512-BF16) is bfloat16: "ov" is all bf16,
# "ov-f32" none, "ov-recf32" the recogniser in f32 for every line, "ov-rereadNN" the recogniser
# in bf16 with the lines it reads at confidence below 0.NN (or with a traditional-only character)
# read again in f32.
# "default": the engine as the pipeline makes it (RapidOcrEngine's defaults).
OV_BF16 = {"backend": "openvino", "f32": (), "reread_below": 0.0, "width_step": 0}
OPTIONS: dict[str, dict] = {
    "default": {},
    "ort": {"backend": "onnxruntime", "width_step": 0},
    "ov": OV_BF16,
    "ov-f32": {**OV_BF16, "f32": ("det", "cls", "rec")},
    "ov-recf32": {**OV_BF16, "f32": ("rec",)},
}
OPTIONS.update({f"{name}-b8": {**OPTIONS[name], "rec_batch": 8} for name in list(OPTIONS)[1:]})
OPTIONS.update({f"ov-reread{n}": {**OV_BF16, "reread_below": n / 100} for n in (90, 95, 97, 98, 99)})
OPTIONS.update({f"ov-reread98-d{n}": {**OPTIONS["ov-reread98"], "detect_side": n} for n in (1024, 896, 768, 640)})
# "-wN": the recogniser's input padded to a width in steps of N px (RapidOcrEngine's width_step)
OPTIONS.update({f"{name}-w{n}": {**OPTIONS[name], "width_step": n} for name in ("ort", "ov", "ov-recf32", "ov-reread97",
                "ov-reread98") for n in (16, 32, 64, 128, 256)})  # fmt: skip
# "int8...": the 8-bit recogniser (bench/quantize_recogniser.py makes it); lines under 0.97
# (0.NNN; none) read again in f32
OPTIONS["int8"] = {"rec_int8": True}
OPTIONS["int8-noreread"] = {"rec_int8": True, "reread_below": 0.0}
OPTIONS.update({f"int8-reread{n}": {"rec_int8": True, "reread_below": n / 1000} for n in (985, 990, 995)})
OPTIONS["default-b8"] = {"rec_batch": 8}  # the pipeline's engine, lines recognised 8 at a time
OPTIONS.update({f"ov-reread97-w64-d{n}": {**OPTIONS["ov-reread97-w64"], "detect_side": n} for n in (1024, 768, 640)})
# option name -> how many input shapes' kernels OpenVINO's recogniser keeps (default: --shape-cache)
SHAPE_CACHE = {"ov-recf32-c0": 0, "ov-recf32-c20": 20, "ov-recf32-c100": 100, "ov-recf32-c5000": 5000}
SHAPE_CACHE.update({f"default-c{n}": n for n in (0, 10, 20, 40)})
OPTIONS.update({name: OPTIONS["default" if name.startswith("default") else "ov-recf32"] for name in SHAPE_CACHE})
METHODS = ("detect", "recognise_lines", "upside_down_share")


def cpu_timed(engine: RapidOcrEngine) -> dict[str, float]:
    """Charge the CPU seconds of each model method to the dict returned (instance attributes
    shadow the methods, so the engine's own calls go through them too). Once per engine."""
    spent: dict[str, float] = {}
    for name in METHODS:
        method = getattr(engine, name)

        def wrapper(*args, _method=method, _name=name, **kwargs):  # noqa: ANN002, ANN003, ANN202
            started = time.process_time()
            try:
                return _method(*args, **kwargs)
            finally:
                spent[_name] = spent.get(_name, 0.0) + time.process_time() - started

        setattr(engine, name, wrapper)
    return spent


def make_engine(name: str, shape_cache: int) -> RapidOcrEngine:
    """The engine an option names, its models loaded."""
    arguments = dict(OPTIONS[name])
    detect_side = arguments.pop("detect_side", None)
    backends.OPENVINO_SHAPE_CACHE = SHAPE_CACHE.get(name, shape_cache)  # read as the engine is made
    if arguments.get("rec_int8") and not backends.INT8_RECOGNISER.is_file():
        raise SystemExit(f"{name}: no 8-bit recogniser at {backends.INT8_RECOGNISER}; make it first: "
                         ".venv/bin/pip install nncf && .venv/bin/python bench/quantize_recogniser.py")  # fmt: skip
    engine = RapidOcrEngine(**arguments)
    if detect_side:  # the detector's input at most this long (RapidOCR's own default: short side >= 736)
        engine.DETECT_SIDE = detect_side
        detector = engine._ocr._load_det_model()
        detector.limit_type, detector.limit_side_len = "max", detect_side
    return engine


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


def memory(args: argparse.Namespace) -> int:
    """Peak RSS of a process that reads the pages with one option (``--rss-of``), or, with
    ``--memory``, that figure for each of ``--options``, each in its own fresh process."""
    if args.rss_of is None:
        for name in args.options.split(","):
            command = [sys.executable, __file__, "--rss-of", name, "--pages", str(args.pages), "--repeat",
                       str(args.repeat), "--set", str(args.data), f"--shape-cache={args.shape_cache}"]  # fmt: skip
            print(subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip())
        return 0
    pages = pages_with_truth(args.data, args.pages, Path(tempfile.mkdtemp(prefix="engine-memory-")))
    engine = make_engine(args.rss_of, args.shape_cache)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    engine.read_page(pages[0][1])
    first = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    peaks = []
    for _ in range(args.repeat):  # the same pages again: does the memory level off?
        for _label, work, _truth in pages[1:]:
            engine.read_page(work)
        peaks.append(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    print(f"{args.rss_of} ({engine.version}): peak RSS {before / 1024:.0f} MiB with the pages decoded, "
          f"{first / 1024:.0f} MiB after the first page, after each pass over {len(pages)} pages: "
          + ", ".join(f"{peak / 1024:.0f}" for peak in peaks) + " MiB")  # fmt: skip
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", dest="data", type=Path, default=DEFAULT_DATA, help="labelled scan set")
    parser.add_argument("--pages", type=int, default=12, help="at most this many non-blank pages")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--options", default="ort,ov-recf32,default", help=f"of: {', '.join(OPTIONS)}")
    parser.add_argument("--memory", action="store_true", help="peak RSS per option, one fresh process each")
    parser.add_argument("--shape-cache", type=int, default=backends.OPENVINO_SHAPE_CACHE,
                        help="how many input shapes' kernels OpenVINO's recogniser keeps")  # fmt: skip
    parser.add_argument("--rss-of", default=None, help=argparse.SUPPRESS)  # the child of --memory
    args = parser.parse_args()
    backends.OPENVINO_SHAPE_CACHE = args.shape_cache
    if args.memory or args.rss_of:
        return memory(args)
    names = args.options.split(",")
    engines = {name: make_engine(name, args.shape_cache) for name in names}
    pages = pages_with_truth(args.data, args.pages, Path(tempfile.mkdtemp(prefix="engine-options-")))
    for engine in engines.values():  # load the models and compile their kernels before timing
        engine.read_page(pages[0][1])
        engine.lines_read_again = 0
    clocks = {name: cpu_timed(engine) for name, engine in engines.items()}
    cpu: dict[str, list[dict[str, float]]] = {name: [] for name in names}
    errors = {name: 0 for name in names}
    for _label, work, truth in pages:
        samples: dict[str, list[dict[str, float]]] = {name: [] for name in names}
        texts = {}
        for _ in range(args.repeat):
            for name, engine in engines.items():  # interleaved: each option sees the same load
                clocks[name].clear()
                texts[name] = "".join(line.text for line in reading_order(engine.read_page(work).boxes))
                samples[name].append(dict(clocks[name]))
        for name in names:
            cpu[name].append({m: statistics.median(s.get(m, 0.0) for s in samples[name]) for m in METHODS})
            errors[name] += levenshtein(truth, clean(texts[name]))
    length = sum(len(truth) for _l, _w, truth in pages)
    print(f"{len(pages)} pages, {length} characters of truth, median of {args.repeat} per page, "
          "CPU seconds per page inside the models:")  # fmt: skip
    for name in names:
        per = {m: sum(p[m] for p in cpu[name]) / len(pages) for m in METHODS}
        print(f"  {name:12s} {engines[name].version:60s} total {sum(per.values()):.3f} s  "
              + "  ".join(f"{m} {v:.3f}" for m, v in per.items())
              + f"   CER {100 * errors[name] / max(1, length):.2f}% ({errors[name]} errors)"
              + (f", {engines[name].lines_read_again / args.repeat:.0f} lines read again in f32"
                 if engines[name].lines_read_again else ""))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
