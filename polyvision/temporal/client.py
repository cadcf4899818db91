"""The one way Polyvision processes connect to Temporal."""

from __future__ import annotations

from collections.abc import Sequence

from temporalio.client import Client, Interceptor
from temporalio.converter import DataConverter
from temporalio.runtime import Runtime

from polyvision.telemetry import tracing_interceptor
from polyvision.temporal.codec import PayloadSettings, build_codec, data_converter


async def connect(
    address: str,
    namespace: str,
    runtime: Runtime | None = None,
    *,
    identity: str | None = None,
    converter: DataConverter | None = None,
    interceptors: Sequence[Interceptor] | None = None,
) -> Client:
    """Connect a client with the pydantic data converter, the payload codec and tracing.

    The pydantic converter serializes dataclasses and pydantic models alike (and datetimes,
    UUIDs, enums), so workflow and activity inputs can be either. Its payload codec comes from
    ``PV_PAYLOAD_*`` (`polyvision.temporal.codec.PayloadSettings`): every process connecting
    here encodes and decodes payloads alike. The OpenTelemetry tracing interceptor is on every
    client, and workers built on the client inherit it (the SDK applies a client's interceptors
    that are also worker interceptors to its workers), so a trace runs from the start of a
    workflow to its last activity; spans are exported only where `configure_tracing` installed
    an exporter.

    Args:
        address: ``host:port`` of the frontend.
        namespace: The namespace every call of this client uses.
        runtime: The SDK runtime (e.g. one serving Prometheus metrics); the SDK default if None.
        identity: Client and default worker identity; the SDK's ``pid@host`` if None.
        converter: The data converter; the pydantic one with the configured codec if None.
        interceptors: Client interceptors; the tracing interceptor on the global tracer if None.

    Returns:
        A connected client.
    """
    if converter is None:
        converter = data_converter(build_codec(PayloadSettings()))
    return await Client.connect(
        address,
        namespace=namespace,
        data_converter=converter,
        runtime=runtime,
        identity=identity,
        interceptors=[tracing_interceptor()] if interceptors is None else interceptors,
    )
