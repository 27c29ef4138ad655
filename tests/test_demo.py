"""`nextstep demo` shows the four nudge kinds, readably, on the sandbox."""

from __future__ import annotations

import re

from app.demo import run_demo


def test_demo_shows_every_nudge_kind_and_where_meetings_stand():
    lines: list[str] = []
    assert run_demo(out=lines.append) == 0
    text = "\n".join(lines)
    for kind in ("NO NEXT STEP", "NOT ACCEPTED", "FOLLOW UP DECLINED", "ESCALATION"):
        assert kind in text, kind
    assert "CET" in text and "EST" in text  # slots in both time zones
    flat = " ".join(text.split())
    assert "Draft :" in flat and "I can send the invite right now" in flat
    assert "Aucune prochaine étape" in flat  # Camille reads French
    assert "secured" in text and "needs_next_step" in text
    # A customer going from healthy to at risk: one nudge per worsening, to its owner.
    assert "ACCOUNT AT RISK" in text
    assert "watch (was healthy)" in flat and "at_risk (was watch)" in flat
    assert "decision_makers_absent" in text and "meetings_postponed" in text
    assert "Olivia, I get the feeling we haven't been hitting the mark for you lately." in flat


def test_demo_prints_the_actions_an_invitation_sent_by_one_and_a_follow_up_moved():
    lines: list[str] = []
    assert run_demo(out=lines.append) == 0
    text = "\n".join(lines)
    flat = " ".join(text.split())
    assert "[send_invite] Envoyer l’invitation pour" in text and "[snooze]" in text
    assert "[waive] No follow-up needed" in text
    assert "/actions/" in text
    assert "L’invitation est envoyée." in text and "Le suivi est déplacé." in text
    assert "Agenda for this 30-minute follow-up to Acme — discovery call" in flat
    assert "to dana.smith@acme.com" in text and "video: https://" in text
    assert "work for you" not in flat.split("Camille taps")[1].split("────")[0]


def test_demo_lives_business_time_and_reads_the_policy_in_force():
    lines: list[str] = []
    assert run_demo(out=lines.append) == 0
    text = "\n".join(lines)
    assert "Policy 'demo-business-hours' (demo.yaml)" in text
    assert "business clock" in text and "never over lunch 12:00–13:00" in text
    # Friday 16:30–17:30 Paris with 2 working hours: Monday 10:30 Paris (09:30 UTC).
    assert re.search(r"\[Mon 30 Nov 09:30 UTC\]  NO NEXT STEP .*\nMeeting : Hooli", text)
    # Declined on Saturday, delivered when Mike's week starts: Monday 09:00 New York.
    assert re.search(r"\[Mon 30 Nov 14:00 UTC\]  FOLLOW UP DECLINED .*\nMeeting : Soylent", text)
    # Thanksgiving (Thursday 26 November) is in no slot and no draft.
    slot_lines = [ln for ln in lines_of(text) if re.match(r"^\s+\d\. ", ln)]
    assert slot_lines and not [ln for ln in slot_lines if "26 Nov" in ln]
    # (a message may say a window closed that day, on the Paris rep's working time; no
    # suggested slot, in a draft or a message, falls on it)
    listed = [ln for ln in lines_of(text) if re.match(r"^\s+(- |\d\. )", ln)]
    assert not [ln for ln in listed if re.search(r"November 26|26 novembre|26 Nov", ln)]
    # The customer's reviews are tracked, never nudged (stages: [prospect]).
    assert "Meeting : Umbrella" not in text


def test_demo_header_follows_the_policy_file(tmp_path, monkeypatch):
    policy = tmp_path / "team.yaml"
    policy.write_text(
        "policies:\n  - name: wall-clock\n    invite_within: PT4H\n    accept_within: P3D\n"
        "    horizon: P10D\n    follow_up_duration: PT20M\n    escalate_after: P4D\n"
    )
    monkeypatch.setenv("NEXTSTEP_POLICY_FILE", str(policy))
    lines: list[str] = []
    assert run_demo(out=lines.append) == 0
    header = lines[1]
    assert header.startswith("Policy 'wall-clock' (team.yaml): invite within 4 h")
    assert "accepted within 3 days, horizon 10 days, escalate after 4 days" in header
    assert "calendar clock" in header


def lines_of(text: str) -> list[str]:
    return text.splitlines()
