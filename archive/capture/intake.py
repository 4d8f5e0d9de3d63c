"""Decide whether a source file can be archived, before any work is spent on it.

Every rejection is an ``InputRejected`` with a short reason code and a message
a person can act on; the caller quarantines the file and the batch goes on.

Hostile or broken input is expected here: whatever pypdf raises while opening a
file (a damaged cross-reference table, a cyclic or 1,000-level-deep page tree,
RecursionError, pypdf's own resource limits) becomes ``unreadable_pdf``; nothing
else escapes. Active content (JavaScript, embedded files, launch actions, XFA
forms) is not a reason to reject: the original is kept byte for byte and the
access PDF written from the page images never carries it, so it is only reported
(``SourcePdf.qc_flags``).
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from pathlib import Path

from pypdf import PasswordType, PdfReader
from pypdf.generic import ArrayObject, DictionaryObject, IndirectObject, StreamObject

from archive.errors import InputRejected

PDF_MAGIC = b"%PDF-"
# Objects looked at when scanning a PDF for JavaScript / embedded files. A real
# scan has a few per page; past this the scan stops (the flags are best effort).
ACTIVE_CONTENT_SCAN_LIMIT = 200_000


@dataclass(frozen=True)
class SourcePdf:
    path: Path
    page_count: int
    pdf_version: str
    active_content: frozenset[str] = frozenset()  # of ACTIVE_CONTENT

    @property
    def qc_flags(self) -> list[str]:
        """What QC should know about the file itself (recorded in document.json)."""
        return [f"pdf_has_{kind}" for kind in ACTIVE_CONTENT if kind in self.active_content]


# What a PDF can carry that acts rather than shows, as pdfid (a common PDF triage tool)
# counts it: scripts, files inside, actions that start a program, Flash or other rich
# media, and XFA forms (an XML form application inside the PDF). Plain links (/URI)
# are common in born-digital notices and harmless in an archive: not flagged.
ACTIVE_CONTENT = ("javascript", "embedded_files", "launch_action", "rich_media", "xfa")


def open_source_pdf(path: Path) -> tuple[SourcePdf, PdfReader]:
    """Open ``path`` as a PDF or raise ``InputRejected`` saying why it cannot be archived."""
    size = path.stat().st_size
    if size == 0:
        raise InputRejected("empty_file", f"{path.name} is empty (0 bytes); rescan or recopy it.")
    with open(path, "rb") as handle:
        head = handle.read(1024)
    if PDF_MAGIC not in head and not _pdf_trailer(path, size):  # a PDF may lack its header line; PDF readers cope
        kind = _sniff(head)
        raise InputRejected(
            "not_pdf",
            f"{path.name} is not a PDF (it looks like {kind}); convert it to PDF or remove it from the batch.",
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # A file handle, not a path: pypdf then reads objects from disk as
            # needed instead of loading the whole scan (hundreds of MB) into memory.
            reader = PdfReader(open(path, "rb"), strict=False)  # noqa: SIM115 - closed by close_source
            if reader.is_encrypted:
                close_source(reader)
                raise _encrypted(path, reader)
            count = len(reader.pages)
            version = reader.pdf_header.lstrip("%") if reader.pdf_header.startswith(PDF_MAGIC.decode()) else "unknown"
    except InputRejected:
        raise
    except Exception as exc:  # noqa: BLE001 - sorted below: what the reader could not do, or damage
        raise _unreadable(path, exc) from exc
    if count == 0:
        raise InputRejected("no_pages", f"{path.name} has no pages; rescan it.")
    found = active_content(reader)
    if "brotli" in found:
        close_source(reader)
        raise _brotli(path)
    source = SourcePdf(path=path, page_count=count, pdf_version=version, active_content=found - {"brotli"})
    return source, reader


def _unreadable(path: Path, exc: BaseException) -> InputRejected:
    if "brotli" in str(exc).lower():
        return _brotli(path)
    if isinstance(exc, RecursionError):
        return InputRejected(
            "unreadable_pdf",
            f"{path.name} cannot be read: its object tree is nested too deeply or refers to itself "
            f"(RecursionError); rescan or re-export it.",
        )
    return InputRejected(  # any pypdf failure on a damaged or hostile file (MemoryError included)
        "unreadable_pdf",
        f"{path.name} is damaged, truncated or malformed and cannot be read ({type(exc).__name__}: {brief(exc)}); "
        "rescan or recopy it.",
    )


def _brotli(path: Path) -> InputRejected:
    return InputRejected(
        "unsupported_compression",
        f"{path.name} is compressed with the Brotli filter (/BrotliDecode, a recent extension of PDF) that the "
        "PDF reader used here cannot decode, so its pages cannot be shown faithfully; it is not damaged. Save it "
        "again with standard compression (most programs do: Save As, or Print to PDF) and ingest the copy.",
    )


def _pdf_trailer(path: Path, size: int) -> bool:
    """Whether the file ends as a PDF does (``startxref`` / ``%%EOF``): one without its
    ``%PDF-`` header line is still a PDF to pdfium, poppler and pypdf."""
    with open(path, "rb") as handle:
        handle.seek(max(0, size - 2048))
        tail = handle.read()
    return b"startxref" in tail or b"%%EOF" in tail


def _encrypted(path: Path, reader: PdfReader) -> InputRejected:
    """Every encrypted PDF is quarantined (an archive must hold files that open
    without a key, and PDF/A forbids encryption), including one that has only
    an owner password: it opens without a password, but its content is still
    encrypted and printing/copying may be locked. The message says which."""
    try:
        opens_without_password = reader.decrypt("") != PasswordType.NOT_DECRYPTED
    except Exception:  # noqa: BLE001 - unsupported or broken encryption: treat as password-protected
        opens_without_password = False
    if opens_without_password:
        return InputRejected(
            "encrypted",
            f"{path.name} is encrypted with an owner password only (it opens without a password, but it is "
            "encrypted and may block printing or copying); archives must hold unencrypted files. "
            "Remove the protection (qpdf --decrypt in.pdf out.pdf needs no password here) and ingest the copy.",
        )
    return InputRejected(
        "encrypted",
        f"{path.name} is encrypted and needs a password to open; archives must hold unencrypted files. "
        "Ask the sender for an unprotected copy (or remove the password with qpdf --decrypt).",
    )


def active_content(reader: PdfReader, limit: int = ACTIVE_CONTENT_SCAN_LIMIT) -> frozenset[str]:
    """The kinds of ACTIVE_CONTENT in the file, found by walking the object graph from
    the trailer without recursion: each indirect object is visited once (cycles
    end there), direct nesting is walked with an explicit stack, stream data is
    never decoded nor kept once its dictionary is read (a scan's images: 100s of
    MB), and at most ``limit`` objects are looked at. Unreadable objects are
    skipped: pages that need them fail later with their own reason."""
    found: set[str] = set()
    seen: set[tuple[int, int]] = set()
    stack: list[object] = [reader.trailer]
    visited = 0
    while stack and visited < limit and len(found) < len(ACTIVE_CONTENT):
        node = stack.pop()
        visited += 1
        try:
            if isinstance(node, IndirectObject):
                key = (node.idnum, node.generation)
                if key in seen:
                    continue
                seen.add(key)
                node = node.get_object()
                if isinstance(node, StreamObject):  # pypdf read its data with it
                    reader.resolved_objects.pop((key[1], key[0]), None)
            if isinstance(node, (DictionaryObject, StreamObject)):
                found.update(_active_kinds(node))
                stack.extend(value for name, value in node.items() if name != "/Parent" and _container(value))
            elif isinstance(node, ArrayObject):
                stack.extend(value for value in node if _container(value))
        except Exception:  # noqa: BLE001 - a broken object: skip it
            continue
    return frozenset(found)


def _active_kinds(node: DictionaryObject) -> set[str]:
    kinds = set()
    keys = set(node.keys())
    action = node.get("/S")  # in an action dictionary, what it does
    if keys & {"/JS", "/JavaScript"} or action == "/JavaScript":
        kinds.add("javascript")
    if action == "/Launch":
        kinds.add("launch_action")
    if keys & {"/RichMedia", "/RichMediaContent"} or node.get("/Subtype") == "/RichMedia":
        kinds.add("rich_media")
    if keys & {"/EmbeddedFiles", "/EF"} or node.get("/Type") == "/EmbeddedFile":
        kinds.add("embedded_files")
    if node.get("/Subtype") == "/FileAttachment":
        kinds.add("embedded_files")
    if "/XFA" in keys:  # in the AcroForm dictionary
        kinds.add("xfa")
    if "/BrotliDecode" in str(node.get("/Filter", "")):  # not active content: a filter nothing here decodes
        kinds.add("brotli")
    return kinds


def _container(value: object) -> bool:
    return isinstance(value, (IndirectObject, DictionaryObject, ArrayObject))


_INSTALL_HINT = re.compile(r"[^.;]*\bpip install\b[^.;]*[.;]?", re.IGNORECASE)


def brief(exc: BaseException, limit: int = 200) -> str:
    """A library's message, short, without its advice to install packages (not the archivist's job)."""
    text = _INSTALL_HINT.sub("", str(exc)).strip(" :;")
    return text if len(text) <= limit else text[:limit] + "…"


def _sniff(head: bytes) -> str:
    signatures = {
        b"\xff\xd8\xff": "a JPEG image",
        b"\x89PNG": "a PNG image",
        b"II*\x00": "a TIFF image",
        b"MM\x00*": "a TIFF image",
        b"PK\x03\x04": "a ZIP / Office document",
        b"\xd0\xcf\x11\xe0": "an old Office document",
    }
    for magic, kind in signatures.items():
        if head.startswith(magic):
            return kind
    return "something else"


def close_source(reader: PdfReader) -> None:
    """Close the file a reader from ``open_source_pdf`` reads from."""
    stream = getattr(reader, "stream", None)
    if stream is not None and not stream.closed:
        stream.close()
