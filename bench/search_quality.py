"""Search quality on a labelled scan set: recall@10 and precision@10, document level.

    python bench/search_quality.py --set ../shared/data/scans-dev [--archive DIR] [--backend whoosh|tantivy|both]

DIR is an archive already ingested from the set (default /tmp/a-search, plus
/tmp/a-search-tantivy when it exists), e.g.

    cp -r /tmp/a /tmp/a-search && python -m flows.cli reindex --archive /tmp/a-search
    cp -r /tmp/a /tmp/a-search-tantivy && python -m flows.cli reindex --backend tantivy --archive /tmp/a-search-tantivy

Give --archive twice for one archive per backend. Each backend uses the first archive whose
index it is; with none, the first archive is copied to a temporary folder and reindexed with
that backend there (archives are only read).

Queries are what a person would type, taken from ``truth/*.json``: each transaction's
project code, project name, winner, purchaser and agency (the true values, deduplicated),
and random 2-6 character substrings of the true page text (fixed seed; Han characters only,
within one page: a person types words, not fragments of amounts or codes). Relevant to a
query is every document whose TRUE page text, or true metadata (the fields the index
searches: project code, name, purchaser, agency, winner, and what staff call its document
type), contains the query after NFKC, lower case and OCR's spaces between Han removed;
each page and each value on its own, as the index has them.

A query's ranked documents are its page hits mapped to their source file, in the order of
each document's best page. recall@10 = relevant documents among the first 10 / min(relevant,
10); precision@10 = relevant documents among the first 10 / documents among the first 10 (0
when nothing is found). Both are averaged over the queries of each kind, then over all.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import index  # noqa: E402
from archive.han import HAN  # noqa: E402
from archive.records.metadata import DOC_TYPE_NAMES  # noqa: E402
from archive.storage.store import Archive  # noqa: E402
from index.analysis import normalise  # noqa: E402
from index.query import check_doc_type  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "scans-dev"
DEFAULT_ARCHIVES = (Path("/tmp/a-search"), Path("/tmp/a-search-tantivy"))
SEED = 20240615
K = 10
METADATA_KINDS = ("project_code", "project_name", "winner", "purchaser", "agency")
SEARCHED_METADATA = ("project_code", "project_name", "purchaser", "agency", "winner")
HAN_RUN = re.compile(rf"[{HAN}]{{2,}}")


@dataclass
class Truth:
    source: str  # the scan's file name, as hits name it
    pages: list[str]  # normalised page texts
    metadata: list[str]  # normalised searched metadata values (and document type names)


@dataclass(frozen=True)
class Query:
    kind: str
    text: str


def load_truth(data: Path) -> dict[str, Truth]:
    documents = {}
    for path in sorted((data / "truth").glob("*.json")):
        truth = json.loads(path.read_text(encoding="utf-8"))
        meta = truth["metadata"]
        values = [normalise(str(meta[k])) for k in SEARCHED_METADATA if meta.get(k)]
        try:
            values += [normalise(name) for name in DOC_TYPE_NAMES.get(check_doc_type(truth["doc_type"]), "").split()]
        except Exception:  # an unknown doc type: no names to match on
            pass
        source = Path(truth.get("file") or path.with_suffix(".pdf").name).name
        pages = [normalise(p.get("text") or "") for p in truth["pages"]]
        documents[source] = Truth(source, pages, values)
    return documents


def make_queries(data: Path, truth: dict[str, Truth], substrings: int, seed: int) -> list[Query]:
    queries: list[Query] = []
    seen: set[tuple[str, str]] = set()
    for path in sorted((data / "truth").glob("*.json")):
        meta = json.loads(path.read_text(encoding="utf-8"))["metadata"]
        for kind in METADATA_KINDS:
            value = str(meta.get(kind) or "").strip()
            if value and (kind, value) not in seen:
                seen.add((kind, value))
                queries.append(Query(kind, value))
    rng = random.Random(seed)
    runs = [run for doc in truth.values() for page in doc.pages for run in HAN_RUN.findall(page)]
    weights = [len(run) - 1 for run in runs]  # every start position of a 2+ character window equally likely
    texts: set[str] = set()
    attempts = 0
    while len(texts) < substrings and runs and attempts < substrings * 50:
        attempts += 1
        run = rng.choices(runs, weights)[0]
        length = rng.randint(2, min(6, len(run)))
        start = rng.randint(0, len(run) - length)
        texts.add(run[start : start + length])
    queries += [Query("substring", text) for text in sorted(texts, key=lambda t: (len(t), t))]
    rng.shuffle(queries)  # no order effects; the metrics do not depend on it
    return queries


def relevant(truth: dict[str, Truth], text: str) -> set[str]:
    needle = normalise(text)
    return {
        doc.source
        for doc in truth.values()
        if any(needle in page for page in doc.pages) or any(needle in value for value in doc.metadata)
    }


def ranked_documents(archive: Archive, text: str, k: int = K) -> list[str]:
    """The first ``k`` distinct source files of the query's page hits, best page first."""
    found: list[str] = []
    offset = 0
    while len(found) < k:
        hits, total = index.search_page(archive, text, limit=100, offset=offset)
        for hit in hits:
            if hit["source"] not in found:
                found.append(hit["source"])
        offset += len(hits)
        if not hits or offset >= total:
            break
    return found[:k]


def archive_for(archives: list[Archive], backend: str, scratch: Path) -> Archive:
    """The first archive whose index is ``backend``, else a copy of the first reindexed with it."""
    for archive in archives:
        if index.backend_name(archive) == backend:
            return archive
    archive = archives[0]
    copy = scratch / backend
    shutil.copytree(archive.root, copy, ignore=shutil.ignore_patterns("index", "index.new", "index.old", "*.lock"))
    copied = Archive.open(copy)
    pages = index.rebuild(copied, backend=backend)
    print(f"(the archive's index is {index.backend_name(archive)}: copied to {copy}, {pages} pages indexed with "
          f"{backend})")  # fmt: skip
    return copied


def score(archive: Archive, backend: str, truth: dict[str, Truth], queries: list[Query], misses: int) -> dict:
    indexed = {hit for hit in _sources(archive)}
    absent = sorted(set(truth) - indexed)
    if absent:
        print(f"warning: {len(absent)} labelled document(s) not in the archive: {', '.join(absent[:5])}")
    per_kind: dict[str, list[tuple[float, float]]] = {}
    missed: list[str] = []
    started = time.perf_counter()
    for query in queries:
        want = relevant(truth, query.text)
        got = ranked_documents(archive, query.text)
        right = want & set(got)
        recall = len(right) / min(len(want), K) if want else 1.0
        precision = len(right) / len(got) if got else 0.0
        per_kind.setdefault(query.kind, []).append((recall, precision))
        if recall < 1.0 or precision < 1.0:
            lost = sorted(want - set(got))[:3]
            extra = sorted(set(got) - want)[:3]
            missed.append(f"  {query.kind:12s} {query.text!r}: relevant {len(want)}, in top {K} {len(right)}/{len(got)}"
                          + (f"; missed {', '.join(lost)}" if lost else "")
                          + (f"; not relevant {', '.join(extra)}" if extra else ""))  # fmt: skip
    seconds = time.perf_counter() - started
    print(f"\n== {backend}: {len(queries)} queries, {len(truth)} labelled documents, archive {archive.root} "
          f"({1000 * seconds / max(len(queries), 1):.1f} ms/query)")  # fmt: skip
    print(f"  {'kind':14s} {'queries':>7s} {'recall@10':>10s} {'precision@10':>13s}")
    rows = {kind: per_kind[kind] for kind in (*METADATA_KINDS, "substring") if kind in per_kind}
    for kind, values in rows.items():
        print(f"  {kind:14s} {len(values):7d} {statistics.fmean(v[0] for v in values):10.3f} "
              f"{statistics.fmean(v[1] for v in values):13.3f}")  # fmt: skip
    every = [v for values in rows.values() for v in values]
    overall = (statistics.fmean(v[0] for v in every), statistics.fmean(v[1] for v in every))
    print(f"  {'overall':14s} {len(every):7d} {overall[0]:10.3f} {overall[1]:13.3f}")
    if missed:
        print(f"  queries below 1.0 ({len(missed)}{', first ' + str(misses) if len(missed) > misses else ''}):")
        for line in missed[:misses]:
            print(line)
    return {"recall": overall[0], "precision": overall[1]}


def _sources(archive: Archive) -> set[str]:
    sources = set()
    for package in archive.documents():
        document = json.loads((package / "data" / "document.json").read_text(encoding="utf-8"))
        sources.add(document["source"])
    return sources


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", dest="data", type=Path, default=DEFAULT_DATA, help="labelled set (truth/*.json)")
    parser.add_argument("--archive", type=Path, action="append", help="archive ingested from the set (repeatable)")
    parser.add_argument("--backend", choices=("whoosh", "tantivy", "both"), default="both")
    parser.add_argument("--substrings", type=int, default=120, help="random text substrings to query")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--misses", type=int, default=15, help="how many imperfect queries to list")
    args = parser.parse_args()
    if not (args.data / "truth").is_dir():
        parser.error(f"{args.data} has no truth/ folder")
    folders = args.archive or [p for p in DEFAULT_ARCHIVES if p.exists()] or [DEFAULT_ARCHIVES[0]]
    for folder in folders:
        if not (folder / "transactions").is_dir():
            parser.error(
                f"{folder} is not an archive: ingest the set into one, e.g. "
                f"cp -r /tmp/a {folder} && python -m flows.cli reindex --archive {folder}"
            )
    truth = load_truth(args.data)
    queries = make_queries(args.data, truth, args.substrings, args.seed)
    archives = [Archive.open(folder) for folder in folders]
    backends = ("whoosh", "tantivy") if args.backend == "both" else (args.backend,)
    with tempfile.TemporaryDirectory(prefix="search-quality-") as scratch:
        for backend in backends:
            score(archive_for(archives, backend, Path(scratch)), backend, truth, queries, args.misses)
    return 0


if __name__ == "__main__":
    sys.exit(main())
