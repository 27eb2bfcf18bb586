"""The runner's asker for real campaigns: compose, batch, pace and deliver.

:class:`CampaignAsker` implements :class:`reclaim.workflows.asker.Asker`. For each
question the runner hands it (an ask or reminder *n* of one case), it:

1. returns at once if the step's key is already recorded as sent (a retried step, or a
   case that rode along in an earlier batched message);
2. waits out quiet hours and weekends in the configured zone, and sends at most one
   message per person per local day across all policies (``Deferred`` with a
   ``retry_after``: the runner tries again then, without counting a failure);
3. gathers the person's other cases with an ask or reminder due now (any policy) into
   the same message, at most ``max_items_per_message`` products;
4. composes the message from the lead policy's templates and sender, and delivers it
   over the lead policy's channels, falling back to email;
5. records a ``sent`` row in ``notifications`` for every case the message covered, in
   the case's transaction.

A permanent refusal by every channel (SMTP 550) raises ``Rejected``: the runner marks
the case ``could_not_ask``, never consent. A dead peer raises ``Transient``; every
channel broken raises ``StopRun``. Reminders and the response timeout come from the
policy's ``campaign`` (with the ``campaigns:`` defaults applied by the config).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine

from reclaim.campaigns import outbox
from reclaim.campaigns.delivery import Channel, DeliveryStatus, deliver
from reclaim.campaigns.messages import LinkSigner, OrgDetails, compose_ask
from reclaim.campaigns.model import AskItem, AskRequest, AskStage, Recipient, Sender
from reclaim.campaigns.quiet_hours import next_allowed_send_time
from reclaim.campaigns.settings import CampaignSettings
from reclaim.config import Settings
from reclaim.connectors.errors import Deferred, Rejected, Transient
from reclaim.domain.case import CaseState
from reclaim.domain.case_steps import StepKind, next_step
from reclaim.domain.policy import Policy
from reclaim.store import cases as store
from reclaim.workflows.asker import Asker, OutboxAsker, Question

log = logging.getLogger(__name__)
UTC = dt.UTC
BROKEN_FOR = 15 * 60  # seconds a StopRun channel is left out before it is tried again
ChannelFactory = Callable[[str, Policy], Channel | None]


@dataclass(frozen=True, slots=True)
class _Due:
    """One case the message covers, with the step it fulfils."""

    case_id: int
    key: str
    reminder: int
    item: AskItem


@dataclass
class CampaignAsker:
    """Delivers questions over email, Teams and Slack (see the module docstring).

    ``channels(name, policy)`` returns the channel object for a policy (``email``,
    ``teams`` or ``slack``) or None when it is not configured;
    :func:`build_asker` wires the real connectors.
    """

    settings: Settings
    campaigns: CampaignSettings
    signer: LinkSigner
    channels: ChannelFactory
    # Channels that said StopRun (revoked token, webhook gone) → when they did; skipped
    # for BROKEN_FOR seconds, then tried again (a long-running worker must notice a fix).
    broken: dict[str, float] = field(default_factory=dict)
    clock: Callable[[], float] = time.monotonic

    def ask(self, conn: Connection, question: Question, *, now: int) -> str:
        """Ask or remind (see the module docstring); returns the channel used."""
        stored = store.load_case(conn, question.case_id)
        if stored is None:
            raise Rejected(f"case #{question.case_id} is gone", code="campaign-no-case")
        outbox.lock_recipient(conn, stored.user_id)  # before looking at what was sent
        recorded = outbox.find(conn, question.idempotency_key)
        if recorded is not None and recorded.status == outbox.SENT and recorded.channel:
            return recorded.channel
        at = dt.datetime.fromtimestamp(now, UTC)
        zone = ZoneInfo(self.campaigns.timezone or self.settings.timezone)
        self._check_timing(conn, stored.user_id, at=at, zone=zone)

        lead = self._due(stored, question.policy, question.idempotency_key, question.reminder, at)
        companions = self._companions(conn, stored, at=at)
        room = self.campaigns.max_items_per_message - 1
        covered = [lead, *companions[:room]]
        recipient = Recipient(upn=stored.case.user)
        request = AskRequest(
            recipient=recipient,
            items=tuple(d.item for d in covered),
            sender=self._sender(question.policy),
        )
        policy = self.settings.policy(request.lead_policy)
        message = compose_ask(
            request,
            links=self.signer,
            now=at,
            default_timezone=zone.key,
            template_dir=self._template_dir(policy),
            org=OrgDetails(self.campaigns.org_name, self.campaigns.support_contact),
        )
        wanted = [c for c in (self.channels(n, policy) for n in policy.campaign.channels) if c]
        tick = self.clock()
        skip = tuple(name for name, since in self.broken.items() if tick - since < BROKEN_FOR)
        result = deliver(message, wanted, fallback=self.channels("email", policy), skip=skip)
        self.broken.update(dict.fromkeys(result.broken_channels, tick))
        if result.status is DeliveryStatus.RETRY:
            raise Transient(result.summary(), code="campaign-retry", retry_after=result.retry_after)
        if result.status is DeliveryStatus.UNDELIVERABLE:
            raise Rejected(result.summary(), code="campaign-undeliverable")
        channel = result.channel or "email"
        for due in covered:
            outbox.record_sent(
                conn,
                idempotency_key=due.key,
                case_id=due.case_id,
                reminder=due.reminder,
                channel=channel,
                now=now,
            )
        log.info(
            "campaign message to case(s) %s sent via %s",
            ",".join(str(d.case_id) for d in covered),
            channel,
        )
        return channel

    # ----- when --------------------------------------------------------------------------

    def _check_timing(
        self, conn: Connection, user_id: int, *, at: dt.datetime, zone: ZoneInfo
    ) -> None:
        quiet = self.campaigns.quiet_hours
        allowed = next_allowed_send_time(
            at, zone, quiet.start, quiet.end, quiet.skip_weekends, weekend=quiet.weekend
        )
        if allowed > at:
            raise Deferred(
                f"quiet hours: next send at {allowed.isoformat()}",
                code="campaign-quiet-hours",
                retry_after=(allowed - at).total_seconds(),
            )
        last = outbox.last_sent_to(conn, user_id)
        if last is None:
            return
        last_local = dt.datetime.fromtimestamp(last, zone)
        if last_local.date() == at.astimezone(zone).date():
            tomorrow = dt.datetime.combine(
                last_local.date() + dt.timedelta(days=1), quiet.end, tzinfo=zone
            )
            allowed = next_allowed_send_time(
                tomorrow, zone, quiet.start, quiet.end, quiet.skip_weekends, weekend=quiet.weekend
            )
            raise Deferred(
                f"already written to today: next send at {allowed.isoformat()}",
                code="campaign-daily-limit",
                retry_after=max(60.0, (allowed - at).total_seconds()),
            )

    # ----- what --------------------------------------------------------------------------

    def _due(
        self, stored: store.StoredCase, policy: Policy, key: str, reminder: int, at: dt.datetime
    ) -> _Due:
        case = stored.case
        campaign = policy.campaign
        asked = case.asked_at or at
        respond_by = asked + dt.timedelta(days=campaign.response_timeout_days)
        if self.campaigns.token_lifetime_days:
            respond_by = min(respond_by, at + dt.timedelta(days=self.campaigns.token_lifetime_days))
        if not reminder:
            stage = AskStage.ASK
        elif reminder >= len(campaign.reminder_days):
            stage = AskStage.FINAL
        else:
            stage = AskStage.REMINDER
        last = case.history[0].data.get("last_used")
        item = AskItem(
            case_id=str(stored.id),
            policy=policy.name,
            product=policy.name,
            respond_by=respond_by,
            last_used=dt.date.fromisoformat(str(last)) if last else None,
            reason=None if stored.verdict == "unused" else (stored.reason or None),
            stage=stage,
            reminder=reminder,
            first_asked_on=case.asked_at.astimezone(UTC).date() if case.asked_at else None,
            on_no_response=campaign.on_no_response.value,
            restore_window_days=self.campaigns.restore_window_days or None,
        )
        return _Due(stored.id, key, reminder, item)

    def _companions(
        self, conn: Connection, lead: store.StoredCase, *, at: dt.datetime
    ) -> list[_Due]:
        """The person's other cases with an ask or a reminder due now (most urgent first)."""
        found: list[_Due] = []
        ids = outbox.open_asking_cases(conn, lead.user_id, exclude=lead.id)
        for stored in store.load_cases(conn, ids):
            try:
                policy = self.settings.policy(stored.case.policy)
            except KeyError:
                continue  # a policy no longer configured: its cases are being cancelled
            step = next_step(stored.case, policy, at)
            if step.kind not in (StepKind.ASK, StepKind.REMIND) or not step.idempotency_key:
                continue
            if step.kind is StepKind.ASK and stored.authorized_key != step.idempotency_key:
                continue  # not allowed by a plan (yet)
            if stored.case.state is CaseState.CANDIDATE and not policy.ask_permission:
                continue
            found.append(self._due(stored, policy, step.idempotency_key, step.reminder, at))
        done = outbox.keys_recorded(conn, [d.key for d in found])
        found = [d for d in found if d.key not in done]
        rank = {AskStage.FINAL: 0, AskStage.REMINDER: 1, AskStage.ASK: 2}
        return sorted(found, key=lambda d: (rank[d.item.stage], d.item.respond_by, d.case_id))

    def _messaging_dir(self, policy: Policy) -> str | None:
        return self.campaigns.for_policy(policy.name).template_dir or self.campaigns.template_dir

    def _template_dir(self, policy: Policy) -> Path | None:
        found = self._messaging_dir(policy)
        return Path(found) if found else None

    def _sender(self, policy: Policy) -> Sender | None:
        sender = self.campaigns.for_policy(policy.name).sender
        return sender.to_sender() if sender else None


def build_asker(engine: Engine, settings: Settings) -> Asker:
    """The asker the runner should use: campaigns when ``campaigns:`` is configured,
    else the record-only :class:`OutboxAsker` (answers then come by ``reclaim answer``).

    Resolves the link keys now, so a missing secret stops the worker at start-up
    rather than at the first ask. ``engine`` is accepted for symmetry with other
    factories (the asker writes through the case's own connection).
    """
    del engine
    if settings.campaigns is None:
        return OutboxAsker()
    from reclaim.campaigns.channels import ChannelSet

    campaigns = settings.campaigns
    signer = LinkSigner(campaigns.base_url, campaigns.keys())
    return CampaignAsker(
        settings=settings,
        campaigns=campaigns,
        signer=signer,
        channels=ChannelSet(settings, campaigns),
    )
