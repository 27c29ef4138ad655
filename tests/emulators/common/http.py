"""Small request helpers both emulators' endpoints use."""

from __future__ import annotations

from urllib.parse import parse_qs

from starlette.requests import Request


async def read_form(request: Request) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body, first value of each field.

    Parsed by hand so the emulators need no python-multipart; token endpoints take forms.
    """
    return {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
