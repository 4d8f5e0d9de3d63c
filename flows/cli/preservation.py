"""Commands that keep the archive trustworthy and hand it on: verify, reindex, transfer."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from archive.errors import ExitCode
from flows.cli.base import archive_option, cli, open_archive, progress_option


@cli.command()
@archive_option
@click.option("--json", "as_json", is_flag=True, help="Print the full report as JSON.")
@progress_option
def verify(archive_dir: str | None, as_json: bool, show_progress: bool | None) -> None:
    """Re-hash every archived file and check the event log's hash chain.

    Exits 0 only when everything holds; otherwise exits 4 and names each
    changed, missing or untracked file with its document and transaction.

    \b
    Example:
      trade-archive verify --archive /srv/archive --json
    """
    from archive.ingest.progress import pass_progress
    from archive.preservation.verify import check_fixity, declared_pages, verify_totals

    archive = open_archive(archive_dir)
    with pass_progress("verify", show_progress, lambda: verify_totals(archive)) as bar:
        report = check_fixity(
            archive, None if bar is None else lambda package: bar.document_done(declared_pages(package))
        )
    if report.unrecorded:
        click.echo(f"warning: {report.unrecorded}", err=True)
    if as_json:
        click.echo(json.dumps(report.to_json(), ensure_ascii=False, indent=2))
    else:
        for p in report.problems:
            owner = f" (document {p.document}, transaction {p.transaction})" if p.document else ""
            click.echo(f"{p.kind.upper()}: {p.path}{owner}: {p.detail}")
        state = "OK" if report.ok else f"{len(report.problems)} PROBLEM(S)"
        click.echo(f"verify: {report.documents} documents, {report.files} files: {state}")
    if not report.ok:
        sys.exit(int(ExitCode.verify_failed))


@cli.command()
@archive_option
@click.option("--backend", type=click.Choice(["whoosh", "tantivy"]), default=None,
              help="Switch the index backend (default: keep the archive's; tantivy for large archives).")  # fmt: skip
@progress_option
def reindex(archive_dir: str | None, backend: str | None, show_progress: bool | None) -> None:
    """Rebuild the search index, and every transaction's record, from the archive's
    documents (the archive is the truth).

    \b
    Examples:
      trade-archive reindex --archive /srv/archive
      trade-archive reindex --backend tantivy --archive /srv/archive   # 100x faster queries at 200k pages
    """
    import index
    from archive.ingest.progress import pass_progress
    from archive.records.export import page_totals

    archive = open_archive(archive_dir)
    with pass_progress("reindex", show_progress, lambda: page_totals(archive)) as bar:
        pages = index.reindex(archive, backend, None if bar is None else bar.page_done)
    click.echo(f"reindex: {pages} pages indexed ({index.backend_name(archive)})")


@cli.command()
@click.argument("destination", type=click.Path(file_okay=False))
@click.option("--transaction", "project_code", help="Only this project code's documents.")
@archive_option
def transfer(destination: str, project_code: str | None, archive_dir: str | None) -> None:
    """Copy validated BagIt packages to DESTINATION with a transfer manifest,
    ready for an archives bureau or Archivematica's bag transfer.

    \b
    Example:
      trade-archive transfer /mnt/handover --transaction GXZC2023-G1-001234-KWZB --archive /srv/archive
    """
    from archive.preservation.transfer import transfer as transfer_bags

    manifest = transfer_bags(open_archive(archive_dir), Path(destination), project_code)
    click.echo(f"transfer: {len(manifest['bags'])} validated bags in {destination} (transfer-manifest.json)")
