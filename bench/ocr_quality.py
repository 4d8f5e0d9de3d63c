"""OCR accuracy and speed on a labelled scan set (default: ../shared/data/scans-dev).

Ingests the set through the real CLI into a fresh archive, reads
``trade-archive export`` and compares it with the truth files. Prints CER
(Levenshtein / truth length after NFKC and removing white space, summed over
non-blank pages, pages as scanned, as design notes §4), CER per document kind,
orientation and blank-page accuracy, pages missing, and seconds per page.

    python bench/ocr_quality.py [--set DIR] [--engine rapidocr|tesseract|both] [--workers N] [--archive DIR]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import unicodedata
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "scans-dev"


def levenshtein(a: str, b: str) -> int:
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def clean(text: str) -> str:
    return "".join(unicodedata.normalize("NFKC", text).split())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", dest="data", type=Path, default=DEFAULT_DATA, help="labelled scan set")
    parser.add_argument("--engine", default="rapidocr", choices=["rapidocr", "tesseract", "both"])
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--archive", type=Path, default=None, help="reuse an archive already ingested from --data")
    parser.add_argument("--show", type=int, default=3, help="print the N worst pages")
    args = parser.parse_args()
    engines = ["rapidocr", "tesseract"] if args.engine == "both" else [args.engine]
    for engine in engines:
        measure(args, engine)
    return 0


def measure(args: argparse.Namespace, engine: str) -> None:
    archive = args.archive or Path(tempfile.mkdtemp(prefix="ocr-bench-"))
    seconds = None
    if args.archive is None:
        command = [sys.executable, "-m", "flows.cli", "ingest", str(args.data / "scans"), "--archive", str(archive),
                   "--engine", engine, "--manifest", str(args.data / "manifest.csv")]  # fmt: skip
        if args.workers:
            command += ["--workers", str(args.workers)]
        started = time.monotonic()
        subprocess.run(command, check=True, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        seconds = time.monotonic() - started
    exported = subprocess.run(
        [sys.executable, "-m", "flows.cli", "export", "--format", "jsonl", "--archive", str(archive)],
        check=True, cwd=ROOT, capture_output=True, text=True,
    ).stdout  # fmt: skip
    pages = [json.loads(line) for line in exported.splitlines()]

    errors, length = 0, 0
    by_kind: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    orientation_ok = blank_ok = 0
    worst = []
    for page in pages:
        truth_doc = json.loads((args.data / "truth" / page["source"].replace(".pdf", ".json")).read_text())
        truth = truth_doc["pages"][page["page"] - 1]
        blank_ok += truth["blank"] == page["blank"]
        if truth["blank"]:
            orientation_ok += 1  # a blank page has no way up
            continue
        orientation_ok += truth["rotation"] == page["orientation"]
        want, got = clean(truth["text"]), clean(page["text"])
        distance = levenshtein(want, got)
        errors += distance
        length += len(want)
        by_kind[truth_doc["doc_type"]][0] += distance
        by_kind[truth_doc["doc_type"]][1] += len(want)
        worst.append((distance / max(1, len(want)), page["source"], page["page"]))

    expected = sum(len(json.loads(p.read_text())["pages"]) for p in (args.data / "truth").glob("*.json"))
    print(f"\n== engine: {engine}   pages exported: {len(pages)}   pages missing: {expected - len(pages)}")
    print(f"CER: {100 * errors / max(1, length):.2f}%  ({errors} errors / {length} chars, non-blank pages)")
    for kind, (e, n) in sorted(by_kind.items()):
        print(f"  {kind:10s} CER {100 * e / max(1, n):.2f}%")
    print(f"orientation correct: {orientation_ok}/{len(pages)}   blank flag correct: {blank_ok}/{len(pages)}")
    if seconds is not None:
        print(
            f"ingest wall time: {seconds:.1f} s (incl. Prefect start-up) = {seconds / len(pages):.2f} s/page "
            f"= {60 * len(pages) / seconds:.1f} pages/min"
        )
    for rate, source, number in sorted(worst, reverse=True)[: args.show]:
        print(f"  worst: {source} p.{number}: CER {100 * rate:.1f}%")


if __name__ == "__main__":
    sys.exit(main())
