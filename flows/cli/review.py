"""Acceptance and review: accept a batch; list, look at, correct and resolve its flags."""

from pathlib import Path

import click

import index
from archive.acceptance.review import (
    accept_batch,
    fix_bidders,
    fix_metadata,
    fix_text,
    open_flags,
    render_flags,
    resolve,
    show_flag,
)
from archive.errors import ExitCode
from flows.cli.base import archive_option, cli, open_archive

batch_option = click.option("--batch", help="Batch (default: the latest).")
note_option = click.option("--note", required=True, help="Why (kept in the event log).")


@cli.command(example='trade-archive accept 20231231T020000Z --override "page counts wrong in the manifest"')
@click.argument("batch", required=False)
@archive_option
@click.option("--override", metavar="REASON", help="Accept despite open flags; the reason goes in the event log.")
def accept(batch: str | None, archive_dir: str | None, override: str | None) -> ExitCode:
    """Run the acceptance checks on a batch (the latest when none is named) and write its
    certificate (reports/<batch>-acceptance.json, .md, and .html with the flagged pages).
    Exits 8 when flags are open, unless --override gives a reason."""
    verdict = accept_batch(open_archive(archive_dir), batch, override)
    click.echo(verdict.render())
    return ExitCode.ok if verdict.accepted else ExitCode.not_accepted


@cli.group(example=["trade-archive review list", "trade-archive review show 3f2a9c0b1d --png /tmp/page.png",
                    "trade-archive review serve"])  # fmt: skip
def review() -> None:
    """Work through QC flags: list them, look at a page, correct text or metadata (new
    versions; the original OCR stays), resolve them; `review serve`: all that in a browser."""


@review.command("list", example="trade-archive review list --batch 20231201T080000123456Z")
@batch_option
@archive_option
def review_list(batch: str | None, archive_dir: str | None) -> None:
    """List the open flags of a batch."""
    click.echo(render_flags(*open_flags(open_archive(archive_dir), batch)))


@review.command("show", example="trade-archive review show 3f2a9c0b1d --png /tmp/page.png")
@click.argument("flag")
@batch_option
@click.option("--png", "png_path", type=click.Path(dir_okay=False), help="Where to write the page image.")
@archive_option
def review_show(flag: str, batch: str | None, png_path: str | None, archive_dir: str | None) -> None:
    """Render a flagged page to PNG and print its text and metadata."""
    archive = open_archive(archive_dir)
    view = show_flag(archive, flag, batch)
    image = Path(png_path or f"{view.flag.id}.png") if view.text is not None else None
    if image is not None:
        image.write_bytes(view.png(archive))
    click.echo(view.render(image))


@review.command(
    "fix-text",
    example='trade-archive review fix-text 737f17a0e625e281 1 --file fixed.txt --note "seal covered the date"',
)
@click.argument("document")
@click.argument("page", type=int)
@click.option("--file", "text_file", type=click.File(encoding="utf-8"), required=True, help="The corrected text.")
@note_option
@archive_option
def review_fix_text(document: str, page: int, text_file, note: str, archive_dir: str | None) -> None:  # noqa: ANN001
    """Store corrected text for a page as a new version and reindex it."""
    path = fix_text(open_archive(archive_dir), document, page, text_file.read(), note, reindex=index.refresh)
    click.echo(f"saved {path}; the original OCR is unchanged")


@review.command(
    "fix-metadata", example='trade-archive review fix-metadata 737f17a0e625e281 amount=123.45万 --note "per contract"'
)
@click.argument("document")
@click.argument("fields", nargs=-1, required=True, metavar="FIELD=VALUE...")
@note_option
@archive_option
def review_fix_metadata(document: str, fields: tuple[str, ...], note: str, archive_dir: str | None) -> None:
    """Correct metadata fields of a document (a new version) and reindex it. Fields:
    project_code, project_name, transaction_type, purchaser, agency, winner, amount,
    award_date, doc_type, access; checked as a manifest's are. FIELD= clears a field."""
    changed = fix_metadata(open_archive(archive_dir), document, fields, note, reindex=index.refresh)
    others = len(set(changed) - {document})  # a transaction's record is merged from all its documents
    click.echo(f"corrected {document}" + (f"; reindexed {others} more of its transaction" if others else ""))


@review.command(
    "fix-bids",
    example='trade-archive review fix-bids 737f17a0e625e281 鑫源环境科技有限公司=35701155.08 --note "per the paper"',
)
@click.argument("document")
@click.argument("prices", nargs=-1, required=True, metavar="NAME=PRICE...")
@note_option
@archive_option
def review_fix_bids(document: str, prices: tuple[str, ...], note: str, archive_dir: str | None) -> None:
    """Correct the bidders a bid-opening record's table gave (a new version) and reindex its
    transaction. NAME=PRICE sets a price (123.45万 and capitals are read too) or adds a bidder
    the table missed; NAME= takes off a row misread as a bidder."""
    changed = fix_bidders(open_archive(archive_dir), document, prices, note, reindex=index.refresh)
    click.echo(f"corrected the bidders of {document}; reindexed {len(changed)} document(s) of its transaction")


@review.command("resolve", example='trade-archive review resolve 3f2a9c0b1d --note "checked against the paper"')
@click.argument("flag")
@click.option("--note", required=True, help="What was checked or done.")
@click.option("--batch", help="The flag's batch, where it is not the latest (as for `review list`).")
@archive_option
def review_resolve(flag: str, note: str, batch: str | None, archive_dir: str | None) -> None:
    """Close a flag, with a note (kept in the archive and the event log)."""
    resolve(open_archive(archive_dir), flag, note, batch)
    click.echo(f"resolved {flag}")


@review.command("serve", example="trade-archive review serve --port 0")
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True, help="Port (0: any free one).")
@batch_option
@archive_option
def review_serve(port: int, batch: str | None, archive_dir: str | None) -> None:
    """The review page in a browser: each flagged page beside its text and metadata, to
    correct and resolve there. Only on 127.0.0.1, only at the address it prints (with a
    random token); Ctrl-C stops it."""
    from flows.web import serve  # starlette and its server: loaded only for this command

    serve(open_archive(archive_dir), batch, port, lambda url: click.echo(f"open {url}  (Ctrl-C stops)"))
