"""The Graph endpoints and the router: calendarView delta, getSchedule, event creation.

Every Graph call goes through ``_graph``: counted in ``calls`` under its name, recorded
in ``requests``, given its injected fault (``faults.py``), slowed by ``latency``,
authenticated (``auth.py``), and a ``GraphHTTPError`` raised by a handler becomes Graph's
error JSON. Subscription endpoints live in ``subscriptions.py``.
"""

from __future__ import annotations

import asyncio
import secrets
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.emulators.common.faults import FaultQueue
from tests.emulators.microsoft.auth import App, Identity
from tests.emulators.microsoft.errors import GraphHTTPError, error_response
from tests.emulators.microsoft.faults import Fault, fault_response
from tests.emulators.microsoft.http import (
    MAILBOX_SETTINGS_ROLES,
    READ_ROLES,
    WRITE_ROLES,
    mailbox_for,
    prefer,
    read_json,
)
from tests.emulators.microsoft.render import created_body, out_zone, render_event
from tests.emulators.microsoft.state import (
    Attendee,
    DeltaRound,
    GraphState,
    Mailbox,
    etag,
    in_window,
    instances,
    new_graph_id,
)
from tests.emulators.microsoft.subscriptions import SubscriptionEndpoints
from tests.emulators.microsoft.times import fmt_local, parse_dt
from tests.emulators.microsoft.zones import emulator_zone

DEFAULT_PAGE_SIZE = 10

Handler = Callable[[Request, App], Awaitable[Response]]


def _parse_dtz(value: dict[str, Any]) -> datetime:
    """A ``dateTimeTimeZone`` as an aware UTC datetime (400 for an unknown zone)."""
    tz_name = value.get("timeZone") or "UTC"
    tz = emulator_zone(tz_name)
    if tz is None:
        raise GraphHTTPError(
            400,
            "TimeZoneNotSupportedException",
            f"A valid TimeZone value must be specified. The following TimeZone value is not supported: '{tz_name}'.",
        )
    dt = parse_dt(value["dateTime"])
    return (dt if dt.tzinfo else dt.replace(tzinfo=tz)).astimezone(UTC)


def _show_as(value: Any) -> str:
    allowed = ("free", "tentative", "busy", "oof", "workingElsewhere", "unknown")
    if value is None:
        return "busy"
    if value not in allowed:
        raise GraphHTTPError(400, "ErrorInvalidRequest", f"Invalid showAs value: {value!r}.")
    return str(value)


def _join_url(body: dict[str, Any]) -> str | None:
    """A Teams link for ``isOnlineMeeting`` (teamsForBusiness, the tenant's default here)."""
    if not body.get("isOnlineMeeting"):
        return None
    provider = body.get("onlineMeetingProvider") or "teamsForBusiness"
    if provider != "teamsForBusiness":
        return None  # this tenant offers Teams only: the event is created without a link
    return (
        "https://teams.microsoft.com/l/meetup-join/19%3ameeting_"
        + secrets.token_hex(12)
        + "%40thread.v2/0"
    )


def _working_hours(mb: Mailbox) -> dict[str, Any]:
    """A mailbox's ``workingHours`` resource, as getSchedule and mailboxSettings show it."""
    return {
        "daysOfWeek": list(mb.working_days),
        "startTime": mb.working_start,
        "endTime": mb.working_end,
        "timeZone": {"name": mb.working_time_zone},
    }


class GraphAPI:
    """The HTTP face of one emulator: ``app()`` is the Starlette app it serves."""

    def __init__(
        self,
        *,
        state: GraphState,
        auth: Identity,
        faults: FaultQueue[Fault],
        subscriptions: SubscriptionEndpoints,
        calls: Counter[str],
    ) -> None:
        self.state = state
        self._lock = state.lock
        self.auth = auth
        self.faults = faults
        self.subscriptions = subscriptions
        self.calls = calls
        self.requests: list[tuple[str, str, dict[str, str]]] = []  # method, url, headers
        self.latency = 0.0  # seconds every Graph call takes (to observe concurrency)
        self.in_flight: Counter[str] = Counter()  # per mailbox path segment
        self.max_in_flight: Counter[str] = Counter()
        self.base_url = ""  # set once served: links in responses point here

    def app(self) -> Starlette:
        graph, subs = self._graph, self.subscriptions
        return Starlette(routes=[
            Route("/{tenant}/v2.0/.well-known/openid-configuration", self.auth.openid_configuration, methods=["GET"]),
            Route("/{tenant}/oauth2/v2.0/token", self.auth.token, methods=["POST"]),
            Route("/{tenant}/oauth2/v2.0/authorize", self.auth.delegated.authorize, methods=["GET"]),
            Route("/{tenant}/discovery/v2.0/keys", self.auth.delegated.keys, methods=["GET"]),
            Route("/v1.0/users/{user}/calendarView/delta", graph("GET calendarView.delta", self.delta), methods=["GET"]),
            Route("/v1.0/users/{user}/calendar/getSchedule", graph("POST getSchedule", self.get_schedule), methods=["POST"]),
            Route("/v1.0/users/{user}/events", graph("POST events", self.create_event), methods=["POST"]),
            Route("/v1.0/users/{user}/events/{event_id:path}", graph("PATCH events", self.update_event), methods=["PATCH"]),
            Route("/v1.0/users/{user}/events/{event_id:path}", graph("DELETE events", self.delete_event), methods=["DELETE"]),
            Route("/v1.0/users/{user}/mailboxSettings", graph("GET mailboxSettings", self.mailbox_settings), methods=["GET"]),
            Route("/v1.0/subscriptions", graph("POST subscriptions", subs.create), methods=["POST"]),
            Route("/v1.0/subscriptions/{sid}", graph("GET subscriptions", subs.get), methods=["GET"]),
            Route("/v1.0/subscriptions/{sid}", graph("PATCH subscriptions", subs.renew), methods=["PATCH"]),
            Route("/v1.0/subscriptions/{sid}", graph("DELETE subscriptions", subs.delete), methods=["DELETE"]),
            Route("/v1.0/subscriptions/{sid}/reauthorize", graph("POST subscriptions.reauthorize", subs.reauthorize), methods=["POST"]),
        ])  # fmt: skip

    def _graph(self, name: str, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            with self._lock:
                self.calls[name] += 1
                self.requests.append((request.method, str(request.url), dict(request.headers)))
            fault = self.faults.take(name)
            if fault is not None and not fault.after_processing:
                return fault_response(fault, self.state.now())
            who = str(request.path_params.get("user", "")).lower()
            with self._lock:
                self.in_flight[who] += 1
                self.max_in_flight[who] = max(self.max_in_flight[who], self.in_flight[who])
            try:
                if self.latency:
                    await asyncio.sleep(self.latency)
                app = self.auth.authenticate(request)
                response = await handler(request, app)
            except GraphHTTPError as err:
                response = error_response(
                    err.status, err.code, err.message, self.state.now(), err.headers
                )
            finally:
                with self._lock:
                    self.in_flight[who] -= 1
            return fault_response(fault, self.state.now()) if fault is not None else response

        return endpoint

    # --- calendarView delta ----------------------------------------------------------

    async def delta(self, request: Request, app: App) -> Response:
        q = {k.lower(): v for k, v in request.query_params.items()}
        prefs = prefer(request)
        state = self.state
        with self._lock:
            mb = mailbox_for(state, request.path_params["user"], app, READ_ROLES)
            key = mb.email.lower()
            generation = state.generation(key)
            page_size = int(prefs["odata.maxpagesize"]) if "odata.maxpagesize" in prefs else None
            if "$skiptoken" in q or "$deltatoken" in q:
                token = q.get("$skiptoken") or q.get("$deltatoken") or ""
                round_ = state.delta_rounds.get(token)
                if round_ is None or round_.mailbox != key:
                    raise GraphHTTPError(
                        400, "ErrorInvalidUrlQuery", "The skip or delta token is not valid."
                    )
                if round_.generation != generation:
                    raise GraphHTTPError(
                        410,
                        "SyncStateNotFound",
                        f"The sync state generation is not found; generation={round_.generation};[highest={generation}].",
                    )
                if "$deltatoken" in q:
                    current = state.all_instances(mb)
                    snapshot = {i: etag(mb, inst) for i, inst in current.items()}
                    items: list[tuple[str, dict[str, Any] | None]] = []
                    for iid, inst in current.items():
                        if round_.snapshot.get(iid) == snapshot[iid]:
                            continue
                        inside = in_window(inst, round_.start, round_.end)
                        # Graph: changes outside the window come back as @removed too.
                        items.append((iid, inst if inside else None))
                    items += [(iid, None) for iid in round_.snapshot if iid not in current]
                    round_ = DeltaRound(
                        key,
                        round_.start,
                        round_.end,
                        items,
                        0,
                        page_size or round_.page_size,
                        snapshot,
                        generation,
                    )
                else:
                    round_ = replace(round_, page_size=page_size or round_.page_size)
            else:
                try:
                    start = parse_dt(q["startdatetime"])
                    end = parse_dt(q["enddatetime"])
                except (KeyError, ValueError) as err:
                    raise GraphHTTPError(
                        400,
                        "ErrorInvalidParameter",
                        "This request requires a time window specified by the query string parameters StartDateTime and EndDateTime.",
                    ) from err
                start = start if start.tzinfo else start.replace(tzinfo=UTC)
                end = end if end.tzinfo else end.replace(tzinfo=UTC)
                if end - start > timedelta(days=1825):
                    raise GraphHTTPError(
                        400,
                        "ErrorInvalidRequest",
                        "Your request can't be completed. The range between the start and end "
                        "dates is greater than the allowed range. Maximum number of days: 1825",
                    )
                current = state.all_instances(mb)
                snapshot = {i: etag(mb, inst) for i, inst in current.items()}
                items = [
                    (iid, inst)
                    for iid, inst in sorted(current.items(), key=lambda kv: kv[1]["start"])
                    if in_window(inst, start, end)
                ]
                round_ = DeltaRound(key, start, end, items, 0, page_size, snapshot, generation)
            size = round_.page_size or DEFAULT_PAGE_SIZE
            chunk = round_.items[round_.offset : round_.offset + size]
            zone_name = out_zone(mb, prefs)
            value = [
                render_event(mb, inst, zone_name)
                if inst is not None
                else {
                    "@odata.type": "#microsoft.graph.event",
                    "id": iid,
                    "@removed": {"reason": "deleted"},
                }
                for iid, inst in chunk
            ]
            link_base = f"{self.base_url}/v1.0/users/{quote(request.path_params['user'], safe='@.')}/calendarView/delta"
            body: dict[str, Any] = {
                "@odata.context": f"{self.base_url}/v1.0/$metadata#Collection(event)"
            }
            token = secrets.token_urlsafe(24)
            if round_.offset + size < len(round_.items):
                state.delta_rounds[token] = replace(round_, offset=round_.offset + size)
                body["@odata.nextLink"] = f"{link_base}?$skiptoken={token}"
            else:
                state.delta_rounds[token] = replace(round_, items=[], offset=0)
                body["@odata.deltaLink"] = f"{link_base}?$deltatoken={token}"
            body["value"] = value
        applied = [f"odata.maxpagesize={size}"] if "odata.maxpagesize" in prefs else []
        if zone_name:
            applied.append(f'outlook.timezone="{zone_name}"')
        return JSONResponse(
            body, headers={"Preference-Applied": ", ".join(applied)} if applied else None
        )

    # --- getSchedule -----------------------------------------------------------------

    async def get_schedule(self, request: Request, app: App) -> Response:
        body = await read_json(request)
        prefs = prefer(request)
        with self._lock:
            mailbox_for(self.state, request.path_params["user"], app, READ_ROLES)
            try:
                start = _parse_dtz(body["startTime"])
                end = _parse_dtz(body["endTime"])
                schedules = list(body["schedules"])
            except (KeyError, TypeError) as err:
                raise GraphHTTPError(
                    400, "ErrorInvalidRequest", f"Missing or invalid parameter: {err}"
                ) from err
            if end - start > timedelta(days=62):
                days = (end - start).days + (1 if (end - start) % timedelta(days=1) else 0)
                raise GraphHTTPError(
                    400,
                    "ErrorTimeIntervalTooBig",
                    "The requested time duration specified for FreeBusyViewOptions.TimeWindow "
                    f"is too long. The allowed limit = 62 days; the actual limit = {days} days.",
                )
            interval = int(body.get("availabilityViewInterval") or 30)
            if not 5 <= interval <= 1440:
                raise GraphHTTPError(
                    400,
                    "ErrorInvalidParameter",
                    "availabilityViewInterval must be between 5 and 1440.",
                )
            zone_name = prefs.get("outlook.timezone") or "UTC"
            tz = emulator_zone(zone_name) or UTC
            value = []
            for sid in schedules:
                target = self.state.mailboxes.get(str(sid).lower())
                if target is None or not target.allowed:
                    value.append({
                        "scheduleId": sid,
                        "availabilityView": "",
                        "error": {"message": "The specified email address is invalid or does not exist.", "responseCode": "ErrorMailRecipientNotFound"},
                    })  # fmt: skip
                    continue
                insts = sorted(
                    (
                        i
                        for ev in target.events.values()
                        for i in instances(ev)
                        if not i["is_cancelled"] and in_window(i, start, end)
                    ),
                    key=lambda i: i["start"],
                )
                items = []
                for inst in insts:
                    ev = inst["ev"]
                    item: dict[str, Any] = {}
                    if target.share_details:
                        item.update(
                            {
                                "isPrivate": ev.sensitivity == "private",
                                "status": inst["show_as"],
                                "subject": inst["subject"],
                                "location": ev.location or "",
                            }
                        )
                    else:
                        item["status"] = inst["show_as"]
                    item["start"] = {
                        "dateTime": fmt_local(inst["start"].astimezone(tz)),
                        "timeZone": zone_name,
                    }
                    item["end"] = {
                        "dateTime": fmt_local(inst["end"].astimezone(tz)),
                        "timeZone": zone_name,
                    }
                    items.append(item)
                view = []
                slot = start
                rank = {"free": 0, "tentative": 1, "workingElsewhere": 1, "busy": 2, "oof": 3}
                digit = {
                    "free": "0",
                    "tentative": "1",
                    "busy": "2",
                    "oof": "3",
                    "workingElsewhere": "4",
                }
                while slot < end:
                    slot_end = slot + timedelta(minutes=interval)
                    statuses = [
                        i["show_as"] for i in insts if i["start"] < slot_end and i["end"] > slot
                    ]
                    best = max(statuses, key=lambda s: rank.get(s, 0), default="free")
                    view.append(digit.get(best, "0"))
                    slot = slot_end
                value.append({
                    "scheduleId": sid,
                    "availabilityView": "".join(view),
                    "scheduleItems": items,
                    "workingHours": _working_hours(target),
                })  # fmt: skip
        return JSONResponse(
            {"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#Collection(microsoft.graph.scheduleInformation)", "value": value}
        )  # fmt: skip

    # --- mailbox settings ------------------------------------------------------------

    async def mailbox_settings(self, request: Request, app: App) -> Response:
        """``GET /users/{id}/mailboxSettings`` (application permission MailboxSettings.Read
        or MailboxSettings.ReadWrite; Calendars.* alone is refused with 403)."""
        with self._lock:
            mb = mailbox_for(self.state, request.path_params["user"], app, MAILBOX_SETTINGS_ROLES)
            return JSONResponse({
                "@odata.context": f"https://graph.microsoft.com/v1.0/$metadata#users('{mb.id}')/mailboxSettings",
                "archiveFolder": new_graph_id(mb.id.encode()),
                "timeZone": mb.working_time_zone,
                "automaticRepliesSetting": {
                    "status": "disabled",
                    "externalAudience": "all",
                    "internalReplyMessage": "",
                    "externalReplyMessage": "",
                },
                "language": {"locale": "en-US", "displayName": "English (United States)"},
                "dateFormat": "M/d/yyyy",
                "timeFormat": "h:mm tt",
                "userPurpose": "user",
                "delegateMeetingMessageDeliveryOptions": "sendToDelegateOnly",
                "workingHours": _working_hours(mb),
            })  # fmt: skip

    # --- events ----------------------------------------------------------------------

    async def create_event(self, request: Request, app: App) -> Response:
        body = await read_json(request)
        prefs = prefer(request)
        state = self.state
        with self._lock:
            mb = mailbox_for(state, request.path_params["user"], app, WRITE_ROLES)
            try:
                start_raw, end_raw = body["start"], body["end"]
                start, end = _parse_dtz(start_raw), _parse_dtz(end_raw)
            except (KeyError, TypeError, ValueError) as err:
                if isinstance(err, GraphHTTPError):
                    raise
                raise GraphHTTPError(
                    400,
                    "ErrorInvalidRequest",
                    "Your request can't be completed. Start and End are required.",
                ) from err
            if end < start:
                raise GraphHTTPError(
                    400,
                    "ErrorInvalidRequest",
                    "Your request can't be completed. The end time must be after the start time.",
                )
            tx = body.get("transactionId")
            if tx:
                existing = next((e for e in mb.events.values() if e.transaction_id == tx), None)
                if existing is not None:
                    # A retried POST with the same transactionId: the same event, no new invites.
                    return JSONResponse(
                        created_body(mb, instances(existing)[0], prefs), status_code=201
                    )
            attendees = []
            for raw in body.get("attendees") or []:
                ea = (raw or {}).get("emailAddress") or {}
                if not ea.get("address"):
                    raise GraphHTTPError(
                        400, "ErrorInvalidRecipients", "At least one recipient isn't valid."
                    )
                attendees.append(
                    Attendee(
                        ea["address"], ea.get("name"), str(raw.get("type") or "required").lower()
                    )
                )
            event_id = state.add_event(
                mb.email,
                subject=str(body.get("subject") or ""),
                start=start,
                end=end,
                time_zone=start_raw.get("timeZone") or "UTC",
                attendees=attendees,
                body=str((body.get("body") or {}).get("content") or ""),
                location=(body.get("location") or {}).get("displayName"),
                show_as=_show_as(body.get("showAs")),
                transaction_id=tx,
                join_url=_join_url(body),
            )
            ev = mb.events[event_id]
            state.deliver_invitations(mb, ev)
            return JSONResponse(created_body(mb, instances(ev)[0], prefs), status_code=201)

    async def update_event(self, request: Request, app: App) -> Response:
        """``PATCH /users/{id}/events/{id}``: the given properties change; the organizer's
        update goes to the invitees (a new time asks them again). ``200`` with the event."""
        body = await read_json(request)
        prefs = prefer(request)
        state = self.state
        with self._lock:
            mb = mailbox_for(state, request.path_params["user"], app, WRITE_ROLES)
            ev = mb.events.get(request.path_params["event_id"])
            if ev is None:
                raise GraphHTTPError(
                    404, "ErrorItemNotFound", "The specified object was not found in the store."
                )
            start, end = ev.start, ev.end
            try:
                if "start" in body:
                    start = _parse_dtz(body["start"])
                if "end" in body:
                    end = _parse_dtz(body["end"])
            except (KeyError, TypeError, ValueError) as err:
                if isinstance(err, GraphHTTPError):
                    raise
                raise GraphHTTPError(400, "ErrorInvalidRequest", "Invalid start or end.") from err
            if end < start:
                raise GraphHTTPError(
                    400,
                    "ErrorInvalidRequest",
                    "Your request can't be completed. The end time must be after the start time.",
                )
            moved = (start, end) != (ev.start, ev.end)
            changes: dict[str, Any] = {"start": start, "end": end}
            if "subject" in body:
                changes["subject"] = str(body["subject"] or "")
            if "body" in body:
                changes["body"] = str((body["body"] or {}).get("content") or "")
            if "showAs" in body:
                changes["show_as"] = _show_as(body["showAs"])
            if body.get("isOnlineMeeting") and ev.join_url is None:
                changes["join_url"] = _join_url(body)
            if "attendees" in body:
                answers = {a.email.lower(): a.response for a in ev.attendees}
                people = []
                for raw in body.get("attendees") or []:
                    ea = (raw or {}).get("emailAddress") or {}
                    if not ea.get("address"):
                        raise GraphHTTPError(
                            400, "ErrorInvalidRecipients", "At least one recipient isn't valid."
                        )
                    response = "none" if moved else answers.get(ea["address"].lower(), "none")
                    people.append(
                        Attendee(
                            ea["address"],
                            ea.get("name"),
                            str(raw.get("type") or "required").lower(),
                            response,
                        )
                    )
                changes["attendees"] = people
            elif moved:
                changes["attendees"] = [replace(a, response="none") for a in ev.attendees]
            new_people = {a.email.lower() for a in changes.get("attendees", [])} - {
                a.email.lower() for a in ev.attendees
            }
            state.update_event(mb.email, ev.id, **changes)
            state.send_update(mb, ev, moved=moved)
            if new_people:
                state.deliver_invitations(
                    mb,
                    replace(
                        ev, attendees=[a for a in ev.attendees if a.email.lower() in new_people]
                    ),
                )
            return JSONResponse(
                created_body(mb, instances(ev)[0], prefs)
                | {
                    "@odata.context": f"https://graph.microsoft.com/v1.0/$metadata#users('{mb.id}')/events/$entity"
                }
            )

    async def delete_event(self, request: Request, app: App) -> Response:
        """``DELETE /users/{id}/events/{id}``: ``204``; the organizer's delete cancels it for
        the invitees."""
        state = self.state
        with self._lock:
            mb = mailbox_for(state, request.path_params["user"], app, WRITE_ROLES)
            ev = mb.events.get(request.path_params["event_id"])
            if ev is None:
                raise GraphHTTPError(
                    404, "ErrorItemNotFound", "The specified object was not found in the store."
                )
            state.cancel_event(mb.email, ev.id)
        return Response(status_code=204)
