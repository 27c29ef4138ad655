"""The Calendar v3 endpoints: one method per API method, and the router that maps them.

Each call goes through ``_begin`` first: it may be held at a gate, is counted and
recorded, authenticated and scope-checked (``auth.py``), and may take an injected fault
(``faults.py``). The handlers then check parameters the way the reference pages say and
read or change the model (``state.py``) under its lock.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections import Counter
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.emulators.common.faults import FaultQueue, Gates
from tests.emulators.google.auth import ServiceAccounts
from tests.emulators.google.errors import error_response
from tests.emulators.google.faults import Fault, fault_response
from tests.emulators.google.notifier import ChannelNotifier, Sink
from tests.emulators.google.state import CalendarStore, bounds, now, parse_time, stamp

SYNC_TOKEN_FORBIDDEN = (
    "iCalUID", "orderBy", "privateExtendedProperty", "q", "sharedExtendedProperty",
    "timeMin", "timeMax", "updatedMin",
)  # fmt: skip
_ID_CHARS = set("abcdefghijklmnopqrstuv0123456789")
MAX_CHANNEL_TTL = 30 * 24 * 3600


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    body: Any
    subject: str | None


def conference_of(payload: dict[str, Any], version: str | None) -> dict[str, Any] | Response:
    """``conferenceData`` as Google takes it: ignored unless ``conferenceDataVersion=1``;
    a ``createRequest`` for ``hangoutsMeet`` gets a Meet (``entryPoints``, ``hangoutLink``)."""
    if version not in (None, "0", "1"):
        return error_response(
            400, "invalid", location="conferenceDataVersion", locationType="parameter"
        )
    payload = dict(payload)
    conference = payload.pop("conferenceData", None)
    if version != "1" or not isinstance(conference, dict):
        return payload
    create = conference.get("createRequest")
    if not isinstance(create, dict):
        return payload
    key = (create.get("conferenceSolutionKey") or {}).get("type")
    if not create.get("requestId") or key not in ("hangoutsMeet", "eventHangout"):
        return error_response(400, "invalid", "Invalid conference type value.")
    seed = hashlib.sha256(str(create["requestId"]).encode()).hexdigest()
    letters = "".join(chr(ord("a") + int(c, 16) % 26) for c in seed[:10])
    code = f"{letters[:3]}-{letters[3:7]}-{letters[7:10]}"
    uri = f"https://meet.google.com/{code}"
    payload["conferenceData"] = {
        "createRequest": {
            "requestId": create["requestId"],
            "conferenceSolutionKey": {"type": key},
            "status": {"statusCode": "success"},
        },
        "entryPoints": [{"entryPointType": "video", "uri": uri, "label": uri[8:]}],
        "conferenceSolution": {"key": {"type": key}, "name": "Google Meet"},
        "conferenceId": code,
    }
    payload["hangoutLink"] = uri
    return payload


def _bool(value: str | None) -> bool | None:
    if value is None:
        return None
    return value.lower() == "true"


def _bad_json() -> Response:
    return error_response(400, "badRequest", "Invalid JSON payload received.")


class CalendarAPI:
    """The HTTP face of one emulator: ``app()`` is the Starlette app it serves."""

    def __init__(
        self,
        *,
        store: CalendarStore,
        auth: ServiceAccounts,
        faults: FaultQueue[Fault],
        gates: Gates,
        notifier: ChannelNotifier,
        sink: Sink,
        calls: Counter[str],
        requests: list[RecordedRequest],
    ) -> None:
        self.store = store
        self._lock = store.lock
        self.auth = auth
        self.faults = faults
        self.gates = gates
        self.notifier = notifier
        self.sink = sink
        self.calls = calls
        self.requests = requests
        self.api_root = ""  # set once served
        self.oauth: Any = None  # oauth.GoogleOAuth: web-server OAuth and OpenID Connect

    def app(self) -> Starlette:
        v3 = "/calendar/v3"
        events = f"{v3}/calendars/{{calendarId}}/events"
        return Starlette(
            routes=[
                *(
                    self.oauth.routes()
                    if self.oauth
                    else [Route("/token", self.auth.token, methods=["POST"])]
                ),
                Route(f"{events}/watch", self.events_watch, methods=["POST"]),
                Route(events, self.events_list, methods=["GET"]),
                Route(events, self.events_insert, methods=["POST"]),
                Route(f"{events}/{{eventId}}", self.events_get, methods=["GET"]),
                Route(f"{events}/{{eventId}}", self.events_patch, methods=["PATCH"]),
                Route(f"{events}/{{eventId}}", self.events_delete, methods=["DELETE"]),
                Route(f"{v3}/channels/stop", self.channels_stop, methods=["POST"]),
                Route(f"{v3}/freeBusy", self.freebusy, methods=["POST"]),
                Route("/_sink/{key}", self.sink.receive, methods=["POST"]),
            ]
        )

    async def _begin(
        self, request: Request, method: str, body: Any = None
    ) -> tuple[str | None, Response | None]:
        """Count, record, authenticate, check scopes and inject faults; return subject."""
        await self.gates.pass_through(method)
        with self._lock:
            self.calls[method] += 1
            info = self.auth.lookup(request)
            subject = info["subject"] if info else None
            self.requests.append(
                RecordedRequest(
                    method=method,
                    path=request.url.path,
                    query={
                        k: request.query_params.getlist(k)
                        for k in request.query_params.keys()
                        if k != "alt"
                    },
                    body=body,
                    subject=subject,
                )
            )
            refused = self.auth.refusal(info, method)
            if refused is not None:
                return None, refused
            fault = self.faults.take(method)
            if fault is not None:
                return None, fault_response(fault)
        return subject, None

    async def _begin_json(
        self, request: Request, method: str, *, require_object: bool = False
    ) -> tuple[str | None, Any, Response | None]:
        """``_begin`` for a method with a JSON body: ``(subject, payload, failure)``.

        ``payload`` is None when the body is not JSON; ``require_object`` makes anything
        but a JSON object a ``400 badRequest`` (after authentication, as Google does).
        """
        try:
            payload = await request.json()
        except ValueError:
            payload = None
        subject, failure = await self._begin(request, method, payload)
        if failure is None and require_object and not isinstance(payload, dict):
            failure = _bad_json()
        return subject, payload, failure

    async def events_list(self, request: Request) -> Response:
        subject, failure = await self._begin(request, "events.list")
        if failure:
            return failure
        q = request.query_params
        store = self.store
        with self._lock:
            cal = store.owned_calendar(request.path_params["calendarId"], subject)
            if cal is None:
                return error_response(404, "notFound")
            try:
                max_results = int(q.get("maxResults", "250"))
            except ValueError:
                return error_response(
                    400, "invalid", location="maxResults", locationType="parameter"
                )
            if not 1 <= max_results <= 2500:
                return error_response(
                    400, "invalid", location="maxResults", locationType="parameter"
                )
            sync_token = q.get("syncToken")
            if sync_token is not None:
                for name in SYNC_TOKEN_FORBIDDEN:
                    if name in q:
                        return error_response(
                            400, "invalid",
                            f"Sync token cannot be used together with the parameter {name}.",
                            location=name, locationType="parameter",
                        )  # fmt: skip
                if _bool(q.get("showDeleted")) is False:
                    return error_response(
                        400, "invalid", "showDeleted cannot be false with a sync token.",
                        location="showDeleted", locationType="parameter",
                    )  # fmt: skip
                known = store.sync_tokens.get(sync_token)
                if known is None or known[0] != cal.email or known[2] < cal.token_epoch:
                    return error_response(410, "fullSyncRequired")
            signature = json.dumps(
                {
                    k: q.getlist(k)
                    for k in sorted(q.keys())
                    if k not in ("pageToken", "alt", "maxResults")
                }
            )
            page_token = q.get("pageToken")
            if page_token is not None:
                state = store.page_states.get(page_token)
                if state is None or state["signature"] != signature:
                    return error_response(
                        400,
                        "invalid",
                        "Invalid page token or query changed.",
                        location="pageToken",
                        locationType="parameter",
                    )
            else:
                try:
                    time_min = parse_time(q["timeMin"]) if "timeMin" in q else None
                    time_max = parse_time(q["timeMax"]) if "timeMax" in q else None
                except ValueError:
                    return error_response(
                        400, "invalid", location="timeMin", locationType="parameter"
                    )
                if time_min and time_max and time_min >= time_max:
                    return error_response(400, "timeRangeEmpty")
                since_seq = store.sync_tokens[sync_token][1] if sync_token else None
                items = store.list_items(
                    cal,
                    single_events=bool(_bool(q.get("singleEvents"))),
                    show_deleted=bool(_bool(q.get("showDeleted"))),
                    since_seq=since_seq,
                    time_min=time_min,
                    time_max=time_max,
                )
                state = {
                    "signature": signature,
                    "items": items,
                    "offset": 0,
                    "seq": store.last_seq,
                    "empty_first": store.empty_first_page,
                }
            if state.pop("empty_first", False):
                chunk: list[dict[str, Any]] = []
                offset = 0
            else:
                offset = state["offset"]
                chunk = state["items"][offset : offset + max_results]
                offset += len(chunk)
            body: dict[str, Any] = {
                "kind": "calendar#events",
                "etag": f'"p{state["seq"]:015d}"',
                "summary": cal.email,
                "updated": stamp(now()),
                "timeZone": cal.time_zone,
                "accessRole": "owner",
                "defaultReminders": [{"method": "popup", "minutes": 10}],
                "items": chunk,
            }
            if offset < len(state["items"]):
                body["nextPageToken"] = store.new_page_token({**state, "offset": offset})
            else:
                body["nextSyncToken"] = store.new_sync_token(cal, state["seq"])
            return JSONResponse(body)

    async def events_get(self, request: Request) -> Response:
        subject, failure = await self._begin(request, "events.get")
        if failure:
            return failure
        with self._lock:
            cal = self.store.owned_calendar(request.path_params["calendarId"], subject)
            found = None if cal is None else self.store.find(cal, request.path_params["eventId"])
            if found is None:
                return error_response(404, "notFound")
            return JSONResponse(found)

    async def events_insert(self, request: Request) -> Response:
        subject, payload, failure = await self._begin_json(request, "events.insert")
        if failure:
            return failure
        send_updates = request.query_params.get("sendUpdates")
        if send_updates not in (None, "all", "externalOnly", "none"):
            return error_response(400, "invalid", location="sendUpdates", locationType="parameter")
        if not isinstance(payload, dict):
            return _bad_json()
        with self._lock:
            cal = self.store.owned_calendar(request.path_params["calendarId"], subject)
            if cal is None:
                return error_response(404, "notFound")
            for key in ("start", "end"):
                moment = payload.get(key)
                if not isinstance(moment, dict) or not (
                    moment.get("dateTime") or moment.get("date")
                ):
                    return error_response(400, "required", f"Missing {key} time.")
            try:
                start, end = bounds(payload)
            except (ValueError, KeyError):
                return error_response(400, "invalid", "Invalid start or end time.")
            if end < start:
                return error_response(400, "timeRangeEmpty")
            event_id = payload.get("id")
            if event_id is not None:
                if not (5 <= len(event_id) <= 1024) or not set(event_id) <= _ID_CHARS:
                    return error_response(400, "invalid", "Invalid resource id value.")
                if event_id in cal.events:
                    return error_response(409, "duplicate")
            else:
                event_id = self.store.new_event_id()
            payload = conference_of(payload, request.query_params.get("conferenceDataVersion"))
            if isinstance(payload, Response):
                return payload
            rendered = self.store.insert_event(cal, payload, event_id, send_updates)
        return JSONResponse(rendered)

    async def events_patch(self, request: Request) -> Response:
        """``events.patch``: the given fields replace the stored ones (``attendees`` as a
        whole list); a new time asks every guest to answer again. Refused on a series
        instance id or a deleted event (404/410), as the reference says for patch."""
        subject, payload, failure = await self._begin_json(
            request, "events.patch", require_object=True
        )
        if failure:
            return failure
        send_updates = request.query_params.get("sendUpdates")
        if send_updates not in (None, "all", "externalOnly", "none"):
            return error_response(400, "invalid", location="sendUpdates", locationType="parameter")
        with self._lock:
            cal = self.store.owned_calendar(request.path_params["calendarId"], subject)
            if cal is None:
                return error_response(404, "notFound")
            ev = cal.events.get(request.path_params["eventId"])
            if ev is None:
                return error_response(404, "notFound")
            if ev.deleted:
                return error_response(410, "deleted", "Resource has been deleted")
            if ev.body.get("organizer", {}).get("email", "").lower() != cal.email:
                return error_response(403, "forbiddenForNonOrganizer")
            payload = conference_of(payload, request.query_params.get("conferenceDataVersion"))
            if isinstance(payload, Response):
                return payload
            merged = {**ev.body, **payload}
            try:
                start, end = bounds(merged)
            except (ValueError, KeyError, TypeError):
                return error_response(400, "invalid", "Invalid start or end time.")
            if end < start:
                return error_response(400, "timeRangeEmpty")
            rendered = self.store.patch_event(cal, ev, payload, send_updates)
        return JSONResponse(rendered)

    async def events_delete(self, request: Request) -> Response:
        """``events.delete``: ``204``; a deleted event answers ``410 deleted``."""
        subject, failure = await self._begin(request, "events.delete")
        if failure:
            return failure
        with self._lock:
            cal = self.store.owned_calendar(request.path_params["calendarId"], subject)
            if cal is None:
                return error_response(404, "notFound")
            ev = cal.events.get(request.path_params["eventId"])
            if ev is None:
                return error_response(404, "notFound")
            if ev.deleted:
                return error_response(410, "deleted", "Resource has been deleted")
            self.store.sent_updates.append((ev.body["id"], request.query_params.get("sendUpdates")))
        self.store.cancel_event(cal.email, ev.body["id"])
        return Response(status_code=204)

    async def events_watch(self, request: Request) -> Response:
        subject, payload, failure = await self._begin_json(
            request, "events.watch", require_object=True
        )
        if failure:
            return failure
        with self._lock:
            cal = self.store.owned_calendar(request.path_params["calendarId"], subject)
            if cal is None:
                return error_response(404, "notFound")
            channel_id = payload.get("id")
            address = payload.get("address")
            if not channel_id:
                return error_response(400, "required", "Required channel id.")
            if payload.get("type") not in ("web_hook", "webhook"):
                return error_response(400, "invalid", "Invalid value for: type.")
            if not address:
                return error_response(400, "required", "Required address.")
            parsed = urlparse(address)
            loopback = parsed.hostname in ("127.0.0.1", "localhost", "::1")
            if parsed.scheme != "https" and not (parsed.scheme == "http" and loopback):
                # Google only delivers to https with a valid certificate; the emulator
                # also lets loopback http through so tests need no TLS.
                return error_response(
                    400, "push.webhookUrlNotHttps", "WebHook callback must be HTTPS: " + address
                )
            existing = self.store.channels.get(channel_id)
            if existing is not None and not existing.stopped:
                return error_response(
                    400, "channelIdNotUnique", f"Channel id {channel_id} not unique"
                )
            now_ms = int(now().timestamp() * 1000)
            ttl = MAX_CHANNEL_TTL
            params = payload.get("params") or {}
            if "ttl" in params:
                try:
                    ttl = min(int(params["ttl"]), MAX_CHANNEL_TTL)
                except ValueError:
                    return error_response(400, "invalid", "Invalid ttl.")
            expiration = now_ms + ttl * 1000
            if payload.get("expiration"):
                expiration = min(expiration, int(payload["expiration"]))
            channel = self.store.watch(
                cal,
                channel_id=channel_id,
                token=payload.get("token"),
                address=address,
                resource_uri=f"{self.api_root}calendar/v3/calendars/{cal.email}/events?alt=json",
                subject=subject or "",
                expiration_ms=expiration,
            )
            done = self.notifier.send(channel, "sync")
        if self.notifier.sync_before_watch_response:
            await asyncio.to_thread(done.wait, 5)
        body = {
            "kind": "api#channel",
            "id": channel.id,
            "resourceId": channel.resource_id,
            "resourceUri": channel.resource_uri,
            "expiration": str(channel.expiration_ms),
        }
        if channel.token is not None:
            body["token"] = channel.token
        return JSONResponse(body)

    async def channels_stop(self, request: Request) -> Response:
        subject, payload, failure = await self._begin_json(request, "channels.stop")
        if failure:
            return failure
        if not isinstance(payload, dict) or not payload.get("id"):
            return error_response(400, "required", "Required channel id.")
        with self._lock:
            channel = self.store.channels.get(payload["id"])
            if (
                channel is None
                or channel.stopped
                or channel.subject != subject
                or payload.get("resourceId") not in (None, channel.resource_id)
            ):
                return error_response(
                    404,
                    "notFound",
                    f"Channel '{payload['id']}' not found for project '000000000000'",
                )
            channel.stopped = True
        return Response(status_code=204)

    async def freebusy(self, request: Request) -> Response:
        subject, payload, failure = await self._begin_json(
            request, "freebusy.query", require_object=True
        )
        if failure:
            return failure
        for key in ("timeMin", "timeMax"):
            if not payload.get(key):
                return error_response(400, "required", f"Missing {key}.")
        try:
            time_min, time_max = parse_time(payload["timeMin"]), parse_time(payload["timeMax"])
        except ValueError:
            return error_response(400, "invalid", "Invalid timeMin/timeMax.")
        if time_min >= time_max:
            return error_response(400, "timeRangeEmpty")
        calendars: dict[str, Any] = {}
        with self._lock:
            for item in payload.get("items") or []:
                cid = str(item.get("id", ""))
                cal = self.store.calendars.get(
                    subject if cid == "primary" and subject else cid.lower()
                )
                if cal is None:
                    calendars[cid] = {
                        "errors": [{"domain": "global", "reason": "notFound"}],
                        "busy": [],
                    }
                    continue
                calendars[cid] = {"busy": self.store.busy(cal, time_min, time_max)}
        return JSONResponse(
            {
                "kind": "calendar#freeBusy",
                "timeMin": stamp(time_min),
                "timeMax": stamp(time_max),
                "calendars": calendars,
            }
        )
