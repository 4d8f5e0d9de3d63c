"""flows.server: the temporary Prefect API a command-line ingest starts first."""

from prefect.settings import PREFECT_API_URL, get_current_settings, temporary_settings

from flows.server import prefect_api


def test_a_configured_api_is_used_as_it_is(prefect_harness):
    with prefect_api() as server:
        assert server is None  # the harness's API (an admin's server, in production)


def test_without_a_configured_api_a_temporary_server_starts_and_answers(prefect_harness):
    import httpx

    with temporary_settings(restore_defaults={PREFECT_API_URL}), prefect_api() as server:
        assert server is not None
        try:
            assert get_current_settings().api.url == server.api_url
            server.wait_ready()
            assert httpx.get(f"{server.api_url}/health").json() is True
        finally:
            server.stop()


def test_the_temporary_server_stops_when_the_cli_is_killed(tmp_path):
    """A CLI killed outright (SIGKILL, the OOM killer) runs no exit handler: its
    temporary server must not run on, orphaned."""
    import os
    import signal
    import subprocess
    import sys
    import time

    started = tmp_path / "server.pid"
    cli = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from flows.server import TemporaryServer; server = TemporaryServer(); "
        f"open({str(started)!r}, 'w').write(str(server.process.pid)); time.sleep(600)")])  # fmt: skip
    deadline = time.monotonic() + 60
    while not started.exists() or not started.read_text():
        assert time.monotonic() < deadline and cli.poll() is None
        time.sleep(0.1)
    server = int(started.read_text())
    os.kill(cli.pid, signal.SIGKILL)
    cli.wait()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            os.kill(server, 0)  # still there (a zombie counts: its parent, init, reaps it soon)
            with open(f"/proc/{server}/stat") as stat:
                if stat.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return
        except (ProcessLookupError, FileNotFoundError):
            return
        time.sleep(0.1)
    os.kill(server, signal.SIGKILL)
    raise AssertionError("the temporary server outlived the CLI")
