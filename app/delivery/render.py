"""A nudge rendered for people: subject (reader's locale), plain text and HTML e-mail body.

The plain text and the HTML carry the same action links: in the text as ``label: url``
lines, in the HTML as buttons (table-based, inline styles: what mail clients render).
Wording lives in ``templates/email.yaml`` and ``templates/nudge.html`` (Jinja2).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml
from jinja2 import Environment, FileSystemLoader, select_autoescape

FOLDER = Path(__file__).with_name("templates")


def html_templates(folder: Path) -> Environment:
    """The Jinja2 set-up for the HTML we write (e-mail bodies, action pages): escaped."""
    return Environment(
        loader=FileSystemLoader(folder),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )


_HTML = html_templates(FOLDER)


@cache
def _texts() -> dict[str, dict[str, Any]]:
    doc: dict[str, dict[str, Any]] = yaml.safe_load(
        FOLDER.joinpath("email.yaml").read_text(encoding="utf-8")
    )
    return doc


def _locale(payload: dict[str, Any]) -> str:
    return "fr" if payload.get("locale") == "fr" else "en"


def render_subject(payload: dict[str, Any]) -> str:
    t = _texts()[_locale(payload)]
    meeting = payload.get("meeting") or {}
    account = payload.get("account") or {}  # account_at_risk: about the account, not a meeting
    about = (account.get("name") or account.get("domain")) if account else meeting.get("title")
    about = " ".join(str(about or meeting.get("account_domain") or "").split())
    template = t["subjects"].get(payload.get("kind"), t["subjects"]["other"])
    return f"[NextStep] {template.format(about=about)}"


def render_text(payload: dict[str, Any]) -> tuple[str, str]:
    """Subject and plain text of a nudge for people (e-mail, console)."""
    t = _texts()[_locale(payload)]
    lines = [payload.get("message", ""), ""]
    actions = payload.get("actions") or []
    if actions:
        lines.append(t["actions"])
        lines += [f"- {a['label']}: {a['url']}" for a in actions]
        lines.append("")
    draft = payload.get("draft_invite") or {}
    if draft:
        lines += [
            t["draft"],
            f"{t['subject']}: {draft.get('subject', '')}",
            f"{t['to']}: {', '.join(draft.get('attendees', []))}",
            "",
            draft.get("body", ""),
        ]
    return render_subject(payload), "\n".join(lines).strip() + "\n"


def render_html(payload: dict[str, Any]) -> str:
    """The HTML part of the e-mail: the message, the actions as buttons, the draft."""
    t = _texts()[_locale(payload)]
    message = str(payload.get("message", ""))
    paragraphs = [p.split("\n") for p in message.split("\n\n") if p.strip()]
    return _HTML.get_template("nudge.html").render(
        t=t,
        subject=render_subject(payload),
        paragraphs=paragraphs,
        actions=payload.get("actions") or [],
        draft=payload.get("draft_invite") or None,
    )
