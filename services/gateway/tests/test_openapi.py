"""schemathesis against the gateway's own /openapi.json: every operation, with generated valid and invalid
requests (a few examples each, so it stays fast), answers no 5xx but a documented 503 and no status its
document does not list. The gateway and persistence run as processes on the test servers."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import status_code_conformance

from pressroom_devstack.env import service_env, without_contract
from pressroom_devstack.objectstore import S3Info
from pressroom_devstack.provisioning import reset_nats
from pressroom_testkit.runner import ServiceRunner


@pytest.fixture(scope="module")
def services(nats_url: str, database_url: str, s3: S3Info, tmp_path_factory) -> Iterator[ServiceRunner]:
    reset_nats(nats_url)
    env = service_env(without_contract(os.environ), nats_url=nats_url, database_url=database_url, s3=s3)
    runner = ServiceRunner(env, tmp_path_factory.mktemp("openapi-logs"))
    try:
        # Generous limits: the quota is not what this checks (its 429 is documented anyway).
        runner.start("persistence", "gateway", env={"PRESSROOM_GATEWAY_JOB_RATE": "100000/minute"})
        yield runner
    finally:
        runner.stop()


def test_every_operation_answers_as_documented(services: ServiceRunner) -> None:
    # Each operation's cases are drawn from its own Hypothesis strategy (schemathesis' pytest
    # integration reaches into pytest internals that pytest 9 no longer has).
    schema = schemathesis.openapi.from_url(f"{services.gateway_url}/openapi.json")
    headers = {"Authorization": f"Bearer {services.api_token}"}
    results = list(schema.get_all_operations())
    operations = [result.ok() for result in results if isinstance(result, Ok)]
    assert len(operations) == len(results), "the OpenAPI document has operations schemathesis cannot read"
    assert len(operations) >= 10, [op.label for op in operations]
    failures: dict[str, str] = {}
    calls = 0
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=6,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def check(case: Any) -> None:
            nonlocal calls
            calls += 1
            case.call_and_validate(
                headers=headers, checks=[not_a_server_error, status_code_conformance], timeout=10
            )

        try:
            check()
        except Exception as exc:
            failures[operation.label] = str(exc)[:500]
    assert not failures, failures
    assert calls >= 3 * len(operations)  # generated cases really ran
