"""A Salesforce emulator: the OAuth 2.0 client-credentials token endpoint and the REST API
v60.0 parts NextStep uses (``query`` with the SOQL it sends, ``sobjects/Task`` create and
update, ``sobjects/Opportunity`` update), written from Salesforce's reference.

Errors are Salesforce's: a JSON list ``[{"message", "errorCode", "fields"?}]`` —
``401 INVALID_SESSION_ID`` for a missing, wrong or expired token, ``400
MALFORMED_QUERY``, ``INVALID_CROSS_REFERENCE_KEY`` (``WhatId``), ``STRING_TOO_LONG``,
``INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST`` (``Status``), ``404 NOT_FOUND``, and the API
limit ``403 REQUEST_LIMIT_EXCEEDED``; the token endpoint answers ``400 {"error":
"invalid_client", "error_description"}``.

Faults: ``limit_exceeded(times)``, ``http_error(status, times)``, ``expire_tokens()``,
``lose_next_create()`` (the Task is made, the answer is a ``503``).
"""

from __future__ import annotations

import itertools
import re
import secrets
import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.emulators.common.server import LoopbackServer

API = "/services/data/v60.0"
TASK_STATUSES = {"Not Started", "In Progress", "Completed", "Waiting on someone else", "Deferred"}
_SELECT = re.compile(
    r"^SELECT\s+(?P<fields>[\w, ]+)\s+FROM\s+(?P<obj>Task|Opportunity)"
    r"(?:\s+WHERE\s+(?P<where>.+?))?(?:\s+LIMIT\s+(?P<limit>\d+))?$",
    re.IGNORECASE,
)
_COND = re.compile(
    r"^(?P<field>\w+)\s*(?P<op>=|LIKE)\s*(?P<value>'(?:[^'\\]|\\.)*'|true|false)$", re.IGNORECASE
)


def _errors(status: int, code: str, message: str, fields: list[str] | None = None) -> Response:
    entry: dict[str, Any] = {"message": message, "errorCode": code}
    if fields is not None:
        entry["fields"] = fields
    return JSONResponse([entry], status_code=status)


def _unquote(value: str) -> Any:
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    return re.sub(r"\\(.)", r"\1", value[1:-1])


def _like(pattern: str, value: str) -> bool:
    regex = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.IGNORECASE | re.DOTALL) is not None


@dataclass
class SalesforceEmulator:
    client_id: str = "3MVG9-test-client"
    client_secret: str = "s3cret-of-the-app"
    accounts: set[str] = field(default_factory=set)
    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)
    opportunities: dict[str, dict[str, Any]] = field(default_factory=dict)
    tokens: set[str] = field(default_factory=set)
    requests: list[tuple[str, str]] = field(default_factory=list)
    token_requests: int = 0
    _faults: list[tuple[str, int]] = field(default_factory=list)
    _lose_create: int = 0
    _ids: Any = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: LoopbackServer | None = None

    # --- setup -------------------------------------------------------------------------

    def add_account(self, *opportunities: tuple[str, bool]) -> str:
        """An Account and its opportunities (name, closed?); returns the 18-char id."""
        aid = f"001{next(self._ids):012d}AAA"
        self.accounts.add(aid)
        for name, closed in opportunities:
            oid = f"006{next(self._ids):012d}AAA"
            self.opportunities[oid] = {
                "Id": oid,
                "Name": name,
                "AccountId": aid,
                "IsClosed": closed,
                "NextStep": None,
            }
        return aid

    def limit_exceeded(self, times: int = 1) -> None:
        self._faults.extend([("limit", 403)] * times)

    def http_error(self, status: int, times: int = 1) -> None:
        self._faults.extend([("http", status)] * times)

    def expire_tokens(self) -> None:
        self.tokens.clear()

    def lose_next_create(self) -> None:
        self._lose_create += 1

    # --- serving -----------------------------------------------------------------------

    def start(self) -> SalesforceEmulator:
        routes = [
            Route("/services/oauth2/token", self._token, methods=["POST"]),
            Route(f"{API}/query", self._query, methods=["GET"]),
            Route(f"{API}/sobjects/Task", self._create_task, methods=["POST"]),
            Route(f"{API}/sobjects/{{obj}}/{{rid}}", self._update, methods=["PATCH"]),
        ]
        self._server = LoopbackServer(Starlette(routes=routes), name="salesforce-emu")
        self._server.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()

    @property
    def instance_url(self) -> str:
        assert self._server is not None
        return self._server.base_url

    async def _token(self, request: Request) -> Response:
        self.token_requests += 1
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        if form.get("grant_type") != "client_credentials":
            return JSONResponse(
                {
                    "error": "unsupported_grant_type",
                    "error_description": "grant type not supported",
                },
                status_code=400,
            )
        if (
            form.get("client_id") != self.client_id
            or form.get("client_secret") != self.client_secret
        ):
            return JSONResponse(
                {"error": "invalid_client", "error_description": "invalid client credentials"},
                status_code=400,
            )
        token = "00D!" + secrets.token_urlsafe(24)
        self.tokens.add(token)
        return JSONResponse(
            {
                "access_token": token,
                "signature": secrets.token_urlsafe(16),
                "scope": "api",
                "instance_url": self.instance_url,
                "id": f"{self.instance_url}/id/00D000000000001EAA/005000000000001AAA",
                "token_type": "Bearer",
                "issued_at": "1764979200000",
            }
        )

    def _gate(self, request: Request) -> Response | None:
        self.requests.append((request.method, request.url.path))
        with self._lock:
            fault = self._faults.pop(0) if self._faults else None
        if fault is not None:
            if fault[0] == "limit":
                return _errors(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
            return _errors(fault[1], "SERVER_UNAVAILABLE", "Server temporarily unavailable.")
        header = request.headers.get("authorization", "")
        if not header.startswith("Bearer ") or header[7:] not in self.tokens:
            return _errors(401, "INVALID_SESSION_ID", "Session expired or invalid")
        return None

    async def _query(self, request: Request) -> Response:
        if (refused := self._gate(request)) is not None:
            return refused
        soql = " ".join((request.query_params.get("q") or "").split())
        match = _SELECT.match(soql)
        if match is None:
            return _errors(400, "MALFORMED_QUERY", f"unexpected token in {soql[:80]!r}")
        obj = match["obj"].capitalize() if match["obj"].lower() == "task" else "Opportunity"
        rows = list((self.tasks if obj == "Task" else self.opportunities).values())
        for cond in re.split(r"\s+AND\s+", match["where"] or "", flags=re.IGNORECASE):
            if not cond:
                continue
            c = _COND.match(cond.strip())
            if c is None:
                return _errors(400, "MALFORMED_QUERY", f"unexpected condition {cond!r}")
            name, op, value = c["field"], c["op"].upper(), _unquote(c["value"])
            if obj == "Task" and name == "Description":
                return _errors(
                    400,
                    "INVALID_FIELD",
                    "field 'Description' can not be filtered in a query call",
                )
            if op == "=":
                rows = [r for r in rows if r.get(name) == value]
            else:
                rows = [r for r in rows if _like(str(value), str(r.get(name) or ""))]
        if match["limit"]:
            rows = rows[: int(match["limit"])]
        fields = [f.strip() for f in match["fields"].split(",")]
        records = [
            {
                "attributes": {"type": obj, "url": f"{API}/sobjects/{obj}/{r['Id']}"},
                **{f: r.get(f) for f in fields},
            }
            for r in rows
        ]
        return JSONResponse({"totalSize": len(records), "done": True, "records": records})

    async def _create_task(self, request: Request) -> Response:
        if (refused := self._gate(request)) is not None:
            return refused
        body = await request.json()
        status = body.get("Status", "Not Started")
        if status not in TASK_STATUSES:
            return _errors(
                400,
                "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                f"Status: bad value for restricted picklist field: {status}",
                ["Status"],
            )
        what = body.get("WhatId")
        if what is not None and what not in self.accounts and what not in self.opportunities:
            return _errors(
                400,
                "INVALID_CROSS_REFERENCE_KEY",
                "invalid cross reference id",
                ["WhatId"],
            )
        if len(str(body.get("Subject") or "")) > 255:
            return _errors(400, "STRING_TOO_LONG", "Subject: data value too large", ["Subject"])
        if body.get("ActivityDate") and not re.fullmatch(
            r"\d{4}-\d{2}-\d{2}", str(body["ActivityDate"])
        ):
            return _errors(400, "JSON_PARSER_ERROR", "Cannot deserialize instance of date")
        tid = f"00T{next(self._ids):012d}AAA"
        self.tasks[tid] = {
            "Id": tid,
            "Subject": body.get("Subject"),
            "Description": body.get("Description"),
            "ActivityDate": body.get("ActivityDate"),
            "Status": status,
            "IsClosed": status == "Completed",
            "WhatId": what,
        }
        if self._lose_create:
            self._lose_create -= 1
            return _errors(503, "SERVER_UNAVAILABLE", "Server temporarily unavailable.")
        return JSONResponse({"id": tid, "success": True, "errors": []}, status_code=201)

    async def _update(self, request: Request) -> Response:
        if (refused := self._gate(request)) is not None:
            return refused
        obj, rid = request.path_params["obj"], request.path_params["rid"]
        table = {"Task": self.tasks, "Opportunity": self.opportunities}.get(obj)
        if table is None or rid not in table:
            return _errors(404, "NOT_FOUND", "The requested resource does not exist")
        body = await request.json()
        if obj == "Opportunity" and len(str(body.get("NextStep") or "")) > 255:
            return _errors(400, "STRING_TOO_LONG", "Next Step: data value too large", ["NextStep"])
        if obj == "Task" and "Status" in body:
            if body["Status"] not in TASK_STATUSES:
                return _errors(
                    400,
                    "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                    "Status: bad value for restricted picklist field",
                    ["Status"],
                )
            table[rid]["IsClosed"] = body["Status"] == "Completed"
        table[rid].update(body)
        return Response(status_code=204)
