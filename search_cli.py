"""Search the archive from the terminal (staff). Also installed as ``trade-search``.

python search_cli.py 中标通知书 --archive /srv/archive
"""

from __future__ import annotations

import json
import sys

import click

from archive.audit import record_use, user_levels
from archive.errors import QueryError, TradeArchiveError
from archive.metadata import DOC_TYPES
from archive.store import ENV_HOME, Archive, resolve_root
from index import Filters, search
from index.query import check_date, check_doc_type


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


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
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
              help="Most hits to show, e.g. --limit 100.")  # fmt: skip
@click.option("--type", "transaction_type", help="Transaction type, e.g. --type 政府采购 or --type 工程建设招标投标.")
@click.option("--doc-type", callback=_doc_type,
              help=f"Document type, e.g. --doc-type award_notice. One of: {', '.join(DOC_TYPES)}.")  # fmt: skip
@click.option("--code", help="Project code, whole or a segment, e.g. --code GXZC2023-G1-001234-KWZB or --code 001234.")
@click.option("--from", "date_from", callback=_date,
              help="Award date from, inclusive, e.g. --from 2023-01-01.")  # fmt: skip
@click.option("--to", "date_to", callback=_date, help="Award date to, inclusive, e.g. --to 2023-12-31.")
@click.option("--min", "amount_min", type=click.FloatRange(min=0), help="Amount at least, in yuan, e.g. --min 1000000.")
@click.option("--max", "amount_max", type=click.FloatRange(min=0), help="Amount at most, in yuan, e.g. --max 5e6.")
@click.option("--party", help="Purchaser, agency or winner, any part of the name, e.g. --party 中建三局.")
def main(query: tuple[str, ...], archive_dir: str | None, as_json: bool, limit: int, transaction_type: str | None,
         doc_type: str | None, code: str | None, date_from: str | None, date_to: str | None,
         amount_min: float | None, amount_max: float | None, party: str | None) -> None:  # fmt: skip
    """Find pages. Words are ANDed; "a phrase" or “a phrase” matches exactly;
    -word excludes; a OR b matches either; project codes match whole or by segment.
    Filters narrow the hits; pages without the value (no award date, no amount) drop out.

    \b
    Examples:
      python search_cli.py 中标通知书
      python search_cli.py "评标委员会评审" -废标 --type 政府采购
      python search_cli.py GXZC2023-G1-001234-KWZB --json
      python search_cli.py 交易中心 --doc-type award_notice --from 2023-01-01 --to 2023-12-31
      python search_cli.py 中标 --min 1000000 --party 中建三局
    """
    try:
        archive = Archive.open(resolve_root(archive_dir))
        _user, visible = user_levels(archive)
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
        hits = search(archive, " ".join(query), filters, limit)
        record_use(archive, "search", len(hits), query=" ".join(query),
                   filters={k: v for k, v in vars(filters).items() if v is not None and k != "access"})  # fmt: skip
    except TradeArchiveError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(int(error.exit_code))
    if as_json:
        click.echo(json.dumps(hits, ensure_ascii=False, indent=2))
        return
    if not hits:
        click.echo("no matching pages")
        return
    for hit in hits:
        code_text = hit["project_code"] or "(unfiled)"
        click.echo(f"{hit['source']}  p.{hit['page']}  {code_text}  {hit['doc_type']}  score {hit['score']}")
        click.echo(f"    {hit['snippet']}")
    click.echo(f"{len(hits)} page(s)")


if __name__ == "__main__":
    main()
