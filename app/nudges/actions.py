"""The one-click actions a nudge carries: ``send_invite`` (one per slot), ``snooze``, ``waive``.

Each action's URL is ``{NEXTSTEP_PUBLIC_URL}/actions/{token}``. The token is opaque: the
nudge id, the action, the slot and the expiry sealed with the key ring
(``NEXTSTEP_SECRET_KEY``, AES-GCM under a purpose of its own), so it cannot be read,
guessed or altered, and every replica holding the key verifies it; a rotated key keeps
verifying until it is dropped from the ring. It expires when the meeting's horizon ends.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from app.nudges.compose import format_slot
from app.secrets import KeyRing, SecretError
from policies.slots import Slot
from policies.vocabulary import ActionKind

TOKEN_CONTEXT = "nextstep/action-token"


LABELS = {
    "en": {
        ActionKind.SEND_INVITE: "Send the invite for {when}",
        ActionKind.SNOOZE: "Snooze one day",
        ActionKind.WAIVE: "No follow-up needed",
    },
    "fr": {
        ActionKind.SEND_INVITE: "Envoyer l’invitation pour {when}",
        ActionKind.SNOOZE: "Reporter d’un jour",
        ActionKind.WAIVE: "Pas de suivi nécessaire",
    },
}


@dataclass(frozen=True, kw_only=True, slots=True)
class ActionToken:
    """What a token says: which nudge, which action, which slot, until when."""

    nudge_id: str
    kind: ActionKind
    slot: int | None
    expires_at: datetime

    @property
    def key(self) -> str:
        """The action's once-key: what it did is recorded under it."""
        return f"action:{self.nudge_id}:{self.kind}:{'' if self.slot is None else self.slot}"


def mint(keys: KeyRing, token: ActionToken) -> str:
    data = {
        "n": token.nudge_id,
        "k": str(token.kind),
        "s": token.slot,
        "x": int(token.expires_at.timestamp()),
    }
    return keys.encrypt(json.dumps(data, separators=(",", ":")), context=TOKEN_CONTEXT)


def read(keys: KeyRing, token: str) -> ActionToken | None:
    """The token's content; None when it is not one we made (forged, altered, truncated)."""
    if not isinstance(token, str) or len(token) > 1000:
        return None
    try:
        data = json.loads(keys.decrypt(token, context=TOKEN_CONTEXT))
        kind = ActionKind(data["k"])
        slot = data["s"]
        if slot is not None and (not isinstance(slot, int) or slot < 0):
            return None
        return ActionToken(
            nudge_id=str(data["n"]),
            kind=kind,
            slot=slot,
            expires_at=datetime.fromtimestamp(int(data["x"]), UTC),
        )
    except (SecretError, ValueError, KeyError, TypeError):
        return None


def url_of(public_url: str, token: str) -> str:
    return f"{public_url.rstrip('/')}/actions/{token}"


def actions_for(
    keys: KeyRing,
    public_url: str,
    *,
    nudge_id: str,
    slots: list[Slot],
    expires_at: datetime,
    locale: str,
    rep_timezone: str,
) -> list[dict[str, Any]]:
    """The contract's ``actions`` list: one ``send_invite`` per slot, ``snooze``, ``waive``."""
    if not slots:
        return []
    labels = LABELS.get(locale, LABELS["en"])
    out: list[dict[str, Any]] = []
    for index, slot in enumerate(slots):
        token = mint(
            keys,
            ActionToken(
                nudge_id=nudge_id, kind=ActionKind.SEND_INVITE, slot=index, expires_at=expires_at
            ),
        )
        out.append(
            {
                "kind": str(ActionKind.SEND_INVITE),
                "url": url_of(public_url, token),
                "label": labels[ActionKind.SEND_INVITE].format(
                    when=format_slot(slot.start, rep_timezone, locale)
                ),
                "slot": slot.to_dict(),
            }
        )
    for kind in (ActionKind.SNOOZE, ActionKind.WAIVE):
        token = mint(
            keys, ActionToken(nudge_id=nudge_id, kind=kind, slot=None, expires_at=expires_at)
        )
        out.append({"kind": str(kind), "url": url_of(public_url, token), "label": labels[kind]})
    return out
