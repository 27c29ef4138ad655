"""Nudges to Microsoft Teams through a Workflows webhook ("Post to a channel when a webhook
request is received"), as Adaptive Cards.

The body is a ``message`` whose one attachment has ``contentType
application/vnd.microsoft.card.adaptive`` and the card as ``content``; the nudge's actions
are ``Action.OpenUrl`` buttons. The workflow answers ``202 Accepted`` (older connectors
``200``); ``429`` carries ``Retry-After``; ``5xx`` is Teams' own trouble; any other ``4xx``
(a deleted workflow, a malformed card) no retry will fix. The URL is a secret (its query
carries the signature), so only its host appears in a result's ``detail``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from app.delivery.channels import _http
from app.delivery.channels.base import Outbound
from app.delivery.channels.slack import KIND_TITLES

CARD_TYPE = "application/vnd.microsoft.card.adaptive"
CARD_SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
CARD_VERSION = "1.4"  # what Teams renders on desktop, web and mobile


def _text(text: str, **style: Any) -> dict[str, Any]:
    return {"type": "TextBlock", "text": text, "wrap": True, **style}


def render(out: Outbound) -> dict[str, Any]:
    """The Workflows webhook body for a nudge: one Adaptive Card attachment."""
    payload = out.payload
    kind = str(payload.get("kind", "nudge"))
    title = KIND_TITLES.get(kind, kind.replace("_", " ").capitalize())
    rep = payload.get("rep") or {}
    meeting = payload.get("meeting") or {}
    body: list[dict[str, Any]] = [
        _text(title, weight="Bolder", size="Medium"),
        _text(f"Rep: {rep.get('email', '?')}", isSubtle=True, spacing="None"),
    ]
    if payload.get("message"):
        body.append(_text(str(payload["message"])))
    facts = []
    if meeting:
        facts.append({"title": "Meeting", "value": str(meeting.get("title") or "(untitled)")})
        if meeting.get("start"):
            facts.append({"title": "When", "value": f"{meeting['start']} → {meeting.get('end')}"})
        if meeting.get("account_domain"):
            facts.append({"title": "Account", "value": str(meeting["account_domain"])})
    for i, slot in enumerate(payload.get("suggested_slots") or []):
        facts.append({"title": "Slot" if i == 0 else "", "value": f"{slot.get('start')}"})
    if facts:
        body.append({"type": "FactSet", "facts": facts})
    draft = payload.get("draft_invite") or {}
    if draft.get("body"):
        body.append(_text(f"Draft invite: {draft.get('subject', '')}", weight="Bolder"))
        body.append(_text(str(draft["body"]), fontType="Monospace", isSubtle=True))
    actions = [
        {"type": "Action.OpenUrl", "title": str(a.get("label") or a.get("kind")), "url": a["url"]}
        for a in payload.get("actions") or []
        if isinstance(a, dict) and a.get("url")
    ]
    card: dict[str, Any] = {
        "$schema": CARD_SCHEMA,
        "type": "AdaptiveCard",
        "version": CARD_VERSION,
        "body": body,
        "msteams": {"width": "Full"},
    }
    if actions:
        card["actions"] = actions
    return {
        "type": "message",
        "summary": out.subject or title,
        "attachments": [{"contentType": CARD_TYPE, "contentUrl": None, "content": card}],
    }


class TeamsChannel(_http.JsonWebhookChannel):
    """Post each nudge, as an Adaptive Card, to one Teams Workflows webhook."""

    name: ClassVar[str] = "teams"
    setting = "NEXTSTEP_TEAMS_WEBHOOK_URL"
    label = "teams webhook"

    def render(self, out: Outbound) -> dict[str, Any]:
        return render(out)
