"""Policy keys of business time: clock, lunch, slot_buffer, stages; bad values named."""

from __future__ import annotations

from datetime import time, timedelta

import pytest

from app.errors import PolicyError
from policies.loader import parse_policies

BASE = """
policies:
  - name: team
    invite_within: P1D
    accept_within: P2D
    horizon: P14D
    follow_up_duration: PT30M
    escalate_after: P3D
"""


def with_keys(extra: str) -> str:
    return BASE + "".join(f"    {line}\n" for line in extra.strip().splitlines())


def test_absent_keys_keep_v1_behaviour() -> None:
    p = parse_policies(BASE).default
    assert (p.clock, p.lunch, p.slot_buffer, p.stages) == ("calendar", None, timedelta(0), None)
    assert p.covers(None) and p.covers("customer")


def test_business_keys_are_read() -> None:
    text = with_keys(
        'clock: business\nlunch: "12:00-13:30"\nslot_buffer: PT15M\nstages: [prospect]'
    )
    p = parse_policies(text).default
    assert p.business
    assert p.lunch == (time(12), time(13, 30))
    assert p.slot_buffer == timedelta(minutes=15)
    assert p.covers(None) and p.covers("prospect") and not p.covers("customer")
    assert p.to_dict()["lunch"] == "12:00-13:30"


def test_zero_buffer_is_allowed() -> None:
    assert parse_policies(with_keys("slot_buffer: PT0M")).default.slot_buffer == timedelta(0)


@pytest.mark.parametrize(
    ("extra", "expect"),
    [
        ("clock: businesss", r"\.clock: 'businesss' is not one of"),
        ('lunch: "12-13"', r"\.lunch: '12-13' is not a span"),
        ('lunch: "13:00-12:00"', r"\.lunch: '13:00-12:00' ends before it starts"),
        ("slot_buffer: -PT5M", r"\.slot_buffer: '-PT5M' must not be negative"),
        ("slot_buffer: soon", r"\.slot_buffer: 'soon' is not an ISO 8601 duration"),
        ("stages: customer", r"\.stages: expected a non-empty list"),
        ("stages: [prospect, [customer]]", r"\.stages\[1\]: \['customer'\] is not a stage name"),
        ("stages: []", r"\.stages: expected a non-empty list"),
    ],
)
def test_bad_values_name_file_field_and_reason(extra: str, expect: str) -> None:
    with pytest.raises(PolicyError, match=r"^team\.yaml: policies\[0\] \(team\)" + expect):
        parse_policies(with_keys(extra), source="team.yaml")


def test_stage_routing() -> None:
    text = (
        BASE
        + """
  - name: customers
    invite_within: P5D
    accept_within: P5D
    horizon: P30D
    follow_up_duration: PT30M
    escalate_after: P5D
    stages: [customer]
"""
    )
    text = text.replace("escalate_after: P3D\n", "escalate_after: P3D\n    stages: [prospect]\n", 1)
    ps = parse_policies(text)
    assert ps.for_stage("team", "prospect").name == "team"  # type: ignore[union-attr]
    assert ps.for_stage("team", None).name == "team"  # type: ignore[union-attr]
    assert ps.for_stage("team", "customer").name == "customers"  # type: ignore[union-attr]
    assert ps.for_stage("customers", "customer").name == "customers"  # type: ignore[union-attr]
    only_prospects = parse_policies(with_keys("stages: [prospect]"))
    assert only_prospects.for_stage(None, "customer") is None
