"""Archival arrangement (DA/T 22-2015) and description (DA/T 46): when a document is filed
under its transaction it gets its fonds (全宗), year (年度), retention period (保管期限), item
number (件号) within that group and its reference code (档号, DA/T 13-2022), and its title
(题名), responsible body (责任者), date and document number (文号) read from its pages.

Item numbers run 1, 2, 3, ... per group (fonds, year, retention) without gaps and are never
reused: ``ARCHIVE/arrangement.json`` holds each group's documents in item order, written
atomically under a lock before the package is touched (rebuilt from the event log's
``arrangement`` events if lost). The arrangement goes into document.json and bag-info.txt
(the bag's manifests are brought up to date) and is logged. A later correction that would
put a document in another group renumbers nothing: it is logged and acceptance flags it.
"""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from archive.config import RETENTION_CODES, ConfigError, load_config
from archive.records.corrections import latest_metadata, latest_page_texts
from archive.records.document import DocumentRecord
from archive.records.metadata import DESCRIPTION, DOC_TYPE_NAMES, DOC_TYPES, extract_description
from archive.records.transaction import transaction_metadata
from archive.storage.events import read_events
from archive.storage.fixity import atomic_write_json, sha256_file
from archive.storage.package import update_bag
from archive.storage.store import Archive, read_archived

REGISTRY = "arrangement.json"
RETENTION_YEARS = {"永久": None, "定期30年": 30, "定期10年": 10}


@dataclass(frozen=True)
class Arrangement:
    """Where a document stands in the archive's arrangement (``document.json["arrangement"]``)."""

    fonds: str
    year: int
    retention: str  # 永久 | 定期30年 | 定期10年
    item: int  # 件号, from 1 within (fonds, year, retention)
    archival_code: str  # 档号
    time: str = ""  # when it was arranged (UTC)

    @property
    def group(self) -> str:
        return group_key(self.fonds, self.year, self.retention)

    @property
    def retention_ends(self) -> int | None:
        """The last year of the retention period (None: kept permanently)."""
        years = RETENTION_YEARS[self.retention]
        return None if years is None else self.year + years

    @classmethod
    def of(cls, record: DocumentRecord) -> Arrangement | None:
        """A document's arrangement, or None where it has none yet."""
        found = record.arrangement
        return cls(**found) if isinstance(found, dict) else None


def group_key(fonds: str, year: int, retention: str) -> str:
    return f"{fonds}|{year}|{retention}"


def retention_for(doc_type: str) -> str:
    """The retention the configuration's schedule gives a document type."""
    schedule = load_config().retention
    unknown = set(schedule) - {"default", *DOC_TYPES}
    if unknown:
        raise ConfigError(f"[retention] names {', '.join(sorted(unknown))}: not document types; "
                          f"use default or one of {', '.join(DOC_TYPES)}")  # fmt: skip
    return schedule.get(doc_type) or schedule["default"]


def check_arrangement_settings() -> None:
    """The schedule and the required lists name document types (checked before a batch
    starts, so that a misspelt type stops it at once rather than leaving documents unarranged)."""
    retention_for("other")
    for kind in load_config().required_documents:
        required_documents(kind, kind in FAILED_KEYS)


def description_of(archive: Archive, package: Path, record: DocumentRecord) -> dict[str, str | None]:
    """The document's 题名, 责任者, 日期, 文号: the manifest's where it gave them, else read from
    its pages (corrected text first), its transaction's parties standing in for a signature."""
    corrected = latest_page_texts(archive, record.document)
    texts = [corrected.get(n) or read_archived(package / "data" / "ocr" / f"{n:04d}.json")["text"]
             for n in range(1, record.pages + 1)]  # fmt: skip
    metadata = {**record.metadata, **{k: v for k, v in transaction_metadata(package.parent).items() if v}}
    read = extract_description("\n".join(texts), record.doc_type, metadata)
    row = record.manifest_row or {}
    return {name: row.get(name) or read[name] for name in DESCRIPTION}


def first_group(archive: Archive, package: Path, record: DocumentRecord) -> tuple[int, str]:
    """(year, retention) of a document being arranged: the year of its own date (corrected,
    else read), else of its transaction's award, else the year it was archived."""
    corrected = latest_metadata(archive, record.document)
    own = corrected.get("doc_date", (record.description or {}).get("doc_date"))
    when = own or record.metadata.get("award_date") or transaction_metadata(package.parent).get("award_date")
    year = int(str(when)[:4]) if when else int(record.process["time"][:4])
    return year, retention_for(corrected.get("doc_type") or record.doc_type)


def corrected_group(archive: Archive, record: DocumentRecord, arranged: Arrangement) -> tuple[int, str]:
    """(year, retention) an archivist's corrections of its date or type now point an arranged
    document to (its own where none does: a later fact, e.g. a transaction's award date
    arriving, or a changed schedule, moves nothing and flags nothing)."""
    corrected = latest_metadata(archive, record.document)
    year = int(str(corrected["doc_date"])[:4]) if corrected.get("doc_date") else arranged.year
    retention = retention_for(corrected["doc_type"]) if corrected.get("doc_type") else arranged.retention
    return year, retention


def arrange(archive: Archive, package: Path, unlogged: bool = False) -> Arrangement | None:
    """Arrange a filed document (its arrangement as it stands where it has one: nothing is
    renumbered). An unfiled document waits for its filing. Completes an arrangement a
    stop cut short: numbered but not yet in the package, or (``unlogged``) not yet logged."""
    import bagit  # here, not at the top: ~15 ms of every command's start-up (the CLI imports this module)

    if package.parent.parent.name != "transactions":
        return None
    record = DocumentRecord.load(package)
    arranged = Arrangement.of(record)
    if arranged is None:
        config = load_config()
        record.description = description_of(archive, package, record)  # its date decides the year
        year, retention = first_group(archive, package, record)
        item = _allocate(archive, group_key(config.fonds, year, retention), record.document)
        code = config.archival_code.format(fonds=config.fonds, year=year, retention=retention,
                                           retention_code=RETENTION_CODES[retention], item=item)  # fmt: skip
        arranged = Arrangement(config.fonds, year, retention, item, code,
                               datetime.now(timezone.utc).isoformat(timespec="seconds"))  # fmt: skip
        record.arrangement = asdict(arranged)
        record.save(package / "data")
    # an unlogged one is bagged again whatever bag-info.txt says: a stop may have cut the tag manifest short
    if unlogged or bagit.Bag(str(package)).info.get("Archival-Code") != arranged.archival_code:
        update_bag(package, ["data/document.json"], _tags(arranged, record.description or {}))
        archive.log("arrangement", document=record.document, path=str(package.relative_to(archive.root)),
                    tagmanifest_sha256=sha256_file(package / "tagmanifest-sha256.txt"),
                    **{k: v for k, v in asdict(arranged).items() if k != "time"})  # fmt: skip
    return arranged


def _tags(arranged: Arrangement, description: dict[str, str | None]) -> dict[str, str]:
    described = {"Title": "title", "Responsible": "responsible", "Document-Date": "doc_date",
                 "Document-Number": "doc_number"}  # fmt: skip
    tags = {"Fonds": arranged.fonds, "Archival-Year": str(arranged.year), "Retention-Period": arranged.retention,
            "Item-Number": str(arranged.item), "Archival-Code": arranged.archival_code,
            **{tag: description.get(name) or "" for tag, name in described.items()}}  # fmt: skip
    return {name: value for name, value in tags.items() if value}


def arrange_pending(archive: Archive) -> list[str]:
    """Arrange every filed document not yet arranged, in the order they were filed (an
    archive from before arrangement, or arrangements a stop cut short); a package that
    fails its BagIt validation is left for ``verify`` to report. Returns those arranged."""
    import bagit  # here: start-up of every command (see arrange)

    logged, order = set(), {}
    for number, event in enumerate(read_events(archive.events_path)):
        if event.get("type") == "arrangement" and event.get("outcome") == "success":
            logged.add(event.get("document"))
        elif event.get("type") in ("ingestion", "filing") and event.get("outcome") == "success":
            order[event.get("document")] = number  # the last time it was placed: its filing
    filed = [p for p in archive.documents() if p.parent.parent.name == "transactions" and p.name not in logged]
    done = []
    for package in sorted(filed, key=lambda p: (order.get(p.name, len(order)), p.name)):
        try:  # an arrangement begun is completed (document.json rewritten, its manifest line not yet)
            if Arrangement.of(DocumentRecord.load(package)) is None:
                bagit.Bag(str(package)).validate(processes=1)
        except bagit.BagError:
            continue
        arrange(archive, package, unlogged=True)
        done.append(package.name)
    return done


def note_group_change(archive: Archive, package: Path) -> None:
    """After a correction: where the document's type or date now point to another group than
    the one it is numbered in, say so in the log (it keeps its number; acceptance flags it)."""
    record = DocumentRecord.load(package)
    if (arranged := Arrangement.of(record)) is None:
        return
    year, retention = corrected_group(archive, record, arranged)
    if (year, retention) != (arranged.year, arranged.retention):
        archive.log("arrangement", "warning", document=record.document, archival_code=arranged.archival_code,
                    now_year=year, now_retention=retention, note="kept its number; an archivist decides")  # fmt: skip


def type_name(doc_type: str) -> str:
    """What a catalogue calls a document type (中标通知书 for award_notice)."""
    return DOC_TYPE_NAMES.get(doc_type, "").split(" ")[0] or doc_type


def registry(archive: Archive) -> dict[str, list[str]]:
    """Each group's documents in item order (group key -> ids): the file, or the log's record."""
    path = archive.root / REGISTRY
    if path.exists():
        return read_archived(path)["groups"]
    groups: dict[str, dict[int, str]] = {}
    for event in read_events(archive.events_path):
        if event.get("type") == "arrangement" and event.get("outcome") == "success" and event.get("item"):
            key = group_key(event["fonds"], event["year"], event["retention"])
            groups.setdefault(key, {})[int(event["item"])] = event["document"]
    return {key: [items[n] for n in sorted(items)] for key, items in groups.items()}


def _allocate(archive: Archive, group: str, document: str) -> int:
    """The document's item number in ``group``: the one it was given, else the next."""
    with _registry_lock(archive):
        groups = registry(archive)
        members = groups.setdefault(group, [])
        if document not in members:
            members.append(document)
            atomic_write_json(archive.root / REGISTRY, {"groups": groups})
        return members.index(document) + 1


@contextlib.contextmanager
def _registry_lock(archive: Archive) -> Iterator[None]:
    """Item numbers are handed out one at a time (an ingest files documents at once)."""
    with open(archive.root / ".arrangement.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


FAILED_KEYS = ("failed", "流标/废标", "流标", "废标")  # the [required_documents] list of a failed tender
FAILED_WORDS = ("流标", "废标")


def required_documents(transaction_type: str | None, failed: bool) -> list[str]:
    """The doc_types a transaction of this type must leave behind (归档范围): the configured
    list of failed tenders for one that failed (流标/废标), else its type's; [] where none is set."""
    table = load_config().required_documents
    failed_list = next((table[key] for key in FAILED_KEYS if key in table), None)
    wanted = failed_list if failed and failed_list is not None else table.get(transaction_type or "", [])
    return [_doc_type(name, transaction_type) for name in wanted]


def is_failed(titles: list[str | None]) -> bool:
    """Whether a transaction failed (流标/废标): one of its documents says so in its title."""
    return any(word in (title or "") for title in titles for word in FAILED_WORDS)


def _doc_type(name: str, kind: str | None) -> str:
    """A doc_type, or what staff call one (中标通知书, 开标记录, ...)."""
    if name in DOC_TYPES:
        return name
    for doc_type, names in DOC_TYPE_NAMES.items():
        if name in names.split():
            return doc_type
    raise ConfigError(f"required_documents.{kind}: {name!r} is not a document type; one of {', '.join(DOC_TYPES)} "
                      "(or what they are called: 采购公告, 开标记录, 评标报告, 中标通知书, 合同, ...)")  # fmt: skip
