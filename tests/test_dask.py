"""Scale-out: the ingest flow's document tasks on a real Dask cluster (a
scheduler and two workers on loopback), through prefect-dask's DaskTaskRunner."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from archive.preservation.verify import verify_archive
from archive.storage.store import Archive
from flows.cli import cli

BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def dask_cluster(prefect_harness, tmp_path):
    from distributed import Client
    from prefect.settings import PREFECT_API_URL

    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value(), "OMP_THREAD_LIMIT": "1",
           "PYTHONPATH": str(Path(__file__).resolve().parents[1])}  # fmt: skip
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "env": env, "cwd": tmp_path}
    processes = [subprocess.Popen([BIN / "dask", "scheduler", "--host", "127.0.0.1", "--port", str(port),
                                   "--no-dashboard"], **quiet)]  # fmt: skip
    for name in ("w1", "w2"):
        processes.append(subprocess.Popen([BIN / "dask", "worker", address, "--nworkers", "1", "--nthreads", "1",
                                           "--name", name, "--no-dashboard"], **quiet))  # fmt: skip
    try:
        with Client(address, timeout=60) as client:
            client.wait_for_workers(2, timeout=90)
        yield address
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:  # a loaded machine: never leave a scheduler or worker behind
                process.kill()
                process.wait()


def test_ingest_runs_documents_on_two_dask_workers(dask_cluster, resources, tmp_path, monkeypatch):
    from distributed import Client

    # The archivist's settings, in this process only: the workers' environment does not have them.
    monkeypatch.setenv("TRADE_ARCHIVE_LOW_CONFIDENCE", "0.999")
    archive = tmp_path / "archive"
    args = ["ingest", str(resources), "--manifest", str(resources / "manifest.csv"), "--archive", str(archive),
            "--dask", dask_cluster, "--json"]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output[result.output.index("{") :])
    assert summary["archived"] == 2 and summary["pages"] == 3
    assert verify_archive(Archive(archive)).ok
    with Client(dask_cluster) as client:
        assert len(client.scheduler_info()["workers"]) == 2
    # The same scans ingested locally give the same archive: same page texts, same document ids, same flags.
    local = tmp_path / "local"
    args_local = ["ingest", str(resources), "--manifest", str(resources / "manifest.csv"), "--archive", str(local)]
    assert CliRunner().invoke(cli, args_local).exit_code == 0
    assert _page_texts(archive) == _page_texts(local)
    flags = _qc_flags(archive)
    assert flags == _qc_flags(local)
    assert any(flag.startswith("low_confidence_page:") for each in flags.values() for flag in each)  # 0.999: flagged


def _page_texts(archive: Path) -> dict:
    exported = CliRunner().invoke(cli, ["export", "--archive", str(archive)]).output
    return {(p["document"], p["page"]): p["text"] for p in map(json.loads, exported.splitlines())}


def _qc_flags(archive: Path) -> dict:
    """Each document's QC flags, as its document.json records them."""
    return {p.parent.parent.name: json.loads(p.read_text(encoding="utf-8"))["qc_flags"]
            for p in archive.rglob("document.json")}  # fmt: skip
