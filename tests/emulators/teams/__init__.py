"""A Teams Workflows webhook emulator ("When a Teams webhook request is received" → post
the card to a channel), written from Microsoft's documentation.

``POST /workflows/{id}/triggers/manual/paths/invoke?api-version=…&sig=…`` with a JSON
``{"type": "message", "attachments": [{"contentType":
"application/vnd.microsoft.card.adaptive", "content": <AdaptiveCard>}]}`` → ``202
Accepted`` (empty body). A wrong ``sig`` → ``401`` with a JSON ``error``; an unknown or
deleted workflow → ``404``; a body that is not such a message → ``400`` with ``{"error":
{"code": "InvalidRequestContent", "message": …}}``; past the trigger's throttling → ``429``
with ``Retry-After``. ``http_error(status, times)`` answers a ``5xx`` for a while.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.emulators.common.server import LoopbackServer

CARD_TYPE = "application/vnd.microsoft.card.adaptive"
ELEMENTS = {"TextBlock", "FactSet", "ColumnSet", "Container", "Image", "RichTextBlock"}
ACTIONS = {"Action.OpenUrl", "Action.Submit", "Action.ShowCard", "Action.Execute"}


def _error(status: int, code: str, message: str, **headers: str) -> Response:
    return JSONResponse(
        {"error": {"code": code, "message": message}}, status_code=status, headers=headers
    )


@dataclass
class TeamsEmulator:
    workflow: str = "8f1b2c3d4e5f"
    sig: str = "s1gnature"
    cards: list[dict[str, Any]] = field(default_factory=list)
    requests: int = 0
    deleted: bool = False
    _faults: list[tuple[str, int]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: LoopbackServer | None = None

    def rate_limit(self, times: int = 1, retry_after: int = 1) -> None:
        self._faults.extend([("429", retry_after)] * times)

    def http_error(self, status: int, times: int = 1) -> None:
        self._faults.extend([("http", status)] * times)

    def start(self) -> TeamsEmulator:
        self._server = LoopbackServer(
            Starlette(
                routes=[
                    Route(
                        "/workflows/{wid}/triggers/manual/paths/invoke",
                        self._invoke,
                        methods=["POST"],
                    )
                ]
            ),
            name="teams-emu",
        )
        self._server.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()

    @property
    def url(self) -> str:
        assert self._server is not None
        return (
            f"{self._server.base_url}/workflows/{self.workflow}/triggers/manual/paths/invoke"
            f"?api-version=1&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig={self.sig}"
        )

    async def _invoke(self, request: Request) -> Response:
        self.requests += 1
        with self._lock:
            fault = self._faults.pop(0) if self._faults else None
        if fault is not None:
            kind, value = fault
            if kind == "429":
                return _error(
                    429,
                    "WorkflowTriggerIsThrottled",
                    "The workflow trigger is throttled; retry later.",
                    **{"Retry-After": str(value)},
                )
            return _error(value, "ServiceUnavailable", "The service is temporarily unavailable.")
        if self.deleted or request.path_params["wid"] != self.workflow:
            return _error(404, "WorkflowNotFound", "The workflow could not be found.")
        if request.query_params.get("sig") != self.sig:
            return _error(401, "DirectApiAuthorizationRequired", "The signature is not valid.")
        try:
            body = json.loads(await request.body())
        except ValueError:
            return _error(400, "InvalidRequestContent", "The request content is not valid JSON.")
        problem = _check(body)
        if problem:
            return _error(400, "InvalidRequestContent", problem)
        self.cards.extend(a["content"] for a in body["attachments"])
        return Response(status_code=202)


def _check(body: Any) -> str | None:
    if not isinstance(body, dict) or body.get("type") != "message":
        return "the body must be an object with type 'message'"
    attachments = body.get("attachments")
    if not isinstance(attachments, list) or not attachments:
        return "attachments must be a non-empty list"
    for i, att in enumerate(attachments):
        if att.get("contentType") != CARD_TYPE:
            return f"attachments[{i}].contentType must be {CARD_TYPE}"
        card = att.get("content") or {}
        if card.get("type") != "AdaptiveCard" or not card.get("version"):
            return f"attachments[{i}].content must be an AdaptiveCard with a version"
        for j, el in enumerate(card.get("body") or []):
            if el.get("type") not in ELEMENTS:
                return f"attachments[{i}].content.body[{j}].type {el.get('type')!r} unknown"
            if el.get("type") == "TextBlock" and not isinstance(el.get("text"), str):
                return f"attachments[{i}].content.body[{j}].text must be a string"
        for j, action in enumerate(card.get("actions") or []):
            if action.get("type") not in ACTIONS:
                return f"attachments[{i}].content.actions[{j}].type unknown"
            if action.get("type") == "Action.OpenUrl" and not str(action.get("url", "")).startswith(
                ("http://", "https://")
            ):
                return f"attachments[{i}].content.actions[{j}].url must be an absolute URL"
    return None
