"""Secrets at rest: the database, dumped whole as a backup would be, holds no channel
token or clientState in clear; they are AES-GCM tokens under NEXTSTEP_SECRET_KEY, and a
rotated key ring (new key first, old after) still reads what the old key wrote."""

from __future__ import annotations

from sqlalchemy import select, text

from app import providers as registry
from app.config import load_settings
from app.db.models import Notification, WatchChannelRow
from app.main import build_runtime, close_runtime
from app.secrets import generate_key
from tests.helpers.calendar import REP, register
from tests.helpers.dump import dump
from tests.helpers.serve import TEST_SECRET_KEY

REPS = (REP, "paul@seller.io")


def _secrets_of(sb) -> list[str]:  # type: ignore[no-untyped-def]
    """The channel tokens the provider handed out (what a notification must echo)."""
    return [token for rep in REPS for token in sb.calendar(rep).channels.values()]


async def test_no_channel_token_is_in_the_dump_and_each_decrypts(rt, database_url) -> None:
    await register(rt)
    await register(rt, "paul@seller.io")
    sb = registry.sandbox(rt.providers)
    tokens = _secrets_of(sb)
    assert len(tokens) == 2 and all(len(t) >= 32 for t in tokens)
    rows = await rt.db.run(lambda s: s.scalars(select(WatchChannelRow)).all())
    assert sorted(r.token for r in rows) == sorted(tokens)  # read back plain

    backup = dump(database_url)
    assert "watch_channels" in backup  # the dump is the real thing
    for secret in (*tokens, TEST_SECRET_KEY, "test-key"):
        assert secret not in backup
    stored = await rt.db.run(
        lambda s: s.execute(text("SELECT token FROM watch_channels")).scalars().all()
    )
    assert all(v.startswith(f"v1.{rt.keys.key_ids[0]}.") for v in stored)


async def test_a_rotated_key_ring_still_reads_and_checks_old_tokens(
    rt, database_url, clock, channel
) -> None:
    await register(rt)
    sb = registry.sandbox(rt.providers)
    providers = rt.providers
    await close_runtime_keeping(rt)

    new = generate_key()
    settings = load_settings(
        database_url=database_url,
        sandbox=True,
        internal_domains="seller.io",
        api_keys="test-key",
        sync_min_interval_seconds=0,
        secret_key=f"{new},{TEST_SECRET_KEY}",
    )
    rotated = build_runtime(settings, clock=clock, providers=providers, channels={"r": channel})
    try:
        assert rotated.keys.key_ids[1] == rt.keys.key_ids[0]
        # A notification checked against the token the old key encrypted is accepted.
        ((channel_id, token),) = sb.calendar(REP).channels.items()
        await sb.redeliver(channel_id, token, 7)
        await sb.redeliver(channel_id, "forged", 8)
        kept = await rotated.db.run(lambda s: s.scalars(select(Notification.dedupe_key)).all())
        assert kept == [f"sandbox:{channel_id}:7"]
        # What is written from now on is under the new key; both still read back.
        await register(rotated, "paul@seller.io")
        stored = await rotated.db.run(
            lambda s: s.execute(text("SELECT token FROM watch_channels")).scalars().all()
        )
        assert {v.split(".")[1] for v in stored} == set(rotated.keys.key_ids)
        plain = await rotated.db.run(lambda s: s.scalars(select(WatchChannelRow.token)).all())
        assert sorted(plain) == sorted(_secrets_of(sb))
    finally:
        await close_runtime(rotated)


async def close_runtime_keeping(rt) -> None:  # type: ignore[no-untyped-def]
    """Stop the first runtime's database but keep the providers for the next one."""
    rt.db.dispose()
