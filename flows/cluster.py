"""Many machines, closed to everyone else: the certificates of a Dask cluster with
mutual TLS, and the client's side of it.

A Dask scheduler runs whatever code a client sends it, so the cluster takes only
clients and workers that show a certificate signed by its own authority (mutual
TLS: ``distributed`` requires the peer's certificate on both ends). One authority
(``ca.pem``) and one key pair (``node.pem``, ``node-key.pem``) serve the scheduler,
the workers and the ingesting machine; the authority's own key is not kept, so no
one can sign another certificate for the cluster: run ``cluster-certs`` again and
copy the new files to every machine to replace them.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from archive.errors import InvalidValue

if TYPE_CHECKING:
    from distributed.security import Security

CA, CERT, KEY = "ca.pem", "node.pem", "node-key.pem"
DAYS = 825  # certificates to renew every two years or so


def make_certificates(folder: Path, days: int = DAYS) -> list[Path]:
    """A new authority and the cluster's key pair in ``folder`` (the key readable by its
    owner only); the files written."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key, node_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "trade-archive cluster authority")])
    node_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "trade-archive cluster node")])

    def signed(subject: x509.Name, key: ec.EllipticCurvePrivateKey, ca: bool) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder().subject_name(subject).issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )  # fmt: skip
        if not ca:  # one certificate for both ends: the scheduler serves with it, clients and workers show it
            usage = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            builder = builder.add_extension(x509.ExtendedKeyUsage(usage), critical=False)
        return builder.sign(ca_key, hashes.SHA256())

    pem = serialization.Encoding.PEM
    key_bytes = node_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    written = {
        folder / CA: signed(ca_name, ca_key, True).public_bytes(pem),
        folder / CERT: signed(node_name, node_key, False).public_bytes(pem),
        folder / KEY: key_bytes,
    }
    for path, data in written.items():
        path.unlink(missing_ok=True)  # a fresh file, so the key's mode below is the one it gets
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600 if path.name == KEY else 0o644)
        with os.fdopen(descriptor, "wb") as out:
            out.write(data)
    return list(written)


def security(folder: Path) -> Security:
    """The cluster's TLS from the files ``make_certificates`` wrote: one key pair for every
    role (client, scheduler, worker), encryption required."""
    from distributed.security import Security

    missing = [name for name in (CA, CERT, KEY) if not (folder / name).is_file()]
    if missing:
        raise InvalidValue(f"{folder} lacks {', '.join(missing)}: `trade-archive cluster-certs {folder}` makes them")
    pair = {f"tls_{role}_{part}": str(folder / name) for role in ("client", "scheduler", "worker")
            for part, name in (("cert", CERT), ("key", KEY))}  # fmt: skip
    return Security(tls_ca_file=str(folder / CA), require_encryption=True, **pair)


def is_loopback(address: str) -> bool:
    """Whether a Dask address (tcp://10.0.0.5:8786, tls://host:8786) is this machine only."""
    host = urlsplit(address if "://" in address else f"tcp://{address}").hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_dask(address: str, certificates: Path | None, prefect_api: str | None) -> None:
    """What would leave a cluster open, or its runs unseen, is refused before the batch:
    a plain-text scheduler on another machine (it runs any code it is sent), TLS without
    certificates, and workers elsewhere with no Prefect server they can reach (the
    temporary one listens on this machine only)."""
    scheme = urlsplit(address).scheme if "://" in address else "tcp"
    if scheme == "tls" and certificates is None:
        raise InvalidValue(f"{address} is a TLS scheduler: name its certificates with --dask-certs DIR")
    if scheme != "tls" and not is_loopback(address):
        raise InvalidValue(f"{address} is an unencrypted scheduler on another machine, open to anyone who can reach "
                           "it: make certificates with `trade-archive cluster-certs DIR`, start the scheduler and "
                           "workers with them (README, many machines) and use tls://... --dask-certs DIR")  # fmt: skip
    if not prefect_api and not is_loopback(address):
        raise InvalidValue("workers on other machines report to a Prefect server: start one (`prefect server "
                           "start`) and export PREFECT_API_URL=http://<this machine>:4200/api")  # fmt: skip
