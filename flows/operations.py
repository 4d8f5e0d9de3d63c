"""Flows an admin schedules: the inbox ingest, the weekly verify, the nightly
index optimisation; and ``serve``, which runs them on their schedules against
a persistent Prefect server."""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import bagit
from prefect import flow, get_run_logger, serve
from prefect.artifacts import create_markdown_artifact
from prefect.runtime import flow_run
from prefect.schedules import Cron

import index
from archive.capture.backends import REREAD_BELOW
from archive.capture.pageproc import DEFAULT_LOW_CONFIDENCE, DEFAULT_PAGE_SECONDS
from archive.config import Config
from archive.errors import InvalidValue
from archive.ingest.inbox import (
    batch_lock,
    claim,
    claimed_batches,
    fail_batch,
    find_manifests,
    settle,
    settled_deliveries,
)
from archive.preservation.verify import check_fixity
from archive.records.batch import BatchSummary
from archive.records.manifest import read_manifest
from archive.storage.store import Archive, resolve_root
from flows.ingest import ingest_batch, publish_artifacts


@flow(name="inbox-ingest", log_prints=True)
def inbox_batch(
    inbox: str,
    archive_root: str,
    stable_seconds: float = 30,
    engine: str = "rapidocr",
    workers: int | None = None,
    low_confidence: float = DEFAULT_LOW_CONFIDENCE,
    page_seconds: float = DEFAULT_PAGE_SECONDS,
    index_backend: str | None = None,
    ocr_backend: str = "auto",
    ocr_reread_below: float = REREAD_BELOW,
) -> dict:
    """Ingest what has settled in the inbox; move each file to done/ or failed/. Batches a
    stopped run left in processing/ are taken up first. The settings are parameters (from
    the configuration where the deployment was made): a worker machine's own do not count."""
    logger = get_run_logger()
    settings = {"engine": engine, "workers": workers, "low_confidence": low_confidence, "page_seconds": page_seconds,
                "index_backend": index_backend, "ocr_backend": ocr_backend,
                "ocr_reread_below": ocr_reread_below, "run": str(flow_run.get_id() or "") or None}  # fmt: skip
    reports: list[BatchSummary] = []  # each batch's, shown on this run's page: the one the admin lands on
    inbox_path = Path(inbox)
    for folder in ("processing", "done", "failed"):
        (inbox_path / folder).mkdir(parents=True, exist_ok=True)
    results = []
    for folder in claimed_batches(inbox_path):  # left by a run that was stopped, or one still working
        with batch_lock(inbox_path, folder.name) as ours:
            if ours and folder.is_dir():
                results.append(_run_claimed(inbox_path, folder.name, archive_root, settings, reports))
    ready = settled_deliveries(inbox_path, stable_seconds, Path(archive_root))
    files = [path for dropped in ready.values() for path in dropped]
    for delivery, dropped in ready.items():  # each with its own manifests
        batch = "inbox-" + datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
        with batch_lock(inbox_path, batch) as ours:  # before the folder exists: no other run takes it up
            if ours and claim(inbox_path, dropped, batch):
                results.append({"delivery": delivery, **_run_claimed(inbox_path, batch, archive_root, settings,
                                                                   reports)})  # fmt: skip
    if reports:
        publish_artifacts(reports, "inbox")
    if not results:
        logger.info("inbox %s: nothing settled to ingest", inbox)
        return {"claimed": 0}
    done = [path for result in results for path in result["done"]]
    failed = [path for result in results for path in result["failed"]]
    return {"claimed": len(files), "batches": results, "done": done, "failed": failed}


def _run_claimed(inbox: Path, batch: str, archive_root: str, settings: dict, reports: list[BatchSummary]) -> dict:
    """Ingest one claimed batch folder and settle its files; its report joins ``reports``."""
    logger = get_run_logger()
    folder = inbox / "processing" / batch
    manifests = find_manifests(folder)
    for manifest in manifests:
        try:
            read_manifest(manifest)
        except Exception as error:  # noqa: BLE001 - whatever keeps it from being read (a damaged .xlsx)
            moved = fail_batch(inbox, batch, f"the batch's manifest {manifest.name} cannot be read ({error}); "
                               "fix or remove it and drop the files in the inbox again")  # fmt: skip
            logger.error("inbox %s: manifest %s cannot be read: %s", batch, manifest.name, error)
            return {"inbox_batch": batch, **moved}
    manifest = [str(m) for m in manifests] or None
    summary = BatchSummary.from_json(ingest_batch(src=str(folder), archive_root=archive_root, manifest=manifest,
                                                  wait=True, **settings))  # fmt: skip
    reports.append(summary)
    archive = Archive(Path(archive_root))
    verified = set()
    for outcome in summary.outcomes:
        package = archive.find_document(outcome.document or "")
        if package is not None:
            try:
                bagit.Bag(str(package)).validate(processes=1)
                verified.add(package.name)
            except bagit.BagError as error:
                logger.error("package %s does not validate: %s", package, error)
    moved = settle(inbox, batch, summary.outcomes, verified)
    logger.info("inbox %s (batch %s): %d done, %d failed", batch, summary.batch, len(moved["done"]),
                len(moved["failed"]))  # fmt: skip
    return {"inbox_batch": batch, "batch": summary.batch, **moved}


@flow(name="verify-archive")
def verify_flow(archive_root: str) -> dict:
    """Re-hash the whole archive; the run fails (and can alert) on any problem."""
    archive = Archive.open(Path(archive_root))
    report = check_fixity(archive)
    lines = [f"# Verify {archive.root}", "", f"{report.documents} documents, {report.files} files: "
             + ("OK" if report.ok else f"**{len(report.problems)} problem(s)**"), ""]  # fmt: skip
    lines += [f"- {p.kind}: `{p.path}` ({p.transaction or ''} {p.document or ''}) {p.detail}" for p in report.problems]
    create_markdown_artifact("\n".join(lines), key="verify-report", description="Archive fixity check")
    if not report.ok:
        raise RuntimeError(f"verify found {len(report.problems)} problem(s); see the verify-report artifact")
    return report.to_json()


@flow(name="optimise-index")
def optimise_index_flow(archive_root: str) -> str:
    """Merge index segments at night, when nobody is searching."""
    archive = Archive.open(Path(archive_root))
    with archive.writer_lock(wait=True):
        return index.optimise(archive)


def inbox_parameters(config: Config) -> dict:
    """The inbox flow's parameters: paths, and every setting that changes a page's record."""
    return {"inbox": str(Path(config.inbox).resolve()), "archive_root": str(Path(config.home).resolve()),
            "stable_seconds": config.stable_seconds, "engine": config.engine, "workers": config.workers or None,
            "low_confidence": config.low_confidence, "page_seconds": config.page_seconds,
            "index_backend": config.index, "ocr_backend": config.ocr_backend,
            "ocr_reread_below": config.ocr_reread_below}  # fmt: skip


def build_deployments(config: Config, prefix: str = "", **options: Any) -> list:
    """The three scheduled deployments, paths and schedules from the configuration.
    ``prefix``: before each name (a work pool's must not replace serve's); ``options``:
    more for each ``to_deployment`` (a work pool's entry point, its job's environment)."""
    archive_root = str(Path(config.home).resolve())
    every = {"timezone": config.timezone}
    return [
        inbox_batch.to_deployment(
            name=f"{prefix}inbox", schedules=[Cron(config.ingest_cron, **every)],
            parameters=inbox_parameters(config),
            description="Ingest what has settled in the inbox (hot folder).",
            concurrency_limit=1,  # a run still working when the next is due: the next waits
            **options,
        ),
        verify_flow.to_deployment(
            name=f"{prefix}weekly-verify", schedules=[Cron(config.verify_cron, **every)],
            parameters={"archive_root": archive_root}, description="Re-hash the whole archive.", **options,
        ),
        optimise_index_flow.to_deployment(
            name=f"{prefix}nightly-optimise", schedules=[Cron(config.optimize_cron, **every)],
            parameters={"archive_root": archive_root}, description="Optimise the search index.", **options,
        ),
    ]  # fmt: skip


def deploy_to_pool(config: Config, pool: str) -> list[str]:
    """The three deployments on the process work pool ``pool`` (made if missing), named
    ``<pool>-inbox`` ... beside serve's; a worker on any machine with trade-archive
    installed runs them (``prefect worker start --pool POOL``). The flows are found by
    module (``flows.operations``), not by a path on this machine. Returns their names."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.deployments.runner import EntrypointType
    from prefect.exceptions import ObjectAlreadyExists
    from prefect.settings import PREFECT_API_URL
    from prefect.workers.process import ProcessWorker

    if not PREFECT_API_URL.value():  # else they would go to a temporary server, gone at exit
        raise InvalidValue("deployments live on a persistent Prefect server: run `prefect server start` and export "
                           "PREFECT_API_URL=http://<server>:4200/api (and PREFECT_API_AUTH_STRING)")  # fmt: skip
    template = ProcessWorker.get_default_base_job_template()
    with get_client(sync_client=True) as client:
        try:
            client.create_work_pool(WorkPoolCreate(name=pool, type="process", base_job_template=template))
        except ObjectAlreadyExists:
            pass
    job = {"env": {"OMP_THREAD_LIMIT": "1"}}  # one OCR thread per worker process, as locally
    deployments = build_deployments(config, f"{pool}-", entrypoint_type=EntrypointType.MODULE_PATH, job_variables=job)
    for deployment in deployments:
        deployment.apply(work_pool_name=pool)
    return [f"{deployment.flow_name}/{deployment.name}" for deployment in deployments]


def serve_all(config: Config) -> None:
    """``trade-archive serve``: the deployments on their schedules, until stopped."""
    if not os.environ.get("PREFECT_API_URL"):
        raise InvalidValue("schedules need a persistent Prefect server: run `prefect server start` and "
                           "export PREFECT_API_URL=http://127.0.0.1:4200/api")  # fmt: skip
    serve(*build_deployments(config))


def inbox_once(config: Config) -> dict:
    """``trade-archive serve --once``: the inbox taken up now, on the configured Prefect
    server, else on a temporary one (as ingest)."""
    from flows.server import prefect_api

    with prefect_api() as server:
        if server is not None:
            server.wait_ready()
        return inbox_batch(**{**inbox_parameters(config), "archive_root": str(resolve_root(config.home))})
