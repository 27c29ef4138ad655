"""MicrosoftConnector against the HTTPS identity + Graph emulator (real MSAL, real httpx)."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest

from connectors.base import (
    AuthFailed,
    CalendarProvider,
    CalendarRef,
    CursorExpired,
    NewEvent,
    NotFound,
    RateLimited,
    Unavailable,
)
from connectors.microsoft import MicrosoftConnector
from connectors.microsoft.connector import busy_from_schedule, event_from_graph
from tests.emulators.microsoft.emulator import GraphEmulator, Recurrence
from tests.emulators.microsoft.harness import (
    CertPair,
    RunningEmulator,
    generate_self_signed_cert,
    run_emulator,
    ssl_context,
    trust_env,
)

REP = "rep@contoso.com"
SAMPLES = Path(__file__).resolve().parents[3] / "shared" / "provider-samples" / "msgraph"
NOW = datetime.now(UTC).replace(microsecond=0)
SINCE = NOW - timedelta(days=14)


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> CertPair:
    return generate_self_signed_cert(tmp_path_factory.mktemp("ms-cert"))


@pytest.fixture
def ms(cert: CertPair, monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningEmulator]:
    for key, value in trust_env(cert).items():
        monkeypatch.setenv(key, value)
    with run_emulator(cert) as running:
        running.emulator.add_user(REP, display_name="Rita Rep")
        yield running


def make(ms: RunningEmulator, **kwargs) -> MicrosoftConnector:
    options = {
        "authority": ms.authority,
        "graph_root": ms.graph_root,
        "backoff_base": 0.001,
        "backoff_cap": 0.005,
        "page_size": 2,
        "timeout": 10.0,
    }
    options.update(kwargs)
    secret = options.pop("client_secret", ms.client_secret)
    client_id = options.pop("client_id", ms.client_id)
    return MicrosoftConnector(ms.tenant_id, client_id, secret, **options)


@pytest.fixture
async def connector(ms: RunningEmulator) -> AsyncIterator[MicrosoftConnector]:
    conn = make(ms)
    yield conn
    await conn.aclose()


CAL = CalendarRef(rep_id="rep-1", email=REP)


def add(em: GraphEmulator, subject: str, start: datetime, hours: float = 1, **kw) -> str:
    return em.add_event(REP, subject=subject, start=start, end=start + timedelta(hours=hours), **kw)


async def full_sync(conn: MicrosoftConnector, cal: CalendarRef = CAL, since: datetime = SINCE):
    """Run a full round; return (events by id, final cursor, pages)."""
    page = await conn.sync_page(cal, None, since=since)
    pages = [page]
    while not page.last_page:
        page = await conn.sync_page(cal, page.cursor, since=since)
        pages.append(page)
    return {e.event_id: e for p in pages for e in p.events}, page.cursor, pages


async def incremental(conn: MicrosoftConnector, cursor: str, cal: CalendarRef = CAL):
    page = await conn.sync_page(cal, cursor, since=SINCE)
    pages = [page]
    while not page.last_page:
        page = await conn.sync_page(cal, page.cursor, since=SINCE)
        pages.append(page)
    events = {e.event_id: e for p in pages for e in p.events}
    removed = [r for p in pages for r in p.removed_ids]
    return events, removed, page.cursor, pages


# --- auth ---------------------------------------------------------------------------


async def test_is_a_calendar_provider(connector: MicrosoftConnector) -> None:
    assert isinstance(connector, CalendarProvider)
    assert connector.name == "microsoft"


async def test_msal_client_credentials_over_https_token_cached(
    ms: RunningEmulator, connector: MicrosoftConnector
) -> None:
    add(ms.emulator, "a", NOW)
    for _ in range(3):
        await full_sync(connector)
    calls = ms.emulator.calls
    assert calls["GET openid-configuration"] == 1  # tenant discovery, no instance discovery
    assert calls["POST token"] == 1  # MSAL served the next calls from its cache
    assert calls["GET calendarView.delta"] == 3
    method, url, headers = ms.emulator.requests[0]
    assert headers["authorization"].startswith("Bearer ey")


async def test_revoked_token_is_refreshed_once(
    ms: RunningEmulator, connector: MicrosoftConnector
) -> None:
    await full_sync(connector)
    ms.emulator.revoke_tokens()
    await full_sync(connector)
    assert ms.emulator.calls["POST token"] == 2


@pytest.mark.parametrize(
    ("client_id", "secret", "error"),
    [
        (None, "wrong-secret", "invalid_client"),
        ("00000000-0000-0000-0000-000000000000", None, "unauthorized_client"),
    ],
)
async def test_bad_app_credentials_are_auth_failed(ms, client_id, secret, error) -> None:
    kwargs = {}
    if client_id:
        kwargs["client_id"] = client_id
    if secret:
        kwargs["client_secret"] = secret
    conn = make(ms, **kwargs)
    try:
        with pytest.raises(AuthFailed, match=error) as info:
            await conn.sync_page(CAL, None, since=SINCE)
        assert info.value.__cause__ is not None
    finally:
        await conn.aclose()
    assert ms.emulator.calls["GET calendarView.delta"] == 0


async def test_unknown_tenant_is_auth_failed(ms: RunningEmulator) -> None:
    conn = MicrosoftConnector(
        "not-my-tenant",
        ms.client_id,
        ms.client_secret,
        authority=f"{ms.base_url}/not-my-tenant",
        graph_root=ms.graph_root,
    )
    try:
        with pytest.raises(AuthFailed):
            await conn.sync_page(CAL, None, since=SINCE)
    finally:
        await conn.aclose()


async def test_refused_mailbox_is_auth_failed(ms, connector) -> None:
    ms.emulator.add_user("ceo@contoso.com", allowed=False)  # application access policy
    ms.emulator.add_user("onprem@contoso.com", rest_enabled=False)
    for email in ("ceo@contoso.com", "onprem@contoso.com"):
        cal = CalendarRef(rep_id="x", email=email)
        with pytest.raises(AuthFailed) as info:
            await connector.sync_page(cal, None, since=SINCE)
        assert info.value.__cause__ is not None
    with pytest.raises(AuthFailed, match="ErrorAccessDenied"):
        await connector.free_busy(
            CalendarRef(rep_id="x", email="ceo@contoso.com"), NOW, NOW + timedelta(hours=1)
        )
    with pytest.raises(NotFound, match="ErrorInvalidUser"):
        await connector.sync_page(
            CalendarRef(rep_id="x", email="ghost@contoso.com"), None, since=SINCE
        )


async def test_missing_write_permission_is_auth_failed(ms: RunningEmulator) -> None:
    ms.emulator.register_app("reader", "reader-secret", roles={"Calendars.Read"})
    conn = make(ms, client_id="reader", client_secret="reader-secret")
    try:
        await full_sync(conn)  # reading works
        with pytest.raises(AuthFailed):
            await conn.create_event(
                CAL, NewEvent(title="x", start=NOW, end=NOW + timedelta(hours=1), attendees=())
            )
    finally:
        await conn.aclose()


def test_default_authority_keeps_instance_discovery() -> None:
    conn = MicrosoftConnector("contoso-tenant", "cid", "secret")
    assert conn.client.authority == "https://login.microsoftonline.com/contoso-tenant"
    assert not conn.client.custom_authority
    sovereign = MicrosoftConnector("t", "c", "s", authority="https://login.microsoftonline.us/t")
    assert sovereign.client.custom_authority
    with pytest.raises(ValueError):
        MicrosoftConnector("t", "c", "s", subscription_minutes=10_081)


# --- sync ---------------------------------------------------------------------------


async def test_delta_pages_follow_next_link_to_delta_link(ms, connector) -> None:
    ids = [add(ms.emulator, f"m{i}", NOW + timedelta(days=i)) for i in range(5)]
    add(ms.emulator, "too old", SINCE - timedelta(days=2))
    add(ms.emulator, "too far", SINCE + timedelta(days=401))
    events, cursor, pages = await full_sync(connector)
    assert [len(p.events) for p in pages] == [2, 2, 1]
    assert [p.last_page for p in pages] == [False, False, True]
    assert all(p.full for p in pages)
    assert set(events) == set(ids)
    first = ms.emulator.requests[-3]
    assert "startDateTime=" in first[1] and "endDateTime=" in first[1]
    assert 'outlook.timezone="UTC"' in first[2]["prefer"]
    assert "odata.maxpagesize=2" in first[2]["prefer"]
    assert "$skiptoken" in ms.emulator.requests[-2][1]
    # nothing changed: the delta link answers an empty incremental page
    events, removed, cursor2, pages = await incremental(connector, cursor)
    assert (events, removed, pages[0].full, pages[-1].last_page) == ({}, [], False, True)
    assert "$deltatoken" in ms.emulator.requests[-1][1]


async def test_incremental_changes_and_removed(ms, connector) -> None:
    em = ms.emulator
    keep, change, gone, moved = (add(em, n, NOW + timedelta(days=i)) for i, n in enumerate("abcd"))
    _, cursor, _ = await full_sync(connector)
    em.update_event(REP, change, subject="b renamed")
    em.delete_event(REP, gone)
    em.move_event(REP, moved, SINCE + timedelta(days=500), SINCE + timedelta(days=500, hours=1))
    new = add(em, "e", NOW + timedelta(days=5))
    events, removed, cursor, pages = await incremental(connector, cursor)
    assert not any(p.full for p in pages)
    assert set(events) == {change, new}
    assert events[change].title == "b renamed"
    assert set(removed) == {gone, moved}  # moved out of the window -> @removed
    assert keep not in events
    # and the next round sees nothing new
    events, removed, _, _ = await incremental(connector, cursor)
    assert (events, removed) == ({}, [])


async def test_series_occurrences_and_exceptions(ms, connector) -> None:
    em = ms.emulator
    start = NOW.replace(hour=15, minute=0, second=0) + timedelta(days=1)
    master = em.add_event(
        REP,
        subject="weekly sync",
        start=start,
        end=start + timedelta(minutes=30),
        attendees=[("buyer@prospect.com", "required", "accepted")],
        recurrence=Recurrence("weekly", count=4),
    )
    moved_orig = start + timedelta(weeks=1)
    exception = em.modify_occurrence(
        REP,
        master,
        moved_orig,
        start=moved_orig + timedelta(hours=2),
        end=moved_orig + timedelta(hours=2, minutes=30),
    )
    em.delete_occurrence(REP, master, start + timedelta(weeks=2))
    events, cursor, _ = await full_sync(connector)
    assert master not in events  # instances only, never the master
    assert len(events) == 3
    assert {e.recurring_event_id for e in events.values()} == {master}
    ex = events[exception]
    assert ex.original_start == moved_orig
    assert ex.start == moved_orig + timedelta(hours=2)
    occ = events[em.occurrence_id(REP, master, start)]
    assert occ.original_start == occ.start == start
    # a change to one occurrence comes back alone
    em.modify_occurrence(REP, master, start + timedelta(weeks=3), subject="last one")
    changed, removed, _, _ = await incremental(connector, cursor)
    assert [e.title for e in changed.values()] == ["last one"]
    assert removed == []


async def test_responses_organizer_attendee_and_resource(ms, connector) -> None:
    em = ms.emulator
    mine = add(
        em,
        "demo",
        NOW + timedelta(days=1),
        attendees=[
            ("buyer@prospect.com", "required", "accepted"),
            ("cfo@prospect.com", "optional", "none"),
            ("maybe@prospect.com", "required", "tentativelyAccepted"),
            ("room-4@contoso.com", "resource", "accepted"),
        ],
    )
    invited = add(
        em,
        "their meeting",
        NOW + timedelta(days=2),
        organizer="seller@partner.com",
        attendees=[(REP, "required", "none"), ("x@partner.com", "required", "none")],
    )
    events, _, _ = await full_sync(connector)
    demo = events[mine]
    assert demo.rep_response == "accepted" and demo.organizer_email == REP
    by = {a.email: a for a in demo.attendees}
    assert by["buyer@prospect.com"].response == "accepted"
    assert by["cfo@prospect.com"].response == "needs_action" and by["cfo@prospect.com"].optional
    assert by["maybe@prospect.com"].response == "tentative"
    assert by["room-4@contoso.com"].is_resource
    theirs = events[invited]
    assert theirs.rep_response == "needs_action"  # notResponded in the rep's own copy
    assert theirs.organizer_email == "seller@partner.com"
    em.set_own_response(REP, invited, "declined")
    events, _, _ = await full_sync(connector)
    assert events[invited].rep_response == "declined"
    assert {a.email: a.response for a in events[invited].attendees}[REP] == "declined"


async def test_invitation_between_emulated_mailboxes(ms, connector) -> None:
    em = ms.emulator
    em.add_user("colleague@contoso.com")
    created = await connector.create_event(
        CAL,
        NewEvent(
            title="follow-up",
            start=NOW + timedelta(days=3),
            end=NOW + timedelta(days=3, minutes=30),
            attendees=("colleague@contoso.com", "buyer@prospect.com"),
            request_id="req-1",
        ),
    )
    colleague = CalendarRef(rep_id="c", email="colleague@contoso.com")
    theirs, _, _ = await full_sync(connector, colleague)
    [copy] = theirs.values()
    assert copy.rep_response == "needs_action" and copy.organizer_email == REP
    _, cursor, _ = await full_sync(connector)
    em.set_response(REP, created.event_id, "buyer@prospect.com", "accepted")
    events, _, _, _ = await incremental(connector, cursor)
    assert {a.email: a.response for a in events[created.event_id].attendees} == {
        REP: "accepted",  # the organizer, listed like Google does
        "colleague@contoso.com": "needs_action",
        "buyer@prospect.com": "accepted",
    }


async def test_cancelled_oof_all_day(ms, connector) -> None:
    em = ms.emulator
    meeting = add(em, "call", NOW + timedelta(days=1), organizer="boss@partner.com")
    em.update_event(REP, meeting, is_cancelled=True)
    oof = add(em, "holiday", NOW + timedelta(days=2), show_as="oof")
    day = datetime(NOW.year, NOW.month, NOW.day, tzinfo=ZoneInfo("Europe/Paris")) + timedelta(
        days=3
    )
    all_day = em.add_event(
        REP,
        subject="offsite",
        start=day,
        end=day + timedelta(days=2),
        all_day=True,
        time_zone="Romance Standard Time",
    )
    events, _, _ = await full_sync(connector)
    assert events[meeting].status == "cancelled"
    assert events[oof].event_type == "out_of_office"
    offsite = events[all_day]
    assert offsite.all_day
    assert offsite.start == datetime(day.year, day.month, day.day, tzinfo=UTC)
    assert offsite.end - offsite.start == timedelta(days=2)


async def test_windows_zone_names_mapped_via_cldr(ms, connector) -> None:
    em = ms.emulator
    em.set_mailbox(REP, honour_prefer_timezone=False)  # times come in each event's own zone
    paris = ZoneInfo("Europe/Paris")
    base = NOW.astimezone(paris).replace(hour=9, minute=0, second=0) + timedelta(days=1)
    e1 = em.add_event(
        REP,
        subject="paris",
        start=base,
        end=base + timedelta(hours=1),
        time_zone="Romance Standard Time",
    )
    ny = base.astimezone(ZoneInfo("America/New_York")).replace(hour=14)
    e2 = em.add_event(
        REP, subject="ny", start=ny, end=ny + timedelta(hours=1), time_zone="Eastern Standard Time"
    )
    e3 = em.add_event(
        REP, subject="iana", start=base, end=base + timedelta(hours=2), time_zone="Asia/Tokyo"
    )
    events, _, _ = await full_sync(connector)
    raw = json.dumps(
        em._render(em.mailboxes[REP], em._instances(em.mailboxes[REP].events[e1])[0], None)["start"]
    )
    assert "Romance Standard Time" in raw
    assert events[e1].start == base.astimezone(UTC)
    assert events[e1].time_zone == "Europe/Paris"
    assert events[e2].start == ny.astimezone(UTC) and events[e2].time_zone == "America/New_York"
    assert events[e3].end == (base + timedelta(hours=2)).astimezone(UTC)
    assert events[e3].time_zone == "Asia/Tokyo"


async def test_expired_delta_token_then_full_restart_converges(ms, connector) -> None:
    em = ms.emulator
    ids = {add(em, f"m{i}", NOW + timedelta(days=i)) for i in range(3)}
    _, cursor, _ = await full_sync(connector)
    em.expire_delta_tokens(REP)
    gone = ids.pop()
    em.delete_event(REP, gone)
    ids.add(add(em, "new", NOW + timedelta(days=9)))
    with pytest.raises(CursorExpired, match="SyncStateNotFound") as info:
        await connector.sync_page(CAL, cursor, since=SINCE)
    assert info.value.__cause__ is not None
    events, cursor, pages = await full_sync(connector)
    assert pages[0].full and set(events) == ids
    events, removed, _, _ = await incremental(connector, cursor)
    assert (events, removed) == ({}, [])


async def test_mid_round_skip_token_expiry_is_cursor_expired(ms, connector) -> None:
    for i in range(3):
        add(ms.emulator, f"m{i}", NOW + timedelta(days=i))
    page = await connector.sync_page(CAL, None, since=SINCE)
    ms.emulator.expire_delta_tokens()
    with pytest.raises(CursorExpired):
        await connector.sync_page(CAL, page.cursor, since=SINCE)


async def test_window_roll_and_foreign_cursor(ms, connector) -> None:
    add(ms.emulator, "a", NOW)
    _, cursor, _ = await full_sync(connector)
    with pytest.raises(CursorExpired, match="roll"):
        await connector.sync_page(CAL, cursor, since=SINCE + timedelta(days=31))
    with pytest.raises(CursorExpired):
        await connector.sync_page(CAL, "garbage", since=SINCE)
    foreign = cursor.replace(ms.graph_root, "https://evil.example/v1.0")
    with pytest.raises(CursorExpired):
        await connector.sync_page(CAL, foreign, since=SINCE)


# --- retries ------------------------------------------------------------------------


async def test_429_retry_after_fractional_is_honoured(ms, connector) -> None:
    ms.emulator.inject_fault(429, 2, retry_after="0.15", endpoint="GET calendarView.delta")
    started = time.monotonic()
    await full_sync(connector)
    assert time.monotonic() - started >= 0.3
    assert ms.emulator.calls["GET calendarView.delta"] == 3


async def test_429_exhausted_is_rate_limited(ms: RunningEmulator) -> None:
    conn = make(ms, max_attempts=3)
    ms.emulator.inject_fault(429, 5, retry_after="0.01")
    try:
        with pytest.raises(RateLimited) as info:
            await conn.sync_page(CAL, None, since=SINCE)
    finally:
        await conn.aclose()
    assert info.value.retry_after == 0.01
    assert ms.emulator.calls["GET calendarView.delta"] == 3


async def test_long_retry_after_is_handed_to_the_caller(ms: RunningEmulator) -> None:
    conn = make(ms, max_retry_after=5)
    ms.emulator.inject_fault(429, 1, retry_after="120")
    try:
        with pytest.raises(RateLimited) as info:
            await conn.sync_page(CAL, None, since=SINCE)
    finally:
        await conn.aclose()
    assert info.value.retry_after == 120
    assert ms.emulator.calls["GET calendarView.delta"] == 1


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_5xx_retried_with_backoff(ms, connector, status) -> None:
    add(ms.emulator, "a", NOW)
    ms.emulator.inject_fault(status, 2)
    events, _, _ = await full_sync(connector)
    assert len(events) == 1
    assert ms.emulator.calls["GET calendarView.delta"] == 3


async def test_5xx_exhausted_is_unavailable(ms: RunningEmulator) -> None:
    conn = make(ms, max_attempts=2)
    ms.emulator.inject_fault(503, 3)
    try:
        with pytest.raises(Unavailable) as info:
            await conn.free_busy(CAL, NOW, NOW + timedelta(hours=1))
    finally:
        await conn.aclose()
    assert not isinstance(info.value, RateLimited)
    assert ms.emulator.calls["POST getSchedule"] == 2


async def test_network_failure_is_unavailable(ms: RunningEmulator) -> None:
    conn = make(ms, graph_root="https://127.0.0.1:9/v1.0", max_attempts=2)
    try:
        with pytest.raises(Unavailable):
            await conn.sync_page(CAL, None, since=SINCE)
    finally:
        await conn.aclose()


# --- free/busy ----------------------------------------------------------------------


async def test_free_busy_statuses(ms, connector) -> None:
    em = ms.emulator
    t = NOW.replace(minute=0, second=0) + timedelta(days=1)
    add(em, "busy", t)
    add(em, "tentative", t + timedelta(hours=2), show_as="tentative")
    add(em, "free", t + timedelta(hours=4), show_as="free")
    add(em, "oof", t + timedelta(hours=6), show_as="oof")
    add(em, "elsewhere", t + timedelta(hours=8), show_as="workingElsewhere")
    cancelled = add(em, "cancelled", t + timedelta(hours=10), organizer="x@partner.com")
    em.update_event(REP, cancelled, is_cancelled=True)
    add(em, "overlap", t + timedelta(minutes=30))
    busy = await connector.free_busy(CAL, t, t + timedelta(hours=12))
    # as Graph lists them, sorted: overlapping items stay two (policies/slots.py merges)
    assert [(b.start - t, b.end - t) for b in busy] == [
        (timedelta(0), timedelta(hours=1)),
        (timedelta(minutes=30), timedelta(hours=1, minutes=30)),
        (timedelta(hours=2), timedelta(hours=3)),
        (timedelta(hours=6), timedelta(hours=7)),
        (timedelta(hours=8), timedelta(hours=9)),
    ]
    _, url, headers = em.requests[-1]
    assert url.endswith(f"/users/{REP}/calendar/getSchedule")


def _http_sample(name: str) -> tuple[str, dict]:
    path = SAMPLES / name
    if not path.exists():
        pytest.skip(f"provider sample {name} not available")
    text = path.read_text(encoding="utf-8")
    return text[: text.index("{")], json.loads(text[text.index("{") :])


def test_busy_from_getschedule_doc_response() -> None:
    _, body = _http_sample("getschedule_response.http")
    adele, megan = body["value"]
    # 2019-03-15 is in PDT (UTC-7): 12:00-14:00 PT = 19:00-21:00Z
    [lunch] = busy_from_schedule(adele)
    assert (lunch.start, lunch.end) == (
        datetime(2019, 3, 15, 19, tzinfo=UTC),
        datetime(2019, 3, 15, 21, tzinfo=UTC),
    )
    assert [(b.start.hour, b.end.hour) for b in busy_from_schedule(megan)] == [
        (15, 16),
        (19, 20),  # tentative 12:00-13:00 PT
        (19, 21),  # busy 12:00-14:00 PT, overlapping it (policies/slots.py merges)
        (20, 21),
        (23, 0),
    ]


async def test_getschedule_doc_request_against_emulator(ms: RunningEmulator, cert) -> None:
    """The verbatim doc request, replayed: the emulator answers like the doc response."""
    em = ms.emulator
    pt = ZoneInfo("America/Los_Angeles")
    em.add_user("adelev@contoso.onmicrosoft.com")
    em.add_user("meganb@contoso.onmicrosoft.com", share_details=False)
    day = datetime(2019, 3, 15, tzinfo=pt)

    def at(email, h1, m1, h2, m2, status="busy", **kw):
        em.add_event(
            email,
            subject=kw.pop("subject", "x"),
            start=day.replace(hour=h1, minute=m1),
            end=day.replace(hour=h2, minute=m2),
            show_as=status,
            time_zone="Pacific Standard Time",
            **kw,
        )

    at(
        "adelev@contoso.onmicrosoft.com",
        12,
        0,
        14,
        0,
        subject="Let's go for lunch",
        location="Harry's Bar",
    )
    at("meganb@contoso.onmicrosoft.com", 8, 30, 9, 30)
    at("meganb@contoso.onmicrosoft.com", 12, 0, 14, 0)
    at("meganb@contoso.onmicrosoft.com", 12, 0, 13, 0, "tentative")
    at("meganb@contoso.onmicrosoft.com", 13, 0, 14, 0)
    at("meganb@contoso.onmicrosoft.com", 16, 0, 17, 0, "tentative")
    head, request_body = _http_sample("getschedule_request.http")
    _, expected = _http_sample("getschedule_response.http")
    prefer = next(
        line.split(":", 1)[1].strip() for line in head.splitlines() if line.startswith("Prefer")
    )
    conn = make(ms)
    try:
        token = await conn.client.token()
    finally:
        await conn.aclose()
    async with httpx.AsyncClient(verify=ssl_context(cert)) as http:
        resp = await http.post(
            f"{ms.graph_root}/users/adelev@contoso.onmicrosoft.com/calendar/getSchedule",
            json=request_body,
            headers={"Authorization": f"Bearer {token}", "Prefer": prefer},
        )
    assert resp.status_code == 200
    got = resp.json()["value"]
    for mine, theirs in zip(got, expected["value"], strict=True):
        assert mine["scheduleId"] == theirs["scheduleId"]
        assert mine["availabilityView"] == theirs["availabilityView"]
        assert mine["scheduleItems"] == theirs["scheduleItems"]


# --- create event -------------------------------------------------------------------


async def test_create_event_is_idempotent_with_transaction_id(ms, connector) -> None:
    em = ms.emulator
    em.add_user("colleague@contoso.com")
    new = NewEvent(
        title="Next steps",
        start=NOW + timedelta(days=2),
        end=NOW + timedelta(days=2, minutes=30),
        attendees=("buyer@prospect.com", "colleague@contoso.com"),
        body="Agenda",
        time_zone="Europe/Paris",
        request_id="7E163156-7762-4BEB-A1C6-729EA81755A7",
    )
    # The first POST is processed but its answer is lost: the retry must not duplicate.
    em.inject_fault(504, 1, endpoint="POST events", after_processing=True)
    first = await connector.create_event(CAL, new)
    second = await connector.create_event(CAL, new)
    assert first.event_id == second.event_id
    assert em.calls["POST events"] == 3
    assert len(em.mailboxes[REP].events) == 1
    assert len(em.mailboxes["colleague@contoso.com"].events) == 1  # one invitation
    assert first.start == new.start and first.end == new.end
    assert first.rep_response == "accepted" and first.organizer_email == REP
    invitees = [a for a in first.attendees if not a.is_organizer]
    assert {a.email for a in invitees} == {"buyer@prospect.com", "colleague@contoso.com"}
    assert all(a.response == "needs_action" for a in invitees)
    [organizer] = [a for a in first.attendees if a.is_organizer]
    assert (organizer.email, organizer.response) == (REP, "accepted")
    assert first.time_zone == "Europe/Paris"
    assert em.mailboxes[REP].events[first.event_id].transaction_id == new.request_id
    _, _, headers = em.requests[-1]
    assert 'outlook.timezone="UTC"' in headers["prefer"]


async def test_create_event_doc_sample(ms: RunningEmulator, cert) -> None:
    """The verbatim doc request against the emulator, and the doc response through our mapping."""
    head, request_body = _http_sample("create_event_request.http")
    _, doc_response = _http_sample("create_event_response.http")
    prefer = next(
        line.split(":", 1)[1].strip() for line in head.splitlines() if line.startswith("Prefer")
    )
    conn = make(ms)
    try:
        token = await conn.client.token()
    finally:
        await conn.aclose()
    async with httpx.AsyncClient(verify=ssl_context(cert)) as http:
        url = f"{ms.graph_root}/users/{REP}/events"
        headers = {"Authorization": f"Bearer {token}", "Prefer": prefer}
        resp = await http.post(url, json=request_body, headers=headers)
        again = await http.post(url, json=request_body, headers=headers)
    assert resp.status_code == 201 and again.status_code == 201
    body = resp.json()
    assert again.json()["id"] == body["id"]
    assert set(doc_response) - set(body) == set()  # every documented property is there
    assert body["start"] == {
        "dateTime": "2017-04-15T12:00:00.0000000",
        "timeZone": "Pacific Standard Time",
    }
    assert body["transactionId"] == request_body["transactionId"]
    assert body["attendees"][0]["status"]["response"] == "none"
    mapped = event_from_graph(doc_response, mailbox="danas@contoso.onmicrosoft.com")
    assert mapped.start == datetime(2017, 4, 15, 18, tzinfo=UTC)  # 11:00 PDT
    assert mapped.end == datetime(2017, 4, 15, 19, tzinfo=UTC)
    assert mapped.rep_response == "accepted"
    assert mapped.time_zone == "America/Los_Angeles"
    assert mapped.created == datetime(2017, 4, 15, 3, 0, 50, 757958, tzinfo=UTC)
    org, att = mapped.attendees
    assert (org.email, org.is_organizer, org.name) == (
        "danas@contoso.onmicrosoft.com",
        True,
        "Dana Swope",
    )
    assert (att.email, att.response, att.name) == (
        "samanthab@contoso.onmicrosoft.com",
        "needs_action",
        "Samantha Booth",
    )


# --- Microsoft's verbatim delta samples, replayed -----------------------------------


async def test_delta_doc_samples_replayed(ms: RunningEmulator) -> None:
    """The delta-query-events doc rounds, served verbatim (auth still via MSAL + emulator)."""
    _, page1 = _http_sample("calendarview_delta_round1_response1.http")
    _, final = _http_sample("calendarview_delta_round1_final_response.http")
    _, round2 = _http_sample("calendarview_delta_round2_response_with_removed.http")
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        query = request.url.params
        if "$deltatoken" in query:
            assert query["$deltatoken"] == "R0usmcMDNGg0J1E"
            return httpx.Response(200, json=round2)
        if "$skiptoken" in query:
            assert query["$skiptoken"] == "R0usmcCM996atia_s"
            return httpx.Response(200, json=final)
        assert "startDateTime" in query and "endDateTime" in query
        return httpx.Response(200, json=page1)

    conn = make(
        ms, graph_root="https://graph.microsoft.com/v1.0", transport=httpx.MockTransport(handler)
    )
    try:
        since = datetime(2016, 12, 1, tzinfo=UTC)
        first = await conn.sync_page(CAL, None, since=since)
        second = await conn.sync_page(CAL, first.cursor, since=since)
        third = await conn.sync_page(CAL, second.cursor, since=since)
    finally:
        await conn.aclose()
    assert (first.full, first.last_page, second.full, second.last_page) == (True, False, True, True)
    assert [e.title for e in first.events] == ["Plan shopping list", "Pick up car"]
    assert first.events[0].start == datetime(2016, 12, 9, 20, 30, tzinfo=UTC)
    assert first.events[0].organizer_email == "samanthab@contoso.onmicrosoft.com"
    assert [e.event_id for e in second.events] == ["AAMkADj1HuAAA="]
    assert (third.full, third.last_page) == (False, True)
    assert third.removed_ids == ("AAMkADk0MGFkODE3LWE4MmYtNDRhOS04OGQLkRkXbBznTvAADb6ytyAAA=",)
    assert [e.title for e in third.events] == ["Attend service"]
    assert "R0usmcFuQtZdtpk4" in third.cursor
    assert seen[0].url.path == f"/v1.0/users/{REP}/calendarView/delta"
    assert all(r.headers["authorization"].startswith("Bearer ") for r in seen)
    assert ms.emulator.calls["POST token"] == 1


async def test_at_most_four_concurrent_requests_per_mailbox(ms, connector) -> None:
    import asyncio

    em = ms.emulator
    em.add_user("other@contoso.com")
    em.latency = 0.05
    other = CalendarRef(rep_id="o", email="other@contoso.com")
    window = (NOW, NOW + timedelta(hours=1))
    await asyncio.gather(
        *(connector.free_busy(CAL, *window) for _ in range(10)),
        *(connector.free_busy(other, *window) for _ in range(10)),
    )
    assert em.max_in_flight[REP] == 4
    assert em.max_in_flight["other@contoso.com"] == 4


@pytest.mark.parametrize("only", ["SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"])
async def test_either_ca_variable_alone_is_enough(ms, monkeypatch, only) -> None:
    other = {"SSL_CERT_FILE": "REQUESTS_CA_BUNDLE", "REQUESTS_CA_BUNDLE": "SSL_CERT_FILE"}[only]
    monkeypatch.delenv(other)
    conn = make(ms)
    try:
        await full_sync(conn)  # MSAL (requests) and Graph (httpx) both trust the emulator
    finally:
        await conn.aclose()
    assert ms.emulator.calls["POST token"] == 1


async def test_a_page_cursor_can_be_replayed_after_a_crash(ms, connector) -> None:
    ids = {add(ms.emulator, f"m{i}", NOW + timedelta(days=i)) for i in range(3)}
    first = await connector.sync_page(CAL, None, since=SINCE)
    # the process died after storing first.cursor but before applying the next page
    again = await connector.sync_page(CAL, first.cursor, since=SINCE)
    replay = await connector.sync_page(CAL, first.cursor, since=SINCE)
    assert [e.event_id for e in again.events] == [e.event_id for e in replay.events]
    assert {e.event_id for e in first.events + again.events} == ids
    assert again.full and again.last_page


async def test_503_with_retry_after_waits_that_long(ms, connector) -> None:
    ms.emulator.inject_fault(503, 1, retry_after="0.2")
    started = time.monotonic()
    await full_sync(connector)
    assert time.monotonic() - started >= 0.2


async def test_long_free_busy_windows_are_chunked_under_62_days(ms, connector) -> None:
    em = ms.emulator
    t = NOW.replace(minute=0, second=0)
    for days in (1, 61, 100):
        add(em, f"d{days}", t + timedelta(days=days))
    busy = await connector.free_busy(CAL, t, t + timedelta(days=120))
    assert [b.start - t for b in busy] == [timedelta(days=d) for d in (1, 61, 100)]
    assert em.calls["POST getSchedule"] == 2
    # the emulator refuses what Graph refuses
    token = await connector.client.token()
    async with httpx.AsyncClient(verify=ssl_context(ms.cert)) as http:
        resp = await http.post(
            f"{ms.graph_root}/users/{REP}/calendar/getSchedule",
            json={
                "schedules": [REP],
                "startTime": {"dateTime": "2026-01-01T00:00:00", "timeZone": "UTC"},
                "endTime": {"dateTime": "2026-03-05T00:00:00", "timeZone": "UTC"},
            },
            headers={"Authorization": f"Bearer {token}"},
        )
    assert resp.status_code == 400
    assert resp.json()["error"]["code"] == "ErrorTimeIntervalTooBig"


async def test_msal_refreshes_tokens_close_to_expiry(ms, connector) -> None:
    ms.emulator.token_lifetime = 120  # MSAL refreshes tokens with < 5 minutes left
    await full_sync(connector)
    await full_sync(connector)
    assert ms.emulator.calls["POST token"] == 2


async def test_private_and_confidential_events_carry_the_private_flag(ms, connector) -> None:
    marked = {
        sensitivity: add(ms.emulator, sensitivity, NOW + timedelta(days=n), sensitivity=sensitivity)
        for n, sensitivity in enumerate(("private", "confidential", "personal", "normal"))
    }
    events, _, _ = await full_sync(connector)
    flags = {sensitivity: events[eid].private for sensitivity, eid in marked.items()}
    assert flags == {"private": True, "confidential": True, "personal": False, "normal": False}


async def test_video_hold_patch_and_delete_as_graph_does_them(ms, connector) -> None:
    """isOnlineMeeting + teamsForBusiness gives a Teams joinUrl; a hold is showAs tentative
    with no attendees; PATCH moves the event and asks the invitees again; DELETE cancels."""
    em = ms.emulator
    start = NOW + timedelta(days=2)
    invite = NewEvent(
        title="Next steps",
        start=start,
        end=start + timedelta(minutes=15),
        attendees=("buyer@prospect.com",),
        body="Agenda",
        time_zone="Europe/Paris",
        video=True,
    )
    created = await connector.create_event(CAL, invite)
    _, url, _ = em.requests[-1]
    stored = em.mailboxes[REP].events[created.event_id]
    assert created.video_link and created.video_link == stored.join_url
    assert created.video_link.startswith("https://teams.microsoft.com/")
    assert created.description == "Agenda"

    hold = await connector.create_event(
        CAL,
        NewEvent(
            title="Hold: follow-up with Prospect",
            start=start + timedelta(hours=1),
            end=start + timedelta(hours=1, minutes=15),
            attendees=(),
            tentative=True,
        ),
    )
    assert em.mailboxes[REP].events[hold.event_id].show_as == "tentative"
    assert em.mailboxes[REP].events[hold.event_id].attendees == []

    em.set_response(REP, created.event_id, "buyer@prospect.com", "accepted")
    later = start + timedelta(days=1)
    moved = await connector.update_event(
        CAL,
        created.event_id,
        NewEvent(
            title="Next steps",
            start=later,
            end=later + timedelta(minutes=15),
            attendees=("buyer@prospect.com",),
            body="Agenda",
            video=True,
        ),
    )
    assert moved.event_id == created.event_id and moved.start == later
    assert stored.join_url == created.video_link, "the Teams meeting is kept"
    buyer = next(a for a in moved.attendees if a.email == "buyer@prospect.com")
    assert buyer.response == "needs_action", "a new time asks the invitee again"

    await connector.delete_event(CAL, hold.event_id)
    assert hold.event_id not in em.mailboxes[REP].events
    await connector.delete_event(CAL, hold.event_id)  # already gone: fine
    with pytest.raises(NotFound):
        await connector.update_event(CAL, hold.event_id, invite)
