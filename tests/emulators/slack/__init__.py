"""A Slack Web API emulator (the two methods the bot uses), written from Slack's reference.

- ``users.lookupByEmail`` (GET or POST form; ``email``): ``{"ok": true, "user": {...}}`` or
  ``{"ok": false, "error": "users_not_found"}``; scope ``users:read.email``.
- ``chat.postMessage`` (POST JSON, ``Authorization: Bearer``): ``channel`` a user id (the
  bot's DM with them), a ``D…`` conversation id; ``text`` and/or ``blocks``;
  ``{"ok": true, "channel": "D…", "ts": "…", "message": {...}}``; errors ``channel_not_found``,
  ``no_text``, ``invalid_blocks``, ``msg_too_long``; scope ``chat:write``.
- Every method: HTTP 200 with ``ok: false`` for ``not_authed`` (no token), ``invalid_auth``
  (wrong token), ``missing_scope`` (with ``needed``/``provided``); HTTP 429 with
  ``Retry-After`` and ``{"ok": false, "error": "ratelimited"}`` past the rate limit.

Faults: ``rate_limit(method, times, retry_after)``, ``fail_next(method, error)`` (``ok:
false``), ``http_error(method, status)`` (e.g. 503 for a while).
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.emulators.common.server import LoopbackServer

SCOPES = frozenset({"chat:write", "users:read", "users:read.email"})
NEEDS = {"users.lookupByEmail": "users:read.email", "chat.postMessage": "chat:write"}
MAX_BLOCKS = 50
MAX_ACTIONS = 25
MAX_BUTTON_TEXT = 75
MAX_URL = 3000
MAX_SECTION = 3000
MAX_TEXT = 40000


@dataclass
class Posted:
    channel: str
    user: str
    text: str
    blocks: list[dict[str, Any]]
    ts: str
    raw: dict[str, Any]


@dataclass
class SlackEmulator:
    token: str = "xoxb-test-token"
    scopes: frozenset[str] = SCOPES
    users: dict[str, str] = field(default_factory=dict)  # e-mail → user id
    messages: list[Posted] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)
    _faults: dict[str, list[tuple[str, Any]]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _ids: Any = field(default_factory=lambda: itertools.count(1))
    _server: LoopbackServer | None = None

    # --- setup -------------------------------------------------------------------------

    def add_user(self, email: str) -> str:
        uid = f"U{next(self._ids):08d}"
        self.users[email.lower()] = uid
        return uid

    def rate_limit(self, method: str, times: int = 1, retry_after: int = 1) -> None:
        self._faults.setdefault(method, []).extend([("429", retry_after)] * times)

    def fail_next(self, method: str, error: str, times: int = 1) -> None:
        self._faults.setdefault(method, []).extend([("error", error)] * times)

    def http_error(self, method: str, status: int, times: int = 1) -> None:
        self._faults.setdefault(method, []).extend([("http", status)] * times)

    def dms(self, email: str) -> list[Posted]:
        uid = self.users[email.lower()]
        return [m for m in self.messages if m.user == uid]

    # --- serving -----------------------------------------------------------------------

    def start(self) -> SlackEmulator:
        self._server = LoopbackServer(self.app(), name="slack-emu")
        self._server.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()

    @property
    def api_root(self) -> str:
        assert self._server is not None
        return f"{self._server.base_url}/api/"

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/api/{method}", self._handle, methods=["GET", "POST"])])

    # --- the Web API ---------------------------------------------------------------------

    async def _handle(self, request: Request) -> Response:
        method = request.path_params["method"]
        self.calls.append(method)
        with self._lock:
            queued = self._faults.get(method) or []
            fault = queued.pop(0) if queued else None
        if fault is not None:
            kind, value = fault
            if kind == "429":
                return JSONResponse(
                    {"ok": False, "error": "ratelimited"},
                    status_code=429,
                    headers={"Retry-After": str(value)},
                )
            if kind == "http":
                return Response("upstream trouble", status_code=value)
            return JSONResponse({"ok": False, "error": value})
        body, form = await self._read(request)
        token = self._token(request, form)
        if token is None:
            return JSONResponse({"ok": False, "error": "not_authed"})
        if token != self.token:
            return JSONResponse({"ok": False, "error": "invalid_auth"})
        needed = NEEDS.get(method)
        if needed is None:
            return JSONResponse({"ok": False, "error": "unknown_method"}, status_code=404)
        if needed not in self.scopes:
            return JSONResponse(
                {
                    "ok": False,
                    "error": "missing_scope",
                    "needed": needed,
                    "provided": ",".join(sorted(self.scopes)),
                }
            )
        if method == "users.lookupByEmail":
            return self._lookup({**form, **body})
        if request.method != "POST":
            return JSONResponse({"ok": False, "error": "method_not_supported_for_channel_type"})
        return self._post({**form, **body})

    async def _read(self, request: Request) -> tuple[dict[str, Any], dict[str, str]]:
        form = {k: v[0] for k, v in parse_qs(request.url.query).items()}
        raw = await request.body()
        ctype = request.headers.get("content-type", "")
        if raw and ctype.startswith("application/json"):
            try:
                doc = json.loads(raw)
            except ValueError:
                doc = {"__invalid__": True}
            return (doc if isinstance(doc, dict) else {"__invalid__": True}), form
        if raw:
            form.update({k: v[0] for k, v in parse_qs(raw.decode()).items()})
        return {}, form

    @staticmethod
    def _token(request: Request, form: dict[str, str]) -> str | None:
        header = request.headers.get("authorization", "")
        if header.lower().startswith("bearer "):
            return header[7:].strip() or None
        return form.get("token")

    def _lookup(self, args: dict[str, Any]) -> Response:
        email = str(args.get("email") or "").lower()
        if not email:
            return JSONResponse({"ok": False, "error": "invalid_arguments"})
        uid = self.users.get(email)
        if uid is None:
            return JSONResponse({"ok": False, "error": "users_not_found"})
        return JSONResponse(
            {
                "ok": True,
                "user": {
                    "id": uid,
                    "team_id": "T0000001",
                    "name": email.split("@")[0],
                    "deleted": False,
                    "profile": {"email": email},
                },
            }
        )

    def _post(self, args: dict[str, Any]) -> Response:
        if args.get("__invalid__"):
            return JSONResponse({"ok": False, "error": "invalid_json"})
        channel = str(args.get("channel") or "")
        user = channel if channel in self.users.values() else None
        if user is None and channel.startswith("D"):
            user = "U" + channel[1:]
        if user is None or user not in self.users.values():
            return JSONResponse({"ok": False, "error": "channel_not_found"})
        text = args.get("text") or ""
        blocks = args.get("blocks") or []
        if not text and not blocks:
            return JSONResponse({"ok": False, "error": "no_text"})
        if len(str(text)) > MAX_TEXT:
            return JSONResponse({"ok": False, "error": "msg_too_long"})
        problem = _check_blocks(blocks)
        if problem:
            return JSONResponse({"ok": False, "error": "invalid_blocks", "errors": [problem]})
        ts = f"{time.time():.6f}"
        self.messages.append(
            Posted(channel=channel, user=user, text=str(text), blocks=blocks, ts=ts, raw=args)
        )
        dm = "D" + user[1:]
        return JSONResponse(
            {"ok": True, "channel": dm, "ts": ts, "message": {"text": text, "ts": ts}}
        )


def _check_blocks(blocks: Any) -> str | None:
    if not isinstance(blocks, list) or len(blocks) > MAX_BLOCKS:
        return f"blocks must be a list of at most {MAX_BLOCKS}"
    for i, block in enumerate(blocks):
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "section":
            text = (block.get("text") or {}).get("text", "")
            if not text or len(text) > MAX_SECTION:
                return f"blocks[{i}].text must be 1-{MAX_SECTION} characters"
        elif kind == "actions":
            elements = block.get("elements") or []
            if not elements or len(elements) > MAX_ACTIONS:
                return f"blocks[{i}].elements must be 1-{MAX_ACTIONS}"
            for j, el in enumerate(elements):
                if el.get("type") != "button":
                    return f"blocks[{i}].elements[{j}].type must be button"
                label = (el.get("text") or {}).get("text", "")
                if (el.get("text") or {}).get("type") != "plain_text" or not label:
                    return f"blocks[{i}].elements[{j}].text must be plain_text"
                if len(label) > MAX_BUTTON_TEXT:
                    return f"blocks[{i}].elements[{j}].text longer than {MAX_BUTTON_TEXT}"
                url = el.get("url", "")
                if url and (len(url) > MAX_URL or not url.startswith(("http://", "https://"))):
                    return f"blocks[{i}].elements[{j}].url invalid"
        elif kind not in ("divider", "context", "header", "image"):
            return f"blocks[{i}].type {kind!r} is not a block type"
    return None
