"""Batch acceptance (DA/T 31-2017 §10.5/§12, DA/T 70-2018 四性检测): the checks
that let a centre close the paper track for a batch, each with its evidence
and PASS/FAIL, and the flags archivists work through in ``review``.

Flags have stable ids (a hash of what they are about), so a later ``accept``
recognises a flag an archivist has resolved.
"""

from __future__ import annotations

import difflib
import hashlib
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from archive.acceptance.report import load_report
from archive.errors import NotFound
from archive.preservation.verify import verify_archive
from archive.records.arrangement import (
    Arrangement,
    corrected_group,
    is_failed,
    registry,
    required_documents,
    type_name,
)
from archive.records.batch import BatchSummary
from archive.records.bidders import Bid, winner_price_differs
from archive.records.corrections import bidders_as_corrected, latest_metadata, latest_page_text, resolved_flags
from archive.records.document import DocumentRecord
from archive.records.export import archival_description, document_record
from archive.records.manifest import TRANSACTION_TYPES
from archive.records.metadata import DOC_TYPES, same_name
from archive.storage.store import Archive, read_json

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image

MIN_DPI = 200
MAX_SKEW = 3.0
MIN_TEXT_CHARS = 20  # a non-blank page with less text than this is probably unreadable
NEAR_DUPLICATE_BITS = 3  # of a 64-bit difference hash
REQUIRED = ("project_code", "project_name", "transaction_type")
REQUIRED_FOR_AWARD = ("winner", "amount", "award_date")
SEAL_BEARING = ("award_notice", "contract", "candidate_notice")


@dataclass
class Flag:
    id: str
    check: str
    message: str
    document: str | None = None
    source: str | None = None
    page: int | None = None
    resolved: dict | None = None

    @property
    def where(self) -> str:
        """Where the flag points, for people: "file.pdf p.2", "file.pdf" or nothing."""
        return f"{self.source} p.{self.page}" if self.page else (self.source or "")


@dataclass
class Check:
    name: str
    evidence: list[str] = field(default_factory=list)
    flags: list[Flag] = field(default_factory=list)

    @property
    def open_flags(self) -> list[Flag]:
        return [f for f in self.flags if not f.resolved]

    @property
    def passed(self) -> bool:
        return not self.open_flags


@dataclass
class Acceptance:
    batch: str
    checks: list[Check]

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.checks)

    @property
    def open_flags(self) -> list[Flag]:
        return [flag for check in self.checks for flag in check.open_flags]

    def to_json(self) -> dict:
        return {
            "batch": self.batch,
            "outcome": "PASS" if self.passed else "FAIL",
            "checks": [
                {"name": c.name, "outcome": "PASS" if c.passed else "FAIL", "evidence": c.evidence,
                 "flags": [asdict(f) for f in c.flags]}
                for c in self.checks
            ],
        }  # fmt: skip


def flag_id(*parts: object) -> str:
    return hashlib.sha1("|".join(map(str, parts)).encode()).hexdigest()[:10]


def _flag(check: Check, message: str, document: DocumentRecord | None = None, page: int | None = None,
          key: str = "") -> None:  # fmt: skip
    ident = flag_id(check.name, document and document.document, page, key or message)
    check.flags.append(Flag(ident, check.name, message, document and document.document,
                            document and document.source, page))  # fmt: skip


def check_batch(archive: Archive, batch: str | None = None, integrity: bool = True) -> Acceptance:
    """The acceptance checks of ``batch`` (default: the latest). ``integrity=False``
    leaves out the whole-archive ``verify`` (to look a flag up, not to accept)."""
    summary = load_report(archive, batch)
    packages = {}
    for outcome in summary.outcomes:
        if outcome.status in ("archived", "duplicate") and (p := archive.find_document(outcome.document or "")):
            packages[p.name] = p
    documents = [document_record(p) for p in packages.values()]
    pages = {d.document: [_page(archive, d, n) for n in range(1, d.pages + 1)] for d in documents}
    checks = [
        _completeness(summary, documents),
        _duplicates(summary, documents, pages),
        _readability(documents, pages),
        _image_quality(documents, pages),
        _metadata(archive, documents),
        *([_integrity(archive)] if integrity else []),
        _filing(documents),
        _preservation_format(documents),
        _transactions_complete(archive, documents),
        _arrangement(archive, documents),
    ]
    resolved = resolved_flags(archive)
    for check in checks:
        for item in check.flags:
            item.resolved = resolved.get(item.id)
    return Acceptance(summary.batch, checks)


def find_flag(archive: Archive, flag_id: str, batch: str | None = None, integrity: bool = True) -> Flag | None:
    """The batch's flag ``flag_id``, or None. The whole-archive ``verify`` (it re-hashes
    every file) runs only for an id the other checks do not have, and only with ``integrity``."""
    checks = check_batch(archive, batch, integrity=False).checks
    found = next((item for check in checks for item in check.flags if item.id == flag_id), None)
    if found is None and integrity:
        found = next((item for item in _integrity(archive).flags if item.id == flag_id), None)
    return found


def flag_known(archive: Archive, flag_id: str, batch: str | None = None) -> bool:
    """Whether ``flag_id`` is a flag of a saved acceptance certificate, or of the
    batch's checks now (those run only when no certificate has it)."""
    for certificate in sorted((archive.root / "reports").glob("*-acceptance.json")):
        if any(f["id"] == flag_id for check in read_json(certificate)["checks"] for f in check["flags"]):
            return True
    try:
        return find_flag(archive, flag_id, batch, integrity=False) is not None
    except NotFound:  # no batch report: no flags at all
        return False


def _page(archive: Archive, document: DocumentRecord, number: int) -> dict:
    page = read_json(document.package / "data" / "ocr" / f"{number:04d}.json")
    corrected = latest_page_text(archive, document.document, number)
    return page | {"text": corrected} if corrected is not None else page


def _completeness(summary: BatchSummary, documents: list[DocumentRecord]) -> Check:
    """Pages scanned vs pages declared, for every file of the batch (a file that
    duplicates an archived one is compared with that document)."""
    check = Check("completeness")
    by_id = {d.document: d for d in documents}
    declared = 0
    for outcome in summary.outcomes:
        document = by_id.get(outcome.document or "")
        if document is None or not str(outcome.manifest_pages or "").isdigit():
            continue
        declared += 1
        want, got = int(str(outcome.manifest_pages)), document.pages
        if want != got:
            kind = "missed pages (漏扫)" if got < want else "extra pages (多扫)"
            name = Path(outcome.source).name
            _flag(check, f"{kind}: manifest declares {want} pages for {name}, the scan has {got}", document, key=name)
    for name in summary.manifest_rows_without_file:
        _flag(check, f"the manifest lists {name}, which is not in the batch", key=name)
    for name in summary.files_without_manifest_row:
        _flag(check, f"{name} has no manifest row", key=name)
    for item in summary.quarantined + summary.failed:
        _flag(check, f"{Path(item['source']).name} was not archived: {item.get('message')}", key=item["source"])
    for source in summary.interrupted:
        _flag(check, f"{Path(source).name} was not done: the batch was stopped; run it again", key=source)
    new = {o.document for o in summary.outcomes if o.status == "archived"}
    pages = sum(d.pages for d in documents if d.document in new)
    earlier = len({d.document for d in documents} - new)
    check.evidence.append(f"{len(new)} documents, {pages} pages archived by this batch"
                          + (f" ({earlier} more already in the archive)" if earlier else "")
                          + f"; {declared} files with a declared page count")  # fmt: skip
    return check


def open_page_image(image_path: Path) -> Image.Image:
    """One of the archive's own page images, opened with Pillow.

    Pillow and the pixel limit (from archive.capture.pages, which loads pypdf and pdfium) are
    imported here, not at the top: every command imports this module, and its start-up would
    pay ~100 ms for them. The images were each held to that limit when they were taken in: no
    decompression-bomb warning for a large (A0) scan (Pillow warns past 89 MP)."""
    from PIL import Image

    from archive.capture.pages import MAX_PIXELS

    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    return Image.open(image_path)


def _difference_hash(image_path: Path) -> int:
    """64-bit difference hash: which of each pair of neighbouring cells is brighter."""
    import numpy as np  # here, not at the top: start-up of every command (see open_page_image)
    from PIL import Image

    with open_page_image(image_path) as image:
        image.draft("L", (64, 64))  # JPEG: decode at 1/8 size, this is a thumbnail's job
        cells = np.asarray(image.convert("L").resize((9, 8), Image.Resampling.BILINEAR), dtype=np.int16)
    bits = (cells[:, :-1] > cells[:, 1:]).flatten()
    return int(sum(1 << i for i, bit in enumerate(bits) if bit))


# Two pages whose images hash alike are one sheet only if their texts agree this closely (a
# sparse page hashes like any other sparse page: a one-line notice, a font sample, a photo).
SAME_SHEET_TEXT = 0.7
SAME_SHEET_GREY = 6.0  # mean grey-level difference of 32 x 32 thumbnails, for pages without text


def _same_sheet(a: tuple[DocumentRecord, dict], b: tuple[DocumentRecord, dict]) -> bool:
    """Whether two pages whose image hashes are near are the same sheet: their texts agree
    (OCR of one sheet twice differs a little); pages with no text compare finer thumbnails."""
    text_a, text_b = (re.sub(r"\s", "", page.get("text") or "") for _, page in (a, b))
    if text_a or text_b:
        matcher = difflib.SequenceMatcher(None, text_a, text_b, autojunk=False)
        return matcher.quick_ratio() >= SAME_SHEET_TEXT and matcher.ratio() >= SAME_SHEET_TEXT
    thumbs = [_thumbnail(document.package / "data" / page["master_image"]) for document, page in (a, b)]
    return float(abs(thumbs[0] - thumbs[1]).mean()) <= SAME_SHEET_GREY  # abs of an array: numpy's absolute


def _thumbnail(image_path: Path) -> np.ndarray:
    import numpy as np  # here, not at the top: start-up of every command (see open_page_image)
    from PIL import Image

    with open_page_image(image_path) as image:
        image.draft("L", (128, 128))
        return np.asarray(image.convert("L").resize((32, 32), Image.Resampling.BILINEAR), dtype=np.float32)


def _duplicates(summary: BatchSummary, documents: list[DocumentRecord], pages: dict[str, list[dict]]) -> Check:
    check = Check("duplicates")
    copies = [item for item in summary.duplicate_files if not item.get("rerun")]
    for item in copies:  # a re-run of the same file (after an interruption) is no duplicate
        _flag(check, f"{Path(item['source']).name} is the same file as {item['archived_as']}", key=item["source"])
    hashes = []
    pages_by_number = {d.document: {p["page"]: p for p in pages[d.document]} for d in documents}
    for document in documents:
        for page in pages[document.document]:
            if not page["blank"]:
                image = document.package / "data" / page["master_image"]
                hashes.append((_difference_hash(image), document, page["page"]))
    # Pages within NEAR_DUPLICATE_BITS of each other, directly or through others, are one
    # sheet: each page after the sheet's first gets one flag (12 copies: 11 flags, not 66 pairs).
    first = list(range(len(hashes)))  # union-find: index -> an earlier page of the same sheet

    def root(i: int) -> int:
        while first[i] != i:
            first[i] = first[first[i]]
            i = first[i]
        return i

    for i, (hash_a, doc_a, page_a) in enumerate(hashes):
        for j in range(i + 1, len(hashes)):
            hash_b, doc_b, page_b = hashes[j]
            if bin(hash_a ^ hash_b).count("1") <= NEAR_DUPLICATE_BITS and _same_sheet(
                (doc_a, pages_by_number[doc_a.document][page_a]), (doc_b, pages_by_number[doc_b.document][page_b])
            ):
                a, b = root(i), root(j)
                first[max(a, b)] = min(a, b)
    sheets: dict[int, list[int]] = {}
    for i in range(len(hashes)):
        sheets.setdefault(root(i), []).append(i)
    for origin, members in sheets.items():
        _, doc_a, page_a = hashes[origin]
        for i in members[1:]:
            _, doc_b, page_b = hashes[i]
            others = f"; {len(members)} pages look alike" if len(members) > 2 else ""
            _flag(check, f"looks like the same sheet as {doc_a.source} p.{page_a} (scanned twice?{others})",
                  doc_b, page_b, key=f"{doc_a.document}:{page_a}")  # fmt: skip
    reruns = len(summary.duplicate_files) - len(copies)
    check.evidence.append(f"{len(copies)} identical files; {reruns} files archived already from the same path "
                          f"(the batch run again); {len(hashes)} pages compared")  # fmt: skip
    return check


def _readability(documents: list[DocumentRecord], pages: dict[str, list[dict]]) -> Check:
    check = Check("readability")
    confidences = []
    for document in documents:
        for page in pages[document.document]:
            if page["blank"]:
                continue
            confidences.append(page["confidence"])
            if page.get("low_confidence"):
                _flag(check, f"OCR confidence {page['confidence']:.2f} is under the threshold", document, page["page"])
            if len(re.sub(r"\s", "", page["text"])) < MIN_TEXT_CHARS:
                _flag(check, "implausibly little text for a page that is not blank", document, page["page"])
    if confidences:
        check.evidence.append(f"{len(confidences)} text pages, confidence min {min(confidences):.2f}, "
                              f"mean {sum(confidences) / len(confidences):.2f}")  # fmt: skip
    return check


def _image_quality(documents: list[DocumentRecord], pages: dict[str, list[dict]]) -> Check:
    check = Check("image quality")
    dpis, skews = [], []
    for document in documents:
        by_page = {img["page"]: img for img in document.page_images}
        for page in pages[document.document]:
            image = by_page.get(page["page"], {})
            dpi = image.get("dpi") or page.get("dpi") or 0
            dpis.append(dpi)
            skews.append(abs(page.get("skew") or 0))
            if dpi and dpi < MIN_DPI:
                _flag(check, f"{dpi} dpi is under the {MIN_DPI} dpi minimum (DA/T 31)", document, page["page"])
            if abs(page.get("skew") or 0) > 10:
                _flag(check, f"skew {page['skew']}° is beyond what was straightened", document, page["page"])
            if document.doc_type in SEAL_BEARING and image.get("colour_mode") in ("1", "L") and not page["blank"]:
                _flag(check, "scanned in black and white, but this kind of document bears a red seal: rescan in colour",
                      document, page["page"])  # fmt: skip
    if dpis:
        check.evidence.append(f"resolution {min(dpis)}-{max(dpis)} dpi; measured skew up to {max(skews):.1f}°, "
                              f"straightened to under {MAX_SKEW}° in the access copies")  # fmt: skip
    return check


def _metadata(archive: Archive, documents: list[DocumentRecord]) -> Check:
    check = Check("metadata")
    for document in documents:
        meta = document.metadata
        required = REQUIRED + (REQUIRED_FOR_AWARD if document.doc_type == "award_notice" else ())
        for name in required:
            if meta.get(name) in (None, ""):
                _flag(check, f"required field {name} is missing", document, key=name)
        if meta.get("transaction_type") and meta["transaction_type"] not in TRANSACTION_TYPES:
            _flag(check, f"transaction type {meta['transaction_type']!r} is not in the catalogue", document)
        if document.doc_type not in DOC_TYPES:
            _flag(check, f"document type {document.doc_type!r} is unknown", document)
        if meta.get("amount") is not None and float(meta["amount"]) <= 0:
            _flag(check, f"amount {meta['amount']} is not positive", document)
        if meta.get("award_date") and not re.fullmatch(r"(19|20)\d\d-\d\d-\d\d", str(meta["award_date"])):
            _flag(check, f"award date {meta['award_date']!r} is not a date", document)
        for qc in document.qc_flags:
            if qc.startswith("manifest_disagrees:"):
                name = qc.split(":", 1)[1]
                seen = document.extracted.get(name)
                _flag(check, f"manifest {name} {meta.get(name)!r} disagrees with the page ({seen!r})", document, key=qc)
            elif qc == "amount_figures_vs_capitals":
                capitals = document.extracted.get("amount_capitals")
                _flag(check, f"amount in figures and in capitals ({capitals}) disagree", document, key=qc)
        # The bid-opening record's price of the winner (as an archivist corrected it) against the award amount.
        bids = [Bid(b["name"], b["price"]) for b in bidders_as_corrected(archive, document)]
        if winner_price_differs(bids, meta.get("winner"), meta.get("amount")):
            price = next(b.price for b in bids if same_name(b.name, meta["winner"]) and b.price is not None)
            _flag(check, f"the winner's bid {price} in the bid-opening record is not the award amount "
                         f"{meta['amount']}", document, key="winner_bid_vs_amount")  # fmt: skip
    check.evidence.append(f"{len(documents)} documents checked for required fields, domains and agreement")
    return check


def _integrity(archive: Archive) -> Check:
    """The whole archive is verified: a batch is only as sound as the archive it joins."""
    check = Check("integrity")
    report = verify_archive(archive)
    for problem in report.problems:
        _flag(check, f"{problem.kind}: {problem.path} {problem.detail}", key=f"{problem.kind}:{problem.path}")
    check.evidence.append(f"verify: {report.documents} documents, {report.files} files re-hashed; event log chain "
                          f"checked; {len(report.problems)} problem(s)")  # fmt: skip
    return check


def _filing(documents: list[DocumentRecord]) -> Check:
    check = Check("filing")
    for document in documents:
        if document.package.parent.name == "unfiled":
            _flag(check, "not filed under a transaction (no project code)", document)
    check.evidence.append(f"{sum(d.package.parent.name != 'unfiled' for d in documents)}/{len(documents)} "
                          "documents filed under a transaction")  # fmt: skip
    return check


def _preservation_format(documents: list[DocumentRecord]) -> Check:
    """Each access copy is PDF/A (DA/T 70's usability: a format fit for long-term
    keeping), as validated when it was written (``document.json`` ``access_pdf``)."""
    check = Check("preservation format")
    flavours = [d.access_pdf.get("pdfa", "unrecorded") for d in documents]
    for document, flavour in zip(documents, flavours):
        if flavour is None:
            problems = document.access_pdf.get("problems") or ["no reason recorded"]
            _flag(check, f"access.pdf is not PDF/A: {problems[0]}", document, key="access_pdf_not_pdfa")
    check.evidence.append(f"{sum(f not in (None, 'unrecorded') for f in flavours)}/{len(documents)} access copies "
                          "validated as PDF/A-2b when written")  # fmt: skip
    if unrecorded := flavours.count("unrecorded"):
        check.evidence.append(f"{unrecorded} access copies were made before PDF/A (not checked)")
    return check


def _transactions_complete(archive: Archive, documents: list[DocumentRecord]) -> Check:
    """Each transaction the batch touched against its type's required documents (归档范围):
    a flag names the project code and the document types it lacks."""
    check = Check("transaction completeness")
    folders = sorted(
        {d.package.parent for d in documents if d.package and d.package.parent.parent.name == "transactions"}
    )
    complete = 0
    for folder in folders:
        members = [document_record(bag.parent) for bag in sorted(folder.glob("*/bagit.txt"))]
        corrected = [latest_metadata(archive, d.document) for d in members]
        present = {c.get("doc_type") or d.doc_type for d, c in zip(members, corrected)}
        titles = [archival_description(d, c)["title"] for d, c in zip(members, corrected)]
        meta = members[0].metadata if members else {}
        failed = is_failed(titles)
        missing = [t for t in required_documents(meta.get("transaction_type"), failed) if t not in present]
        if not missing:
            complete += 1
            continue
        kind = f"{meta.get('transaction_type') or 'type unknown'}{', 流标/废标' if failed else ''}"
        lacks = ", ".join(f"{type_name(t)} ({t})" for t in missing)
        _flag(check, f"transaction {meta.get('project_code')} ({kind}) lacks required documents: {lacks}",
              key=f"{meta.get('project_code')}:{','.join(missing)}")  # fmt: skip
    check.evidence.append(f"{len(folders)} transactions checked against [required_documents]; {complete} complete")
    return check


def _arrangement(archive: Archive, documents: list[DocumentRecord]) -> Check:
    """件号 without gaps in each group, 档号 unique across the archive, the batch's filed
    documents arranged, and documents a correction would now put in another group."""
    check = Check("arrangement")
    by_code: dict[str, list[str]] = {}
    groups: dict[str, list[int]] = {}
    for package in archive.documents():
        arranged = Arrangement.of(DocumentRecord.load(package))
        if arranged is not None:
            by_code.setdefault(arranged.archival_code, []).append(package.name)
            groups.setdefault(arranged.group, []).append(arranged.item)
    for code, holders in by_code.items():
        if len(holders) > 1:
            _flag(check, f"档号 {code} is given to {len(holders)} documents: {', '.join(holders)}", key=code)
    numbered = registry(archive)
    for group, items in sorted(groups.items()):
        top = max(max(items), len(numbered.get(group, [])))  # a number handed out counts, arranged or not
        if gaps := sorted(set(range(1, top + 1)) - set(items)):
            _flag(check, f"group {group}: item numbers {', '.join(map(str, gaps))} are missing (件号 gap)", key=group)
    for document in documents:
        if document.package is None or document.package.parent.parent.name != "transactions":
            continue
        arranged = Arrangement.of(document)
        if arranged is None:
            _flag(check, "filed but not arranged: `trade-archive reindex` arranges it", document, key="unarranged")
        elif (now := corrected_group(archive, document, arranged)) != (arranged.year, arranged.retention):
            _flag(check, f"{arranged.archival_code}: corrections put it in {now[0]} {now[1]}; it keeps its number "
                  "(decide, then resolve this flag)", document, key=f"group:{now}")  # fmt: skip
    check.evidence.append(f"{sum(map(len, by_code.values()))} documents arranged in {len(groups)} groups; "
                          "item numbers continuous and 档号 unique unless flagged")  # fmt: skip
    return check
