"""An instance as Graph's ``event`` JSON (``api-reference/v1.0/resources/event.md``).

Times are shown in the zone asked for with ``Prefer: outlook.timezone`` (UTC when none),
or in each event's own zone when the mailbox does not honour the preference. The owner's
copy shows only its own answer; real answers of others appear in the organizer's copy.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from tests.emulators.microsoft.state import Event, Mailbox, etag
from tests.emulators.microsoft.times import fmt7, fmt_local
from tests.emulators.microsoft.zones import emulator_zone


def out_zone(mb: Mailbox, prefs: dict[str, str]) -> str | None:
    """Zone name to render times in; None = each event's own zone."""
    if not mb.honour_prefer_timezone:
        return None
    return prefs.get("outlook.timezone") or "UTC"


def render_event(mb: Mailbox, inst: dict[str, Any], zone_name: str | None) -> dict[str, Any]:
    """``inst`` as ``mb``'s owner sees it, times in ``zone_name`` (None: the event's own)."""
    ev: Event = inst["ev"]
    shown_zone = zone_name or ev.time_zone
    tz = emulator_zone(shown_zone) or UTC

    def dtz(value: datetime) -> dict[str, str]:
        if ev.all_day:
            # All-day: the floating date at midnight, in whatever zone is shown.
            local = value.astimezone(emulator_zone(ev.time_zone) or UTC)
            return {"dateTime": f"{local:%Y-%m-%d}T00:00:00.0000000", "timeZone": shown_zone}
        return {"dateTime": fmt_local(value.astimezone(tz)), "timeZone": shown_zone}

    is_org = ev.organizer[0].lower() == mb.email.lower()
    attendees = []
    for a in inst.get("attendees", ev.attendees):  # an exception may have its own
        response = a.response if is_org else "none"  # copies show no one else's answer
        attendees.append(
            {
                "type": a.type,
                "status": {"response": response, "time": "0001-01-01T00:00:00Z"},
                "emailAddress": {"name": a.name or a.email, "address": a.email},
            }
        )
    version = etag(mb, inst)
    return {
        "@odata.type": "#microsoft.graph.event",
        "@odata.etag": f'W/"{version}"',
        "id": inst["id"],
        "createdDateTime": fmt7(ev.created),
        "lastModifiedDateTime": fmt7(ev.modified),
        "changeKey": version,
        "categories": [],
        "transactionId": ev.transaction_id,
        "originalStartTimeZone": ev.time_zone,
        "originalEndTimeZone": ev.time_zone,
        "iCalUId": ev.ical_uid if inst["type"] == "singleInstance" else ev.ical_uid[:-16] + hashlib.md5(inst["id"].encode()).hexdigest()[:16].upper(),
        "uid": ev.ical_uid,
        "reminderMinutesBeforeStart": 15,
        "isReminderOn": True,
        "hasAttachments": False,
        "subject": inst["subject"],
        "bodyPreview": ev.body[:255],
        "importance": "normal",
        "sensitivity": ev.sensitivity,
        "originalStart": fmt7(inst["original_start"]) if inst["original_start"] else None,
        "isAllDay": ev.all_day,
        "isCancelled": inst["is_cancelled"],
        "isOrganizer": is_org,
        "responseRequested": True,
        "seriesMasterId": ev.id if inst["type"] != "singleInstance" else None,
        "showAs": inst["show_as"],
        "type": inst["type"],
        "webLink": f"https://outlook.office365.com/owa/?itemid={quote(inst['id'], safe='')}&exvsurl=1&path=/calendar/item",
        "onlineMeetingUrl": None,
        "isOnlineMeeting": ev.join_url is not None,
        "onlineMeetingProvider": "teamsForBusiness" if ev.join_url else "unknown",
        "allowNewTimeProposals": True,
        "isDraft": False,
        "hideAttendees": False,
        "recurrence": None,
        "responseStatus": {"response": ev.own_response, "time": "0001-01-01T00:00:00Z"},
        "body": {"contentType": "html", "content": f"<html><body>{ev.body}</body></html>"},
        "start": dtz(inst["start"]),
        "end": dtz(inst["end"]),
        "location": {"displayName": ev.location or "", "locationType": "default"},
        "locations": [],
        "attendees": attendees,
        "organizer": {"emailAddress": {"name": ev.organizer[1] or ev.organizer[0], "address": ev.organizer[0]}},
        "onlineMeeting": {"joinUrl": ev.join_url} if ev.join_url else None,
    }  # fmt: skip


def created_body(mb: Mailbox, inst: dict[str, Any], prefs: dict[str, str]) -> dict[str, Any]:
    """The ``201`` body of ``POST /users/{id}/events``."""
    body = render_event(mb, inst, prefs.get("outlook.timezone") or "UTC")
    body.pop("@odata.type", None)
    return {
        "@odata.context": f"https://graph.microsoft.com/v1.0/$metadata#users('{mb.id}')/events/$entity",
        **body,
    }
