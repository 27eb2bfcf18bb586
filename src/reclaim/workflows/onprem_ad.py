"""The ``onprem_ad`` workflow: license groups mastered in on-prem AD, synced to Entra ID.

The reference pack's "License reclamation (on-premises Active Directory)" steps:

1. read, from Entra ID through Graph, the user's ``onPremisesSamAccountName`` and
   ``onPremisesSecurityIdentifier`` and (with ``group.entra_id``) the group's
   ``onPremisesSecurityIdentifier``; ``group.ad_sid`` / ``group.ad_dn`` /
   ``group.ad_sam`` name the AD group directly and skip the Graph group read;
2. find the user in AD (by sAMAccountName, falling back to the SID) and the group
   (by SID, DN or name), and confirm *direct* membership: a seat granted through a
   nested group is not freed by removing anyone from this one;
3. remove the member on a DC over LDAPS, read membership back, and answer
   :attr:`RemoveOutcome.AWAITING_SYNC`: Entra ID (and so the license) follows at the
   next directory sync, which :meth:`OnPremAdDirectory.sync_confirmed` watches;
4. add the member back for restores.

Every call to Graph or LDAP is recorded as a :class:`~reclaim.workflows.step_log.Step`
(see that module for the contract). The adapter never retries: the runner does, with
the same idempotency key, and a retried removal that already landed reads as
``AlreadyDone`` (the connector re-reads membership rather than trusting the message).

What a pass of the runner reads once (:meth:`OnPremAdDirectory.new_run` forgets it):
the policies' groups, and each user's Entra ID record (SAM name, SID, object id), which
the removal and the sync check would otherwise fetch again for the same case. The AD
account is looked up on every call. A removal that follows, on the same thread and
within :data:`CONFIRMED_FOR` seconds, an ``is_member`` that found the user a direct
member (the executor checks right before it writes) uses that answer instead of
reading the account and membership again: on a large group that read costs as much
as the removal's own read-back. The step is recorded with the outcome
``member (cached)``. Should the member leave in between, the MODIFY answers "not
there" and the connector re-reads membership: ``AlreadyDone``, as before.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass

from reclaim.config import Settings
from reclaim.connectors.errors import (
    AlreadyDone,
    ConnectorError,
    NotFound,
    Rejected,
    StopRun,
    Transient,
    WriteRefused,
)
from reclaim.connectors.graph import GraphClient, GraphUser
from reclaim.connectors.graph.budget import RateBudget
from reclaim.connectors.ldap import DirectoryGroup, DirectoryUser, LdapConnector
from reclaim.domain.names import user_key
from reclaim.domain.policy import GroupRef, Policy, Workflow
from reclaim.workflows.directory import (
    BatchRemoval,
    DirectoryFactory,
    DirectoryPort,
    RemoveOutcome,
)
from reclaim.workflows.step_log import (
    Outcome,
    Step,
    StepLog,
    StepRecord,
    StepSink,
    collecting,
)

__all__ = [
    "CONFIRMED_FOR",
    "OnPremAdDirectory",
    "Step",
    "StepSink",
    "build_directory",
    "onprem_ad_directory_factory",
]

# How long a positive membership check stands in for the removal's own (see the module
# docstring): the executor's check and its write are a few store transactions apart.
CONFIRMED_FOR = 5.0


@dataclass(frozen=True, slots=True)
class _Confirmed:
    """A direct membership just seen: the AD account, when, and on which thread."""

    user: DirectoryUser
    at: float
    thread: int


class OnPremAdDirectory:
    """A :class:`~reclaim.workflows.directory.DirectoryPort` for ``workflow: onprem_ad``.

    ``graph`` may be None when every policy names its AD group directly (``ad_sid``,
    ``ad_dn``, ``ad_sam``); users are then found in AD by UPN, and
    :meth:`sync_confirmed` cannot watch Entra ID. Both connectors are shared by all
    policies; the adapter is thread-safe as they are.
    """

    name = Workflow.ONPREM_AD.value

    def __init__(
        self,
        *,
        ldap: LdapConnector,
        graph: GraphClient | None,
        on_step: StepSink | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ldap = ldap
        self.graph = graph
        self.log = StepLog(on_step)
        self.clock = clock
        # Read once per pass (new_run): groups, and users' Entra ID records. AD accounts
        # are looked up on every call (an account can be renamed or replaced).
        self._groups: dict[GroupRef, DirectoryGroup] = {}
        self._entra_users: dict[str, GraphUser] = {}
        self._confirmed: dict[tuple[GroupRef, str], _Confirmed] = {}
        self._prepared: dict[str, list[StepRecord]] = {}  # prepare_batch's steps, per user
        self._lock = threading.Lock()

    @property
    def steps(self) -> list[Step]:
        """Steps recorded and not drained yet (see :mod:`reclaim.workflows.step_log`)."""
        return self.log.steps

    # -- the port ----------------------------------------------------------------------
    def new_run(self) -> None:
        """Forget what this pass read (groups, Entra ID users): the next pass re-reads."""
        with self._lock:
            self._groups.clear()
            self._entra_users.clear()
            self._confirmed.clear()
            self._prepared.clear()

    def is_member(self, *, policy: Policy, user: str) -> bool:
        """Whether ``user`` is a *direct* member of the policy's AD group (nested: False)."""
        ad_user, group = self._resolve(policy, user)
        member = self._direct(policy, user, group, ad_user)
        key = (policy.group, user_key(user))
        with self._lock:
            if member:
                self._confirmed[key] = _Confirmed(ad_user, self.clock(), threading.get_ident())
            else:
                self._confirmed.pop(key, None)
        return member

    def remove_member(self, *, policy: Policy, user: str, idempotency_key: str) -> RemoveOutcome:
        """Remove ``user`` from the AD group; AWAITING_SYNC until Entra ID follows.

        Raises AlreadyDone (not a member), Rejected (member only through a nested
        group, or still a member after the removal), Transient (still a member on
        another DC after a failover between the write and the read-back), WriteRefused
        (dry run, paused), and the connectors' other errors.
        """
        confirmed = self._take_confirmed(policy, user)
        if confirmed is not None:
            ad_user, group = confirmed
            checked = f"{group.dn} {ad_user.dn}"
            self.log.add(
                Step(policy.name, user, "ldap.is_direct_member", checked, "member (cached)", 0.0)
            )
        else:
            ad_user, group = self._resolve(policy, user)
            if not self._direct(policy, user, group, ad_user):
                self._explain_absence(policy, user, group, ad_user)
        with self._step(policy, user, "ldap.remove_member", f"{group.dn} {idempotency_key}"):
            self.ldap.remove_member(group_dn=group.dn, user_dn=ad_user.dn)
        written_on = self.ldap.connected_host
        if self._direct(policy, user, group, ad_user, step="ldap.verify_removed"):
            if self.ldap.connected_host != written_on:
                # Failed over between the write and the read-back: the other DC may not
                # have the change replicated yet. Look again later rather than fail.
                raise Transient(
                    f"{ad_user.dn} removed on {written_on} but still a member on "
                    f"{self.ldap.connected_host} (replication pending); checking again later",
                    code="replication-pending",
                )
            raise Rejected(f"{ad_user.dn} is still a member of {group.dn} after the removal")
        return RemoveOutcome.AWAITING_SYNC

    def add_member(self, *, policy: Policy, user: str, idempotency_key: str) -> None:
        """Put ``user`` back into the AD group (AlreadyDone if already a direct member)."""
        with self._lock:
            self._confirmed.pop((policy.group, user_key(user)), None)
        ad_user, group = self._resolve(policy, user)
        with self._step(policy, user, "ldap.add_member", f"{group.dn} {idempotency_key}"):
            self.ldap.add_member(group_dn=group.dn, user_dn=ad_user.dn)
        if not self._direct(policy, user, group, ad_user, step="ldap.verify_added"):
            raise Rejected(f"{ad_user.dn} is not a member of {group.dn} after the add")

    # -- grouped removals (the worker's BatchRemover) -----------------------------------
    def prepare_batch(self, *, policy: Policy, users: Sequence[str]) -> dict[str, ConnectorError]:
        """Before a grouped removal: resolve the policy's AD group (raises when it cannot
        be), read the users' Entra ID records not cached yet in ``$batch`` reads, then,
        user by user, find the AD account and confirm direct membership (as
        :meth:`is_member`, whose answer the removal then uses). Returns the users that
        cannot go in the batch, with why — lookup failures, and non-members
        (``AlreadyDone``), whom the per-case path records as it would alone (left the
        group, member only through a nested group, ...)."""
        self._group(policy)
        failed = self._read_entra_users(policy, users)
        for user in users:
            key = user_key(user)
            if key in failed:
                continue
            with collecting() as steps:  # kept for the case history, filed with the removal
                try:
                    if not self.is_member(policy=policy, user=user):
                        failed[key] = AlreadyDone(f"{user} is not a direct member")
                except StopRun:
                    raise
                except ConnectorError as exc:
                    failed[key] = exc
            if key not in failed:
                with self._lock:
                    self._prepared[key] = list(steps)
        return failed

    def _read_entra_users(self, policy: Policy, users: Sequence[str]) -> dict[str, ConnectorError]:
        """The Entra ID records of ``users`` not cached yet, in ``$batch`` reads."""
        failed: dict[str, ConnectorError] = {}
        if self.graph is None:
            return failed
        with self._lock:
            missing = [
                k for k in dict.fromkeys(user_key(u) for u in users) if k not in self._entra_users
            ]
        if not missing:
            return failed
        with self._step(policy, None, "graph.get_users", f"{len(missing)} users") as out:
            found = self.graph.get_users(missing)
            out.text = f"{sum(isinstance(f, GraphUser) for f in found.values())} found"
        with self._lock:
            for key, got in found.items():
                if isinstance(got, GraphUser):
                    self._entra_users[user_key(key)] = got
                else:
                    failed[user_key(key)] = got
        return failed

    def remove_batch(
        self,
        *,
        policy: Policy,
        users: Sequence[str],
        keys: Mapping[str, str],
        allowed: Callable[[], bool] = lambda: True,
    ) -> dict[str, BatchRemoval]:
        """Remove prepared users one after another on the pass's LDAP connection (LDAP
        has no batch): per user, as :meth:`remove_member` — MODIFY_DELETE and the
        read-back, after :meth:`prepare_batch`'s membership check. ``allowed`` (the kill
        switch) is asked before each MODIFY; once it says no, this and the remaining
        users are answered ``WriteRefused``. A ``StopRun`` (credentials rejected, TLS
        required) ends the batch the same way: the users not tried yet get it as their
        answer, and nothing more is sent."""
        out: dict[str, BatchRemoval] = {}
        stop: StopRun | None = None
        for user in users:
            key = user_key(user)
            answer: RemoveOutcome | ConnectorError
            if stop is None and not allowed():  # the kill switch, before each MODIFY
                stop = WriteRefused("paused at the moment of the write; not sent")
            with collecting() as steps:
                if stop is not None:
                    answer = stop
                else:
                    try:
                        answer = self.remove_member(
                            policy=policy, user=user, idempotency_key=keys.get(user, "")
                        )
                    except StopRun as exc:
                        answer = stop = exc
                    except ConnectorError as exc:
                        answer = exc
            with self._lock:
                before = self._prepared.pop(key, [])
            out[key] = BatchRemoval(answer, before + list(steps))
        return out

    def sync_confirmed(self, *, policy: Policy, user: str) -> bool:
        """Whether Entra ID no longer lists ``user`` as a direct member of the group.

        Asks Graph (``GET /users/{u}/memberOf``, strongly consistent) about the synced
        copy of the group named by ``group.entra_id``. Without Graph or an Entra group
        id there is nothing to watch: True, recorded as a ``skipped`` step.
        """
        if self.graph is None or policy.group.entra_id is None:
            why = "no Graph (entra:) configured" if self.graph is None else "no group.entra_id"
            self.log.add(Step(policy.name, user, "graph.sync_check", "-", f"skipped: {why}", 0.0))
            return True
        graph = self.graph
        group_id = policy.group.entra_id
        entra_user = self._entra_user(policy, user)
        with self._step(policy, user, "graph.is_member", f"{group_id} {entra_user.id}") as out:
            listed = graph.is_member(group_id, entra_user.id)
            out.text = "still_listed" if listed else "synced"
        return not listed

    def group_for(self, policy: Policy) -> DirectoryGroup:
        """The policy's AD group (resolved once, then cached): for directory sync."""
        return self._group(policy)

    # -- resolution --------------------------------------------------------------------
    def _resolve(self, policy: Policy, user: str) -> tuple[DirectoryUser, DirectoryGroup]:
        return self._user(policy, user), self._group(policy)

    def _take_confirmed(
        self, policy: Policy, user: str
    ) -> tuple[DirectoryUser, DirectoryGroup] | None:
        """The account and group of a direct membership this thread saw a moment ago
        (used once), or None."""
        with self._lock:
            seen = self._confirmed.pop((policy.group, user_key(user)), None)
            group = self._groups.get(policy.group)
        fresh = seen is not None and self.clock() - seen.at <= CONFIRMED_FOR
        if seen is None or group is None or not fresh or seen.thread != threading.get_ident():
            return None
        return seen.user, group

    def _entra_user(self, policy: Policy, user: str) -> GraphUser:
        """The user's Entra ID record (read once per pass)."""
        assert self.graph is not None  # only called with Graph configured
        key = user_key(user)
        with self._lock:
            cached = self._entra_users.get(key)
        if cached is not None:
            self.log.add(Step(policy.name, user, "graph.get_user", user, "ok (cached)", 0.0))
            return cached
        with self._step(policy, user, "graph.get_user", user):
            found = self.graph.get_user(user)
        with self._lock:
            self._entra_users[key] = found
        return found

    def _user(self, policy: Policy, user: str) -> DirectoryUser:
        """The AD account behind a UPN: through Entra's on-prem attributes when we can."""
        if self.graph is None:
            with self._step(policy, user, "ldap.find_user_by_upn", user):
                return self.ldap.find_user_by_upn(user)
        entra = self._entra_user(policy, user)
        sam, sid = entra.on_premises_sam_account_name, entra.on_premises_security_identifier
        if not sam and not sid:
            raise Rejected(
                f"{user} is not synced from on-prem AD (no onPremisesSamAccountName or "
                "onPremisesSecurityIdentifier in Entra ID); use the entra_id workflow",
                code="not-synced",
            )
        found: DirectoryUser | None = None
        if sam:
            try:
                with self._step(policy, user, "ldap.find_user_by_sam", sam):
                    found = self.ldap.find_user_by_sam(sam)
            except NotFound:
                if not sid:
                    raise
        if found is None:  # renamed in AD since the last sync: the SID still finds it
            with self._step(policy, user, "ldap.find_user_by_sid", str(sid)):
                found = self.ldap.find_user_by_dn(f"<SID={sid}>")
        if sid and found.sid and found.sid.upper() != sid.upper():
            # The name was reused by another person: acting on it would hit the wrong one.
            raise Rejected(
                f"{user}: AD account {found.sam!r} has SID {found.sid}, Entra ID says {sid}",
                code="sid-mismatch",
            )
        return found

    def _group(self, policy: Policy) -> DirectoryGroup:
        ref = policy.group
        with self._lock:
            cached = self._groups.get(ref)
        if cached is not None:
            return cached
        if ref.ad_sid:
            with self._step(policy, None, "ldap.find_group_by_sid", ref.ad_sid):
                group = self.ldap.find_group_by_sid(ref.ad_sid)
        elif ref.ad_dn:
            with self._step(policy, None, "ldap.find_group_by_dn", ref.ad_dn):
                group = self.ldap.find_group_by_dn(ref.ad_dn)
        elif ref.entra_id and self.graph is not None:
            sid = self._entra_group_sid(policy, ref.entra_id)
            with self._step(policy, None, "ldap.find_group_by_sid", sid):
                group = self.ldap.find_group_by_sid(sid)
        elif ref.ad_sam:
            with self._step(policy, None, "ldap.find_group_by_sam", ref.ad_sam):
                group = self.ldap.find_group_by_sam(ref.ad_sam)
        else:
            raise Rejected(
                f"policy {policy.name!r}: the onprem_ad workflow needs group.ad_sid, ad_dn, "
                "ad_sam, or an entra_id with Graph configured",
                code="no-ad-group",
            )
        with self._lock:
            self._groups[ref] = group
        return group

    def _entra_group_sid(self, policy: Policy, group_id: str) -> str:
        assert self.graph is not None  # only called with Graph configured
        with self._step(policy, None, "graph.get_group", group_id):
            entra = self.graph.get_group(group_id)
        sid = entra.on_premises_security_identifier
        if not entra.is_synced or not sid:
            raise Rejected(
                f"Entra group {group_id} ({entra.display_name}) is not synced from on-prem "
                "AD; use the entra_id workflow",
                code="not-synced",
            )
        return sid

    # -- membership --------------------------------------------------------------------
    def _direct(
        self,
        policy: Policy,
        user: str,
        group: DirectoryGroup,
        ad_user: DirectoryUser,
        *,
        step: str = "ldap.is_direct_member",
    ) -> bool:
        with self._step(policy, user, step, f"{group.dn} {ad_user.dn}") as out:
            member = self.ldap.is_direct_member(group_dn=group.dn, user_dn=ad_user.dn)
            out.text = "member" if member else "not_member"
        return member

    def _explain_absence(
        self, policy: Policy, user: str, group: DirectoryGroup, ad_user: DirectoryUser
    ) -> None:
        """Not a direct member: AlreadyDone, unless the seat comes through a nested group."""
        with self._step(policy, user, "ldap.is_nested_member", f"{group.dn} {ad_user.dn}") as out:
            nested = self.ldap.is_nested_member(group_dn=group.dn, user_dn=ad_user.dn)
            out.text = "nested_member" if nested else "not_member"
        if nested:
            raise Rejected(
                f"{ad_user.dn} is in {group.dn} only through a nested group: removing "
                "them from this group would not free the seat",
                code="nested-only",
            )
        raise AlreadyDone(f"{ad_user.dn} is not a member of {group.dn}")

    def _step(
        self, policy: Policy, user: str | None, step: str, input: str
    ) -> AbstractContextManager[Outcome]:
        return self.log.record(policy=policy.name, user=user, step=step, input=input)


def build_directory(
    settings: Settings,
    *,
    writes_allowed: Callable[[], bool] | None = None,
    on_step: StepSink | None = None,
    budget: RateBudget | None = None,
) -> OnPremAdDirectory:
    """An :class:`OnPremAdDirectory` on connectors built from the config file.

    ``safety.dry_run`` and ``safety.paused`` are passed into both connectors, which
    refuse writes before anything is sent; ``writes_allowed`` adds the runtime kill
    switch (``reclaim pause``), read before every write. ``budget`` paces the Graph
    client (default: its own in-process buckets).
    """
    from reclaim.workflows.onprem_ad_config import build_connectors

    ldap, graph = build_connectors(settings, writes_allowed=writes_allowed, budget=budget)
    return OnPremAdDirectory(ldap=ldap, graph=graph, on_step=on_step)


def onprem_ad_directory_factory(
    settings: Settings,
    *,
    writes_allowed: Callable[[], bool] | None = None,
    on_step: StepSink | None = None,
) -> DirectoryFactory:
    """A :data:`DirectoryFactory` for ``onprem_ad`` policies: one shared
    :class:`OnPremAdDirectory` (one GraphClient, one LdapConnector), built on first
    use so a config without ``ldap:`` fails only when such a policy runs; its
    ``new_run`` (called by the worker at each pass) reaches the adapter.
    See :func:`build_directory` for the safety wiring.
    """
    return _SharedOnPrem(settings, writes_allowed=writes_allowed, on_step=on_step)


class _SharedOnPrem:
    """See :func:`onprem_ad_directory_factory`."""

    def __init__(
        self,
        settings: Settings,
        *,
        writes_allowed: Callable[[], bool] | None,
        on_step: StepSink | None,
    ) -> None:
        self._settings = settings
        self._writes_allowed = writes_allowed
        self._on_step = on_step
        self._built: OnPremAdDirectory | None = None
        self._lock = threading.Lock()

    def __call__(self, policy: Policy) -> DirectoryPort:
        if policy.workflow is not Workflow.ONPREM_AD:
            raise ValueError(f"policy {policy.name!r} uses workflow {policy.workflow.value}")
        with self._lock:
            if self._built is None:
                self._built = build_directory(
                    self._settings, writes_allowed=self._writes_allowed, on_step=self._on_step
                )
            return self._built

    def new_run(self) -> None:
        """A new pass: the adapter (once built) forgets what it read."""
        with self._lock:
            built = self._built
        if built is not None:
            built.new_run()
