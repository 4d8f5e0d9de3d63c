"""Demo keys for trying signing out, and a demo timestamp authority (TSA) to go with them.

NOT FOR PRODUCTION. ``init_demo_keys`` writes a self-made root certificate, the
centre's signing key and certificate issued by it (``centre.p12``, no password) and a
TSA key and certificate (``tsa.p12``): anyone holding the folder can sign as "the
centre". A real centre configures the PKCS#12 its CA issued (``signing_key``, the
password in ``TRADE_ARCHIVE_SIGNING_PASSWORD``) and a real TSA (``tsa_url``).

``DemoTimestampServer`` answers RFC 3161 requests over HTTP on loopback with
pyHanko's ``DummyTimeStamper`` and the demo TSA key: tests and demos get a real
HTTP timestamp exchange without reaching the network.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from archive.errors import InvalidValue

if TYPE_CHECKING:
    from http.server import BaseHTTPRequestHandler

    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import rsa

DEMO_MARK = "DEMO - NOT FOR PRODUCTION"
README = f"""{DEMO_MARK}

These keys were made by `trade-archive keys init --demo` to try signing out. Anyone who
holds this folder can sign as the centre: never use them for records that matter.

  ca.pem       demo root certificate (the trust root: `trust_roots`, `pyhanko sign validate --trust ca.pem`)
  centre.p12   the centre's signing key and certificate, issued by the root, no password (`signing_key`)
  tsa.p12      the demo timestamp authority's key and certificate (EKU timeStamping), no password

A real centre configures the PKCS#12 issued by its CA (`signing_key`, the password in the
environment variable TRADE_ARCHIVE_SIGNING_PASSWORD) and a real RFC 3161 TSA (`tsa_url`).
"""


@dataclass(frozen=True)
class DemoKeys:
    folder: Path

    @property
    def ca(self) -> Path:
        return self.folder / "ca.pem"

    @property
    def centre(self) -> Path:
        return self.folder / "centre.p12"

    @property
    def tsa(self) -> Path:
        return self.folder / "tsa.p12"


def init_demo_keys(folder: Path) -> DemoKeys:
    """Write the demo root, centre and TSA keys into ``folder`` (refused where keys already are:
    overwriting them would orphan every signature made with them)."""
    # cryptography is imported where keys are made, not at the top: the command line imports
    # this module, and every command's start-up would pay for it
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.serialization import pkcs12

    keys = DemoKeys(folder)
    if any(path.exists() for path in (keys.ca, keys.centre, keys.tsa)):
        raise InvalidValue(f"{folder} already holds keys: choose an empty folder (signatures made with them stay)")
    folder.mkdir(parents=True, exist_ok=True)
    root_key = _new_key()
    root = _certificate(f"trade-archive demo root CA ({DEMO_MARK})", root_key, None, root_key, ca=True)
    centre_key = _new_key()
    centre = _certificate(f"公共资源交易中心 ({DEMO_MARK})", centre_key, root, root_key)
    tsa_key = _new_key()
    tsa = _certificate(f"trade-archive demo TSA ({DEMO_MARK})", tsa_key, root, root_key, timestamping=True)
    keys.ca.write_bytes(root.public_bytes(serialization.Encoding.PEM))
    for path, key, cert in ((keys.centre, centre_key, centre), (keys.tsa, tsa_key, tsa)):
        blob = pkcs12.serialize_key_and_certificates(
            DEMO_MARK.encode(), key, cert, [root], serialization.NoEncryption()
        )
        path.write_bytes(blob)
        path.chmod(0o600)
    (folder / "README-NOT-FOR-PRODUCTION.txt").write_text(README, encoding="utf-8")
    return keys


def _new_key() -> rsa.RSAPrivateKey:
    from cryptography.hazmat.primitives.asymmetric import rsa  # here: start-up (see init_demo_keys)

    # RSA: pyHanko's demo timestamper signs with RSA only, and every validator reads it
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _certificate(
    common_name: str,
    key: rsa.RSAPrivateKey,
    issuer: x509.Certificate | None,
    issuer_key: rsa.RSAPrivateKey,
    ca: bool = False,
    timestamping: bool = False,
) -> x509.Certificate:
    from cryptography import x509  # here: start-up (see init_demo_keys)
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                         x509.NameAttribute(NameOID.ORGANIZATION_NAME, "trade-archive demo")])  # fmt: skip
    now = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=365 * (20 if ca else 10)))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.KeyUsage(
                digital_signature=not ca,
                content_commitment=not ca and not timestamping,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=ca,
                crl_sign=ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )  # fmt: skip
    )
    if issuer is not None:
        issuer_ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(issuer_ski), critical=False
        )
    if timestamping:  # RFC 3161 §2.3: the TSA's certificate has this one purpose, marked critical
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
    return builder.sign(issuer_key, hashes.SHA256())


class DemoTimestampServer:
    """An RFC 3161 timestamp authority over HTTP on 127.0.0.1 (a free port), signing with the
    demo TSA key; ``url`` is what ``tsa_url`` takes. Use it as a context manager."""

    def __init__(self, tsa_p12: Path, port: int = 0) -> None:
        from http.server import ThreadingHTTPServer  # here, not at the top: start-up (see init_demo_keys)

        from pyhanko.sign.timestamps.dummy_client import DummyTimeStamper
        from pyhanko_certvalidator.registry import SimpleCertificateStore

        from archive.preservation.signing import load_pkcs12

        signer = load_pkcs12(tsa_p12, None)
        stamper = DummyTimeStamper(
            tsa_cert=signer.signing_cert,
            tsa_key=signer.signing_key,
            certs_to_embed=SimpleCertificateStore.from_certs(list(signer.cert_registry)),
        )
        self.requests = 0
        self._server = ThreadingHTTPServer(("127.0.0.1", port), _handler(stamper, self))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/tsa"

    def __enter__(self) -> DemoTimestampServer:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


def serve_demo_tsa(tsa_p12: Path, port: int, on_ready: Callable[[str], None]) -> None:
    """``keys tsa``: serve the demo TSA until interrupted (Ctrl-C)."""
    with DemoTimestampServer(tsa_p12, port) as server:
        on_ready(server.url)
        threading.Event().wait()


def _handler(stamper: object, server: DemoTimestampServer) -> type[BaseHTTPRequestHandler]:
    from http.server import BaseHTTPRequestHandler

    from asn1crypto import tsp

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            try:
                request = tsp.TimeStampReq.load(body)
                reply = stamper.request_tsa_response(request).dump()
            except Exception:  # noqa: BLE001 - a malformed request gets a 400, the server keeps serving
                self.send_error(400, "not an RFC 3161 TimeStampReq")
                return
            server.requests += 1
            self.send_response(200)
            self.send_header("Content-Type", "application/timestamp-reply")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *_args: object) -> None:  # quiet: tests and the CLI print their own
            pass

    return Handler
