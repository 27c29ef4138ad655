"""Secrets at rest and signatures: the key ring built from ``NEXTSTEP_SECRET_KEY``.

    NEXTSTEP_SECRET_KEY=<new key>,<older key>,...     each the base64 of 32 random bytes

The first key encrypts and signs; every key decrypts and verifies. To rotate, put a new
key first and keep the old ones after it until nothing they encrypted or signed is still
wanted. A key is never used as it is: HKDF-SHA256 derives from it one AES-256-GCM key
(``encrypt``), one HMAC-SHA256 key (``sign``) and a public key id, so encryption and
signing never share a key and the id reveals nothing.

An encrypted value is one ASCII token, safe in a TEXT column or a URL::

    v1.<key id, 8 hex digits>.<base64url, no padding: nonce (12 random bytes) ‖ ciphertext ‖ tag>

The version and key id are authenticated with the ciphertext (GCM associated data), so
nothing in a token can be changed without ``decrypt`` refusing it. A ``context`` (e.g.
``"channels.token"``) given to ``encrypt`` must be given again to ``decrypt``: a value
copied into another column does not decrypt there.

Where the key comes from (``load_key_ring``): the setting; else, on SQLite, a file beside
the database (``<database file>.key``, mode 0600), generated at first start and reused;
else (PostgreSQL: several replicas must share one key) start-up is refused.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from weakref import WeakKeyDictionary

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import Text
from sqlalchemy.engine import Dialect, Engine, make_url
from sqlalchemy.types import TypeDecorator

from app.errors import ConfigError

log = logging.getLogger(__name__)

KEY_BYTES = 32
NONCE_BYTES = 12
VERSION = "v1"
GENERATE_HINT = "generate one with: nextstep generate-secret-key"


class SecretError(ValueError):
    """A token that is not ours: malformed, tampered with, or under a key we do not hold."""


def generate_key() -> str:
    """A new key, as NEXTSTEP_SECRET_KEY takes it (base64 of 32 random bytes)."""
    return base64.b64encode(os.urandom(KEY_BYTES)).decode("ascii")


def decode_keys(values: Iterable[str]) -> tuple[bytes, ...]:
    """The raw keys; ValueError names the bad one by position, never showing it."""
    values = list(values)
    keys = []
    for n, value in enumerate(values, start=1):
        which = f"key {n} of {len(values)}" if len(values) > 1 else "the key"
        raw = _b64decode(value.strip())
        if raw is None:
            raise ValueError(f"{which} is not base64; {GENERATE_HINT}")
        if len(raw) != KEY_BYTES:
            raise ValueError(
                f"{which} is {len(raw)} bytes, not {KEY_BYTES} (base64 of 32 random bytes); "
                f"{GENERATE_HINT}"
            )
        keys.append(raw)
    return tuple(keys)


def _b64decode(text: str) -> bytes | None:
    padded = text + "=" * (-len(text) % 4)
    for alphabet in (None, b"-_"):  # standard, then URL-safe
        try:
            return base64.b64decode(padded, altchars=alphabet, validate=True)
        except (binascii.Error, ValueError):
            continue
    return None


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def signed(keys: KeyRing, value: str, purpose: str) -> str:
    """``value`` and its signature, for a link: ``<value>.<signature>`` (URL-safe)."""
    return f"{value}.{_b64url(keys.sign(value.encode(), purpose=purpose))}"


def value_of_signed(keys: KeyRing, token: str, purpose: str) -> str | None:
    """The value ``signed`` made ``token`` of, None when forged or malformed."""
    value, _, sig = token.partition(".")
    raw = _b64decode(sig) if sig else None
    if not value or raw is None or not keys.verify(value.encode(), raw, purpose=purpose):
        return None
    return value


def _derive(key: bytes, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(key)


@dataclass(frozen=True, slots=True)
class _Key:
    id: str
    aead: AESGCM
    mac: bytes

    @classmethod
    def of(cls, raw: bytes) -> _Key:
        key_id = _derive(raw, b"nextstep/v1/key-id")[:4].hex()
        return cls(
            key_id, AESGCM(_derive(raw, b"nextstep/v1/encrypt")), _derive(raw, b"nextstep/v1/sign")
        )


class KeyRing:
    """Encrypts and signs with the first key; decrypts and verifies with any of them."""

    def __init__(self, keys: Sequence[bytes]) -> None:
        if not keys:
            raise ValueError("a key ring needs at least one key")
        self._keys = tuple(_Key.of(raw) for raw in keys)

    @classmethod
    def from_text(cls, value: str) -> KeyRing:
        """From the NEXTSTEP_SECRET_KEY form: comma-separated base64 keys, newest first."""
        return cls(decode_keys(part for part in value.split(",") if part.strip()))

    @property
    def key_ids(self) -> tuple[str, ...]:
        """Public ids of the keys, the encrypting one first (they appear in tokens)."""
        return tuple(k.id for k in self._keys)

    def encrypt(self, plaintext: str, *, context: str = "") -> str:
        """A token holding ``plaintext``, under the first key and a fresh random nonce."""
        key = self._keys[0]
        header = f"{VERSION}.{key.id}"
        nonce = os.urandom(NONCE_BYTES)
        sealed = key.aead.encrypt(nonce, plaintext.encode("utf-8"), _aad(header, context))
        return f"{header}.{_b64url(nonce + sealed)}"

    def decrypt(self, token: str, *, context: str = "") -> str:
        """The plaintext of ``token``; SecretError when it is not a token we made."""
        parts = token.split(".") if isinstance(token, str) else []
        if len(parts) != 3 or parts[0] != VERSION:
            raise SecretError("not an encrypted value (expected v1.<key id>.<data>)")
        header = f"{parts[0]}.{parts[1]}"
        blob = _b64decode(parts[2])
        if blob is None or len(blob) < NONCE_BYTES + 16:
            raise SecretError("encrypted value is truncated or not base64")
        candidates = [k for k in self._keys if k.id == parts[1]]
        if not candidates:
            raise SecretError(
                f"encrypted with key {parts[1]}, which is not in NEXTSTEP_SECRET_KEY "
                f"(holding {', '.join(self.key_ids)})"
            )
        for key in candidates:
            try:
                plain = key.aead.decrypt(
                    blob[:NONCE_BYTES], blob[NONCE_BYTES:], _aad(header, context)
                )
            except InvalidTag:
                continue
            return plain.decode("utf-8")
        raise SecretError("encrypted value was altered, or belongs to another context")

    def sign(self, data: bytes, *, purpose: str = "") -> bytes:
        """HMAC-SHA256 of ``data`` (32 bytes) with the first key; ``purpose`` separates uses."""
        return hmac.new(self._keys[0].mac, _signed(data, purpose), hashlib.sha256).digest()

    def verify(self, data: bytes, signature: bytes, *, purpose: str = "") -> bool:
        """Whether ``signature`` is ``sign(data, purpose=purpose)`` under any key of the ring."""
        message = _signed(data, purpose)
        ok = False
        for key in self._keys:  # every key, always: the time taken tells nothing
            expected = hmac.new(key.mac, message, hashlib.sha256).digest()
            ok |= hmac.compare_digest(expected, signature)
        return ok


def _aad(header: str, context: str) -> bytes:
    return f"{header}|{context}".encode()


def _signed(data: bytes, purpose: str) -> bytes:
    return purpose.encode("utf-8") + b"\x00" + data


# --- where the key comes from -----------------------------------------------------------


def key_file_for(database_url: str) -> Path | None:
    """``<database file>.key`` for a SQLite URL; None for PostgreSQL."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or not url.database:
        return None
    return Path(url.database).expanduser().with_name(Path(url.database).name + ".key")


def load_key_ring(configured: Sequence[str], database_url: str) -> KeyRing:
    """The ring of NEXTSTEP_SECRET_KEY, else of the SQLite key file; ConfigError naming why not."""
    if configured:
        return KeyRing(decode_keys(configured))
    path = key_file_for(database_url)
    if path is None:
        raise ConfigError(
            "NEXTSTEP_SECRET_KEY: required with PostgreSQL (every replica must use the same "
            f"key); {GENERATE_HINT}"
        )
    if not path.exists():
        _create_key_file(path)
        log.info(
            "secrets.key_file_created",
            extra={
                "path": str(path),
                "detail": "a new secret key was generated; back it up with the database: "
                "without it, encrypted values cannot be read",
            },
        )
    return _read_key_file(path)


def _read_key_file(path: Path) -> KeyRing:
    try:
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            raise ConfigError(
                f"{path}: the secret key file is readable by others (mode {mode:04o}); "
                f"run: chmod 600 {path}"
            )
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: cannot read the secret key file: {err}") from err
    try:
        return KeyRing.from_text(text.strip())
    except ValueError as err:
        raise ConfigError(f"{path}: {err}") from err


def _create_key_file(path: Path) -> None:
    """Write a new key with mode 0600, all at once: a crash never leaves half a key."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.fchmod(fd, 0o600)
            os.write(fd, (generate_key() + "\n").encode("ascii"))
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)  # atomic, and never replaces a key another process just made
        except FileExistsError:
            pass
    except OSError as err:
        raise ConfigError(f"{path}: cannot create the secret key file: {err}") from err
    finally:
        tmp.unlink(missing_ok=True)


# --- encrypted columns ------------------------------------------------------------------

_RINGS: WeakKeyDictionary[Dialect, KeyRing] = WeakKeyDictionary()


def bind_key_ring(engine: Engine, ring: KeyRing) -> None:
    """Let EncryptedText columns read and written through ``engine`` use ``ring``."""
    _RINGS[engine.dialect] = ring


def _ring(dialect: Dialect) -> KeyRing:
    try:
        return _RINGS[dialect]
    except KeyError:
        raise RuntimeError(
            "no key ring bound to this engine (build_runtime binds it: bind_key_ring)"
        ) from None


class EncryptedText(TypeDecorator[str]):
    """A TEXT column whose values are stored encrypted (``v1.…`` tokens), read back plain.

    ``EncryptedText("channels.token")``: the context binds each value to its column.
    """

    impl = Text
    cache_ok = True

    def __init__(self, context: str = "", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.context = context

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        return None if value is None else _ring(dialect).encrypt(value, context=self.context)

    def process_result_value(self, value: str | None, dialect: Dialect) -> str | None:
        return None if value is None else _ring(dialect).decrypt(value, context=self.context)
