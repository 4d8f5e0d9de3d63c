"""Throughput and memory of a whole ingest, as an archivist runs it.

Runs ``trade-archive ingest`` (the real CLI, Prefect start-up included) on a
folder of scans into a fresh archive, sampling the resident memory of the
whole process tree (the CLI, its Prefect server and its OCR workers), and
prints pages/min, seconds per stage, the share of time inside the OCR models
(the rest is pipeline overhead), peak RSS (and PSS: shared pages once), and, where the set has truth files,
the CER of that same run. ``--big N`` instead builds one N-page scan by
concatenating the set's pages and ingests that (the bounded-memory check).
``--vs-ocrmypdf`` also runs OCRmyPDF (``-l chi_sim+eng --rotate-pages --deskew
--jobs N``, OMP_THREAD_LIMIT=1) on the same files in the same run and prints
the ratio (``make bench-throughput`` installs OCRmyPDF into .bench-venv).
``--vs-ocrmypdf-rapidocr`` runs OCRmyPDF with the same RapidOCR models (the
ocrmypdf-rapidocr plugin, ``--plugin ocrmypdf_rapidocr --pdf-renderer fpdf2 -l chi_sim``,
also in .bench-venv) on the same files in the same run, and prints its pages/min,
CPU seconds per page, peak RSS and CER beside ours: the strongest yardstick.

    python bench/throughput.py [--set DIR] [--workers N] [--big 300] [--vs-ocrmypdf] [--vs-ocrmypdf-rapidocr]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from pypdf import PdfReader, PdfWriter

sys.path.insert(0, str(Path(__file__).parent))
from memcap import MemoryCap, NoMemoryCap, parse_size  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SET = ROOT.parent / "shared" / "data" / "scans-dev" / "scans"
BENCH_OCRMYPDF = ROOT / ".bench-venv" / "bin" / "ocrmypdf"  # where `make bench-throughput` installs it
OCRMYPDF_DESIGN_PAGES_PER_MIN = 8.3  # design notes §4: 42 dev pages in 304 s on 2 cores


PEAKS: dict[int, int] = {}  # pid -> its peak RSS
CPU: dict[int, float] = {}  # pid -> CPU seconds (user + system) at its last sample
KINDS: dict[int, str] = {}  # pid -> what the process is
TIMELINE: list[tuple[float, dict[int, float]]] = []  # (seconds into the run, CPU so far by pid), each sample
PSS_PEAK = [0]  # the tree's peak proportional set size (bytes), see tree_pss
ANON_PEAK = [0]  # with --memory-cap: the cgroup's peak anonymous memory (bytes), each page once


def _label(pid: int) -> str:
    """``pid`` and what it is. A spawned worker shows the CLI's command line until it
    execs, and a process on its way out an empty one: a kind other than "CLI" is final."""
    if KINDS.get(pid, "CLI") == "CLI":
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                command = handle.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            command = ""
        if not command:
            return f"{pid} {KINDS.get(pid, 'other')}"
        KINDS[pid] = (
            "OCR worker"
            if "spawn_main" in command
            else "multiprocessing tracker"
            if "resource_tracker" in command
            else "prefect server"
            if "uvicorn" in command or "server" in command
            else "CLI"
        )
    return f"{pid} {KINDS[pid]}"


def tree_rss(pid: int) -> tuple[int, int, list[int]]:
    """(sum, largest) resident set size in bytes of ``pid`` and all its descendants (Linux /proc),
    and their pids; notes each one's peak RSS in PEAKS and its CPU time so far in CPU."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    cpu: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(entry))
            rss[int(entry)] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
            cpu[int(entry)] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            continue
    total, largest, todo, tree = 0, 0, [pid], []
    while todo:
        current = todo.pop()
        tree.append(current)
        total += rss.get(current, 0)
        largest = max(largest, rss.get(current, 0))
        _label(current)
        PEAKS[current] = max(PEAKS.get(current, 0), rss.get(current, 0))
        CPU[current] = max(CPU.get(current, 0.0), cpu.get(current, 0.0))
        todo.extend(children.get(current, []))
    return total, largest, tree


def tree_pss(pids: list[int]) -> int:
    """The processes' summed proportional set size in bytes (Linux smaps_rollup): a page that
    several of them map (the OCR workers' shared libraries: ~90 MiB each) counts once in all,
    where summed RSS counts it in each. What the tree costs the machine's memory."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as handle:
                total += next(int(line.split()[1]) * 1024 for line in handle if line.startswith("Pss:"))
        except (OSError, StopIteration, ValueError):
            continue
    return total


def run_measured(command: list[str], cap: MemoryCap | None = None) -> tuple[float, int, int]:
    """Run ``command`` (in ``cap``'s cgroup, where given); return (seconds, peak tree RSS, peak
    single-process RSS); the peak tree PSS goes to PSS_PEAK, the cgroup's peak anonymous memory to ANON_PEAK."""
    started = time.monotonic()
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               preexec_fn=cap.join if cap else None)  # fmt: skip
    peak = [0, 0]

    def sample() -> None:
        samples = 0
        while process.poll() is None:
            total, largest, tree = tree_rss(process.pid)
            # PSS costs the kernel a walk of each process's page tables (~4 ms for an OCR worker,
            # slowing the workers' own page faults): at a new RSS peak and once a second only
            if total > peak[0] or samples % 5 == 0:
                PSS_PEAK[0] = max(PSS_PEAK[0], tree_pss(tree))
            peak[0], peak[1] = max(peak[0], total), max(peak[1], largest)
            if cap is not None:
                ANON_PEAK[0] = max(ANON_PEAK[0], cap.anon())
            samples += 1
            TIMELINE.append((time.monotonic() - started, dict(CPU)))
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    if process.wait() != 0:
        raise SystemExit(f"{command[:4]} failed with exit code {process.returncode}")
    sampler.join()
    return time.monotonic() - started, peak[0], peak[1]


def count_pages(pdfs: list[Path]) -> int:
    return sum(len(PdfReader(p).pages) for p in pdfs)


def build_big_pdf(pdfs: list[Path], pages: int, out: Path) -> None:
    writer = PdfWriter()
    while len(writer.pages) < pages:
        for pdf in pdfs:
            for page in PdfReader(pdf).pages:
                if len(writer.pages) < pages:
                    writer.add_page(page)
    with open(out, "wb") as handle:
        writer.write(handle)


def same_run_cer(archive: Path, truth: Path) -> tuple[int, int]:
    """(errors, characters) of this run's text against the set's truth, as bench/ocr_quality.py counts them."""
    from ocr_quality import clean, levenshtein

    exported = subprocess.run([sys.executable, "-m", "flows.cli", "export", "--format", "jsonl", "--archive",
                               str(archive)], check=True, cwd=ROOT, capture_output=True, text=True).stdout  # fmt: skip
    errors = length = 0
    for page in map(json.loads, exported.splitlines()):
        truth_file = truth / Path(page["source"]).with_suffix(".json").name
        if not truth_file.is_file():
            continue
        want = json.loads(truth_file.read_text())["pages"][page["page"] - 1]
        if not want["blank"]:
            errors += levenshtein(clean(want["text"]), clean(page["text"]))
            length += len(clean(want["text"]))
    return errors, length


def print_stages(report: dict, workers: int, seconds: float) -> None:
    stages = report["stage_seconds"]
    main_stages = {k: v for k, v in stages.items() if not k.startswith("worker_")}
    page_stages = {k.removeprefix("worker_"): v for k, v in stages.items() if k.startswith("worker_")}
    print("seconds per stage in the main process (summed over documents, which overlap): "
          + ", ".join(f"{k} {v:.1f}" for k, v in main_stages.items()))  # fmt: skip
    print("  (pages: waiting for the OCR workers; pdf: joining the pages; package: bag, checksums, filing)")
    engine = report["engine_seconds"]
    print("seconds per page stage in the OCR workers (summed over pages): "
          + ", ".join(f"{k} {v:.1f}" for k, v in page_stages.items())
          + f"; of all these, inside the OCR models: {engine:.1f}")  # fmt: skip
    engine_share = engine / (workers * seconds)
    print(f"time inside the OCR models: {engine:.0f} s over {workers} workers = {100 * engine_share:.0f}% of "
          f"wall x workers; pipeline overhead {100 * (1 - engine_share):.0f}% (300-page scan: <= 10%)")  # fmt: skip
    # What the run cost in CPU, by kind of process: however well the work overlapped,
    # the overhead cannot be less than the share of CPU spent outside the models.
    kinds: dict[str, float] = {}
    for pid, seconds_used in CPU.items():
        kind = KINDS.get(pid, "other")
        kinds[kind] = kinds.get(kind, 0.0) + seconds_used
    total = sum(kinds.values())
    print("CPU seconds by process: " + ", ".join(f"{kind} {used:.1f}" for kind, used in sorted(kinds.items()))
          + f"; all {total:.1f}, of which the OCR models {engine:.1f}: with perfect overlap the overhead could not "
          f"go below {100 * (1 - engine / total):.0f}%")  # fmt: skip


def print_timeline(seconds: float, cores: int, step: float = 5.0) -> None:
    """Cores busy in each process kind, ``step`` seconds at a time, and the core-seconds nobody
    used: are the OCR workers busy all the time? (On a machine other work loads, its share
    shows as idle here and as slower work there: compare quiet runs.)"""
    print(f"cores busy per {step:g} s (CLI / prefect server / OCR workers / all):")
    kinds = ("CLI", "prefect server", "OCR worker")
    last_t, last = 0.0, {}
    for t, cpu in TIMELINE:
        if t - last_t < step and t != TIMELINE[-1][0]:
            continue
        used = {kind: 0.0 for kind in kinds}
        for pid, value in cpu.items():
            kind = KINDS.get(pid, "other")
            used[kind] = used.get(kind, 0.0) + value - last.get(pid, 0.0)
        span = max(t - last_t, 1e-6)
        print(f"  {last_t:5.1f}-{t:5.1f} s  " + " / ".join(f"{used[k] / span:.2f}" for k in kinds)
              + f" / {sum(used.values()) / span:.2f}")  # fmt: skip
        last_t, last = t, cpu
    total = sum(CPU.values())
    print(f"core-seconds: {cores} cores x {seconds:.1f} s = {cores * seconds:.1f}, used by the run {total:.1f}, "
          f"idle (or another's) {cores * seconds - total:.1f}")  # fmt: skip


def run_ocrmypdf_rapidocr(binary: str, pdfs: list[Path], work: Path, workers: int) -> tuple[float, float, int]:
    """OCRmyPDF with the ocrmypdf-rapidocr plugin on the same files, one after another:
    (seconds, CPU seconds of its whole process tree, peak tree RSS); outputs in ``work/rapidocr``."""
    out = work / "rapidocr"
    out.mkdir(exist_ok=True)
    seconds = cpu = 0.0
    peak = 0
    for pdf in pdfs:
        CPU.clear()
        command = [binary, "--plugin", "ocrmypdf_rapidocr", "--pdf-renderer", "fpdf2", "-l", "chi_sim", "--jobs",
                   str(workers), "--output-type", "pdf", str(pdf), str(out / pdf.name)]  # fmt: skip
        spent, tree_peak, _largest = run_measured(command)
        seconds, cpu, peak = seconds + spent, cpu + sum(CPU.values()), max(peak, tree_peak)
    return seconds, cpu, peak


def pdf_text_cer(outputs: Path, truth: Path) -> tuple[int, int]:
    """(errors, characters) of the text layers of OCRmyPDF's output PDFs against the set's truth,
    as pdftotext reads them (pypdf reads fpdf2's text layer twice over)."""
    sys.path.insert(0, str(Path(__file__).parent))
    from ocr_quality import clean, levenshtein

    errors = length = 0
    for pdf in sorted(outputs.glob("*.pdf")):
        pages = json.loads((truth / f"{pdf.stem}.json").read_text())["pages"]
        text = subprocess.run(["pdftotext", str(pdf), "-"], check=True, capture_output=True, text=True).stdout
        for got, want in zip(text.split("\f"), pages):
            if not want["blank"]:
                errors += levenshtein(clean(want["text"]), clean(got))
                length += len(clean(want["text"]))
    return errors, length


def versus_rapidocr(args: argparse.Namespace, pdfs: list[Path], work: Path, ours: dict) -> None:
    """OCRmyPDF + the RapidOCR plugin beside this run's figures (``ours``)."""
    pages = ours["pages"]
    seconds, cpu, peak = run_ocrmypdf_rapidocr(args.ocrmypdf_bin, pdfs, work, args.workers)
    rate = 60 * pages / seconds
    print(f"OCRmyPDF + ocrmypdf-rapidocr (same machine, same files, same run): {rate:.1f} pages/min; CPU "
          f"{cpu / pages:.2f} s/page (whole process tree, models and all)"
          f"; peak RSS {peak / 2**20:.0f} MiB")  # fmt: skip
    if ours.get("truth") is not None:
        errors, length = pdf_text_cer(work / "rapidocr", ours["truth"])
        print(f"  its CER: {100 * errors / max(1, length):.2f}% ({errors} errors / {length} characters; pages as "
              "scanned, its text layer as pdftotext reads it)")  # fmt: skip
    print(f"trade-archive: {ours['rate']:.1f} pages/min; model {ours['engine'] / pages:.2f} s/page, CPU "
          f"{ours['cpu'] / pages:.2f} s/page; overhead {ours['overhead']:.0f}%; "
          f"peak RSS {ours['peak'] / 2**20:.0f} MiB")  # fmt: skip
    print(f"speed-up over OCRmyPDF + RapidOCR: {ours['rate'] / rate:.1f}x (target 8x)")


def run_ocrmypdf(binary: str, pdfs: list[Path], work: Path, workers: int) -> float:
    """Seconds for OCRmyPDF to do the same files, one after another, ``--jobs workers``."""
    started = time.monotonic()
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
    for pdf in pdfs:
        subprocess.run([binary, "--rotate-pages", "--deskew", "--jobs", str(workers), "-l", "chi_sim+eng",
                        "--output-type", "pdf", str(pdf), str(work / "ocrmypdf.pdf")], check=True, env=env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    return time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", dest="scans", type=Path, default=DEFAULT_SET, help="folder of scanned PDFs")
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--big", type=int, default=0, help="ingest one PDF of this many pages instead")
    parser.add_argument("--ocrmypdf", "--vs-ocrmypdf", dest="ocrmypdf", action="store_true",
                        help="also time OCRmyPDF on the same files, in the same run")  # fmt: skip
    parser.add_argument("--vs-ocrmypdf-rapidocr", dest="rapidocr", action="store_true",
                        help="also time OCRmyPDF with the ocrmypdf-rapidocr plugin, in the same run")  # fmt: skip
    parser.add_argument("--memory-cap", type=parse_size, default=None, metavar="SIZE",
                        help="run our ingest in a memory cgroup limited to SIZE (2000000000, 2G, 2GiB; root): "
                             "does it finish with no process killed?")  # fmt: skip
    parser.add_argument("--pages", type=int, default=0, help="only the first N PDFs' worth of at least N pages")
    parser.add_argument("--ocrmypdf-bin", default=shutil.which("ocrmypdf") or str(BENCH_OCRMYPDF),
                        help="the ocrmypdf program (default: on PATH, else .bench-venv/bin/ocrmypdf)")  # fmt: skip
    args = parser.parse_args()
    wanted = args.ocrmypdf or args.rapidocr
    if wanted and not Path(args.ocrmypdf_bin).is_file() and not shutil.which(args.ocrmypdf_bin):
        raise SystemExit(f"no OCRmyPDF at {args.ocrmypdf_bin}: run `make bench-throughput` (installs it into "
                         ".bench-venv), or pass --ocrmypdf-bin")  # fmt: skip

    work = Path(tempfile.mkdtemp(prefix="throughput-"))
    pdfs = sorted(args.scans.rglob("*.pdf"))
    source = args.scans
    if args.pages:  # a smaller run: the first PDFs that hold at least --pages pages, copied to their own folder
        source = work / "some"
        source.mkdir()
        while pdfs and count_pages(list(source.glob("*.pdf"))) < args.pages:
            shutil.copy(pdfs.pop(0), source)
        pdfs = sorted(source.glob("*.pdf"))
    if args.big:
        source = work / "big"
        source.mkdir()
        build_big_pdf(pdfs, args.big, source / f"big-{args.big}.pdf")
        pdfs = [source / f"big-{args.big}.pdf"]
    pages = count_pages(pdfs)
    command = [sys.executable, "-m", "flows.cli", "ingest", str(source), "--archive", str(work / "archive"),
               "--workers", str(args.workers), "--no-progress"]  # fmt: skip
    cap = None
    if args.memory_cap:
        try:
            cap = MemoryCap.make(args.memory_cap)
        except NoMemoryCap as why:
            print(f"--memory-cap: {why}; running without a cap")
    try:
        seconds, peak, largest = run_measured(command, cap)
        kills = cap.oom_kills() if cap else 0
    finally:
        if cap:
            cap.close()
    rate = 60 * pages / seconds
    print(f"trade-archive: {pages} pages in {seconds:.1f} s = {rate:.1f} pages/min "
          f"({args.workers} OCR workers, whole CLI run incl. Prefect start-up)")  # fmt: skip
    print(f"peak RSS: {peak / 2**20:.0f} MiB for the whole process tree, {largest / 2**20:.0f} MiB largest process; "
          f"peak PSS of the tree {PSS_PEAK[0] / 2**20:.0f} MiB (shared pages counted once)")  # fmt: skip
    for pid, value in sorted(PEAKS.items(), key=lambda item: -item[1])[:5]:
        print(f"  {pid} {KINDS.get(pid, 'other')}: peak {value / 2**20:.0f} MiB")
    report = json.loads(next((work / "archive" / "reports").glob("*.json")).read_text())
    if cap:
        whole = report["archived"] == len(pdfs) and not report["quarantined"] and not kills
        print(f"memory cap {cap.limit:,} bytes ({cap.limit / 2**20:,.0f} MiB, a cgroup's hard limit, page cache "
              f"included): {'PASS' if whole else 'FAIL'}: {report['archived']} of {len(pdfs)} files archived, "
              f"{len(report['quarantined'])} quarantined, {kills} processes killed by the cgroup's OOM killer; "
              f"anonymous memory charged to the cgroup at its peak {ANON_PEAK[0] / 2**20:,.0f} MiB (each page once; "
              "it can hold memory freed but not yet taken back, which the kernel reclaims under the cap)")  # fmt: skip
    print_stages(report, args.workers, seconds)
    print_timeline(seconds, len(os.sched_getaffinity(0)))
    ours = {"pages": pages, "rate": rate, "engine": report["engine_seconds"], "cpu": sum(CPU.values()), "peak": peak,
            "overhead": 100 * (1 - report["engine_seconds"] / (args.workers * seconds))}  # fmt: skip
    # the set's truth: beside its scans/ folder (--set scans-dev/scans) or in it (--set scans-dev)
    truth = next((t for t in (args.scans / "truth", args.scans.parent / "truth") if t.is_dir()), None)
    ours["truth"] = truth if not args.big else None
    if truth is not None and not args.big:
        errors, length = same_run_cer(work / "archive", truth)
        print(f"CER of this run: {100 * errors / max(1, length):.2f}% ({errors} errors / {length} characters; "
              "target <= 1%)")  # fmt: skip

    if args.ocrmypdf:
        baseline = 60 * pages / run_ocrmypdf(args.ocrmypdf_bin, pdfs, work, args.workers)
        print(f"OCRmyPDF (same machine, same files, same run): {baseline:.1f} pages/min")
    else:
        baseline = OCRMYPDF_DESIGN_PAGES_PER_MIN
        print(f"OCRmyPDF baseline: {baseline} pages/min (design notes §4, 2-core machine; pass --vs-ocrmypdf to "
              "re-measure)")  # fmt: skip
    print(f"speed-up over OCRmyPDF: {rate / baseline:.1f}x (target 4x)")
    if args.rapidocr:
        versus_rapidocr(args, pdfs, work, ours)
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
