"""Commands that start flows: ingest (a batch now) and serve (the schedules)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import click

from archive.errors import ExitCode, InvalidValue, NotFound
from archive.storage.store import resolve_root
from flows.cli import archive_option, cli


def _columns(_ctx: object, _param: object, pairs: tuple[str, ...]) -> dict[str, str]:
    from archive.records.manifest import column_map

    try:
        return column_map(pairs)
    except InvalidValue as error:
        raise click.BadParameter(str(error)) from None


@cli.command()
@click.argument("src", type=click.Path(exists=True))
@click.option("--manifest", type=click.Path(exists=True, dir_okay=False),
              help="Trading platform export (CSV in UTF-8/GBK, or XLSX) to join by file name.")  # fmt: skip
@click.option("--column", "columns", multiple=True, metavar="FIELD=HEADER", callback=_columns,
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
def ingest(src: str, manifest: str | None, columns: dict[str, str], archive_dir: str | None, engine: str | None,
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
    from archive.config import load_config
    from archive.ingest.batch import check_request
    from flows.cluster import check_dask
    from flows.server import prefect_api

    if dask:  # an open cluster, or workers with no server to report to: refused before anything starts
        from prefect.settings import PREFECT_API_URL

        check_dask(dask, dask_certs and Path(dask_certs), PREFECT_API_URL.value())

    with prefect_api() as server:  # first: Prefect's server starts while the rest loads
        from flows.ingest import ingest_batch, pages_ready, stoppable

        try:  # what is wrong with the arguments is said now, not after Prefect's start
            check_request(Path(src), manifest, columns, resolve_root(archive_dir), wait)
        except (NotFound, InvalidValue) as error:
            hint = "SRC" if isinstance(error, NotFound) else "--manifest"
            raise click.BadParameter(str(error), param_hint=hint) from None
        settings = load_config()
        engine, workers = engine or settings.engine, workers or settings.workers or _default_workers()
        if show_progress is None:
            show_progress = sys.stderr.isatty() and not as_json
        # Ctrl-C or SIGTERM stops the batch cleanly within seconds: what is archived
        # stays, is indexed and reported; the rest is left for the next run.
        bar = _live_progress() if show_progress else contextlib.nullcontext()
        pool = contextlib.nullcontext() if dask else pages_ready(workers, engine)
        with stoppable(signal.SIGINT, signal.SIGTERM), bar, pool:
            if server is not None:
                server.wait_ready()
            _refuse_if_stopped()
            summary = ingest_batch.with_options(task_runner=_task_runner(dask, dask_certs, workers))(
                src=str(Path(src).resolve()), archive_root=str(resolve_root(archive_dir)),
                manifest=manifest and str(Path(manifest).resolve()), engine=engine, workers=workers, wait=wait,
                columns=columns, distributed=bool(dask), low_confidence=settings.low_confidence,
                page_seconds=settings.page_seconds, index_backend=settings.index,
            )  # fmt: skip
    click.echo(json.dumps(summary, ensure_ascii=False, indent=2) if as_json else render_text(summary))
    if summary["interrupted"]:
        click.echo(f"interrupted: {len(summary['interrupted'])} file(s) not done; run the same command again "
                   "to finish the batch", err=True)  # fmt: skip
        sys.exit(int(ExitCode.interrupted))
    if summary["failed"]:
        sys.exit(int(ExitCode.other_error))


def _default_workers() -> int:
    from archive.capture.parallel import default_workers

    return default_workers()


def _task_runner(dask: str | None, certificates: str | None, workers: int):  # noqa: ANN202 - a Prefect task runner
    if dask:
        from prefect_dask import DaskTaskRunner

        from flows.cluster import security

        tls = {"security": security(Path(certificates))} if certificates else {}
        return DaskTaskRunner(address=dask, client_kwargs=tls)  # documents run on the cluster's workers
    from prefect.task_runners import ThreadPoolTaskRunner

    return ThreadPoolTaskRunner(max_workers=workers + 2)  # keep every OCR process fed


def _refuse_if_stopped() -> None:
    from archive.ingest.batch import stop_requested

    if stop_requested():  # Ctrl-C while starting: nothing was done, no batch to report
        click.echo("interrupted before the batch started; nothing was done", err=True)
        sys.exit(int(ExitCode.interrupted))


@contextlib.contextmanager
def _live_progress() -> Iterator[None]:
    """A progress bar on stderr fed by the ingest flow, for the length of the block;
    Prefect's console INFO lines would scroll it away (the bar says the same), so only
    its warnings and errors show, above the bar."""
    from archive.ingest.progress import LiveBar
    from flows.ingest import report_progress
    from flows.server import console_above

    with LiveBar() as bar, console_above(bar), report_progress(bar):
        yield


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
    from flows.operations import inbox_batch, inbox_parameters, serve_all
    from flows.server import prefect_api

    settings = load_config(config_file)
    export_to_environment(settings)  # what else reads the environment (an index's backend) sees the file's values
    if once:
        with prefect_api() as server:  # as ingest: the configured server, else a temporary one
            if server is not None:
                server.wait_ready()
            result = inbox_batch(**{**inbox_parameters(settings), "archive_root": str(resolve_root(settings.home))})
        click.echo(json.dumps(result, ensure_ascii=False, indent=2))
        return
    if not os.environ.get("PREFECT_API_URL"):
        click.echo("error: schedules need a persistent Prefect server: run `prefect server start` and "
                   "export PREFECT_API_URL=http://127.0.0.1:4200/api", err=True)  # fmt: skip
        sys.exit(int(ExitCode.bad_arguments))
    serve_all(settings)
