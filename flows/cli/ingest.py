"""Commands that start flows: ingest (a batch now) and serve (the schedules)."""

from __future__ import annotations

import json
import sys

import click

from archive.errors import ExitCode
from flows.cli.base import archive_option, cli


@cli.command()
@click.argument("src", type=click.Path(exists=True))
@click.option("--manifest", type=click.Path(exists=True, dir_okay=False),
              help="Trading platform export (CSV in UTF-8/GBK, or XLSX) to join by file name.")  # fmt: skip
@click.option("--column", "columns", multiple=True, metavar="FIELD=HEADER",
              help="Map a manifest column the built-in names miss, e.g. --column amount=合同价.")  # fmt: skip
@archive_option
@click.option("--engine", type=click.Choice(["rapidocr", "tesseract"]), default=None,
              help="OCR engine (default: config, else rapidocr; PP-OCR is far more accurate on Chinese).")  # fmt: skip
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="OCR worker processes (default: one per core).")  # fmt: skip
@click.option("--dask", metavar="ADDRESS", help="Run the documents on a Dask cluster, e.g. tls://10.0.0.5:8786.")
@click.option("--dask-certs", type=click.Path(exists=True, file_okay=False), envvar="TRADE_ARCHIVE_DASK_CERTS",
              help="The cluster's TLS certificates (`trade-archive cluster-certs DIR`).")  # fmt: skip
@click.option("--wait", is_flag=True, help="If another ingest is writing to the archive, wait instead of stopping.")
@click.option("--json", "as_json", is_flag=True, help="Print the batch summary as JSON.")
@click.option("--progress/--no-progress", "show_progress", default=None,
              help="Live progress bar on stderr: pages done, pages/min, time to go "
              "(default: on when stderr is a terminal and not --json).")  # fmt: skip
def ingest(src: str, manifest: str | None, columns: tuple[str, ...], archive_dir: str | None, engine: str | None,
           workers: int | None, dask: str | None, dask_certs: str | None, wait: bool, as_json: bool,
           show_progress: bool | None) -> None:  # fmt: skip
    """Archive every PDF under SRC (recursively) through the Prefect ingest flow.

    Files already in the archive (same SHA-256) are skipped, so re-running a
    batch after an interruption finishes it. Unreadable, encrypted or non-PDF
    files go to quarantine/ with a reason; the batch goes on.

    \b
    Examples:
      trade-archive ingest scans/2023-05 --manifest scans/2023-05/manifest.csv --archive /srv/archive
      trade-archive ingest scans/2023-05 --json --progress > summary.json   # bar on stderr, JSON on stdout
      trade-archive ingest scans/2023-05 --dask tls://10.0.0.5:8786 --dask-certs /etc/trade-archive/dask
    """
    from archive.acceptance.report import render_text
    from flows.server import prefect_api

    if show_progress is None:
        show_progress = sys.stderr.isatty() and not as_json
    with prefect_api() as server:  # first: Prefect's server starts while the rest loads
        from flows.ingest import ingest_now

        summary = ingest_now(src, archive_dir, manifest, columns, engine, workers, dask, dask_certs, wait,
                             show_progress, server)  # fmt: skip
    click.echo(json.dumps(summary.to_json(), ensure_ascii=False, indent=2) if as_json else render_text(summary))
    if summary.interrupted:
        click.echo(f"interrupted: {len(summary.interrupted)} file(s) not done; run the same command again "
                   "to finish the batch", err=True)  # fmt: skip
        sys.exit(int(ExitCode.interrupted))
    if summary.failed:
        sys.exit(int(ExitCode.other_error))


@cli.command()
@click.option("--config", "config_file", type=click.Path(dir_okay=False), help="Configuration file (TOML).")
@click.option("--once", is_flag=True, help="Process the inbox once now instead of serving the schedules.")
def serve(config_file: str | None, once: bool) -> None:
    """Run the scheduled deployments (inbox ingest, weekly verify, nightly index
    optimisation) against a persistent Prefect server; see runs in its UI.

    \b
    Example:
      prefect server start &      # UI on http://127.0.0.1:4200
      export PREFECT_API_URL=http://127.0.0.1:4200/api
      trade-archive serve --config /etc/trade-archive.toml
    """
    from archive.config import export_to_environment, load_config
    from flows.operations import inbox_once, serve_all

    settings = load_config(config_file)
    export_to_environment(settings)  # the OCR workers read low_confidence, page_seconds, ... from it
    if once:
        click.echo(json.dumps(inbox_once(settings), ensure_ascii=False, indent=2))
    else:
        serve_all(settings)
