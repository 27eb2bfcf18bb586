"""The Graph connector the workflows call: one object per tenant, thread-safe.

Each method names the Graph call(s) it makes and raises only the errors in
``reclaim.connectors.errors``. Construction does no I/O: the first call signs in.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator, Sequence
from types import TracebackType

import httpx

from reclaim.connectors.errors import ConnectorError
from reclaim.connectors.graph import licensing, membership, reads
from reclaim.connectors.graph.auth import MsalTokenProvider, TokenProvider
from reclaim.connectors.graph.budget import RateBudget
from reclaim.connectors.graph.models import (
    USER_SELECT,
    GraphGroup,
    GraphUser,
    MemberResult,
    MembersDelta,
    SubscribedSku,
)
from reclaim.connectors.graph.settings import GraphSettings
from reclaim.connectors.graph.transport import GraphTransport, make_http_client


class GraphClient:
    """Microsoft Graph for one tenant: users, groups, membership, licenses.

    ``writes_allowed`` is the kill switch, read before every write; ``dry_run`` refuses
    all writes (both raise WriteRefused before anything is sent). ``budget`` replaces the
    in-process token buckets (e.g. with one shared through the database).
    ``token_provider``/``http`` replace the MSAL sign-in and the httpx client;
    ``sleep``, ``clock`` (monotonic), ``wall_clock`` (token expiry) and ``rng`` (jitter)
    exist so tests can run retries and expiry without waiting.
    """

    def __init__(
        self,
        settings: GraphSettings,
        *,
        writes_allowed: Callable[[], bool] = lambda: True,
        dry_run: bool = False,
        budget: RateBudget | None = None,
        token_provider: TokenProvider | None = None,
        http: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.settings = settings
        http = http or make_http_client(settings)
        self.auth = token_provider or MsalTokenProvider(settings, http=http, clock=wall_clock)
        self.transport = GraphTransport(
            settings,
            auth=self.auth,
            http=http,
            writes_allowed=writes_allowed,
            dry_run=dry_run,
            budget=budget,
            sleep=sleep,
            clock=clock,
            rng=rng,
        )

    # ----- users and groups ------------------------------------------------------------

    def get_user(self, upn_or_id: str, select: Sequence[str] = USER_SELECT) -> GraphUser:
        """``GET /users/{id | upn}?$select=...``.

        Guest UPNs (``x_y.example#EXT#@tenant``) are sent with ``#`` as ``%23``; UPNs
        starting with ``$`` use ``/users('$x@y')``; with ``signInActivity`` selected a UPN
        is looked up by ``$filter=userPrincipalName eq '...'`` (quotes doubled).
        Raises NotFound for an unknown user.
        """
        return reads.get_user(self.transport, upn_or_id, select=select)

    def get_users(
        self, upns_or_ids: Sequence[str], select: Sequence[str] = USER_SELECT
    ) -> dict[str, GraphUser | ConnectorError]:
        """Many users: ``POST /$batch`` of 20 user GETs, several batches at once.

        Maps each key to its user or its error (NotFound, Transient ...).
        """
        return reads.get_users(self.transport, upns_or_ids, select=select)

    def get_group(self, group_id: str) -> GraphGroup:
        """``GET /groups/{id}?$select=displayName,groupTypes,membershipRule,onPremises...,
        assignedLicenses``. Raises NotFound for an unknown group."""
        return reads.get_group(self.transport, group_id)

    def list_members(
        self, group_id: str, select: Sequence[str] = USER_SELECT
    ) -> Iterator[GraphUser]:
        """Direct user members: ``GET /groups/{id}/members?$select=...&$top=999``, paged.

        Each user carries ``licenseAssignmentStates``: ``assigned_by_group`` tells the
        group grant from a direct one, ``last_updated`` approximates the grant date.
        """
        return reads.list_members(self.transport, group_id, select=select)

    def count_members(self, group_id: str) -> int:
        """``GET /groups/{id}/members/$count`` with ``ConsistencyLevel: eventual``
        (eventually consistent: for display and sizing, not for decisions)."""
        return reads.count_members(self.transport, group_id)

    def members_delta(self, group_id: str, delta_link: str | None = None) -> MembersDelta:
        """``GET /groups/delta?$filter=id eq '{id}'&$select=displayName,members``, then the
        deltaLink: (added user ids, removed user ids, new delta link, full round?)."""
        return reads.members_delta(self.transport, group_id, delta_link=delta_link)

    def subscribed_skus(self) -> list[SubscribedSku]:
        """``GET /subscribedSkus``: seats bought and used per SKU."""
        return reads.subscribed_skus(self.transport)

    # ----- membership ------------------------------------------------------------------

    def is_member(self, group_id: str, user_id: str, *, transitive: bool = False) -> bool:
        """Direct: ``GET /users/{u}/memberOf?$select=id&$top=999`` (strongly consistent,
        1 RU). Transitive: ``POST /users/{u}/checkMemberGroups``."""
        return membership.is_member(
            self.transport, group_id=group_id, user_id=user_id, transitive=transitive
        )

    def are_members(
        self, group_id: str, user_ids: Sequence[str]
    ) -> dict[str, bool | ConnectorError]:
        """Direct membership of many users: ``$batch`` of ``memberOf`` reads (1 RU each);
        user id → True/False, or the error for that user."""
        return membership.are_members(self.transport, group_id=group_id, user_ids=user_ids)

    def remove_member(self, group_id: str, user_id: str) -> None:
        """``DELETE /groups/{g}/members/{u}/$ref`` (never without ``/$ref``).

        Returns on 204. Raises AlreadyDone (not a member, verified by re-reading),
        NotFound, Rejected (synced group: use the onprem_ad workflow; dynamic group:
        rule-based), StopRun, Transient, WriteRefused.
        """
        membership.remove_member(self.transport, group_id=group_id, user_id=user_id)

    def remove_members(self, group_id: str, user_ids: Sequence[str]) -> list[MemberResult]:
        """Bulk removal through ``POST /$batch`` (20 removals each, concurrent, paced).

        One :class:`MemberResult` per distinct user, in input order.
        """
        return membership.remove_members(self.transport, group_id=group_id, user_ids=user_ids)

    def add_member(self, group_id: str, user_id: str) -> None:
        """``POST /groups/{g}/members/$ref`` with ``@odata.id`` =
        ``{graph_url}/v1.0/directoryObjects/{u}``. Raises AlreadyDone if already a member."""
        membership.add_member(self.transport, group_id=group_id, user_id=user_id)

    def remove_direct_license(self, user_id: str, sku_id: str) -> None:
        """``POST /users/{u}/assignLicense`` removing one directly assigned SKU."""
        licensing.remove_direct_license(self.transport, user_id=user_id, sku_id=sku_id)

    # ----- lifecycle -------------------------------------------------------------------

    def close(self) -> None:
        """Close connections."""
        self.transport.close()

    def __enter__(self) -> GraphClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
