"""hypothesis over the policy loader: whatever a policy file holds, loading it gives a
PolicySet or a PolicyError that names the file (and the key, when one is at fault) —
never another exception, so start-up always ends with one line."""

from __future__ import annotations

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policies.errors import PolicyError
from policies.loader import DURATION_KEYS, KNOWN_KEYS, SIGNAL_KEYS, parse_policies
from policies.model import PolicySet

SOURCE = "team.yaml"
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

durations = st.one_of(
    st.sampled_from(["PT2H", "P2D", "P14D", "PT15M", "P3D", "PT3S", "P0D", "P9999999W", "-PT1H"]),
    st.from_regex(
        r"\AP(\d{1,12}W)?(\d{1,12}D)?(T(\d{1,12}H)?(\d{1,12}M)?(\d{1,12}(\.\d{1,3})?S)?)?\Z"
    ),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    durations,
)
keys = st.one_of(
    st.sampled_from([*KNOWN_KEYS, *SIGNAL_KEYS, "policies", "account_signals", "watch", "at_risk"]),
    st.text(max_size=10),
    st.integers(),
    st.booleans(),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=6)),
    max_leaves=20,
)
policy = st.fixed_dictionaries(
    {"name": st.one_of(st.text(max_size=12), scalars)},
    optional={key: st.one_of(durations, scalars) for key in DURATION_KEYS},
)
documents = st.one_of(
    values,
    st.fixed_dictionaries(
        {"policies": st.one_of(st.lists(policy, max_size=3), values)},
        optional={"account_signals": st.dictionaries(keys, values, max_size=6), "x": values},
    ),
)


def _check(text: str) -> None:
    try:
        result = parse_policies(text, source=SOURCE)
    except PolicyError as err:
        assert str(err).startswith(f"{SOURCE}: "), err
        return
    assert isinstance(result, PolicySet)


@FUZZ
@given(documents)
def test_any_document_loads_or_names_the_file(doc):
    _check(yaml.safe_dump(doc, allow_unicode=True))


@FUZZ
@given(st.text(max_size=200))
def test_any_text_loads_or_names_the_file(text):
    _check(text)


GOOD = {
    "name": "p",
    "invite_within": "PT2H",
    "accept_within": "P2D",
    "horizon": "P14D",
    "follow_up_duration": "PT15M",
    "escalate_after": "P3D",
}


@FUZZ
@given(st.sampled_from(DURATION_KEYS), st.one_of(durations, scalars))
def test_a_bad_duration_names_its_key(key, value):
    text = yaml.safe_dump({"policies": [{**GOOD, key: value}]})
    try:
        parse_policies(text, source=SOURCE)
    except PolicyError as err:
        assert str(err).startswith(f"{SOURCE}: policies[0]"), err
        return
