"""Many machines: the work-pool route (a real worker runs the inbox deployment), a Dask
cluster with mutual TLS that refuses strangers, and what `ingest --dask` refuses."""

import json
import os
import socket
import ssl
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from archive.errors import InvalidValue
from flows.cli import cli

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[1]


def test_a_tls_cluster_takes_only_clients_with_its_certificate(tmp_path):
    from distributed import Client, LocalCluster

    from flows.cluster import security

    made = CliRunner().invoke(cli, ["cluster-certs", str(tmp_path / "certs")])
    assert made.exit_code == 0, made.output
    assert oct((tmp_path / "certs" / "node-key.pem").stat().st_mode & 0o777) == "0o600"
    CliRunner().invoke(cli, ["cluster-certs", str(tmp_path / "other")])  # another cluster's authority
    ours = security(tmp_path / "certs")
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, protocol="tls", host="127.0.0.1",
                      security=ours, dashboard_address=None) as cluster:  # fmt: skip
        address = cluster.scheduler_address
        assert address.startswith("tls://127.0.0.1:")
        with Client(address, security=ours, timeout=30) as client:
            assert client.submit(sum, [1, 2]).result(timeout=30) == 3
        with pytest.raises((OSError, TimeoutError)):  # no TLS at all
            Client(address.replace("tls://", "tcp://"), timeout=5).close()
        with pytest.raises((OSError, TimeoutError)):  # a certificate another authority signed
            Client(address, security=security(tmp_path / "other"), timeout=5).close()
        # A TLS client that trusts the cluster but shows no certificate of its own is refused; with one, served.
        assert _refused(address, tmp_path / "certs", show_certificate=False)
        assert not _refused(address, tmp_path / "certs", show_certificate=True)


def _refused(address: str, certs: Path, show_certificate: bool) -> bool:
    """Whether the scheduler ends a raw TLS connection at once (TLS 1.3 says so at the
    first read: 'certificate required'); it greets a client it takes."""
    host, port = address.removeprefix("tls://").rsplit(":", 1)
    context = ssl.create_default_context(cafile=str(certs / "ca.pem"))
    context.check_hostname = False
    if show_certificate:
        context.load_cert_chain(certs / "node.pem", certs / "node-key.pem")
    try:
        with socket.create_connection((host, int(port)), timeout=10) as raw, context.wrap_socket(raw) as tls:
            return tls.recv(1) == b""
    except (ssl.SSLError, ConnectionError):
        return True


@pytest.mark.parametrize(
    "address,certs,api,refused",
    [
        ("tcp://10.0.0.5:8786", None, "http://10.0.0.5:4200/api", "unencrypted"),
        ("tls://10.0.0.5:8786", None, "http://10.0.0.5:4200/api", "--dask-certs"),
        ("tls://10.0.0.5:8786", Path("certs"), None, "PREFECT_API_URL"),
        ("tcp://127.0.0.1:8786", None, None, None),  # one machine: nothing to open, the temporary server is reachable
        ("tls://10.0.0.5:8786", Path("certs"), "http://10.0.0.5:4200/api", None),
    ],
)
def test_ingest_on_dask_refuses_an_open_cluster_or_one_without_a_server(address, certs, api, refused):
    from flows.cluster import check_dask

    if refused is None:
        check_dask(address, certs, api)
        return
    with pytest.raises(InvalidValue, match=refused):
        check_dask(address, certs, api)


def test_the_work_pool_route_runs_an_inbox_delivery_to_completion(prefect_harness, tmp_path, resources):
    """`trade-archive deploy`, then `prefect worker start --run-once` (a real process worker,
    the flow in a subprocess) runs the inbox deployment; its settings are the file's."""
    from prefect import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL

    inbox, archive = tmp_path / "inbox", tmp_path / "archive"
    (inbox / "delivery").mkdir(parents=True)
    (inbox / "delivery" / "award-notice.pdf").write_bytes((resources / "award-notice.pdf").read_bytes())
    config = tmp_path / "trade-archive.toml"
    config.write_text(f'home = "{archive}"\ninbox = "{inbox}"\nstable_seconds = 0\nlow_confidence = 0.999\n'
                      'workers = 1\n' + "".join(f'{when} = "0 0 1 1 *"\n' for when in  # none due during the test
                                              ("ingest_cron", "verify_cron", "optimize_cron")))  # fmt: skip
    deployed = CliRunner().invoke(cli, ["deploy", "--config", str(config), "--pool", "test-pool"])
    assert deployed.exit_code == 0, deployed.output
    assert "inbox-ingest/test-pool-inbox" in deployed.output  # beside serve's inbox-ingest/inbox
    run = run_deployment("inbox-ingest/test-pool-inbox", timeout=0)
    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value(), "PYTHONPATH": str(ROOT)}
    worker = subprocess.run([BIN / "prefect", "worker", "start", "--pool", "test-pool", "--run-once"], env=env,
                            cwd=tmp_path, capture_output=True, text=True, timeout=400)  # fmt: skip
    with get_client(sync_client=True) as client:
        state = client.read_flow_run(run.id).state
        assert state.is_completed(), worker.stdout[-3000:] + worker.stderr[-3000:]
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(
            any_=[run.id])))  # fmt: skip
    assert list((inbox / "done").rglob("award-notice.pdf"))
    # The batch report is on the run `prefect deployment run` printed, and `report --run` finds its batches.
    assert {"inbox-report", "inbox-documents"} <= {a.key for a in artifacts}
    listed = CliRunner().invoke(cli, ["report", "--run", str(run.id)[:8], "--json", "--archive", str(archive)])
    assert listed.exit_code == 0, listed.output
    [batch] = json.loads(listed.output)
    assert batch["run"] == str(run.id) and batch["archived"] == 1
    assert any(flag.startswith("low_confidence_page:") for flag in batch["outcomes"][0]["qc_flags"])  # 0.999: file's


def test_a_prefect_server_with_an_auth_string_refuses_clients_without_it(monkeypatch):
    """The README's server: PREFECT_SERVER_API_AUTH_STRING on the server, PREFECT_API_AUTH_STRING on each client."""
    import httpx
    from prefect import get_client
    from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, temporary_settings

    from flows.server import TemporaryServer

    monkeypatch.setenv("PREFECT_SERVER_API_AUTH_STRING", "admin:s3cret")
    server = TemporaryServer()
    try:
        server.wait_ready()  # its health check answers anyone (probes)
        for auth, allowed in ((None, False), ("admin:wrong", False), ("admin:s3cret", True)):
            with temporary_settings({PREFECT_API_URL: server.api_url, PREFECT_API_AUTH_STRING: auth}):
                with get_client(sync_client=True) as client:
                    if allowed:
                        assert client.read_flows(limit=1) is not None
                    else:
                        with pytest.raises(httpx.HTTPStatusError, match="401"):
                            client.read_flows(limit=1)
    finally:
        server.stop()


def test_a_document_run_where_its_batch_is_not_keeps_the_page_time_limit(tmp_path, resources):
    """As on a Dask worker: the document's task thread is not the main thread and its batch's
    pool is elsewhere; its pages go to OCR processes of this process's own, where the limit holds."""
    from concurrent.futures import ThreadPoolExecutor

    from archive.capture.pageproc import PageSettings
    from archive.ingest.batch import HOST, DocumentJob, run_document
    from archive.storage.store import Archive

    Archive.open(tmp_path / "archive", create=True)
    job = DocumentJob(str(resources / "award-notice.pdf"), str(tmp_path / "archive"), "elsewhere", None,
                      PageSettings(page_seconds=0.001))  # fmt: skip
    try:
        with ThreadPoolExecutor(1) as thread:
            outcome = thread.submit(run_document, job).result(timeout=300)
    finally:
        HOST.close_own_pools()
    assert (outcome.status, outcome.reason) == ("quarantined", "page_timeout")


def test_deploy_refuses_without_a_persistent_server():
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(restore_defaults={PREFECT_API_URL}):  # whatever server the session's tests use
        result = CliRunner().invoke(cli, ["deploy"])
    assert result.exit_code == 2 and "PREFECT_API_URL" in result.output
