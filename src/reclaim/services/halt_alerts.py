"""Telling admins that the mass-removal guard halted a policy: a mail, a log line and
the dashboard.

A halted policy asks and removes nobody until a person looks (see
:mod:`reclaim.domain.plan`): far more removals than the cap, or more than half of a
large group at once, points to broken usage data rather than to real disuse. The plan
keeps the alert, but nobody reads plans of a scheduled run, so after each real cycle
:func:`notify_halts`:

- logs a warning and mails ``safety.alert_emails`` through the ``smtp:`` connector
  when a halt starts, then again at most once a day while it lasts (a reminder that
  the policy is still doing nothing);
- remembers, per policy, that it is halted and by which plan (in the ``controls``
  table), which the dashboard reads back through :func:`halted_policies`.

A mail that cannot be sent is logged (the connector's message never holds the
password) and tried again at the next cycle; the cycle itself is never failed by it.
Without recipients or ``smtp:``, the warning is logged once per halt.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from typing import Any

from sqlalchemy import Connection, Engine, select

from reclaim.config import Settings
from reclaim.connectors.email import SmtpChannel, SmtpOptions
from reclaim.connectors.errors import ConnectorError
from reclaim.domain.case import Action
from reclaim.domain.plan import PolicyPlan
from reclaim.store.leases import get_control, set_control
from reclaim.store.tables import controls

log = logging.getLogger(__name__)

KEY_PREFIX = "halt-alert:"  # + a hash of the policy name: controls.key holds 40 chars
REMIND_SECONDS = 24 * 3600
BY = "mass-removal guard"
DOC = "docs/cases-and-runner.md, 'Mass-removal guard'"

MailerFactory = Callable[[Settings], SmtpChannel]


@dataclass(frozen=True, slots=True)
class HaltedPolicy:
    """A policy whose latest cycle the guard halted, and the plan that shows it."""

    policy: str
    plan_id: int | None
    alert: str
    since: int  # epoch seconds: the first halted cycle of this halt


@dataclass(frozen=True, slots=True)
class HaltNotice:
    """What :func:`notify_halts` did for one halted cycle."""

    policy: str
    mailed_to: tuple[str, ...] = ()
    error: str | None = None  # the mail could not be sent (tried again next cycle)
    reminder: bool = False  # the halt was already known: a daily reminder


def control_key(policy: str) -> str:
    """The ``controls`` key that remembers a policy's halt (fits the 40-char column)."""
    return KEY_PREFIX + hashlib.sha256(policy.lower().encode()).hexdigest()[:24]


def default_mailer(settings: Settings) -> SmtpChannel:
    """The mail channel for alerts: the ``smtp:`` section, with the campaign mail
    options (CA file, timeout) when ``campaigns:`` sets them; alerts are not paced."""
    assert settings.smtp is not None
    email = settings.campaigns.email if settings.campaigns else None
    options = SmtpOptions.from_settings(
        settings.smtp,
        sender_name="Reclaim",
        ca_file=email.ca_file if email else None,
        timeout=email.timeout_seconds if email else 30.0,
        rate_per_second=None,
    )
    return SmtpChannel(options)


def notify_halts(
    engine: Engine,
    *,
    settings: Settings,
    plan: PolicyPlan,
    plan_id: int | None,
    now: dt.datetime,
    mailer: MailerFactory = default_mailer,
) -> HaltNotice | None:
    """After a real cycle of ``plan.policy``: tell admins when it is halted (see the
    module docstring); returns what was done, or None when nobody needed telling."""
    key = control_key(plan.policy)
    now_s = int(now.timestamp())
    with engine.connect() as conn:
        prior = _load(conn, key)
    if not plan.halted:
        if prior is not None and prior.get("halted"):
            _save(engine, key, {"policy": plan.policy, "halted": False}, now_s)
            log.info("policy %s is no longer halted by the mass-removal guard", plan.policy)
        return None
    ongoing = prior is not None and bool(prior.get("halted"))
    since = int(prior["since"]) if ongoing and prior else now_s
    told_at = prior.get("told_at") if ongoing and prior else None
    mailed = bool(prior.get("mailed")) if ongoing and prior else False
    # A day later, remind by mail (a halt that was only logged is logged once, unless
    # recipients have been configured since).
    can_mail = bool(settings.safety.alert_emails) and settings.smtp is not None
    due = told_at is None or ((mailed or can_mail) and now_s - int(told_at) >= REMIND_SECONDS)
    notice: HaltNotice | None = None
    if due:
        notice = _tell(settings, plan, plan_id, now=now, mailer=mailer, reminder=ongoing)
        if notice.error is None:
            told_at, mailed = now_s, bool(notice.mailed_to)
    state = {
        "policy": plan.policy,
        "halted": True,
        "plan_id": plan_id,
        "alert": _guard_alert(plan),
        "since": since,
        "told_at": told_at,
        "mailed": mailed,
    }
    _save(engine, key, state, now_s)
    return notice


def halted_policies(conn: Connection, settings: Settings) -> list[HaltedPolicy]:
    """Enabled policies whose latest cycle was halted, in name order (for the dashboard)."""
    enabled = {p.name.lower(): p.name for p in settings.policies if p.enabled}
    out: list[HaltedPolicy] = []
    rows = conn.execute(
        select(controls.c.key, controls.c.value).where(controls.c.key.startswith(KEY_PREFIX))
    )
    for key, value in rows:
        state = _parse(str(value))
        if state is None or not state.get("halted"):
            continue
        name = enabled.get(str(state.get("policy", "")).lower())
        if name is None or control_key(name) != key:
            continue  # a policy since removed or disabled: nothing runs for it anyway
        plan_id = state.get("plan_id")
        out.append(
            HaltedPolicy(
                name,
                int(plan_id) if plan_id is not None else None,
                str(state.get("alert", "")),
                int(state.get("since", 0)),
            )
        )
    return sorted(out, key=lambda h: h.policy.lower())


def halt_message(
    settings: Settings,
    plan: PolicyPlan,
    plan_id: int | None,
    *,
    to: str,
    now: dt.datetime,
    reminder: bool = False,
) -> EmailMessage:
    """The alert mail: the policy, the counts, why it stopped and what to do."""
    assert settings.smtp is not None
    asks = plan.count(Action.ASK)
    removals = plan.count(Action.REMOVE)
    name = plan.policy
    still = "still " if reminder else ""
    where = f"reclaim plan show {plan_id}" if plan_id is not None else "reclaim plan"
    page = ""
    if plan_id is not None:
        base = settings.campaigns.base_url.rstrip("/") if settings.campaigns else ""
        page = f"\n   In the web app: {base}/plans/{plan_id}"
    text = f"""\
Reclaim's mass-removal guard {still}halts the policy "{name}".

What the cycle wanted: {asks} ask(s) and {removals} removal(s) in a group of \
{plan.group_size} member(s). The removal cap per run is {plan.cap}.
Why it stopped: {_guard_alert(plan)}

Nothing was asked or removed for this policy, and nothing will be while it stays
halted. So much at once usually means broken usage data, not real disuse.

What to do:
1. Check the usage data behind "{name}": a usage source that stopped sending makes
   everyone look unused. `reclaim usage sources` and the dashboard name stale sources.
2. Look at who would be touched: {where}{page}
3. If the usage data is right and the removals are real, change the policy's limits
   (caps.max_per_run, caps.max_percent_of_group) or narrow the policy (exclude), so
   that one cycle touches less. See {DOC}.
The next cycle plans again by itself once the data or the limits are fixed.

Reclaim sends this again once a day while the policy stays halted.
"""
    sender_name, sender_addr = parseaddr(settings.smtp.sender)
    msg = EmailMessage()
    msg["Subject"] = (
        f"Reclaim: policy {name} {still}halted by the mass-removal guard "
        f"({removals} removal(s) wanted, cap {plan.cap})"
    )
    msg["From"] = Address(
        display_name=sender_name or "Reclaim", addr_spec=sender_addr or settings.smtp.sender
    )
    msg["To"] = to
    msg["Date"] = format_datetime(now.astimezone(dt.UTC))
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no out-of-office replies
    msg.set_content(text)
    return msg


# -- internals -------------------------------------------------------------------------


def _guard_alert(plan: PolicyPlan) -> str:
    found = [a for a in plan.alerts if a.startswith("mass-removal guard")]
    return found[0] if found else "; ".join(plan.alerts)


def _tell(
    settings: Settings,
    plan: PolicyPlan,
    plan_id: int | None,
    *,
    now: dt.datetime,
    mailer: MailerFactory,
    reminder: bool,
) -> HaltNotice:
    log.warning(
        "mass-removal guard halted policy %s (plan %s): %s",
        plan.policy,
        plan_id,
        _guard_alert(plan),
    )
    recipients = settings.safety.alert_emails
    if not recipients or settings.smtp is None:  # the dashboard still lists the halt
        log.warning(
            "nobody was mailed about the halt of %s: set safety.alert_emails and smtp: "
            "to have admins told",
            plan.policy,
        )
        return HaltNotice(plan.policy, reminder=reminder)
    sent: list[str] = []
    try:
        with mailer(settings) as channel:
            for to in recipients:
                msg = halt_message(settings, plan, plan_id, to=to, now=now, reminder=reminder)
                channel.send_message(msg, sender=channel.options.sender.address, to=to)
                sent.append(to)
    except ConnectorError as exc:
        log.error("halt alert for %s not mailed (tried again next cycle): %s", plan.policy, exc)
        return HaltNotice(plan.policy, tuple(sent), error=str(exc), reminder=reminder)
    log.info("halt alert for %s mailed to %d admin(s)", plan.policy, len(sent))
    return HaltNotice(plan.policy, tuple(sent), reminder=reminder)


def _parse(value: str) -> dict[str, Any] | None:
    try:
        state = json.loads(value)
    except ValueError:
        return None
    return state if isinstance(state, dict) else None


def _load(conn: Connection, key: str) -> dict[str, Any] | None:
    found = get_control(conn, key)
    return None if found is None else _parse(found[0])


def _save(engine: Engine, key: str, state: dict[str, Any], now: int) -> None:
    with engine.begin() as conn:
        set_control(conn, key, json.dumps(state, sort_keys=True), by=BY, now=now)
