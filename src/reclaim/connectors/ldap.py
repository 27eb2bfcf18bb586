"""On-premises Active Directory over LDAPS (ldap3): look up users and groups, change
license-group membership.

Every LDAP outcome leaves this module as one of the errors in ``errors.py``; callers
never see a result code. Writes are refused here, before anything is sent, in dry-run,
while the kill switch is off, and on an insecure transport unless explicitly allowed.
See docs/active-directory.md.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from ldap3 import BASE, MODIFY_ADD, MODIFY_DELETE, SUBTREE, Connection
from ldap3.utils.conv import escape_filter_chars

from reclaim.connectors import ad_vendor as ad
from reclaim.connectors.errors import (
    AlreadyDone,
    NotFound,
    Rejected,
    Transient,
    WriteRefused,
)
from reclaim.connectors.ldap_entries import (
    GROUP_ATTRIBUTES,
    USER_ATTRIBUTES,
    DirectoryGroup,
    DirectoryUser,
    GroupMember,
    group_from_entry,
    member_from_entry,
    user_from_entry,
)
from reclaim.connectors.ldap_transport import (
    COMMUNICATION_ERRORS,
    LdapSettings,
    PasswordSource,
    error_for_result,
    open_connection,
)
from reclaim.ops.counters import count_ldap

__all__ = [
    "DirectoryGroup",
    "DirectoryUser",
    "GroupMember",
    "LdapConnector",
    "LdapSettings",
    "PasswordSource",
]

log = logging.getLogger(__name__)
T = TypeVar("T")

_NO_ATTRIBUTES = ["1.1"]  # RFC 4511: "return no attributes" - we only want the DN
_DESCRIBE_CHUNK = 250  # DNs per OR-filter when resolving a big group's members


class LdapConnector:
    """One service account's view of AD, over one reused, failing-over connection.

    ``writes_allowed`` is asked before every write (plug the app's kill switch in);
    thread-safe: operations are serialised on the one connection.
    """

    def __init__(
        self, settings: LdapSettings, *, writes_allowed: Callable[[], bool] | None = None
    ) -> None:
        self._settings = settings
        self._writes_allowed = writes_allowed
        self._lock = threading.RLock()
        self._conn: Connection | None = None
        self._host_index = 0
        if settings.insecure_reason:
            log.warning(
                "LDAP transport is NOT secure (%s): allowed by allow_insecure; writes %s",
                settings.insecure_reason,
                "ALLOWED (allow_insecure_writes)" if settings.allow_insecure_writes else "refused",
            )

    # -- connection ---------------------------------------------------------------
    @property
    def connected_host(self) -> str | None:
        """The DC the open connection goes to, or None when not connected."""
        with self._lock:
            return self._settings.hosts[self._host_index] if self._conn else None

    def close(self) -> None:
        """Unbind and drop the connection; the next operation reconnects."""
        with self._lock:
            conn, self._conn = self._conn, None
            if conn is not None:
                # Already gone is fine: there is nothing left to tell the server.
                with contextlib.suppress(*COMMUNICATION_ERRORS):
                    conn.unbind()

    def __enter__(self) -> LdapConnector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        s = self._settings
        return (
            f"LdapConnector(hosts={list(s.hosts)!r}, bind_user={s.bind_user!r}, "
            f"dry_run={s.dry_run})"
        )

    def _connect(self) -> Connection:
        hosts = self._settings.hosts
        failures: list[str] = []
        # Start from the DC that last worked (or the next one, after a drop): a dead
        # first DC would otherwise cost a connect timeout on every reconnect.
        for step in range(len(hosts)):
            index = (self._host_index + step) % len(hosts)
            try:
                conn = open_connection(self._settings, hosts[index])
            except Transient as exc:
                failures.append(f"{hosts[index]}: {exc.detail}")
                log.warning(
                    "LDAP: cannot use %s (%s), trying the next DC", hosts[index], exc.detail
                )
                continue
            if failures:
                log.warning("LDAP: failed over to %s", hosts[index])
            self._conn, self._host_index = conn, index
            return conn
        raise Transient("no domain controller reachable: " + "; ".join(failures), code="ldap-down")

    def _run(self, action: str, operation: Callable[[Connection], T]) -> T:
        """Run ``operation`` on the shared connection; on a broken connection,
        reconnect (failing over) and try once more.

        Retrying a write is safe: a repeated remove/add answers "not present"/"already
        there", which the callers turn into AlreadyDone.
        """
        with self._lock:
            for attempt in (1, 2):
                conn = self._conn or self._connect()
                try:
                    return operation(conn)
                except COMMUNICATION_ERRORS as exc:
                    count_ldap("connection", "lost")
                    host = self.connected_host
                    self.close()
                    # The DC that just dropped us goes to the back of the queue.
                    self._host_index = (self._host_index + 1) % len(self._settings.hosts)
                    log.warning("LDAP: connection to %s lost during %s: %s", host, action, exc)
                    if attempt == 2:
                        raise Transient(
                            f"{action}: connection lost twice ({exc})", code="ldap-down"
                        ) from exc
            raise AssertionError("unreachable")

    # -- reads --------------------------------------------------------------------
    def _search(
        self, action: str, base: str, search_filter: str, *, scope: str, attributes: list[str]
    ) -> list[dict[str, Any]]:
        def operation(conn: Connection) -> tuple[dict[str, Any], list[dict[str, Any]]]:
            conn.search(base, search_filter, search_scope=scope, attributes=attributes)
            return dict(conn.result), list(conn.response or [])

        result, response = self._run(action, operation)
        count_ldap("search", "ok" if result["result"] == ad.ResultCode.SUCCESS else "error")
        if result["result"] != ad.ResultCode.SUCCESS:
            raise error_for_result(result, action=action, bind_user=self._settings.bind_user)
        # Subtree searches at a domain root also return continuation references
        # (searchResRef) to other partitions; they are not entries.
        return [entry for entry in response if entry.get("type") == "searchResEntry"]

    def _one(self, action: str, entries: list[dict[str, Any]]) -> dict[str, Any]:
        if not entries:
            raise NotFound(f"{action}: no such object", code="ldap-32")
        if len(entries) > 1:
            raise Rejected(
                f"{action}: {len(entries)} objects match; refusing to guess", code="ambiguous"
            )
        return entries[0]

    def _find_user(self, action: str, assertion: str) -> DirectoryUser:
        entries = self._search(
            action,
            self._settings.base_dn,
            f"(&{ad.USER_FILTER}{assertion})",
            scope=SUBTREE,
            attributes=USER_ATTRIBUTES,
        )
        return user_from_entry(self._one(action, entries))

    def find_user_by_sam(self, sam: str) -> DirectoryUser:
        """The user whose sAMAccountName is ``sam`` (pre-Windows 2000 logon name)."""
        return self._find_user(f"find user {sam!r}", f"(sAMAccountName={escape_filter_chars(sam)})")

    def find_user_by_upn(self, upn: str) -> DirectoryUser:
        """The user whose userPrincipalName is ``upn``."""
        return self._find_user(
            f"find user {upn!r}", f"(userPrincipalName={escape_filter_chars(upn)})"
        )

    def find_user_by_dn(self, dn: str) -> DirectoryUser:
        """The user at ``dn``."""
        action = f"find user {dn!r}"
        entries = self._search(action, dn, ad.USER_FILTER, scope=BASE, attributes=USER_ATTRIBUTES)
        return user_from_entry(self._one(action, entries))

    def find_group_by_sid(self, sid: str) -> DirectoryGroup:
        """The group with objectSid ``sid``: a base search on AD's ``<SID=...>`` DN form,
        which survives renames and moves, unlike a stored DN."""
        if not ad.is_sid(sid):
            raise Rejected(f"not a SID: {sid!r}", code="bad-sid")
        return self._find_group(f"find group {sid}", f"<SID={sid}>", "(objectClass=group)", BASE)

    def find_group_by_dn(self, dn: str) -> DirectoryGroup:
        """The group at ``dn``."""
        return self._find_group(f"find group {dn!r}", dn, "(objectClass=group)", BASE)

    def find_group_by_sam(self, name: str) -> DirectoryGroup:
        """The group whose sAMAccountName is ``name``."""
        assertion = f"(&(objectClass=group)(sAMAccountName={escape_filter_chars(name)}))"
        return self._find_group(f"find group {name!r}", self._settings.base_dn, assertion, SUBTREE)

    def _find_group(self, action: str, base: str, search_filter: str, scope: str) -> DirectoryGroup:
        entries = self._search(
            action, base, search_filter, scope=scope, attributes=GROUP_ATTRIBUTES
        )
        return group_from_entry(self._one(action, entries))

    def is_direct_member(self, *, group_dn: str, user_dn: str) -> bool:
        """Whether ``user_dn`` is in the group's own ``member`` list.

        A base search with a ``member=`` filter: the server checks one value, so this
        costs the same for a group of 5 or 50,000 members.
        """
        search_filter = f"(member={escape_filter_chars(user_dn)})"
        action = f"check membership of {user_dn!r} in {group_dn!r}"
        return bool(
            self._search(action, group_dn, search_filter, scope=BASE, attributes=_NO_ATTRIBUTES)
        )

    def is_nested_member(self, *, group_dn: str, user_dn: str) -> bool:
        """Whether ``user_dn`` is in the group directly or through nested groups.

        LDAP_MATCHING_RULE_IN_CHAIN on the user's ``memberOf``: the DC walks the chain.
        (``msDS-memberTransitive`` would do too on AD, but Samba leaves it empty.)
        """
        rule = ad.MATCHING_RULE_IN_CHAIN
        search_filter = f"(memberOf:{rule}:={escape_filter_chars(group_dn)})"
        action = f"check nested membership of {user_dn!r} in {group_dn!r}"
        return bool(
            self._search(action, user_dn, search_filter, scope=BASE, attributes=_NO_ATTRIBUTES)
        )

    def list_members(self, group_dn: str, *, with_added_time: bool = True) -> list[GroupMember]:
        """Every direct member of the group, read in ranges (``member;range=a-b``).

        For a sync; never call this to change one member. Users are described in
        batches of OR-ed DN filters under ``base_dn``.
        """
        member_dns = self._read_ranged(group_dn, "member")
        added: dict[str, dt.datetime | None] = {}
        if with_added_time:
            for value in self._read_ranged(group_dn, "msDS-ReplValueMetaData"):
                meta = ad.parse_value_metadata(value)
                if meta is not None and not meta.deleted:
                    added[meta.dn.lower()] = meta.created
        described = self._describe(member_dns)
        return [
            member_from_entry(dn, described.get(dn.lower()), added.get(dn.lower()))
            for dn in member_dns
        ]

    def _read_ranged(self, dn: str, attribute: str) -> list[str]:
        """All values of a multi-valued attribute, window by window.

        We ask for ``range_step`` values at a time and follow the window the server
        actually returns: AD caps it at MaxValRange (1,500 by default) and ends with
        ``;range=N-*``; Samba honours the window asked for.
        """
        values: list[str] = []
        start = 0
        step = self._settings.range_step
        while True:
            requested = f"{attribute};range={start}-{start + step - 1}"
            action = f"read {attribute} of {dn!r}"
            entry = self._one(
                action,
                self._search(action, dn, "(objectClass=*)", scope=BASE, attributes=[requested]),
            )
            window: tuple[str, int, int | None] | None = None
            chunk: list[bytes] = []
            for name, raw in entry.get("raw_attributes", {}).items():
                parsed = ad.parse_range(name)
                if name.lower() == attribute.lower() or (
                    parsed and parsed[0].lower() == attribute.lower()
                ):
                    window, chunk = parsed, list(raw or [])
            values += [v.decode("utf-8") for v in chunk]
            log.debug("LDAP: read %s values %s of %s", attribute, window or "all", dn)
            if window is None or window[2] is None or not chunk:
                return values
            if window[2] < start:  # a server going backwards would loop forever
                raise Rejected(f"{action}: server returned range {window}", code="bad-range")
            start = window[2] + 1

    def _describe(self, dns: list[str]) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for i in range(0, len(dns), _DESCRIBE_CHUNK):
            chunk = dns[i : i + _DESCRIBE_CHUNK]
            search_filter = (
                "(|" + "".join(f"(distinguishedName={escape_filter_chars(d)})" for d in chunk) + ")"
            )
            for entry in self._search(
                "describe group members",
                self._settings.base_dn,
                search_filter,
                scope=SUBTREE,
                attributes=[*USER_ATTRIBUTES, "objectClass"],
            ):
                found[entry["dn"].lower()] = entry
        return found

    # -- writes -------------------------------------------------------------------
    def _guard_write(self, action: str) -> None:
        """Refuse a write before anything is sent. The only door to the writes below."""
        s = self._settings
        if s.dry_run:
            raise WriteRefused(f"dry run: not sending {action}", code="dry-run")
        if self._writes_allowed is not None and not self._writes_allowed():
            raise WriteRefused(f"writes are paused: not sending {action}", code="writes-paused")
        if s.insecure_reason and not s.allow_insecure_writes:
            raise WriteRefused(
                f"refusing {action} over an insecure LDAP transport ({s.insecure_reason}); "
                "use LDAPS/StartTLS with certificate verification",
                code="insecure-transport",
            )

    def _modify_member(
        self, action: str, group_dn: str, user_dn: str, change: str
    ) -> dict[str, Any]:
        self._guard_write(action)

        def operation(conn: Connection) -> dict[str, Any]:
            self._guard_write(action)  # again: a retry may come after the switch flipped
            conn.modify(group_dn, {"member": [(change, [user_dn])]})
            result = dict(conn.result)
            count_ldap("modify", "ok" if result.get("result") == ad.ResultCode.SUCCESS else "error")
            return result

        return self._run(action, operation)

    def remove_member(self, *, group_dn: str, user_dn: str) -> None:
        """Remove ``user_dn`` from the group's ``member``.

        Raises AlreadyDone when the user turns out not to be a direct member any more
        (decided by re-reading membership, not by the server's message text).
        """
        action = f"remove {user_dn!r} from {group_dn!r}"
        result = self._modify_member(action, group_dn, user_dn, MODIFY_DELETE)
        code = result["result"]
        if code == ad.ResultCode.SUCCESS:
            log.info("LDAP: removed %s from %s on %s", user_dn, group_dn, self.connected_host)
            return
        if code in ad.REMOVE_NOT_PRESENT_CODES:
            if not self.is_direct_member(group_dn=group_dn, user_dn=user_dn):
                raise AlreadyDone(f"{action}: not a direct member (any more)", code=f"ldap-{code}")
            raise Rejected(
                f"{action}: refused while still a member: {result.get('message')}",
                code=f"ldap-{code}",
            )
        raise error_for_result(result, action=action, bind_user=self._settings.bind_user)

    def add_member(self, *, group_dn: str, user_dn: str) -> None:
        """Add ``user_dn`` back to the group (undo). AlreadyDone if already a member."""
        action = f"add {user_dn!r} to {group_dn!r}"
        result = self._modify_member(action, group_dn, user_dn, MODIFY_ADD)
        code = result["result"]
        if code == ad.ResultCode.SUCCESS:
            log.info("LDAP: added %s to %s on %s", user_dn, group_dn, self.connected_host)
            return
        if code in ad.ADD_ALREADY_PRESENT_CODES:
            raise AlreadyDone(f"{action}: already a member", code=f"ldap-{code}")
        raise error_for_result(result, action=action, bind_user=self._settings.bind_user)
