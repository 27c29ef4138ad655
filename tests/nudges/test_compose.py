"""What the rep (or the manager) reads, and the draft invite the prospect will get."""

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import yaml

from app.nudges.compose import (
    Composed,
    NudgeContext,
    call_length,
    compose,
    first_name,
    format_slot,
    format_time,
    humanize,
    zone_abbreviation,
)
from policies.slots import Slot

PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")
KINDS = ("no_next_step", "not_accepted", "follow_up_declined", "escalation")


def slot(*args: int, minutes: int = 15) -> Slot:
    start = datetime(*args, tzinfo=NEW_YORK)
    return Slot(start=start, end=start + timedelta(minutes=minutes))


WINTER_SLOTS = (slot(2026, 11, 24, 10), slot(2026, 11, 25, 9), slot(2026, 11, 26, 9, 30))


def context(kind: str = "no_next_step", locale: str = "en", **overrides) -> NudgeContext:
    """A Paris rep's discovery call with a New York prospect on Monday, November 23, 2026."""
    meeting_start = datetime(2026, 11, 23, 15, tzinfo=PARIS)
    meeting_end = meeting_start + timedelta(hours=1)
    fields: dict = {
        "kind": kind,
        "locale": locale,
        "rep_email": "alice.martin@seller.io",
        "rep_timezone": "Europe/Paris",
        "meeting_title": "Acme discovery call",
        "meeting_start": meeting_start,
        "meeting_end": meeting_end,
        "account_domain": "acme.com",
        "account_name": "Acme Corp",
        "prospect_timezone": "America/New_York",
        "external_attendees": ("dana.smith@acme.com",),
        "slots": WINTER_SLOTS,
        "follow_up_duration": timedelta(minutes=15),
        "window_name": "invite_within",
        "window": timedelta(hours=2),
        "window_closed_at": meeting_end + timedelta(hours=2),
    }
    if kind in ("not_accepted", "follow_up_declined"):
        fields |= {
            "follow_up_title": "Acme: proposal review",
            "follow_up_start": datetime(2026, 11, 23, 17, 30, tzinfo=PARIS),
        }
    if kind == "not_accepted":
        fields |= {
            "window_name": "accept_within",
            "window": timedelta(days=2),
            "window_closed_at": meeting_end + timedelta(days=2),
        }
    if kind == "follow_up_declined":
        fields |= {"window_name": None, "window": None, "window_closed_at": None}
    if kind == "escalation":
        fields |= {
            "manager_email": "pat.jones@seller.io",
            "escalated_kind": "no_next_step",
            "nudged_at": meeting_end + timedelta(hours=2, minutes=1),
        }
    return NudgeContext(**(fields | overrides))


# --- the message -------------------------------------------------------------------------

WHY = {
    ("no_next_step", "en"): ["No next step is booked", "within 2 hours of the meeting's end"],
    ("no_next_step", "fr"): ["Aucune prochaine étape", "dans un délai de 2 heures"],
    ("not_accepted", "en"): ["has not been accepted yet", "The prospect had 2 days to accept it."],
    ("not_accepted", "fr"): [
        "n'a pas encore été acceptée",
        "Le prospect disposait de 2 jours pour l'accepter.",
    ],
    ("follow_up_declined", "en"): ["The prospect declined", '"Acme: proposal review"'],
    ("follow_up_declined", "fr"): ["Le prospect a décliné", "« Acme: proposal review »"],
    ("escalation", "en"): ["has not acted on a NextStep nudge", "within 2 hours"],
    ("escalation", "fr"): ["n'a pas donné suite à une relance", "dans un délai de 2 heures"],
}
MEETING_WHEN = {
    "en": '"Acme discovery call" with Acme Corp',
    "fr": "« Acme discovery call » avec Acme Corp",
}
MEETING_DATE = {"en": "Monday, November 23 at 3:00 PM CET", "fr": "lundi 23 novembre à 15:00 CET"}
SLOT_LINES = {
    "en": [
        "- Tuesday, November 24 at 4:00 PM CET (prospect: 10:00 AM EST)",
        "- Wednesday, November 25 at 3:00 PM CET (prospect: 9:00 AM EST)",
        "- Thursday, November 26 at 3:30 PM CET (prospect: 9:30 AM EST)",
    ],
    "fr": [
        "- mardi 24 novembre à 16:00 CET (prospect : 10:00 EST)",
        "- mercredi 25 novembre à 15:00 CET (prospect : 9:00 EST)",
        "- jeudi 26 novembre à 15:30 CET (prospect : 9:30 EST)",
    ],
}


@pytest.mark.parametrize("locale", ["en", "fr"])
@pytest.mark.parametrize("kind", KINDS)
def test_message_says_why_and_lists_slots_in_both_zones(kind, locale):
    message = compose(context(kind, locale)).message
    assert MEETING_WHEN[locale] in message
    assert MEETING_DATE[locale] in message
    for phrase in WHY[(kind, locale)]:
        assert phrase in message
    for line in SLOT_LINES[locale]:
        assert line in message.splitlines()


@pytest.mark.parametrize(
    ("locale", "closed"),
    [
        ("en", "That window closed on Monday, November 23 at 6:00 PM CET."),
        ("fr", "Ce délai a expiré le lundi 23 novembre à 18:00 CET."),
    ],
)
def test_message_says_when_the_window_closed(locale, closed):
    assert closed in compose(context("no_next_step", locale)).message


def test_not_accepted_message_names_the_follow_up():
    message = compose(context("not_accepted")).message
    assert 'The invite is "Acme: proposal review" on Monday, November 23 at 5:30 PM CET.' in message
    assert "That window closed on Wednesday, November 25 at 4:00 PM CET." in message


@pytest.mark.parametrize(
    ("locale", "phrase"),
    [
        ("en", "No slot could be found"),
        ("fr", "Aucun créneau libre n'a été trouvé"),
    ],
)
@pytest.mark.parametrize("kind", KINDS)
def test_message_says_plainly_when_no_slot_was_found(kind, locale, phrase):
    message = compose(context(kind, locale, slots=())).message
    assert phrase in message
    assert "prospect: " not in message and "prospect : " not in message


def test_prospect_date_is_spelled_out_when_it_differs_from_the_reps():
    tokyo_slot = Slot(
        start=datetime(2026, 11, 24, 16, tzinfo=ZoneInfo("America/Los_Angeles")),
        end=datetime(2026, 11, 24, 16, 15, tzinfo=ZoneInfo("America/Los_Angeles")),
    )
    ctx = context(
        rep_timezone="Asia/Tokyo",
        prospect_timezone="America/Los_Angeles",
        slots=(tokyo_slot,),
    )
    assert (
        "- Wednesday, November 25 at 9:00 AM JST (prospect: Tuesday, November 24 at 4:00 PM PST)"
        in compose(ctx).message
    )


@pytest.mark.parametrize(
    ("locale", "greeting", "rep"),
    [
        ("en", "Hi Pat,", "alice.martin@seller.io, on your team,"),
        ("fr", "Bonjour Pat,", "alice.martin@seller.io, membre de votre équipe,"),
    ],
)
def test_escalation_is_addressed_to_the_manager(locale, greeting, rep):
    message = compose(context("escalation", locale)).message
    assert message.splitlines()[0] == greeting
    assert rep in message
    assert (
        "Monday, November 23 at 6:01 PM CET" in message
        or "lundi 23 novembre à 18:01 CET" in message
    )


def test_escalation_greets_a_manager_without_a_first_name():
    message = compose(context("escalation", manager_email="sales-lead@seller.io")).message
    assert message.startswith("Hello,\n")


def test_escalation_needs_a_manager():
    with pytest.raises(ValueError, match="manager_email"):
        context("escalation", manager_email=None)


def test_french_message_is_french():
    message = compose(context("no_next_step", "fr")).message
    assert "Créneaux proposés pour un suivi de 15 minutes" in message
    assert "Un brouillon d'invitation (en anglais) pour dana.smith@acme.com" in message
    for english in (" the ", " with ", "Tuesday", " AM ", " PM "):
        assert english not in message


def test_a_suggestion_equal_to_the_follow_up_itself_is_not_offered_again():
    taken = WINTER_SLOTS[0].start
    ctx = context("follow_up_declined", follow_up_start=taken)
    composed = compose(ctx)
    assert composed.message.count("10:00 AM EST") == 0
    assert (
        "Would Wednesday, November 25 at 9:00 AM EST work instead" in composed.draft_invite["body"]
    )


# --- the draft invite --------------------------------------------------------------------


def test_draft_invite_proposes_the_first_slot_in_the_prospects_zone():
    draft = compose(context()).draft_invite
    assert set(draft) == {"subject", "body", "attendees"}
    assert draft["attendees"] == ["dana.smith@acme.com"]
    assert draft["subject"] == "Follow-up: Acme discovery call"
    assert draft["body"].startswith("Hi Dana,\n\n")
    assert (
        "Based on what we discussed, the next step is a 15-minute call to pick up where we left "
        "off. Does Tuesday, November 24 at 10:00 AM EST work for you?"
    ) in draft["body"]
    assert "I can send the invite right now." in draft["body"]
    assert draft["body"].endswith("Best regards,\nAlice")


def test_draft_uses_edt_in_summer():
    summer = (slot(2026, 6, 16, 10), slot(2026, 6, 17, 9))
    draft = compose(
        context(
            meeting_start=datetime(2026, 6, 15, 15, tzinfo=PARIS),
            meeting_end=datetime(2026, 6, 15, 16, tzinfo=PARIS),
            slots=summer,
        )
    ).draft_invite
    assert "Does Tuesday, June 16 at 10:00 AM EDT work for you?" in draft["body"]
    assert "EST" not in draft["body"]


@pytest.mark.parametrize("kind", KINDS)
def test_draft_is_always_us_english(kind):
    assert compose(context(kind, "fr")).draft_invite == compose(context(kind, "en")).draft_invite


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("slots", [WINTER_SLOTS, ()], ids=["slots", "no-slot"])
def test_draft_is_calm_and_short(kind, slots):
    draft = compose(context(kind, slots=slots)).draft_invite
    assert "!" not in draft["subject"] + draft["body"]
    assert len(draft["body"].split()) < 90


def test_not_accepted_draft_gently_confirms_the_existing_time():
    draft = compose(context("not_accepted")).draft_invite
    assert draft["subject"] == "Re: Acme: proposal review"
    assert (
        "I wanted to confirm that Monday, November 23 at 11:30 AM EST still works for our "
        "15-minute call." in draft["body"]
    )
    assert "does Tuesday, November 24 at 10:00 AM EST work instead?" in draft["body"]


def test_declined_draft_politely_proposes_a_new_time():
    draft = compose(context("follow_up_declined")).draft_invite
    assert draft["subject"] == "New time: Acme: proposal review"
    assert "I saw that Monday, November 23 at 11:30 AM EST doesn't work for you" in draft["body"]
    assert "Would Tuesday, November 24 at 10:00 AM EST work instead" in draft["body"]


@pytest.mark.parametrize("kind", KINDS)
def test_draft_without_a_slot_asks_for_availability(kind):
    ctx = context(kind, slots=(), follow_up_start=None)
    body = compose(ctx).draft_invite["body"]
    assert not re.search(r"\d:\d\d [AP]M", body)
    assert "What times work for you" in body or "let me know a time that suits you" in body


def test_escalation_draft_is_the_one_the_rep_should_have_sent():
    draft = compose(context("escalation")).draft_invite
    assert draft == compose(context("no_next_step")).draft_invite


@pytest.mark.parametrize(
    ("attendees", "greeting"),
    [
        (("dana.smith@acme.com",), "Hi Dana,"),
        (("Anne-Marie.Dupont@acme.fr",), "Hi Anne-Marie,"),
        (("dana.smith@acme.com", "lee.wong@acme.com"), "Hi Dana and Lee,"),
        (("dsmith@acme.com",), "Hi there,"),
        (("sales.team@acme.com",), "Hi there,"),
        (("dana.smith@acme.com", "procurement@acme.com"), "Hi there,"),
        (("a.b@acme.com", "c.d@acme.com", "e.f@acme.com"), "Hi all,"),
    ],
)
def test_greeting(attendees, greeting):
    draft = compose(context(external_attendees=attendees)).draft_invite
    assert draft["body"].splitlines()[0] == greeting
    assert draft["attendees"] == list(attendees)


def test_duration_comes_from_the_policy():
    body = compose(context(follow_up_duration=timedelta(minutes=30))).draft_invite["body"]
    assert "a 30-minute call" in body


# --- formatting helpers ------------------------------------------------------------------

NOV_24_10AM_NY = datetime(2026, 11, 24, 15, tzinfo=UTC)


@pytest.mark.parametrize(
    ("zone", "locale", "expected"),
    [
        ("America/New_York", "en", "Tuesday, November 24 at 10:00 AM EST"),
        ("America/New_York", "fr", "mardi 24 novembre à 10:00 EST"),
        ("Europe/Paris", "en", "Tuesday, November 24 at 4:00 PM CET"),
        ("Europe/Paris", "fr", "mardi 24 novembre à 16:00 CET"),
        ("Asia/Tokyo", "en", "Wednesday, November 25 at 12:00 AM JST"),
        ("Asia/Dubai", "en", "Tuesday, November 24 at 7:00 PM GMT+4"),
        ("Asia/Kathmandu", "en", "Tuesday, November 24 at 8:45 PM GMT+5:45"),
        ("America/Sao_Paulo", "fr", "mardi 24 novembre à 12:00 GMT-3"),
        ("UTC", "en", "Tuesday, November 24 at 3:00 PM UTC"),
    ],
)
def test_format_slot(zone, locale, expected):
    assert format_slot(NOV_24_10AM_NY, zone, locale) == expected


def test_format_slot_french_first_of_the_month_and_summer_zones():
    first = datetime(2026, 7, 1, 10, tzinfo=UTC)
    assert format_slot(first, "Europe/Paris", "fr") == "mercredi 1er juillet à 12:00 CEST"
    assert format_slot(first, NEW_YORK, "en") == "Wednesday, July 1 at 6:00 AM EDT"
    assert format_slot(first, "America/Los_Angeles", "en").endswith("3:00 AM PDT")
    assert format_time(first, "Europe/Paris", "en") == "12:00 PM CEST"


def test_zone_abbreviation_of_a_fixed_offset():
    assert (
        zone_abbreviation(datetime(2026, 1, 1, tzinfo=UTC).astimezone(ZoneInfo("Etc/GMT+5")))
        == "GMT-5"
    )


@pytest.mark.parametrize(
    ("duration", "en", "fr"),
    [
        (timedelta(hours=2), "2 hours", "2 heures"),
        (timedelta(days=2), "2 days", "2 jours"),
        (timedelta(days=1), "1 day", "1 jour"),
        (timedelta(minutes=90), "1 hour and 30 minutes", "1 heure et 30 minutes"),
        (
            timedelta(days=1, hours=2, minutes=5),
            "1 day, 2 hours, and 5 minutes",
            "1 jour, 2 heures et 5 minutes",
        ),
        (timedelta(seconds=3), "3 seconds", "3 secondes"),
        (timedelta(0), "0 minutes", "0 minute"),
    ],
)
def test_humanize(duration, en, fr):
    assert humanize(duration, "en") == en
    assert humanize(duration, "fr") == fr


def test_humanize_rejects_negative_durations_and_unknown_locales():
    with pytest.raises(ValueError):
        humanize(timedelta(hours=-1))
    with pytest.raises(ValueError, match="locale"):
        humanize(timedelta(hours=1), "de")


@pytest.mark.parametrize(
    ("minutes", "expected"), [(15, "15-minute"), (60, "1-hour"), (90, "90-minute"), (120, "2-hour")]
)
def test_call_length(minutes, expected):
    assert call_length(timedelta(minutes=minutes)) == expected


@pytest.mark.parametrize(
    ("email", "name"),
    [
        ("dana.smith@acme.com", "Dana"),
        ("DANA.SMITH@ACME.COM", "Dana"),
        ("dana.smith+crm@acme.com", "Dana"),
        ("josé.garcía@acme.es", "José"),
        ("dana@acme.com", None),
        ("d.smith@acme.com", None),
        ("dana.smith2@acme.com", None),
        ("info.paris@acme.com", None),
    ],
)
def test_first_name(email, name):
    assert first_name(email) == name


# --- the value objects and the templates -------------------------------------------------


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"kind": "reminder"}, "kind: 'reminder'"),
        ({"locale": "de"}, "locale: 'de'"),
        ({"rep_timezone": "Mars/Base"}, "rep_timezone: 'Mars/Base' is not an IANA time zone"),
        ({"prospect_timezone": "New York"}, "prospect_timezone: 'New York'"),
        ({"meeting_start": datetime(2026, 11, 23, 15)}, "meeting_start must be a timezone-aware"),
        ({"window_closed_at": datetime(2026, 11, 23, 18)}, "window_closed_at must be"),
        ({"follow_up_duration": timedelta(0)}, "follow_up_duration must be positive"),
        ({"window_name": "reply_within"}, "window_name: 'reply_within'"),
        ({"external_attendees": "dana.smith@acme.com"}, "external_attendees"),
        ({"escalated_kind": "not_accepted"}, "escalated_kind only applies to an escalation"),
    ],
)
def test_context_validates_itself(override, message):
    with pytest.raises(ValueError, match=message):
        context(**override)


def test_context_and_result_are_frozen():
    ctx = context()
    with pytest.raises(AttributeError):
        ctx.kind = "escalation"  # type: ignore[misc]
    composed = compose(ctx)
    assert isinstance(composed, Composed)
    with pytest.raises(AttributeError):
        composed.message = ""  # type: ignore[misc]
    assert replace(ctx, locale="fr").locale == "fr"


def _shape(node):
    if isinstance(node, dict):
        return {key: _shape(value) for key, value in node.items()}
    if isinstance(node, list):
        return len(node)
    return None


def test_both_locales_define_the_same_templates():
    from importlib import resources

    text = resources.files("app.nudges").joinpath("templates/messages.yaml").read_text("utf-8")
    messages = yaml.safe_load(text)
    assert set(messages) == {"en", "fr"}
    assert _shape(messages["en"]) == _shape(messages["fr"])
