"""Read a policy YAML file into a PolicySet; every error names the file, key and reason."""

from __future__ import annotations

import re
from datetime import time, timedelta
from pathlib import Path
from typing import Any

import yaml

from policies.errors import PolicyError
from policies.model import CLOCKS, Policy, PolicySet, format_duration, parse_duration
from policies.signals import SIGNAL_KINDS, SignalsPolicy

DEFAULT_FILE = Path(__file__).with_name("default.yaml")
DURATION_KEYS = (
    "invite_within",
    "accept_within",
    "horizon",
    "follow_up_duration",
    "escalate_after",
)
BOOLEAN_KEYS = ("video", "hold")  # the invitation asks for a video link; a tentative hold
KNOWN_KEYS = ("name", *DURATION_KEYS, "clock", "lunch", "slot_buffer", "stages", *BOOLEAN_KEYS)
_LUNCH = re.compile(r"^\s*([01]?\d|2[0-3]):([0-5]\d)\s*-\s*([01]?\d|2[0-3]):([0-5]\d)\s*$")
_STAGE = re.compile(r"^[a-z][a-z0-9_-]*$")
MAX_WINDOW = timedelta(days=366)
"""The longest a policy duration may be: dates stay far from datetime's limits, and a
team that means more than a year means something else."""
MAX_SIGNAL_DURATION = timedelta(days=3660)  # account_signals keep history for years at most


def load_policies(path: Path | str | None = None) -> PolicySet:
    """Load ``path`` (or the built-in default file)."""
    file = Path(path) if path is not None else DEFAULT_FILE
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        reason = getattr(err, "strerror", None) or err
        raise PolicyError(f"{file}: cannot read policy file: {reason}") from err
    return parse_policies(text, source=str(file))


def parse_policies(text: str, *, source: str = "<policy>") -> PolicySet:
    """Parse policy YAML text; ``source`` names the file in error messages."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise PolicyError(f"{source}: not valid YAML: {err}") from err
    if not isinstance(doc, dict):
        raise PolicyError(f"{source}: expected a mapping with a 'policies' list at the top")
    extra = sorted(set(doc) - {"policies", "account_signals"}, key=str)
    if extra:
        raise PolicyError(
            f"{source}: unknown key {extra[0]!r} (allowed: policies, account_signals)"
        )
    items = doc.get("policies")
    if not isinstance(items, list) or not items:
        raise PolicyError(f"{source}: 'policies' must be a non-empty list")
    policies = [_policy(item, f"{source}: policies[{i}]") for i, item in enumerate(items)]
    signals = _account_signals(doc.get("account_signals"), f"{source}: account_signals")
    try:
        return PolicySet(policies=tuple(policies), source=source, account_signals=signals)
    except ValueError as err:
        raise PolicyError(f"{source}: policies: {err}") from err


def _policy(item: Any, where: str) -> Policy:
    if not isinstance(item, dict):
        raise PolicyError(f"{where}: expected a mapping, got {type(item).__name__}")
    unknown = sorted(set(item) - set(KNOWN_KEYS), key=str)  # YAML keys may be any scalar
    if unknown:
        raise PolicyError(f"{where}.{unknown[0]}: unknown key (allowed: {', '.join(KNOWN_KEYS)})")
    name = item.get("name")
    if not isinstance(name, str) or not name.strip():
        raise PolicyError(f"{where}.name: must be a non-empty string")
    where = f"{where} ({name})"
    values: dict[str, Any] = {"name": name.strip()}
    for key in DURATION_KEYS:
        if key not in item:
            continue
        values[key] = _duration(item[key], f"{where}.{key}", MAX_WINDOW)
    for key in BOOLEAN_KEYS:
        if key in item:
            if not isinstance(item[key], bool):
                raise PolicyError(f"{where}.{key}: must be true or false, got {item[key]!r}")
            values[key] = item[key]
    missing = [k for k in DURATION_KEYS if k not in item]
    if missing:
        raise PolicyError(f"{where}.{missing[0]}: missing required key")
    values.update(_business_keys(item, where))
    try:
        return Policy(**values)
    except ValueError as err:
        raise PolicyError(f"{where}: {err}") from err


def _business_keys(item: dict[str, Any], where: str) -> dict[str, Any]:
    """``clock``, ``lunch``, ``slot_buffer`` and ``stages`` of one policy, checked."""
    out: dict[str, Any] = {}
    if "clock" in item:
        clock = item["clock"]
        if clock not in CLOCKS:
            raise PolicyError(f"{where}.clock: {clock!r} is not one of {', '.join(CLOCKS)}")
        out["clock"] = clock
    if "lunch" in item and item["lunch"] is not None:
        lunch = item["lunch"]
        match = _LUNCH.match(lunch) if isinstance(lunch, str) else None
        if match is None:
            raise PolicyError(f'{where}.lunch: {lunch!r} is not a span like "12:00-13:00"')
        start = time(int(match[1]), int(match[2]))
        end = time(int(match[3]), int(match[4]))
        if end <= start:
            raise PolicyError(f"{where}.lunch: {lunch!r} ends before it starts")
        out["lunch"] = (start, end)
    if "slot_buffer" in item:
        value = item["slot_buffer"]
        text = value.strip().upper() if isinstance(value, str) else value
        if isinstance(text, str) and text.startswith("-"):
            raise PolicyError(f"{where}.slot_buffer: {value!r} must not be negative")
        if text in ("PT0M", "PT0S", "PT0H", "P0D"):
            out["slot_buffer"] = timedelta(0)
        else:
            out["slot_buffer"] = _duration(value, f"{where}.slot_buffer", timedelta(days=1))
    if "stages" in item:
        stages = item["stages"]
        if not isinstance(stages, list) or not stages:
            raise PolicyError(
                f"{where}.stages: expected a non-empty list of stage names like "
                f"[prospect, customer], got {stages!r}"
            )
        for i, stage in enumerate(stages):
            if not isinstance(stage, str) or not _STAGE.match(stage):
                raise PolicyError(f"{where}.stages[{i}]: {stage!r} is not a stage name")
        out["stages"] = frozenset(stages)
    return out


def _duration(value: Any, where: str, longest: timedelta) -> timedelta:
    """A duration of the file, at most ``longest`` (so ``datetime + duration`` never overflows)."""
    try:
        parsed: timedelta | None = parse_duration(value)
    except ValueError as err:
        raise PolicyError(f"{where}: {err}") from err
    except OverflowError:  # more days than timedelta holds
        parsed = None
    if parsed is None or parsed > longest:
        raise PolicyError(f"{where}: {value!r} is too long (at most {format_duration(longest)})")
    return parsed


SIGNAL_DURATIONS = (
    "retention",
    "history_window",
    "lookback",
    "recompute_every",
    "renewal_window",
    "unanswered_after",
)
SIGNAL_NUMBERS = ("renewal_boost", "postponed_share", "cadence_ratio", "declined_margin")
SIGNAL_COUNTS = (
    "postponed_min",
    "recent_meetings",
    "attended_before",
    "cadence_min_intervals",
    "declined_min",
)
SIGNAL_KEYS = (
    *SIGNAL_DURATIONS,
    *SIGNAL_NUMBERS,
    *SIGNAL_COUNTS,
    "weights",
    "thresholds",
    "expansion_keywords",
)


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PolicyError(f"{where}: {value!r} is not a number")
    return float(value)


def _account_signals(section: Any, where: str) -> SignalsPolicy:
    """The optional ``account_signals:`` section (account health); defaults when absent."""
    if section is None:
        return SignalsPolicy()
    if not isinstance(section, dict):
        raise PolicyError(f"{where}: expected a mapping, got {type(section).__name__}")
    unknown = sorted(set(section) - set(SIGNAL_KEYS), key=str)
    if unknown:
        raise PolicyError(f"{where}.{unknown[0]}: unknown key (allowed: {', '.join(SIGNAL_KEYS)})")
    values: dict[str, Any] = {}
    for key in SIGNAL_DURATIONS:
        if key in section:
            values[key] = _duration(section[key], f"{where}.{key}", MAX_SIGNAL_DURATION)
    for key in SIGNAL_NUMBERS:
        if key in section:
            values[key] = _number(section[key], f"{where}.{key}")
    for key in SIGNAL_COUNTS:
        if key in section:
            value = section[key]
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise PolicyError(f"{where}.{key}: {value!r} is not a whole number of at least 1")
            values[key] = value
    weights = section.get("weights", {})
    if not isinstance(weights, dict):
        raise PolicyError(f"{where}.weights: expected a mapping of signal kind to weight")
    allowed = (*SIGNAL_KINDS, "crm")
    for kind, weight in weights.items():
        if kind not in allowed:
            raise PolicyError(
                f"{where}.weights.{kind}: unknown signal kind (allowed: {', '.join(allowed)})"
            )
        if _number(weight, f"{where}.weights.{kind}") < 0:
            raise PolicyError(f"{where}.weights.{kind}: must not be negative")
    values["weights"] = {k: float(v) for k, v in weights.items()}
    thresholds = section.get("thresholds", {})
    if not isinstance(thresholds, dict):
        raise PolicyError(f"{where}.thresholds: expected a mapping with watch and at_risk")
    for key, value in thresholds.items():
        if key not in ("watch", "at_risk"):
            raise PolicyError(f"{where}.thresholds.{key}: unknown key (allowed: watch, at_risk)")
        number = _number(value, f"{where}.thresholds.{key}")
        if not 0 <= number <= 100:
            raise PolicyError(f"{where}.thresholds.{key}: must be a score between 0 and 100")
        values["watch_below" if key == "watch" else "at_risk_below"] = number
    if "expansion_keywords" in section:
        words = section["expansion_keywords"]
        if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
            raise PolicyError(f"{where}.expansion_keywords: expected a list of strings")
        values["expansion_keywords"] = tuple(words)
    try:
        return SignalsPolicy(**values)
    except ValueError as err:
        raise PolicyError(f"{where}: {err}") from err
