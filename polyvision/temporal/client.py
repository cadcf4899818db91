"""The one way Polyvision processes connect to Temporal."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.runtime import Runtime


async def connect(
    address: str,
    namespace: str,
    runtime: Runtime | None = None,
    *,
    identity: str | None = None,
) -> Client:
    """Connect a client with the pydantic data converter.

    The pydantic converter serializes dataclasses and pydantic models alike (and datetimes,
    UUIDs, enums), so workflow and activity inputs can be either.

    Args:
        address: ``host:port`` of the frontend.
        namespace: The namespace every call of this client uses.
        runtime: The SDK runtime (e.g. one serving Prometheus metrics); the SDK default if None.
        identity: Client and default worker identity; the SDK's ``pid@host`` if None.

    Returns:
        A connected client.
    """
    return await Client.connect(
        address,
        namespace=namespace,
        data_converter=pydantic_data_converter,
        runtime=runtime,
        identity=identity,
    )
