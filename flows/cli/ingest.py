"""Commands that start flows or set them up: ingest (a batch now), serve (the schedules),
deploy (on a work pool for many machines) and cluster-certs (a Dask cluster's TLS).
Prefect is imported inside them: the other commands start without it."""

import sys
from pathlib import Path

import click

from archive.acceptance.report import render_text
from archive.config import export_to_environment, load_config
from archive.errors import ExitCode
from flows.cli.base import archive_option, cli, config_option, echo_json, json_option


@cli.command(example=["trade-archive ingest scans/2023-05 --manifest scans/2023-05/manifest.csv --archive /srv/archive",
                      "trade-archive ingest scans/2023-05 --json > summary.json"])  # fmt: skip
@click.argument("src", type=click.Path(exists=True))
@click.option("--manifest", type=click.Path(exists=True, dir_okay=False),
              help="Trading platform export (CSV in UTF-8/GBK, or XLSX) to join by file name.")  # fmt: skip
@click.option("--column", "columns", multiple=True, metavar="FIELD=HEADER",
              help="Map a manifest column the built-in names miss, e.g. --column amount=合同价.")  # fmt: skip
@archive_option
@click.option("--engine", type=click.Choice(["rapidocr", "tesseract"]),
              help="OCR engine (default: config, else rapidocr: far more accurate on Chinese).")  # fmt: skip
@click.option("--workers", type=click.IntRange(min=1), help="OCR processes (default: one per core).")
@click.option("--dask", metavar="ADDRESS", help="Run the documents on a Dask cluster, e.g. tls://10.0.0.5:8786.")
@click.option("--dask-certs", type=click.Path(exists=True, file_okay=False), envvar="TRADE_ARCHIVE_DASK_CERTS",
              help="The cluster's TLS certificates (`trade-archive cluster-certs DIR`).")  # fmt: skip
@click.option("--wait", is_flag=True, help="If another ingest is writing to the archive, wait instead of stopping.")
@json_option
@click.option("--progress/--no-progress", "show_progress", default=None,
              help="Progress on stderr: pages, pages/min, time left (default: at a terminal, not --json).")  # fmt: skip
def ingest(src: str, as_json: bool, show_progress: bool | None, **options: object) -> ExitCode:
    """Archive every PDF under SRC (recursively) through the Prefect ingest flow. Files
    already archived (same SHA-256) are skipped, so running a batch again finishes it;
    unreadable, encrypted or non-PDF files go to quarantine/ with a reason."""
    from flows.server import prefect_api

    show_progress = sys.stderr.isatty() and not as_json if show_progress is None else show_progress
    with prefect_api() as server:  # first: Prefect's server starts while the flow loads
        from flows.ingest import ingest_now

        summary = ingest_now(src, show_progress=show_progress, server=server, **options)  # type: ignore[arg-type]
    echo_json(summary.to_json()) if as_json else click.echo(render_text(summary))
    if summary.interrupted:
        click.echo(f"interrupted: {len(summary.interrupted)} file(s) not done; run the same command again "
                   "to finish the batch", err=True)  # fmt: skip
    return summary.exit_code


@cli.command(example=["prefect server start &   # UI on http://127.0.0.1:4200",
                      "export PREFECT_API_URL=http://127.0.0.1:4200/api",
                      "trade-archive serve --config /etc/trade-archive.toml"])  # fmt: skip
@config_option
@click.option("--once", is_flag=True, help="Process the inbox once now instead of serving the schedules.")
def serve(config_file: str | None, once: bool) -> None:
    """Run the scheduled deployments (inbox ingest, weekly verify, nightly index
    optimisation) against a persistent Prefect server; see runs in its UI."""
    from flows.operations import inbox_once, serve_all

    settings = load_config(config_file)
    export_to_environment(settings)  # the OCR workers read low_confidence, page_seconds, ... from it
    echo_json(inbox_once(settings)) if once else serve_all(settings)


@cli.command(example=["export PREFECT_API_URL=http://10.0.0.5:4200/api PREFECT_API_AUTH_STRING=admin:secret",
                      "trade-archive deploy --config /etc/trade-archive.toml"])  # fmt: skip
@config_option
@click.option("--pool", default="trade-archive", show_default=True, help="Process work pool (made if missing).")
def deploy(config_file: str | None, pool: str) -> None:
    """Put the scheduled flows (inbox, weekly verify, nightly optimise) on a process work pool
    of a persistent Prefect server, with the settings file's paths and schedules; workers on
    other machines run them (`prefect worker start --pool POOL`). Names: POOL-inbox, ..."""
    from flows.operations import deploy_to_pool  # Prefect: loaded only for the commands that use it

    for name in deploy_to_pool(load_config(config_file), pool):
        click.echo(f"deployed {name} on work pool {pool}")


@cli.command(name="cluster-certs", example="trade-archive cluster-certs /etc/trade-archive/dask")
@click.argument("folder", type=click.Path(file_okay=False))
def cluster_certs(folder: str) -> None:
    """Make a Dask cluster's TLS certificates in FOLDER: ca.pem, node.pem, node-key.pem (copy
    all three to the scheduler, every worker and the ingesting machine; keep the key private).
    Running it again replaces them: copy the new ones everywhere."""
    from flows.cluster import make_certificates

    for path in make_certificates(Path(folder)):
        click.echo(path)
