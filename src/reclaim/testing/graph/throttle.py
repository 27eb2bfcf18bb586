"""Token-bucket throttling with the identity and access service limits of Microsoft Graph.

Per app+tenant: S/M/L tenants (<50, 50-500, >500 users) get 3,500/5,000/8,000 resource
units per 10 s, and writes are limited to 3,000 per 150 s; per tenant, writes are limited to
18,000 per 5 min. A request's cost is its base cost (GET users 2, group members 3,
transitiveMembers 5, checkMemberGroups 4, ... others 1), -1 with ``$select``, -1 with
``$top`` < 20, +1 with ``$expand``, never below 1; writes also cost one write.
Audit logs (sign-ins) allow 5 requests per 10 s and each report API 14 per 10 min, per app.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field

from reclaim.testing.graph.clock import Clock


@dataclass
class ThrottleConfig:
    """Limits; ``scale`` multiplies every limit (10 = raise 10×), ``enabled`` turns it off."""

    enabled: bool = True
    scale: float = 1.0
    resource_units: dict[str, int] = field(
        default_factory=lambda: {"S": 3500, "M": 5000, "L": 8000}
    )
    resource_unit_window: float = 10.0
    app_writes: int = 3000
    app_write_window: float = 150.0
    tenant_writes: int = 18000
    tenant_write_window: float = 300.0
    sign_ins: int = 5
    sign_in_window: float = 10.0
    reports: int = 14
    report_window: float = 600.0
    # Graph documents Retry-After on 429; tests of the client's fallback can turn it off.
    send_retry_after: bool = True


@dataclass
class Cost:
    """What one request consumes."""

    resource_units: int
    writes: int


def request_cost(method: str, base_cost: int, query: dict[str, str]) -> Cost:
    """The documented resource-unit and write cost of one request."""
    ru = base_cost
    if "select" in query:
        ru -= 1
    if "expand" in query:
        ru += 1
    top = query.get("top", "")
    if top.isdigit() and int(top) < 20:
        ru -= 1
    writes = 0 if method == "GET" else 1
    return Cost(max(ru, 1), writes)


class TokenBucket:
    """``capacity`` tokens refilled evenly over ``window`` seconds."""

    def __init__(self, capacity: float, window: float, now: float) -> None:
        self.capacity = capacity
        self.rate = capacity / window
        self.tokens = capacity
        self.updated = now

    def _refill(self, now: float) -> None:
        if now > self.updated:
            self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
            self.updated = now

    def wait_for(self, amount: float, now: float) -> float:
        """Seconds until ``amount`` tokens are available (0 if they are now)."""
        self._refill(now)
        if amount <= self.tokens:
            return 0.0
        return (amount - self.tokens) / self.rate

    def take(self, amount: float, now: float) -> None:
        """Consume ``amount`` (call after :meth:`wait_for` returned 0)."""
        self._refill(now)
        self.tokens -= amount

    def usage(self) -> float:
        """Fraction of the capacity in use."""
        return (self.capacity - self.tokens) / self.capacity


@dataclass
class Decision:
    """The throttler's verdict on one request."""

    allowed: bool
    retry_after: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    information: str = ""
    resource_units: int = 0


class Throttler:
    """All buckets of one server, keyed by scope; thread-safe."""

    def __init__(self, clock: Clock, config: ThrottleConfig | None = None) -> None:
        self.clock = clock
        self.config = config or ThrottleConfig()
        self._buckets: dict[tuple[str, ...], TokenBucket] = {}
        self._lock = threading.Lock()

    def reset(self) -> None:
        """Forget all consumption (full buckets)."""
        with self._lock:
            self._buckets.clear()

    def configure(self, **changes: object) -> None:
        """Change limits at run time; buckets restart full."""
        with self._lock:
            for key, value in changes.items():
                if not hasattr(self.config, key):
                    raise AttributeError(f"unknown throttle setting {key!r}")
                setattr(self.config, key, value)
            self._buckets.clear()

    def _bucket(self, key: tuple[str, ...], limit: float, window: float, now: float) -> TokenBucket:
        b = self._buckets.get(key)
        cap = max(1.0, limit * self.config.scale)
        if b is None or b.capacity != cap:
            b = self._buckets[key] = TokenBucket(cap, window, now)
        return b

    def check_directory(self, app: str, tenant: str, size: str, cost: Cost) -> Decision:
        """Identity and access limits for one request; consumes on success."""
        cfg = self.config
        if not cfg.enabled:
            return Decision(True, resource_units=cost.resource_units)
        with self._lock:
            now = self.clock.time()
            ru = self._bucket(
                ("ru", app, tenant), cfg.resource_units[size], cfg.resource_unit_window, now
            )
            pair = f"{app}/{tenant}"
            checks = [
                (
                    ru,
                    cost.resource_units,
                    "ResourceUnitLimitExceeded",
                    "Tenant_Application/ReadWrite",
                )
            ]
            if cost.writes:
                aw = self._bucket(("w", app, tenant), cfg.app_writes, cfg.app_write_window, now)
                tw = self._bucket(("tw", tenant), cfg.tenant_writes, cfg.tenant_write_window, now)
                checks += [
                    (aw, cost.writes, "WriteLimitExceeded", "Tenant_Application/Write"),
                    (tw, cost.writes, "WriteLimitExceeded", "Tenant/Write"),
                ]
            for bucket, amount, info, scope in checks:
                wait = bucket.wait_for(amount, now)
                if wait > 0:
                    return self._refusal(wait, info, f"{scope}/{pair}")
            for bucket, amount, _, _ in checks:
                bucket.take(amount, now)
            headers = {"x-ms-resource-unit": str(cost.resource_units)}
            usage = max(b.usage() for b, _, _, _ in checks)
            if usage > 0.8:
                headers["x-ms-throttle-limit-percentage"] = f"{min(usage, 1.8):.1f}"
            return Decision(True, headers=headers, resource_units=cost.resource_units)

    def check_requests(self, family: str, key: str, app: str, tenant: str) -> Decision:
        """Request-count limits (sign-in logs, each report API)."""
        cfg = self.config
        if not cfg.enabled:
            return Decision(True)
        limit, window = (
            (cfg.sign_ins, cfg.sign_in_window)
            if family == "auditlogs"
            else (cfg.reports, cfg.report_window)
        )
        with self._lock:
            now = self.clock.time()
            bucket = self._bucket((family, key, app, tenant), limit, window, now)
            wait = bucket.wait_for(1, now)
            if wait > 0:
                return self._refusal(
                    wait, "RequestLimitExceeded", f"Tenant_Application/Read/{app}/{tenant}"
                )
            bucket.take(1, now)
            return Decision(True)

    def _refusal(self, wait: float, info: str, scope: str) -> Decision:
        retry = max(1, math.ceil(wait))
        headers = {"x-ms-throttle-scope": scope, "x-ms-throttle-information": info}
        if self.config.send_retry_after:
            headers["Retry-After"] = str(retry)
        return Decision(False, retry, headers, info)
