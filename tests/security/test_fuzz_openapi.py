"""Schemathesis against our own OpenAPI document, signed in as an organization's owner.

Every operation of ``app.openapi()`` is fuzzed with schema-valid (positive) and schema-invalid
(negative) requests, with the path ids of a real organization filled in
(`tests/security/tenant.py`) so the calls reach the handlers instead of stopping at a 404.
Every answer must be no 5xx, a status the document lists, the content type it lists for that
status and a body its schema accepts; a schema-invalid request must be refused. The API's
errors are RFC 9457 problems and the document says so (`tests/api/test_openapi.py`), so the
problems sent are checked against that schema too.

Between the operations that keep objects and those that remove them (deletes, the device's
revocation, the organization's own delete: last, so they do not turn everything after them
into 404s), a stateful run: Schemathesis infers links between operations from the document
(the ``id`` a create returns is the ``{team_id}`` of the read, update and delete of that
team...) and chains calls along them, so the reads, updates and deletes also see objects the
fuzzer made itself. The inference sometimes takes ``{org_id}`` from an object's ``id``; the
run always puts the tenant's own there. It takes seconds, so it is part of the short run.

Not checked: that every schema-valid request succeeds (Schemathesis's
``positive_data_acceptance``). Many are refused for reasons no schema can say (a team id that
is not the organization's, a revision the match does not have, a time window longer than
600 s), and those 4xx are documented problems, which the checks above do verify.

The requests go through the suite's own client on the test's event loop, where the app's
database engine and Temporal client live: Hypothesis generates in a worker thread and hands
each request to the loop (`LoopAdapter`).

``PV_FUZZ_EXAMPLES`` (examples per operation and mode, and stateful scenarios) and
``PV_FUZZ_SEED`` size and seed the run. The default is the short run ``make test`` makes;
the long one is e.g. ``PV_FUZZ_EXAMPLES=100 .venv/bin/python -m pytest
tests/security/test_fuzz_openapi.py`` (its timeout grows with the examples), and ``make chaos``
runs it with 60.
"""

from __future__ import annotations

import asyncio
import copy
import io
import os
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import hypothesis
import pytest
import requests
import schemathesis
import urllib3
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, Verbosity
from hypothesis.errors import Flaky, Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import CheckFunction
from schemathesis.core.failures import FailureGroup
from schemathesis.core.parameters import ParameterLocation
from schemathesis.generation.stateful.state_machine import StepInput, StepOutput
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from api.gateway import DEVICE_SCHEME
from polyvision.settings import Settings
from polyvision.storage.metadata.models import Role
from tests.api.factories import Factory
from tests.api.test_uploads import device_headers, open_upload
from tests.security.tenant import ORG_PARAM, Tenant, tenant_with_objects

EXAMPLES = int(os.environ.get("PV_FUZZ_EXAMPLES", "10"))
SEED = int(os.environ.get("PV_FUZZ_SEED", "19"))
BASE_URL = "http://testserver"
PATH = ParameterLocation.PATH
ORGANIZATION = "/orgs/{org_id}"
# Last of all: the device's revocation (the device routes answer 401 after it) and the
# organization's delete (every route answers 404 after it).
LAST = ["POST /orgs/{org_id}/devices/{device_id}/revoke", f"DELETE {ORGANIZATION}"]
CHECKS: list[CheckFunction] = [
    schemathesis.checks.not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
# Runs of the state machine, each after the last one stopped short (see `_fuzz_stateful`).
STATEFUL_ATTEMPTS = 3
# No request should take this long; one that does is reported, not waited for.
REQUEST_TIMEOUT_S = 60.0


@pytest.fixture
def api_settings(api_settings: Settings) -> Settings:
    """The suite's settings with the login and registration rate limit out of reach (after
    ten calls every auth operation would answer 429, and the handlers behind it would go
    unfuzzed; the limits have tests of their own in `tests/api/test_auth.py`), and a task
    queue no worker polls, so no workflow the fuzzer starts runs."""
    return api_settings.model_copy(
        update={
            "rate_limit_auth_per_minute": 1_000_000,
            "task_queue_suffix": f"-fuzz-{uuid.uuid4().hex[:8]}",
        }
    )


class LoopAdapter(requests.adapters.HTTPAdapter):
    """Sends the requests Schemathesis prepares (from a worker thread) to the app through
    the suite's client, on the event loop the app lives on."""

    def __init__(self, client: httpx.AsyncClient, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._client = client
        self._loop = loop

    def send(
        self, request: requests.PreparedRequest, *args: Any, **kwargs: Any
    ) -> requests.Response:
        body = request.body.encode() if isinstance(request.body, str) else request.body
        assert body is None or isinstance(body, bytes), "Schemathesis sends whole bodies"
        call = self._client.request(
            str(request.method),
            str(request.url),
            headers=[(name, _text(value)) for name, value in request.headers.items()],
            content=body,
        )
        answer = asyncio.run_coroutine_threadsafe(call, self._loop).result(REQUEST_TIMEOUT_S)
        # httpx has decoded the body already: the raw response must not decode it again.
        headers = urllib3.HTTPHeaderDict()
        for name, value in answer.headers.multi_items():
            if name.lower() not in {"content-encoding", "transfer-encoding"}:
                headers.add(name, value)
        raw = urllib3.HTTPResponse(
            body=io.BytesIO(answer.content),
            headers=headers,
            status=answer.status_code,
            reason=answer.reason_phrase,
            version=11,
            preload_content=False,
            request_method=request.method,
        )
        return self.build_response(request, raw)


def _text(value: str | bytes) -> str:
    # Header values travel as latin-1, which is how requests encodes the text ones.
    return value if isinstance(value, str) else value.decode("latin-1")


@dataclass
class Run:
    """What the fuzzer needs to call the app as a member of ``tenant``."""

    session: requests.Session
    tenant: Tenant
    headers: Callable[[Any], dict[str, str]]
    failures: list[str] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)
    statuses: defaultdict[str, Counter[int]] = field(default_factory=lambda: defaultdict(Counter))
    operations: int = 0
    scenarios: int = 0

    @property
    def sent(self) -> int:
        return sum(sum(counts.values()) for counts in self.statuses.values())

    def call(self, case: schemathesis.Case) -> schemathesis.Response:
        response = case.call(
            base_url=BASE_URL, session=self.session, headers=self.headers(case.operation)
        )
        self.statuses[case.operation.label][response.status_code] += 1
        return response

    def fail(self, where: str, exc: BaseException) -> None:
        report = f"{where}: {type(exc).__name__}: {exc}"
        # One report per operation and kind of failure: a scenario repeats its steps.
        key = f"{where}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
        if key not in self.seen:
            self.seen.add(key)
            self.failures.append(report[:4000])


def _config() -> schemathesis.Config:
    return schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "generation": {
                # An unknown query parameter is ignored, as HTTP APIs commonly do and as the
                # OpenAPI document allows: not an invalid request to refuse.
                "allow-extra-parameters": False,
                # The credentials are real ones (an owner's, a device's), never generated.
                "with-security-parameters": False,
            },
        }
    )


def _without_tuples(document: Any) -> Any:
    """``document`` (in place) with each tuple schema (``prefixItems``) loosened to an array
    of any of its element types, of the same length.

    Schemathesis 4.32.5 rewrites ``prefixItems`` in response schemas to the draft-4 spelling
    (``items: [...]``) and then validates with a 2020-12 validator, which rejects the schema
    itself ("is not of types boolean, object"; upstream issues #3842 and #4099 fixed other
    paths to the same rewrite). Our document is valid OpenAPI 3.1; this copy only avoids the
    tool's bug, and still checks each element's type and the tuple's length.
    """
    if isinstance(document, dict):
        elements = document.pop("prefixItems", None)
        if isinstance(elements, list):
            unique = [e for i, e in enumerate(elements) if e not in elements[:i]]
            document["items"] = unique[0] if len(unique) == 1 else {"anyOf": unique}
        for value in document.values():
            _without_tuples(value)
    elif isinstance(document, list):
        for value in document:
            _without_tuples(value)
    return document


def _destructive(operation: Any) -> bool:
    return operation.method.upper() == "DELETE" or operation.label in LAST


def _phases(schema: Any) -> tuple[list[Any], list[Any]]:
    """The operations in two groups: reads then writes, and what takes objects away (deletes
    deepest first, then the device's revocation, then the organization's own delete), so
    nothing turns the calls before it into 404s or 401s."""

    def order(operation: Any) -> tuple[int, int]:
        if operation.label in LAST:
            return (3, LAST.index(operation.label))
        if _destructive(operation):
            return (2, -operation.path.count("/"))
        return (0 if operation.method.upper() in {"GET", "HEAD"} else 1, 0)

    ordered = sorted((result.ok() for result in schema.get_all_operations()), key=order)
    return [op for op in ordered if not _destructive(op)], [
        op for op in ordered if _destructive(op)
    ]


def _settings(max_examples: int) -> hypothesis.settings:
    return hypothesis.settings(
        max_examples=max_examples,
        database=None,
        deadline=None,
        # No shrinking: the failure as found is reported with its curl command; shrinking
        # would replay against state the first attempt changed.
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        verbosity=Verbosity.quiet,
        stateful_step_count=6,
    )


def _fuzz_each_operation(operations: list[Any], run: Run) -> None:
    for operation in operations:
        run.operations += 1
        known = [p.name for p in operation.path_parameters if p.name in run.tenant.ids]
        ids = {name: run.tenant.ids[name] for name in known}
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            strategy = operation.as_strategy(generation_mode=mode, path_parameters=ids)

            @_settings(EXAMPLES)
            @hypothesis.seed(SEED)
            @hypothesis.given(case=strategy)
            def test(case: schemathesis.Case) -> None:
                case.validate_response(run.call(case), checks=CHECKS)

            try:
                test()
            except Unsatisfiable:
                # Nothing in the operation can be made invalid (no parameters and no body,
                # or only free strings): there is no negative request to send.
                continue
            except (Exception, FailureGroup) as exc:
                run.fail(f"{operation.label} ({mode.value})", exc)


def _fuzz_stateful(schema: Any, run: Run) -> None:
    base = schema.as_state_machine()

    class Scenarios(base):  # type: ignore[valid-type, misc]
        def setup(self) -> None:
            run.scenarios += 1

        def step(self, input: StepInput) -> StepOutput:
            # A link gives the id of an object made earlier in the scenario. Other ids are
            # the tenant's own (a random one is always a 404), the organization's always, but
            # a delete or revocation keeps its random id: it must not take the tenant's
            # objects away from the calls after it (the last stateless phase deletes them).
            case = input.case
            linked = {name for location, name in input.applied_parameters if location == PATH}
            removes = _destructive(case.operation)
            for name in list(case.path_parameters or ()):
                if name not in run.tenant.ids or (name in linked and name != ORG_PARAM):
                    continue
                if not removes or (name == ORG_PARAM and case.operation.path != ORGANIZATION):
                    case.path_parameters[name] = run.tenant.ids[name]
            return super().step(input)

        def call(self, case: schemathesis.Case, **kwargs: Any) -> schemathesis.Response:
            return run.call(case)

        def validate_response(
            self, response: schemathesis.Response, case: schemathesis.Case, **kwargs: Any
        ) -> None:
            # Recorded, not raised: Hypothesis would replay a failing scenario against a
            # server whose state has moved on, and report that its data generation is flaky
            # instead of the failure.
            try:
                case.validate_response(response, checks=CHECKS, recorder=self.recorder)
            except FailureGroup as exc:
                run.fail(f"{case.operation.label} (stateful)", exc)

    for attempt in range(STATEFUL_ATTEMPTS):
        left = EXAMPLES - run.scenarios
        if left <= 0:
            break
        try:
            hypothesis.seed(SEED + attempt)(Scenarios).run(settings=_settings(left))
        except Flaky:
            # A scenario drew differently when Hypothesis ran it again: the server answered
            # differently the second time (a name taken, an object gone), which is what a
            # live server does. Not a failure (failures were recorded as they happened, and
            # Schemathesis's own runner treats this the same); carry on with a new seed.
            continue
        except (Exception, FailureGroup) as exc:
            run.fail("stateful", exc)
            break


# The suite's 300 s per test, plus what the examples asked for take on a busy machine (a long
# run of 100 examples takes about 4 minutes on two cores).
@pytest.mark.timeout(300 + 5 * EXAMPLES)
async def test_fuzz_the_openapi_document_as_an_owner(
    app: FastAPI,
    client: httpx.AsyncClient,
    factory: Factory,
    record_property: Callable[[str, object], None],
) -> None:
    """Every operation of the OpenAPI document, called as an organization's owner (a device
    on the device routes) with schema-valid and schema-invalid requests and along the links
    between operations, answers no 5xx, only documented statuses, content types and bodies,
    and refuses what the document says is invalid.

    Figures: operations fuzzed (and how many answered 2xx at least once), requests sent
    (and how many in stateful scenarios), failures found, seconds.
    """
    tenant = await tenant_with_objects(app, factory)
    device = tenant.device
    assert device is not None
    upload = await open_upload(client, device_headers(device), os.urandom(1000), b"r" * 1000)
    tenant.ids["upload_id"] = upload.id
    owner = tenant.org.member(Role.owner)

    def headers(operation: Any) -> dict[str, str]:
        # A device token is single-use: each request gets a fresh one.
        security = operation.definition.raw.get("security", [])
        if any(DEVICE_SCHEME in requirement for requirement in security):
            return device.headers
        return owner.headers

    schema = schemathesis.openapi.from_dict(
        _without_tuples(copy.deepcopy(app.openapi())), config=_config()
    )
    session = requests.Session()
    session.mount("http://", LoopAdapter(client, asyncio.get_running_loop()))
    run = Run(session=session, tenant=tenant, headers=headers)

    started = time.monotonic()
    keeping, removing = _phases(schema)
    await asyncio.to_thread(_fuzz_each_operation, keeping, run)
    before = run.sent
    await asyncio.to_thread(_fuzz_stateful, schema, run)
    stateful = run.sent - before
    await asyncio.to_thread(_fuzz_each_operation, removing, run)
    elapsed = time.monotonic() - started

    succeeded = [label for label, counts in run.statuses.items() if any(s < 300 for s in counts)]
    record_property("fuzz_operations", run.operations)
    record_property("fuzz_operations_with_2xx", len(succeeded))
    record_property("fuzz_requests", run.sent)
    record_property("fuzz_requests_stateful", stateful)
    record_property("fuzz_scenarios", run.scenarios)
    record_property("fuzz_failures", len(run.failures))
    record_property("fuzz_seconds", round(elapsed, 1))
    print(
        f"fuzz: {run.operations} operations ({len(succeeded)} answered 2xx at least once), "
        f"{run.sent} requests ({stateful} in {run.scenarios} stateful scenarios), "
        f"{len(run.failures)} failures, {elapsed:.1f} s; seed {SEED}, {EXAMPLES} examples"
    )
    for label, counts in sorted(run.statuses.items()):
        print(f"  {label}: {dict(sorted(counts.items()))}")
    assert not run.failures, "\n\n".join(run.failures)
