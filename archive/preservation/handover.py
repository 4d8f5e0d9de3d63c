"""Hand-over to the archives bureau (移交), in the shape DA/T 93-2022-style transfers carry:

```
DEST/
  说明文件.txt                    what is handed over, by whom, when, how to check it
  目录/归档文件目录.xml, .xlsx    the catalogue: one row per document
  transactions/<code>/<document>/ the signed BagIt packages (+ each transaction.json)
  移交清单.json, 移交清单.csv     the register: counts, sizes and checksums per package
  移交清单.json.p7s               the register signed by the centre (where a key is configured)
  四性检测报告-移交.json          the DA/T 70 check at stage transfer, run on the copies
```

Every package is validated before and after it is copied (``transfer.copy_bag``), and
the four-property check runs on the copies. The catalogue is this module's own for now
(the ``catalogue`` command is being built beside it); 档号, 保管期限 and 文号 are null
until the archive records them.
"""

from __future__ import annotations

import csv
import io
import shutil
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from archive.config import load_config
from archive.errors import InvalidValue, NotFound
from archive.preservation.fourprops import FourPropertyReport, check_four_properties
from archive.preservation.signatures import signature_summary
from archive.preservation.signing import SigningSettings, sign_detached
from archive.preservation.transfer import check_destination, copy_bag
from archive.records.export import ExportedDocument, iter_documents
from archive.records.metadata import DOC_TYPE_NAMES
from archive.storage.fixity import atomic_write_json, sha256_file
from archive.storage.store import Archive

CATALOGUE_COLUMNS = ("档号", "题名", "责任者", "日期", "页数", "保管期限", "文号", "项目编号",
                     "文件标识", "交易类型", "文件类型", "信息包")  # fmt: skip
INCOMPLETE = ".handover-incomplete"  # marks a hand-over that was stopped: running it again finishes it


@dataclass
class HandoverResult:
    destination: Path
    packages: int
    bytes: int
    check: FourPropertyReport
    register: Path
    signed_register: bool

    def summary(self, destination: object = None) -> str:
        """What ``handover`` prints (``destination``: as the user typed it; default the full path)."""
        signed = " (signed)" if self.signed_register else ""
        return (f"handover: {self.packages} packages, {self.bytes} bytes in {destination or self.destination}; "
                f"register {self.register.name}{signed}; four-property check: {self.check.outcome}")  # fmt: skip


def handover(
    archive: Archive,
    destination: Path,
    transactions: tuple[str, ...] = (),
    year: int | None = None,
    signing: SigningSettings | None = None,
) -> HandoverResult:
    """``trade-archive handover``: the filed documents (of ``transactions``, of ``year``:
    the award date's, else the year it was archived) copied to ``destination`` with the
    catalogue, the register and the description, the copies checked at stage transfer,
    and the hand-over logged. ``destination`` must be new or empty (or a stopped
    hand-over of the same documents)."""
    signing = signing if signing is not None else SigningSettings.from_config(load_config())
    _check_empty(archive, destination)
    documents = _selected(archive, transactions, year)
    destination.mkdir(parents=True, exist_ok=True)
    (destination / INCOMPLETE).touch()
    copies, rows, register = [], [], []
    for document in documents:
        package = document.package
        target = destination / "transactions" / package.parent.name / package.name
        copied = copy_bag(package, target)
        if (package.parent / "transaction.json").exists():
            shutil.copy2(package.parent / "transaction.json", target.parent / "transaction.json")
        copies.append(target)
        rows.append(catalogue_row(document))
        register.append(_register_entry(destination, target, copied.info.get("Payload-Oxum"), signing))
    _write_catalogue(destination / "目录", rows)
    totals = {"packages": len(register), "files": sum(e["files"] for e in register),
              "bytes": sum(e["bytes"] for e in register)}  # fmt: skip
    register_path = destination / "移交清单.json"
    atomic_write_json(register_path, {"created": _now(), "archive": str(archive.root), "year": year,
                                      "transactions": list(transactions), "totals": totals,
                                      "packages": register})  # fmt: skip
    _write_register_csv(destination / "移交清单.csv", register)
    if signing.enabled:
        sign_detached(register_path, signing)
    check = check_four_properties(archive, "transfer", packages=copies, signing=signing)
    atomic_write_json(destination / "四性检测报告-移交.json", check.to_json())
    _write_description(destination, archive, totals, transactions, year, check, signing)
    (destination / INCOMPLETE).unlink()
    archive.log("handover", "success" if check.outcome == "PASS" else "failure", destination=str(destination),
                transactions=list(transactions), year=year, packages=totals["packages"], bytes=totals["bytes"],
                register_sha256=sha256_file(register_path), check=check.outcome)  # fmt: skip
    return HandoverResult(destination, totals["packages"], totals["bytes"], check, register_path, signing.enabled)


def _check_empty(archive: Archive, destination: Path) -> None:
    check_destination(archive, destination)
    if destination.exists() and not destination.is_dir():
        raise InvalidValue(f"{destination} is a file: hand over to a new or empty folder")
    if destination.is_dir() and any(destination.iterdir()) and not (destination / INCOMPLETE).exists():
        raise InvalidValue(f"{destination} is not empty: a hand-over goes to a new or empty folder")


def _selected(archive: Archive, transactions: tuple[str, ...], year: int | None) -> list[ExportedDocument]:
    folders = {archive.transaction_dir(code): code for code in transactions}
    for folder, code in folders.items():
        if not folder.is_dir():
            raise NotFound(f"no transaction {code} in {archive.root}")
    # unfiled documents have no transaction yet: they are handed over once filed
    packages = [p for p in archive.documents() if p.parent.parent.name == "transactions"
                and (not folders or p.parent in folders)]  # fmt: skip
    documents = [d for d in iter_documents(archive, iter(packages)) if year is None or _year(d) == year]
    if not documents:
        raise NotFound("nothing to hand over: no filed document matches" + (f" the year {year}" if year else ""))
    return documents


def _year(document: ExportedDocument) -> int | None:
    when = document.metadata.get("award_date") or document.record.process.get("time") or ""
    return int(when[:4]) if when[:4].isdigit() else None


def catalogue_row(document: ExportedDocument) -> dict[str, object]:
    """One document's line of the 归档文件目录 (DA/T 22 columns): its arrangement and
    description (records.arrangement); where a document has none yet, what its metadata says."""
    meta, described = document.metadata, document.archival
    kind = DOC_TYPE_NAMES.get(document.doc_type, "").split(" ")[0]
    title = " ".join(part for part in (meta.get("project_name"), kind) if part) or document.record.source
    return {
        "档号": described.get("archival_code"),
        "题名": described.get("title") or title,
        "责任者": described.get("responsible") or meta.get("purchaser") or meta.get("agency"),
        "日期": described.get("doc_date") or meta.get("award_date"),
        "页数": document.record.pages,
        "保管期限": described.get("retention"),
        "文号": described.get("doc_number"),
        "项目编号": meta.get("project_code"),
        "文件标识": document.record.document,
        "交易类型": meta.get("transaction_type"),
        "文件类型": document.doc_type,
        "信息包": f"transactions/{document.package.parent.name}/{document.package.name}",
    }


def _write_catalogue(folder: Path, rows: list[dict[str, object]]) -> None:
    from openpyxl import Workbook

    folder.mkdir(parents=True, exist_ok=True)
    root = ET.Element("归档文件目录", {"生成时间": _now(), "条目数": str(len(rows))})
    for row in rows:
        entry = ET.SubElement(root, "文件")
        for column in CATALOGUE_COLUMNS:
            ET.SubElement(entry, column).text = None if row[column] is None else str(row[column])
    ET.indent(root)
    ET.ElementTree(root).write(folder / "归档文件目录.xml", encoding="utf-8", xml_declaration=True)
    book = Workbook()
    sheet = book.active
    sheet.title = "归档文件目录"
    sheet.append(CATALOGUE_COLUMNS)
    for row in rows:
        sheet.append([row[column] for column in CATALOGUE_COLUMNS])
    book.save(folder / "归档文件目录.xlsx")


def _register_entry(destination: Path, bag: Path, oxum: str | None, signing: SigningSettings) -> dict:
    files = [p for p in bag.rglob("*") if p.is_file()]
    return {
        "package": str(bag.relative_to(destination)),
        "document": bag.name,
        "files": len(files),
        "bytes": sum(p.stat().st_size for p in files),
        "payload_oxum": oxum,
        "tagmanifest_sha256": sha256_file(bag / "tagmanifest-sha256.txt"),
        "access_pdf_sha256": sha256_file(bag / "data" / "access.pdf"),
        "original_sha256": sha256_file(bag / "data" / "original.pdf"),
        **signature_summary(bag, signing),
    }


def _write_register_csv(path: Path, register: list[dict]) -> None:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(register[0]))
    writer.writeheader()
    writer.writerows(register)
    path.write_text(out.getvalue(), encoding="utf-8-sig")  # with a BOM: Excel on Chinese Windows reads it as UTF-8


def _write_description(
    destination: Path, archive: Archive, totals: dict, transactions: tuple[str, ...], year: int | None,
    check: FourPropertyReport, signing: SigningSettings,
) -> None:  # fmt: skip
    selection = ", ".join(transactions) or "all filed transactions"
    signed = ("Each access PDF carries the centre's PDF signature (PAdES) and each package's tagmanifest-sha256.txt "
              "a detached CMS signature (tagmanifest-sha256.txt.p7s); the register is signed (移交清单.json.p7s)."
              if signing.enabled else "No signing key was configured: the packages are not signed.")  # fmt: skip
    text = f"""说明文件 (hand-over description)

移交单位 (from): trade-archive, {archive.root}
移交时间 (time, UTC): {_now()}
范围 (selection): {selection}{f"; year {year}" if year else ""}
数量 (totals): {totals["packages"]} packages, {totals["files"]} files, {totals["bytes"]} bytes

内容 (contents):
  目录/归档文件目录.xml, .xlsx   catalogue, one row per document
  transactions/<code>/<document>/ one BagIt bag per document (data/original.pdf as received, data/access.pdf
                                 PDF/A-2b searchable copy, page images, OCR, document.json)
  移交清单.json, .csv            register: files, bytes, Payload-Oxum and SHA-256 per package
  四性检测报告-移交.json          DA/T 70 four-property check of these copies: {check.outcome}

固化信息 (signatures): {signed}

接收检查 (how to check on receipt): validate each bag with the `bagit` tool (bagit.py --validate DIR); validate
signatures with `pyhanko sign validate --trust <the centre's root certificate> data/access.pdf`.
"""
    (destination / "说明文件.txt").write_text(text, encoding="utf-8")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
