"""`nextstep demo` shows the four nudge kinds, readably, on the sandbox."""

from __future__ import annotations

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
    assert "Agenda for this 15-minute follow-up to Acme — discovery call" in flat
    assert "to dana.smith@acme.com" in text and "video: https://" in text
    assert "work for you" not in flat.split("Camille taps")[1].split("────")[0]
