"""Typed keys of the custom search attributes declared in `temporal/namespace.yaml`.

Workflows upsert them with `workflow.upsert_search_attributes([MATCH_ID.value_set(...)])`; the
API and tests query them (`MatchId="..."`). Pure definitions: safe to import from workflow code.
"""

from __future__ import annotations

from temporalio.common import SearchAttributeKey

MATCH_ID = SearchAttributeKey.for_keyword("MatchId")
ORGANIZATION_ID = SearchAttributeKey.for_keyword("OrganizationId")
DEVICE_ID = SearchAttributeKey.for_keyword("DeviceId")
PIPELINE_STAGE = SearchAttributeKey.for_keyword("PipelineStage")

#: Every custom key; a test checks namespace.yaml declares exactly these.
ALL_KEYS: tuple[SearchAttributeKey[str], ...] = (
    MATCH_ID,
    ORGANIZATION_ID,
    DEVICE_ID,
    PIPELINE_STAGE,
)
