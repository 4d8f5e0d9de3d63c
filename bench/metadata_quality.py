"""Transaction metadata accuracy on a labelled scan set (default: ../shared/data/scans-dev).

Ingests the set twice through the real CLI, without and with the platform
manifest, then scores each document's exported ``metadata`` (its transaction's
merged view) against ``truth/*.json``: per-field accuracy (amounts within
0.005, strings equal after NFKC and white-space removal), doc_type accuracy,
and how many documents sit under the right transaction.

    python bench/metadata_quality.py [--set DIR] [--workers N] [--without ARCHIVE] [--with ARCHIVE]

``--without`` / ``--with`` score archives already ingested from the set (without
and with its manifest) instead of ingesting again. Documents filed under the
wrong transaction (or left in ``unfiled/``) are listed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import unicodedata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "scans-dev"
FIELDS = ("project_code", "project_name", "transaction_type", "purchaser", "agency", "winner", "amount", "award_date")
DOC_TYPES = {"award": "award_notice", "bidopen": "bid_opening", "contract": "contract", "notice": "notice"}


def same(field: str, got: object, want: object) -> bool:
    if got is None or want is None:
        return got is want
    if field == "amount":
        return abs(float(got) - float(want)) <= 0.005  # type: ignore[arg-type]
    return "".join(unicodedata.normalize("NFKC", str(got)).split()) == "".join(
        unicodedata.normalize("NFKC", str(want)).split()
    )


def run(command: list[str]) -> str:
    return subprocess.run(command, check=True, cwd=ROOT, capture_output=True, text=True).stdout


def score(data: Path, manifest: bool, workers: int | None, archive: Path | None = None) -> None:
    if archive is None:
        archive = Path(tempfile.mkdtemp(prefix="metadata-bench-"))
        command = [sys.executable, "-m", "flows.cli", "ingest", str(data / "scans"), "--archive", str(archive)]
        if manifest:
            command += ["--manifest", str(data / "manifest.csv")]
        if workers:
            command += ["--workers", str(workers)]
        run(command)
    documents = {}
    for line in run(
        [sys.executable, "-m", "flows.cli", "export", "--format", "jsonl", "--archive", str(archive)]
    ).splitlines():
        page = json.loads(line)
        documents.setdefault(page["source"], page)  # metadata is per document: its first page carries it
    right = {f: 0 for f in FIELDS}
    doc_type_right = filed_right = 0
    misses = []
    for source, page in sorted(documents.items()):
        truth = json.loads((data / "truth" / source.replace(".pdf", ".json")).read_text())
        for field in FIELDS:
            if same(field, page["metadata"][field], truth["metadata"][field]):
                right[field] += 1
            else:
                misses.append(f"{source} {field}: {page['metadata'][field]!r} (truth {truth['metadata'][field]!r})")
        doc_type_right += page["doc_type"] == DOC_TYPES.get(truth["doc_type"], truth["doc_type"])
        package = next(archive.glob(f"*/*/{page['document']}"), None) or next(archive.glob(f"*/{page['document']}"))
        filed_right += package.parent.name == truth["metadata"]["project_code"]
        if package.parent.name != truth["metadata"]["project_code"]:
            misses.append(f"{source} filed under {package.parent.name} (truth {truth['metadata']['project_code']})")
    n = len(documents)
    print(f"\n== {'with' if manifest else 'without'} manifest: {n} documents (archive {archive})")
    for field in FIELDS:
        print(f"  {field:17s} {100 * right[field] / n:6.1f}%  ({right[field]}/{n})")
    print(f"  {'doc_type':17s} {100 * doc_type_right / n:6.1f}%  ({doc_type_right}/{n})")
    print(f"  {'filed right':17s} {100 * filed_right / n:6.1f}%  ({filed_right}/{n})")
    for miss in misses[:40]:
        print("  miss:", miss)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", dest="data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--without", type=Path, default=None, help="archive ingested without the manifest")
    parser.add_argument("--with", dest="with_manifest", type=Path, default=None, help="archive ingested with it")
    args = parser.parse_args()
    score(args.data, manifest=False, workers=args.workers, archive=args.without)
    score(args.data, manifest=True, workers=args.workers, archive=args.with_manifest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
