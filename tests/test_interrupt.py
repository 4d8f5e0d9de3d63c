"""Ctrl-C (or SIGTERM) during an ingest: the real CLI in its own process group,
signalled as a terminal does. It stops within seconds with exit code 130; what
it archived stays, is indexed and reported, nothing half-written is left, no
process of it lives on; the same command run again finishes the batch."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from prefect.settings import get_current_settings

from archive.preservation.verify import verify_archive
from archive.storage.store import Archive

COPIES = 5


def _copies(resources: Path, folder: Path) -> None:
    """Distinct files (a byte apart), so none is a duplicate of another."""
    folder.mkdir()
    scan = (resources / "award-notice.pdf").read_bytes()
    for number in range(COPIES):
        (folder / f"award-{number}.pdf").write_bytes(scan + f"\n%copy {number}\n".encode())


def _ingest(src: Path, archive: Path) -> subprocess.Popen:
    env = {**os.environ, "PREFECT_API_URL": get_current_settings().api.url or ""}  # the harness's server
    return subprocess.Popen([sys.executable, "-m", "flows.cli", "ingest", str(src), "--archive", str(archive),
                             "--workers", "1", "--no-progress"], env=env, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip


def _group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
        return True
    except ProcessLookupError:
        return False


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_the_batch_cleanly_and_the_same_command_finishes_it(tmp_path, resources, prefect_harness,
                                                                          signum):  # fmt: skip
    src, archive = tmp_path / "scans", tmp_path / "archive"
    _copies(resources, src)
    cli = _ingest(src, archive)
    deadline = time.monotonic() + 120
    events = archive / "events.jsonl"
    while not (events.exists() and '"ingestion"' in events.read_text()):  # the first document is archived
        assert time.monotonic() < deadline and cli.poll() is None, cli.communicate()
        time.sleep(0.2)
    signalled = time.monotonic()
    os.killpg(cli.pid, signum)  # as Ctrl-C on a terminal: the CLI and its OCR worker
    out, err = cli.communicate(timeout=60)
    assert cli.returncode == 130 and time.monotonic() - signalled < 30, (cli.returncode, err[-2000:])
    assert "not done; run the same command again" in err and "Traceback" not in err, err[-2000:]
    gone = time.monotonic() + 15  # multiprocessing's resource tracker takes a moment after the CLI
    while _group_alive(cli.pid) and time.monotonic() < gone:
        time.sleep(0.2)
    assert not _group_alive(cli.pid)  # no OCR worker, tracker or server left behind

    report = json.loads(next((archive / "reports").glob("*.json")).read_text())
    assert report["interrupted"] and report["archived"] >= 1
    assert report["archived"] + len(report["interrupted"]) == COPIES
    assert report["indexed_pages"] == report["pages"]  # what was archived is searchable
    assert not list((archive / ".staging").iterdir())  # nothing half-written
    assert not verify_archive(Archive(archive)).problems

    again = _ingest(src, archive)
    out, err = again.communicate(timeout=300)
    assert again.returncode == 0, err[-2000:]
    assert f"{len(report['interrupted'])} archived" in out and f"{report['archived']} already in the archive" in out
