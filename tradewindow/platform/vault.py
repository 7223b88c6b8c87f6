"""Secrets the platform must read back — custodial signing keys, webhook signing secrets — are
sealed at rest with AES-256-GCM under a master key that lives outside the database.

Why: a copy of the database (a backup, a replica, a leaked dump) must not let anyone sign a bill of
lading as its holder or forge a webhook. API keys and passwords need no vault: they are only ever
compared, so they are stored hashed (platform/auth.py).

The master key is a file (TRADEWINDOW_SECRET_KEY_FILE, `var/secret.key` by default), created with
mode 0600 on first use. Every process of one installation must read the same file, and a restored
database needs the key file that went with it: back them up separately. Each sealed value is bound
to its purpose (table, column and row id), so a ciphertext copied into another row does not open."""

from __future__ import annotations

import base64
import os
import secrets
from functools import lru_cache
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tradewindow.platform.errors import DomainError
from tradewindow.platform.settings import get_settings

PREFIX = "v1:"
NONCE_BYTES = 12
KEY_BYTES = 32


class VaultUnavailable(DomainError):
    """The master key is missing, unreadable or not the one the value was sealed with: an operator's
    matter, answered 503 rather than a stack trace."""

    status = 503


def seal(plain: bytes, purpose: str) -> str:
    nonce = secrets.token_bytes(NONCE_BYTES)
    sealed = AESGCM(master_key()).encrypt(nonce, plain, purpose.encode())
    return PREFIX + base64.b64encode(nonce + sealed).decode()


def unseal(text: str, purpose: str) -> bytes:
    if not text.startswith(PREFIX):
        raise VaultUnavailable("A stored secret is not sealed; run `tradewindow db upgrade`.", "secret_not_sealed")
    try:
        raw = base64.b64decode(text[len(PREFIX):], validate=True)
        if len(raw) < NONCE_BYTES:
            raise ValueError("shorter than its nonce")
    except ValueError:      # binascii.Error included
        raise VaultUnavailable("A stored secret is damaged (not a sealed value): seal it anew, e.g. by "
                               "rotating it.", "secret_damaged") from None
    try:
        return AESGCM(master_key()).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], purpose.encode())
    except InvalidTag:
        raise VaultUnavailable(
            "A stored secret does not open with this installation's master key: restore the key file "
            "(TRADEWINDOW_SECRET_KEY_FILE) that belongs to this database.", "wrong_master_key") from None


def row_purpose(table: str, column: str, row_id: str) -> str:
    """The purpose a value stored in table.column of one row is sealed for."""
    return f"{table}.{column}:{row_id}"


def seal_text(plain: str, purpose: str) -> str:
    return seal(plain.encode(), purpose)


def unseal_text(text: str, purpose: str) -> str:
    return unseal(text, purpose).decode()


def master_key() -> bytes:
    return _read_or_create(get_settings().secret_key_file.resolve())


@lru_cache(maxsize=4)
def _read_or_create(path: Path) -> bytes:
    if not path.exists():
        _create(path)
    try:
        key = base64.b64decode(path.read_text().strip(), validate=True)
    except (OSError, ValueError) as exc:
        raise VaultUnavailable(f"The master key file {path} cannot be read: {exc}", "master_key_unreadable") from None
    if len(key) != KEY_BYTES:
        raise VaultUnavailable(f"The master key file {path} does not hold a {KEY_BYTES}-byte key in base64.",
                               "master_key_unreadable")
    return key


def _create(path: Path) -> None:
    """Written to a private temporary file, then linked into place: two processes starting at once
    end up with the same key, whichever links first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w") as handle:
            handle.write(base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode() + "\n")
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass
    finally:
        temporary.unlink(missing_ok=True)
