"""The acceptance certificate of a batch: JSON for machines, markdown and HTML
for people, with a thumbnail of each flagged page beside its text."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

from archive.acceptance.checks import Acceptance, Flag, open_page_image
from archive.records.corrections import latest_page_text
from archive.storage.fixity import atomic_write_bytes, atomic_write_json
from archive.storage.store import Archive, read_json

THUMB_WIDTH = 360


def page_png(archive: Archive, document: str, page: int, width: int | None = THUMB_WIDTH) -> bytes | None:
    """The page's master image as PNG, stood upright as the OCR read it (the master
    is kept as scanned), scaled to ``width`` (full size when None)."""
    package = archive.find_document(document)
    if package is None:
        return None
    # here, not at the top: it loads OpenCV and numpy, and every command imports this module (start-up)
    from archive.capture.imaging import turn_upright

    ocr = read_json(package / "data" / "ocr" / f"{page:04d}.json")
    with open_page_image(package / "data" / ocr["master_image"]) as scanned:
        # ``orientation`` is how far the scan was turned clockwise: the counter-clockwise turn that undoes it
        image = turn_upright(scanned.convert("RGB"), (360 - int(ocr.get("orientation") or 0)) % 360,
                             float(ocr.get("skew") or 0.0))  # fmt: skip
        if width:
            image.thumbnail((width, width * 2))
        buffer = io.BytesIO()
        # thumbnails go into reports (small); a full-size page is for a screen (fast: 2-5x quicker, 10% larger)
        image.save(buffer, format="PNG", **({"optimize": True} if width else {"compress_level": 1}))
    return buffer.getvalue()


def page_text(archive: Archive, document: str, page: int) -> str:
    corrected = latest_page_text(archive, document, page)
    if corrected is not None:
        return corrected
    package = archive.find_document(document)
    return read_json(package / "data" / "ocr" / f"{page:04d}.json")["text"] if package else ""


def page_lines(archive: Archive, document: str, page: int) -> list[tuple[str, float]]:
    """The original OCR's lines of a page, each with its confidence (0-1)."""
    package = archive.find_document(document)
    lines = read_json(package / "data" / "ocr" / f"{page:04d}.json").get("lines", []) if package else []
    return [(line["text"], float(line["confidence"])) for line in lines]


def write_certificate(archive: Archive, acceptance: Acceptance, override: str | None = None) -> dict[str, Path]:
    folder = archive.root / "reports"
    base = folder / f"{acceptance.batch}-acceptance"
    record = acceptance.to_json() | {"override": override}
    atomic_write_json(base.with_suffix(".json"), record)
    thumbs = base.parent / f"{base.name}-pages"
    md = [f"# Acceptance of batch {acceptance.batch}: {record['outcome']}", ""]
    if override:
        md += [f"**Accepted with open flags by override:** {override}", ""]
    body = [f"<h1>Acceptance of batch {html.escape(acceptance.batch)}: {record['outcome']}</h1>"]
    for check in acceptance.checks:
        outcome = "PASS" if check.passed else "FAIL"
        md += [f"## {check.name}: {outcome}", ""] + [f"- {e}" for e in check.evidence]
        body += [f"<h2>{html.escape(check.name)}: <span class='{outcome}'>{outcome}</span></h2>"]
        body += [f"<p>{html.escape(e)}</p>" for e in check.evidence]
        for flag in check.flags:
            md += _flag_markdown(archive, flag, thumbs)
            body += _flag_html(archive, flag)
        md.append("")
    atomic_write_bytes(base.with_suffix(".md"), "\n".join(md).encode("utf-8"))
    page = ("<!doctype html><meta charset='utf-8'><title>Acceptance</title><style>body{font-family:sans-serif}"
            ".flag{display:flex;gap:1em;border-top:1px solid #ccc;padding:.5em}.PASS{color:green}.FAIL{color:#b00}"
            "pre{white-space:pre-wrap;max-width:50em}</style>" + "\n".join(body))  # fmt: skip
    atomic_write_bytes(base.with_suffix(".html"), page.encode("utf-8"))
    return {"json": base.with_suffix(".json"), "md": base.with_suffix(".md"), "html": base.with_suffix(".html")}


def _label(flag: Flag) -> str:
    where = f" — {flag.source} p.{flag.page}" if flag.page else (f" — {flag.source}" if flag.source else "")
    state = f" (resolved: {flag.resolved['note']})" if flag.resolved else ""
    return f"[{flag.id}] {flag.message}{where}{state}"


def _flag_markdown(archive: Archive, flag: Flag, thumbs: Path) -> list[str]:
    lines = [f"- {_label(flag)}"]
    if flag.document and flag.page and (png := page_png(archive, flag.document, flag.page)):
        thumbs.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(thumbs / f"{flag.id}.png", png)
        text = page_text(archive, flag.document, flag.page).replace("\n", " / ")[:200]
        lines += [f"  ![{flag.id}]({thumbs.name}/{flag.id}.png)", f"  > {text}"]
    return lines


def _flag_html(archive: Archive, flag: Flag) -> list[str]:
    image = ""
    text = ""
    if flag.document and flag.page and (png := page_png(archive, flag.document, flag.page)):
        image = f"<img width='{THUMB_WIDTH}' src='data:image/png;base64,{base64.b64encode(png).decode()}'>"
        text = f"<pre>{html.escape(page_text(archive, flag.document, flag.page))}</pre>"
    return [f"<div class='flag'>{image}<div><p>{html.escape(_label(flag))}</p>{text}</div></div>"]
