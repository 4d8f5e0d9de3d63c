"""Commands of the archival arrangement and the paper originals: catalogue, paper, disposal."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import click

from flows.cli.base import archive_option, cli, open_archive


@cli.command()
@click.option("--format", "fmt", type=click.Choice(["xlsx", "csv", "xml"]), default="xlsx", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="File to write (CSV and XML: stdout).")
@click.option("--year", type=int, help="Only documents of this year (年度).")
@click.option("--transaction", help="Only this transaction's documents (its project code).")
@archive_option
def catalogue(fmt: str, out: Path | None, year: int | None, transaction: str | None, archive_dir: str | None) -> None:
    """Write the catalogue (归档文件目录): one row per filed document, in 档号 order, with
    档号, 题名, 责任者, 日期, 页数, 保管期限, 文号, 项目编号, 盒号, 架位.

    \b
    Example:
      trade-archive catalogue --format xlsx --out 2023.xlsx --year 2023 --archive /srv/archive
    """
    from archive.records.catalogue import write_catalogue

    rows, text = write_catalogue(open_archive(archive_dir), fmt, out, year, transaction)
    click.echo(text if text is not None else f"{rows} documents catalogued in {out}", nl=text is None)


@cli.command()
@click.argument("document")
@click.option("--box", required=True, help="Box number (盒号) of the paper original.")
@click.option("--shelf", required=True, help="Shelf (架位) the box stands on.")
@archive_option
def paper(document: str, box: str, shelf: str, archive_dir: str | None) -> None:
    """Record where a document's paper original is kept (logged; the latest holds).

    \b
    Example:
      trade-archive paper 737f17a0e625e281 --box 2023-015 --shelf A-03-2 --archive /srv/archive
    """
    from archive.records.originals import record_paper_location

    record_paper_location(open_archive(archive_dir), document, box, shelf)
    click.echo(f"{document}: paper original in box {box.strip()}, shelf {shelf.strip()}")


@cli.group(invoke_without_command=True)
@click.option("--due", type=int, help="List documents whose retention ends in this year or before (default: now).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
@archive_option
@click.pass_context
def disposal(ctx: click.Context, due: int | None, as_json: bool, archive_dir: str | None) -> None:
    """Documents whose retention period has ended, for appraisal (鉴定) of their paper
    originals. Electronic copies are never deleted.

    \b
    Example:
      trade-archive disposal --due 2055 --json --archive /srv/archive
      trade-archive disposal record 737f17a0e625e281 --decision keep --approver 王芳 --note "still disputed"
    """
    if ctx.invoked_subcommand is not None:
        return
    from archive.records.originals import due_for_appraisal

    listed = due_for_appraisal(open_archive(archive_dir), due)
    if as_json:
        click.echo(json.dumps([asdict(item) for item in listed], ensure_ascii=False, indent=2))
        return
    for item in listed:
        decided = f"{item.decision} ({item.approver})" if item.decision else "not appraised"
        click.echo(f"{item.archival_code}  ends {item.retention_ends}  box {item.box or '-'}  {decided}  {item.title}")
    click.echo(f"{len(listed)} document(s) due")


@disposal.command(name="record")
@click.argument("document")
@click.option("--decision", type=click.Choice(["destroy", "keep"]), required=True)
@click.option("--approver", required=True, help="Who approved the decision.")
@click.option("--note", required=True, help="Why (the appraisal's finding).")
@archive_option
def disposal_record(document: str, decision: str, approver: str, note: str, archive_dir: str | None) -> None:
    """Record an appraisal decision on a document's paper original in the event log.

    \b
    Example:
      trade-archive disposal record 737f17a0e625e281 --decision destroy --approver 王芳 --note "鉴定小组 2055-03"
    """
    from archive.records.originals import record_appraisal

    event = record_appraisal(open_archive(archive_dir), document, decision, approver, note)
    early = " (before its retention ends)" if event["before_retention_ends"] else ""
    click.echo(f"{event['archival_code']}: {decision}{early}, approved by {event['approver']}; logged")
