"""Transaction metadata for one document: the manifest row first, facts read
from the OCR text to fill the gaps, and where every value came from.

This is the basic layer (label-anchored patterns); the metadata issue deepens it.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

FIELDS = ("project_code", "project_name", "transaction_type", "purchaser", "agency", "winner", "amount", "award_date")

# Manifest doc_type values seen in platform exports -> DESIGN.md §2 vocabulary.
DOC_TYPE_ALIASES = {
    "award": "award_notice",
    "bidopen": "bid_opening",
    "bid_open": "bid_opening",
    "tender": "tender_notice",
    "candidate": "candidate_notice",
    "evaluation": "evaluation_report",
}
DOC_TYPES = (
    "tender_notice", "tender_documents", "bid", "bid_opening", "evaluation_report",
    "candidate_notice", "award_notice", "contract", "notice", "other",
)  # fmt: skip

# What staff call each document type: indexed with every page, so 中标通知书 finds
# notices titled 中标（成交）通知书 or 成交通知书.
DOC_TYPE_NAMES = {
    "tender_notice": "招标公告 采购公告",
    "tender_documents": "招标文件 采购文件",
    "bid": "投标文件 响应文件",
    "bid_opening": "开标记录 开标记录表",
    "evaluation_report": "评标报告 评审报告",
    "candidate_notice": "中标候选人公示 成交候选人公示",
    "award_notice": "中标通知书 成交通知书 中标（成交）通知书 中标结果通知书",
    "contract": "合同 采购合同",
    "notice": "通知",
    "other": "",
}

# Title keywords, most specific first: the first match in the first lines wins.
TITLE_KEYWORDS = (
    ("中标候选人", "candidate_notice"),
    ("成交候选人", "candidate_notice"),
    ("通知书", "award_notice"),
    ("开标记录", "bid_opening"),
    ("评标报告", "evaluation_report"),
    ("评审报告", "evaluation_report"),
    ("合同", "contract"),
    ("投标文件", "bid"),
    ("响应文件", "bid"),
    ("招标文件", "tender_documents"),
    ("采购文件", "tender_documents"),
    ("磋商文件", "tender_documents"),
    ("公告", "tender_notice"),
    ("通知", "notice"),
)

_CODE = re.compile(
    r"(?:项目编号|采购编号|招标编号|项目代码|采购项目编号|合同编号)\s*[:：]\s*"
    r"([A-Za-z0-9][A-Za-z0-9\-—_/()（）〔〕﹝﹞\[\]号]*[A-Za-z0-9)）号]|[\u4e00-\u9fff]{1,6}[〔﹝\[（(]\d{4}[〕﹞\])）]\d+号)"
)
_LABELS = {
    "purchaser": r"(?:采购人|招标人|甲方|出让人|转让方)",
    "agency": r"(?:代理机构|招标代理|采购代理机构)",
    "winner": r"(?:中标人|成交供应商|中标（成交）人|中标供应商|乙方|受让方)",
}
_ORG_END = r"(?:公司|局|院|委员会|中心|学校|大学|医院|政府|办公室|厅|站|所|队|社|馆)"
_AMOUNT = re.compile(r"(?:[¥￥]|金额[为是：:]?)\s*([\d,，]+(?:\.\d{1,2})?)\s*(万)?元")
_DATE = re.compile(r"(\d{4})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*日")


@dataclass
class DocumentMetadata:
    doc_type: str
    values: dict[str, object] = field(default_factory=dict)
    provenance: dict[str, str | None] = field(default_factory=dict)
    extracted: dict[str, object] = field(default_factory=dict)  # what the text said, kept even where the manifest won
    conflicts: list[str] = field(default_factory=list)


def normalise_doc_type(value: str | None) -> str | None:
    if not value:
        return None
    value = value.strip().lower()
    value = DOC_TYPE_ALIASES.get(value, value)
    return value if value in DOC_TYPES else None


def doc_type_from_text(text: str) -> str:
    head = "".join(text.splitlines()[:3])
    for keyword, doc_type in TITLE_KEYWORDS:
        if keyword in head:
            return doc_type
    return "other"


def extract_fields(text: str) -> dict[str, object]:
    """Label-anchored facts from page text (all pages of a document)."""
    flat = unicodedata.normalize("NFKC", text)
    joined = flat.replace("\n", "")  # codes and names wrap across lines
    found: dict[str, object] = {}
    if match := _CODE.search(flat):
        code = match.group(1)
        rest = flat[match.end() :]
        # A code cut by a line break inside brackets, "(项目编号：GXCQ202\n2-519)":
        # join only when the next line's run closes the bracket, so a date on the
        # next line is never glued onto the code.
        if rest.startswith("\n") and (tail := re.match(r"\n([A-Za-z0-9\-]+)[)）]", rest)):
            code += tail.group(1)
        if not code.endswith("号"):
            code = re.sub(r"-HT$", "", code)  # a contract number is the project code plus -HT
        found["project_code"] = code.strip("()（）")
    for name, label in _LABELS.items():
        if match := re.search(label + r"\s*[:：]\s*([^\s:：，,。]{2,40}?" + _ORG_END + ")", flat):
            found[name] = match.group(1)
    if "winner" not in found and (match := re.search(r"^([^\s:：]{4,40}?" + _ORG_END + r")\s*[:：]\s*$", flat, re.M)):
        found["winner"] = match.group(1)  # an award notice is addressed to the winner
    if match := _AMOUNT.search(joined):
        amount = float(re.sub(r"[,，]", "", match.group(1)))
        found["amount"] = amount * 10000 if match.group(2) else amount
    dates = _DATE.findall(flat)
    if dates:
        year, month, day = dates[-1]  # the signature date closes the document
        found["award_date"] = f"{int(year):04d}-{int(month):02d}-{int(day):02d}"
    return found


def merge(manifest_row: dict[str, str] | None, text: str) -> DocumentMetadata:
    """Manifest values win; extracted values fill gaps; disagreements are kept."""
    row = manifest_row or {}
    doc_type = normalise_doc_type(row.get("doc_type")) or doc_type_from_text(text)
    extracted = extract_fields(text)
    if doc_type != "award_notice":
        extracted.pop("award_date", None)  # other documents' dates are not the award's
    values: dict[str, object] = {}
    provenance: dict[str, str | None] = {}
    conflicts = []
    for name in FIELDS:
        given = row.get(name) or None
        if name == "amount" and given is not None:
            try:
                given = float(str(given).replace(",", ""))
            except ValueError:
                given = None
        seen = extracted.get(name)
        if given is not None:
            values[name], provenance[name] = given, "manifest"
            if seen is not None and str(seen) != str(given):
                conflicts.append(name)
        elif seen is not None:
            values[name], provenance[name] = seen, "text"
        else:
            values[name], provenance[name] = None, None
    return DocumentMetadata(doc_type, values, provenance, extracted, conflicts)
