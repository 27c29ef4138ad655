"""The policy file: valid files load, every mistake names the file, key and reason."""

from __future__ import annotations

from datetime import timedelta

import pytest

from app.errors import PolicyError
from policies.loader import load_policies, parse_policies
from policies.model import parse_duration


def test_the_builtin_default_is_the_contract_example():
    p = load_policies().default
    assert p.name == "prospect-default"
    assert (p.invite_within, p.accept_within, p.horizon) == (
        timedelta(hours=2),
        timedelta(days=2),
        timedelta(days=14),
    )
    assert (p.follow_up_duration, p.escalate_after) == (timedelta(minutes=15), timedelta(days=3))


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("PT2H", timedelta(hours=2)),
        ("P2D", timedelta(days=2)),
        ("PT3S", timedelta(seconds=3)),
        ("P1DT12H", timedelta(hours=36)),
        ("P1W", timedelta(weeks=1)),
        ("PT1.5S", timedelta(seconds=1.5)),
    ],
)
def test_durations(text, value):
    assert parse_duration(text) == value


@pytest.mark.parametrize("bad", ["2h", "P", "PT", "P1M", "P1Y", "PT0S", "-PT1H", "", "P2DT"])
def test_bad_durations(bad):
    with pytest.raises(ValueError):
        parse_duration(bad)


GOOD = """
policies:
  - name: enterprise
    invite_within: PT4H
    accept_within: P3D
    horizon: P21D
    follow_up_duration: PT30M
    escalate_after: P5D
  - name: smb
    invite_within: PT1H
    accept_within: P1D
    horizon: P7D
    follow_up_duration: PT15M
    escalate_after: P2D
"""


def test_first_policy_is_the_default_and_others_are_named():
    ps = parse_policies(GOOD, source="team.yaml")
    assert ps.default.name == "enterprise"
    assert ps.get("smb").horizon == timedelta(days=7)


@pytest.mark.parametrize(
    ("text", "expect"),
    [
        ("policies: [", "not valid YAML"),
        ("- a\n- b", "mapping"),
        ("policies: []", "non-empty list"),
        ("rules: []\npolicies: []", "unknown key 'rules'"),
        (
            GOOD.replace("accept_within: P3D", "accept_within: 3 days"),
            "policies[0] (enterprise).accept_within",
        ),
        (
            GOOD.replace(
                "    escalate_after: P5D\n", "    escalate_after: P5D\n    colour: red\n", 1
            ),
            "policies[0].colour: unknown key",
        ),
        (GOOD.replace("    horizon: P21D\n", "", 1), "policies[0] (enterprise).horizon: missing"),
        (GOOD.replace("invite_within: PT4H", "invite_within: P30D"), "must not exceed horizon"),
        (GOOD.replace("name: smb", "name: enterprise"), "unique"),
    ],
)
def test_every_mistake_names_file_key_and_reason(text, expect):
    with pytest.raises(PolicyError) as err:
        parse_policies(text, source="team.yaml")
    assert "team.yaml" in str(err.value)
    assert expect in str(err.value)


def test_missing_file(tmp_path):
    with pytest.raises(PolicyError) as err:
        load_policies(tmp_path / "none.yaml")
    assert "none.yaml" in str(err.value)


def test_video_and_hold_are_booleans_with_their_defaults():
    plain = parse_policies(GOOD).default
    assert plain.video is True and plain.hold is False
    chosen = parse_policies(
        GOOD.replace(
            "    escalate_after: P5D\n",
            "    escalate_after: P5D\n    video: false\n    hold: true\n",
            1,
        )
    ).default
    assert chosen.video is False and chosen.hold is True
    for key, bad in (("video", "'no'"), ("hold", "1"), ("hold", "yes please")):
        text = GOOD.replace(
            "    escalate_after: P5D\n", f"    escalate_after: P5D\n    {key}: {bad}\n", 1
        )
        with pytest.raises(PolicyError) as err:
            parse_policies(text, source="team.yaml")
        assert f"policies[0] (enterprise).{key}: must be true or false" in str(err.value)
