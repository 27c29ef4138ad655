"""What every HTTP client we own shares on the wire, written once.

- ``RETRYABLE_STATUSES``: the answers worth another try soon (RFC 9110 semantics).
- ``parse_retry_after``: the ``Retry-After`` header, both of RFC 9110's forms, capped.
- ``RetryPolicy``: bounded retries with exponential backoff and full jitter that honour the
  server's ``Retry-After``, built on tenacity (``retrying`` for threads, ``async_retrying``
  for the event loop).
- ``ErrorTable``: one translation table per provider from a wire error (HTTP status plus
  the provider's own code: Google ``reason``, Graph ``error.code``) to the small
  vocabulary of ``connectors.base``.
- ``parse_rfc3339`` / ``parse_datetime`` / ``format_rfc3339``: timestamps on the wire.

Provider-neutral and free of ``app``: the connectors and the nudge channels use it alike.
Private CAs for outgoing HTTPS are in ``connectors/tls.py``.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from email.utils import parsedate_to_datetime

import tenacity

from connectors.base import ProviderError, RateLimited, Unavailable

# --- statuses and Retry-After ---------------------------------------------------------------

RETRYABLE_STATUSES: frozenset[int] = frozenset({408, 425, 429, 500, 502, 503, 504})
"""Request Timeout, Too Early, Too Many Requests and the transient server errors: the same
request may well succeed a little later. Every other 4xx is a problem with the request."""

RETRY_AFTER_CAP = 86_400.0
"""Seconds: a ``Retry-After`` beyond a day is read as a day (nonsense or hostile either way)."""

_DELTA_SECONDS = re.compile(r"\d+(?:\.\d+)?")


def parse_retry_after(
    value: str | None, *, now: datetime | None = None, cap: float = RETRY_AFTER_CAP
) -> float | None:
    """Seconds to wait as a ``Retry-After`` header asks, or None when it says nothing usable.

    RFC 9110 §10.2.3 allows delta-seconds (``120``; Graph also sends fractions such as
    ``2.128``) or an HTTP-date (``Wed, 21 Oct 2015 07:28:00 GMT``), counted from ``now``
    (the current time when not given); a date in the past means "now" (0). The result
    lies in ``[0, cap]``.
    """
    if not value:
        return None
    text = value.strip()
    if _DELTA_SECONDS.fullmatch(text):
        seconds = float(text)
    else:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:  # older Pythons answer None instead of raising
            return None
        if when.tzinfo is None:  # "-0000": UTC, origin unknown
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return min(max(0.0, seconds), cap)


# --- retries -----------------------------------------------------------------------------


OnRetry = Callable[[BaseException, int, float], None]
"""Called before each wait with the failure, the attempt that failed (1-based) and the delay."""


@dataclass(frozen=True, kw_only=True, slots=True)
class RetryPolicy:
    """Bounded retries: exponential backoff with full jitter, the server's Retry-After honoured.

    Attempt ``n`` failed → wait ``uniform(0, min(backoff_cap, backoff_base * 2**(n-1)))``,
    or the failure's ``Retry-After`` when that is longer. A ``Retry-After`` longer than
    ``max_retry_after`` is not waited for in-process: the failure goes to the caller, who
    reschedules (``RateLimited.retry_after``). At most ``max_attempts`` attempts in all.
    """

    max_attempts: int = 5
    backoff_base: float = 0.5
    backoff_cap: float = 8.0
    max_retry_after: float = 60.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        for name in ("backoff_base", "backoff_cap", "max_retry_after"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after failed attempt ``attempt`` (1-based)."""
        ceiling = min(self.backoff_cap, self.backoff_base * 2 ** min(attempt - 1, 62))
        delay = random.uniform(0, ceiling)
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.max_retry_after))
        return delay

    def _options(
        self,
        retryable: Callable[[BaseException], bool],
        retry_after: Callable[[BaseException], float | None],
        on_retry: OnRetry | None,
        sleep: object,
    ) -> dict[str, object]:
        def failure(state: tenacity.RetryCallState) -> BaseException:
            assert state.outcome is not None
            err = state.outcome.exception()
            assert err is not None  # only failures are retried
            return err

        attempts_spent = tenacity.stop_after_attempt(self.max_attempts)

        def stop(state: tenacity.RetryCallState) -> bool:
            if attempts_spent(state):
                return True
            # A Retry-After longer than we wait in-process: hand it to the caller now.
            wait = retry_after(failure(state))
            return wait is not None and wait > self.max_retry_after

        def wait(state: tenacity.RetryCallState) -> float:
            return self.delay(state.attempt_number, retry_after(failure(state)))

        def before_sleep(state: tenacity.RetryCallState) -> None:
            if on_retry is not None:
                sleep = state.next_action.sleep if state.next_action is not None else 0.0
                on_retry(failure(state), state.attempt_number, sleep)

        options: dict[str, object] = {
            "stop": stop,
            "wait": wait,
            "retry": tenacity.retry_if_exception(retryable),
            "before_sleep": before_sleep,
            "reraise": True,  # the caller sees the last failure itself, never a RetryError
        }
        if sleep is not None:
            options["sleep"] = sleep
        return options

    def retrying(
        self,
        *,
        retryable: Callable[[BaseException], bool],
        retry_after: Callable[[BaseException], float | None] = lambda _: None,
        on_retry: OnRetry | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> tenacity.Retrying:
        """A tenacity ``Retrying`` for blocking calls (``for attempt in ...: with attempt:``)."""
        options = self._options(retryable, retry_after, on_retry, sleep)
        return tenacity.Retrying(**options)  # type: ignore[arg-type]

    def async_retrying(
        self,
        *,
        retryable: Callable[[BaseException], bool],
        retry_after: Callable[[BaseException], float | None] = lambda _: None,
        on_retry: OnRetry | None = None,
        sleep: Callable[[float], object] | None = None,
    ) -> tenacity.AsyncRetrying:
        """A tenacity ``AsyncRetrying`` for coroutines (``async for attempt in ...:``)."""
        options = self._options(retryable, retry_after, on_retry, sleep)
        return tenacity.AsyncRetrying(**options)  # type: ignore[arg-type]


# --- wire errors → the vocabulary ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rule:
    """``error`` when the status is one of ``statuses`` and the code one of ``codes``.

    An empty set matches anything; codes compare case-insensitively.
    """

    error: type[ProviderError]
    statuses: frozenset[int] = frozenset()
    codes: frozenset[str] = frozenset()

    def matches(self, status: int | None, code: str | None) -> bool:
        if self.statuses and status not in self.statuses:
            return False
        return not self.codes or (code or "").lower() in self.codes


def rule(
    error: type[ProviderError], statuses: Iterable[int] = (), codes: Iterable[str] = ()
) -> Rule:
    """A ``Rule`` from plain iterables (codes lower-cased)."""
    return Rule(error, frozenset(statuses), frozenset(c.lower() for c in codes))


class ErrorTable:
    """A provider's wire errors in the vocabulary of ``connectors.base``: first rule wins.

    Without a matching rule: no HTTP answer at all (``status`` None), a retryable status or
    any 5xx is ``Unavailable``; anything else is a plain ``ProviderError``.
    ``RateLimited`` carries the failure's ``retry_after``.
    """

    def __init__(self, *rules: Rule) -> None:
        self.rules = rules

    def extended(self, *rules: Rule) -> ErrorTable:
        """This table with ``rules`` consulted first."""
        return ErrorTable(*rules, *self.rules)

    def error_type(self, status: int | None, code: str | None) -> type[ProviderError]:
        for r in self.rules:
            if r.matches(status, code):
                return r.error
        if status is None or status in RETRYABLE_STATUSES or status >= 500:
            return Unavailable
        return ProviderError

    def translate(
        self,
        message: str,
        *,
        status: int | None,
        code: str | None = None,
        retry_after: float | None = None,
    ) -> ProviderError:
        """The error to ``raise ... from`` the wire error."""
        kind = self.error_type(status, code)
        if issubclass(kind, RateLimited):
            return kind(message, retry_after=retry_after)
        return kind(message)


# --- timestamps ------------------------------------------------------------------------------


def parse_datetime(value: str) -> datetime:
    """An ISO 8601 / RFC 3339 timestamp as written: aware when it carries ``Z`` or an offset,
    naive otherwise (Graph's ``dateTime`` values). Any number of fraction digits (Graph
    sends seven); ``ValueError`` when it is not a timestamp."""
    text = value.strip()
    if text[-1:] in ("Z", "z"):
        text = text[:-1] + "+00:00"
    head, dot, frac = text.partition(".")
    if dot:  # keep microseconds: older Pythons refuse more than six digits
        digits = len(frac) - len(frac.lstrip("0123456789"))
        text = f"{head}.{(frac[:digits] + '000000')[:6]}{frac[digits:]}"
    return datetime.fromisoformat(text)


def parse_rfc3339(value: str, *, naive_zone: tzinfo | None = None) -> datetime:
    """An aware UTC datetime from an RFC 3339 timestamp.

    A value without offset is read in ``naive_zone``; without one it is a ``ValueError``.
    """
    parsed = parse_datetime(value)
    if parsed.tzinfo is None:
        if naive_zone is None:
            raise ValueError(f"timestamp {value!r} has no UTC offset")
        parsed = parsed.replace(tzinfo=naive_zone)
    return parsed.astimezone(UTC)


def format_rfc3339(value: datetime, *, timespec: str = "auto") -> str:
    """``2026-01-05T09:00:00Z``: an aware datetime in UTC (``timespec`` as for isoformat)."""
    if value.tzinfo is None:
        raise ValueError(f"{value!r} must be timezone-aware")
    return value.astimezone(UTC).isoformat(timespec=timespec).replace("+00:00", "Z")
