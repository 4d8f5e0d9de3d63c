"""Search the archive from the terminal (staff). Also installed as ``trade-search``.

python search_cli.py 中标通知书 --archive /srv/archive
"""

from __future__ import annotations

import json
import sys

import click

from archive.errors import TradeArchiveError
from archive.store import ENV_HOME, Archive, resolve_root
from index.whoosh_index import Filters, search


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("query", nargs=-1, required=True)
@click.option("--archive", "archive_dir", type=click.Path(file_okay=False), default=None,
              help=f"Archive folder (default: ${ENV_HOME}, else ./archive-data).")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of hits.")
@click.option("--limit", type=click.IntRange(1, 10_000), default=20, show_default=True)
@click.option("--type", "transaction_type", help="Transaction type, e.g. 政府采购.")
@click.option("--doc-type", help="Document type, e.g. award_notice, contract, bid_opening.")
@click.option("--code", help="Project code, whole or any segment.")
@click.option("--from", "date_from", help="Award date from (YYYY-MM-DD).")
@click.option("--to", "date_to", help="Award date to (YYYY-MM-DD).")
def main(query: tuple[str, ...], archive_dir: str | None, as_json: bool, limit: int, transaction_type: str | None,
         doc_type: str | None, code: str | None, date_from: str | None, date_to: str | None) -> None:  # fmt: skip
    """Find pages. Words are ANDed; "a phrase" or “a phrase” matches exactly;
    -word excludes; a OR b matches either; project codes match whole or by segment.

    \b
    Examples:
      python search_cli.py 中标通知书
      python search_cli.py "评标委员会评审" -废标 --type 政府采购
      python search_cli.py GXZC2023-G1-001234-KWZB --json
    """
    try:
        archive = Archive.open(resolve_root(archive_dir))
        filters = Filters(transaction_type, doc_type, code, date_from, date_to)
        hits = search(archive, " ".join(query), filters, limit)
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
