"""Acceptance and review: accept a batch; list, look at, correct and resolve its flags."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from archive.errors import ExitCode
from flows.cli.base import archive_option, cli, open_archive

batch_option = click.option("--batch", help="Batch (default: the latest).")
note_option = click.option("--note", required=True, help="Why (kept in the event log).")


@cli.command()
@click.argument("batch", required=False)
@archive_option
@click.option("--override", metavar="REASON", help="Accept despite open flags; the reason goes in the event log.")
def accept(batch: str | None, archive_dir: str | None, override: str | None) -> None:
    """Run the acceptance checks on a batch (the latest when none is named) and
    write its certificate: reports/<batch>-acceptance.json, .md and .html
    (flagged pages shown as thumbnails beside their text). Exits 8 when flags
    are open, unless --override gives a reason.

    \b
    Examples:
      trade-archive accept --archive /srv/archive
      trade-archive accept 20231231T020000Z --override "manifest page counts are wrong; confirmed on paper"
    """
    from archive.acceptance.review import accept_batch

    verdict = accept_batch(open_archive(archive_dir), batch, override)
    for check in verdict.acceptance.checks:
        click.echo(f"{'PASS' if check.passed else 'FAIL'}  {check.name}: {'; '.join(check.evidence)}")
        for item in check.open_flags:
            where = f" ({item.source} p.{item.page})" if item.page else (f" ({item.source})" if item.source else "")
            click.echo(f"      [{item.id}] {item.message}{where}")
    click.echo(f"batch {verdict.acceptance.batch}: {verdict.word}; {len(verdict.open_flags)} open flag(s); "
               f"certificate {verdict.certificate['html']}")  # fmt: skip
    if not verdict.accepted:
        sys.exit(int(ExitCode.not_accepted))


@cli.group()
def review() -> None:
    """Work through QC flags: list them, look at a page, correct text or
    metadata (kept as new versions; the original OCR stays), resolve flags.

    \b
    Example:
      trade-archive review list
      trade-archive review show 3f2a9c0b1d --png /tmp/page.png
      trade-archive review fix-text 737f17a0e625e281 1 --file corrected.txt --note "seal covered the date"
      trade-archive review resolve 3f2a9c0b1d --note "checked against the paper"
      trade-archive review serve     # the same in the browser
    """


@review.command("list")
@batch_option
@archive_option
def review_list(batch: str | None, archive_dir: str | None) -> None:
    """List the open flags of a batch.

    \b
    Example:
      trade-archive review list --batch 20231201T080000123456Z --archive /srv/archive
    """
    from archive.acceptance.review import open_flags

    batch, flags = open_flags(open_archive(archive_dir), batch)
    for item in flags:
        where = f"{item.source} p.{item.page}" if item.page else (item.source or "")
        click.echo(f"[{item.id}] {item.check}: {item.message}  {where}")
    click.echo(f"{len(flags)} open flag(s) in batch {batch}")


@review.command("show")
@click.argument("flag")
@batch_option
@click.option("--png", "png_path", type=click.Path(dir_okay=False), help="Where to write the page image.")
@archive_option
def review_show(flag: str, batch: str | None, png_path: str | None, archive_dir: str | None) -> None:
    """Render a flagged page to PNG and print its text and metadata.

    \b
    Example:
      trade-archive review show 3f2a9c0b1d --png /tmp/page.png --archive /srv/archive
    """
    from archive.acceptance.review import show_flag

    archive = open_archive(archive_dir)
    view = show_flag(archive, flag, batch)
    click.echo(f"[{view.flag.id}] {view.flag.check}: {view.flag.message}")
    if view.text is not None:
        target = Path(png_path or f"{view.flag.id}.png")
        target.write_bytes(view.png(archive))
        click.echo(f"page image: {target}")
        click.echo("--- text ---\n" + view.text)
    if view.document is not None:
        metadata = view.document.metadata | {"doc_type": view.document.doc_type}
        click.echo("--- metadata ---\n" + json.dumps(metadata, ensure_ascii=False, indent=2))


@review.command("fix-text")
@click.argument("document")
@click.argument("page", type=int)
@click.option("--file", "text_file", type=click.File(encoding="utf-8"), required=True, help="The corrected text.")
@note_option
@archive_option
def review_fix_text(document: str, page: int, text_file, note: str, archive_dir: str | None) -> None:  # noqa: ANN001
    """Store corrected text for a page as a new version and reindex it.

    \b
    Example:
      trade-archive review fix-text 737f17a0e625e281 1 --file corrected.txt --note "seal covered the date"
    """
    import index
    from archive.acceptance.review import fix_text

    path = fix_text(open_archive(archive_dir), document, page, text_file.read(), note, reindex=index.refresh)
    click.echo(f"saved {path}; the original OCR is unchanged")


@review.command("fix-metadata")
@click.argument("document")
@click.argument("fields", nargs=-1, required=True, metavar="FIELD=VALUE...")
@note_option
@archive_option
def review_fix_metadata(document: str, fields: tuple[str, ...], note: str, archive_dir: str | None) -> None:
    """Correct metadata fields of a document (a new version) and reindex it.

    Fields: project_code, project_name, transaction_type, purchaser, agency, winner,
    amount, award_date, doc_type, access. Values are checked as a manifest's are
    (amounts in yuan or 万元, dates in any usual form); FIELD= clears a field.

    \b
    Example:
      trade-archive review fix-metadata 737f17a0e625e281 amount=123.45万 award_date=2023年5月12日 --note "per contract"
    """
    import index
    from archive.acceptance.review import fix_metadata

    changed = fix_metadata(open_archive(archive_dir), document, fields, note, reindex=index.refresh)
    others = len(set(changed) - {document})  # a transaction's record is merged from all its documents
    click.echo(f"corrected {document}" + (f"; reindexed {others} more of its transaction" if others else ""))


@review.command("resolve")
@click.argument("flag")
@click.option("--note", required=True, help="What was checked or done.")
@click.option("--batch", help="The flag's batch, where it is not the latest (as for `review list`).")
@archive_option
def review_resolve(flag: str, note: str, batch: str | None, archive_dir: str | None) -> None:
    """Close a flag, with a note (kept in the archive and the event log).

    \b
    Example:
      trade-archive review resolve 3f2a9c0b1d --note "checked against the paper" --archive /srv/archive
    """
    from archive.acceptance.review import resolve

    resolve(open_archive(archive_dir), flag, note, batch)
    click.echo(f"resolved {flag}")


@review.command("serve")
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True, help="Port (0: any free one).")
@batch_option
@archive_option
def review_serve(port: int, batch: str | None, archive_dir: str | None) -> None:
    """The review page in the browser: the open flags, each flagged page beside its
    text and metadata, to correct and resolve there (the same library calls as the
    commands above). It listens on 127.0.0.1 only and answers only the address it
    prints, which carries a random token; Ctrl-C stops it.

    \b
    Example:
      trade-archive review serve --archive /srv/archive
      trade-archive review serve --port 0 --batch 20231201T080000123456Z
    """
    from flows.web import serve

    serve(open_archive(archive_dir), batch, port, lambda url: click.echo(f"open {url}  (Ctrl-C stops)"))
