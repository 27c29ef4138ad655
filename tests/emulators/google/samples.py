"""Read the verbatim Google samples in shared/provider-samples/google (see SOURCES.md)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from connectors.google.client import loads_lenient


def samples_dir() -> Path:
    """``shared/provider-samples/google`` beside the checkout (skip the test when absent)."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        candidate = parent / "shared" / "provider-samples" / "google"
        if candidate.is_dir():
            return candidate
    pytest.skip("shared/provider-samples/google not found beside the checkout")


def text(name: str) -> str:
    return (samples_dir() / name).read_text()


def http_headers(name: str) -> dict[str, str]:
    """Headers of a ``.http`` sample, with the doc's ``// comments`` removed."""
    headers: dict[str, str] = {}
    for line in text(name).splitlines()[1:]:
        if not line.strip():
            break
        key, _, value = line.partition(":")
        headers[key.strip()] = value.split(" //", 1)[0].strip()
    return headers


def http_json_body(name: str) -> object:
    """The JSON body of a captured ``HTTP/1.1 200`` response (libkgapi fixtures)."""
    raw = text(name)
    body = raw[raw.index("\n\n") + 2 :] if raw.startswith("HTTP/") else raw
    return loads_lenient(body)


def strict_json(name: str) -> str:
    """A documented (possibly lenient) JSON sample re-serialised as strict JSON."""
    return json.dumps(loads_lenient(text(name)))


def http_request(name: str) -> tuple[str, str, dict[str, list[str]], object | None]:
    """``(method, path, query, json_body)`` of a documented request (first request line).

    The doc's ``...`` elision lines and ``// comments`` are dropped from the body.
    """
    from urllib.parse import parse_qs, urlsplit

    lines = [line for line in text(name).splitlines() if not line.lstrip().startswith("#")]
    method, url = lines[0].split()[:2]
    parts = urlsplit(url)
    body_text = "\n".join(line for line in lines if line.strip() != "...")
    body = loads_lenient(body_text[body_text.index("{") :]) if "{" in body_text else None
    return method, parts.path, parse_qs(parts.query), body
