"""Search the archive from the terminal (staff). Also installed as ``trade-search``.

python search_cli.py 中标通知书 --archive /srv/archive
"""

from __future__ import annotations

import json
import re
import sys
import time

import click

from archive.errors import QueryError, TradeArchiveError
from archive.records.metadata import DOC_TYPES
from archive.storage.audit import record_use, user_levels
from archive.storage.store import ENV_HOME, Archive, resolve_root
from index import Filters, backend_name, search_page
from index.query import check_date, check_doc_type, highlight_terms, is_mark


def _date(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    try:
        return check_date(value, param.opts[0]) if value else None
    except QueryError as error:  # a bad option value is a usage error (exit 2)
        raise click.BadParameter(str(error)) from None


def _doc_type(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    try:
        return check_doc_type(value) if value else None
    except QueryError as error:
        raise click.BadParameter(str(error)) from None


# -word in the query excludes it: click must pass unknown "options" on as query words
# (and -h is not help here: -huawei would read as -h -u -a ...)
@click.command(context_settings={"help_option_names": ["--help"], "ignore_unknown_options": True})
@click.argument("query", nargs=-1, required=True)
@click.option(
    "--archive",
    "archive_dir",
    type=click.Path(file_okay=False),
    default=None,
    help=f"Archive folder, e.g. --archive /srv/archive (default: ${ENV_HOME}, else ./archive-data).",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of hits, e.g. 中标 --json > hits.json.")
@click.option("--limit", type=click.IntRange(1, 10_000), default=20, show_default=True,
              help="Pages (hits) per result page, e.g. --limit 100.")  # fmt: skip
@click.option("--page", "result_page", type=click.IntRange(min=1), default=1, show_default=True,
              help="Which result page to show (1-based), e.g. --page 2 for hits 21-40 with --limit 20.")  # fmt: skip
@click.option("--type", "transaction_type", help="Transaction type, e.g. --type 政府采购 or --type 工程建设招标投标.")
@click.option("--doc-type", callback=_doc_type,
              help=f"Document type, e.g. --doc-type award_notice. One of: {', '.join(DOC_TYPES)}.")  # fmt: skip
@click.option("--code", help="Project code, whole or a segment, e.g. --code GXZC2023-G1-001234-KWZB or --code 001234.")
@click.option("--from", "date_from", callback=_date,
              help="Award date from, inclusive, e.g. --from 2023-01-01.")  # fmt: skip
@click.option("--to", "date_to", callback=_date, help="Award date to, inclusive, e.g. --to 2023-12-31.")
@click.option("--min", "amount_min", type=click.FloatRange(min=0), help="Amount at least, in yuan, e.g. --min 1000000.")
@click.option("--max", "amount_max", type=click.FloatRange(min=0), help="Amount at most, in yuan, e.g. --max 5e6.")
@click.option("--party", help="Purchaser, agency, winner or any bidder, any part of the name, e.g. --party 中建三局.")
def main(query: tuple[str, ...], archive_dir: str | None, as_json: bool, limit: int, result_page: int,
         transaction_type: str | None, doc_type: str | None, code: str | None, date_from: str | None,
         date_to: str | None, amount_min: float | None, amount_max: float | None,
         party: str | None) -> None:  # fmt: skip
    """Find pages. Words are ANDed; "a phrase" or “a phrase” matches exactly;
    -word or NOT word excludes; a OR b matches either; project codes match whole or by segment.
    Filters narrow the hits; pages without the value (no award date, no amount) drop out.
    Pages of the document whose whole project code is the query come first; a word in the
    project name or a party's name weighs more than the same word in the page text.
    Hits are grouped by document, best first, --limit pages per result page (--page N).

    \b
    Examples:
      python search_cli.py 中标通知书
      python search_cli.py "评标委员会评审" -废标 --type 政府采购
      python search_cli.py GXZC2023-G1-001234-KWZB --json
      python search_cli.py 交易中心 --doc-type award_notice --from 2023-01-01 --to 2023-12-31
      python search_cli.py 中标 --min 1000000 --party 中建三局
      python search_cli.py 中标 --limit 50 --page 2
    """
    if mistyped := [word for word in query if word.startswith("--") and len(word) > 2]:
        raise click.UsageError(f"no such option: {mistyped[0]} (a word to exclude takes one dash: -废标)")
    try:
        archive = Archive.open(resolve_root(archive_dir))
        _user, visible = user_levels(archive)
        raw = " ".join(query)
        filters = Filters(
            transaction_type=transaction_type,
            doc_type=doc_type,
            code=code,
            date_from=date_from,
            date_to=date_to,
            amount_min=amount_min,
            amount_max=amount_max,
            party=party,
            access=visible,  # restricted documents leave no trace for a user without the role
        )
        offset = (result_page - 1) * limit
        started = time.monotonic()
        hits, total = search_page(archive, raw, filters, limit, offset)
        _hint_if_slow(archive, time.monotonic() - started)
        detail = {"page": result_page} if result_page > 1 else {}
        record_use(archive, "search", len(hits), query=raw,
                   filters={k: v for k, v in vars(filters).items() if v is not None and k != "access"},
                   **detail)  # fmt: skip
    except TradeArchiveError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(int(error.exit_code))
    status = _status(len(hits), total, offset, limit, result_page)
    if as_json:  # the contract: a flat JSON array of page hits; anything more goes to stderr
        click.echo(json.dumps(hits, ensure_ascii=False, indent=2))
        if total > offset + len(hits) or (total and not hits):
            click.echo(status, err=True)
        return
    if not hits:
        click.echo(status)
        return
    styled = _is_tty()
    marks = highlight_terms(raw)
    for lines in _grouped(hits, marks, styled):
        for line in lines:
            click.echo(line, color=styled or None)
    click.echo(status)


# A whoosh search slower than this gets a hint on stderr: at 200,000 pages whoosh takes
# ~20 s a word query where tantivy takes ~30 ms (README, "Search scale").
SLOW_SEARCH_SECONDS = 2.0


def _hint_if_slow(archive: Archive, seconds: float) -> None:
    if seconds >= SLOW_SEARCH_SECONDS and backend_name(archive) == "whoosh":
        click.echo(f"hint: this search took {seconds:.1f} s on the whoosh index; for an archive this large, "
                   f"`trade-archive reindex --backend tantivy --archive {archive.root}` makes searches "
                   "hundreds of times faster.", err=True)  # fmt: skip


_MARKED = re.compile("【([^【】]+)】")
NO_TEXT = "(no text on this page: it matched on its document's project code, name or parties)"


def _is_tty() -> bool:
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):  # replaced or closed stdout
        return False


def _status(shown: int, total: int, offset: int, limit: int, result_page: int) -> str:
    """What was shown out of how many, and how to see the rest (never a silent cap)."""
    if not total:
        return "no matching pages"
    last_page = -(-total // limit)
    if not shown:
        return (f"no hits on result page {result_page}: {total} page(s) match, "
                f"result pages 1-{last_page} with --limit {limit}")  # fmt: skip
    if offset == 0 and shown == total:
        return f"{total} page(s)"
    text = f"showing {offset + 1}-{offset + shown} of {total} pages"
    if offset + shown < total:
        text += f"; next: --page {result_page + 1}"
    return text


def _page_ranges(numbers: list[int]) -> str:
    """[1, 2, 3, 7] -> "1-3,7"."""
    runs: list[list[int]] = []
    for n in sorted(set(numbers)):
        if runs and n == runs[-1][1] + 1:
            runs[-1][1] = n
        else:
            runs.append([n, n])
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)


def highlight(snippet: str, marks: list[str], styled: bool) -> str:
    """The snippet's 【match】 marks as bold colour for a terminal, or kept as 【】.
    (Only marks of the query's words: a 【】 the page itself prints stays as it is.)"""
    if not styled or not marks:
        return snippet
    return _MARKED.sub(
        lambda m: click.style(m.group(1), fg="red", bold=True) if is_mark(m.group(1), marks) else m.group(0), snippet
    )


def _grouped(hits: list[dict], marks: list[str], styled: bool) -> list[list[str]]:
    """One block per document, in the order of its best hit: a line naming the document
    (source, the pages hit, project code, document type, best score), then each page hit,
    best first, with its snippet."""
    documents: dict[str, list[dict]] = {}
    for hit in hits:
        documents.setdefault(hit["document"], []).append(hit)
    blocks = []
    for pages in documents.values():
        first = pages[0]
        code_text = first["project_code"] or "(unfiled)"
        doc_type = first["doc_type"] or "(type unknown)"
        head = (f"{first['source']}  p.{_page_ranges([h['page'] for h in pages])}  {code_text}  {doc_type}  "
                f"best score {first['score']}")  # fmt: skip
        lines = [click.style(head, bold=True) if styled else head]
        for hit in pages:
            text = highlight(hit["snippet"], marks, styled) if hit["snippet"] else NO_TEXT
            lines.append(f"    p.{hit['page']}  {text}")
        blocks.append(lines)
    return blocks


if __name__ == "__main__":
    main()
