"""The board's rule, over many cases: the share of prospect meetings secured in time."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from app.db.models import Meeting
from app.web.service import secured_share
from policies.vocabulary import MeetingState

T = datetime(2026, 11, 23, tzinfo=UTC)
meetings = st.lists(st.tuples(st.sampled_from(list(MeetingState)), st.booleans()), max_size=30).map(
    lambda items: [
        (Meeting(id=f"m{i}", rep_id="r", state=state, end=T), missed)
        for i, (state, missed) in enumerate(items)
    ]
)


@given(meetings)
def test_secured_in_time_is_secured_without_a_missed_window_among_decided_meetings(
    items: list[tuple[Meeting, bool]],
) -> None:
    rows = [m for m, _ in items]
    missed = {m.id for m, was in items if was}
    share = secured_share(rows, missed)
    counted = [m for m in rows if m.state not in (MeetingState.UPCOMING, MeetingState.WAIVED)]
    if not counted:
        assert share is None  # nothing to judge: no figure, not 0%
        return
    assert share is not None and 0 <= share <= 1
    kept = [m for m in counted if m.state == MeetingState.SECURED and m.id not in missed]
    assert share * len(counted) == len(kept)
    # Upcoming and waived meetings never move the figure.
    extra = [Meeting(id="x", rep_id="r", state=MeetingState.WAIVED, end=T)]
    assert secured_share(rows + extra, missed) == share
