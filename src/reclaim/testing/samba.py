"""A throwaway Samba Active Directory domain controller for integration tests.

One domain (realm ``CORP.EXAMPLE.TEST``, NetBIOS ``CORP``) is provisioned once into a
*template* folder and seeded offline with the users and groups in ``samba_seed``.
Each DC is a copy of that template started as a single ``samba`` process on its own
loopback address, with every pid/socket/log/state path inside its folder, and is
stopped by its PID. Copy + start takes ~1 s; provisioning + seeding ~10 s, once.

A second DC for failover tests is a second copy on another loopback address
(``127.0.0.2``): a *clone* of the same domain, with the same SIDs, GUIDs and seed
data, but no replication between the two, so a change on one is not seen on the
other. Joining a real replica (``samba-tool domain join ... DC``) needs the RPC and
DRS services, DNS for the ``_msdcs`` names, and a full schema replication: far slower
and more fragile than a failover-of-connection test needs.

The ports (389/636) cannot be moved, so each DC needs its own address; root is
needed to bind them. Nothing listens beyond 127.0.0.0/8.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import ssl
import subprocess
import time
from pathlib import Path
from typing import Any

from ldap3 import BASE, Connection, Server, Tls

from reclaim.testing import samba_seed as seed
from reclaim.testing.samba_template import (
    HOST_NAME,
    TEMPLATE_META,
    SambaError,
    SambaTemplate,
    ensure_template,
    provision_template,
    reset_folder,
    samba_unavailable_reason,
    smb_conf,
    tool,
)
from reclaim.testing.samba_tls import CertificateAuthority, create_ca, issue_server_certificate

__all__ = [
    "SambaDC",
    "SambaError",
    "SambaTemplate",
    "ensure_template",
    "free_loopback_addresses",
    "provision_template",
    "samba_unavailable_reason",
]

_LDAP_PORTS = (389, 636)


def free_loopback_addresses(count: int, *, exclude: tuple[str, ...] = ()) -> list[str]:
    """``count`` loopback addresses on which ports 389 and 636 are free (root only).

    Prefers 127.0.0.1, 127.0.0.2, ... so the usual case reads naturally, but steps over
    addresses another DC (or a leftover from a crashed run) still holds.
    """
    found: list[str] = []
    for last in range(1, 255):
        address = f"127.0.0.{last}"
        if address in exclude:
            continue
        try:
            for port in _LDAP_PORTS:
                with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
                    # As samba does: connections of a DC stopped a moment ago may
                    # still sit in TIME_WAIT on this address, which is no conflict.
                    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    probe.bind((address, port))
        except OSError:
            continue
        found.append(address)
        if len(found) == count:
            return found
    raise SambaError(f"no {count} free loopback addresses for ports 389/636")


def _die_with_parent() -> None:
    # PR_SET_PDEATHSIG: if the test run is killed, its DCs get SIGTERM instead of
    # lingering on their loopback address.
    import ctypes

    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)


class SambaDC:
    """One running (or stoppable) copy of the template on one loopback address."""

    def __init__(self, folder: Path, address: str, template: SambaTemplate) -> None:
        self.folder = folder
        self.address = address
        self.template = template
        self._process: subprocess.Popen[bytes] | None = None

    @classmethod
    def from_template(cls, template: SambaTemplate, folder: Path, *, address: str) -> SambaDC:
        """Copy ``template`` into ``folder`` (emptied first) for a DC on ``address``."""
        reset_folder(folder)
        folder.rmdir()  # copytree creates it
        shutil.copytree(
            template.folder,
            folder,
            symlinks=True,
            ignore=shutil.ignore_patterns("ca", TEMPLATE_META),
        )
        for sub in ("run", "log", "cache", "private/tls"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        (folder / "etc" / "smb.conf").write_text(smb_conf(folder, address))
        dc = cls(folder, address, template)
        dc.use_trusted_certificate()
        return dc

    # -- what clients need -------------------------------------------------------
    @property
    def ca_file(self) -> Path:
        """The CA certificate clients must trust (the same for every DC of the domain)."""
        return self.template.ca.cert_file

    @property
    def ldaps_url(self) -> str:
        """``ldaps://<address>:636``."""
        return f"ldaps://{self.address}:636"

    @property
    def admin_upn(self) -> str:
        """Domain Administrator (for test setup and assertions, not for the connector)."""
        return seed.ADMINISTRATOR_UPN

    @property
    def pid(self) -> int | None:
        """PID of the running samba process, or None when stopped."""
        process = self._process
        return process.pid if process is not None and process.poll() is None else None

    @property
    def running(self) -> bool:
        """True while the samba process is alive."""
        return self._process is not None and self._process.poll() is None

    # -- lifecycle ------------------------------------------------------------------
    def start(self, *, timeout: float = 30.0) -> float:
        """Start samba and wait until LDAPS answers a rootDSE read; returns seconds taken."""
        if self.running:
            return 0.0
        began = time.monotonic()
        conf = self.folder / "etc" / "smb.conf"
        log = open(self.folder / "log" / "stdout.log", "ab")  # noqa: SIM115 - lives with the process
        try:
            self._process = subprocess.Popen(  # noqa: S603 - fixed argv
                [tool("samba"), "-M", "single", "-F", "--no-process-group", "-s", str(conf)],
                stdin=subprocess.DEVNULL,
                preexec_fn=_die_with_parent,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        finally:
            log.close()  # the child holds its own descriptor
        while time.monotonic() - began < timeout:
            if not self.running:
                raise SambaError(f"samba on {self.address} exited: {self.log_tail()}")
            if self._ldaps_answers():
                return time.monotonic() - began
            time.sleep(0.05)
        self.stop()
        raise SambaError(
            f"samba on {self.address} did not answer LDAPS in {timeout}s: {self.log_tail()}"
        )

    def stop(self, *, timeout: float = 10.0) -> None:
        """SIGTERM our samba process (by PID), then SIGKILL if it lingers."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=timeout)

    def restart(self) -> float:
        """Stop then start; returns the seconds the start took."""
        self.stop()
        return self.start()

    def use_trusted_certificate(self) -> None:
        """Serve a certificate from the domain's CA (the default). Restarts if running."""
        self._install_certificate(self.template.ca)

    def use_untrusted_certificate(self) -> None:
        """Serve a certificate with the same names from a *different* CA, as a
        man-in-the-middle or a silently replaced DC certificate would. Restarts if running.
        """
        self._install_certificate(create_ca(self.folder / "untrusted-ca"))

    def _install_certificate(self, ca: CertificateAuthority) -> None:
        tls = self.folder / "private" / "tls"
        issue_server_certificate(
            ca,
            cert_file=tls / "cert.pem",
            key_file=tls / "key.pem",
            # Only the IP and the DC's FQDN: connecting by any other name (such as
            # "localhost") must fail the hostname check, and a test proves it does.
            dns_names=[f"{HOST_NAME}.{seed.DNS_DOMAIN}"],
            ip_addresses=[self.address],
        )
        shutil.copyfile(ca.cert_file, tls / "ca.pem")
        if self.running:
            self.restart()

    # -- helpers for tests ------------------------------------------------------------
    def admin_connection(self) -> Connection:
        """An ldap3 connection bound as Administrator over verified LDAPS."""
        return Connection(
            self._server(),
            user=self.admin_upn,
            password=self.template.admin_password,
            auto_bind=True,
            auto_referrals=False,
            raise_exceptions=False,
        )

    def log_tail(self, chars: int = 2000) -> str:
        """The end of samba's own output, for failure messages."""
        text = ""
        for name in ("stdout.log", "samba.log"):
            with contextlib.suppress(OSError):
                text += (self.folder / "log" / name).read_text(errors="replace")
        return text[-chars:]

    def _server(self, *, verify: bool = True, **kwargs: Any) -> Server:
        tls = Tls(
            validate=ssl.CERT_REQUIRED if verify else ssl.CERT_NONE,
            ca_certs_file=str(self.ca_file) if verify else None,
        )
        return Server(self.address, port=636, use_ssl=True, tls=tls, get_info=None, **kwargs)

    def _ldaps_answers(self) -> bool:
        # Unverified on purpose: this only asks "is it up?", and must also say yes
        # while the DC serves the untrusted certificate.
        server = self._server(verify=False, connect_timeout=1)
        conn = Connection(server, receive_timeout=2, raise_exceptions=False)
        try:
            conn.open()
            return bool(
                conn.search("", "(objectClass=*)", search_scope=BASE, attributes=["namingContexts"])
            )
        except Exception:  # "not yet" is every kind of failure here
            return False
        finally:
            with contextlib.suppress(Exception):
                conn.unbind()

    def __enter__(self) -> SambaDC:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"SambaDC(address={self.address!r}, folder={str(self.folder)!r}, pid={self.pid})"
