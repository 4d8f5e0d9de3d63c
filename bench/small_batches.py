"""Small ingests in a row: how soon each starts reading pages (issue: a second small
ingest on the same machine reads its first page within 5 s of the command starting).

Runs ``trade-archive ingest`` N times in a row, each on one small scan into its own
archive, with a fresh PREFECT_HOME and no PREFECT_API_URL (an archivist's machine), and
prints for each run: wall time, the batch's own time (from its summary) and the start-up
before the batch began (wall - batch). The first run starts the local Prefect server;
the next ones reuse it. ``--idle 0`` measures the old way (a temporary server per command).

    python bench/small_batches.py --runs 3
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCAN = ROOT / "tests" / "resources" / "award-notice.pdf"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--idle", type=float, default=600, help="TRADE_ARCHIVE_SERVER_IDLE for the runs")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="small-batches-"))
    environment = {**os.environ, "PREFECT_HOME": str(work / "prefect"), "TRADE_ARCHIVE_SERVER_IDLE": str(args.idle)}
    environment.pop("PREFECT_API_URL", None)
    print(f"{'run':>3} {'wall s':>7} {'batch s':>8} {'start-up s':>10}")
    try:
        for run in range(1, args.runs + 1):
            scans = work / f"scans-{run}"
            scans.mkdir()
            (scans / SCAN.name).write_bytes(SCAN.read_bytes())
            started = time.monotonic()
            done = subprocess.run([sys.executable, "-m", "flows.cli", "ingest", str(scans), "--archive",
                                   str(work / f"archive-{run}"), "--json", "--workers", "1"],
                                  env=environment, capture_output=True, text=True, check=True)  # fmt: skip
            wall = time.monotonic() - started
            batch = json.loads(done.stdout)["seconds"]
            print(f"{run:>3} {wall:7.1f} {batch:8.1f} {wall - batch:10.1f}")
    finally:
        state = work / "prefect" / "trade-archive-server.json"
        if state.exists():  # the benchmark's own server: not left for the idle time
            subprocess.run(["kill", str(json.loads(state.read_text())["pid"])], capture_output=True)


if __name__ == "__main__":
    main()
