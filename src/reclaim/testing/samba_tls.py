"""Throwaway certificates for the Samba test domain controller.

Samba generates its own self-signed certificate on first start (``private/tls/``), but
it names only ``DC1.<realm>`` in the subject CN and has no subjectAltName. The tests
connect to loopback IP addresses, so verifying that certificate would need the
hostname check switched off. Instead each test domain gets its own CA and each DC
instance a server certificate naming its IP address, signed by that CA: the connector
then runs with full verification (chain *and* hostname), as it must in production
with an enterprise CA.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# Samba refuses a key file that is readable by anyone but its owner.
_KEY_MODE = 0o600


@dataclass(frozen=True)
class CertificateAuthority:
    """A CA on disk: ``cert_file`` is what clients trust, ``key_file`` signs."""

    cert_file: Path
    key_file: Path


def _now() -> dt.datetime:
    # Back-date a little so a clock a few seconds off does not make the cert "not yet valid".
    return dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    data = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, _KEY_MODE)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.chmod(path, _KEY_MODE)


def create_ca(folder: Path, *, common_name: str = "Reclaim test CA") -> CertificateAuthority:
    """Create a self-signed CA (``ca.pem`` + ``ca.key``) in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now())
        .not_valid_after(_now() + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    ca = CertificateAuthority(cert_file=folder / "ca.pem", key_file=folder / "ca.key")
    ca.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(ca.key_file, key)
    return ca


def issue_server_certificate(
    ca: CertificateAuthority,
    *,
    cert_file: Path,
    key_file: Path,
    dns_names: list[str],
    ip_addresses: list[str],
) -> None:
    """Write a TLS server certificate signed by ``ca`` naming the given hosts."""
    ca_key = serialization.load_pem_private_key(ca.key_file.read_bytes(), password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise TypeError("the test CA key must be an EC key")
    ca_cert = x509.load_pem_x509_certificate(ca.cert_file.read_bytes())
    key = ec.generate_private_key(ec.SECP256R1())
    alt_names: list[x509.GeneralName] = [x509.DNSName(name) for name in dns_names]
    alt_names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ip_addresses]
    subject_cn = dns_names[0] if dns_names else ip_addresses[0]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject_cn)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now())
        .not_valid_after(_now() + dt.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    cert_file.parent.mkdir(parents=True, exist_ok=True)
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(key_file, key)
