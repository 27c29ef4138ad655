"""Read a policy YAML file into a PolicySet; every error names the file, key and reason."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from app.errors import PolicyError
from policies.model import Policy, PolicySet, parse_duration

DEFAULT_FILE = Path(__file__).with_name("default.yaml")
DURATION_KEYS = ("invite_within", "accept_within", "horizon", "follow_up_duration", "escalate_after")
KNOWN_KEYS = ("name", *DURATION_KEYS)


def load_policies(path: Path | str | None = None) -> PolicySet:
    """Load ``path`` (or the built-in default file)."""
    file = Path(path) if path is not None else DEFAULT_FILE
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as err:
        raise PolicyError(f"{file}: cannot read policy file: {err.strerror or err}") from err
    return parse_policies(text, source=str(file))


def parse_policies(text: str, *, source: str = "<policy>") -> PolicySet:
    """Parse policy YAML text; ``source`` names the file in error messages."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise PolicyError(f"{source}: not valid YAML: {err}") from err
    if not isinstance(doc, dict):
        raise PolicyError(f"{source}: expected a mapping with a 'policies' list at the top")
    extra = sorted(set(doc) - {"policies"})
    if extra:
        raise PolicyError(f"{source}: unknown key {extra[0]!r} (allowed: policies)")
    items = doc.get("policies")
    if not isinstance(items, list) or not items:
        raise PolicyError(f"{source}: 'policies' must be a non-empty list")
    policies = [_policy(item, f"{source}: policies[{i}]") for i, item in enumerate(items)]
    try:
        return PolicySet(policies=tuple(policies), source=source)
    except ValueError as err:
        raise PolicyError(f"{source}: policies: {err}") from err


def _policy(item: Any, where: str) -> Policy:
    if not isinstance(item, dict):
        raise PolicyError(f"{where}: expected a mapping, got {type(item).__name__}")
    unknown = sorted(set(item) - set(KNOWN_KEYS))
    if unknown:
        raise PolicyError(
            f"{where}.{unknown[0]}: unknown key (allowed: {', '.join(KNOWN_KEYS)})"
        )
    name = item.get("name")
    if not isinstance(name, str) or not name.strip():
        raise PolicyError(f"{where}.name: must be a non-empty string")
    where = f"{where} ({name})"
    values: dict[str, Any] = {"name": name.strip()}
    for key in DURATION_KEYS:
        if key not in item:
            continue
        try:
            values[key] = parse_duration(item[key])
        except ValueError as err:
            raise PolicyError(f"{where}.{key}: {err}") from err
    missing = [k for k in DURATION_KEYS if k not in item]
    if missing:
        raise PolicyError(f"{where}.{missing[0]}: missing required key")
    try:
        return Policy(**values)
    except ValueError as err:
        raise PolicyError(f"{where}: {err}") from err
