"""Bring a Temporal namespace in line with `temporal/namespace.yaml`, idempotently.

Only additive, safe changes are made: register a missing namespace, set its retention, add
missing search attributes. A search attribute that exists with another type is reported as a
conflict, never retyped or removed (that would break running workflows and saved UI filters).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TypeVar

import structlog
from google.protobuf.duration_pb2 import Duration
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.namespace.v1 import NamespaceConfig as NamespaceConfigProto
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.api.workflowservice.v1 import (
    DescribeNamespaceRequest,
    RegisterNamespaceRequest,
    UpdateNamespaceRequest,
)
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from polyvision.temporal.config import NamespaceConfig

log = structlog.get_logger(__name__)

_T = TypeVar("_T")

_INDEXED_VALUE_TYPES: dict[str, IndexedValueType.ValueType] = {
    "Text": IndexedValueType.INDEXED_VALUE_TYPE_TEXT,
    "Keyword": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
    "Int": IndexedValueType.INDEXED_VALUE_TYPE_INT,
    "Double": IndexedValueType.INDEXED_VALUE_TYPE_DOUBLE,
    "Bool": IndexedValueType.INDEXED_VALUE_TYPE_BOOL,
    "Datetime": IndexedValueType.INDEXED_VALUE_TYPE_DATETIME,
    "KeywordList": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD_LIST,
}

# A namespace registered a moment ago is not yet in every server cache; operator calls on it
# answer NOT_FOUND until the next refresh (seconds on the dev server).
_NEW_NAMESPACE_WAIT_S = 30.0


class SearchAttributeConflictError(RuntimeError):
    """A search attribute exists on the server with a different type than configured."""


@dataclass(frozen=True)
class ApplyResult:
    """What `apply_namespace` changed.

    Attributes:
        namespace: The namespace applied.
        registered: The namespace did not exist and was registered.
        retention_updated: The retention differed and was set.
        added_search_attributes: Names of the search attributes added, in config order.
    """

    namespace: str
    registered: bool = False
    retention_updated: bool = False
    added_search_attributes: tuple[str, ...] = field(default=())

    @property
    def changed(self) -> bool:
        """Whether anything was changed on the server."""
        return self.registered or self.retention_updated or bool(self.added_search_attributes)


def _duration(value: timedelta) -> Duration:
    proto = Duration()
    proto.FromTimedelta(value)
    return proto


async def _until_found(call: Callable[[], Awaitable[_T]], what: str) -> _T:
    """Await `call`, retrying while the server still answers NOT_FOUND for a new namespace."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + _NEW_NAMESPACE_WAIT_S
    delay = 0.05
    while True:
        try:
            return await call()
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND or loop.time() + delay > deadline:
                raise
            log.debug("temporal.namespace.not_visible_yet", what=what, retry_in_s=delay)
        await asyncio.sleep(delay)
        delay = min(delay * 2, 1.0)


async def apply_namespace(
    client: Client, config: NamespaceConfig, *, rpc_timeout_s: float = 10.0
) -> ApplyResult:
    """Register or update the namespace so it matches `config`.

    Safe to run on every deploy and every test session: a second call changes nothing and
    returns a result whose `changed` is false.

    Args:
        client: Any connected client; its own namespace does not matter.
        config: The desired namespace.
        rpc_timeout_s: Timeout of each RPC.

    Returns:
        What was changed.

    Raises:
        SearchAttributeConflictError: A configured search attribute exists with another type.
        temporalio.service.RPCError: The server refused a call.
    """
    timeout = timedelta(seconds=rpc_timeout_s)
    wf = client.workflow_service
    op = client.operator_service
    retention = _duration(config.retention)
    registered = False
    retention_updated = False

    try:
        described = await wf.describe_namespace(
            DescribeNamespaceRequest(namespace=config.name), timeout=timeout
        )
    except RPCError as err:
        if err.status != RPCStatusCode.NOT_FOUND:
            raise
        described = None

    if described is None:
        try:
            await wf.register_namespace(
                RegisterNamespaceRequest(
                    namespace=config.name,
                    description=config.description,
                    workflow_execution_retention_period=retention,
                ),
                timeout=timeout,
            )
            registered = True
        except RPCError as err:
            # Another process applying the same config got there first: not our change.
            if err.status != RPCStatusCode.ALREADY_EXISTS:
                raise
        described = await _until_found(
            lambda: wf.describe_namespace(
                DescribeNamespaceRequest(namespace=config.name), timeout=timeout
            ),
            "describe_namespace",
        )
    current = described.config.workflow_execution_retention_ttl
    if current.ToTimedelta() != config.retention:
        await wf.update_namespace(
            UpdateNamespaceRequest(
                namespace=config.name,
                config=NamespaceConfigProto(workflow_execution_retention_ttl=retention),
            ),
            timeout=timeout,
        )
        retention_updated = True

    listed = await _until_found(
        lambda: op.list_search_attributes(
            ListSearchAttributesRequest(namespace=config.name), timeout=timeout
        ),
        "list_search_attributes",
    )
    existing: dict[str, IndexedValueType.ValueType] = dict(listed.custom_attributes)
    missing: dict[str, IndexedValueType.ValueType] = {}
    for spec in config.search_attributes:
        wanted = _INDEXED_VALUE_TYPES[spec.type]
        have = existing.get(spec.name)
        if have is None:
            missing[spec.name] = wanted
        elif have != wanted:
            raise SearchAttributeConflictError(
                f"search attribute {spec.name} is {IndexedValueType.Name(have)} in namespace "
                f"{config.name}, config wants {spec.type}; retyping needs a new attribute name"
            )
    if missing:
        await _until_found(
            lambda: op.add_search_attributes(
                AddSearchAttributesRequest(search_attributes=missing, namespace=config.name),
                timeout=timeout,
            ),
            "add_search_attributes",
        )
    result = ApplyResult(
        namespace=config.name,
        registered=registered,
        retention_updated=retention_updated,
        added_search_attributes=tuple(missing),
    )
    log.info(
        "temporal.namespace.applied",
        namespace=config.name,
        changed=result.changed,
        registered=registered,
        retention_updated=retention_updated,
        added_search_attributes=list(missing),
    )
    return result
