"""HubSpot write-back through the CRM v3 API, with a private-app token.

For a nudge about an account whose ``crm_id`` is a HubSpot company id: one task
(``POST /crm/v3/objects/tasks``: ``hs_task_subject``, ``hs_task_body`` = the rep's message,
the action links and our markers, ``hs_timestamp`` = the window's close, ``hs_task_status
NOT_STARTED``, ``hubspot_owner_id`` when ``GET /crm/v3/owners?email=`` knows the rep),
associated with the company (association type 192, task → company). Before creating, the
task is looked up by the nudge's marker (``POST /crm/v3/objects/tasks/search``,
``CONTAINS_TOKEN`` on ``hs_task_body``), so a retry after a lost answer never makes a
second one. When the meeting becomes ``secured`` or ``waived`` its open tasks are set
``COMPLETED``. When the company has exactly one open deal (``hs_is_closed`` false among
its associated deals), the deal's ``hs_next_step`` is kept current.

Scopes: ``crm.objects.companies.read``, ``crm.objects.deals.read``/``.write``,
``crm.objects.owners.read``, and tasks (``crm.objects.contacts.write`` covers engagements
on most portals; README, "Connecting HubSpot").
"""

from __future__ import annotations

import json
import re
from typing import Any, ClassVar

import httpx

from app.delivery.channels import _http
from app.delivery.channels import crm as common
from app.delivery.channels.base import Clock, DeliveryResult

TASK_TO_COMPANY = 192  # HUBSPOT_DEFINED association type: task → company
COMPANY_ID = re.compile(r"^[0-9]{1,20}$")


class HubSpotChannel(common.CrmChannel):
    """Tasks (and the deal's next step) in HubSpot for the nudges about its companies."""

    name: ClassVar[str] = "hubspot"

    def __init__(
        self,
        token: str,
        *,
        api_root: str = "https://api.hubapi.com",
        timeout: float = 10.0,
        client: httpx.AsyncClient | None = None,
        clock: Clock | None = None,
    ) -> None:
        if not token:
            raise ValueError("NEXTSTEP_HUBSPOT_TOKEN: a private-app token is required")
        self._root = _http.checked_url(
            api_root.rstrip("/") + "/", setting="NEXTSTEP_HUBSPOT_API_ROOT"
        )
        self._token = token
        super().__init__(self._root, "hubspot", timeout, client, clock)

    def wants(self, kind: str, payload: dict[str, Any], crm_id: str) -> bool:
        return bool(COMPANY_ID.match(crm_id)) and common.wants(kind, payload)

    async def _call(
        self, method: str, path: str, *, body: Any = None, params: dict[str, str] | None = None
    ) -> dict[str, Any]:
        url = self._root.join(path.lstrip("/"))
        what = f"{self._what} {method} {path.split('?')[0]}"
        headers = {"Authorization": f"Bearer {self._token}", "Accept": "application/json"}
        content = None
        if body is not None:
            content = json.dumps(body, ensure_ascii=False).encode("utf-8")
            headers["Content-Type"] = "application/json"
        response = await self._request(
            method, url, what, content=content, headers=headers, params=params
        )
        if not 200 <= response.status_code < 300:
            raise common.Failed(_http.judge(response, what=what, clock=self._clock))
        if response.status_code == 204 or not response.content:
            return {}
        try:
            doc = response.json()
        except ValueError:
            doc = None
        if not isinstance(doc, dict):
            raise common.Failed(
                DeliveryResult(ok=False, detail=f"{what}: answer is not a JSON object")
            )
        return doc

    async def _search(self, filters: list[dict[str, Any]]) -> list[dict[str, Any]]:
        doc = await self._call(
            "POST",
            "crm/v3/objects/tasks/search",
            body={
                "filterGroups": [{"filters": filters}],
                "properties": ["hs_task_status", "hs_task_subject"],
                "limit": 100,
            },
        )
        return list(doc.get("results") or [])

    async def _owner(self, email: str) -> str | None:
        try:
            doc = await self._call("GET", "crm/v3/owners/", params={"email": email, "limit": "1"})
        except common.Failed as failed:
            if failed.result.retryable:
                raise
            return None  # no owners scope, or unknown: the task goes without an owner
        results = doc.get("results") or []
        return str(results[0]["id"]) if results and results[0].get("id") else None

    async def _next_step(self, company: str, text: str) -> None:
        doc = await self._call("GET", f"crm/v3/objects/companies/{company}/associations/deals")
        open_deals = []
        for assoc in doc.get("results") or []:
            deal = await self._call(
                "GET",
                f"crm/v3/objects/deals/{assoc['id']}",
                params={"properties": "hs_is_closed,dealname"},
            )
            if str((deal.get("properties") or {}).get("hs_is_closed", "false")) != "true":
                open_deals.append(str(deal.get("id", assoc["id"])))
        if len(open_deals) == 1:
            await self._call(
                "PATCH",
                f"crm/v3/objects/deals/{open_deals[0]}",
                body={"properties": {"hs_next_step": text}},
            )

    async def _create(self, payload: dict[str, Any], company: str) -> str:
        marker = common.nudge_marker(str(payload["id"]))
        found = await self._search(
            [{"propertyName": "hs_task_body", "operator": "CONTAINS_TOKEN", "value": marker}]
        )
        if found:
            return f"task {found[0].get('id')} already made for this nudge"
        properties: dict[str, Any] = {
            "hs_task_subject": common.subject(payload),
            "hs_task_body": common.body(payload),
            "hs_timestamp": common.due(payload).isoformat(),
            "hs_task_status": "NOT_STARTED",
            "hs_task_type": "TODO",
        }
        owner = await self._owner(str((payload.get("rep") or {}).get("email", "")))
        if owner:
            properties["hubspot_owner_id"] = owner
        doc = await self._call(
            "POST",
            "crm/v3/objects/tasks",
            body={
                "properties": properties,
                "associations": [
                    {
                        "to": {"id": company},
                        "types": [
                            {
                                "associationCategory": "HUBSPOT_DEFINED",
                                "associationTypeId": TASK_TO_COMPANY,
                            }
                        ],
                    }
                ],
            },
        )
        return f"task {doc.get('id')} created"

    async def _complete(self, payload: dict[str, Any], record: str) -> str:
        marker = common.meeting_marker(str((payload.get("meeting") or {}).get("id", "")))
        open_tasks = await self._search(
            [
                {"propertyName": "hs_task_body", "operator": "CONTAINS_TOKEN", "value": marker},
                {"propertyName": "hs_task_status", "operator": "NEQ", "value": "COMPLETED"},
            ]
        )
        for task in open_tasks:
            await self._call(
                "PATCH",
                f"crm/v3/objects/tasks/{task['id']}",
                body={"properties": {"hs_task_status": "COMPLETED"}},
            )
        return f"{len(open_tasks)} task(s) completed"
