"""ACLs and topics on a secured broker, as its super user, with aiokafka's admin client.

aiokafka 0.14 has no ACL methods, but it has the protocol structs (``CreateAclsRequest_v1``
and friends, the lowest versions Kafka 4.x still accepts). ``SecureAdmin`` sends them in
batches through an ``AIOKafkaAdminClient`` (its ``_client.send``: the one private
aiokafka name used here). Each call opens its own admin client, so one ``SecureAdmin`` works
from any event loop (a session fixture's helpers are called from each test's own loop).

Kafka applies an ACL change to the broker's authorizer shortly after it answers, so
``grant`` and ``revoke`` wait (deadline-bound) until ``DescribeAcls`` on that broker shows
the change: right after they return, the worker's requests see the new permissions.

    acls = await admin.grant_worker(source, sink, group="g", transactional_prefix="tx-")
    await admin.revoke(Acl.group("g", AclOperation.READ))
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import for_code
from aiokafka.protocol.admin import (
    CreateAclsRequest_v1,
    DeleteAclsRequest_v1,
    DescribeAclsRequest_v1,
)
from aiokafka.protocol.api import Request

from .topics import TOPIC_READY_TIMEOUT, create_topic

WORKER_PRINCIPAL = "User:worker"
ACL_PROPAGATION_TIMEOUT = 15.0
CLUSTER_NAME = "kafka-cluster"  # the one name a CLUSTER resource has


class ResourceType(enum.IntEnum):
    """Kafka's ``ResourceType`` codes."""

    ANY = 1
    TOPIC = 2
    GROUP = 3
    CLUSTER = 4
    TRANSACTIONAL_ID = 5


class AclOperation(enum.IntEnum):
    """Kafka's ``AclOperation`` codes."""

    ANY = 1
    ALL = 2
    READ = 3
    WRITE = 4
    CREATE = 5
    DELETE = 6
    ALTER = 7
    DESCRIBE = 8
    CLUSTER_ACTION = 9
    DESCRIBE_CONFIGS = 10
    ALTER_CONFIGS = 11
    IDEMPOTENT_WRITE = 12


class PatternType(enum.IntEnum):
    """Kafka's ``PatternType`` codes: a literal name or a name prefix."""

    ANY = 1
    MATCH = 2
    LITERAL = 3
    PREFIXED = 4


class AclPermission(enum.IntEnum):
    """Kafka's ``AclPermissionType`` codes."""

    ANY = 1
    DENY = 2
    ALLOW = 3


@dataclass(frozen=True)
class Acl:
    """One ACL binding: ``permission principal operation resource_type:resource_name``."""

    resource_type: ResourceType
    resource_name: str
    operation: AclOperation
    principal: str = WORKER_PRINCIPAL
    pattern: PatternType = PatternType.LITERAL
    permission: AclPermission = AclPermission.ALLOW
    host: str = "*"

    @classmethod
    def topic(
        cls,
        name: str,
        operation: AclOperation,
        *,
        principal: str = WORKER_PRINCIPAL,
        prefixed: bool = False,
    ) -> Acl:
        """An ALLOW on a topic (or on every topic whose name starts with ``name``)."""
        pattern = PatternType.PREFIXED if prefixed else PatternType.LITERAL
        return cls(ResourceType.TOPIC, name, operation, principal, pattern)

    @classmethod
    def group(
        cls,
        name: str,
        operation: AclOperation = AclOperation.READ,
        *,
        principal: str = WORKER_PRINCIPAL,
        prefixed: bool = False,
    ) -> Acl:
        """An ALLOW on a consumer group (``READ`` lets a member join and commit)."""
        pattern = PatternType.PREFIXED if prefixed else PatternType.LITERAL
        return cls(ResourceType.GROUP, name, operation, principal, pattern)

    @classmethod
    def transactional_id(
        cls,
        name: str,
        operation: AclOperation,
        *,
        principal: str = WORKER_PRINCIPAL,
        prefixed: bool = True,
    ) -> Acl:
        """An ALLOW on transactional ids starting with ``name`` (or exactly ``name``)."""
        pattern = PatternType.PREFIXED if prefixed else PatternType.LITERAL
        return cls(ResourceType.TRANSACTIONAL_ID, name, operation, principal, pattern)

    @classmethod
    def cluster(cls, operation: AclOperation, *, principal: str = WORKER_PRINCIPAL) -> Acl:
        """An ALLOW on the cluster (``IDEMPOTENT_WRITE``, ``DESCRIBE``, ...)."""
        return cls(ResourceType.CLUSTER, CLUSTER_NAME, operation, principal)

    def __str__(self) -> str:
        pattern = "*" if self.pattern is PatternType.PREFIXED else ""
        return (
            f"{self.permission.name} {self.principal} {self.operation.name} "
            f"{self.resource_type.name}:{self.resource_name}{pattern}"
        )

    def _binding(self) -> tuple[int, str, int, str, str, int, int]:
        return (
            int(self.resource_type),
            self.resource_name,
            int(self.pattern),
            self.principal,
            self.host,
            int(self.operation),
            int(self.permission),
        )


def worker_acls(
    *topics: str,
    group: str | None = None,
    transactional_prefix: str | None = None,
    principal: str = WORKER_PRINCIPAL,
) -> list[Acl]:
    """Everything a worker needs, at-least-once and exactly-once.

    Each topic (input, output, metrics, dead letters): READ, WRITE, DESCRIBE and
    DESCRIBE_CONFIGS (the worker reads topic limits); the group: READ and DESCRIBE;
    transactional ids starting with ``transactional_prefix``: WRITE and DESCRIBE; the
    cluster: IDEMPOTENT_WRITE and DESCRIBE.
    """
    topic_operations = (
        AclOperation.READ,
        AclOperation.WRITE,
        AclOperation.DESCRIBE,
        AclOperation.DESCRIBE_CONFIGS,
    )
    acls = [
        Acl.topic(topic, operation, principal=principal)
        for topic in topics
        for operation in topic_operations
    ]
    if group is not None:
        acls += [
            Acl.group(group, operation, principal=principal)
            for operation in (AclOperation.READ, AclOperation.DESCRIBE)
        ]
    if transactional_prefix is not None:
        acls += [
            Acl.transactional_id(transactional_prefix, operation, principal=principal)
            for operation in (AclOperation.WRITE, AclOperation.DESCRIBE)
        ]
    acls += [
        Acl.cluster(operation, principal=principal)
        for operation in (AclOperation.IDEMPOTENT_WRITE, AclOperation.DESCRIBE)
    ]
    return acls


class AclError(Exception):
    """The broker refused an ACL change (the message names the ACL and Kafka's reason)."""


class _CreateAcls(Request[CreateAclsRequest_v1]):
    API_KEY = 30

    def __init__(self, acls: Iterable[Acl]) -> None:
        self._acls = list(acls)

    def build(self, request_struct_class: type[CreateAclsRequest_v1]) -> CreateAclsRequest_v1:
        return request_struct_class([acl._binding() for acl in self._acls])


class _DeleteAcls(Request[DeleteAclsRequest_v1]):
    API_KEY = 31

    def __init__(self, filters: Iterable[tuple[Any, ...]]) -> None:
        self._filters = list(filters)

    def build(self, request_struct_class: type[DeleteAclsRequest_v1]) -> DeleteAclsRequest_v1:
        return request_struct_class(self._filters)


class _DescribeAcls(Request[DescribeAclsRequest_v1]):
    API_KEY = 29

    def __init__(self, principal: str | None) -> None:
        self._principal = principal

    def build(self, request_struct_class: type[DescribeAclsRequest_v1]) -> DescribeAclsRequest_v1:
        return request_struct_class(
            int(ResourceType.ANY),
            None,
            int(PatternType.ANY),
            self._principal,
            None,
            int(AclOperation.ANY),
            int(AclPermission.ANY),
        )


class SecureAdmin:
    """ACLs and topics on a secured broker, as a super user.

    ``client_options`` are the keyword arguments of ``AIOKafkaAdminClient`` (bootstrap,
    security protocol, SSL context, SASL mechanism and credentials); a callable is called
    for each admin client (an ``ssl.SSLContext`` is best made per event loop).
    """

    def __init__(self, client_options: Callable[[], Mapping[str, Any]]) -> None:
        self._client_options = client_options

    @contextlib.asynccontextmanager
    async def client(self) -> AsyncIterator[AIOKafkaAdminClient]:
        """A started admin client (closed on exit)."""
        admin = AIOKafkaAdminClient(client_id="packflow-tests-admin", **self._client_options())
        await admin.start()
        try:
            yield admin
        finally:
            await admin.close()

    # -- ACLs --------------------------------------------------------------------------
    async def grant(self, *acls: Acl) -> None:
        """Create ``acls``; return once the broker's authorizer applies them."""
        if not acls:
            return
        async with self.client() as admin:
            response = await _send(admin, _CreateAcls(acls))
            for acl, (error_code, message) in zip(acls, response.creation_responses, strict=True):
                if error_code != 0:
                    reason = message or for_code(error_code).__name__
                    raise AclError(f"granting {acl} failed: {reason}")
            await _wait_for(admin, lambda present: set(acls) <= present, f"{len(acls)} new ACL(s)")

    async def revoke(self, *acls: Acl) -> int:
        """Delete exactly these ``acls``; return how many bindings the broker removed."""
        if not acls:
            return 0
        async with self.client() as admin:
            removed = await _delete(admin, [acl._binding() for acl in acls])
            await _wait_for(
                admin, lambda present: not set(acls) & present, f"{len(acls)} ACL(s) to go"
            )
            return removed

    async def revoke_all(self, principal: str = WORKER_PRINCIPAL) -> int:
        """Delete every ACL of ``principal``; return how many the broker removed."""
        every = (
            int(ResourceType.ANY),
            None,
            int(PatternType.ANY),
            principal,
            None,
            int(AclOperation.ANY),
            int(AclPermission.ANY),
        )
        async with self.client() as admin:
            removed = await _delete(admin, [every])
            await _wait_for(
                admin,
                lambda present: not any(acl.principal == principal for acl in present),
                f"every ACL of {principal} to go",
            )
            return removed

    async def acls(self, principal: str | None = None) -> set[Acl]:
        """The ACLs the broker holds (of ``principal``, or everyone's)."""
        async with self.client() as admin:
            return await _describe(admin, principal)

    async def grant_worker(
        self,
        *topics: str,
        group: str | None = None,
        transactional_prefix: str | None = None,
        principal: str = WORKER_PRINCIPAL,
    ) -> list[Acl]:
        """Grant :func:`worker_acls` and return them (to revoke one later)."""
        acls = worker_acls(
            *topics, group=group, transactional_prefix=transactional_prefix, principal=principal
        )
        await self.grant(*acls)
        return acls

    # -- topics ------------------------------------------------------------------------
    async def create_topic(
        self,
        name: str,
        partitions: int = 1,
        config: Mapping[str, str] | None = None,
        ready_within: float = TOPIC_READY_TIMEOUT,
    ) -> None:
        """Create ``name`` and wait until each of its partitions has a leader."""
        await create_topic(self.client, name, partitions, config, ready_within)


async def _send(admin: AIOKafkaAdminClient, request: Request[Any]) -> Any:
    client = admin._client
    return await client.send(client.get_random_node(), request)


async def _delete(admin: AIOKafkaAdminClient, filters: list[tuple[Any, ...]]) -> int:
    response = await _send(admin, _DeleteAcls(filters))
    removed = 0
    for error_code, message, matching in response.filter_responses:
        if error_code != 0:
            raise AclError(f"deleting ACLs failed: {message or for_code(error_code).__name__}")
        removed += len(matching)
    return removed


async def _describe(admin: AIOKafkaAdminClient, principal: str | None) -> set[Acl]:
    response = await _send(admin, _DescribeAcls(principal))
    if response.error_code != 0:
        reason = response.error_message or for_code(response.error_code).__name__
        raise AclError(f"describing ACLs failed: {reason}")
    return {
        Acl(
            ResourceType(resource_type),
            resource_name,
            AclOperation(operation),
            acl_principal,
            PatternType(pattern),
            AclPermission(permission),
            host,
        )
        for resource_type, resource_name, pattern, entries in response.resources
        for acl_principal, host, operation, permission in entries
    }


async def _wait_for(
    admin: AIOKafkaAdminClient, condition: Callable[[set[Acl]], bool], what: str
) -> None:
    """Poll DescribeAcls until ``condition`` holds for the broker's ACLs (deadline-bound)."""
    deadline = time.monotonic() + ACL_PROPAGATION_TIMEOUT
    while not condition(await _describe(admin, None)):
        if time.monotonic() >= deadline:
            raise TimeoutError(f"the broker did not apply {what} in {ACL_PROPAGATION_TIMEOUT} s")
        await asyncio.sleep(0.02)
