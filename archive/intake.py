"""Decide whether a source file can be archived, before any work is spent on it.

Every rejection is an ``InputRejected`` with a short reason code and a message
a person can act on; the caller quarantines the file and the batch goes on.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

from pypdf import PdfReader
from pypdf.errors import PdfReadError

from archive.errors import InputRejected

PDF_MAGIC = b"%PDF-"


@dataclass(frozen=True)
class SourcePdf:
    path: Path
    page_count: int
    pdf_version: str


def open_source_pdf(path: Path) -> tuple[SourcePdf, PdfReader]:
    """Open ``path`` as a PDF or raise ``InputRejected`` saying why it cannot be archived."""
    size = path.stat().st_size
    if size == 0:
        raise InputRejected("empty_file", f"{path.name} is empty (0 bytes); rescan or recopy it.")
    with open(path, "rb") as handle:
        head = handle.read(1024)
    if PDF_MAGIC not in head:
        kind = _sniff(head)
        raise InputRejected(
            "not_pdf",
            f"{path.name} is not a PDF (it looks like {kind}); convert it to PDF or remove it from the batch.",
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reader = PdfReader(path, strict=False)
            if reader.is_encrypted:
                raise InputRejected(
                    "encrypted",
                    f"{path.name} is encrypted; archives must hold unencrypted files. "
                    "Ask the sender for an unprotected copy (or remove the password with qpdf --decrypt).",
                )
            count = len(reader.pages)
    except InputRejected:
        raise
    except (PdfReadError, OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InputRejected(
            "unreadable_pdf",
            f"{path.name} is damaged or truncated and cannot be read ({type(exc).__name__}: {exc}); "
            "rescan or recopy it.",
        ) from exc
    if count == 0:
        raise InputRejected("no_pages", f"{path.name} has no pages; rescan it.")
    return SourcePdf(path=path, page_count=count, pdf_version=reader.pdf_header.lstrip("%")), reader


def _sniff(head: bytes) -> str:
    signatures = {
        b"\xff\xd8\xff": "a JPEG image",
        b"\x89PNG": "a PNG image",
        b"II*\x00": "a TIFF image",
        b"MM\x00*": "a TIFF image",
        b"PK\x03\x04": "a ZIP / Office document",
        b"\xd0\xcf\x11\xe0": "an old Office document",
    }
    for magic, kind in signatures.items():
        if head.startswith(magic):
            return kind
    return "something else"
