"""Commands for many machines: the work-pool deployments and the cluster's certificates."""

from __future__ import annotations

from pathlib import Path

import click

from flows.cli.base import cli


@cli.command()
@click.option("--config", "config_file", type=click.Path(dir_okay=False), help="Configuration file (TOML).")
@click.option("--pool", default="trade-archive", show_default=True, help="Process work pool (made if missing).")
def deploy(config_file: str | None, pool: str) -> None:
    """Put the scheduled flows (inbox, weekly verify, nightly optimise) on a process work
    pool, with the paths, settings and schedules of the configuration file; workers on
    other machines run them (`prefect worker start --pool POOL`). Names: POOL-inbox, ...

    \b
    Example:
      export PREFECT_API_URL=http://10.0.0.5:4200/api PREFECT_API_AUTH_STRING=admin:secret
      trade-archive deploy --config /etc/trade-archive.toml
      prefect deployment run 'inbox-ingest/trade-archive-inbox'
    """
    from prefect.settings import PREFECT_API_URL

    from archive.config import load_config
    from archive.errors import InvalidValue
    from flows.operations import deploy_to_pool

    if not PREFECT_API_URL.value():  # else they would go to a temporary server, gone at exit
        raise InvalidValue("deployments live on a persistent Prefect server: run `prefect server start` and export "
                           "PREFECT_API_URL=http://<server>:4200/api (and PREFECT_API_AUTH_STRING)")  # fmt: skip
    for name in deploy_to_pool(load_config(config_file), pool):
        click.echo(f"deployed {name} on work pool {pool}")


@cli.command(name="cluster-certs")
@click.argument("folder", type=click.Path(file_okay=False))
def cluster_certs(folder: str) -> None:
    """Make a Dask cluster's TLS certificates in FOLDER: ca.pem, node.pem, node-key.pem
    (copy all three to the scheduler, every worker and the ingesting machine; keep the
    key private). Running it again replaces them: copy the new ones everywhere.

    \b
    Example:
      trade-archive cluster-certs /etc/trade-archive/dask
      trade-archive ingest scans/ --dask tls://10.0.0.5:8786 --dask-certs /etc/trade-archive/dask
    """
    from flows.cluster import make_certificates

    for path in make_certificates(Path(folder)):
        click.echo(path)
