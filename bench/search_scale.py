"""How the search backends scale: archive N synthetic ~800-character Chinese pages,
reindex them and time eight kinds of query.

    python bench/search_scale.py --backend both --pages 20000
    python bench/search_scale.py --backend tantivy --pages 200000 --out /tmp/search-bench

The pages are deterministic (seeded): procurement prose with project codes,
award dates, amounts and parties, ten pages per document. They are written, one
page at a time, as a synthetic archive holding the files ``trade-archive reindex``
reads (each document's data/document.json and one OCR JSON a page) in
OUT/<backend>; the index is then built by the real command, ``trade-archive
reindex --backend NAME``, in its own process: pages/s is that process's wall
time (reading the archive included), peak RSS its ru_maxrss, as a reindex on a
real archive of that size would show them. Query latency is one ``index.search``
call as the search CLI makes it (index opened, query parsed, top 20 hits with
snippets), five different queries per kind, each run ``--repeats`` times after
one warm-up query; p50, p95 and max per kind and over all queries.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import click

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import index  # noqa: E402
from archive.storage.store import Archive  # noqa: E402
from index import Filters  # noqa: E402

SEED = 20240601
PAGE_CHARS = 800
PAGES_PER_DOCUMENT = 10
MARKER = ".search-scale-bench"

TITLES = {
    "tender_notice": "招标公告",
    "tender_documents": "招标文件",
    "bid": "投标文件",
    "bid_opening": "开标记录表",
    "evaluation_report": "评标报告",
    "candidate_notice": "中标候选人公示",
    "award_notice": "中标（成交）通知书",
    "contract": "政府采购合同",
    "notice": "关于项目延期的通知",
}
TRANSACTION_TYPES = ("工程建设招标投标", "政府采购", "土地使用权出让", "国有产权交易", "药品和医疗器械采购")
CITIES = ("南宁市", "柳州市", "桂林市", "梧州市", "北海市", "防城港市", "钦州市", "贵港市", "玉林市", "百色市")
WORKS = ("排水管网改造工程", "单轨运行系统采购", "道路提升改造项目", "医疗设备采购", "校园信息化建设", "污水处理厂扩建",
         "公共照明节能改造", "农田水利设施建设", "档案数字化加工服务", "物业管理服务")  # fmt: skip
FIRMS = ("中建三局集团有限公司", "广西华鑫科技有限公司", "桂林建工集团有限公司", "广西招标有限公司",
         "柳州市鑫源建设工程有限公司", "南宁市政工程集团有限公司", "广西中信恒泰工程顾问有限公司",
         "北海市城建投资有限公司", "中铁二十五局集团有限公司", "广西壮族自治区采购中心")  # fmt: skip
SENTENCES = (
    "经评标委员会评审，确定中标人如下。", "本项目已在广西壮族自治区公共资源交易中心完成开标。",
    "投标人应当按照招标文件的要求编制投标文件。", "请中标人在收到本通知书后三十日内签订合同。",
    "本次采购采用公开招标方式，资格审查采用资格后审。", "投标保证金应当从投标人基本账户转出。",
    "评标委员会由采购人代表和评审专家共五人组成。", "如对本公告内容有异议，请于公示期内以书面形式提出。",
    "合同履行期限为自合同签订之日起三百六十五日。", "供应商须具备独立承担民事责任的能力。",
    "项目资金来源为财政资金，已落实。", "投标文件逾期送达的，招标人不予受理。",
    "废标情形：投标人不足三家或者实质性响应的供应商不足三家。", "本通知书一式三份，交易中心存档一份。",
    "开标时间为上午九时三十分，地点为交易中心开标室。", "中标候选人公示期为三个工作日。",
)  # fmt: skip
COMMON = (
    "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面而方后多"
    "定行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体制机当使点从业本去把性好应开它合还因由"
    "其些然前外天政四日那社义事平形相全表间样与关各重新线内数正心反你明看原又么利比或但质气第向道命此变条只没结解问意"
    "建月公无系军很情者最立代想已通并提直题党程展五果料象员革位入常文总次品式活设及管特件长求老头基资边流路级少图山统"
    "接知较将组见计别她手角期根论运农指几九区强放决西被干做必战先回则任取据处队南给色光门即保治北造百规热领七海口东导"
)
DOC_TYPES = tuple(TITLES)
OR_QUERIES = ("排水管网 OR 单轨运行", "医疗设备 OR 物业管理", "中标 OR 成交", "桂林 OR 柳州", "档 OR 鑫")


def iter_synthetic_pages(count: int, seed: int = SEED) -> Iterator[dict]:
    """``count`` page dicts in the export shape, the same for the same seed, one at a time."""
    rng = random.Random(seed)
    metadata: dict = {}
    doc_type = "other"
    document = ""
    for number in range(count):
        if number % PAGES_PER_DOCUMENT == 0:
            serial = number // PAGES_PER_DOCUMENT
            prefix = rng.choice(("GXZC", "NNZC", "LZZC", "GLZC"))
            year = rng.choice((2021, 2022, 2023, 2024))
            code = f"{prefix}{year}-G{rng.randint(1, 3)}-{serial:06d}-{rng.choice(('KWZB', 'ZXGC', 'RY', 'GK'))}"
            city, work = rng.choice(CITIES), rng.choice(WORKS)
            doc_type = rng.choice(DOC_TYPES)
            document = f"{serial:016x}"
            metadata = {
                "project_code": code,
                "project_name": city + work,
                "transaction_type": rng.choice(TRANSACTION_TYPES),
                "purchaser": city + rng.choice(("财政局", "教育局", "住房和城乡建设局", "人民医院", "水利局")),
                "agency": rng.choice(FIRMS[3:7]),
                "winner": rng.choice(FIRMS),
                "amount": round(rng.uniform(5e4, 5e7), 2),
                "award_date": f"{year}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
            }
        page_in_doc = number % PAGES_PER_DOCUMENT + 1
        head = [TITLES.get(doc_type, "文件")] if page_in_doc == 1 else []
        head += [
            f"项目编号：{metadata['project_code']}",
            f"项目名称：{metadata['project_name']}",
            f"采购人：{metadata['purchaser']} 代理机构：{metadata['agency']}",
        ]
        body: list[str] = []
        size = sum(len(line) for line in head)
        while size < PAGE_CHARS - 60:
            if rng.random() < 0.7:
                part = rng.choice(SENTENCES)
            else:
                part = "".join(rng.choice(COMMON) for _ in range(rng.randint(8, 30))) + "。"
            body.append(part)
            size += len(part)
        tail = [
            f"中标人：{metadata['winner']} 中标金额：人民币{metadata['amount']:.2f}元",
            f"日期：{metadata['award_date']} 第{page_in_doc}页",
        ]
        yield (
            {
                "document": document,
                "source": f"scan-{document[-6:]}.pdf",
                "source_sha256": document * 4,
                "page": page_in_doc,
                "text": "\n".join([*head, "".join(body), *tail]),
                "orientation": 0,
                "blank": False,
                "confidence": 0.97,
                "doc_type": doc_type,
                "metadata": dict(metadata),
            }
        )


def picked(count: int) -> list[int]:
    """The page numbers whose project codes the code queries use: spread over the archive."""
    return [int(i * (count - 1) / 4) for i in range(5)]


def query_kinds(picks: list[dict]) -> dict[str, list[tuple[str, Filters]]]:
    """Five queries of each kind, the codes from ``picks`` (pages), so that each finds something."""
    codes = [p["metadata"]["project_code"] for p in picks]
    none = Filters()
    return {
        "word": [(w, none) for w in ("交易中心", "中标人", "投标保证金", "评审专家", "财政资金")],
        "phrase": [(f"“{p}”", none) for p in ("评标委员会评审", "签订合同", "资格后审", "公示期内", "开标室")],
        "code": [(code, none) for code in codes],
        "code segment": [(code.split("-")[2], none) for code in codes],
        "single char": [(c, none) for c in ("鑫", "档", "医", "桂", "废")],
        "NOT": [(q, none) for q in ("中标 -废标", "交易中心 -开标", "合同 -保证金", "评审 -专家", "招标 -公示")],
        "OR": [(q, none) for q in OR_QUERIES],
        "filtered": [
            ("交易中心", Filters(doc_type="award_notice")),
            ("中标人", Filters(date_from="2023-01-01", date_to="2023-12-31")),
            ("评审", Filters(amount_min=1e6, amount_max=1e7)),
            ("合同", Filters(party="中建三局", transaction_type="政府采购")),
            ("招标", Filters(code="gxzc2023")),
        ],
    }


def folder_size(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def prepare(folder: Path) -> Path:
    if folder.exists():
        if any(folder.iterdir()) and not (folder / MARKER).exists():
            raise click.UsageError(f"{folder} is not empty and not a bench output: choose another --out")
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    (folder / MARKER).write_text("made by bench/search_scale.py; safe to delete\n")
    return folder


def write_archive(root: Path, count: int) -> tuple[Archive, list[dict], float]:
    """An archive of ``count`` synthetic pages with the files ``iter_pages`` reads (an unfiled
    package a document: bagit.txt, data/document.json, data/ocr/NNNN.json), written as the
    pages are made, never all in memory. Returns it, the ``picked`` pages, the average page length."""
    archive = Archive.open(root, create=True)
    wanted, picks, chars = set(picked(count)), [], 0
    package = root
    for number, page in enumerate(iter_synthetic_pages(count)):
        if page["page"] == 1:
            package = root / "unfiled" / page["document"]
            (package / "data" / "ocr").mkdir(parents=True)
            (package / "bagit.txt").write_text("BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n")
            pages = min(PAGES_PER_DOCUMENT, count - number)
            record = {key: page[key] for key in ("document", "source", "source_sha256", "doc_type", "metadata")}
            dump(package / "data" / "document.json", {**record, "pages": pages, "manifest_row": None})
        ocr = {key: page[key] for key in ("page", "text", "orientation", "blank", "confidence")}
        dump(package / "data" / "ocr" / f"{page['page']:04d}.json", ocr)
        chars += len(page["text"])
        if number in wanted:
            picks.append(page)
    return archive, picks, chars / count


def dump(path: Path, value: dict) -> None:
    path.write_text(json.dumps(value, ensure_ascii=False), encoding="utf-8")


def reindex(archive: Archive, backend: str) -> tuple[int, float, float, int]:
    """``trade-archive reindex`` in a process of its own: pages indexed, wall seconds, CPU seconds
    (user + system, all its threads) and peak RSS bytes."""
    command = [sys.executable, "-m", "flows.cli", "reindex", "--archive", str(archive.root), "--backend", backend]
    start = time.perf_counter()
    child = subprocess.Popen(command, cwd=Path(__file__).resolve().parents[1], stdout=subprocess.PIPE, text=True)
    _pid, status, usage = os.wait4(child.pid, 0)  # this child's own rusage, not all children's
    seconds = time.perf_counter() - start
    output = child.stdout.read() if child.stdout else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise click.ClickException(f"{' '.join(command)} failed: {output}")
    pages = int(output.split("reindex: ", 1)[1].split()[0])
    return pages, seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss * 1024  # Linux: ru_maxrss in KiB


def percentile(values: list[float], share: float) -> float:
    """The ``share`` quantile, nearest rank: a value that was measured, never interpolated."""
    ranked = sorted(values)
    return ranked[max(0, min(len(ranked) - 1, round(share * len(ranked) + 0.5) - 1))]


def run_backend(name: str, pages: int, out: Path, repeats: int, reuse: bool = False) -> None:
    start = time.perf_counter()
    if reuse:  # the archive and index an earlier run left in --out: queries only
        archive = Archive(out / name / "archive")
        if index.backend_name(archive) != name or not archive.index_dir.is_dir():
            raise click.UsageError(f"{out / name} holds no {name} index: run once without --reuse")
        wanted = set(picked(pages))
        picks = [page for n, page in enumerate(itertools.islice(iter_synthetic_pages(pages), max(wanted) + 1))
                 if n in wanted]  # fmt: skip
        count = pages
        click.echo(f"\n[{name}] the index of {pages} synthetic pages in {archive.root}, built by an earlier run")
    else:
        archive, picks, chars = write_archive(prepare(out / name) / "archive", pages)
        click.echo(f"\n[{name}] archive of {pages} synthetic pages, {chars:.0f} characters on average "
                   f"(written in {time.perf_counter() - start:.1f} s)")  # fmt: skip
        count, seconds, cpu, peak = reindex(archive, name)
        click.echo(f"[{name}] trade-archive reindex: {count} pages in {seconds:.1f} s = {count / seconds:,.0f} pages/s "
                   f"({cpu:.1f} CPU seconds, {cpu / seconds:.2f} cores busy on average), peak RSS of one process "
                   f"{peak / 2**30:.2f} GiB")  # fmt: skip
    size = folder_size(archive.index_dir)
    click.echo(f"[{name}] index {size / 1e6:.1f} MB on disk ({size / count / 1024:.2f} KiB/page)")
    index.search(archive, "交易中心")  # warm-up: first open of the index, OS cache
    all_ms: list[float] = []
    click.echo(f"  {'kind':<13} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}  pages matching (median)")
    for kind, queries in query_kinds(picks).items():
        times = []
        matching = []
        for raw, filters in queries:
            for _ in range(repeats):
                t0 = time.perf_counter()
                _hits, total = index.search_page(archive, raw, filters, 20)  # as the search CLI: top 20 + count
                times.append((time.perf_counter() - t0) * 1000)
            matching.append(total)
        all_ms += times
        click.echo(f"  {kind:<13} {statistics.median(times):8.1f} {percentile(times, 0.95):8.1f} "
                   f"{max(times):8.1f}  {statistics.median(matching):,.0f}")  # fmt: skip
    click.echo(f"  {'all':<13} {statistics.median(all_ms):8.1f} {percentile(all_ms, 0.95):8.1f} {max(all_ms):8.1f}")


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--backend", type=click.Choice(["whoosh", "tantivy", "both"]), default="both", show_default=True,
              help="Which index backend to measure, e.g. --backend tantivy.")  # fmt: skip
@click.option("--pages", type=click.IntRange(10), default=20_000, show_default=True,
              help="Synthetic pages to index, e.g. --pages 5000.")  # fmt: skip
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Keep the indexes in OUT/<backend>, e.g. --out /tmp/search-bench (default: temporary).")  # fmt: skip
@click.option("--repeats", type=click.IntRange(1), default=5, show_default=True,
              help="Runs of each query, e.g. --repeats 1.")  # fmt: skip
@click.option("--reuse", is_flag=True,
              help="Only the queries, on the index an earlier run left in --out (same --pages), "
                   "e.g. after a change to searching: --out /tmp/search-bench --reuse.")  # fmt: skip
def main(backend: str, pages: int, out: Path | None, repeats: int, reuse: bool) -> None:
    """Archive N synthetic Chinese pages, reindex them with a backend (`trade-archive
    reindex`, in its own process); print pages/s, peak RSS, index size and query
    latency p50/p95/max for word, phrase, code, code segment, single char, NOT, OR
    and filtered queries.

    \b
    Example:
      python bench/search_scale.py --backend both --pages 5000
    """
    click.echo(f"{os.cpu_count()} CPU cores; {pages} pages, {repeats} runs of each of 5 queries a kind")
    if reuse and out is None:
        raise click.UsageError("--reuse needs --out, the folder of the earlier run")
    temporary = out is None
    folder = Path(tempfile.mkdtemp(prefix="search-scale-")) if out is None else out
    try:
        for name in ("whoosh", "tantivy") if backend == "both" else (backend,):
            run_backend(name, pages, folder, repeats, reuse)
    finally:
        if temporary:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
