"""Nudges posted to a Slack channel through an incoming webhook.

Slack answers ``200 ok``; a bad request comes back as a 4xx with a plain-text reason
(``invalid_payload``, ``action_prohibited``, ``channel_not_found``, ``no_service``,
``channel_is_archived``) that no retry will fix; ``429`` carries ``Retry-After``; ``5xx``
is Slack's own trouble. The webhook URL is a secret (its path is the token), so only its
host ever appears in a result's ``detail``.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, ClassVar

import httpx

from app.delivery.channels import _http
from app.delivery.channels.base import Clock, DeliveryResult, Outbound, SystemClock
from policies.vocabulary import NudgeKind

KIND_TITLES: dict[str, str] = {
    NudgeKind.NO_NEXT_STEP: "No next step booked",
    NudgeKind.NOT_ACCEPTED: "Follow-up not accepted yet",
    NudgeKind.FOLLOW_UP_DECLINED: "Follow-up declined",
    NudgeKind.ESCALATION: "Escalation: a nudge went unanswered",
    NudgeKind.COUNTER_PROPOSED: "New time proposed for the follow-up",
    NudgeKind.ACCOUNT_AT_RISK: "Account at risk",
    NudgeKind.CONNECTION_LOST: "Calendar connection lost",
}

# Slack refuses a section whose text is longer than this.
SECTION_TEXT_LIMIT = 3000


def _escape(text: object) -> str:
    """Make text literal in Slack mrkdwn (only &, < and > are control characters)."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _when(value: object) -> str:
    """A timestamp Slack shows in the reader's own time zone, with the ISO text as fallback."""
    text = str(value)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return _escape(text)
    if moment.tzinfo is None:
        return _escape(text)
    return f"<!date^{int(moment.timestamp())}^{{date_short_pretty}} {{time}}|{_escape(text)}>"


def _section(text: str) -> dict[str, Any]:
    if len(text) > SECTION_TEXT_LIMIT:
        text = text[: SECTION_TEXT_LIMIT - 1] + "…"
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def render(out: Outbound) -> dict[str, Any]:
    """The incoming-webhook message for a nudge: a fallback ``text`` and mrkdwn ``blocks``."""
    payload = out.payload
    kind = str(payload.get("kind", "nudge"))
    title = KIND_TITLES.get(kind, kind.replace("_", " ").capitalize())
    rep = payload.get("rep") or {}
    meeting = payload.get("meeting") or {}

    head = f"*{_escape(title)}* · rep {_escape(rep.get('email', '?'))}"
    if payload.get("message"):
        head += f"\n{_escape(payload['message'])}"
    blocks = [_section(head)]

    if meeting:
        lines = [f"*Meeting:* {_escape(meeting.get('title') or '(untitled)')}"]
        if meeting.get("start"):
            lines.append(f"{_when(meeting['start'])} → {_when(meeting.get('end', ''))}")
        attendees = ", ".join(_escape(a) for a in meeting.get("external_attendees") or [])
        account = _escape(meeting.get("account_domain") or "")
        if account or attendees:
            lines.append(f"*Account:* {account}" + (f" · {attendees}" if attendees else ""))
        blocks.append(_section("\n".join(lines)))

    health = payload.get("account")
    if isinstance(health, dict) and health:
        blocks.append(
            _section(
                f"*Account health:* {_escape(health.get('domain', ''))} "
                f"{_escape(health.get('level', ''))} ({_escape(health.get('score', '?'))}/100)"
            )
        )

    slots = payload.get("suggested_slots") or []
    if slots:
        lines = ["*Suggested slots:*"]
        lines += [f"• {_when(s.get('start', ''))} → {_when(s.get('end', ''))}" for s in slots]
        blocks.append(_section("\n".join(lines)))

    draft = payload.get("draft_invite") or {}
    if draft:
        lines = [f"*Draft invite:* {_escape(draft.get('subject', ''))}"]
        if draft.get("attendees"):
            lines.append("To: " + ", ".join(_escape(a) for a in draft["attendees"]))
        if draft.get("body"):
            # A code block keeps the draft verbatim, ready to copy.
            lines.append(f"```{_escape(draft['body'])}```")
        blocks.append(_section("\n".join(lines)))

    fallback = out.subject or f"{title}: {meeting.get('title') or rep.get('email', '')}"
    return {"text": _escape(fallback), "blocks": blocks}


class SlackChannel:
    """Post each nudge to the Slack channel behind one incoming-webhook URL."""

    name: ClassVar[str] = "slack"

    def __init__(
        self,
        webhook_url: str,
        *,
        timeout: float = 10.0,
        client: httpx.AsyncClient | None = None,
        clock: Clock | None = None,
    ) -> None:
        self._url = _http.checked_url(webhook_url, setting="Slack webhook URL")
        self._clock = clock or SystemClock()
        self._owns_client = client is None
        self._client = client if client is not None else _http.new_client(timeout)
        self._what = f"slack webhook {_http.display_url(self._url, keep_path=False)}"

    def __repr__(self) -> str:
        return f"SlackChannel({_http.display_url(self._url, keep_path=False)!r})"

    async def send(self, out: Outbound) -> DeliveryResult:
        """Post the rendered nudge once; the result says whether a retry can help."""
        body = json.dumps(render(out), ensure_ascii=False).encode("utf-8")
        return await _http.post(
            self._client,
            self._url,
            body=body,
            headers={"Content-Type": "application/json; charset=utf-8"},
            what=self._what,
            clock=self._clock,
        )

    async def aclose(self) -> None:
        """Close the HTTP client if this channel created it."""
        if self._owns_client:
            await self._client.aclose()
