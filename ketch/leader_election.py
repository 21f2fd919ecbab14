"""Leader election on a coordination.k8s.io/v1 Lease, as client-go's leaderelection does.

Several replicas of a scheduler or controller-manager may run; only the one
holding the Lease acts. The holder renews ``renewTime`` every ``retry_period``;
another candidate takes over once ``renewTime + leaseDurationSeconds`` has
passed without a renewal. Every write is guarded by resourceVersion, so two
candidates racing for an expired lease cannot both win.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from ketch.api.errors import ApiError
from ketch.api.resources import lookup
from ketch.api.timeutil import format_rfc3339_micro as micro_time
from ketch.api.timeutil import parse_rfc3339
from ketch.client.aio import AsyncClient

log = logging.getLogger("ketch.leader_election")

LEASES = lookup("coordination.k8s.io", "v1", "leases")


def default_identity() -> str:
    return f"{socket.gethostname()}_{uuid.uuid4().hex[:8]}"


class LeaderElector:
    """Hold a Lease while running ``lead``; give it up when ``lead`` ends or renewal fails."""

    def __init__(
        self,
        client: AsyncClient,
        name: str,
        *,
        namespace: str = "kube-system",
        identity: str | None = None,
        lease_duration: float = 15.0,
        renew_deadline: float = 10.0,
        retry_period: float = 2.0,
    ) -> None:
        self.client = client
        self.name = name
        self.namespace = namespace
        self.identity = identity or default_identity()
        self.lease_duration = lease_duration
        self.renew_deadline = renew_deadline
        self.retry_period = retry_period
        self.is_leader = False

    async def run(self, lead: Callable[[], Awaitable[None]]) -> None:
        """Wait to acquire, then run ``lead`` until it returns or leadership is lost."""
        while True:
            while not await self.try_acquire_or_renew():
                await asyncio.sleep(self.retry_period)
            self.is_leader = True
            log.info("leader_election lease=%s/%s identity=%s acquired", self.namespace, self.name, self.identity)
            work = asyncio.create_task(lead())
            renew = asyncio.create_task(self._keep_renewing())
            try:
                done, _ = await asyncio.wait({work, renew}, return_when=asyncio.FIRST_COMPLETED)
            except asyncio.CancelledError:  # shutting down: hand the Lease over now
                self.is_leader = False
                for task in (work, renew):
                    task.cancel()
                await asyncio.gather(work, renew, return_exceptions=True)
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self.release(), 3)
                raise
            self.is_leader = False
            for task in (work, renew):
                if task not in done:
                    task.cancel()
            await asyncio.gather(work, renew, return_exceptions=True)
            if work in done:
                await self.release()
                work.result()
                return
            log.warning("leader_election lease=%s/%s identity=%s lost", self.namespace, self.name, self.identity)

    async def _keep_renewing(self) -> None:
        last_renewed = asyncio.get_running_loop().time()
        while True:
            await asyncio.sleep(self.retry_period)
            try:
                ok = await self.try_acquire_or_renew()
            except Exception as err:  # noqa: BLE001 - any failure counts against the deadline
                log.warning("leader_election renew error=%r", err)
                ok = False
            now = asyncio.get_running_loop().time()
            if ok:
                last_renewed = now
            elif now - last_renewed > self.renew_deadline:
                return

    async def try_acquire_or_renew(self) -> bool:
        now = datetime.now(UTC)
        try:
            lease = await self.client.get(LEASES, self.name, self.namespace)
        except ApiError as err:
            if err.code != 404:
                raise
            return await self._create(now)
        spec = lease.setdefault("spec", {})
        holder = spec.get("holderIdentity")
        if holder and holder != self.identity:
            renewed = spec.get("renewTime") or spec.get("acquireTime")
            duration = spec.get("leaseDurationSeconds") or self.lease_duration
            if renewed and parse_rfc3339(renewed) + timedelta(seconds=duration) > now:
                return False
        if holder != self.identity:
            spec["acquireTime"] = micro_time(now)
            spec["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + (1 if holder else 0)
        spec["holderIdentity"] = self.identity
        spec["leaseDurationSeconds"] = int(self.lease_duration)
        spec["renewTime"] = micro_time(now)
        try:
            await self.client.update(LEASES, lease)
        except ApiError as err:
            if err.code == 409:
                return False
            raise
        return True

    async def _create(self, now: datetime) -> bool:
        lease = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": self.name, "namespace": self.namespace},
            "spec": {
                "holderIdentity": self.identity,
                "leaseDurationSeconds": int(self.lease_duration),
                "acquireTime": micro_time(now),
                "renewTime": micro_time(now),
                "leaseTransitions": 0,
            },
        }
        try:
            await self.client.create(LEASES, lease)
        except ApiError as err:
            if err.code == 409:
                return False
            raise
        return True

    async def release(self) -> None:
        """Let another candidate take over at once instead of after the lease runs out."""
        try:
            lease = await self.client.get(LEASES, self.name, self.namespace)
            if lease.get("spec", {}).get("holderIdentity") != self.identity:
                return
            # As client-go does: no holder, and a lease that expires in a second.
            lease["spec"].pop("holderIdentity", None)
            lease["spec"]["leaseDurationSeconds"] = 1
            await self.client.update(LEASES, lease)
        except (ApiError, OSError) as err:
            log.info("leader_election release error=%r", err)
