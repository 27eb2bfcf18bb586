"""``reclaim tokens`` and ``reclaim accounts``, and the web secret file, end to end."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from reclaim.cli import app
from reclaim.store.engine import make_engine
from reclaim.store.web_tables import api_tokens, audit_log
from reclaim.web.auth.tokens import token_hash
from reclaim.web.settings import WebSettings, WebSettingsError

runner = CliRunner()


@pytest.fixture
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("RECLAIM_CONFIG", raising=False)
    monkeypatch.delenv("RECLAIM_DATABASE_URL", raising=False)
    monkeypatch.setenv("RECLAIM_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


def invoke(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args), input=stdin)
    return result.exit_code, result.stdout, result.stderr


def test_tokens_create_list_revoke(data: Path) -> None:
    code, out, err = invoke("tokens", "create", "--role", "ingest", "--name", "osquery hosts")
    assert code == 0, err
    secret = out.strip()
    assert secret.startswith("rcl_") and "\n" not in secret
    assert "shown once" in err
    engine = make_engine(f"sqlite:///{data / 'reclaim.db'}")
    with engine.connect() as conn:
        row = conn.execute(select(api_tokens)).one()
        entry = conn.execute(select(audit_log).where(audit_log.c.action == "token.create")).one()
    assert row.token_hash == token_hash(secret) and row.role == "ingest"
    assert secret not in entry.detail and secret not in (entry.target or "")
    assert entry.actor_kind == "cli" and entry.actor.startswith("cli:")

    code, out, _ = invoke("tokens", "list", "--json")
    listed = json.loads(out)
    assert [(t["name"], t["role"], t["revoked"]) for t in listed] == [
        ("osquery hosts", "ingest", None)
    ]
    assert secret not in out and listed[0]["prefix"] == secret[:12]

    assert invoke("tokens", "revoke", str(row.id))[0] == 0
    code, _, err = invoke("tokens", "revoke", str(row.id))
    assert code == 2 and "revoked already" in err
    assert json.loads(invoke("tokens", "list", "--json")[1]) == []
    assert len(json.loads(invoke("tokens", "list", "--all", "--json")[1])) == 1


def test_tokens_create_refuses_an_unknown_role(data: Path) -> None:
    code, _, err = invoke("tokens", "create", "--role", "root", "--name", "x")
    assert code == 2 and "unknown role 'root'" in err


def test_create_admin_from_a_password_file_and_prompt(data: Path, tmp_path: Path) -> None:
    pw = tmp_path / "pw.txt"
    pw.write_text("a long enough password\n")
    code, out, err = invoke(
        "accounts", "create-admin", "Ann@Corp.example", "--password-file", str(pw)
    )
    assert code == 0, err
    assert "ann@corp.example (admin, password)" in out
    code, _, err = invoke(
        "accounts", "create-admin", "ann@corp.example", "--password-file", str(pw)
    )
    assert code == 2 and "exists already" in err
    short = tmp_path / "short.txt"
    short.write_text("short\n")
    code, _, err = invoke(
        "accounts", "create-admin", "bo@corp.example", "--password-file", str(short)
    )
    assert code == 2 and "at least 12" in err
    code, _, err = invoke(
        "accounts", "create-admin", "cy@corp.example", stdin="typed password 1\ntyped password 1\n"
    )
    assert code == 0, err
    code, _, err = invoke(
        "accounts", "create-admin", "di@corp.example", stdin="typed password 1\nanother one 22\n"
    )
    assert code == 2 and "differ" in err
    code, _, _ = invoke("accounts", "create", "eve@corp.example", "--role", "viewer", "--sso-only")
    assert code == 0
    code, _, err = invoke("accounts", "create", "x@corp.example", "--role", "ingest", "--sso-only")
    assert code == 2 and "API tokens" in err
    listed = json.loads(invoke("accounts", "list", "--json")[1])
    assert [(a["email"], a["role"], a["password"]) for a in listed] == [
        ("ann@corp.example", "admin", True),
        ("cy@corp.example", "admin", True),
        ("eve@corp.example", "viewer", False),
    ]
    table = invoke("accounts", "list")[1]
    assert "eve@corp.example" in table and "SSO" in table


def test_web_secret_file_is_private_and_stable(tmp_path: Path) -> None:
    first = WebSettings.from_env(tmp_path, {})
    path = tmp_path / "web-secret"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert WebSettings.from_env(tmp_path, {}).secret == first.secret  # reused, not replaced
    assert len(first.secret) >= 32
    from_env = WebSettings.from_env(tmp_path, {"RECLAIM_WEB_SECRET": "e" * 32})
    assert from_env.secret == "e" * 32
    with pytest.raises(WebSettingsError, match="at least 32") as caught:
        WebSettings.from_env(tmp_path, {"RECLAIM_WEB_SECRET": "tooshort-but-secret"})
    assert "tooshort" not in str(caught.value)  # the value is never echoed
    path.write_text("x\n")
    with pytest.raises(WebSettingsError, match="delete it"):
        WebSettings.from_env(tmp_path, {})
    with pytest.raises(WebSettingsError, match="RECLAIM_WEB_MAX_UPLOAD_MB"):
        WebSettings.from_env(
            tmp_path, {"RECLAIM_WEB_SECRET": "e" * 32, "RECLAIM_WEB_MAX_UPLOAD_MB": "lots"}
        )
