"""The DA/T 70-2018 four-property check (四性检测) when records are archived (归档),
transferred (移交) and kept (长期保存): authenticity 真实性, integrity 完整性,
usability 可用性 and security 安全性, each item with a code, a name, an outcome and
its evidence.

Item codes are this project's (no official clause table is public): the stage's
letters (GD 归档, YJ 移交, BC 保存), the property (1 真实性 ... 4 安全性) and the
item. An item whose tool the machine lacks (a virus scanner; the storage media's own
tests) is ``NOT CHECKED``, never PASS; the check's outcome is FAIL where any item
fails, else PASS, with the items not checked listed.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from archive.config import load_config
from archive.errors import ArchiveError, InvalidValue, NotFound
from archive.preservation.formats import ACTIVE_CONTENT, active_content, identify
from archive.preservation.signatures import check_signatures, signature_summary
from archive.preservation.signing import SigningSettings, is_signed
from archive.preservation.verify import bag_problems
from archive.records.export import iter_documents
from archive.records.metadata import DOC_TYPES, FIELDS
from archive.storage.events import check_chain, logged_tag_manifests, read_events
from archive.storage.fixity import atomic_write_json, sha256_file
from archive.storage.package import read_bag_info
from archive.storage.store import Archive, read_json, transaction_folder_name

STAGES = {"archiving": ("GD", "归档"), "transfer": ("YJ", "移交"), "storage": ("BC", "长期保存")}
GROUPS = ("真实性", "完整性", "可用性", "安全性")
PASS, FAIL, NOT_CHECKED = "PASS", "FAIL", "NOT CHECKED"
MAX_EVIDENCE = 20  # lines of failures per item; the rest counted

REPORT_PREFIX = "four-properties-"  # reports/four-properties-<stage>-<time>.json, beside the batch reports

# Formats kept, by what the bytes say (magic numbers), not by the file's name.
ALLOWED_FORMATS = {"PDF", "JPEG", "PNG", "TIFF", "JPEG 2000", "JSON", "text"}
PACKAGE_FILES = ("bagit.txt", "bag-info.txt", "manifest-sha256.txt", "tagmanifest-sha256.txt",
                 "data/original.pdf", "data/access.pdf", "data/document.json")  # fmt: skip


@dataclass
class Item:
    code: str
    name: str
    outcome: str  # PASS | FAIL | NOT CHECKED
    evidence: list[str] = field(default_factory=list)


@dataclass
class FourPropertyReport:
    stage: str
    packages: int
    transaction: str | None = None
    created: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    groups: dict[str, list[Item]] = field(default_factory=lambda: {group: [] for group in GROUPS})
    path: str | None = None  # where the report was written

    @property
    def outcome(self) -> str:
        return FAIL if any(item.outcome == FAIL for items in self.groups.values() for item in items) else PASS

    def to_json(self) -> dict:
        return {"stage": self.stage, "outcome": self.outcome, "packages": self.packages,
                "transaction": self.transaction, "created": self.created,
                "groups": {g: [asdict(i) for i in items] for g, items in self.groups.items()}}  # fmt: skip

    def render(self) -> str:
        """What ``check`` prints: each group's items with their evidence, then the outcome."""
        lines = []
        for group, items in self.groups.items():
            lines.append(group)
            for item in items:
                lines += [f"  {item.code} {item.name}: {item.outcome}", *(f"      {e}" for e in item.evidence)]
        where = f"check --stage {self.stage}: {self.packages} packages: {self.outcome} (report: {self.path})"
        return "\n".join([*lines, where])


@dataclass
class _Context:
    """What the items look at: the packages, the archive's event log, the signing keys."""

    archive: Archive
    packages: list[Path]
    signing: SigningSettings
    root: Path  # where package paths are shown from
    events: list[dict] = field(default_factory=list)
    described: dict[Path, dict] = field(default_factory=dict)  # metadata as corrected, by package


Rule = Callable[[_Context], tuple[str, list[str]]]


def check_four_properties(
    archive: Archive,
    stage: str,
    transaction: str | None = None,
    packages: list[Path] | None = None,
    signing: SigningSettings | None = None,
    write: bool = True,
) -> FourPropertyReport:
    """``trade-archive check``: the stage's items over the archive's packages (or one
    transaction's, or ``packages`` given, e.g. a hand-over's copies); the report is
    written into ``reports/`` and the check logged as an event."""
    if stage not in STAGES:
        raise InvalidValue(f"stage {stage!r}: one of {', '.join(STAGES)}")
    if packages is None:
        packages = _select(archive, transaction)
    signing = signing if signing is not None else SigningSettings.from_config(load_config())
    root = archive.root if all(p.is_relative_to(archive.root) for p in packages) else _common_root(packages)
    context = _Context(archive, packages, signing, root, list(read_events(archive.events_path)))
    report = FourPropertyReport(stage, len(packages), transaction)
    prefix = STAGES[stage][0]
    for group_number, group in enumerate(GROUPS, 1):
        for item_number, (name, rule) in enumerate(ITEMS[group], 1):
            outcome, evidence = rule(context)
            report.groups[group].append(Item(f"{prefix}-{group_number}-{item_number}", name, outcome, evidence))
    if write:
        _write(archive, report)
    return report


def _select(archive: Archive, transaction: str | None) -> list[Path]:
    if transaction is None:
        return list(archive.documents())
    folder = archive.transaction_dir(transaction)
    packages = [p for p in archive.documents() if p.parent == folder]
    if not packages:
        raise NotFound(f"no documents filed under {transaction} in {archive.root}")
    return packages


def _common_root(packages: list[Path]) -> Path:
    return packages[0].parent.parent.parent if packages else Path(".")


def _write(archive: Archive, report: FourPropertyReport) -> None:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    path = archive.root / "reports" / f"{REPORT_PREFIX}{report.stage}-{stamp}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    report.path = str(path)
    atomic_write_json(path, report.to_json())
    failed = [i.code for items in report.groups.values() for i in items if i.outcome == FAIL]
    archive.log("four-property check", "success" if not failed else "failure", stage=report.stage,
                transaction=report.transaction, packages=report.packages, failed=failed,
                report=str(path.relative_to(archive.root)))  # fmt: skip


# --- the items ------------------------------------------------------------------------------


def _outcome(failures: list[str], checked: Iterable[str]) -> tuple[str, list[str]]:
    """FAIL with the first failures (and how many more), else PASS with what was checked."""
    if failures:
        more = [f"... and {len(failures) - MAX_EVIDENCE} more"] if len(failures) > MAX_EVIDENCE else []
        return FAIL, failures[:MAX_EVIDENCE] + more
    return PASS, list(checked)


def _name(context: _Context, package: Path, file: str = "") -> str:
    where = package.relative_to(context.root) if package.is_relative_to(context.root) else package
    return str(where / file) if file else str(where)


def _signatures(context: _Context) -> tuple[str, list[str]]:
    signed = [p for p in context.packages if is_signed(p)]
    if not context.signing.enabled and not signed:
        return NOT_CHECKED, ["no signing_key configured and no package is signed: there is no 固化信息 to check"]
    failures = [f"{_name(context, p, f.file)}: {f.kind}: {f.detail}"
                for p in context.packages for f in check_signatures(p, context.signing)]  # fmt: skip
    roots = context.signing.trust_roots or "the chain in signing_key"
    stamped = sum(1 for p in signed if signature_summary(p, context.signing)["timestamp"])
    return _outcome(failures, [f"{len(signed)} packages: the access PDF's signature (PAdES) and the tag manifest's "
                               f"detached CMS signature valid against {roots}; {stamped} with a valid RFC 3161 "
                               "timestamp (the others' time is the signer's clock)"])  # fmt: skip


def _digests(context: _Context) -> tuple[str, list[str]]:
    failures, files = [], 0
    for package in context.packages:
        count, problems = bag_problems(context.root, package)
        files += count
        failures += [f"{p.path}: {p.kind}: {p.detail}" for p in problems]
    return _outcome(failures, [f"{files} files in {len(context.packages)} bags re-hashed (SHA-256, bagit)"])


def _metadata_matches_content(context: _Context) -> tuple[str, list[str]]:
    import pypdf

    failures = []
    for package in context.packages:
        record = _document(package)
        if record is None:
            failures.append(f"{_name(context, package)}: data/document.json cannot be read")
            continue
        pages = record.get("pages")
        counts = {"page images": len(list((package / "data" / "pages").glob("[0-9]*.*"))),
                  "OCR files": len(list((package / "data" / "ocr").glob("[0-9]*.json")))}  # fmt: skip
        try:
            counts["access.pdf pages"] = len(pypdf.PdfReader(package / "data" / "access.pdf").pages)
        except Exception as error:  # noqa: BLE001 - the usability item says why it does not open
            counts["access.pdf pages"] = f"unreadable ({type(error).__name__})"
        failures += [f"{_name(context, package)}: document.json says {pages} pages, {what}: {n}"
                     for what, n in counts.items() if n != pages]  # fmt: skip
        original = package / "data" / "original.pdf"
        if original.exists() and sha256_file(original) != record.get("source_sha256"):
            failures.append(f"{_name(context, package, 'data/original.pdf')}: not the SHA-256 document.json records")
        if record.get("document") != package.name:
            failures.append(f"{_name(context, package)}: document.json names document {record.get('document')}")
        code = _described(context, package).get("project_code")  # as filed and corrected
        if (
            package.parent.parent.name == "transactions"
            and code
            and package.parent.name != transaction_folder_name(code, package.parent.parent)
        ):
            failures.append(f"{_name(context, package)}: filed under {package.parent.name}, its metadata says {code}")
    return _outcome(failures, [f"{len(context.packages)} packages: page count in document.json = page images = "
                               "OCR files = access.pdf pages; original.pdf's SHA-256; document id; folder = "
                               "project code"])  # fmt: skip


def _logged_as_filed(context: _Context) -> tuple[str, list[str]]:
    """The package's tag manifest is the one its ingestion (or signing) event recorded."""
    recorded = logged_tag_manifests(context.events)
    failures = []
    for package in context.packages:
        if package.name not in recorded:
            failures.append(f"{_name(context, package)}: no ingestion event records this package")
        elif recorded[package.name] and sha256_file(package / "tagmanifest-sha256.txt") != recorded[package.name]:
            failures.append(f"{_name(context, package)}: its manifests were rewritten after they were logged")
    return _outcome(failures, [f"{len(context.packages)} packages: the tag manifest's SHA-256 is the one "
                               "events.jsonl recorded when each was filed (or signed)"])  # fmt: skip


def _complete(context: _Context) -> tuple[str, list[str]]:
    failures, files, size = [], 0, 0
    for package in context.packages:
        failures += [f"{_name(context, package, name)}: missing" for name in PACKAGE_FILES
                     if not (package / name).is_file()]  # fmt: skip
        payload = [p for p in (package / "data").rglob("*") if p.is_file()]
        count, total = len(payload), sum(p.stat().st_size for p in payload)
        files, size = files + count, size + total
        oxum = read_bag_info(package).get("Payload-Oxum")
        if oxum and oxum != f"{total}.{count}":
            failures.append(f"{_name(context, package)}: Payload-Oxum {oxum}, on disk {total}.{count}")
    return _outcome(failures, [f"{len(context.packages)} packages, {files} payload files, {size} bytes; "
                               "each with its original, access PDF, document.json and BagIt manifests"])  # fmt: skip


DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _required_metadata(context: _Context) -> tuple[str, list[str]]:
    failures = []
    for package in context.packages:
        record = _document(package) or {}
        name = _name(context, package, "data/document.json")
        failures += [f"{name}: {why}" for why in _metadata_faults(record, package, _described(context, package))]
    return _outcome(failures, [f"{len(context.packages)} documents: document, source, source_sha256, pages, "
                               "doc_type, metadata fields, process (time, engine, operator, batch) present and "
                               "well-formed; project_code for every filed document"])  # fmt: skip


def _metadata_faults(record: dict, package: Path, described: dict) -> list[str]:
    faults = [f"{key} missing" for key in ("document", "source", "source_sha256", "pages", "doc_type", "metadata")
              if record.get(key) in (None, "")]  # fmt: skip
    if record.get("source_sha256") and not re.fullmatch(r"[0-9a-f]{64}", str(record["source_sha256"])):
        faults.append("source_sha256 is not a SHA-256")
    if not isinstance(record.get("pages"), int) or record.get("pages", 0) < 1:
        faults.append(f"pages {record.get('pages')!r} is not a count")
    if record.get("doc_type") and record["doc_type"] not in DOC_TYPES:
        faults.append(f"doc_type {record['doc_type']!r} is not in the vocabulary")
    metadata = record.get("metadata") or {}
    faults += [f"metadata.{key} missing" for key in FIELDS if key not in metadata]
    if metadata.get("award_date") and not DATE.fullmatch(str(metadata["award_date"])):
        faults.append(f"award_date {metadata['award_date']!r} is not YYYY-MM-DD")
    if metadata.get("amount") is not None and not isinstance(metadata["amount"], (int, float)):
        faults.append(f"amount {metadata['amount']!r} is not a number")
    if package.parent.parent.name == "transactions" and not described.get("project_code"):
        faults.append("filed under a transaction without a project_code")
    process = record.get("process") or {}
    faults += [f"process.{key} missing" for key in ("time", "engine", "operator", "batch") if not process.get(key)]
    return faults


def _sequence(context: _Context) -> tuple[str, list[str]]:
    failures = []
    for package in context.packages:
        for folder, pattern in (("pages", "[0-9]*.*"), ("ocr", "[0-9]*.json")):
            numbers = sorted(int(p.stem) for p in (package / "data" / folder).glob(pattern) if p.stem.isdigit())
            if numbers != list(range(1, len(numbers) + 1)):
                gaps = sorted(set(range(1, (numbers or [0])[-1] + 1)) - set(numbers))
                failures.append(f"{_name(context, package, 'data/' + folder)}: numbers not continuous from 1 "
                                f"(missing {gaps[:10]})")  # fmt: skip
    return _outcome(failures, [f"{len(context.packages)} packages: page images and OCR files numbered 1..N "
                               "without gaps (件内顺序号)"])  # fmt: skip


def _process_records(context: _Context) -> tuple[str, list[str]]:
    logged = {e.get("document") for e in context.events if e.get("type") == "ingestion" and e.get("path")}
    failures = [f"{_name(context, p)}: no ingestion event in events.jsonl" for p in context.packages
                if p.name not in logged]  # fmt: skip
    for package in context.packages:
        process = (_document(package) or {}).get("process") or {}
        if not process.get("time") or not process.get("pipeline_version"):
            failures.append(f"{_name(context, package, 'data/document.json')}: no process record (time, pipeline)")
    return _outcome(failures, [f"{len(context.packages)} packages: ingestion event in events.jsonl and process "
                               "record (time, engine, operator, batch, pipeline) in document.json"])  # fmt: skip


def _readable_metadata(context: _Context) -> tuple[str, list[str]]:
    failures, files = [], 0
    for package in context.packages:
        for path in [package / "data" / "document.json", *sorted((package / "data" / "ocr").glob("*.json"))]:
            files += 1
            try:
                json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as error:
                failures.append(f"{_name(context, package, str(path.relative_to(package)))}: {error}")
    return _outcome(failures, [f"{files} metadata files parse as UTF-8 JSON"])


def _formats(context: _Context) -> tuple[str, list[str]]:
    failures, found = [], Counter()
    for package in context.packages:
        for path in sorted(p for p in (package / "data").rglob("*") if p.is_file()):
            kind = identify(path)
            found[kind] += 1
            if kind not in ALLOWED_FORMATS:
                failures.append(f"{_name(context, package, str(path.relative_to(package)))}: {kind}")
    counts = ", ".join(f"{kind} {n}" for kind, n in sorted(found.items()))
    return _outcome(failures, [f"identified by their bytes (magic numbers; no PRONOM tool such as fido here): "
                               f"{counts}; allowed: {', '.join(sorted(ALLOWED_FORMATS))}"])  # fmt: skip


def _renders(context: _Context) -> tuple[str, list[str]]:
    import pypdfium2

    failures, pages = [], 0
    for package in context.packages:
        try:
            document = pypdfium2.PdfDocument(str(package / "data" / "access.pdf"))
        except Exception as error:  # noqa: BLE001 - pdfium's errors for a file it cannot open
            failures.append(f"{_name(context, package, 'data/access.pdf')}: does not open ({error})")
            continue
        try:
            for number, page in enumerate(document, 1):
                bitmap = page.render(scale=0.1)
                if bitmap.width < 1 or bitmap.height < 1:
                    failures.append(f"{_name(context, package, 'data/access.pdf')}: page {number} renders empty")
                pages += 1
        except Exception as error:  # noqa: BLE001
            failures.append(f"{_name(context, package, 'data/access.pdf')}: a page does not render ({error})")
        finally:
            document.close()
    return _outcome(failures, [f"{len(context.packages)} access PDFs open and all {pages} pages render (pdfium)"])


def _pdfa(context: _Context) -> tuple[str, list[str]]:
    import pikepdf.pdfa

    failures, beyond = [], set()
    for package in context.packages:
        name = _name(context, package, "data/access.pdf")
        recorded = ((_document(package) or {}).get("access_pdf") or {}).get("pdfa")
        if not recorded:
            failures.append(f"{name}: was not written as PDF/A (document.json access_pdf)")
            continue
        report = pikepdf.pdfa.validate_written(package / "data" / "access.pdf", recorded)
        failures += [f"{name}: {v.rule}: {v.message}" for v in report.violations]
        beyond.update(f.message for f in report.findings if f.kind == "unsupported")
    note = f"; outside what it checks: {'; '.join(sorted(beyond))}" if beyond else ""
    return _outcome(
        failures,
        [
            f"{len(context.packages)} access PDFs written as PDF/A-2b (validated as saved) and "
            f"validated again by pikepdf.pdfa (not veraPDF, which Debian does not package){note}"
        ],
    )


def _no_encryption_or_active_content(context: _Context) -> tuple[str, list[str]]:
    """Neither file encrypted; no active content in the access copy. An original keeps what it
    came with (it is kept as received, its active content flagged at intake and never carried
    into the access copy): named in the evidence, not failed."""
    import pikepdf

    failures, kept = [], []
    for package in context.packages:
        for file in ("data/original.pdf", "data/access.pdf"):
            name = _name(context, package, file)
            try:
                with pikepdf.open(package / file) as pdf:
                    found = sorted(active_content(pdf))
                    failures += [f"{name}: encrypted"] if pdf.is_encrypted else []
            except pikepdf.PasswordError:
                failures.append(f"{name}: encrypted with a password")
                continue
            except Exception as error:  # noqa: BLE001 - qpdf's errors for a damaged file
                failures.append(f"{name}: cannot be read ({type(error).__name__})")
                continue
            if found and file == "data/access.pdf":
                failures += [f"{name}: active content {key}" for key in found]
            elif found:
                kept.append(f"{name}: kept as received with {' '.join(found)} (flagged at intake, not in the copy)")
    checked = f"{2 * len(context.packages)} PDFs (originals and access copies): none encrypted; no access copy holds"
    return _outcome(failures, [f"{checked} any of {' '.join(ACTIVE_CONTENT)}", *kept[:MAX_EVIDENCE]])


def _virus(context: _Context) -> tuple[str, list[str]]:
    scanner = shutil.which("clamscan")
    if scanner is None:
        return NOT_CHECKED, ["no virus scanner on this machine (ClamAV's clamscan not found; it also needs a current "
                             "signature database, which an offline machine lacks)"]  # fmt: skip
    folders = [str(p) for p in context.packages]
    if not folders:
        return PASS, ["nothing to scan"]
    run = subprocess.run([scanner, "--no-summary", "--infected", "-r", *folders], capture_output=True, text=True)
    if run.returncode == 0:
        return PASS, [f"clamscan: {len(folders)} packages, no infection found"]
    if run.returncode == 1:
        return FAIL, run.stdout.splitlines()[:MAX_EVIDENCE]
    return NOT_CHECKED, [f"clamscan failed (exit {run.returncode}): {run.stderr.strip()[:300]}"]


def _log_chain(context: _Context) -> tuple[str, list[str]]:
    path = context.archive.events_path
    if not path.exists():
        return FAIL, ["events.jsonl is missing"]
    breaks = [f"events.jsonl line {b.line}: {b.problem}" for b in check_chain(path)]
    return _outcome(breaks, [f"events.jsonl: {len(context.events)} events, each hashing the one before, unbroken"])


def _media(_context: _Context) -> tuple[str, list[str]]:
    return NOT_CHECKED, ["storage media checks (DA/T 38: readability of the carrier, error rates) need the media's "
                         "own tools and are not run by this program"]  # fmt: skip


ITEMS: dict[str, list[tuple[str, Rule]]] = {
    "真实性": [
        ("电子签名与时间戳有效 (固化信息)", _signatures),
        ("摘要值校验 (SHA-256)", _digests),
        ("元数据与内容一致", _metadata_matches_content),
        ("信息包来源可靠 (与归档记录一致)", _logged_as_filed),
    ],
    "完整性": [
        ("信息包完整 (文件数与字节数)", _complete),
        ("必填元数据齐全且格式正确", _required_metadata),
        ("顺序号连续", _sequence),
        ("过程信息完整", _process_records),
    ],
    "可用性": [
        ("元数据可读", _readable_metadata),
        ("文件格式可识别且在允许范围内", _formats),
        ("文件可打开、每页可显示", _renders),
        ("长期保存格式 PDF/A", _pdfa),
        ("无加密、无活动内容", _no_encryption_or_active_content),
    ],
    "安全性": [
        ("病毒检测", _virus),
        ("操作日志完整 (哈希链)", _log_chain),
        ("载体检测 (DA/T 38)", _media),
    ],
}


def _described(context: _Context, package: Path) -> dict:
    """The document's metadata as filed and corrected (export's view), {} where unreadable."""
    if package not in context.described:
        try:
            exported = next(iter_documents(context.archive, iter([package]), in_source_order=False))
            context.described[package] = exported.metadata
        except (ArchiveError, OSError, ValueError, KeyError, StopIteration):
            context.described[package] = {}
    return context.described[package]


def _document(package: Path) -> dict | None:
    try:
        record = read_json(package / "data" / "document.json")
        return record if isinstance(record, dict) else None
    except (OSError, ValueError):
        return None
