"""The trading platform's export (manifest): one row per scanned file.

Reads CSV as Chinese office software writes it (UTF-8, UTF-8 with BOM,
GB18030/GBK) and XLSX; maps Chinese or English column headers (or the
operator's own, ``extra_columns``) onto the archive's field names; checks every
value and reports each problem with its row number. A bad value is dropped
(the text may still supply it); nothing is dropped silently.
"""

from __future__ import annotations

import csv
import functools
import io
import math
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

from archive.errors import BadArgument
from archive.records.amounts import parse_capitals
from archive.records.metadata import DOC_TYPES, normalise_doc_type

ENCODINGS = ("utf-8-sig", "gb18030")  # GB18030 is a superset of GBK and GB2312

HEADERS = {
    "file": ("file", "filename", "file_name", "文件", "文件名", "文件名称", "扫描文件"),
    "project_code": ("project_code", "code", "项目编号", "采购编号", "招标编号", "项目代码", "交易编号"),
    "project_name": ("project_name", "项目名称", "采购项目名称"),
    "transaction_type": ("transaction_type", "type", "交易类型", "业务类型", "交易分类"),
    "purchaser": ("purchaser", "tenderer", "采购人", "招标人", "采购人/招标人", "招标人/采购人", "出让人"),
    "agency": ("agency", "代理机构", "采购代理机构", "招标代理机构", "招标代理"),
    "winner": ("winner", "supplier", "中标人", "成交供应商", "中标人/成交供应商", "中标（成交）供应商", "中标供应商",
               "竞得人", "受让方"),
    "amount": ("amount", "中标金额", "成交金额", "中标金额/成交金额", "中标（成交）金额", "合同金额", "成交价"),
    "award_date": ("award_date", "中标日期", "成交日期", "中标（成交）日期", "中标时间", "成交时间"),
    "doc_type": ("doc_type", "document_type", "文件类型", "文档类型", "材料类型"),
    "pages": ("pages", "页数", "扫描页数"),
    "access": ("access", "access_level", "访问级别", "开放属性", "公开属性"),
    # the document's own description (DA/T 46) and where its paper original is kept
    "title": ("title", "题名", "文件题名"),
    "responsible": ("responsible", "责任者"),
    "doc_date": ("doc_date", "document_date", "日期", "文件日期", "成文日期"),
    "doc_number": ("doc_number", "文号", "发文字号"),
    "box": ("box", "盒号"),
    "shelf": ("shelf", "架位", "存放位置"),
}  # fmt: skip

TRANSACTION_TYPES = (
    "工程建设招标投标", "政府采购", "土地使用权出让", "矿业权出让", "国有产权交易",
    "药品和医疗器械采购", "农村集体产权交易", "林权交易", "环境权交易", "其他",
)  # fmt: skip
# Short forms platforms also export.
TYPE_ALIASES = {"工程建设": "工程建设招标投标", "工程招标": "工程建设招标投标", "土地出让": "土地使用权出让",
                "土地使用权": "土地使用权出让", "矿业权": "矿业权出让", "国有产权": "国有产权交易",
                "产权交易": "国有产权交易", "药品采购": "药品和医疗器械采购", "医疗器械采购": "药品和医疗器械采购",
                "排污权交易": "环境权交易", "碳排放权交易": "环境权交易", "用能权交易": "环境权交易"}  # fmt: skip


@dataclass
class Manifest:
    # the file as the manifest names it (a path with / separators, e.g. a/0001.pdf) -> cleaned row
    rows: dict[str, dict[str, str]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # "row 7: amount '12,3a' is not a number"
    row_numbers: dict[str, int] = field(default_factory=dict)

    def get(self, relative: str) -> dict[str, str] | None:
        """The row of the file at ``relative`` (its path under the batch folder, or its name)."""
        key = self.key_for(relative)
        return self.rows.get(key) if key is not None else None

    def key_for(self, relative: str) -> str | None:
        """The row naming this file: of the rows with its name, the one whose path agrees
        with the file's over the most trailing folders (a/0001.pdf and b/0001.pdf are two
        files; D:\\扫描\\a\\0001.pdf from a Windows export is a/0001.pdf). None where no
        row or several rows fit equally well: a wrong row would file the scan wrongly."""
        parts = _parts(relative)
        scored = [(_shared_tail(parts, _parts(key)), key) for key in self._keys_named(parts[-1] if parts else "")]
        if not scored:
            return None
        best = max(score for score, _ in scored)
        fitting = [key for score, key in scored if score == best]
        return fitting[0] if len(fitting) == 1 else None

    def keys_for(self, files: list[str]) -> dict[str, str | None]:
        """Each file's row key (``key_for``; give whole paths, so that the folders above a
        batch count too). A row that fits several files fits none of them: it describes
        one file, and which one cannot be told (a problem says so)."""
        keys = {file: self.key_for(file) for file in files}
        claimed: dict[str, list[str]] = {}
        for file, key in keys.items():
            if key is not None:
                claimed.setdefault(key, []).append(file)
        for key, sharing in claimed.items():
            if len(sharing) > 1:
                self.problems.append(f"row {self.row_numbers.get(key, '?')}: {key} fits {len(sharing)} files "
                                     f"({', '.join(sorted(sharing)[:3])}): give each its path")  # fmt: skip
                keys.update(dict.fromkeys(sharing))
        return keys

    def _keys_named(self, name: str) -> list[str]:
        return self._by_name.get(name, [])

    @functools.cached_property
    def _by_name(self) -> dict[str, list[str]]:
        """Row keys by file name (built at the first look-up, once the rows are read)."""
        by_name: dict[str, list[str]] = {}
        for key in self.rows:
            by_name.setdefault(_parts(key)[-1], []).append(key)
        return by_name


def _parts(path: str) -> tuple[str, ...]:
    return tuple(part for part in path.replace("\\", "/").split("/") if part not in ("", "."))


def _shared_tail(a: tuple[str, ...], b: tuple[str, ...]) -> int:
    shared = 0
    while shared < min(len(a), len(b)) and a[-1 - shared] == b[-1 - shared]:
        shared += 1
    return shared


def column_map(pairs: tuple[str, ...] | list[str]) -> dict[str, str]:
    """``FIELD=HEADER`` pairs (a column the built-in names miss, e.g. ``amount=合同价``)
    as the extra columns ``read_manifest`` takes."""
    mapping = {}
    for pair in pairs:
        name, sep, header = pair.partition("=")
        if not sep or not name or not header:
            raise BadArgument("--column", f"{pair!r}: write FIELD=HEADER, e.g. amount=合同价")
        if name.strip() not in HEADERS:
            raise BadArgument("--column", f"{name.strip()!r} is not a manifest field; one of: {', '.join(HEADERS)}")
        mapping[name.strip()] = header.strip()
    return mapping


def read_manifest(path: Path, extra_columns: dict[str, str] | None = None) -> Manifest:
    """Read and check a manifest. ``extra_columns`` maps a field to a header the
    platform uses that the built-in names do not know, e.g. {"amount": "合同价"}."""
    table = _read_xlsx(path) if path.suffix.lower() in (".xlsx", ".xlsm") else _read_csv(path)
    if not table:
        return Manifest(problems=[f"{path.name}: empty"])
    mapping, unknown = _map_headers(table[0], extra_columns or {})
    manifest = Manifest()
    if "file" not in mapping.values():
        manifest.problems.append(f"{path.name}: no file-name column (expected one of: {', '.join(HEADERS['file'])})")
        return manifest
    if unknown:
        manifest.problems.append(f"{path.name}: columns not used: {', '.join(unknown)}")
    for number, cells in enumerate(table[1:], start=2):  # row 1 is the header, as a spreadsheet counts
        raw = {mapping[i]: str(v).strip() for i, v in enumerate(cells) if i in mapping and v not in (None, "")}
        if not any(raw.values()):
            continue
        name = "/".join(_parts(raw.get("file", "")))
        if not name:
            manifest.problems.append(f"row {number}: no file name")
            continue
        if name in manifest.rows:
            manifest.problems.append(
                f"row {number}: {name} is listed again (first on row {manifest.row_numbers[name]})"
            )
            continue
        manifest.rows[name] = _clean_row(raw, number, manifest.problems)
        manifest.row_numbers[name] = number
    return manifest


def read_manifests(paths: list[Path], root: Path, extra_columns: dict[str, str] | None = None) -> Manifest:
    """Several manifests of one batch (a delivery of boxes, each with its own) as one:
    each row's file is taken from its manifest's folder, so box-1/0001.pdf and
    box-2/0001.pdf find their own rows."""
    merged = Manifest()
    for path in paths:
        one = read_manifest(path, extra_columns)
        folder = path.parent.relative_to(root).as_posix() if path.parent != root else ""
        for key, row in one.rows.items():
            name = f"{folder}/{key}" if folder else key
            merged.rows[name], merged.row_numbers[name] = row, one.row_numbers[key]
        merged.problems += [f"{path.relative_to(root).as_posix()}: {problem}" for problem in one.problems]
    return merged


def _read_csv(path: Path) -> list[list[str]]:
    raw = path.read_bytes()
    for encoding in ENCODINGS:
        try:
            text = raw.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise ValueError(f"{path.name}: not UTF-8 or GB18030 text; save it as CSV UTF-8")
    return [row for row in csv.reader(io.StringIO(text))]


def _read_xlsx(path: Path) -> list[list[object]]:
    from openpyxl import load_workbook

    workbook = load_workbook(path, read_only=True, data_only=True)
    try:
        return [list(row) for row in workbook.worksheets[0].iter_rows(values_only=True)]
    finally:
        workbook.close()


def _map_headers(header: list, extra: dict[str, str]) -> tuple[dict[int, str], list[str]]:
    lookup = {_norm(alias): name for name, aliases in HEADERS.items() for alias in aliases}
    lookup.update({_norm(header_text): name for name, header_text in extra.items()})
    mapping, unknown = {}, []
    for i, cell in enumerate(header):
        name = lookup.get(_norm(str(cell or "")))
        if name and name not in mapping.values():
            mapping[i] = name
        elif cell:
            unknown.append(str(cell))
    return mapping, unknown


def _norm(text: str) -> str:
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text)).lower()


def _clean_row(raw: dict[str, str], number: int, problems: list[str]) -> dict[str, str]:
    row = dict(raw)
    if "project_code" in row:  # ＧＸＣＱ2022-519 typed on a Chinese keyboard is GXCQ2022-519
        row["project_code"] = unicodedata.normalize("NFKC", row["project_code"]).strip()
    if "amount" in row:
        amount = parse_amount(row["amount"])
        if amount is None:
            problems.append(f"row {number}: amount {row['amount']!r} is not a number of yuan")
            row.pop("amount")
        else:
            row["amount"] = f"{amount:.2f}"
    for name in ("award_date", "doc_date"):
        if name in row:
            day = parse_date(row[name])
            if day is None:
                problems.append(f"row {number}: {name} {row[name]!r} is not a date")
                row.pop(name)
            else:
                row[name] = day
    if "transaction_type" in row:
        kind = normalise_transaction_type(row["transaction_type"])
        if kind is None:
            known = ", ".join(TRANSACTION_TYPES)
            problems.append(f"row {number}: transaction_type {row['transaction_type']!r} is not one of {known}")
            row.pop("transaction_type")
        else:
            row["transaction_type"] = kind
    if "doc_type" in row and normalise_doc_type(row["doc_type"]) is None:
        problems.append(f"row {number}: doc_type {row['doc_type']!r} is not one of {', '.join(DOC_TYPES)}")
        row.pop("doc_type")
    if "access" in row:
        level = normalise_access(row["access"])
        if level is None:
            problems.append(f"row {number}: access {row['access']!r} is not open/公开 or restricted/限制")
            row.pop("access")
        else:
            row["access"] = level
    if "pages" in row and not row["pages"].isdigit():
        problems.append(f"row {number}: pages {row['pages']!r} is not a whole number")
        row.pop("pages")
    return row


def normalise_transaction_type(value: str) -> str | None:
    """A catalogue transaction type from the platform's word for it (工程建设 -> 工程建设招标投标)."""
    kind = TYPE_ALIASES.get(value.strip(), value.strip())
    return kind if kind in TRANSACTION_TYPES else None


def normalise_access(value: str) -> str | None:
    """open or restricted, from English or Chinese (公开, 开放, 限制, 不公开), any case."""
    level = {"公开": "open", "开放": "open", "限制": "restricted", "不公开": "restricted"}.get(value.strip(), value)
    return level.strip().lower() if level.strip().lower() in ("open", "restricted") else None


def parse_amount(text: str) -> float | None:
    """'¥1,234,567.89', '1234567.89元', '123.45万元', '人民币壹佰万元整' -> yuan."""
    cleaned = unicodedata.normalize("NFKC", str(text)).replace(",", "").replace("¥", "").replace("元", "").strip()
    scale = 1
    if cleaned.endswith("万"):
        cleaned, scale = cleaned[:-1], 10_000
    try:
        value = float(cleaned) * scale
    except ValueError:  # capitals, as on the award notice (with or without 人民币)
        words = str(text).strip()
        return parse_capitals(words if words.startswith(("人民币", "大写")) else "人民币" + words)
    return round(value, 2) if math.isfinite(value) and value >= 0 else None  # not inf, 1e309, nan


def parse_date(text: str) -> str | None:
    """'2023-05-12', '2023/5/12', '2023.5.12', '2023年5月12日', '20230512', Excel dates -> 'YYYY-MM-DD'."""
    if isinstance(text, (datetime, date)):
        return text.strftime("%Y-%m-%d")
    match = re.fullmatch(r"\s*(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?(?:\s+[\d:]+)?\s*", str(text))
    match = match or re.fullmatch(r"\s*(\d{4})(\d{2})(\d{2})\s*", str(text))  # 20230512, as platforms export
    if not match:
        return None
    try:
        return date(int(match.group(1)), int(match.group(2)), int(match.group(3))).isoformat()
    except ValueError:
        return None
