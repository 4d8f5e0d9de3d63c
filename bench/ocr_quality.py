"""OCR accuracy and speed on a labelled scan set (default: ../shared/data/scans-dev).

Ingests the set through the real CLI into a fresh archive, reads
``trade-archive export`` and compares it with the truth files. Prints CER
(Levenshtein / truth length after NFKC and removing white space, summed over
non-blank pages, pages as scanned, as design notes §4), CER per document kind,
per scan mode (color, gray, bitonal: the hard set's truth says which) and per dpi,
orientation and blank-page accuracy, pages missing, and seconds per page. Where the
truth has a ``table`` (bid-opening records), the exported ``tables`` are scored too:
tables found, and cells exactly right after NFKC and removing white space (rows
aligned at the best offset, a missing cell counts as wrong).

    python bench/ocr_quality.py [--set DIR] [--engine rapidocr|tesseract|both] [--workers N]
                                 [--archive DIR] [--no-manifest]
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
    parser.add_argument("--manifest", action=argparse.BooleanOptionalAction, default=True, help="ingest with it")
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
                   "--engine", engine]  # fmt: skip
        if args.manifest:
            command += ["--manifest", str(args.data / "manifest.csv")]
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
    groups: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    tables: dict[str, list] = defaultdict(list)  # truth file -> the tables exported for its pages
    orientation_ok = blank_ok = 0
    worst = []
    for page in pages:
        truth_doc = json.loads((args.data / "truth" / page["source"].replace(".pdf", ".json")).read_text())
        truth = truth_doc["pages"][page["page"] - 1]
        tables[page["source"]] += page.get("tables") or []
        blank_ok += truth["blank"] == page["blank"]
        if truth["blank"]:
            orientation_ok += 1  # a blank page has no way up
            continue
        orientation_ok += truth["rotation"] == page["orientation"]
        want, got = clean(truth["text"]), clean(page["text"])
        distance = levenshtein(want, got)
        errors += distance
        length += len(want)
        for group, key in (("kind", truth_doc["doc_type"]), ("mode", truth.get("mode")), ("dpi", truth_doc.get("dpi"))):
            if key is None:
                continue  # the easy set's truth does not say the scan mode
            groups[group][str(key)][0] += distance
            groups[group][str(key)][1] += len(want)
        worst.append((distance / max(1, len(want)), page["source"], page["page"]))

    expected = sum(len(json.loads(p.read_text())["pages"]) for p in (args.data / "truth").glob("*.json"))
    print(f"\n== engine: {engine}   pages exported: {len(pages)}   pages missing: {expected - len(pages)}")
    print(f"CER: {100 * errors / max(1, length):.2f}%  ({errors} errors / {length} chars, non-blank pages)")
    for group, counts in groups.items():
        print(f"  by {group}: " + ", ".join(f"{key} {100 * e / max(1, n):.2f}% ({n} chars)" for key, (e, n) in
                                             sorted(counts.items())))  # fmt: skip
    score_tables(args.data, tables)
    print(f"orientation correct: {orientation_ok}/{len(pages)}   blank flag correct: {blank_ok}/{len(pages)}")
    if seconds is not None:
        print(
            f"ingest wall time: {seconds:.1f} s (incl. Prefect start-up) = {seconds / len(pages):.2f} s/page "
            f"= {60 * len(pages) / seconds:.1f} pages/min"
        )
    for rate, source, number in sorted(worst, reverse=True)[: args.show]:
        print(f"  worst: {source} p.{number}: CER {100 * rate:.1f}%")


def score_tables(data: Path, exported: dict[str, list]) -> None:
    """Tables found and cells exactly right, over every truth file that has a ``table``."""
    found = wanted = right = cells = 0
    misses = []
    for path in sorted((data / "truth").glob("*.json")):
        truth_doc = json.loads(path.read_text())
        if "table" not in truth_doc:
            continue
        want = [[clean(cell) for cell in row] for row in truth_doc["table"]]
        wanted += 1
        candidates = exported.get(truth_doc["file"].split("/")[-1], [])
        found += bool(candidates)
        best = max((cells_right(want, table) for table in candidates), default=0)
        right += best
        cells += sum(len(row) for row in want)
        if best < sum(len(row) for row in want):
            misses.append(f"{path.name}: {best}/{sum(len(row) for row in want)} cells")
    if wanted:
        print(f"tables found: {found}/{wanted}   cells right: {100 * right / max(1, cells):.2f}% ({right}/{cells})")
        for miss in misses[:6]:
            print("  table miss:", miss)


def cells_right(want: list[list[str]], table: list[list[str]]) -> int:
    """Cells equal after cleaning, rows aligned at the offset that matches most (a table
    read with a title row above it is not all wrong)."""
    got = [[clean(cell) for cell in row] for row in table]
    best = 0
    for offset in range(-3, 4):
        score = 0
        for i, row in enumerate(want):
            j = i + offset
            if 0 <= j < len(got):
                score += sum(a == b for a, b in zip(row, got[j]))
        best = max(best, score)
    return best


if __name__ == "__main__":
    sys.exit(main())
