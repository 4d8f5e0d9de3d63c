"""Commands that keep the archive trustworthy and hand it on (archive.preservation):
verify, reindex, transfer; copies with legal effect: keys, sign, the DA/T 70 check
(check) and the hand-over to the archives bureau (handover)."""

from pathlib import Path

import click

import index
from archive.errors import ExitCode
from archive.ingest.progress import pass_progress
from archive.preservation.fourprops import check_four_properties
from archive.preservation.handover import handover as hand_over
from archive.preservation.keys import init_demo_keys, serve_demo_tsa
from archive.preservation.signing import sign_documents
from archive.preservation.transfer import transfer as transfer_bags
from archive.preservation.verify import check_fixity, declared_pages, verify_totals
from archive.records.export import page_totals
from flows.cli.base import archive_option, cli, echo_json, json_option, open_archive, progress_option


@cli.command(example="trade-archive verify --json")
@archive_option
@json_option
@progress_option
def verify(archive_dir: str | None, as_json: bool, show_progress: bool | None) -> ExitCode:
    """Re-hash every archived file and check the event log's hash chain. Exits 0 only when
    everything holds; else 4, naming each changed, missing or untracked file."""
    archive = open_archive(archive_dir)
    with pass_progress("verify", show_progress, lambda: verify_totals(archive)) as bar:
        report = check_fixity(archive, None if bar is None else lambda p: bar.document_done(declared_pages(p)))
    if report.unrecorded:
        click.echo(f"warning: {report.unrecorded}", err=True)
    echo_json(report.to_json()) if as_json else click.echo(report.render())
    return ExitCode.ok if report.ok else ExitCode.verify_failed


@cli.command(example="trade-archive reindex --backend tantivy   # 100x faster at 200k pages")
@archive_option
@click.option("--backend", type=click.Choice(["whoosh", "tantivy"]), default=None,
              help="Switch the index backend (default: keep the archive's; tantivy for large archives).")  # fmt: skip
@progress_option
def reindex(archive_dir: str | None, backend: str | None, show_progress: bool | None) -> None:
    """Rebuild the search index, and every transaction's record, from the documents."""
    archive = open_archive(archive_dir)
    with pass_progress("reindex", show_progress, lambda: page_totals(archive)) as bar:
        pages = index.reindex(archive, backend, None if bar is None else bar.page_done)
    click.echo(f"reindex: {pages} pages indexed ({index.backend_name(archive)})")


@cli.command(example="trade-archive transfer /mnt/handover --transaction GXZC2023-G1-001234-KWZB")
@click.argument("destination", type=click.Path(file_okay=False))
@click.option("--transaction", "project_code", help="Only this project code's documents.")
@archive_option
def transfer(destination: str, project_code: str | None, archive_dir: str | None) -> None:
    """Copy validated BagIt packages to DESTINATION with a transfer manifest (for an
    archives bureau or Archivematica's bag transfer)."""
    manifest = transfer_bags(open_archive(archive_dir), Path(destination), project_code)
    click.echo(f"transfer: {len(manifest['bags'])} validated bags in {destination} (transfer-manifest.json)")


@cli.group()
def keys() -> None:
    """Signing keys (demo keys to try signing out)."""


@keys.command(name="init", example="trade-archive keys init --demo ./demo-keys")
@click.option("--demo", "folder", required=True, type=click.Path(file_okay=False), help="Folder for the demo keys.")
def keys_init(folder: str) -> None:
    """Write a demo root certificate (ca.pem), the centre's key (centre.p12) and a demo
    timestamp authority's key (tsa.p12) — NOT FOR PRODUCTION."""
    made = init_demo_keys(Path(folder).resolve())
    click.echo(f"demo keys (NOT FOR PRODUCTION) in {folder}: {made.ca.name}, {made.centre.name}, {made.tsa.name}")
    click.echo(f'set signing_key = "{made.centre}" and trust_roots = "{made.ca}" in trade-archive.toml')


@keys.command(
    name="tsa", example='trade-archive keys tsa --demo ./demo-keys &   # then tsa_url = "http://127.0.0.1:8318/tsa"'
)
@click.option("--demo", "folder", required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--port", type=int, default=8318, show_default=True)
def keys_tsa(folder: str, port: int) -> None:
    """Serve the demo timestamp authority (RFC 3161) on 127.0.0.1 until Ctrl-C — NOT FOR PRODUCTION."""
    serve_demo_tsa(Path(folder) / "tsa.p12", port, lambda url: click.echo(f"demo TSA at {url} (Ctrl-C stops it)"))


@cli.command(example="trade-archive sign --all")
@click.argument("document", required=False)
@click.option("--all", "every", is_flag=True, help="Every document not signed yet.")
@archive_option
def sign(document: str | None, every: bool, archive_dir: str | None) -> None:
    """Sign documents archived before a signing key was configured (access PDF and tag manifest; logged)."""
    if every == (document is not None):
        raise click.UsageError("name one DOCUMENT or --all")
    click.echo(sign_documents(open_archive(archive_dir), document).summary())


@cli.command(example="trade-archive check --stage storage --json")
@click.option("--stage", type=click.Choice(["archiving", "transfer", "storage"]), required=True)
@click.option("--transaction", "project_code", help="Only this project code's documents.")
@json_option
@archive_option
def check(stage: str, project_code: str | None, as_json: bool, archive_dir: str | None) -> ExitCode:
    """The DA/T 70 four-property check (真实性, 完整性, 可用性, 安全性) for a stage; exits 4
    when an item fails. The report is also written into reports/."""
    report = check_four_properties(open_archive(archive_dir), stage, project_code)
    echo_json(report.to_json()) if as_json else click.echo(report.render())
    return ExitCode.ok if report.outcome == "PASS" else ExitCode.verify_failed


@cli.command(example="trade-archive handover /mnt/bureau-2024 --year 2023")
@click.argument("destination", type=click.Path(file_okay=False))
@click.option("--transaction", "codes", multiple=True, help="Only this project code (repeat for several).")
@click.option("--year", type=int, help="Only documents of this year (award date, else the year archived).")
@archive_option
def handover(destination: str, codes: tuple[str, ...], year: int | None, archive_dir: str | None) -> ExitCode:
    """Hand over to the archives bureau: signed packages, catalogue (XML, XLSX), 说明文件
    and 移交清单 register, checked at stage transfer; exits 4 when the check fails."""
    done = hand_over(open_archive(archive_dir), Path(destination), codes, year)
    click.echo(done.summary(destination))
    return ExitCode.ok if done.check.outcome == "PASS" else ExitCode.verify_failed
