"""The trading platform's export (manifest): one row per scanned file.

Basic join by file name; validation and header mapping grow in the metadata issue.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

ENCODINGS = ("utf-8-sig", "gb18030")  # what Chinese office software writes


def read_manifest(path: Path) -> dict[str, dict[str, str]]:
    """Rows keyed by the file's base name (the manifest may give folders too)."""
    raw = path.read_bytes()
    for encoding in ENCODINGS:
        try:
            text = raw.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise ValueError(f"{path.name}: not UTF-8 or GB18030 text")
    rows: dict[str, dict[str, str]] = {}
    for row in csv.DictReader(io.StringIO(text)):
        name = (row.get("file") or "").strip()
        if name:
            rows[Path(name.replace("\\", "/")).name] = {k.strip(): (v or "").strip() for k, v in row.items() if k}
    return rows
