"""What a file is and what a PDF holds, from the bytes: format identification by magic
numbers (no PRONOM tool such as fido is packaged here) and the active content a PDF
may carry. The four-property check (``fourprops``) asks these."""

from __future__ import annotations

import json
from pathlib import Path

MAGIC = (
    (b"%PDF-", "PDF"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"\x00\x00\x00\x0cjP  ", "JPEG 2000"),
)
ACTIVE_CONTENT = ("/JavaScript", "/JS", "/Launch", "/EmbeddedFiles", "/RichMedia", "/XFA", "/AA", "/SubmitForm")


def identify(path: Path) -> str:
    """The file's format from its first bytes (JSON: parses), or "unknown"."""
    with open(path, "rb") as handle:
        head = handle.read(16)
    for magic, kind in MAGIC:
        if head.startswith(magic):
            return kind
    if path.suffix == ".json":
        try:
            json.loads(path.read_bytes())
            return "JSON"
        except ValueError:
            return "unknown (not JSON)"
    return "unknown"


def active_content(pdf) -> set[str]:  # noqa: ANN001 - a pikepdf.Pdf
    import pikepdf

    found = set()
    for obj in pdf.objects:
        if isinstance(obj, pikepdf.Dictionary):
            found.update(key for key in ACTIVE_CONTENT if key in obj.keys())
            if obj.get("/S") in ("/JavaScript", "/Launch"):
                found.add(str(obj.get("/S")))
    return found
