"""Transaction metadata for one document: the manifest row first, facts read
from the OCR text to fill the gaps, and where every value came from.

This is the basic layer (label-anchored patterns); the metadata issue deepens it.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

from archive.han import to_simplified
from archive.records.amounts import parse_capitals, parse_figures
from archive.records.redhead import project_name_in_title, read_red_header

FIELDS = ("project_code", "project_name", "transaction_type", "purchaser", "agency", "winner", "amount", "award_date")

# Manifest doc_type values seen in platform exports -> docs/contracts.md vocabulary.
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
_CODE_IN_BRACKETS = re.compile(
    r"[（(]\s*(?:项目编号|采购编号|招标编号)\s*[:：]\s*([A-Za-z0-9][A-Za-z0-9\-—_/〔〕\[\]]{2,60}?)\s*[）)]"
)
_ORG_END = r"(?:公司|局|院|委员会|委|中心|学校|大学|医院|政府|办公室|厅|站|所|队|社|馆|集团)"
_BRACKETED = r"(?:[（(][^）)]{0,8}[）)])?"  # 甲方（采购人）：
_LABELS = {
    "purchaser": r"(?:采购人|招标人|甲方|出让人|转让方)",
    "agency": r"(?:代理机构|招标代理机构|招标代理|采购代理机构)",
    "winner": r"(?:中标人|成交供应商|中标（成交）人|中标供应商|乙方|受让方|竞得人)",
}
_DATE = re.compile(r"(\d{4})\s*[年.\-/]\s*(\d{1,2})\s*[月.\-/]\s*(\d{1,2})\s*日?")
# Where a document names its project: in its title (first line), or just
# before the project code in running text (line breaks removed).
_NAME_IN_TITLE = (
    re.compile(r"^关于(.{2,40}?)(?:有关事项|相关事项|事项)?的通知"),
    re.compile(r"^(.{2,40}?)(?:开标记录表|开标记录|评标报告|中标候选人公示|招标公告|采购公告|招标文件|采购文件)"),
)
_NAME_IN_TEXT = (
    re.compile(r"[的及]([^，,。的及]{2,40}?)[（(]\s*项目编号"),
    re.compile(r"项目名称\s*[:：]\s*([^\s，,。]{2,40})"),
)
# The transaction type a project code's letters stand for (Guangxi and common
# national forms), most specific first; the text decides when the code is silent.
CODE_TYPES = (
    (re.compile(r"^E\d{10,}"), "工程建设招标投标"),  # national construction-tender code
    (re.compile(r"ZC|政采|财采", re.I), "政府采购"),
    (re.compile(r"CQ|产权", re.I), "国有产权交易"),
    (re.compile(r"GT|TD|国土|土地", re.I), "土地使用权出让"),
    (re.compile(r"KQ|KY|矿", re.I), "矿业权出让"),
    (re.compile(r"YC|YP|YX|医药|药", re.I), "药品和医疗器械采购"),
    (re.compile(r"LQ|林权", re.I), "林权交易"),
    (re.compile(r"NC|农村", re.I), "农村集体产权交易"),
    (re.compile(r"PW|TPF|排污|碳", re.I), "环境权交易"),
    (re.compile(r"JS|GC|ZB", re.I), "工程建设招标投标"),
)
TEXT_TYPES = (
    ("国有建设用地使用权", "土地使用权出让"),
    ("土地使用权", "土地使用权出让"),
    ("采矿权", "矿业权出让"),
    ("探矿权", "矿业权出让"),
    ("产权转让", "国有产权交易"),
    ("林权", "林权交易"),
    ("药品", "药品和医疗器械采购"),
    ("医疗器械", "药品和医疗器械采购"),
    ("排污权", "环境权交易"),
    ("碳排放", "环境权交易"),
    ("施工招标", "工程建设招标投标"),
    ("政府采购", "政府采购"),
)
# Which document's reading of a fact the transaction trusts most (lower wins).
TEXT_PRIORITY = {"award_notice": 0, "contract": 1, "candidate_notice": 2, "bid_opening": 3, "tender_notice": 4}


@dataclass
class DocumentMetadata:
    doc_type: str
    values: dict[str, object] = field(default_factory=dict)
    provenance: dict[str, str | None] = field(default_factory=dict)
    extracted: dict[str, object] = field(default_factory=dict)  # what the text said, kept even where the manifest won
    conflicts: list[str] = field(default_factory=list)
    qc_flags: list[str] = field(default_factory=list)


def normalise_doc_type(value: str | None) -> str | None:
    if not value:
        return None
    value = value.strip().lower()
    value = DOC_TYPE_ALIASES.get(value, value)
    return value if value in DOC_TYPES else None


def doc_type_from_text(text: str) -> str:
    title = read_red_header(text).title or ""  # a red-headed notice's title comes after its header
    head = title + "".join(text.splitlines()[:3])
    for keyword, doc_type in TITLE_KEYWORDS:
        if keyword in head:
            return doc_type
    return "other"


def transaction_type_from(code: str | None, text: str) -> str | None:
    if code:
        for pattern, kind in CODE_TYPES:
            if pattern.search(code):
                return kind
    for keyword, kind in TEXT_TYPES:
        if keyword in text:
            return kind
    return None


def same_name(a: object, b: object) -> bool:
    """Equal after NFKC and without white space (how names are compared everywhere)."""

    def norm(v: object) -> str:
        return "".join(unicodedata.normalize("NFKC", str(v)).split())

    return norm(a) == norm(b)


def extract_fields(text: str) -> dict[str, object]:
    """Label-anchored facts from page text (all pages of a document)."""
    flat = unicodedata.normalize("NFKC", text)
    found: dict[str, object] = {}
    joined = flat.replace("\n", "")  # names and codes wrap across lines
    # A code in brackets may be cut by a line break anywhere, "(项目编号：G\nXYC2022)":
    # read it from the joined text up to the closing bracket. Elsewhere read it on
    # its own line, so a date on the next line is never glued onto it.
    match = _CODE_IN_BRACKETS.search(joined) or _CODE.search(flat)
    if match:
        code = match.group(1)
        if not code.endswith("号"):
            code = re.sub(r"-HT$", "", code)  # a contract number is the project code plus -HT
        found["project_code"] = unicodedata.normalize("NFKC", code.strip("()（）"))
    header = read_red_header(flat)  # issuer, 文号 and the real title, where the head gives them
    found.update(header.fields())
    names = [name] if (name := project_name_in_title(header.title)) else []
    names += [m.group(1) for p in _NAME_IN_TITLE if (m := p.search(flat))]
    names += [m.group(1) for p in _NAME_IN_TEXT if (m := p.search(joined))]
    if names:
        found["project_name"] = names[0].strip()
    for name, label in _LABELS.items():
        if match := re.search(label + _BRACKETED + r"\s*[:：]\s*([^\s:：，,。]{2,40}?" + _ORG_END + ")", flat):
            found[name] = match.group(1)
    if "winner" not in found and (match := re.search(r"^([^\s:：]{4,40}?" + _ORG_END + r")\s*[:：]\s*$", flat, re.M)):
        found["winner"] = match.group(1)  # an award notice is addressed to the winner
    figures, capitals = parse_figures(joined), parse_capitals(joined)
    if figures is not None or capitals is not None:
        found["amount"] = figures if figures is not None else capitals
    if figures is not None and capitals is not None and abs(figures - capitals) > 0.005:
        found["amount_capitals"] = capitals  # the two forms disagree: QC looks at it
    dates = _DATE.findall(flat)
    if dates:
        year, month, day = dates[-1]  # the signature date closes the document
        if 1 <= int(month) <= 12 and 1 <= int(day) <= 31:
            found["award_date"] = f"{int(year):04d}-{int(month):02d}-{int(day):02d}"
    kind = transaction_type_from(found.get("project_code"), flat)  # type: ignore[arg-type]
    if kind:
        found["transaction_type"] = kind
    return found


def merge(manifest_row: dict[str, str] | None, text: str) -> DocumentMetadata:
    """Manifest values win; extracted values fill gaps; disagreements are kept and flagged."""
    row = manifest_row or {}
    text = to_simplified(text)  # a traditional page (or a recogniser's 開標) reads as its simplified labels
    doc_type = normalise_doc_type(row.get("doc_type")) or doc_type_from_text(text)
    extracted = extract_fields(text)
    if doc_type != "award_notice":
        extracted.pop("award_date", None)  # other documents' dates are not the award's
    if doc_type == "bid_opening":
        extracted.pop("amount", None)  # a bid-opening record lists every bid, not the award
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
            if seen is not None and not _agree(name, seen, given):
                conflicts.append(name)
        elif seen is not None:
            values[name], provenance[name] = seen, "text"
        else:
            values[name], provenance[name] = None, None
    flags = [f"manifest_disagrees:{name}" for name in conflicts]
    if "amount_capitals" in extracted:
        flags.append("amount_figures_vs_capitals")
    if not values["project_code"]:
        flags.append("no_project_code")
    return DocumentMetadata(doc_type, values, provenance, extracted, conflicts, flags)


def _agree(name: str, seen: object, given: object) -> bool:
    if name == "amount":
        return abs(float(seen) - float(given)) <= 0.005  # type: ignore[arg-type]
    return same_name(seen, given)


# Per-document description (DA/T 46): each document's own, never merged into its transaction's.
DESCRIPTION = ("title", "responsible", "doc_date", "doc_number")
# 文号: issuer's abbreviation, year in brackets, number (南公管〔2021〕58号, 桂财采[2023]1号).
_DOC_NUMBER = re.compile(
    r"[\u4e00-\u9fff]{1,10}[〔\[［【﹝(（]\s*(?:19|20)\d{2}\s*[〕\]］】﹞)）]\s*第?\s*\d{1,5}\s*号"
)
_SIGNATURE = re.compile(r"^([^\s:：，,。]{4,40}?" + _ORG_END + r")(?:[（(][^）)]{0,8}[）)])?$")
_OCR_YEAR = re.compile(r"((?:19|20)\d{2})\s*午(?=\s*\d{1,2}\s*月)")  # 年 read as 午: 2022午4月6日
TITLE_MAX = 60  # a first line longer than this is running text, not a title


def extract_description(text: str, doc_type: str, metadata: dict[str, object]) -> dict[str, str | None]:
    """题名, 责任者, 日期 and 文号 read from a document's text (all its pages, in order);
    ``metadata``: its transaction fields (the parties stand in for a signature not found)."""
    flat = _OCR_YEAR.sub(r"\1年", unicodedata.normalize("NFKC", text))
    lines = [line.strip() for line in flat.splitlines() if line.strip()]
    dates = [d for d in _DATE.findall(flat) if 1 <= int(d[1]) <= 12 and 1 <= int(d[2]) <= 31]
    number = next(filter(None, map(_DOC_NUMBER.search, lines)), None)
    as_written = [line.strip() for line in text.splitlines() if line.strip()]  # a title keeps its （）
    return {
        "title": _title(as_written, doc_type, metadata),
        "responsible": _responsible(lines, doc_type, metadata),
        "doc_date": "{:04d}-{:02d}-{:02d}".format(*map(int, dates[-1])) if dates else None,  # the signature's
        "doc_number": re.sub(r"\s+", "", number.group(0)) if number else None,
    }


def _title(lines: list[str], doc_type: str, metadata: dict[str, object]) -> str:
    """The first of the opening lines that carries a title word (通知书, 开标记录, 合同, ...),
    else the first short line, else the project name with the document type's name."""
    head = [line for line in lines[:6] if len(line) <= TITLE_MAX]
    titled = [line for line in head if line.startswith("关于") or any(k in line for k, _ in TITLE_KEYWORDS)]
    title = (titled or head or [DOC_TYPE_NAMES.get(doc_type, "").split(" ")[0] or "文件"])[0]
    project = str(metadata.get("project_name") or "")
    if project and len(title) <= 12 and not same_name(project, title[: len(project)]):
        title = project + title  # 中标（成交）通知书 alone says nothing in a catalogue: whose?
    return title


def _responsible(lines: list[str], doc_type: str, metadata: dict[str, object]) -> str | None:
    """Who issued the document: an organisation signing alone on one of its last lines, else
    the parties its kind speaks for (a contract both, a notice the agency or the purchaser)."""
    for line in reversed(lines[-4:]):
        if match := _SIGNATURE.match(line):
            return match.group(1)
    if doc_type == "contract":
        parties = [str(metadata[p]) for p in ("purchaser", "winner") if metadata.get(p)]
        return "；".join(parties) or None
    if doc_type == "bid":
        return str(metadata["winner"]) if metadata.get("winner") else None
    chosen = metadata.get("agency") or metadata.get("purchaser")
    return str(chosen) if chosen else None
