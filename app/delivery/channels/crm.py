"""What HubSpot and Salesforce write-back share: which rows a CRM takes, the task's text,
the markers that find our own tasks again, and the deal's next-step line.

A CRM channel takes a meeting nudge for the rep (never an escalation: the rep's task
stays open) about an account whose ``crm_id`` the CRM recognises, and the
``meeting.state_changed`` events into ``secured`` or ``waived`` (its open tasks are
completed). Every task carries two markers — one of the nudge, one of the meeting — so a
retried write finds the task it made before (never a second one) and a completion finds
the meeting's open tasks.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, ClassVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx

from app.delivery.channels import _http
from app.delivery.channels.base import DeliveryResult, Outbound
from app.delivery.channels.slack import KIND_TITLES
from policies.vocabulary import MEETING_STATE_CHANGED, MeetingState, NudgeKind

TASK_KINDS = frozenset(
    {NudgeKind.NO_NEXT_STEP, NudgeKind.NOT_ACCEPTED, NudgeKind.FOLLOW_UP_DECLINED}
    | {k for k in NudgeKind if k.value == "counter_proposed"}
)
DONE_STATES = frozenset({MeetingState.SECURED, MeetingState.WAIVED})
NEXT_STEP_LIMIT = 255  # Opportunity.NextStep is a 255-character text field


def _hex(value: str) -> str:
    return re.sub(r"[^0-9a-f]", "", value.lower())


def nudge_marker(nudge_id: str) -> str:
    """One token (no separator a search would split on) naming the nudge."""
    return f"nsn{_hex(nudge_id)[:24]}"


def meeting_marker(meeting_id: str) -> str:
    return f"nsm{_hex(meeting_id)[:24]}"


def wants(kind: str, payload: dict[str, Any]) -> bool:
    """Whether a CRM takes this row (the channel checks the ``crm_id`` itself)."""
    if kind == MEETING_STATE_CHANGED:
        return (payload.get("meeting") or {}).get("state") in DONE_STATES
    return kind in TASK_KINDS and bool(payload.get("meeting"))


def subject(payload: dict[str, Any]) -> str:
    kind = str(payload.get("kind", ""))
    meeting = payload.get("meeting") or {}
    title = KIND_TITLES.get(kind, kind.replace("_", " "))
    return f"NextStep: {title} – {meeting.get('title') or meeting.get('account_domain', '')}"[:200]


def body(payload: dict[str, Any]) -> str:
    """The rep's message, the action links, and our markers (last line)."""
    lines = [str(payload.get("message") or "")]
    actions = [a for a in payload.get("actions") or [] if isinstance(a, dict) and a.get("url")]
    if actions:
        lines += ["", *(f"{a.get('label') or a.get('kind')}: {a['url']}" for a in actions)]
    meeting = payload.get("meeting") or {}
    lines += [
        "",
        f"NextStep ref: {nudge_marker(str(payload.get('id', '')))} "
        f"{meeting_marker(str(meeting.get('id', '')))}",
    ]
    return "\n".join(lines).strip()


def due(payload: dict[str, Any]) -> datetime:
    """When the task is due: the window's close (the nudge's creation when it has none)."""
    window = payload.get("window") or {}
    return datetime.fromisoformat(str(window.get("closed_at") or payload["created_at"]))


def due_day(payload: dict[str, Any]) -> str:
    """The due date as the rep reads it (their zone; UTC when unknown)."""
    zone = (payload.get("rep") or {}).get("timezone") or "UTC"
    try:
        return due(payload).astimezone(ZoneInfo(str(zone))).date().isoformat()
    except (ZoneInfoNotFoundError, ValueError):
        return due(payload).date().isoformat()


def next_step(payload: dict[str, Any]) -> str:
    """The deal's next-step line after this nudge or state change."""
    meeting = payload.get("meeting") or {}
    title = meeting.get("title") or "the last meeting"
    if payload.get("type") == MEETING_STATE_CHANGED:
        follow_up = meeting.get("follow_up") or {}
        if meeting.get("state") == MeetingState.SECURED:
            text = (
                f"Follow-up to {title} booked for {str(follow_up.get('start', ''))[:16]} (accepted)"
            )
        else:
            text = f"No follow-up planned after {title}"
            if meeting.get("waived_reason"):
                text += f": {meeting['waived_reason']}"
    else:
        kind = str(payload.get("kind"))
        what = {
            NudgeKind.NO_NEXT_STEP: "Book the follow-up",
            NudgeKind.NOT_ACCEPTED: "Get the follow-up accepted",
            NudgeKind.FOLLOW_UP_DECLINED: "Re-book the declined follow-up",
        }.get(kind, "Agree the next step")  # type: ignore[call-overload]
        text = f"{what} after {title}"
    return text[:NEXT_STEP_LIMIT]


class Failed(Exception):
    """A CRM call went wrong: ``result`` is what the delivery records (retryable or not)."""

    def __init__(self, result: DeliveryResult) -> None:
        super().__init__(result.detail)
        self.result = result


class CrmChannel(_http.HttpChannel):
    """The write-back every CRM does: a nudge makes a task (once, found again by its marker),
    a ``meeting.state_changed`` completes the meeting's open tasks, and then the deal's next
    step is kept current. A subclass says how, in its CRM's API."""

    crm: ClassVar[bool] = True

    async def send(self, out: Outbound) -> DeliveryResult:
        payload, record = out.payload, out.recipient
        try:
            if payload.get("type") == MEETING_STATE_CHANGED:
                detail = await self._complete(payload, record)
            else:
                detail = await self._create(payload, record)
            await self._next_step(record, next_step(payload))
        except Failed as failed:
            return failed.result
        return DeliveryResult(ok=True, retryable=False, detail=f"{self._what}: {detail}")

    async def _request(self, method: str, url: httpx.URL, what: str, **kw: Any) -> httpx.Response:
        """One HTTP call; a timeout or an unreachable CRM is a retryable ``Failed``."""
        try:
            return await self._client.request(method, url, **kw)
        except httpx.TimeoutException as err:
            raise Failed(DeliveryResult(ok=False, detail=f"{what} timed out ({err!r})")) from err
        except httpx.TransportError as err:
            raise Failed(DeliveryResult(ok=False, detail=f"{what} unreachable: {err}")) from err

    async def _create(self, payload: dict[str, Any], record: str) -> str:
        """Make the nudge's task (unless made before); say what was done."""
        raise NotImplementedError

    async def _complete(self, payload: dict[str, Any], record: str) -> str:
        """Complete the meeting's open tasks; say how many."""
        raise NotImplementedError

    async def _next_step(self, record: str, text: str) -> None:
        """Put ``text`` on the record's one open deal (none or several: leave them)."""
        raise NotImplementedError
