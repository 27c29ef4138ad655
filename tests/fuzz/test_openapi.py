"""schemathesis over the OpenAPI schema of a real `nextstep serve` on SQLite: whatever a
caller sends, in any shape the schema allows or not, the answer is never a 5xx.

Both phases are bounded (a fixed number of examples per operation, a fixed number of
stateful scenarios) so the module runs well under two minutes on a loaded machine.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error

from app.config import load_settings
from app.main import create_app
from tests.helpers.serve import Server, serve

AUTH = {"Authorization": "Bearer test-key"}
FUZZ = settings(
    max_examples=50,
    deadline=None,
    database=None,
    derandomize=True,  # the same cases on every run: a red run can be replayed
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
STATEFUL = settings(FUZZ, max_examples=60, stateful_step_count=10)

#: Every status answered, by class, for the closing figures (printed with -s).
answered: Counter[str] = Counter()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("fuzz")
    env = {"NEXTSTEP_SANDBOX": "true", "NEXTSTEP_INTERNAL_DOMAINS": "seller.io"}
    with serve(env, tmp) as srv:
        srv.ids = _seed(srv)  # type: ignore[attr-defined]
        yield srv
    print(f"\nfuzz: {sum(answered.values())} requests, by status class: {dict(answered)}")


def _seed(srv: Server) -> dict[str, str]:
    """Reps with meetings that ended: the ids the fuzzer puts in paths (and links lead to)."""
    now = datetime.now(UTC).replace(microsecond=0)
    with srv.client() as http:
        for n, rep in enumerate(("anne@seller.io", "paul@seller.io")):
            for hours in (3, 30):
                start = now - timedelta(hours=hours + n)
                r = http.post(
                    f"/sandbox/calendars/{rep}/events",
                    json={
                        "title": f"Acme discovery {hours}",
                        "start": start.isoformat(),
                        "end": (start + timedelta(hours=1)).isoformat(),
                        "attendees": [{"email": "dana@acme.com"}],
                    },
                )
                assert r.status_code == 201, r.text
            r = http.post(
                "/v1/reps", json={"email": rep, "provider": "sandbox", "timezone": "Europe/Paris"}
            )
            assert r.status_code == 201, r.text
        meetings = http.get("/v1/meetings").json()["items"]
        assert meetings
        # The fuzzer may delete the rep and the account it is given: neither is the one the
        # meeting it is given belongs to.
        spare = {"email": "spare@seller.io", "provider": "sandbox", "timezone": "Europe/Paris"}
        rep = http.post("/v1/reps", json=spare).json()
        assert http.put("/v1/accounts/globex.com", json={"name": "Globex"}).status_code == 200
    return {"meeting_id": meetings[0]["id"], "rep_id": rep["id"], "domain": "globex.com"}


@pytest.fixture(scope="module")
def api_schema(server: Server) -> schemathesis.BaseSchema:
    # Valid and invalid data both, and the coverage phase's boundary values (huge integers,
    # far dates, empty and oversized strings) on top of random ones.
    # Path parameters are real ids, so bodies get past the 404 to the code that uses them.
    config = schemathesis.Config.from_dict(
        {
            "generation": {"mode": "all"},
            "phases": {"coverage": {"enabled": True}},
            "parameters": server.ids,  # type: ignore[attr-defined]
        }
    )
    return schemathesis.openapi.from_url(f"{server.url}/openapi.json", config=config)


schema = schemathesis.pytest.from_fixture("api_schema")


def _record(status: int) -> None:
    answered[str(status)] += 1


@schema.parametrize()
@FUZZ
def test_no_operation_answers_a_5xx(case: schemathesis.Case) -> None:
    response = case.call_and_validate(headers=AUTH, checks=[not_a_server_error])
    _record(response.status_code)


def test_no_sequence_of_calls_answers_a_5xx(api_schema: schemathesis.BaseSchema) -> None:
    class Workflow(api_schema.as_state_machine()):  # type: ignore[misc]
        def get_call_kwargs(self, case: schemathesis.Case) -> dict[str, object]:
            return {"headers": AUTH}

        def validate_response(self, response, case, **kwargs):  # type: ignore[no-untyped-def]
            _record(response.status_code)
            case.validate_response(response, checks=[not_a_server_error], headers=AUTH)

    Workflow.run(settings=STATEFUL)


def test_every_integer_a_caller_sends_has_bounds_the_database_holds(tmp_path) -> None:
    """The fuzzer found `offset=<2**64>` reaching SQLite; the schema now says the bounds."""
    settings_ = load_settings(database_url=f"sqlite:///{tmp_path}/x.db", sandbox=True)
    doc = create_app(settings_).openapi()
    unbounded = []

    def walk(node: object, where: str) -> None:
        if isinstance(node, dict):
            if node.get("type") == "integer" and "maximum" not in node:
                unbounded.append(where)
            for key, value in node.items():
                walk(value, f"{where}/{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{where}/{i}")

    for path, operations in doc["paths"].items():
        for method, op in operations.items():
            walk(op.get("parameters", []), f"{method.upper()} {path}")
            walk(op.get("requestBody", {}), f"{method.upper()} {path} body")
    # Request bodies refer to components: those named *In are the ones callers send.
    for name, component in doc["components"]["schemas"].items():
        if name.endswith("In"):
            walk(component, name)
    assert not unbounded, unbounded
