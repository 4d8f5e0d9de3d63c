"""What the centre's signature costs: each scan of a set signed as ingest signs an access
PDF (PAdES, pyHanko, demo keys), without a timestamp, with the loopback demo TSA (a real
RFC 3161 exchange over HTTP) and with the visible 签章标识; then validated as ``verify``
does. Prints seconds per page and per document, and the tag manifest's detached CMS.

    python bench/signing_cost.py [--set ../shared/data/scans-dev]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from pypdf import PdfReader, PdfWriter

from archive.preservation.keys import DemoTimestampServer, init_demo_keys
from archive.preservation.signatures import check_signatures
from archive.preservation.signing import SigningSettings, sign_bag, sign_pdf


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", default=str(Path(__file__).resolve().parents[1] / ".." / "shared/data/scans-dev"))
    scans = sorted(Path(parser.parse_args().set).rglob("*.pdf"))
    work = Path(tempfile.mkdtemp(prefix="signing-bench-"))
    scans.append(_joined(scans, work / "all-pages.pdf"))  # one long document: what grows with pages
    keys = init_demo_keys(work / "keys")
    with DemoTimestampServer(keys.tsa) as tsa:
        for label, settings in (
            ("invisible, no TSA", SigningSettings(keys.centre, None, keys.ca)),
            ("invisible, loopback TSA", SigningSettings(keys.centre, tsa.url, keys.ca)),
            ("visible mark, no TSA", SigningSettings(keys.centre, None, keys.ca, visible=True)),
        ):
            _measure(label, settings, scans, work)
    shutil.rmtree(work, ignore_errors=True)


def _joined(scans: list[Path], out: Path) -> Path:
    writer = PdfWriter()
    for scan in scans:
        writer.append(str(scan))
    writer.write(out)
    return out


def _measure(label: str, settings: SigningSettings, scans: list[Path], work: Path) -> None:
    package = work / "package"
    (package / "data").mkdir(parents=True, exist_ok=True)
    (package / "tagmanifest-sha256.txt").write_text("0" * 64 + "  manifest-sha256.txt\n" * 4)
    shutil.copy(scans[0], package / "data" / "access.pdf")
    sign_pdf(package / "data" / "access.pdf", settings)  # warm: the key loaded, the stamp's font cut
    pages, checking, per_document = 0, 0.0, []
    cpu = time.process_time()  # CPU seconds too: on a shared machine the wall clock includes others' work
    for scan in scans[:-1]:
        shutil.copy(scan, package / "data" / "access.pdf")
        pages += len(PdfReader(scan).pages)
        started = time.perf_counter()
        sign_pdf(package / "data" / "access.pdf", settings)
        sign_bag(package, settings)
        per_document.append(time.perf_counter() - started)
        started = time.perf_counter()
        assert not check_signatures(package, settings)
        checking += time.perf_counter() - started
    signing, cpu = sum(per_document), time.process_time() - cpu
    shutil.copy(scans[-1], package / "data" / "access.pdf")
    started = time.perf_counter()
    sign_pdf(package / "data" / "access.pdf", settings)
    sign_bag(package, settings)
    long = time.perf_counter() - started
    print(f"{label}: {len(per_document)} documents, {pages} pages: signing {signing:.1f} s = "
          f"{1000 * signing / pages:.0f} ms/page (CPU, signing and validating: {1000 * cpu / pages:.0f} ms/page), "
          f"median {1000 * statistics.median(per_document):.0f} ms/document; "
          f"validating {1000 * checking / pages:.0f} ms/page; the {pages} pages as one document: "
          f"{1000 * long:.0f} ms", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
