"""What archivists change after ingest, kept beside the packages (never inside
them, so the bags and their checksums stay as ingested):

    ARCHIVE/review/resolutions.jsonl              closed QC flags, with who and why
    ARCHIVE/review/corrections/<document>/page-0003.v1.json   corrected page text
    ARCHIVE/review/corrections/<document>/metadata.v1.json    corrected metadata fields
    ARCHIVE/review/corrections/<document>/bidders.v1.json     the corrected list of bidders

Each correction is a new version file (earlier versions and the original OCR
stay), its SHA-256 recorded in the event log, so ``verify`` can tell if one
is altered later. Export and the index read the latest version.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from pathlib import Path

from archive.errors import BadArgument, InvalidValue, NotFound
from archive.records.bidders import Bid, bidder_name, parse_price
from archive.records.document import DocumentRecord
from archive.records.manifest import (
    TRANSACTION_TYPES,
    normalise_access,
    normalise_transaction_type,
    parse_amount,
    parse_date,
)
from archive.records.metadata import DESCRIPTION, DOC_TYPES, FIELDS, normalise_doc_type
from archive.storage.access import LEVELS
from archive.storage.fixity import atomic_write_json, sha256_file
from archive.storage.store import Archive, check_project_code, read_archived, read_json

VERSION = re.compile(r"\.v(\d+)\.json$")
DOCUMENT_ID = re.compile(r"[0-9a-f]{16}")  # pipeline.document_id_for: the first 16 hex of the SHA-256


def _folder(archive: Archive, document: str) -> Path:
    if not DOCUMENT_ID.fullmatch(document):
        raise ValueError(f"not a document id: {document!r}")
    return archive.root / "review" / "corrections" / document


def _versions(folder: Path, stem: str) -> list[Path]:
    return sorted(folder.glob(f"{stem}.v*.json"), key=lambda p: int(VERSION.search(p.name).group(1)))


def _write_version(archive: Archive, document: str, stem: str, body: dict, note: str) -> Path:
    folder = _folder(archive, document)
    folder.mkdir(parents=True, exist_ok=True)
    version = len(_versions(folder, stem)) + 1
    path = folder / f"{stem}.v{version}.json"
    now = datetime.now(timezone.utc).isoformat(timespec="microseconds")
    atomic_write_json(path, {**body, "version": version, "note": note, "time": now})
    archive.log("metadata modification", document=document, file=str(path.relative_to(archive.root)),
                sha256=sha256_file(path), note=note)  # fmt: skip
    return path


def correct_page_text(archive: Archive, document: str, page: int, text: str, note: str) -> Path:
    pages = _pages_of(archive, document)
    if not 1 <= page <= pages:
        raise NotFound(f"document {document} has pages 1-{pages}; there is no page {page}")
    return _write_version(archive, document, f"page-{page:04d}", {"page": page, "text": text}, note)


# What an archivist may correct: the metadata fields, the document's own description (题名,
# 责任者, 日期, 文号), the document type and the access level.
EDITABLE = (*FIELDS, *DESCRIPTION, "doc_type", "access")


def field_values(pairs: tuple[str, ...] | list[str]) -> dict[str, str]:
    """``FIELD=VALUE`` pairs as typed on a command line, by field name."""
    values: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise BadArgument(
                "FIELD=VALUE", f"{pair!r}: write FIELD=VALUE, e.g. amount=1234567.89 (winner= clears the winner)"
            )
        values[name.strip()] = value
    return values


def correct_metadata(archive: Archive, document: str, fields: dict[str, str], note: str) -> Path:
    """Fields as typed (``amount`` "123.45万", ``award_date`` "2023年5月12日"), checked
    and normalised as a manifest's are; an empty value clears the field."""
    _pages_of(archive, document)
    values = {name: _field_value(name, raw) for name, raw in fields.items()}
    return _write_version(archive, document, "metadata", {"fields": values}, note)


def _pages_of(archive: Archive, document: str) -> int:
    return _record_of(archive, document).pages


def _record_of(archive: Archive, document: str) -> DocumentRecord:
    package = archive.find_document(document) if DOCUMENT_ID.fullmatch(document) else None
    if package is None:
        raise NotFound(f"no document {document} in {archive.root}; search or `trade-archive export` lists them")
    return DocumentRecord.load(package)


def _field_value(name: str, raw: str) -> object:
    if name not in EDITABLE:
        raise InvalidValue(f"{name!r} is not a field that can be corrected; one of: {', '.join(EDITABLE)}")
    text = raw.strip()
    if not text and name not in ("doc_type", "access", "project_code"):
        return None  # cleared; a document always has a type and an access level (and a filed one its code)
    readers = {
        "amount": parse_amount,
        "award_date": parse_date,
        "doc_date": parse_date,
        "project_code": check_project_code,
        "doc_type": normalise_doc_type,
        "access": normalise_access,
        "transaction_type": normalise_transaction_type,
    }  # as a manifest's values are read
    value = readers[name](text) if name in readers else text
    if value is None:
        choices = {"doc_type": DOC_TYPES, "access": LEVELS, "transaction_type": TRANSACTION_TYPES}.get(name)
        example = {"amount": "amount=1234567.89 or amount=123.45万", "award_date": "award_date=2023-05-12",
                   "doc_date": "doc_date=2023-05-12",
                   "project_code": "project_code=GXZC2023-G1-001234-KWZB (it files the document there)"}  # fmt: skip
        hint = f"one of: {', '.join(choices)}" if choices else f"e.g. {example[name]}"
        raise InvalidValue(f"{name} {raw!r} cannot be taken: {hint}")
    return value


def correct_bidders(archive: Archive, document: str, prices: dict[str, str], note: str) -> Path:
    """A bid-opening record's bidders as corrected: ``prices`` by bidder name, as typed
    (``35701155.08``, ``3570.12万``, capitals); a name not listed yet is added (a row the
    table reader missed), an empty price takes the bidder off (a row misread as one). The
    whole list is the new version, starting from the latest one (or the list read at ingest)."""
    record = _record_of(archive, document)
    bids = {bid["name"]: bid["price"] for bid in bidders_as_corrected(archive, record)}
    for typed, raw in prices.items():
        name = bidder_name(typed)
        if not raw.strip():
            if name not in bids:
                raise InvalidValue(f"{name!r} is not among the bidders of {document}: {', '.join(bids) or 'none'}")
            del bids[name]
            continue
        price = parse_price(raw)
        if price is None:
            raise InvalidValue(f"price {raw!r} for {name} cannot be taken: e.g. {name}=35701155.08 or =3570.12万")
        bids[name] = price
    body = {"bidders": [Bid(name, price).to_json() for name, price in bids.items()]}
    return _write_version(archive, document, "bidders", body, note)


def bidders_as_corrected(archive: Archive, document: DocumentRecord) -> list[dict]:
    """A document's bidders ``{"name", "price"}``: the latest corrected list, else as read at ingest."""
    versions = _versions(_folder(archive, document.document), "bidders")
    listed = read_archived(versions[-1])["bidders"] if versions else document.bidders or []
    return [dict(bid) for bid in listed]


def latest_page_text(archive: Archive, document: str, page: int) -> str | None:
    versions = _versions(_folder(archive, document), f"page-{page:04d}")
    return read_json(versions[-1])["text"] if versions else None


def latest_page_texts(archive: Archive, document: str) -> dict[int, str]:
    """Every corrected page of a document, page number -> its latest text: one look at the
    corrections folder a document (export and reindex read thousands of pages a second)."""
    folder = _folder(archive, document)
    if not folder.is_dir():
        return {}
    latest: dict[int, Path] = {}
    for path in _versions(folder, "page-*"):  # every page's versions, oldest first: the last one stays
        latest[int(path.name[5:9])] = path
    return {page: read_archived(path)["text"] for page, path in sorted(latest.items())}


class Corrections(dict):
    """A document's corrected fields -> their latest values; ``times``: field -> when it was
    corrected (seconds since the epoch), so that across a transaction the latest wins."""

    times: dict[str, float]


def latest_metadata(archive: Archive, document: str) -> Corrections:
    """All metadata corrections of a document, later ones on top."""
    merged = Corrections()
    merged.times = {}
    for path in _versions(_folder(archive, document), "metadata"):
        body = read_archived(path)
        when = _corrected_at(body, path)
        for name, value in body["fields"].items():
            merged[name], merged.times[name] = value, when
    return merged


def _corrected_at(body: dict, path: Path) -> float:
    """When a correction was made: its own record of it, or (a version written before
    corrections kept their time) its file's modification time."""
    try:
        return datetime.fromisoformat(body["time"]).timestamp()
    except (KeyError, TypeError, ValueError):
        return path.stat().st_mtime


def resolve_flag(archive: Archive, flag: str, note: str) -> None:
    path = archive.root / "review" / "resolutions.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    event = archive.log("flag resolution", flag=flag, note=note)
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps({"flag": flag, "note": note, "time": event["time"], "agent": event["agent"]},
                                ensure_ascii=False) + "\n")  # fmt: skip


def resolved_flags(archive: Archive) -> dict[str, dict]:
    path = archive.root / "review" / "resolutions.jsonl"
    if not path.exists():
        return {}
    return {entry["flag"]: entry for entry in map(json.loads, path.read_text(encoding="utf-8").splitlines())}
