"""Batch reports: what a batch did, for the archivist who comes back to it.
Saved beside the archive as ``reports/<batch>.json`` and ``.md``."""

from __future__ import annotations

from pathlib import Path

from archive.errors import NotFound
from archive.preservation.fourprops import REPORT_PREFIX
from archive.records.batch import BatchSummary
from archive.storage.fixity import atomic_write_bytes, atomic_write_json
from archive.storage.store import Archive, read_json


def render_markdown(summary: BatchSummary) -> str:
    lines = [
        f"# Batch {summary.batch}",
        "",
        "| documents | archived | pages | already archived | quarantined | failed | pages/min | seconds |",
        "|---|---|---|---|---|---|---|---|",
        f"| {summary.documents} | {summary.archived} | {summary.pages} | {summary.duplicates} "
        f"| {len(summary.quarantined)} | {len(summary.failed)} | {summary.pages_per_minute} "
        f"| {summary.seconds} |",
    ]
    quarantined = summary.quarantined
    sections = [
        ("Quarantined", [f"`{Path(q['source']).name}` — {q['reason']}: {q['message']}" for q in quarantined]),
        ("Failed (retry the batch)", [f"`{Path(f['source']).name}`: {f['message']}" for f in summary.failed]),
        ("Not done: batch stopped (run it again)", [f"`{Path(n).name}`" for n in summary.interrupted]),
        ("QC flags", [f"`{source}`: {', '.join(flags)}" for source, flags in summary.qc_flags.items()]),
        ("Duplicates", [f"`{Path(d['source']).name}` = {d['archived_as']}" for d in summary.duplicate_files]),
        ("Manifest rows changed since archiving (not applied; `review fix-metadata` applies them)", [
            f"`{Path(m['source']).name}` ({m['document']}): "
            + ", ".join(f"{name} {then!r} → {now!r}" for name, (then, now) in m["changes"].items())
            for m in summary.manifest_changes
        ]),
        ("Manifest", summary.manifest_problems
         + [f"row for `{n}` but no such file" for n in summary.manifest_rows_without_file]
         + [f"`{n}` has no row" for n in summary.files_without_manifest_row]),
        ("Filed by project name", [f"{f['document']} → {f['project_code']}" for f in summary.filed_by_name]),
    ]  # fmt: skip
    for title, items in sections:
        if items:
            lines += ["", f"## {title}", ""] + [f"- {item}" for item in items]
    return "\n".join(lines) + "\n"


def render_text(summary: BatchSummary) -> str:
    """The batch summary as ``ingest`` prints it: one line of counts, then a line for
    each file that needs a look (quarantined, failed, not done, manifest trouble, QC)."""
    lines = [
        f"\nbatch {summary.batch}: {summary.documents} documents, {summary.archived} archived "
        f"({summary.pages} pages), {summary.duplicates} already in the archive, "
        f"{len(summary.quarantined)} quarantined, {len(summary.failed)} failed, "
        f"{len(summary.interrupted)} not done; "
        f"{summary.indexed_pages} pages indexed; {summary.seconds} s ({summary.pages_per_minute} pages/min)"
    ]
    lines += [f"  quarantined {item['source']}: {item['message']}" for item in summary.quarantined]
    lines += [f"  FAILED {item['source']}: {item['message']}" for item in summary.failed]
    lines += [f"  NOT DONE {source}: the batch was stopped" for source in summary.interrupted]
    lines += [f"  duplicate {d['source']}: same bytes as {d['archived_as']}" for d in summary.duplicate_files]
    for item in summary.manifest_changes:
        changed = ", ".join(f"{name} {then!r} -> {now!r}" for name, (then, now) in item["changes"].items())
        fix = f"trade-archive review fix-metadata {item['document']} FIELD=VALUE --note ..."
        lines.append(f"  manifest row changed for {item['source']} (archived as {item['document']}): {changed}; "
                     f"not applied: `{fix}`")  # fmt: skip
    lines += [f"  manifest {problem}" for problem in summary.manifest_problems]
    lines += [f"  manifest lists {name}, which is not in the batch" for name in summary.manifest_rows_without_file]
    lines += [f"  {name} has no manifest row" for name in summary.files_without_manifest_row]
    lines += [f"  filed {f['document']} under {f['project_code']} (project name matches)"
              for f in summary.filed_by_name]  # fmt: skip
    lines += [f"  QC {source}: {', '.join(flags)}" for source, flags in summary.qc_flags.items()]
    lines += [f"  ignored (not a PDF, hidden, or a link to nothing): {name}" for name in summary.ignored]
    lines.append(f"report: {summary.archive}/reports/{summary.batch}.json")
    return "\n".join(lines)


def save_report(archive: Archive, summary: BatchSummary) -> Path:
    folder = archive.root / "reports"
    atomic_write_json(folder / f"{summary.batch}.json", summary.to_json())
    markdown = folder / f"{summary.batch}.md"
    atomic_write_bytes(markdown, render_markdown(summary).encode("utf-8"))
    return markdown


def _report_files(archive: Archive) -> list[Path]:
    """The batch reports, oldest first: not the certificates or the four-property checks beside them."""
    reports = sorted((archive.root / "reports").glob("*.json"))
    return [r for r in reports if not (r.name.endswith("-acceptance.json") or r.name.startswith(REPORT_PREFIX))]


def load_reports(archive: Archive, run: str | None = None) -> list[BatchSummary]:
    """Every batch's report, oldest first; ``run``: only those of the Prefect flow run
    with this id (or its first characters): an inbox run makes one batch per delivery."""
    reports = [BatchSummary.from_json(read_json(path)) for path in _report_files(archive)]
    if run:
        reports = [r for r in reports if (r.run or "").startswith(run.strip().lower())]
        if not reports:
            raise NotFound(f"no batch of the run {run} in {archive.root}/reports (`trade-archive report --list`)")
    return reports


def render_list(reports: list[BatchSummary]) -> str:
    """One line a batch: id, the run that started it, what became of its documents."""
    lines = [f"{'batch':<24} {'run':<36} docs archived dup quarantined failed"]
    lines += [f"{r.batch:<24} {r.run or '-':<36} {r.documents:>4} {r.archived:>8} {r.duplicates:>3} "
              f"{len(r.quarantined):>11} {len(r.failed):>6}" for r in reports]  # fmt: skip
    return "\n".join(lines)


def load_report(archive: Archive, batch: str | None = None) -> BatchSummary:
    """A batch's report; the latest batch when none is named."""
    reports = _report_files(archive)
    if batch:
        reports = [r for r in reports if r.stem == batch]
    if not reports:
        raise NotFound(f"no batch report{f' for {batch}' if batch else ''} in {archive.root}/reports")
    return BatchSummary.from_json(read_json(reports[-1]))
