"""Helpers to point the real Google client libraries at the emulator.

    with GoogleEmulator.start() as emu:
        env = setup_google(emu, tmp_path, reps=["rep@corp.test"])
        connector = GoogleConnector(str(env.key_file), emu.api_root, backoff_base=0.001)

``write_service_account`` writes a service-account key JSON exactly like the one the
Cloud console downloads, except that ``token_uri`` points at the emulator, and registers
its public key and a domain-wide delegation grant with the emulator.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from connectors.google.client import SCOPES
from tests.emulators.google.emulator import GoogleEmulator

DEFAULT_CLIENT_EMAIL = "nextstep-sync@nextstep-test.iam.gserviceaccount.com"
DEFAULT_CLIENT_ID = "117000000000000000001"


@lru_cache(maxsize=4)
def rsa_key(slot: int = 0) -> rsa.RSAPrivateKey:
    """A 2048-bit RSA key, generated once per process and slot (generation is slow)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pem(key: rsa.RSAPrivateKey) -> tuple[str, bytes]:
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, public


def write_service_account(
    emu: GoogleEmulator,
    directory: Path,
    *,
    client_email: str = DEFAULT_CLIENT_EMAIL,
    client_id: str = DEFAULT_CLIENT_ID,
    scopes: Iterable[str] | None = SCOPES,
    signing_key: rsa.RSAPrivateKey | None = None,
    registered_key: rsa.RSAPrivateKey | None = None,
    filename: str = "service-account.json",
) -> Path:
    """Write a key file for ``emu`` and register it; ``scopes`` None grants no delegation.

    ``registered_key`` (default: the signing key) is what the emulator believes the
    account's key is: pass another key to get signatures refused.
    """
    signing_key = signing_key or rsa_key(0)
    private_pem, _ = _pem(signing_key)
    _, public_pem = _pem(registered_key or signing_key)
    key_id = uuid.uuid4().hex
    emu.register_service_account(
        client_email=client_email,
        client_id=client_id,
        private_key_id=key_id,
        public_key_pem=public_pem,
    )
    if scopes is not None:
        emu.authorize_client(client_id, scopes)
    info = {
        "type": "service_account",
        "project_id": "nextstep-test",
        "private_key_id": key_id,
        "private_key": private_pem,
        "client_email": client_email,
        "client_id": client_id,
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": emu.token_uri,
        "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
        "client_x509_cert_url": f"https://www.googleapis.com/robot/v1/metadata/x509/{client_email}",
        "universe_domain": "googleapis.com",
    }
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / filename
    path.write_text(json.dumps(info, indent=2))
    return path


@dataclass(frozen=True)
class GoogleTestEnv:
    emulator: GoogleEmulator
    key_file: Path
    client_id: str


def setup_google(
    emu: GoogleEmulator,
    directory: Path,
    *,
    reps: Iterable[str] = (),
    time_zone: str = "UTC",
    scopes: Iterable[str] | None = SCOPES,
) -> GoogleTestEnv:
    """Register the reps' calendars and write a delegated service-account key file."""
    for email in reps:
        emu.add_user(email, time_zone=time_zone)
    key_file = write_service_account(emu, directory, scopes=scopes)
    return GoogleTestEnv(emulator=emu, key_file=key_file, client_id=DEFAULT_CLIENT_ID)
