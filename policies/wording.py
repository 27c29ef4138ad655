"""The words of account health: each signal's explanation in English or French.

Pure. The signals of ``policies/signals.py`` measure; this module says what they measured,
in the locale of the account's owner (``en`` when the owner is not a registered rep).
Every explanation is whole in its locale: numbers, dates, roles, the words of the CRM's
known signal kinds (an unknown kind is the CRM's own word, quoted).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

LOCALES = ("en", "fr")

ROLES = {
    "en": {
        "decision_maker": "decision maker",
        "champion": "champion",
        "influencer": "influencer",
        "user": "user",
    },
    "fr": {
        "decision_maker": "décideur",
        "champion": "champion",
        "influencer": "influenceur",
        "user": "utilisateur",
    },
}
CRM_KINDS = {
    "en": {},
    "fr": {
        "small_talk_gone": "plus de conversation informelle",
        "feature_requests_stopped": "plus de demandes de fonctionnalités",
        "champion_left": "le champion est parti",
        "budget_frozen": "budget gelé",
        "usage_dropped": "usage en baisse",
        "support_tickets_up": "tickets de support en hausse",
        "competitor_mentioned": "concurrent évoqué",
        "payment_late": "paiement en retard",
    },
}
_MONTHS_FR = (
    "janvier février mars avril mai juin juillet août septembre octobre novembre décembre"
).split()


def lang(locale: str | None) -> str:
    return locale if locale in LOCALES else "en"


def number(value: float, locale: str) -> str:
    """12, 7.5 / 7,5."""
    text = f"{value:g}"
    return text.replace(".", ",") if locale == "fr" else text


def count(n: int, one: str, many: str, locale: str) -> str:
    """ "1 meeting", "2 meetings"; French takes the singular below 2."""
    single = n < 2 if locale == "fr" else n == 1
    return f"{n} {one if single else many}"


def join(items: Sequence[str], locale: str) -> str:
    items = list(items)
    if len(items) < 2:
        return "".join(items)
    last = " et " if locale == "fr" else (" and " if len(items) == 2 else ", and ")
    return ", ".join(items[:-1]) + last + items[-1]


def day(d: date, locale: str) -> str:
    """November 22, 2026 / 22 novembre 2026."""
    if locale == "fr":
        return f"{'1er' if d.day == 1 else d.day} {_MONTHS_FR[d.month - 1]} {d.year}"
    return d.strftime("%B ") + f"{d.day}, {d.year}"


def role(name: str, locale: str) -> str:
    return ROLES[locale].get(name, name.replace("_", " "))


# --- one function per signal ---------------------------------------------------------------


def postponed(
    locale: str, *, moves: int, lookback_days: float, slipped: float, past_period: int, cancels: int
) -> str:
    fr = locale == "fr"
    parts = []
    if moves:
        if fr:
            parts.append(
                f"{count(moves, 'report', 'reports', locale)} de réunion ces "
                f"{number(lookback_days, locale)} derniers jours "
                f"({number(slipped, locale)} jours de glissement au total)"
            )
        else:
            parts.append(
                f"{count(moves, 'move', 'moves', locale)} pushed meetings later in the last "
                f"{number(lookback_days, locale)} days ({number(slipped, locale)} days slipped "
                "in total)"
            )
    if past_period:
        parts.append(
            count(
                past_period,
                "point récurrent repoussé au-delà de sa période",
                "points récurrents repoussés au-delà de leur période",
                locale,
            )
            if fr
            else count(
                past_period,
                "recurring review pushed past its period",
                "recurring reviews pushed past their period",
                locale,
            )
        )
    if cancels:
        parts.append(
            f"le client a annulé {count(cancels, 'réunion', 'réunions', locale)}"
            if fr
            else f"the customer cancelled {count(cancels, 'meeting', 'meetings', locale)}"
        )
    head = "Procrastination polie : " if fr else "Polite procrastination: "
    return head + " ; ".join(parts) + "." if fr else head + "; ".join(parts) + "."


def absent(
    locale: str,
    *,
    people: Sequence[tuple[str, str]],  # (name, role)
    missed: int,
    declined: Sequence[str],
    users_only: bool,
) -> str:
    who = join([f"{name} ({role(r, locale)})" for name, r in people], locale)
    if locale == "fr":
        verb = "venait" if len(people) == 1 else "venaient"
        tail = "pas à la dernière" if missed < 2 else f"à aucune des {missed} dernières"
        text = f"{who} {verb} aux réunions précédentes mais {tail}"
        if declined:
            text += f" ; {join(declined, locale)} {'a' if len(declined) == 1 else 'ont'} décliné"
        if users_only:
            text += " ; les réunions ne se tiennent plus qu'avec des utilisateurs"
        return text + "."
    text = (
        f"{who} attended earlier meetings but none of the last "
        f"{count(missed, 'meeting', 'meetings', locale)}"
    )
    if declined:
        text += f"; {join(declined, locale)} declined"
    if users_only:
        text += "; meetings are now only with user-level contacts"
    return text + "."


def cadence(
    locale: str, *, baseline: float, current: float, ratio: float, silent: bool, scheduled: bool
) -> str:
    b, c, r = number(baseline, locale), number(current, locale), number(round(ratio, 1), locale)
    if locale == "fr":
        text = (
            f"Les réunions avaient lieu tous les {b} jours (la médiane du compte) ; "
            + (
                f"la dernière remonte à {c} jours"
                if silent
                else f"elles sont désormais espacées de {c} jours"
            )
            + f" ({r} × l'intervalle habituel)"
        )
        return text + ("" if scheduled else " ; rien n'est planifié") + "."
    text = (
        f"Meetings used to be every {b} days (the account's median); "
        + (f"the last one was {c} days ago" if silent else f"lately they are {c} days apart")
        + f" ({r}× the usual interval)"
    )
    return text + ("" if scheduled else "; nothing is scheduled") + "."


_ANSWERS = {
    "en": {"declined": "declined", "unanswered": "unanswered", "tentative": "tentative"},
    "fr": {"declined": "refusée", "unanswered": "sans réponse", "tentative": "provisoire"},
}


def declined(
    locale: str, *, bad: int, recent: int, counts: dict[str, int], baseline_rate: float
) -> str:
    pct = round(baseline_rate * 100)
    if locale == "fr":
        said = ", ".join(
            f"{n} {_ANSWERS['fr'][k]}{'s' if n > 1 and k != 'unanswered' else ''}"
            for k, n in counts.items()
            if n
        )
        return (
            f"{bad} des {count(recent, 'dernière invitation', 'dernières invitations', locale)}"
            f" n'{'a' if bad < 2 else 'ont'} pas été acceptée{'s' if bad > 1 else ''} ({said}), "
            f"contre {pct} % d'habitude."
        )
    said = ", ".join(f"{n} {_ANSWERS['en'][k]}" for k, n in counts.items() if n)
    return (
        f"{bad} of the last {count(recent, 'invite', 'invites', locale)} were not accepted "
        f"({said}), against {pct}% usually."
    )


_WHY = {
    "en": {
        "cancelled": "cancelled",
        "declined": "declined",
        "pushed": "pushed past the renewal",
    },
    "fr": {
        "cancelled": "annulée",
        "declined": "déclinée",
        "pushed": "repoussée après le renouvellement",
    },
}


def expansion(locale: str, refused: Sequence[tuple[str, str]]) -> str:
    """``refused``: (title, why) with why one of cancelled, declined, pushed."""
    if locale == "fr":
        what = " ; ".join(f"« {t} » {_WHY['fr'][w]}" for t, w in refused)
        return f"Discussions d'extension refusées : {what}."
    what = "; ".join(f"“{t}” {_WHY['en'][w]}" for t, w in refused)
    return f"Expansion conversations refused: {what}."


def crm(locale: str, *, kind: str, days: Sequence[date], notes: Sequence[str]) -> str:
    words = CRM_KINDS[locale].get(kind)
    if words is None:
        words = kind.replace("_", " ") if locale == "en" else f"« {kind} »"
    when = join([day(d, locale) for d in dict.fromkeys(days)], locale)
    said = "; ".join(notes)
    if locale == "fr":
        return f"Signalé par le CRM le {when} : {words}" + (f" — {said}" if said else "") + "."
    return f"Reported by the CRM on {when}: {words}" + (f" — {said}" if said else "") + "."
