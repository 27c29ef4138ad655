"""/metrics: Prometheus text exposition (format 0.0.4), written by hand.

Two sources. Counters of this process (provider calls and errors, delivery failures,
webhooks turned away): plain integers in memory, since one process is one scrape target.
Gauges of the whole cluster (sync lag per provider, due-lag, queue depths), read from the
database at scrape time (app/ops/repository.py), so every replica reports the same shared
work. The outbox counts its own failed attempts (app/delivery/service.py).
prometheus_client is not a dependency: the exposition format is a few lines of text.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Mapping

from app.ops.repository import ClusterGauges
from app.providers import provider_calls, provider_errors

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

webhooks_busy: Counter[str] = Counter()  # path turned away with 503
webhooks_inflight = 0
STARTED = time.time()


def _labels(**labels: str) -> str:
    if not labels:
        return ""

    def esc(v: str) -> str:
        return v.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')

    return "{" + ",".join(f'{k}="{esc(v)}"' for k, v in labels.items()) + "}"


class Exposition:
    """Builds the text: HELP and TYPE once per family, then its samples."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(
        self, name: str, kind: str, help_text: str, samples: Iterable[tuple[dict[str, str], float]]
    ) -> None:
        self.lines.append(f"# HELP {name} {help_text}")
        self.lines.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            self.lines.append(f"{name}{_labels(**labels)} {float(value)!r}")

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def render(g: ClusterGauges, providers: Iterable[str], delivery_failures: Mapping[str, int]) -> str:
    """The whole exposition from the cluster gauges ``g`` and this process's counters
    (``delivery_failures``: the outbox's failed attempts per channel, kept by the
    delivery stage, which this module does not import: the registry imports it)."""
    out = Exposition()
    names = sorted(set(providers) | set(g.sync_staleness))
    out.family(
        "nextstep_sync_lag_seconds",
        "gauge",
        "Age of the oldest sync request not yet done, per provider.",
        [({"provider": p}, g.sync_lag.get(p, 0.0)) for p in names],
    )
    out.family(
        "nextstep_sync_staleness_seconds",
        "gauge",
        "Time since the least recently synced calendar was synced, per provider.",
        [({"provider": p}, g.sync_staleness.get(p, 0.0)) for p in names],
    )
    out.family(
        "nextstep_due_lag_seconds",
        "gauge",
        "How late the oldest due meeting is (0 when none is waiting).",
        [({}, g.due_lag)],
    )
    out.family(
        "nextstep_delivery_lag_seconds",
        "gauge",
        "How late the oldest due nudge delivery is (0 when none is waiting).",
        [({}, g.delivery_lag)],
    )
    queues = [
        ({"queue": "meetings_due"}, g.due_count),
        ({"queue": "deliveries_due"}, g.delivery_count),
        ({"queue": "renewals_due"}, g.renewals_due),
        ({"queue": "webhooks_inflight"}, webhooks_inflight),
    ]
    queues += [({"queue": f"syncs_due_{p}"}, g.sync_pending.get(p, 0)) for p in names]
    out.family("nextstep_queue_depth", "gauge", "Work waiting now, per queue.", queues)
    out.family(
        "nextstep_deliveries_failed",
        "gauge",
        "Nudge deliveries given up (cluster-wide).",
        [({}, g.deliveries_failed)],
    )
    out.family(
        "nextstep_delivery_failures_total",
        "counter",
        "Failed delivery attempts by this process, per channel.",
        [({"channel": c}, n) for c, n in sorted(delivery_failures.items())],
    )
    out.family(
        "nextstep_provider_calls_total",
        "counter",
        "Calendar provider calls by this process.",
        [({"provider": p, "operation": o}, n) for (p, o), n in sorted(provider_calls.items())],
    )
    out.family(
        "nextstep_provider_errors_total",
        "counter",
        "Calendar provider calls that failed, by error.",
        [
            ({"provider": p, "operation": o, "error": e}, n)
            for (p, o, e), n in sorted(provider_errors.items())
        ],
    )
    out.family(
        "nextstep_webhooks_refused_busy_total",
        "counter",
        "Provider notifications answered 503 (in-flight limit reached).",
        [({"path": path}, n) for path, n in sorted(webhooks_busy.items())],
    )
    out.family(
        "nextstep_process_start_time_seconds",
        "gauge",
        "Start time of this process since the Unix epoch.",
        [({}, STARTED)],
    )
    return out.text()
