"""The ``entra_id`` workflow: license groups mastered in Entra ID, changed through Graph.

:class:`EntraDirectory` implements :class:`~reclaim.workflows.directory.DirectoryPort`
with one shared :class:`~reclaim.connectors.graph.GraphClient`:

- the user's object id comes from the UPN (``GET /users/{upn}``; guests' ``#EXT#``,
  apostrophes and ``$``-prefixed UPNs are the client's business), cached for the run;
- ``is_member``: *direct* membership of ``policy.group.entra_id`` (``memberOf``);
- ``remove_member``: ``DELETE /groups/{g}/members/{u}/$ref`` → ``RemoveOutcome.REMOVED``;
  ``AlreadyDone`` (not a member, verified by the client) passes through; a group synced
  from on-prem AD or with dynamic membership is ``Rejected`` *before* anything is sent
  (the group is read once per run), with the way forward (the ``onprem_ad`` workflow,
  or the membership rule);
- ``add_member`` (restores): ``POST /groups/{g}/members/$ref``; ``AlreadyDone`` when the
  user is already there, which the caller treats as success.

Direct (non-group) license assignments are reported, not touched: a user who also
holds one of the group's SKUs directly keeps that seat after the removal, and the step
log says so. A policy with ``remove_direct_license: true`` opts in: after the group
removal the executor calls :meth:`EntraDirectory.remove_direct_licenses` (through the
write gate, as its own recorded write), which removes those direct assignments with
``POST /users/{u}/assignLicense``. Restores do not give them back.

Graph takes no idempotency key for membership changes; retries are safe because a
repeated DELETE or POST is answered as ``AlreadyDone``.

Step log contract (for the executor's case history)
---------------------------------------------------
Every Graph call the adapter makes on behalf of a port method appends one small dict to
:attr:`EntraDirectory.steps` and passes it to the optional ``on_step`` callback::

    {"step": "Get user UUID from UPN", "input": "alice@x", "outcome": "a11ce…", "ms": 12}
    {"step": "Check membership", "input": "<group id>", "outcome": "member", "ms": 9}
    {"step": "Remove from group", "input": "<group id>", "outcome": "204", "ms": 31}

``step`` is one of :data:`STEPS`; ``input`` and ``outcome`` are short strings (an error
outcome is ``"<ErrorClass>: <message>"``, and the error is re-raised after recording);
``ms`` is the wall time in whole milliseconds (0 for an answer from the run's cache,
whose outcome then ends in ``" (cached)"``). The runner's factory
(:func:`reclaim.workflows.directory.default_directories`) passes
:func:`reclaim.workflows.step_log.emit` as ``on_step``, which files each step under the
case the calling thread is running, so steps of one case never leak into another, even
with one adapter shared by threads. :attr:`EntraDirectory.steps` keeps the last 10,000
for callers that drive the adapter themselves: :meth:`EntraDirectory.take_steps` returns
and clears them.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from reclaim.connectors.errors import AlreadyDone, ConnectorError, Rejected
from reclaim.connectors.graph import (
    GraphClient,
    GraphGroup,
    GraphUser,
    MemberResult,
    settings_from_config,
)
from reclaim.connectors.graph.membership import unwritable_reason
from reclaim.connectors.graph.models import Outcome
from reclaim.domain.names import user_key
from reclaim.domain.policy import Policy
from reclaim.workflows.directory import BatchRemoval, RemoveOutcome

if TYPE_CHECKING:
    from reclaim.config import Settings

Step = dict[str, Any]
_KEEP = 10_000  # steps kept for take_steps; older ones are dropped

RESOLVE = "Get user UUID from UPN"
READ_GROUP = "Read group"
CHECK = "Check membership"
REMOVE = "Remove from group"
ADD = "Add to group"
DIRECT_LICENSE = "Direct license check"
REMOVE_DIRECT = "Remove direct license"
STEPS = (RESOLVE, READ_GROUP, CHECK, REMOVE, ADD, DIRECT_LICENSE, REMOVE_DIRECT)


class EntraDirectory:
    """A :class:`DirectoryPort` over Microsoft Graph (see the module docstring)."""

    name = "entra_id"

    def __init__(
        self,
        client: GraphClient,
        *,
        on_step: Callable[[Step], None] | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.client = client
        self.on_step = on_step
        self.clock = clock
        # Bounded: a runner that files steps through on_step never takes them from here.
        self.steps: deque[Step] = deque(maxlen=_KEEP)
        self._users: dict[str, GraphUser] = {}  # user key → user, for this run
        self._groups: dict[str, GraphGroup] = {}  # group id → group, for this run
        # user key → the steps prepare_batch took for them, until remove_batch files them
        self._prepared: dict[str, list[Step]] = {}

    # ----- the port --------------------------------------------------------------------

    def is_member(self, *, policy: Policy, user: str) -> bool:
        """Whether ``user`` is a *direct* member of the policy's group right now."""
        group_id = _group_id(policy)
        uid = self.object_id(user)
        with self._step(CHECK, group_id) as out:
            member = self.client.is_member(group_id, uid)
            out["outcome"] = "member" if member else "not a member"
        return member

    def remove_member(self, *, policy: Policy, user: str, idempotency_key: str) -> RemoveOutcome:
        """Remove ``user`` from the policy's group; REMOVED, or AlreadyDone / Rejected / ..."""
        group_id = _group_id(policy)
        self._refuse_unwritable(group_id)
        uid = self.object_id(user)
        with self._step(REMOVE, group_id) as out:
            self.client.remove_member(group_id, uid)
            out["outcome"] = "204"
        if not policy.remove_direct_license:  # opted in: the executor removes them next
            self._note_direct_licenses(user, group_id)
        return RemoveOutcome.REMOVED

    def direct_license_skus(self, *, policy: Policy, user: str) -> list[str]:
        """The SKUs the policy's group grants that ``user`` also holds directly, read
        afresh (after a crash the run's cached license states may be stale)."""
        group = self.group(_group_id(policy))
        granted = {s.lower() for s in group.assigned_sku_ids}
        self._users.pop(user_key(user), None)
        found = self.user(user)
        return sorted({s.sku_id for s in found.direct_licenses() if s.sku_id.lower() in granted})

    def remove_direct_licenses(
        self, *, policy: Policy, user: str, skus: Sequence[str]
    ) -> list[str]:
        """Remove ``user``'s direct assignments of ``skus`` (``assignLicense``); returns
        those removed now (a SKU already gone, e.g. on a retry, is skipped). Raises the
        first other connector error, after the SKUs before it were removed."""
        uid = self.object_id(user)
        removed = []
        for sku in skus:
            try:
                with self._step(REMOVE_DIRECT, sku) as out:
                    self.client.remove_direct_license(uid, sku)
                    out["outcome"] = "removed"
            except AlreadyDone:
                continue
            removed.append(sku)
        return removed

    def add_member(self, *, policy: Policy, user: str, idempotency_key: str) -> None:
        """Put ``user`` back (restores); AlreadyDone when already a member."""
        group_id = _group_id(policy)
        self._refuse_unwritable(group_id)
        uid = self.object_id(user)
        with self._step(ADD, group_id) as out:
            self.client.add_member(group_id, uid)
            out["outcome"] = "204"

    # ----- bulk (a plan's removals in one go) -------------------------------------------

    def remove_many(self, *, policy: Policy, users: Sequence[str]) -> dict[str, MemberResult]:
        """Remove many users at the write budget's pace: user key → result.

        UPNs are resolved in ``$batch`` reads (cached ones are not read again), then
        :meth:`GraphClient.remove_members` sends ``$batch`` DELETEs of 20. A UPN that
        cannot be resolved gets that error as its result (NotFound: the user is gone).
        One step per phase is recorded, with counts. Like the single calls, a synced or
        dynamic group is refused before anything is sent.
        """
        group_id = _group_id(policy)
        self._refuse_unwritable(group_id)
        keys = list(dict.fromkeys(user_key(u) for u in users))
        results = {k: MemberResult.failed(k, error) for k, error in self.resolve(keys).items()}
        ids = {self._users[k].id: k for k in keys if k in self._users}
        with self._step(REMOVE, group_id) as out:
            for r in self.client.remove_members(group_id, list(ids)):
                results[ids[r.user_id]] = r
            done = sum(results[k].succeeded for k in ids.values())
            out["outcome"] = f"{done} of {len(ids)} removed or already out"
        return {k: results[k] for k in keys}

    # ----- grouped removals (the worker's BatchRemover) ----------------------------------

    def prepare_batch(self, *, policy: Policy, users: Sequence[str]) -> dict[str, ConnectorError]:
        """Before a grouped removal: check the group is writable (raises ``Rejected`` if
        not: synced or dynamic), resolve the UPNs not cached yet and confirm each user's
        direct membership, both in ``$batch`` reads. Returns the users that cannot go in
        the batch, with why: lookup failures, and non-members (``AlreadyDone``), whom the
        per-case path records as having left the group, as it would alone."""
        group_id = _group_id(policy)
        try:
            self._refuse_unwritable(group_id)
        except Rejected:  # each case fails on its own path, where the group read is filed
            self._groups.pop(group_id, None)
            raise
        keys = list(dict.fromkeys(user_key(u) for u in users))
        missing = [k for k in keys if k not in self._users]
        started = self.clock()
        failed: dict[str, ConnectorError] = self.resolve(missing)
        resolve_ms = self._ms(started)
        ids = {self._users[k].id: k for k in keys if k not in failed}
        started = self.clock()
        members = self.client.are_members(group_id, list(ids))
        check_ms = self._ms(started)
        summary = f"{_group_summary(self.group(group_id))} (cached)"
        for uid, key in ids.items():
            found = f"{uid} ($batch of {len(missing)})" if key in missing else f"{uid} (cached)"
            member = members.get(uid, ConnectorError("no answer"))
            if isinstance(member, ConnectorError):
                failed[key] = member
                continue
            if not member:
                failed[key] = AlreadyDone(f"user {uid} is not a member of group {group_id}")
                continue
            self._prepared[key] = [
                _entry(RESOLVE, key, found, resolve_ms if key in missing else 0),
                _entry(CHECK, group_id, f"member ($batch of {len(ids)})", check_ms),
                _entry(READ_GROUP, group_id, summary, 0),
            ]
        return failed

    def remove_batch(
        self,
        *,
        policy: Policy,
        users: Sequence[str],
        keys: Mapping[str, str] | None = None,
        allowed: Callable[[], bool] | None = None,
    ) -> dict[str, BatchRemoval]:
        """Remove prepared users with ``$batch`` DELETEs (``GraphClient.remove_members``:
        a 404 is verified, 429 parts retried alone); per user the answer and its steps:
        the UPN lookup, the membership check, the group check, the removal (and a
        direct-license note).
        ``keys`` are not used: Graph takes no idempotency key for membership changes;
        nor is ``allowed``: the DELETEs leave together, after the caller's last check
        (the client reads the kill switch once more before sending)."""
        group_id = _group_id(policy)
        group = self.group(group_id)
        ids = {self._users[k].id: k for k in dict.fromkeys(user_key(u) for u in users)}
        started = self.clock()
        results = self.client.remove_members(group_id, list(ids))
        ms = self._ms(started)
        out: dict[str, BatchRemoval] = {}
        for result in results:
            key = ids[result.user_id]
            steps: list[Step] = self._prepared.pop(key, [])
            answer: RemoveOutcome | ConnectorError
            if result.outcome is Outcome.DONE:
                answer = RemoveOutcome.REMOVED
                steps.append(_entry(REMOVE, group_id, "204", ms))
                note = None if policy.remove_direct_license else self._direct_note(key, group)
                if note:
                    steps.append(_entry(DIRECT_LICENSE, key, note, 0))
            else:
                error = result.error or ConnectorError(f"removal ended {result.outcome.value}")
                answer = error
                text = "already done" if isinstance(error, AlreadyDone) else None
                steps.append(
                    _entry(REMOVE, group_id, text or f"{type(error).__name__}: {error}", ms)
                )
            for step in steps:
                self.steps.append(step)
                if self.on_step is not None:  # observers (metrics, tests) see every step
                    self.on_step(step)
            out[key] = BatchRemoval(answer, steps)
        return out

    # ----- helpers the executor and sync may use ---------------------------------------

    def resolve(self, users: Sequence[str]) -> dict[str, ConnectorError]:
        """Look up the users not cached yet in ``$batch`` reads; returns the failures.

        One step with counts is recorded when anything had to be read.
        """
        missing = [k for k in dict.fromkeys(user_key(u) for u in users) if k not in self._users]
        failed: dict[str, ConnectorError] = {}
        if not missing:
            return failed
        with self._step(RESOLVE, f"{len(missing)} users") as out:
            for key, found in self.client.get_users(missing).items():
                if isinstance(found, GraphUser):
                    self._users[user_key(key)] = found
                else:
                    failed[user_key(key)] = found
            out["outcome"] = f"{len(missing) - len(failed)} resolved, {len(failed)} failed"
        return failed

    def object_id(self, user: str) -> str:
        """The user's Entra object id, looked up once per run."""
        return self.user(user).id

    def user(self, user: str) -> GraphUser:
        """The Graph user behind a UPN (cached for the run)."""
        key = user_key(user)
        cached = self._users.get(key)
        if cached is not None:
            self._record(RESOLVE, user, f"{cached.id} (cached)", 0)
            return cached
        with self._step(RESOLVE, user) as out:
            found = self.client.get_user(user)
            out["outcome"] = found.id
        self._users[key] = found
        return found

    def group(self, group_id: str) -> GraphGroup:
        """The group's properties (cached for the run)."""
        cached = self._groups.get(group_id)
        if cached is not None:
            return cached
        with self._step(READ_GROUP, group_id) as out:
            found = self.client.get_group(group_id)
            out["outcome"] = _group_summary(found)
        self._groups[group_id] = found
        return found

    def take_steps(self) -> list[Step]:
        """The steps recorded since the last call (and forget them)."""
        taken = list(self.steps)
        self.steps.clear()
        return taken

    def new_run(self) -> None:
        """Forget cached users and groups (a new run re-reads them)."""
        self._users.clear()
        self._groups.clear()
        self._prepared.clear()

    # ----- internals -------------------------------------------------------------------

    def _refuse_unwritable(self, group_id: str) -> None:
        # Checked before sending: Graph would refuse anyway, but a refused write costs a
        # write-budget slot and tells the admin less than this message does.
        group = self.group(group_id)
        reason = unwritable_reason(group)
        if reason:
            code = "graph-synced-group" if group.is_synced else "graph-dynamic-group"
            raise Rejected(reason, code=code)

    def _note_direct_licenses(self, user: str, group_id: str) -> None:
        """Record (never act on) a direct assignment of one of the group's SKUs."""
        group = self._groups.get(group_id)
        note = None if group is None else self._direct_note(user, group)
        if note:
            self._record(DIRECT_LICENSE, user, note, 0)

    def _direct_note(self, user: str, group: GraphGroup) -> str | None:
        """The step outcome for a user also holding one of the group's SKUs directly."""
        found = self._users.get(user_key(user))
        if found is None:
            return None
        direct = sorted(
            s.sku_id for s in found.direct_licenses() if s.sku_id in group.assigned_sku_ids
        )
        if not direct:
            return None
        return f"also assigned directly: {', '.join(direct)} (kept; report only)"

    @contextmanager
    def _step(self, step: str, value: str) -> Iterator[dict[str, str]]:
        out = {"outcome": ""}
        start = self.clock()
        try:
            yield out
        except ConnectorError as exc:
            outcome = "already done" if isinstance(exc, AlreadyDone) else None
            failed = outcome or f"{type(exc).__name__}: {exc}"
            self._record(step, value, failed, self._ms(start))
            raise
        self._record(step, value, out["outcome"], self._ms(start))

    def _ms(self, start: float) -> int:
        return round((self.clock() - start) * 1000)

    def _record(self, step: str, value: str, outcome: str, ms: int) -> None:
        entry = _entry(step, value, outcome, ms)
        self.steps.append(entry)
        if self.on_step is not None:
            self.on_step(entry)


def _entry(step: str, value: str, outcome: str, ms: int) -> Step:
    return {"step": step, "input": value, "outcome": outcome, "ms": ms}


def _group_id(policy: Policy) -> str:
    gid = policy.group.entra_id
    if not gid:  # the policy model requires it for entra_id; onprem_ad may lack it
        raise Rejected(f"policy {policy.name!r} has no group.entra_id", code="entra-no-group")
    return gid


def _group_summary(group: GraphGroup) -> str:
    flags = [f for f, on in (("dynamic", group.is_dynamic), ("synced", group.is_synced)) if on]
    return f"{group.display_name}" + (f" ({', '.join(flags)})" if flags else "")


class EntraDirectories:
    """A :data:`~reclaim.workflows.directory.DirectoryFactory` sharing one client.

    Call it with a policy to get the directory; :meth:`close` closes the client.
    """

    def __init__(self, directory: EntraDirectory) -> None:
        self.directory = directory

    def __call__(self, policy: Policy) -> EntraDirectory:
        return self.directory

    def close(self) -> None:
        """Close the Graph client's connections."""
        self.directory.client.close()


def entra_directory_factory(
    settings: Settings,
    *,
    writes_allowed: Callable[[], bool] | None = None,
    dry_run: bool = False,
    on_step: Callable[[Step], None] | None = None,
    client: GraphClient | None = None,
    **graph_options: object,
) -> EntraDirectories:
    """One GraphClient (from ``settings.entra``) shared by every entra_id policy.

    ``writes_allowed`` is the kill switch the gate/runner supplies, read by the client
    before every write (default: ``not settings.safety.paused``); ``dry_run`` (or
    ``settings.safety.dry_run``) makes every write raise ``WriteRefused`` before
    anything is sent. ``graph_options`` go to :func:`settings_from_config`
    (``concurrency``, timeouts, ...: what ``EntraSettings`` has no fields for).
    ``client`` replaces the one built here (tests).
    """
    if client is None:
        if settings.entra is None:
            raise ValueError("the entra_id workflow needs an entra: section in the config")
        safety = settings.safety
        allowed = writes_allowed or (lambda: not safety.paused)
        client = GraphClient(
            settings_from_config(settings.entra, **graph_options),
            writes_allowed=allowed,
            dry_run=dry_run or safety.dry_run,
        )
    return EntraDirectories(EntraDirectory(client, on_step=on_step))
