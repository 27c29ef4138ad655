"""`nextstep serve` wired to the Google emulator, for end-to-end tests and benches.

    with GoogleEmulator.start() as emu:
        key = setup_google(emu, tmp_path, reps=["anne@corp.test"]).key_file
        with serve(google_serve_env(emu, key, tmp_path), tmp_path) as srv, srv.client() as api:
            rep = register(api, "anne@corp.test")

``push`` sends a notification shaped like Google's (headers only) to a running serve:
the benches use it for load, the tests to forge notifications.
"""

from __future__ import annotations

from datetime import datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import httpx

from tests.emulators.google.emulator import GoogleEmulator

INTERNAL = "corp.test"

FAST_POLICY = """\
policies:
  - name: fast
    invite_within: PT2S
    accept_within: PT30S
    horizon: P14D
    follow_up_duration: PT15M
    escalate_after: PT60S
"""


def google_serve_env(
    emu: GoogleEmulator,
    key_file: Path,
    directory: Path,
    *,
    policy: str = FAST_POLICY,
    **extra: str,
) -> dict[str, str]:
    """Environment for ``tests.helpers.serve.serve`` with Google pointed at ``emu``."""
    policy_file = directory / "policy.yaml"
    policy_file.write_text(policy)
    return {
        "NEXTSTEP_GOOGLE_SERVICE_ACCOUNT_FILE": str(key_file),
        "NEXTSTEP_GOOGLE_API_ROOT": emu.api_root,
        "NEXTSTEP_INTERNAL_DOMAINS": INTERNAL,
        "NEXTSTEP_POLICY_FILE": str(policy_file),
        "NEXTSTEP_POLL_SECONDS": "0.5",
        **extra,
    }


def register(api: httpx.Client, email: str, **fields: Any) -> dict[str, Any]:
    """POST /v1/reps for a Google rep; returns the rep (201 expected)."""
    body = {"email": email, "provider": "google", "timezone": "UTC", **fields}
    response = api.post("/v1/reps", json=body)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def meetings(api: httpx.Client, rep_id: str) -> dict[str, dict[str, Any]]:
    """The rep's meetings by provider event id."""
    items = api.get("/v1/meetings", params={"rep_id": rep_id}).json()["items"]
    return {m["event_id"]: m for m in items}


def push(
    client: httpx.Client,
    url: str,
    *,
    channel_id: str,
    token: str | None,
    resource_id: str,
    number: int,
    state: str = "exists",
    expires_at: datetime | None = None,
) -> httpx.Response:
    """POST one Google-shaped push notification (no body, X-Goog-* headers) to ``url``."""
    headers = {
        "X-Goog-Channel-ID": channel_id,
        "X-Goog-Resource-ID": resource_id,
        "X-Goog-Resource-State": state,
        "X-Goog-Message-Number": str(number),
        "X-Goog-Resource-URI": "https://www.googleapis.com/calendar/v3/calendars/x/events",
    }
    if token is not None:
        headers["X-Goog-Channel-Token"] = token
    if expires_at is not None:
        headers["X-Goog-Channel-Expiration"] = format_datetime(expires_at, usegmt=True)
    return client.post(url, headers=headers, content=b"")
