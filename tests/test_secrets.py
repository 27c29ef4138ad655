"""The key ring of NEXTSTEP_SECRET_KEY: encrypt/decrypt (AES-GCM), sign/verify (HMAC),
rotation, tampering, the SQLite key file and the PostgreSQL refusal, encrypted columns."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Column, Integer, MetaData, Table, create_engine, insert, select, text

from app.config import load_settings
from app.errors import ConfigError
from app.main import build_runtime, close_runtime
from app.secrets import (
    EncryptedText,
    KeyRing,
    SecretError,
    bind_key_ring,
    generate_key,
    key_file_for,
    load_key_ring,
)

OLD, NEW = generate_key(), generate_key()


def ring(*keys: str) -> KeyRing:
    return KeyRing.from_text(",".join(keys))


@given(st.text(), st.text(max_size=30))
def test_what_is_encrypted_decrypts_to_itself(plain: str, context: str) -> None:
    keys = ring(NEW)
    token = keys.encrypt(plain, context=context)
    assert keys.decrypt(token, context=context) == plain
    assert token.isascii() and "\n" not in token


def test_a_token_is_versioned_tagged_with_the_key_id_and_never_the_same_twice() -> None:
    keys = ring(NEW, OLD)
    a, b = keys.encrypt("xoxb-secret"), keys.encrypt("xoxb-secret")
    assert a != b  # a fresh 96-bit nonce each time
    version, key_id, data = a.split(".")
    assert version == "v1" and key_id == keys.key_ids[0] and len(key_id) == 8
    raw = base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))
    assert len(raw) == 12 + len("xoxb-secret") + 16  # nonce ‖ ciphertext ‖ GCM tag
    assert "xoxb" not in a


def test_rotation_old_tokens_still_decrypt_new_ones_use_the_first_key() -> None:
    before = ring(OLD).encrypt("channel-token")
    rotated = ring(NEW, OLD)
    assert rotated.decrypt(before) == "channel-token"
    after = rotated.encrypt("channel-token")
    assert after.split(".")[1] == ring(NEW).key_ids[0] != before.split(".")[1]
    assert ring(NEW).decrypt(after) == "channel-token"
    with pytest.raises(SecretError, match="not in NEXTSTEP_SECRET_KEY"):
        ring(NEW).decrypt(before)  # the old key dropped: its tokens are gone with it


def test_a_wrong_key_is_refused() -> None:
    token = ring(OLD).encrypt("s")
    with pytest.raises(SecretError):
        ring(NEW).decrypt(token)


def _flip(token: str, index: int) -> str:
    version, key_id, data = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(data + "=" * (-len(data) % 4)))
    raw[index] ^= 1
    return f"{version}.{key_id}.{base64.urlsafe_b64encode(bytes(raw)).rstrip(b'=').decode()}"


def test_tampered_tokens_are_refused() -> None:
    keys = ring(NEW)
    token = keys.encrypt("clientState-1234")
    for index in (0, 11, 12, 20, -1):  # nonce, ciphertext, tag
        with pytest.raises(SecretError, match="altered"):
            keys.decrypt(_flip(token, index))
    version, key_id, data = token.split(".")
    for bad in (
        f"v2.{key_id}.{data}",
        f"{version}.{key_id}.{data[:20]}",
        f"{version}.{key_id}.{data}!",
        f"{version}.00000000.{data}",
        "clientState-1234",
        "",
    ):
        with pytest.raises(SecretError):
            keys.decrypt(bad)
    with pytest.raises(SecretError, match="another context"):
        keys.decrypt(keys.encrypt("x", context="channels.token"), context="reps.oauth")


def test_signatures_verify_under_any_key_of_the_ring_and_nothing_else() -> None:
    data = b"nudge-1|send_invite|2026-11-24T10:00Z"
    old = ring(OLD).sign(data, purpose="action")
    rotated = ring(NEW, OLD)
    assert rotated.verify(data, old, purpose="action")
    assert rotated.sign(data, purpose="action") == ring(NEW).sign(data, purpose="action")
    assert not ring(NEW).verify(data, old, purpose="action")
    assert not rotated.verify(data + b"x", old, purpose="action")
    assert not rotated.verify(data, old, purpose="unsubscribe")  # purposes never mix
    assert not rotated.verify(data, old[:-1], purpose="action")
    assert len(old) == 32


def test_signing_and_encryption_use_keys_derived_apart_from_the_secret() -> None:
    raw = base64.b64decode(NEW)
    signature = ring(NEW).sign(b"data")
    assert signature != hmac.new(raw, b"\x00data", hashlib.sha256).digest()  # not the raw key
    derived = HKDF(hashes.SHA256(), 32, None, b"nextstep/v1/sign").derive(raw)
    assert signature == hmac.new(derived, b"\x00data", hashlib.sha256).digest()
    encrypt_key = HKDF(hashes.SHA256(), 32, None, b"nextstep/v1/encrypt").derive(raw)
    assert encrypt_key != derived


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("", "at least one key"),
        ("c2hvcnQ=", "the key is 5 bytes, not 32"),
        (f"{NEW},nope!", "key 2 of 2 is not base64"),
    ],
)
def test_bad_keys_are_refused_saying_which(value: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        KeyRing.from_text(value)


def test_url_safe_base64_keys_are_taken() -> None:
    raw = os.urandom(32)
    assert (
        KeyRing.from_text(base64.urlsafe_b64encode(raw).decode().rstrip("=")).key_ids
        == KeyRing([raw]).key_ids
    )


# --- where the key comes from -----------------------------------------------------------


def test_on_sqlite_a_key_file_is_made_beside_the_database_mode_0600_and_reused(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path}/nextstep.db"
    path = key_file_for(url)
    assert path == tmp_path / "nextstep.db.key" and not path.exists()
    first = load_key_ring((), url)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["nextstep.db.key"]  # no temp file left
    token = first.encrypt("kept")
    again = load_key_ring((), url)
    assert again.key_ids == first.key_ids and again.decrypt(token) == "kept"
    assert load_key_ring((NEW,), url).key_ids == ring(NEW).key_ids  # the setting wins


def test_a_key_file_others_can_read_or_that_is_not_a_key_is_refused_naming_it(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path}/nextstep.db"
    path = tmp_path / "nextstep.db.key"
    path.write_text(NEW + "\n")
    path.chmod(0o644)
    with pytest.raises(ConfigError, match=r"nextstep.db.key: .*readable by others \(mode 0644\)"):
        load_key_ring((), url)
    path.chmod(0o600)
    assert load_key_ring((), url).key_ids == ring(NEW).key_ids
    path.write_text("not a key\n")
    with pytest.raises(ConfigError, match=r"nextstep.db.key: the key is not base64"):
        load_key_ring((), url)
    path.write_text(f"{NEW},{OLD}\n")  # rotation on SQLite: edit the file
    assert load_key_ring((), url).key_ids == ring(NEW, OLD).key_ids


def test_postgresql_refuses_to_start_without_the_variable() -> None:
    with pytest.raises(ConfigError) as err:
        load_key_ring((), "postgresql+psycopg://u@db/nextstep")
    assert str(err.value).startswith("NEXTSTEP_SECRET_KEY: required with PostgreSQL")
    assert "nextstep generate-secret-key" in str(err.value)


def test_serve_on_postgresql_without_a_key_is_one_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEXTSTEP_")}
    env |= {
        "NEXTSTEP_DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/none",
        "NEXTSTEP_INTERNAL_DOMAINS": "seller.io",
        "NEXTSTEP_API_KEYS": "k",
    }
    r = subprocess.run(
        [sys.executable, "-m", "app.cli", "serve"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.splitlines() == [
        "nextstep: error: NEXTSTEP_SECRET_KEY: required with PostgreSQL (every replica must "
        "use the same key); generate one with: nextstep generate-secret-key"
    ]


async def test_the_runtime_carries_the_ring(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("NEXTSTEP_SECRET_KEY", raising=False)
    settings = load_settings(database_url=f"sqlite:///{tmp_path}/n.db", sandbox=True)
    rt = build_runtime(settings, channels={})
    try:
        assert (tmp_path / "n.db.key").exists()
        token = rt.keys.encrypt("x")
    finally:
        await close_runtime(rt)
    rt = build_runtime(settings, channels={})
    try:
        assert rt.keys.decrypt(token) == "x"  # the same key after a restart
    finally:
        await close_runtime(rt)


# --- encrypted columns, on both databases ------------------------------------------------


def test_an_encrypted_column_stores_tokens_and_reads_back_plain(database_url: str) -> None:
    meta = MetaData()
    table = Table(
        "secret_things",
        meta,
        Column("id", Integer, primary_key=True),
        Column("token", EncryptedText("secret_things.token"), nullable=True),
    )
    engine = create_engine(database_url)
    try:
        meta.create_all(engine)
        keys = ring(NEW, OLD)
        bind_key_ring(engine, keys)
        with engine.begin() as conn:
            conn.execute(
                insert(table), [{"id": 1, "token": "ya29.secret"}, {"id": 2, "token": None}]
            )
        with engine.connect() as conn:
            stored = dict(conn.execute(text("SELECT id, token FROM secret_things")).all())
            read = dict(conn.execute(select(table.c.id, table.c.token)).all())
        assert stored[1].startswith(f"v1.{keys.key_ids[0]}.") and "ya29" not in stored[1]
        assert stored[2] is None
        assert read == {1: "ya29.secret", 2: None}
        bind_key_ring(engine, ring(OLD))  # the key that wrote it is gone
        with engine.connect() as conn, pytest.raises(SecretError):
            conn.execute(select(table.c.token).where(table.c.id == 1)).all()
        other = create_engine(database_url)  # an engine nobody bound a ring to
        try:
            with other.connect() as conn, pytest.raises(RuntimeError, match="no key ring"):
                conn.execute(select(table.c.token).where(table.c.id == 1)).all()
        finally:
            other.dispose()
    finally:
        meta.drop_all(engine)
        engine.dispose()
