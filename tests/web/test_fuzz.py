"""The JSON API fuzzed from its own OpenAPI document (schemathesis) against ``crmbridge
serve`` running as its own process: no request may make it fail with a server error."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from tests.web.conftest import PEOPLE_PROFILE, make_people
from tests.web.serving import Served, serve

pytestmark = pytest.mark.slow
#: generated requests per operation
EXAMPLES = 25


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("fuzz")
    folder = root / "work"
    folder.mkdir()
    make_people(folder)
    (folder / "people.yaml").write_text(PEOPLE_PROFILE, encoding="utf-8")
    with serve(folder, root / "home") as running:
        yield running


def test_no_request_is_a_server_error(served: Served) -> None:
    headers = {"Authorization": f"Bearer {served.token}"}
    schema = schemathesis.openapi.from_url(f"{served.url}/openapi.json", headers=headers)
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 20
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
            derandomize=True,
        )
        def fuzz(case: schemathesis.Case) -> None:
            case.call_and_validate(headers=headers, checks=[not_a_server_error])

        try:
            fuzz()
        except (
            Exception,
            BaseExceptionGroup,
        ) as err:  # every operation is tried; all failures reported at once
            failures.append(f"{operation.label}: {str(err)[:2000]}")
    assert not failures, "\n\n".join(failures)
