"""Provisioning the Samba test domain once, as a template to copy DCs from.

``samba-tool domain provision`` (~4 s) into a folder with an empty ``-s`` smb.conf so
Debian's /etc/samba/smb.conf cannot leak in, then the seed data written offline
through Samba's own Python bindings (~4 s for 1,600 users), then a private CA. The
template is never started; ``samba.SambaDC.from_template`` copies it (~0.2 s).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from reclaim.testing import samba_seed as seed
from reclaim.testing.samba_tls import CertificateAuthority, create_ca

SYSTEM_PYTHON = "/usr/bin/python3"  # has Samba's bindings; our venv does not
TEMPLATE_META = "reclaim-template.json"
HOST_NAME = "dc1"


class SambaError(RuntimeError):
    """Provisioning, seeding or starting the test DC failed."""


def samba_unavailable_reason() -> str | None:
    """Why a test DC cannot run here (for ``pytest.skip``), or None when it can."""
    if os.geteuid() != 0:
        return "the Samba test DC needs root (it binds ports 389/636)"
    missing = [name for name in ("samba", "samba-tool") if _find_tool(name) is None]
    if missing or not Path(SYSTEM_PYTHON).exists():
        what = ", ".join(missing) or SYSTEM_PYTHON
        return f"Samba is not installed (no {what}): run scripts/install-samba.sh as root"
    return None


def smb_conf(folder: Path, address: str) -> str:
    """The whole smb.conf: every path inside ``folder``, listening on ``address`` only."""
    tls = folder / "private" / "tls"
    options = {
        "netbios name": HOST_NAME.upper(),
        "realm": seed.REALM,
        "workgroup": seed.NETBIOS_DOMAIN,
        "server role": "active directory domain controller",
        "idmap_ldb:use rfc2307": "yes",
        "interfaces": f"{address}/8",
        "bind interfaces only": "yes",
        # LDAP is all the tests speak; no kdc/rpc/dns/drepl means a faster start and
        # fewer ports to collide on.
        "server services": "ldap",
        "private dir": folder / "private",
        "lock directory": folder,
        "state directory": folder / "state",
        "cache directory": folder / "cache",
        "binddns dir": folder / "bind-dns",
        "pid directory": folder / "run",
        "ncalrpc dir": folder / "run" / "ncalrpc",
        "winbindd socket directory": folder / "run" / "winbindd",
        "ntp signd socket directory": folder / "run" / "ntp_signd",
        "log file": folder / "log" / "samba.log",
        "tls enabled": "yes",
        "tls keyfile": tls / "key.pem",
        "tls certfile": tls / "cert.pem",
        "tls cafile": tls / "ca.pem",
        # Samba's default, spelled out: simple binds on plain LDAP get result 8, as on
        # a hardened AD.
        "ldap server require strong auth": "yes",
    }
    return "[global]\n" + "".join(f"\t{k} = {v}\n" for k, v in options.items())


def reset_folder(folder: Path) -> None:
    """Empty ``folder`` for a new DC or template - but only if it is empty or was one:
    the template folder can come from an environment variable, and a typo there must
    not wipe someone's home directory."""
    if folder.exists() and any(folder.iterdir()):
        if not (folder / "private" / "sam.ldb").exists():
            raise SambaError(f"refusing to empty {folder}: it does not hold a Samba DC")
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)


def _find_tool(name: str) -> str | None:
    # `samba` lives in /usr/sbin, which a non-login shell's PATH may lack.
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")


def tool(name: str) -> str:
    """The full path of a Samba program."""
    path = _find_tool(name)
    if path is None:
        raise SambaError(f"{name} not found: run scripts/install-samba.sh")
    return path


def _random_password() -> str:
    # Meets AD complexity (upper, lower, digit, symbol) whatever token_urlsafe returns.
    return f"Rc1!{secrets.token_urlsafe(18)}"


def _run(cmd: list[str], *, stdin: str | None = None, timeout: float = 120) -> str:
    proc = subprocess.run(  # noqa: S603 - fixed argv, no shell
        cmd, input=stdin, capture_output=True, text=True, timeout=timeout, check=False
    )
    if proc.returncode != 0:
        raise SambaError(f"{cmd[0]} {cmd[1]} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return proc.stdout


def _template_key() -> str:
    """Changes whenever the Samba version or the seed data would make another template."""
    version = _run([tool("samba"), "--version"]).strip()
    probe = seed.build_ldif(service_password="-")  # noqa: S106 - a placeholder, hashed + json.dumps(seed.license_group_grants())
    return hashlib.sha256(
        f"{version}\n{smb_conf(Path('/t'), '127.0.0.1')}\n{probe}".encode()
    ).hexdigest()


@dataclass(frozen=True)
class SambaTemplate:
    """A provisioned, seeded, never-started domain to copy DCs from."""

    folder: Path
    admin_password: str
    service_password: str
    domain_sid: str
    sids: dict[str, str]

    @property
    def ca(self) -> CertificateAuthority:
        """The test domain's CA: clients trust ``ca.cert_file``."""
        return CertificateAuthority(self.folder / "ca" / "ca.pem", self.folder / "ca" / "ca.key")

    def sid(self, dn: str) -> str:
        """The objectSid of a seeded user or group, by DN."""
        return self.sids[dn]


def provision_template(folder: Path) -> SambaTemplate:
    """Provision and seed a fresh domain into ``folder`` (emptied first). ~10 s."""
    reset_folder(folder)
    empty_conf = folder / "empty-smb.conf"
    empty_conf.write_text("")  # keeps Debian's /etc/samba/smb.conf out of the new domain
    admin_password = _random_password()
    options = [
        f"--option={line.strip()}" for line in smb_conf(folder, "127.0.0.1").splitlines()[1:]
    ]
    _run(
        [
            tool("samba-tool"), "domain", "provision", "-s", str(empty_conf), "--use-rfc2307",
            f"--realm={seed.REALM}", f"--domain={seed.NETBIOS_DOMAIN}", "--server-role=dc",
            "--dns-backend=NONE", f"--host-name={HOST_NAME}", f"--adminpass={admin_password}",
            f"--targetdir={folder}", *options,
        ]
    )  # fmt: skip
    conf = folder / "etc" / "smb.conf"
    conf.write_text(smb_conf(folder, "127.0.0.1"))
    service_password = _random_password()
    spec = {
        "smb_conf": str(conf),
        "sam_ldb": str(folder / "private" / "sam.ldb"),
        "ldif": seed.build_ldif(service_password=service_password),
        "grants": seed.license_group_grants(),
        "report_sids": seed.all_seed_dns(),
    }
    script = Path(__file__).with_name("samba_offline.py")
    result = json.loads(_run([SYSTEM_PYTHON, "-I", str(script)], stdin=json.dumps(spec)))
    create_ca(folder / "ca")
    template = SambaTemplate(
        folder=folder,
        admin_password=admin_password,
        service_password=service_password,
        domain_sid=result["domain_sid"],
        sids=result["sids"],
    )
    meta = {
        k: getattr(template, k)
        for k in ("admin_password", "service_password", "domain_sid", "sids")
    }
    meta_path = folder / TEMPLATE_META
    meta_path.write_text(json.dumps({**meta, "key": _template_key()}))
    meta_path.chmod(0o600)
    return template


def ensure_template(folder: Path) -> SambaTemplate:
    """Reuse the template in ``folder`` if it matches this Samba and seed; else make it.

    Safe for concurrent test sessions: a lock file next to the folder serialises them.
    """
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.with_name(folder.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        meta_path = folder / TEMPLATE_META
        with contextlib.suppress(FileNotFoundError, ValueError, KeyError, TypeError):
            meta = json.loads(meta_path.read_text())
            if meta.pop("key") == _template_key():
                return SambaTemplate(folder=folder, **meta)
        return provision_template(folder)
