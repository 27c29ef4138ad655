"""Salesforce write-back through the REST API (v60.0), signed in with the OAuth 2.0
client-credentials flow of a connected app.

Token: ``POST {instance}/services/oauth2/token`` (``grant_type=client_credentials``,
``client_id``, ``client_secret``) → ``access_token``; kept until Salesforce answers ``401
INVALID_SESSION_ID``, then fetched again once.

For a nudge about an account whose ``crm_id`` is a Salesforce record id (an Account,
usually): a ``Task`` (``Subject``, ``Description`` = the rep's message, the action links and
our markers, ``ActivityDate`` = the window's close, ``Status: Not Started``, ``WhatId`` = the
``crm_id``). Before creating, the task is looked up by the nudge's marker in its
``Subject`` (SOQL cannot filter on ``Description``), so a retry after a lost answer never
makes a second one. When the meeting becomes ``secured`` or ``waived``, the meeting's open
tasks on that record are set ``Completed``. When the account has exactly one open
``Opportunity``, its ``NextStep`` is kept current.
"""

from __future__ import annotations

import json
import re
from typing import Any, ClassVar

import httpx

from app.delivery.channels import _http
from app.delivery.channels import crm as common
from app.delivery.channels.base import Clock, DeliveryResult

API = "services/data/v60.0/"
RECORD_ID = re.compile(r"^[a-zA-Z0-9]{15}(?:[a-zA-Z0-9]{3})?$")
LIMIT_CODES = frozenset({"REQUEST_LIMIT_EXCEEDED", "UNABLE_TO_LOCK_ROW", "SERVER_UNAVAILABLE"})


def _soql(value: str) -> str:
    """A string literal for SOQL (backslash and quote escaped)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class SalesforceChannel(common.CrmChannel):
    """Tasks (and the opportunity's next step) in Salesforce for nudges about its records."""

    name: ClassVar[str] = "salesforce"

    def __init__(
        self,
        instance_url: str,
        client_id: str,
        client_secret: str,
        *,
        timeout: float = 10.0,
        client: httpx.AsyncClient | None = None,
        clock: Clock | None = None,
    ) -> None:
        self._root = _http.checked_url(
            instance_url.rstrip("/") + "/", setting="NEXTSTEP_SALESFORCE_INSTANCE_URL"
        )
        self._client_id, self._client_secret = client_id, client_secret
        super().__init__(self._root, "salesforce", timeout, client, clock)
        self._token: str | None = None
        self._api_root = self._root

    def wants(self, kind: str, payload: dict[str, Any], crm_id: str) -> bool:
        return bool(RECORD_ID.match(crm_id)) and common.wants(kind, payload)

    # --- HTTP --------------------------------------------------------------------------

    async def _sign_in(self) -> str:
        what = f"{self._what} token"
        response = await self._request(
            "POST",
            self._root.join("services/oauth2/token"),
            what,
            data={
                "grant_type": "client_credentials",
                "client_id": self._client_id,
                "client_secret": self._client_secret,
            },
            headers={"Accept": "application/json"},
        )
        if response.status_code != 200:
            result = _http.judge(response, what=what, clock=self._clock)
            raise common.Failed(result)
        doc = response.json()
        token = doc.get("access_token")
        if not token:
            raise common.Failed(DeliveryResult(ok=False, detail=f"{what}: no access_token"))
        instance = doc.get("instance_url")
        if isinstance(instance, str) and instance.startswith(("http://", "https://")):
            self._api_root = httpx.URL(instance.rstrip("/") + "/")
        self._token = str(token)
        return self._token

    async def _call(
        self, method: str, path: str, *, body: Any = None, params: dict[str, str] | None = None
    ) -> dict[str, Any]:
        what = f"{self._what} {method} {path.split('?')[0]}"
        for attempt in (1, 2):
            token = self._token or await self._sign_in()
            headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
            kw: dict[str, Any] = {"headers": headers, "params": params}
            if body is not None:
                kw["content"] = json.dumps(body, ensure_ascii=False).encode("utf-8")
                headers["Content-Type"] = "application/json"
            response = await self._request(method, self._api_root.join(API + path), what, **kw)
            if response.status_code == 401 and attempt == 1:
                self._token = None  # expired or revoked: sign in again, once
                continue
            break
        if 200 <= response.status_code < 300:
            if response.status_code == 204 or not response.content:
                return {}
            doc = response.json()
            return doc if isinstance(doc, dict) else {"items": doc}
        result = _http.judge(response, what=what, clock=self._clock)
        if not result.retryable and _error_code(response) in LIMIT_CODES:
            result = DeliveryResult(ok=False, retryable=True, detail=result.detail)
        raise common.Failed(result)

    async def _query(self, soql: str) -> list[dict[str, Any]]:
        doc = await self._call("GET", "query", params={"q": soql})
        return list(doc.get("records") or [])

    # --- the write-back ---------------------------------------------------------------

    async def _create(self, payload: dict[str, Any], record: str) -> str:
        marker = common.nudge_marker(str(payload["id"]))
        found = await self._query(
            f"SELECT Id FROM Task WHERE WhatId = {_soql(record)} "
            f"AND Subject LIKE {_soql('%' + marker + '%')} LIMIT 1"
        )
        if found:
            return f"Task {found[0].get('Id')} already made for this nudge"
        doc = await self._call(
            "POST",
            "sobjects/Task",
            body={
                "Subject": f"{common.subject(payload)} [{marker}]"[:255],
                "Description": common.body(payload),
                "ActivityDate": common.due_day(payload),
                "Status": "Not Started",
                "WhatId": record,
            },
        )
        return f"Task {doc.get('id')} created"

    async def _complete(self, payload: dict[str, Any], record: str) -> str:
        marker = common.meeting_marker(str((payload.get("meeting") or {}).get("id", "")))
        tasks = await self._query(
            f"SELECT Id, Description FROM Task WHERE WhatId = {_soql(record)} "
            "AND IsClosed = false AND Subject LIKE '%[nsn%'"
        )
        mine = [t for t in tasks if marker in str(t.get("Description") or "")]
        for task in mine:
            await self._call("PATCH", f"sobjects/Task/{task['Id']}", body={"Status": "Completed"})
        return f"{len(mine)} Task(s) completed"

    async def _next_step(self, record: str, text: str) -> None:
        opportunities = await self._query(
            f"SELECT Id FROM Opportunity WHERE AccountId = {_soql(record)} AND IsClosed = false"
        )
        if len(opportunities) == 1:
            await self._call(
                "PATCH", f"sobjects/Opportunity/{opportunities[0]['Id']}", body={"NextStep": text}
            )


def _error_code(response: httpx.Response) -> str | None:
    try:
        doc = response.json()
    except ValueError:
        return None
    if isinstance(doc, list) and doc and isinstance(doc[0], dict):
        return str(doc[0].get("errorCode"))
    return None
