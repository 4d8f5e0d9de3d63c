"""Commands for copies with legal effect: demo keys, signing, the DA/T 70 four-property
check and the hand-over to the archives bureau."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from archive.errors import ExitCode
from flows.cli.base import archive_option, cli, open_archive


@cli.group()
def keys() -> None:
    """Signing keys (demo keys to try signing out)."""


@keys.command(name="init")
@click.option("--demo", "folder", required=True, type=click.Path(file_okay=False), help="Folder for the demo keys.")
def keys_init(folder: str) -> None:
    """Write a demo root certificate (ca.pem), the centre's key (centre.p12) and a demo
    timestamp authority's key (tsa.p12) — NOT FOR PRODUCTION.

    \b
    Example:
      trade-archive keys init --demo ./demo-keys
      # then in trade-archive.toml:  signing_key = "./demo-keys/centre.p12"
    """
    from archive.preservation.keys import init_demo_keys

    made = init_demo_keys(Path(folder).resolve())
    click.echo(f"demo keys (NOT FOR PRODUCTION) in {folder}: {made.ca.name}, {made.centre.name}, {made.tsa.name}")
    click.echo(f'set signing_key = "{made.centre}" and trust_roots = "{made.ca}" in trade-archive.toml')


@keys.command(name="tsa")
@click.option("--demo", "folder", required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--port", type=int, default=8318, show_default=True)
def keys_tsa(folder: str, port: int) -> None:
    """Serve the demo timestamp authority (RFC 3161) on 127.0.0.1 until Ctrl-C — NOT FOR PRODUCTION.

    \b
    Example:
      trade-archive keys tsa --demo ./demo-keys &   # then tsa_url = "http://127.0.0.1:8318/tsa"
    """
    from archive.preservation.keys import serve_demo_tsa

    serve_demo_tsa(Path(folder) / "tsa.p12", port, lambda url: click.echo(f"demo TSA at {url} (Ctrl-C stops it)"))


@cli.command()
@click.argument("document", required=False)
@click.option("--all", "every", is_flag=True, help="Every document not signed yet.")
@archive_option
def sign(document: str | None, every: bool, archive_dir: str | None) -> None:
    """Sign documents archived before a signing key was configured (access PDF and tag
    manifest; each logged).

    \b
    Example:
      trade-archive sign --all --archive /srv/archive
    """
    from archive.preservation.signing import sign_documents

    if every == (document is not None):
        raise click.UsageError("name one DOCUMENT or --all")
    done = sign_documents(open_archive(archive_dir), document)
    click.echo(f"sign: {len(done['signed'])} signed, {len(done['already_signed'])} already signed")


@cli.command()
@click.option("--stage", type=click.Choice(["archiving", "transfer", "storage"]), required=True)
@click.option("--transaction", "project_code", help="Only this project code's documents.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@archive_option
def check(stage: str, project_code: str | None, as_json: bool, archive_dir: str | None) -> None:
    """The DA/T 70 four-property check (真实性, 完整性, 可用性, 安全性) for a stage; exits 4
    when an item fails. The report is also written into reports/.

    \b
    Example:
      trade-archive check --stage storage --json --archive /srv/archive
    """
    from archive.preservation.fourprops import check_four_properties

    report = check_four_properties(open_archive(archive_dir), stage, project_code)
    if as_json:
        click.echo(json.dumps(report.to_json(), ensure_ascii=False, indent=2))
    else:
        _print_report(report)
    if report.outcome != "PASS":
        sys.exit(int(ExitCode.verify_failed))


def _print_report(report) -> None:  # noqa: ANN001 - a FourPropertyReport
    for group, items in report.groups.items():
        click.echo(group)
        for item in items:
            click.echo(f"  {item.code} {item.name}: {item.outcome}")
            for line in item.evidence:
                click.echo(f"      {line}")
    click.echo(f"check --stage {report.stage}: {report.packages} packages: {report.outcome} (report: {report.path})")


@cli.command()
@click.argument("destination", type=click.Path(file_okay=False))
@click.option("--transaction", "codes", multiple=True, help="Only this project code (repeat for several).")
@click.option("--year", type=int, help="Only documents of this year (award date, else the year archived).")
@archive_option
def handover(destination: str, codes: tuple[str, ...], year: int | None, archive_dir: str | None) -> None:
    """Hand over to the archives bureau: signed packages, catalogue (XML, XLSX),
    说明文件 and 移交清单 register, checked at stage transfer; exits 4 when the check fails.

    \b
    Example:
      trade-archive handover /mnt/bureau-2024 --year 2023 --archive /srv/archive
    """
    from archive.preservation.handover import handover as hand_over

    done = hand_over(open_archive(archive_dir), Path(destination), codes, year)
    click.echo(f"handover: {done.packages} packages, {done.bytes} bytes in {destination}; register {done.register.name}"
               f"{' (signed)' if done.signed_register else ''}; four-property check: {done.check.outcome}")  # fmt: skip
    if done.check.outcome != "PASS":
        sys.exit(int(ExitCode.verify_failed))
