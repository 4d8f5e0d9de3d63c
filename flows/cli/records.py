"""Commands over what the archive holds: export, show, file, report, audit, config."""

from __future__ import annotations

import json

import click

from flows.cli.base import archive_option, cli, open_archive, progress_option


@cli.command()
@click.option("--format", "fmt", type=click.Choice(["jsonl"]), default="jsonl", show_default=True)
@archive_option
@progress_option
def export(fmt: str, archive_dir: str | None, show_progress: bool | None) -> None:
    """Print every archived page as one JSON object per line (keys: docs/contracts.md).

    \b
    Example:
      trade-archive export --format jsonl --archive /srv/archive > pages.jsonl
    """
    from archive.ingest.progress import pass_progress
    from archive.records.export import export_pages

    totals, pages = export_pages(open_archive(archive_dir), fmt)
    with pass_progress("export", show_progress, lambda: totals) as bar:
        for page in pages:  # streamed: an archive's pages are never all in memory
            click.echo(json.dumps(page, ensure_ascii=False))
            if bar is not None:
                bar.page_done(page)


@cli.command()
@click.argument("document")
@click.option("--page", type=click.IntRange(min=1), help="Only this page, e.g. --page 2.")
@archive_option
def show(document: str, page: int | None, archive_dir: str | None) -> None:
    """Print a document's metadata and page text (logged in the audit trail).

    \b
    Example:
      trade-archive show 737f17a0e625e281 --page 1 --archive /srv/archive
    """
    from archive.records.export import show_pages

    package, pages = show_pages(open_archive(archive_dir), document, page)
    first = pages[0]
    click.echo(f"{first['source']}  ({first['doc_type']}, {first['access']})")
    click.echo(f"access PDF: {package / 'data' / 'access.pdf'}")
    click.echo(json.dumps(first["metadata"], ensure_ascii=False, indent=2))
    for item in pages:
        click.echo(f"--- page {item['page']}{' (blank)' if item['blank'] else ''} ---\n{item['text']}")


@cli.command(name="file")
@click.argument("document")
@click.option("--code", "project_code", required=True, help="The project code to file the document under.")
@archive_option
def file_command(document: str, project_code: str, archive_dir: str | None) -> None:
    """File a document (e.g. one left in unfiled/) under a transaction; the
    package moves whole and the move is logged.

    \b
    Example:
      trade-archive file 3fa85f6457174562 --code GXZC2023-G1-001234-KWZB --archive /srv/archive
    """
    import index
    from archive.acceptance.review import file_by_hand

    target = file_by_hand(open_archive(archive_dir), document, project_code, reindex=index.refresh)
    click.echo(f"filed {document} under {project_code}: {target}")


@cli.command()
@click.argument("batch", required=False)
@archive_option
@click.option("--run", metavar="RUN_ID", help="Every batch of this Prefect flow run (an inbox run: one per delivery).")
@click.option("--list", "as_list", is_flag=True, help="One line per batch: every batch, or the run's.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def report(batch: str | None, archive_dir: str | None, run: str | None, as_list: bool, as_json: bool) -> None:
    """Print a batch's report (the latest batch when none is named), or every batch
    of a flow run (its id is on the run's page and in `prefect deployment run`'s output).

    \b
    Example:
      trade-archive report 20231231T020000Z --archive /srv/archive
      trade-archive report --run 3f2a9c51 --archive /srv/archive
      trade-archive report --list --archive /srv/archive
    """
    from archive.acceptance.report import load_report, load_reports, render_list, render_markdown

    archive = open_archive(archive_dir)
    reports = load_reports(archive, run) if run or as_list else [load_report(archive, batch)]
    if as_json:
        found = [r.to_json() for r in reports]
        click.echo(json.dumps(found if run or as_list else found[0], ensure_ascii=False, indent=2))
    else:
        click.echo(render_list(reports) if as_list else "\n\n".join(map(render_markdown, reports)))


@cli.command()
@click.option("--config", "config_file", type=click.Path(dir_okay=False), help="Configuration file (TOML).")
def config(config_file: str | None) -> None:
    """Print the effective configuration and where each value came from
    (default, config file, or TRADE_ARCHIVE_* environment variable).

    \b
    Example:
      TRADE_ARCHIVE_WORKERS=8 trade-archive config --config /etc/trade-archive.toml
    """
    from archive.config import describe, load_config

    click.echo(describe(load_config(config_file)))


@cli.command()
@archive_option
@click.option("--user", help="Only this OS user.")
@click.option("--action", type=click.Choice(["search", "show", "export", "catalogue"]), help="Only this kind of use.")
@click.option("--since", help="From this time (ISO, e.g. 2023-12-01 or 2023-12-01T08:00).")
@click.option("--json", "as_json", is_flag=True, help="One JSON event per line.")
def audit(archive_dir: str | None, user: str | None, action: str | None, since: str | None, as_json: bool) -> None:
    """List who searched, showed or exported what, and when (from the event log).

    \b
    Example:
      trade-archive audit --user zhangwei --action search --since 2023-12-01
    """
    from archive.storage.audit import use_events

    count = 0
    for event in use_events(open_archive(archive_dir), user, action, since):
        count += 1
        if as_json:
            click.echo(json.dumps(event, ensure_ascii=False))
            continue
        what = event.get("query") or event.get("document") or event.get("format") or ""
        click.echo(f"{event['time']}  {event['user']:<12} {event['action']:<7} {what}  -> {event['results']} result(s)")
    if not as_json:
        click.echo(f"{count} event(s)")
