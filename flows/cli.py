"""``trade-archive``: the archivist's and admin's command line. Each command is
a thin wrapper over one library call or flow; exit codes are in archive.errors."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import click

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")  # archives often sit offline

from archive.errors import ExitCode, NotFound, TradeArchiveError
from archive.store import ENV_HOME, Archive, check_project_code, resolve_root

if TYPE_CHECKING:
    from archive.progress import LiveBar, PassProgress
    from flows.server import TemporaryServer

archive_option = click.option(
    "--archive", "archive_dir", type=click.Path(file_okay=False), default=None,
    help=f"Archive folder (default: ${ENV_HOME}, else ./archive-data).",
)  # fmt: skip


def _fail(error: TradeArchiveError) -> None:
    click.echo(f"error: {error}", err=True)
    sys.exit(int(error.exit_code))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="trade-archive")
def cli() -> None:
    """Digitise paper trading archives: scans in, a verified, searchable archive out.

    Settings come from trade-archive.toml (see `trade-archive config`),
    TRADE_ARCHIVE_* environment variables and the options below.

    \b
    Typical day:
      trade-archive ingest scans/ --manifest scans/manifest.csv --archive /srv/archive
      trade-archive verify --archive /srv/archive
      trade-search 中标通知书 --archive /srv/archive
    """
    from archive.config import export_to_environment, load_config

    try:
        export_to_environment(load_config())
    except TradeArchiveError as error:
        _fail(error)


@cli.command()
@click.argument("src", type=click.Path(exists=True))
@click.option(
    "--manifest",
    type=click.Path(exists=True, dir_okay=False),
    help="Trading platform export (CSV in UTF-8/GBK, or XLSX) to join by file name.",
)
@click.option("--column", "columns", multiple=True, metavar="FIELD=HEADER",
              help="Map a manifest column the built-in names miss, e.g. --column amount=合同价.")  # fmt: skip
@archive_option
@click.option("--engine", type=click.Choice(["rapidocr", "tesseract"]), default=None,
              help="OCR engine (default: config, else rapidocr; PP-OCR is far more accurate on Chinese).")  # fmt: skip
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="OCR worker processes (default: one per core).")  # fmt: skip
@click.option("--dask", metavar="ADDRESS", help="Run the documents on a Dask cluster, e.g. tcp://10.0.0.5:8786.")
@click.option("--wait", is_flag=True, help="If another ingest is writing to the archive, wait instead of stopping.")
@click.option("--json", "as_json", is_flag=True, help="Print the batch summary as JSON.")
@click.option("--progress/--no-progress", "show_progress", default=None,
              help="Live progress bar on stderr: pages done, pages/min, time to go "
              "(default: on when stderr is a terminal and not --json).")  # fmt: skip
def ingest(
    src: str,
    manifest: str | None,
    columns: tuple[str, ...],
    archive_dir: str | None,
    engine: str,
    workers: int | None,
    dask: str | None,
    wait: bool,
    as_json: bool,
    show_progress: bool | None,
) -> None:
    """Archive every PDF under SRC (recursively) through the Prefect ingest flow.

    Files already in the archive (same SHA-256) are skipped, so re-running a
    batch after an interruption finishes it. Unreadable, encrypted or non-PDF
    files go to quarantine/ with a reason; the batch goes on.

    \b
    Examples:
      trade-archive ingest scans/2023-05 --manifest scans/2023-05/manifest.csv --archive /srv/archive
      trade-archive ingest scans/2023-05 --json --progress > summary.json   # bar on stderr, JSON on stdout
    """
    from flows.server import prefect_api

    with prefect_api() as server:  # first: Prefect's server starts while the rest loads
        from flows.ingest import stoppable

        _check_ingest_arguments(Path(src), manifest, columns, archive_dir, wait)  # now, not after Prefect's start

        # Ctrl-C or SIGTERM stops the batch cleanly within seconds: what is archived
        # stays, is indexed and reported; the rest is left for the next run.
        with stoppable(signal.SIGINT, signal.SIGTERM):
            summary = _run_ingest(src, manifest, columns, archive_dir, engine, workers, dask, wait, as_json,
                                  show_progress, server)  # fmt: skip
    if as_json:
        click.echo(json.dumps(summary, ensure_ascii=False, indent=2))
    else:
        _print_summary(summary)
    if summary["interrupted"]:
        click.echo(f"interrupted: {len(summary['interrupted'])} file(s) not done; run the same command again "
                   "to finish the batch", err=True)  # fmt: skip
        sys.exit(int(ExitCode.interrupted))
    if summary["failed"]:
        sys.exit(int(ExitCode.other_error))


@contextlib.contextmanager
def _live_progress() -> Iterator[None]:
    """A progress bar on stderr fed by the ingest flow, for the length of the block."""
    from archive.progress import LiveBar
    from flows.ingest import report_progress

    with LiveBar() as bar, _prefect_console_above(bar), report_progress(bar):
        yield


@contextlib.contextmanager
def _prefect_console_above(bar: LiveBar) -> Iterator[None]:
    """Prefect's console log while the bar is live: its INFO lines (one per
    document, and the engine's own) would scroll the bar away, and the bar says
    the same; warnings and errors (quarantines, failures) still show, above the bar."""
    import logging

    from prefect.logging.handlers import PrefectConsoleHandler

    from archive.progress import LogAboveBar

    loggers = [logging.getLogger()] + [
        logger for logger in logging.Logger.manager.loggerDict.values() if isinstance(logger, logging.Logger)
    ]
    handlers = {id(h): h for lg in loggers for h in lg.handlers if isinstance(h, PrefectConsoleHandler)}
    filters = [(handler, LogAboveBar(bar, handler)) for handler in handlers.values()]
    for handler, log_filter in filters:
        handler.addFilter(log_filter)
    try:
        yield
    finally:
        for handler, log_filter in filters:
            handler.removeFilter(log_filter)


def _run_ingest(
    src: str,
    manifest: str | None,
    columns: tuple[str, ...],
    archive_dir: str | None,
    engine: str | None,
    workers: int | None,
    dask: str | None,
    wait: bool,
    as_json: bool,
    show_progress: bool | None,
    server: TemporaryServer | None,
) -> dict:
    """The ingest flow with its task runner, OCR workers and progress display."""
    from prefect.task_runners import ThreadPoolTaskRunner

    from archive.config import load_config
    from archive.parallel import default_workers
    from flows.ingest import ingest_batch, pages_ready, stop_requested

    settings = load_config()
    engine = engine or settings.engine
    workers = workers or settings.workers or default_workers()
    if dask:
        from prefect_dask import DaskTaskRunner

        runner = DaskTaskRunner(address=dask)  # documents run on the cluster's workers
    else:
        runner = ThreadPoolTaskRunner(max_workers=workers + 2)  # keep every OCR process fed
    if show_progress is None:
        show_progress = sys.stderr.isatty() and not as_json
    try:
        with (
            _live_progress() if show_progress else contextlib.nullcontext(),
            contextlib.nullcontext() if dask else pages_ready(workers, engine),
        ):
            if server is not None:
                server.wait_ready()
            if stop_requested():  # Ctrl-C while starting: nothing was done, no batch to report
                click.echo("interrupted before the batch started; nothing was done", err=True)
                sys.exit(int(ExitCode.interrupted))
            return ingest_batch.with_options(task_runner=runner)(
                src=str(Path(src).resolve()),
                archive_root=str(resolve_root(archive_dir)),
                manifest=manifest and str(Path(manifest).resolve()),
                engine=engine,
                workers=workers,
                wait=wait,
                columns=_column_map(columns),
                distributed=bool(dask),
            )
    except TradeArchiveError as error:
        _fail(error)
        raise  # not reached: _fail exits


def _check_ingest_arguments(src: Path, manifest: str | None, columns: tuple[str, ...], archive_dir: str | None,
                            wait: bool) -> None:  # fmt: skip
    """What ``ingest`` can tell is wrong before it starts: no PDF to ingest, a
    manifest it cannot read (wrong encoding, no header), a malformed --column, an
    archive another writer holds (the flow takes the lock for real later)."""
    from archive.manifest import read_manifest
    from flows.ingest import find_sources

    mapping = _column_map(columns)
    pdfs, ignored = find_sources(src, resolve_root(archive_dir))
    if not pdfs:
        raise click.BadParameter(f"no PDF under {src} ({len(ignored)} other file(s) ignored)", param_hint="SRC")
    if manifest:
        try:
            read_manifest(Path(manifest), mapping)
        except Exception as error:  # noqa: BLE001 - whatever keeps it from being read (a damaged .xlsx too)
            raise click.BadParameter(str(error) or type(error).__name__, param_hint="--manifest") from None
    if not wait and (root := resolve_root(archive_dir)).is_dir():
        try:
            with Archive(root).writer_lock():
                pass
        except TradeArchiveError as error:
            _fail(error)


def _column_map(pairs: tuple[str, ...]) -> dict[str, str]:
    from archive.manifest import HEADERS

    mapping = {}
    for pair in pairs:
        name, sep, header = pair.partition("=")
        if not sep or not name or not header:
            raise click.BadParameter(f"{pair!r}: write FIELD=HEADER, e.g. amount=合同价", param_hint="--column")
        if name.strip() not in HEADERS:
            raise click.BadParameter(f"{name.strip()!r} is not a manifest field; one of: {', '.join(HEADERS)}",
                                     param_hint="--column")  # fmt: skip
        mapping[name.strip()] = header.strip()
    return mapping


def _print_summary(summary: dict) -> None:
    click.echo(
        f"\nbatch {summary['batch']}: {summary['documents']} documents, {summary['archived']} archived "
        f"({summary['pages']} pages), {summary['duplicates']} already in the archive, "
        f"{len(summary['quarantined'])} quarantined, {len(summary['failed'])} failed, "
        f"{len(summary.get('interrupted', []))} not done; "
        f"{summary['indexed_pages']} pages indexed; {summary['seconds']} s ({summary['pages_per_minute']} pages/min)"
    )
    for item in summary["quarantined"]:
        click.echo(f"  quarantined {item['source']}: {item['message']}")
    for item in summary["failed"]:
        click.echo(f"  FAILED {item['source']}: {item['message']}")
    for source in summary.get("interrupted", []):
        click.echo(f"  NOT DONE {source}: the batch was stopped")
    for item in summary["duplicate_files"]:
        click.echo(f"  duplicate {item['source']}: same bytes as {item['archived_as']}")
    for item in summary.get("manifest_changes", []):
        changed = ", ".join(f"{name} {then!r} -> {now!r}" for name, (then, now) in item["changes"].items())
        fix = f"trade-archive review fix-metadata {item['document']} FIELD=VALUE --note ..."
        click.echo(f"  manifest row changed for {item['source']} (archived as {item['document']}): {changed}; "
                   f"not applied: `{fix}`")  # fmt: skip
    for problem in summary["manifest_problems"]:
        click.echo(f"  manifest {problem}")
    for name in summary["manifest_rows_without_file"]:
        click.echo(f"  manifest lists {name}, which is not in the batch")
    for name in summary["files_without_manifest_row"]:
        click.echo(f"  {name} has no manifest row")
    for item in summary["filed_by_name"]:
        click.echo(f"  filed {item['document']} under {item['project_code']} (project name matches)")
    for source, flags in summary["qc_flags"].items():
        click.echo(f"  QC {source}: {', '.join(flags)}")
    for name in summary["ignored"]:
        click.echo(f"  ignored (not a PDF, hidden, or a link to nothing): {name}")
    click.echo(f"report: {summary['archive']}/reports/{summary['batch']}.json")


@cli.command()
@click.option("--format", "fmt", type=click.Choice(["jsonl"]), default="jsonl", show_default=True)
@archive_option
@click.option("--progress/--no-progress", "show_progress", default=None,
              help="Live progress bar on stderr (default: on when stderr is a terminal).")  # fmt: skip
def export(fmt: str, archive_dir: str | None, show_progress: bool | None) -> None:
    """Print every archived page as one JSON object per line (DESIGN.md §2 keys).

    \b
    Example:
      trade-archive export --format jsonl --archive /srv/archive > pages.jsonl
    """
    from archive.audit import record_use, user_levels
    from archive.export import iter_pages, page_totals

    try:
        archive = Archive.open(resolve_root(archive_dir))
        _user, visible = user_levels(archive)
        totals = page_totals(archive, visible)  # counted first, so that the use is on record before any output
        record_use(archive, "export", totals[0], format=fmt)
    except TradeArchiveError as error:
        _fail(error)
    try:
        with _pass_progress(archive, "export", show_progress, lambda: totals) as progress:
            for page in iter_pages(archive, visible=visible):  # streamed: an archive's pages never all in memory
                click.echo(json.dumps(page, ensure_ascii=False))
                if progress is not None:
                    progress.page_done(page)
    except TradeArchiveError as error:  # a damaged file, met part-way: what came before is on stdout
        _fail(error)


@cli.command()
@archive_option
@click.option("--json", "as_json", is_flag=True, help="Print the full report as JSON.")
@click.option("--progress/--no-progress", "show_progress", default=None,
              help="Live progress bar on stderr (default: on when stderr is a terminal).")  # fmt: skip
def verify(archive_dir: str | None, as_json: bool, show_progress: bool | None) -> None:
    """Re-hash every archived file and check the event log's hash chain.

    Exits 0 only when everything holds; otherwise exits 4 and names each
    changed, missing or untracked file with its document and transaction.

    \b
    Example:
      trade-archive verify --archive /srv/archive --json
    """
    from archive.verify import declared_pages, verify_archive, verify_totals

    try:
        archive = Archive.open(resolve_root(archive_dir))
    except TradeArchiveError as error:
        _fail(error)
    with _pass_progress(archive, "verify", show_progress, lambda: verify_totals(archive)) as progress:
        on_document = None if progress is None else lambda package: progress.document_done(declared_pages(package))
        report = verify_archive(archive, on_document)
    try:
        archive.log("fixity check", "success" if report.ok else "failure", documents=report.documents,
                    files=report.files, problems=len(report.problems))  # fmt: skip
    except OSError as error:  # a read-only copy or a full disk: the check itself still stands
        click.echo(f"warning: this check is not recorded in {archive.events_path} ({error})", err=True)
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
@click.option("--progress/--no-progress", "show_progress", default=None,
              help="Live progress bar on stderr (default: on when stderr is a terminal).")  # fmt: skip
def reindex(archive_dir: str | None, backend: str | None, show_progress: bool | None) -> None:
    """Rebuild the search index, and every transaction's record, from the archive's
    documents (the archive is the truth).

    \b
    Examples:
      trade-archive reindex --archive /srv/archive
      trade-archive reindex --backend tantivy --archive /srv/archive   # 100x faster queries at 200k pages
    """
    import index
    from archive.transaction import refresh_all_transactions

    try:
        archive = Archive.open(resolve_root(archive_dir))
        with archive.writer_lock(), _pass_progress(archive, "reindex", show_progress) as progress:
            refresh_all_transactions(archive)  # the records feed the index; they are derived too
            pages = index.rebuild(archive, backend, None if progress is None else progress.page_done)
    except TradeArchiveError as error:
        _fail(error)
    archive.log("reindex", pages=pages, backend=index.backend_name(archive))
    click.echo(f"reindex: {pages} pages indexed ({index.backend_name(archive)})")


@contextlib.contextmanager
def _pass_progress(
    archive: Archive, name: str, show: bool | None, totals: Callable[[], tuple[int, int]] | None = None
) -> Iterator[PassProgress | None]:
    """A progress bar on stderr over a pass through the archive (``totals``: what gives its
    pages and documents; default: ``page_totals``), or None where no bar is wanted (default:
    only on a terminal)."""
    if not (sys.stderr.isatty() if show is None else show):
        yield None
        return
    from archive.export import page_totals
    from archive.progress import LiveBar, PassProgress

    # No drawing thread: whoosh writes a fresh index in forked processes only from a process without threads.
    with LiveBar(drawing_thread=False) as bar:
        progress = PassProgress(name, *(totals() if totals else page_totals(archive)), [bar])
        yield progress
        progress.finish()


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
    from archive.filing import file_document

    try:
        archive = Archive.open(resolve_root(archive_dir))
        with archive.writer_lock():
            target, changed = file_document(archive, document, check_project_code(project_code), "filed by hand")
            index.refresh(archive, changed)
    except TradeArchiveError as error:
        _fail(error)
    click.echo(f"filed {document} under {project_code}: {target}")


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
    from archive.transfer import transfer as transfer_bags

    try:
        manifest = transfer_bags(Archive.open(resolve_root(archive_dir)), Path(destination), project_code)
    except TradeArchiveError as error:
        _fail(error)
    click.echo(f"transfer: {len(manifest['bags'])} validated bags in {destination} (transfer-manifest.json)")


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

    try:
        click.echo(describe(load_config(config_file)))
    except TradeArchiveError as error:
        _fail(error)


@cli.command()
@click.argument("batch", required=False)
@archive_option
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def report(batch: str | None, archive_dir: str | None, as_json: bool) -> None:
    """Print a batch's report (the latest batch when none is named).

    \b
    Example:
      trade-archive report 20231231T020000Z --archive /srv/archive
    """
    from archive.report import load_report, render_markdown

    try:
        summary = load_report(Archive.open(resolve_root(archive_dir)), batch)
    except TradeArchiveError as error:
        _fail(error)
    click.echo(json.dumps(summary, ensure_ascii=False, indent=2) if as_json else render_markdown(summary))


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
    from flows.operations import inbox_batch, serve_all

    try:
        settings = load_config(config_file)
    except TradeArchiveError as error:
        _fail(error)
    export_to_environment(settings)  # the OCR workers read low_confidence, page_seconds, ... from it
    if once:
        from flows.server import prefect_api

        with prefect_api() as server:  # as ingest: the configured server, else a temporary one
            if server is not None:
                server.wait_ready()
            result = inbox_batch(inbox=str(Path(settings.inbox).resolve()),
                                 archive_root=str(resolve_root(settings.home)), stable_seconds=settings.stable_seconds,
                                 engine=settings.engine, workers=settings.workers or None)  # fmt: skip
        click.echo(json.dumps(result, ensure_ascii=False, indent=2))
        return
    if not os.environ.get("PREFECT_API_URL"):
        click.echo("error: schedules need a persistent Prefect server: run `prefect server start` and "
                   "export PREFECT_API_URL=http://127.0.0.1:4200/api", err=True)  # fmt: skip
        sys.exit(int(ExitCode.bad_arguments))
    serve_all(settings)


@cli.command()
@click.argument("batch", required=False)
@archive_option
@click.option("--override", metavar="REASON", help="Accept despite open flags; the reason goes in the event log.")
def accept(batch: str | None, archive_dir: str | None, override: str | None) -> None:
    """Run the acceptance checks on a batch (the latest when none is named) and
    write its certificate: reports/<batch>-acceptance.json, .md and .html
    (flagged pages shown as thumbnails beside their text). Exits 8 when flags
    are open, unless --override gives a reason.

    \b
    Examples:
      trade-archive accept --archive /srv/archive
      trade-archive accept 20231231T020000Z --override "manifest page counts are wrong; confirmed on paper"
    """
    from archive.acceptance import check_batch
    from archive.certificate import write_certificate

    try:
        archive = Archive.open(resolve_root(archive_dir))
        acceptance = check_batch(archive, batch)
    except TradeArchiveError as error:
        _fail(error)
    open_flags = [f for c in acceptance.checks for f in c.open_flags]
    accepted = acceptance.passed or bool(override)
    files = write_certificate(archive, acceptance, override if not acceptance.passed else None)
    for check in acceptance.checks:
        click.echo(f"{'PASS' if check.passed else 'FAIL'}  {check.name}: {'; '.join(check.evidence)}")
        for item in check.open_flags:
            where = f" ({item.source} p.{item.page})" if item.page else (f" ({item.source})" if item.source else "")
            click.echo(f"      [{item.id}] {item.message}{where}")
    archive.log("acceptance", "success" if accepted else "failure", batch=acceptance.batch,
                open_flags=len(open_flags), override=override if not acceptance.passed else None)  # fmt: skip
    verdict = "ACCEPTED" if acceptance.passed else ("ACCEPTED BY OVERRIDE" if override else "NOT ACCEPTED")
    click.echo(f"batch {acceptance.batch}: {verdict}; {len(open_flags)} open flag(s); certificate {files['html']}")
    if not accepted:
        sys.exit(int(ExitCode.not_accepted))


@cli.group()
def review() -> None:
    """Work through QC flags: list them, look at a page, correct text or
    metadata (kept as new versions; the original OCR stays), resolve flags.

    \b
    Example:
      trade-archive review list
      trade-archive review show 3f2a9c0b1d --png /tmp/page.png
      trade-archive review fix-text 737f17a0e625e281 1 --file corrected.txt --note "seal covered the date"
      trade-archive review resolve 3f2a9c0b1d --note "checked against the paper"
    """


@review.command("list")
@click.option("--batch", help="Batch (default: the latest).")
@archive_option
def review_list(batch: str | None, archive_dir: str | None) -> None:
    """List the open flags of a batch.

    \b
    Example:
      trade-archive review list --batch 20231201T080000123456Z --archive /srv/archive
    """
    from archive.acceptance import check_batch

    try:
        acceptance = check_batch(Archive.open(resolve_root(archive_dir)), batch)
    except TradeArchiveError as error:
        _fail(error)
    flags = [f for c in acceptance.checks for f in c.open_flags]
    for item in flags:
        where = f"{item.source} p.{item.page}" if item.page else (item.source or "")
        click.echo(f"[{item.id}] {item.check}: {item.message}  {where}")
    click.echo(f"{len(flags)} open flag(s) in batch {acceptance.batch}")


def _find_flag(archive: Archive, flag_id: str, batch: str | None):
    from archive.acceptance import find_flag

    if (item := find_flag(archive, flag_id, batch)) is None:
        raise NotFound(f"no flag {flag_id} in the batch; `trade-archive review list` shows them")
    return item


@review.command("show")
@click.argument("flag")
@click.option("--batch", help="Batch (default: the latest).")
@click.option("--png", "png_path", type=click.Path(dir_okay=False), help="Where to write the page image.")
@archive_option
def review_show(flag: str, batch: str | None, png_path: str | None, archive_dir: str | None) -> None:
    """Render a flagged page to PNG and print its text and metadata.

    \b
    Example:
      trade-archive review show 3f2a9c0b1d --png /tmp/page.png --archive /srv/archive
    """
    from archive.audit import record_use, user_levels
    from archive.certificate import page_png, page_text
    from archive.export import iter_documents

    try:
        archive = Archive.open(resolve_root(archive_dir))
        item = _find_flag(archive, flag, batch)
        package = archive.find_document(item.document) if item.document else None
        # with the archivists' corrections; None where this user may not see the document
        document = next(iter_documents(archive, iter([package]), user_levels(archive)[1]), None) if package else None
        if package is not None and document is None:  # the same answer as for a flag that does not exist
            raise NotFound(f"no flag {flag} in the batch; `trade-archive review list` shows them")
        if document is not None:
            record_use(archive, "show", 1, document=item.document, page=item.page, flag=item.id)
    except TradeArchiveError as error:
        _fail(error)
    click.echo(f"[{item.id}] {item.check}: {item.message}")
    if item.document and item.page:
        target = Path(png_path or f"{item.id}.png")
        target.write_bytes(page_png(archive, item.document, item.page, width=None) or b"")
        click.echo(f"page image: {target}")
        click.echo("--- text ---\n" + page_text(archive, item.document, item.page))
    if document is not None:
        click.echo("--- metadata ---\n" + json.dumps(document.metadata | {"doc_type": document.doc_type},
                                                   ensure_ascii=False, indent=2))  # fmt: skip


@review.command("fix-text")
@click.argument("document")
@click.argument("page", type=int)
@click.option("--file", "text_file", type=click.File(encoding="utf-8"), required=True, help="The corrected text.")
@click.option("--note", required=True, help="Why (kept in the event log).")
@archive_option
def review_fix_text(document: str, page: int, text_file, note: str, archive_dir: str | None) -> None:
    """Store corrected text for a page as a new version and reindex it.

    \b
    Example:
      trade-archive review fix-text 737f17a0e625e281 1 --file corrected.txt --note "seal covered the date"
    """
    import index
    from archive.review import correct_page_text

    try:
        archive = Archive.open(resolve_root(archive_dir))
        with archive.writer_lock():  # not while an ingest or reindex writes the index
            path = correct_page_text(archive, document, page, text_file.read().strip(), note)
            index.refresh(archive, [document])
    except TradeArchiveError as error:
        _fail(error)
    click.echo(f"saved {path}; the original OCR is unchanged")


@review.command("fix-metadata")
@click.argument("document")
@click.argument("fields", nargs=-1, required=True, metavar="FIELD=VALUE...")
@click.option("--note", required=True, help="Why (kept in the event log).")
@archive_option
def review_fix_metadata(document: str, fields: tuple[str, ...], note: str, archive_dir: str | None) -> None:
    """Correct metadata fields of a document (a new version) and reindex it.

    Fields: project_code, project_name, transaction_type, purchaser, agency, winner,
    amount, award_date, doc_type, access. Values are checked as a manifest's are
    (amounts in yuan or 万元, dates in any usual form); FIELD= clears a field.

    \b
    Example:
      trade-archive review fix-metadata 737f17a0e625e281 amount=123.45万 award_date=2023年5月12日 --note "per contract"
    """
    import index
    from archive.filing import correct_document_metadata

    values: dict[str, str] = {}
    for pair in fields:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise click.BadParameter(f"{pair!r}: write FIELD=VALUE, e.g. amount=1234567.89 (winner= clears the winner)")
        values[name.strip()] = value
    try:
        archive = Archive.open(resolve_root(archive_dir))
        with archive.writer_lock():
            changed = correct_document_metadata(archive, document, values, note)
            index.refresh(archive, changed)
    except TradeArchiveError as error:
        _fail(error)
    others = len(set(changed) - {document})  # a transaction's record is merged from all its documents
    click.echo(f"corrected {document}" + (f"; reindexed {others} more of its transaction" if others else ""))


@review.command("resolve")
@click.argument("flag")
@click.option("--note", required=True, help="What was checked or done.")
@click.option("--batch", help="The flag's batch, where it is not the latest (as for `review list`).")
@archive_option
def review_resolve(flag: str, note: str, batch: str | None, archive_dir: str | None) -> None:
    """Close a flag, with a note (kept in the archive and the event log).

    \b
    Example:
      trade-archive review resolve 3f2a9c0b1d --note "checked against the paper" --archive /srv/archive
    """
    from archive.acceptance import flag_known
    from archive.errors import NotFound
    from archive.review import resolve_flag

    try:
        archive = Archive.open(resolve_root(archive_dir))
        if not flag_known(archive, flag, batch):
            raise NotFound(f"no flag {flag} in this archive; `trade-archive review list` shows them")
        with archive.writer_lock():
            resolve_flag(archive, flag, note)
    except TradeArchiveError as error:
        _fail(error)
    click.echo(f"resolved {flag}")


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
    from archive.audit import record_use, user_levels
    from archive.export import iter_pages

    try:
        archive = Archive.open(resolve_root(archive_dir))
        _user, visible = user_levels(archive)
        package = archive.find_document(document)
        pages = [p for p in iter_pages(archive, iter([package]), visible)] if package else []
        pages = [p for p in pages if page is None or p["page"] == page]
        record_use(archive, "show", len(pages), document=document, page=page)
    except TradeArchiveError as error:
        _fail(error)
    if not pages:  # the same answer whether it does not exist or the user may not see it
        click.echo(f"error: no document {document}" + (f" page {page}" if page is not None else ""), err=True)
        sys.exit(int(ExitCode.input_file))
    first = pages[0]
    click.echo(f"{first['source']}  ({first['doc_type']}, {first['access']})")
    click.echo(f"access PDF: {package / 'data' / 'access.pdf'}")
    click.echo(json.dumps(first["metadata"], ensure_ascii=False, indent=2))
    for item in pages:
        click.echo(f"--- page {item['page']}{' (blank)' if item['blank'] else ''} ---\n{item['text']}")


def _iso_time(value: str | None) -> str | None:
    """An ISO date or time (local unless it says its zone) as the event log writes it (UTC)."""
    from datetime import datetime, timezone

    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an ISO date or time, e.g. 2023-12-01") from None
    return moment.astimezone(timezone.utc).isoformat(timespec="seconds")  # a time without a zone is local


@cli.command()
@archive_option
@click.option("--user", help="Only this OS user.")
@click.option("--action", type=click.Choice(["search", "show", "export"]), help="Only this kind of use.")
@click.option("--since", callback=lambda _ctx, _param, value: _iso_time(value),
              help="From this time (ISO, e.g. 2023-12-01 or 2023-12-01T08:00).")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="One JSON event per line.")
def audit(archive_dir: str | None, user: str | None, action: str | None, since: str | None, as_json: bool) -> None:
    """List who searched, showed or exported what, and when (from the event log).

    \b
    Example:
      trade-archive audit --user zhangwei --action search --since 2023-12-01
    """
    from archive.audit import use_events

    try:
        archive = Archive.open(resolve_root(archive_dir))
    except TradeArchiveError as error:
        _fail(error)
    count = 0
    for event in use_events(archive, user, action, since):
        count += 1
        if as_json:
            click.echo(json.dumps(event, ensure_ascii=False))
            continue
        what = event.get("query") or event.get("document") or event.get("format") or ""
        click.echo(f"{event['time']}  {event['user']:<12} {event['action']:<7} {what}  -> {event['results']} result(s)")
    if not as_json:
        click.echo(f"{count} event(s)")


def main() -> None:
    """The ``trade-archive`` command: click's, with stable exit codes where click has none:
    Ctrl-C is 130 (as for ingest), and a disk or permission failure is an error message
    with exit 5, not a traceback."""
    try:
        code = cli.main(standalone_mode=False)
    except click.exceptions.Abort:  # Ctrl-C (or end of input at a prompt)
        click.echo("stopped; run the same command again to finish", err=True)
        sys.exit(int(ExitCode.interrupted))
    except click.ClickException as error:
        error.show()
        sys.exit(error.exit_code)
    except TradeArchiveError as error:  # one a command does not expect (each catches those it does)
        _fail(error)
    except OSError as error:
        click.echo(f"error: {_os_error(error)}", err=True)
        sys.exit(int(ExitCode.archive_error))
    sys.exit(code if isinstance(code, int) else 0)


def _os_error(error: OSError) -> str:
    hint = {
        errno.ENOSPC: "the disk is full: free space and run the command again",
        errno.EDQUOT: "the disk quota is used up: free space and run the command again",
        errno.EROFS: "the file system is read-only: run it on a writable copy of the archive",
        errno.EACCES: "permission denied: run it as the archive's owner, or ask an admin",
        errno.EPERM: "not permitted: run it as the archive's owner, or ask an admin",
    }.get(error.errno or 0, "a disk or network problem")
    where = f" ({error.filename})" if error.filename else ""
    return f"{error.strerror or error}{where}: {hint}"


if __name__ == "__main__":
    main()
