"""Slot search for N nudges: the business-time rules next to the v1 search, same run.

Each nudge has its own meeting end (spread over a year, so DST changes and the holidays
of every season are met), rep zone, prospect zone and ~40 busy intervals over the 14-day
horizon. The v1 search is ``find_slots`` with the v1 arguments (rep hours, prospect
09:00–17:00 Mon–Fri, no holidays, no lunch, no buffer); the new one adds both sides'
countries (holidays), ``lunch: 12:00-13:00``, ``slot_buffer: PT15M`` and, for one account
in five, Sunday–Thursday hours. Both run over the same inputs, interleaved in rounds so the
machine's load hits both alike; the figure is the ratio of their total times.

    python bench/slots_bench.py [--nudges 2000] [--rounds 3] [--seed 7]
"""

from __future__ import annotations

import argparse
import random
import time as clock
from datetime import UTC, datetime, time, timedelta

from policies.business import country_of_zone, parse_account_hours
from policies.hours import PROSPECT_DEFAULT, REP_DEFAULT
from policies.slots import find_slots

REP_ZONES = ("Europe/Paris", "Europe/London", "America/New_York", "Europe/Berlin")
PROSPECT_ZONES = (
    "America/New_York",
    "America/Los_Angeles",
    "America/Chicago",
    "Europe/Paris",
    "Asia/Dubai",
)
DUBAI_WEEK = parse_account_hours({"days": ["sun", "mon", "tue", "wed", "thu"]})


def cases(n: int, seed: int) -> list[dict[str, object]]:
    rng = random.Random(seed)
    out = []
    base = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
    for _ in range(n):
        end = base + timedelta(minutes=30 * rng.randrange(0, 2 * 24 * 365))
        busy = []
        for _ in range(40):
            start = end + timedelta(minutes=30 * rng.randrange(0, 2 * 24 * 14))
            busy.append((start, start + timedelta(minutes=rng.choice((30, 60, 90)))))
        prospect = rng.choice(PROSPECT_ZONES)
        out.append(
            {
                "meeting_end": end,
                "now": end,
                "rep_tz": rng.choice(REP_ZONES),
                "prospect_tz": prospect,
                "busy": busy,
                "dubai_week": prospect == "Asia/Dubai" or rng.random() < 0.2,
            }
        )
    return out


def v1(case: dict[str, object]) -> int:
    return len(
        find_slots(
            meeting_end=case["meeting_end"],  # type: ignore[arg-type]
            now=case["now"],  # type: ignore[arg-type]
            horizon=timedelta(days=14),
            duration=timedelta(minutes=30),
            busy=case["busy"],  # type: ignore[arg-type]
            rep_tz=case["rep_tz"],  # type: ignore[arg-type]
            rep_hours=REP_DEFAULT,
            prospect_tz=case["prospect_tz"],  # type: ignore[arg-type]
            prospect_hours=PROSPECT_DEFAULT,
        )
    )


def business(case: dict[str, object]) -> int:
    rep_tz, prospect_tz = str(case["rep_tz"]), str(case["prospect_tz"])
    return len(
        find_slots(
            meeting_end=case["meeting_end"],  # type: ignore[arg-type]
            now=case["now"],  # type: ignore[arg-type]
            horizon=timedelta(days=14),
            duration=timedelta(minutes=30),
            busy=case["busy"],  # type: ignore[arg-type]
            rep_tz=rep_tz,
            rep_hours=REP_DEFAULT,
            prospect_tz=prospect_tz,
            prospect_hours=DUBAI_WEEK if case["dubai_week"] else PROSPECT_DEFAULT,
            rep_country=country_of_zone(rep_tz),
            prospect_country=country_of_zone(prospect_tz),
            lunch=(time(12), time(13)),
            buffer=timedelta(minutes=15),
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nudges", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    inputs = cases(args.nudges, args.seed)
    business(inputs[0])  # imports and the first holiday tables out of the measure
    totals = {"v1": 0.0, "business": 0.0}
    found = {"v1": 0, "business": 0}
    for _ in range(args.rounds):
        for name, search in (("v1", v1), ("business", business)):
            started = clock.perf_counter()
            found[name] = sum(search(c) for c in inputs)
            totals[name] += clock.perf_counter() - started
    for name in totals:
        per = totals[name] / args.rounds
        print(
            f"{name:9} {args.nudges} nudges: {per * 1000:8.1f} ms a round "
            f"({per / args.nudges * 1e6:6.1f} µs a nudge), {found[name]} slots"
        )
    print(f"ratio business / v1: {totals['business'] / totals['v1']:.2f} (goal ≤ 2)")


if __name__ == "__main__":
    main()
