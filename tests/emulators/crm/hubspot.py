"""A HubSpot CRM v3 emulator (tasks, owners, companies' deals), written from HubSpot's
reference: the object shapes (``{"id", "properties", "createdAt", "updatedAt",
"archived"}``), search (``filterGroups`` of ANDed ``filters``; ``EQ``, ``NEQ``,
``CONTAINS_TOKEN``), the error body (``{"status": "error", "message", "correlationId",
"category"}``), ``401 INVALID_AUTHENTICATION`` and the ``429`` of the per-second limit
(``errorType: RATE_LIMIT``, ``policyName: SECONDLY``).

Faults: ``rate_limit(times)``, ``http_error(status, times)`` (a 5xx for a while), and
``lose_next_create()``: the next task is created but its answer is a ``504`` (the caller
cannot know it was made).
"""

from __future__ import annotations

import itertools
import re
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.emulators.common.server import LoopbackServer

TASK_STATUSES = {"NOT_STARTED", "IN_PROGRESS", "WAITING", "COMPLETED", "DEFERRED"}
TASK_TO_COMPANY = 192


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _error(status: int, category: str, message: str, **extra: Any) -> Response:
    return JSONResponse(
        {
            "status": "error",
            "message": message,
            "correlationId": str(uuid.uuid4()),
            "category": category,
            **extra,
        },
        status_code=status,
    )


def _tokens(text: str) -> set[str]:
    return {t for t in re.split(r"[^0-9A-Za-z]+", text.lower()) if t}


@dataclass
class HubSpotEmulator:
    token: str = "pat-na1-test"
    owners: dict[str, str] = field(default_factory=dict)  # e-mail → owner id
    companies: dict[str, list[str]] = field(default_factory=dict)  # company → deal ids
    deals: dict[str, dict[str, str]] = field(default_factory=dict)
    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    _faults: list[tuple[str, int]] = field(default_factory=list)
    _lose_create: int = 0
    _ids: Any = field(default_factory=lambda: itertools.count(10_001))
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: LoopbackServer | None = None

    # --- setup -------------------------------------------------------------------------

    def add_company(self, company_id: str, *deals: tuple[str, bool]) -> None:
        """A company and its deals: (deal name, closed?)."""
        ids = []
        for name, closed in deals:
            deal_id = str(next(self._ids))
            self.deals[deal_id] = {
                "dealname": name,
                "hs_is_closed": "true" if closed else "false",
                "hs_next_step": "",
            }
            ids.append(deal_id)
        self.companies[company_id] = ids

    def rate_limit(self, times: int = 1) -> None:
        self._faults.extend([("429", 0)] * times)

    def http_error(self, status: int, times: int = 1) -> None:
        self._faults.extend([("http", status)] * times)

    def lose_next_create(self) -> None:
        self._lose_create += 1

    # --- serving -----------------------------------------------------------------------

    def start(self) -> HubSpotEmulator:
        routes = [
            Route("/crm/v3/objects/tasks", self._create_task, methods=["POST"]),
            Route("/crm/v3/objects/tasks/search", self._search_tasks, methods=["POST"]),
            Route("/crm/v3/objects/tasks/{tid}", self._patch_task, methods=["PATCH", "GET"]),
            Route("/crm/v3/owners/", self._owners, methods=["GET"]),
            Route(
                "/crm/v3/objects/companies/{cid}/associations/deals",
                self._company_deals,
                methods=["GET"],
            ),
            Route("/crm/v3/objects/deals/{did}", self._deal, methods=["GET", "PATCH"]),
        ]
        self._server = LoopbackServer(Starlette(routes=routes), name="hubspot-emu")
        self._server.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()

    @property
    def api_root(self) -> str:
        assert self._server is not None
        return self._server.base_url

    def _gate(self, request: Request) -> Response | None:
        self.requests.append((request.method, request.url.path))
        with self._lock:
            fault = self._faults.pop(0) if self._faults else None
        if fault is not None:
            if fault[0] == "429":
                return JSONResponse(
                    {
                        "status": "error",
                        "message": "You have reached your secondly limit.",
                        "errorType": "RATE_LIMIT",
                        "correlationId": str(uuid.uuid4()),
                        "policyName": "SECONDLY",
                    },
                    status_code=429,
                )
            return _error(fault[1], "INTERNAL_ERROR", "internal error")
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return _error(
                401,
                "INVALID_AUTHENTICATION",
                "Authentication credentials not found. This API supports OAuth 2.0 "
                "authentication and you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview",
            )
        return None

    @staticmethod
    def _object(oid: str, props: dict[str, Any], created: str, updated: str) -> dict[str, Any]:
        return {
            "id": oid,
            "properties": dict(props),
            "createdAt": created,
            "updatedAt": updated,
            "archived": False,
        }

    async def _create_task(self, request: Request) -> Response:
        if (refused := self._gate(request)) is not None:
            return refused
        body = await request.json()
        props = dict(body.get("properties") or {})
        if not props.get("hs_timestamp"):
            return _error(
                400,
                "VALIDATION_ERROR",
                "Property values were not valid",
                errors=[{"message": "hs_timestamp is required", "code": "REQUIRED_FIELD"}],
            )
        if props.get("hs_task_status", "NOT_STARTED") not in TASK_STATUSES:
            return _error(400, "VALIDATION_ERROR", "hs_task_status is not a valid option")
        if props.get("hubspot_owner_id") and props["hubspot_owner_id"] not in self.owners.values():
            return _error(400, "VALIDATION_ERROR", "hubspot_owner_id is not a valid owner")
        companies = []
        for assoc in body.get("associations") or []:
            to = str((assoc.get("to") or {}).get("id", ""))
            types = [t.get("associationTypeId") for t in assoc.get("types") or []]
            if to not in self.companies or TASK_TO_COMPANY not in types:
                return _error(
                    400,
                    "VALIDATION_ERROR",
                    f"association to {to!r} is invalid (unknown company or type)",
                )
            companies.append(to)
        now = _now()
        tid = str(next(self._ids))
        props.setdefault("hs_task_status", "NOT_STARTED")
        self.tasks[tid] = {"props": props, "companies": companies, "created": now, "updated": now}
        if self._lose_create:
            self._lose_create -= 1
            return Response("Gateway Timeout", status_code=504)
        return JSONResponse(self._object(tid, props, now, now), status_code=201)

    def _matches(self, task: dict[str, Any], flt: dict[str, Any]) -> bool:
        value = str(task["props"].get(flt.get("propertyName"), ""))
        wanted = str(flt.get("value", ""))
        op = flt.get("operator")
        if op == "EQ":
            return value == wanted
        if op == "NEQ":
            return value != wanted
        if op == "CONTAINS_TOKEN":
            return wanted.lower() in _tokens(value)
        raise ValueError(op)

    async def _search_tasks(self, request: Request) -> Response:
        if (refused := self._gate(request)) is not None:
            return refused
        body = await request.json()
        groups = body.get("filterGroups") or []
        try:
            hits = [
                tid
                for tid, task in self.tasks.items()
                if not groups
                or any(all(self._matches(task, f) for f in g.get("filters") or []) for g in groups)
            ]
        except ValueError as err:
            return _error(400, "VALIDATION_ERROR", f"unsupported operator {err}")
        results = [
            self._object(
                t, self.tasks[t]["props"], self.tasks[t]["created"], self.tasks[t]["updated"]
            )
            for t in hits[: int(body.get("limit") or 10)]
        ]
        return JSONResponse({"total": len(hits), "results": results})

    async def _patch_task(self, request: Request) -> Response:
        if (refused := self._gate(request)) is not None:
            return refused
        task = self.tasks.get(request.path_params["tid"])
        if task is None:
            return _error(404, "OBJECT_NOT_FOUND", "resource not found")
        if request.method == "PATCH":
            task["props"].update((await request.json()).get("properties") or {})
            task["updated"] = _now()
        return JSONResponse(
            self._object(
                request.path_params["tid"], task["props"], task["created"], task["updated"]
            )
        )

    async def _owners(self, request: Request) -> Response:
        if (refused := self._gate(request)) is not None:
            return refused
        email = (request.query_params.get("email") or "").lower()
        results = [
            {"id": oid, "email": e, "type": "PERSON", "archived": False}
            for e, oid in self.owners.items()
            if not email or e == email
        ]
        return JSONResponse({"results": results})

    async def _company_deals(self, request: Request) -> Response:
        if (refused := self._gate(request)) is not None:
            return refused
        deals = self.companies.get(request.path_params["cid"])
        if deals is None:
            return _error(404, "OBJECT_NOT_FOUND", "resource not found")
        return JSONResponse({"results": [{"id": d, "type": "company_to_deal"} for d in deals]})

    async def _deal(self, request: Request) -> Response:
        if (refused := self._gate(request)) is not None:
            return refused
        did = request.path_params["did"]
        deal = self.deals.get(did)
        if deal is None:
            return _error(404, "OBJECT_NOT_FOUND", "resource not found")
        if request.method == "PATCH":
            deal.update((await request.json()).get("properties") or {})
        now = _now()
        return JSONResponse(self._object(did, deal, now, now))
