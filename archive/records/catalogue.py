"""The catalogue (归档文件目录, DA/T 22-2015): one row per arranged document, in 档号 order
(fonds, year, retention, item), as XLSX (what bureaus open), CSV (UTF-8 with BOM, so
Excel reads the Chinese) or XML (for systems). Each row carries the document's
description, pages, project code and where its paper original is kept."""

from __future__ import annotations

import csv
import io
from dataclasses import astuple, dataclass, fields
from pathlib import Path
from xml.etree import ElementTree

from archive.errors import InvalidValue
from archive.records.arrangement import RETENTION_YEARS, Arrangement, type_name
from archive.records.export import iter_documents
from archive.records.originals import paper_locations
from archive.storage.audit import record_use
from archive.storage.fixity import atomic_write_bytes
from archive.storage.store import Archive, code_key

FORMATS = ("xlsx", "csv", "xml")
RETENTION_ORDER = list(RETENTION_YEARS)  # 永久, 定期30年, 定期10年


@dataclass(frozen=True)
class CatalogueRow:
    """One document's line; the field names' Chinese headers are ``HEADERS``."""

    archival_code: str
    fonds: str
    year: int
    retention: str
    item: int
    title: str
    responsible: str
    doc_date: str
    doc_number: str
    pages: int
    project_code: str
    doc_type: str
    box: str
    shelf: str
    document: str


HEADERS = ("档号", "全宗号", "年度", "保管期限", "件号", "题名", "责任者", "日期", "文号", "页数", "项目编号",
           "文件类型", "盒号", "架位", "文档标识")  # fmt: skip


def catalogue_rows(archive: Archive, year: int | None = None, transaction: str | None = None) -> list[CatalogueRow]:
    """The arranged documents (of ``year``, of the transaction ``transaction``), in 档号 order."""
    paper = paper_locations(archive)
    rows = []
    for exported in iter_documents(archive, in_source_order=False):
        arranged = Arrangement.of(exported.record)
        code = str(exported.metadata.get("project_code") or "")
        if arranged is None or (year and arranged.year != year):
            continue
        if transaction and code_key(code) != code_key(transaction):
            continue
        box, shelf = paper.get(exported.record.document, ("", ""))
        described = {k: str(v or "") for k, v in exported.archival.items()}
        rows.append(CatalogueRow(arranged.archival_code, arranged.fonds, arranged.year, arranged.retention,
                                 arranged.item, described["title"], described["responsible"], described["doc_date"],
                                 described["doc_number"], exported.record.pages, code,
                                 type_name(exported.doc_type), box, shelf, exported.record.document))  # fmt: skip
    return sorted(rows, key=lambda r: (r.fonds, r.year, RETENTION_ORDER.index(r.retention), r.item))


def write_catalogue(
    archive: Archive, fmt: str, out: Path | None, year: int | None = None, transaction: str | None = None
) -> tuple[int, str | None]:
    """(rows, the text where there is no ``out``): the catalogue written to ``out`` (atomically),
    or returned as text (CSV, XML; XLSX needs a file). The use is logged."""
    if fmt not in FORMATS:
        raise InvalidValue(f"catalogue format {fmt!r}: one of {', '.join(FORMATS)}")
    if fmt == "xlsx" and out is None:
        raise InvalidValue("an XLSX catalogue needs a file: --out catalogue.xlsx")
    rows = catalogue_rows(archive, year, transaction)
    record_use(archive, "catalogue", len(rows), format=fmt, year=year, transaction=transaction)
    data = {"xlsx": _xlsx, "csv": _csv, "xml": _xml}[fmt](rows)
    if out is None:
        return len(rows), data.decode("utf-8-sig")
    atomic_write_bytes(out, data)
    return len(rows), None


def _csv(rows: list[CatalogueRow]) -> bytes:
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(HEADERS)
    writer.writerows(astuple(row) for row in rows)
    return text.getvalue().encode("utf-8-sig")


def _xlsx(rows: list[CatalogueRow]) -> bytes:
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "归档文件目录"
    sheet.append(HEADERS)
    for row in rows:
        sheet.append(astuple(row))
    sheet.freeze_panes = "A2"  # the header stays in view
    for letter, width in zip("ABCDEFGHIJKLMNO", (20, 8, 6, 10, 6, 40, 24, 12, 18, 6, 26, 12, 8, 10, 18)):
        sheet.column_dimensions[letter].width = width
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _xml(rows: list[CatalogueRow]) -> bytes:
    root = ElementTree.Element("归档文件目录")
    names = [f.name for f in fields(CatalogueRow)]
    for row in rows:
        item = ElementTree.SubElement(root, "文件", {"档号": row.archival_code})
        for header, name, value in zip(HEADERS, names, astuple(row)):
            ElementTree.SubElement(item, header, {"name": name}).text = str(value)
    ElementTree.indent(root)
    return ElementTree.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"
