"""Request bodies: over NEXTSTEP_MAX_BODY_BYTES → 413 (declared or streamed), a non-JSON
body on the JSON API → 415; provider webhooks keep their own rules."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from app.main import create_app
from tests.helpers.serve import serve

LIMIT = 4096
REP = {"email": "rep@seller.io", "provider": "sandbox", "timezone": "Europe/Paris"}


@pytest.fixture
async def api(rt) -> AsyncIterator[httpx.AsyncClient]:
    rt.settings = rt.settings.model_copy(update={"max_body_bytes": LIMIT})
    app = create_app(runtime=rt, start_scheduler=False)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://test",
        headers={"Authorization": "Bearer test-key"},
    ) as client:
        yield client


def _padded(size: int) -> bytes:
    """A JSON rep registration of exactly ``size`` bytes (padded with spaces)."""
    body = json.dumps(REP).encode()
    return body + b" " * (size - len(body))


async def _chunks(body: bytes, size: int = 512) -> AsyncIterator[bytes]:
    for i in range(0, len(body), size):
        yield body[i : i + size]


async def test_a_declared_body_over_the_limit_is_413_and_nothing_happens(api) -> None:
    r = await api.post(
        "/v1/reps", content=_padded(LIMIT + 1), headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 413
    assert r.json() == {"detail": f"request body is larger than {LIMIT} bytes"}
    assert (await api.get("/v1/reps")).json()["items"] == []


async def test_a_body_at_the_limit_is_taken(api) -> None:
    r = await api.post(
        "/v1/reps", content=_padded(LIMIT), headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 201, r.text


async def test_a_streamed_body_is_counted_as_it_comes(api) -> None:
    headers = {"Content-Type": "application/json"}
    r = await api.post("/v1/reps", content=_chunks(_padded(LIMIT + 1)), headers=headers)
    assert "content-length" not in r.request.headers  # chunked: only counting can tell
    assert r.status_code == 413 and "larger than" in r.json()["detail"]
    assert (await api.get("/v1/reps")).json()["items"] == []
    r = await api.post("/v1/reps", content=_chunks(_padded(LIMIT)), headers=headers)
    assert r.status_code == 201, r.text  # under the limit, the app sees the whole body


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"],
)
async def test_a_body_that_is_not_json_on_the_api_is_415(api, content_type) -> None:
    r = await api.post("/v1/reps", content=json.dumps(REP), headers={"Content-Type": content_type})
    assert r.status_code == 415
    assert r.json()["detail"] == f"Content-Type must be application/json (got {content_type!r})"
    r = await api.post(
        "/sandbox/calendars/rep@seller.io/events",
        content=b"title=x",
        headers={"Content-Type": content_type},
    )
    assert r.status_code == 415
    assert (await api.get("/v1/reps")).json()["items"] == []


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "application/json; charset=utf-8", "Application/JSON"],
)
async def test_json_bodies_are_taken(api, content_type) -> None:
    headers = {"Content-Type": content_type}
    r = await api.post("/v1/reps", content=json.dumps(REP).encode(), headers=headers)
    assert r.status_code == 201, r.text


async def test_a_body_without_a_content_type_is_415(api) -> None:
    r = await api.post("/v1/reps", content=json.dumps(REP).encode())
    assert "content-type" not in r.request.headers
    assert r.status_code == 415
    assert r.json()["detail"] == "Content-Type must be application/json (none given)"


async def test_a_bodiless_post_is_not_asked_for_a_content_type(api) -> None:
    r = await api.post("/v1/meetings/nope/waive", headers={"Content-Type": "text/plain"})
    assert r.status_code in (404, 422)  # the app answers; not 415


async def test_provider_webhooks_keep_their_own_rules(api) -> None:
    # Graph's validation handshake: text/plain (or no body), answered with the token.
    for path in ("/webhooks/microsoft", "/webhooks/microsoft/lifecycle"):
        r = await api.post(
            path, params={"validationToken": "abc"}, headers={"Content-Type": "text/plain"}
        )
        assert r.status_code == 200 and r.text == "abc"
    # Google posts no body: refused for its unknown channel, not for a content type.
    r = await api.post("/webhooks/google", headers={"X-Goog-Channel-ID": "nope"})
    assert r.status_code not in (413, 415)
    # ...but a body too large is too large everywhere.
    r = await api.post("/webhooks/microsoft", content=b"x" * (LIMIT + 1))
    assert r.status_code == 413


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp: Path = tmp_path_factory.mktemp("bodies")
    env = {"NEXTSTEP_SANDBOX": "true", "NEXTSTEP_INTERNAL_DOMAINS": "seller.io"}
    with serve(env, tmp) as srv:
        yield srv.url


def test_a_real_server_refuses_large_and_chunked_bodies_with_the_default_limit(server) -> None:
    headers = {"Authorization": "Bearer test-key", "Content-Type": "application/json"}
    mib = 1048576
    with httpx.Client(base_url=server, headers=headers, timeout=30) as c:
        r = c.post("/v1/reps", content=_padded(mib + 1))
        assert r.status_code == 413 and r.json()["detail"].endswith(f"{mib} bytes")

        def chunked(body: bytes) -> Iterator[bytes]:
            for i in range(0, len(body), 65536):
                yield body[i : i + 65536]

        r = c.post("/v1/reps", content=chunked(_padded(mib + 1)))
        assert r.status_code == 413
        r = c.post("/v1/reps", content=json.dumps(REP), headers={"Content-Type": "text/plain"})
        assert r.status_code == 415
        r = c.post("/v1/reps", content=chunked(_padded(mib)))
        assert r.status_code == 201, r.text
        r = c.post(
            "/webhooks/microsoft",
            params={"validationToken": "tok"},
            headers={"Content-Type": "text/plain"},
        )
        assert r.status_code == 200 and r.text == "tok"
