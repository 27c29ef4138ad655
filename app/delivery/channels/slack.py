"""Nudges in Slack: to a channel through an incoming webhook (``SlackChannel``), or to
each recipient as a direct message from a bot (``SlackBotChannel``). One renderer
(``render``) for both: mrkdwn sections, and the nudge's ``actions`` as link buttons.

Incoming webhook:

Slack answers ``200 ok``; a bad request comes back as a 4xx with a plain-text reason
(``invalid_payload``, ``action_prohibited``, ``channel_not_found``, ``no_service``,
``channel_is_archived``) that no retry will fix; ``429`` carries ``Retry-After``; ``5xx``
is Slack's own trouble. The webhook URL is a secret (its path is the token), so only its
host ever appears in a result's ``detail``.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any, ClassVar

import httpx

from app.delivery.channels import _http
from app.delivery.channels.base import Clock, DeliveryResult, Outbound
from policies.vocabulary import NudgeKind

log = logging.getLogger(__name__)

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
# Block Kit limits: 25 elements in an actions block, 75 characters of button text, 3000 of URL.
ACTIONS_LIMIT = 25
BUTTON_TEXT_LIMIT = 75
BUTTON_URL_LIMIT = 3000


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

    buttons = action_buttons(payload)
    if buttons:
        blocks.append({"type": "actions", "elements": buttons})

    fallback = out.subject or f"{title}: {meeting.get('title') or rep.get('email', '')}"
    return {"text": _escape(fallback), "blocks": blocks}


def action_buttons(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """The nudge's ``actions`` (``{"kind", "url", "label"}``) as Block Kit link buttons:
    Slack opens the URL in the reader's browser (the action page asks before doing)."""
    out: list[dict[str, Any]] = []
    for i, action in enumerate(payload.get("actions") or []):
        if not isinstance(action, dict) or not action.get("url"):
            continue
        url = str(action["url"])
        if len(url) > BUTTON_URL_LIMIT:
            continue  # Slack would refuse the whole message
        label = str(action.get("label") or action.get("kind") or "Open")
        if len(label) > BUTTON_TEXT_LIMIT:
            label = label[: BUTTON_TEXT_LIMIT - 1] + "…"
        button: dict[str, Any] = {
            "type": "button",
            "text": {"type": "plain_text", "text": label, "emoji": True},
            "url": url,
            "action_id": f"nextstep-{action.get('kind', 'action')}-{i}"[:255],
        }
        if action.get("kind") == "send_invite" and not out:
            button["style"] = "primary"  # the best slot
        out.append(button)
        if len(out) == ACTIONS_LIMIT:
            break
    return out


class SlackChannel(_http.JsonWebhookChannel):
    """Post each nudge to the Slack channel behind one incoming-webhook URL."""

    name: ClassVar[str] = "slack"
    setting = "Slack webhook URL"
    label = "slack webhook"

    def render(self, out: Outbound) -> dict[str, Any]:
        return render(out)


# --- the bot: a direct message to each recipient ------------------------------------------

# ``ok: false`` errors that say the recipient is not a Slack user of this workspace: the
# nudge is skipped (logged), never retried forever.
UNKNOWN_RECIPIENT = frozenset({"users_not_found", "user_not_found", "user_not_visible"})


class SlackBotChannel(_http.HttpChannel):
    """Each nudge as a direct message to its recipient, found by e-mail.

    ``users.lookupByEmail`` (scope ``users:read.email``) gives the user id;
    ``chat.postMessage`` (scope ``chat:write``) with ``channel`` = that id posts in the
    bot's DM with them. ``ok: false`` and HTTP ``429`` (with ``Retry-After``) are retried
    by the outbox; a recipient Slack does not know is logged and skipped.
    """

    name: ClassVar[str] = "slack_bot"
    per_recipient: ClassVar[bool] = True  # one outbox row per recipient, like e-mail

    def __init__(
        self,
        token: str,
        *,
        api_root: str = "https://slack.com/api/",
        timeout: float = 10.0,
        client: httpx.AsyncClient | None = None,
        clock: Clock | None = None,
    ) -> None:
        if not token:
            raise ValueError("NEXTSTEP_SLACK_BOT_TOKEN: a bot token is required")
        root = api_root if api_root.endswith("/") else api_root + "/"
        self._root = _http.checked_url(root, setting="NEXTSTEP_SLACK_API_ROOT")
        self._token = token
        super().__init__(self._root, "slack api", timeout, client, clock, keep_path=True)

    async def _call(
        self,
        method: str,
        *,
        params: dict[str, str] | None = None,
        body: dict[str, Any] | None = None,
    ) -> tuple[dict[str, Any] | None, DeliveryResult | None]:
        """One Web API call: its JSON body when ``ok``, else the failed result."""
        url = self._root.join(method)
        headers = {"Authorization": f"Bearer {self._token}"}
        what = f"{self._what} {method}"
        try:
            if body is None:
                response = await self._client.get(url, params=params, headers=headers)
            else:
                response = await self._client.post(
                    url,
                    content=json.dumps(body, ensure_ascii=False).encode("utf-8"),
                    headers={**headers, "Content-Type": "application/json; charset=utf-8"},
                )
        except httpx.TimeoutException as err:
            return None, DeliveryResult(
                ok=False, retryable=True, detail=f"{what} timed out ({type(err).__name__})"
            )
        except httpx.TransportError as err:
            reason = str(err) or type(err).__name__
            return None, DeliveryResult(
                ok=False, retryable=True, detail=f"{what} unreachable: {reason}"
            )
        if response.status_code != 200:
            return None, _http.judge(response, what=what, clock=self._clock)
        try:
            doc = response.json()
        except ValueError:
            return None, DeliveryResult(
                ok=False, retryable=True, detail=f"{what} answered 200 without JSON"
            )
        if not isinstance(doc, dict) or doc.get("ok") is not True:
            error = doc.get("error", "unknown_error") if isinstance(doc, dict) else "not_an_object"
            return None, DeliveryResult(
                ok=False,
                retryable=error not in UNKNOWN_RECIPIENT,
                detail=f"{what} answered ok=false: {error}",
                retry_after=_http.retry_after(response.headers.get("Retry-After"), self._clock),
            )
        return doc, None

    async def send(self, out: Outbound) -> DeliveryResult:
        """Look the recipient up, then post the rendered nudge in their DM."""
        if not out.recipient:
            return DeliveryResult(ok=False, retryable=False, detail="slack nudge has no recipient")
        found, failed = await self._call("users.lookupByEmail", params={"email": out.recipient})
        if failed is not None:
            if not failed.retryable:
                log.warning(
                    "slack.recipient_unknown",
                    extra={"nudge_id": out.nudge_id, "recipient": out.recipient},
                )
                return DeliveryResult(
                    ok=False,
                    retryable=False,
                    detail=f"{out.recipient} is not a Slack user of this workspace: skipped "
                    f"({failed.detail})",
                )
            return failed
        assert found is not None
        user_id = (found.get("user") or {}).get("id")
        if not user_id:
            return DeliveryResult(
                ok=False, retryable=True, detail=f"{self._what} users.lookupByEmail: no user id"
            )
        message = render(out)
        message["channel"] = user_id
        message["unfurl_links"] = False
        posted, failed = await self._call("chat.postMessage", body=message)
        if failed is not None:
            return failed
        assert posted is not None
        return DeliveryResult(
            ok=True,
            retryable=False,
            detail=f"{self._what} chat.postMessage ok (channel {posted.get('channel')}, "
            f"ts {posted.get('ts')})",
        )
