"""Commands over what the archive holds (archive.records): export, show, file, report,
audit, config; the arrangement (catalogue) and the paper originals (paper, disposal)."""

import json
from dataclasses import asdict
from pathlib import Path

import click

import index
from archive.acceptance.report import load_report, load_reports, render_list, render_markdown
from archive.acceptance.review import file_by_hand
from archive.config import describe, load_config
from archive.ingest.progress import pass_progress
from archive.records.catalogue import write_catalogue
from archive.records.export import export_pages, render_shown, show_pages
from archive.records.originals import due_for_appraisal, record_appraisal, record_paper_location
from archive.storage.audit import use_events, use_line
from flows.cli.base import archive_option, cli, config_option, echo_json, json_option, open_archive, progress_option


@cli.command(example="trade-archive export --format jsonl > pages.jsonl")
@click.option("--format", "fmt", type=click.Choice(["jsonl"]), default="jsonl", show_default=True)
@archive_option
@progress_option
def export(fmt: str, archive_dir: str | None, show_progress: bool | None) -> None:
    """Print every archived page as one JSON object per line (keys: docs/contracts.md)."""
    totals, pages = export_pages(open_archive(archive_dir), fmt)
    with pass_progress("export", show_progress, lambda: totals) as bar:
        for page in pages:  # streamed: an archive's pages are never all in memory
            click.echo(json.dumps(page, ensure_ascii=False))
            if bar is not None:
                bar.page_done(page)


@cli.command(example="trade-archive show 737f17a0e625e281 --page 1")
@click.argument("document")
@click.option("--page", type=click.IntRange(min=1), help="Only this page, e.g. --page 2.")
@archive_option
def show(document: str, page: int | None, archive_dir: str | None) -> None:
    """Print a document's metadata and page text (logged in the audit trail)."""
    click.echo(render_shown(*show_pages(open_archive(archive_dir), document, page)))


@cli.command(name="file", example="trade-archive file 3fa85f6457174562 --code GXZC2023-G1-001234-KWZB")
@click.argument("document")
@click.option("--code", "project_code", required=True, help="The project code to file the document under.")
@archive_option
def file_command(document: str, project_code: str, archive_dir: str | None) -> None:
    """File a document (e.g. one in unfiled/) under a transaction; the package moves whole, logged."""
    target = file_by_hand(open_archive(archive_dir), document, project_code, reindex=index.refresh)
    click.echo(f"filed {document} under {project_code}: {target}")


@cli.command(example=["trade-archive report 20231231T020000Z", "trade-archive report --list"])
@click.argument("batch", required=False)
@archive_option
@click.option("--run", metavar="RUN_ID", help="Every batch of this Prefect flow run (its id is on its page in the UI).")
@click.option("--list", "as_list", is_flag=True, help="One line per batch: every batch, or the run's.")
@json_option
def report(batch: str | None, archive_dir: str | None, run: str | None, as_list: bool, as_json: bool) -> None:
    """Print a batch's report (the latest when none is named), or every batch of a flow run."""
    archive = open_archive(archive_dir)
    several = bool(run or as_list)
    reports = load_reports(archive, run) if several else [load_report(archive, batch)]
    if as_json:
        echo_json([r.to_json() for r in reports] if several else reports[0].to_json())
    else:
        click.echo(render_list(reports) if as_list else "\n\n".join(map(render_markdown, reports)))


@cli.command(example="TRADE_ARCHIVE_WORKERS=8 trade-archive config --config /etc/trade-archive.toml")
@config_option
def config(config_file: str | None) -> None:
    """Print the effective settings and where each came from (default, file, TRADE_ARCHIVE_* variable)."""
    click.echo(describe(load_config(config_file)))


@cli.command(example="trade-archive audit --user zhangwei --action search --since 2023-12-01")
@archive_option
@click.option("--user", help="Only this OS user.")
@click.option("--action", type=click.Choice(["search", "show", "export", "catalogue"]), help="Only this kind of use.")
@click.option("--since", help="From this time (ISO, e.g. 2023-12-01 or 2023-12-01T08:00).")
@click.option("--json", "as_json", is_flag=True, help="One JSON event per line.")
def audit(archive_dir: str | None, user: str | None, action: str | None, since: str | None, as_json: bool) -> None:
    """List who searched, showed or exported what, and when (from the event log)."""
    count = 0
    for event in use_events(open_archive(archive_dir), user, action, since):
        count += 1
        click.echo(json.dumps(event, ensure_ascii=False) if as_json else use_line(event))
    if not as_json:
        click.echo(f"{count} event(s)")


@cli.command(example="trade-archive catalogue --format xlsx --out 2023.xlsx --year 2023")
@click.option("--format", "fmt", type=click.Choice(["xlsx", "csv", "xml"]), default="xlsx", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="File to write (CSV and XML: stdout).")
@click.option("--year", type=int, help="Only documents of this year (年度).")
@click.option("--transaction", help="Only this transaction's documents (its project code).")
@archive_option
def catalogue(fmt: str, out: Path | None, year: int | None, transaction: str | None, archive_dir: str | None) -> None:
    """Write the catalogue (归档文件目录): one row per filed document in 档号 order, with
    档号, 题名, 责任者, 日期, 页数, 保管期限, 文号, 项目编号, 盒号, 架位."""
    rows, text = write_catalogue(open_archive(archive_dir), fmt, out, year, transaction)
    click.echo(text if text is not None else f"{rows} documents catalogued in {out}", nl=text is None)


@cli.command(example="trade-archive paper 737f17a0e625e281 --box 2023-015 --shelf A-03-2")
@click.argument("document")
@click.option("--box", required=True, help="Box number (盒号) of the paper original.")
@click.option("--shelf", required=True, help="Shelf (架位) the box stands on.")
@archive_option
def paper(document: str, box: str, shelf: str, archive_dir: str | None) -> None:
    """Record where a document's paper original is kept (logged; the latest holds)."""
    record_paper_location(open_archive(archive_dir), document, box, shelf)
    click.echo(f"{document}: paper original in box {box.strip()}, shelf {shelf.strip()}")


@cli.group(invoke_without_command=True, example="trade-archive disposal --due 2055 --json")
@click.option("--due", type=int, help="List documents whose retention ends in this year or before (default: now).")
@json_option
@archive_option
@click.pass_context
def disposal(ctx: click.Context, due: int | None, as_json: bool, archive_dir: str | None) -> None:
    """Documents whose retention period has ended, for appraisal (鉴定) of their paper
    originals; `disposal record` logs the decision. Electronic copies are never deleted."""
    if ctx.invoked_subcommand is not None:
        return
    listed = due_for_appraisal(open_archive(archive_dir), due)
    if as_json:
        echo_json([asdict(item) for item in listed])
    else:
        click.echo("\n".join([*(item.line() for item in listed), f"{len(listed)} document(s) due"]))


@disposal.command(
    name="record",
    example='trade-archive disposal record 737f17a0e625e281 --decision keep --approver 王芳 --note "still disputed"',
)
@click.argument("document")
@click.option("--decision", type=click.Choice(["destroy", "keep"]), required=True)
@click.option("--approver", required=True, help="Who approved the decision.")
@click.option("--note", required=True, help="Why (the appraisal's finding).")
@archive_option
def disposal_record(document: str, decision: str, approver: str, note: str, archive_dir: str | None) -> None:
    """Record an appraisal decision on a document's paper original in the event log."""
    click.echo(record_appraisal(open_archive(archive_dir), document, decision, approver, note).summary())
