"""Who is acting, and the secrets that prove it. Pure: the registry stores users and credentials.

Passwords are hashed with scrypt (memory-hard, in the standard library). Tokens, API keys and
session cookies are random strings that we store only as SHA-256 hashes: a stolen database does
not yield a working credential, and a hash of 256 random bits needs no salt."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    TRADER = "trader"
    BROKER = "broker"
    PLATFORM = "platform"        # cross-border e-commerce platform
    PAYMENT = "payment"          # payment company
    LOGISTICS = "logistics"      # logistics company (e-commerce waybills)
    CARRIER = "carrier"          # carrier / forwarder
    BANK = "bank"
    CUSTOMS = "customs"
    QUARANTINE = "quarantine"
    LICENSING = "licensing"
    ZONE = "zone"                # the zone authority
    ADMIN = "admin"


OFFICER_ROLES = frozenset({Role.CUSTOMS, Role.QUARANTINE, Role.LICENSING, Role.ZONE})
ENTERPRISE_ROLES = frozenset({Role.TRADER, Role.BROKER, Role.PLATFORM, Role.PAYMENT,
                              Role.LOGISTICS, Role.CARRIER, Role.BANK})
ALL_ROLES = frozenset(Role)


@dataclass(frozen=True)
class Actor:
    user_id: str | None
    username: str
    role: Role
    enterprise_id: str | None = None   # for enterprise roles: the enterprise the user works for
    agency_id: str | None = None       # for officers: the agency they belong to

    def is_(self, *roles: Role) -> bool:
        return self.role in roles

    @property
    def is_officer(self) -> bool:
        return self.role in OFFICER_ROLES


SYSTEM = Actor(user_id=None, username="system", role=Role.ADMIN)

# scrypt cost: n = 2**14 with r = 8 takes 16 MiB and tens of milliseconds per guess. The test
# suite lowers SCRYPT_N (tests/conftest.py) so that thousands of persona logins stay fast; the
# parameters are stored with each hash, so verification always uses the hash's own cost.
SCRYPT_N = 2**14
_SCRYPT_R, _SCRYPT_P = 8, 1


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P,
                            dklen=32)
    return "$".join(["scrypt", str(SCRYPT_N), str(_SCRYPT_R), str(_SCRYPT_P),
                     _b64(salt), _b64(digest)])


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    candidate = hashlib.scrypt(password.encode(), salt=_unb64(salt), n=int(n), r=int(r), p=int(p),
                               dklen=len(_unb64(digest)))
    return hmac.compare_digest(candidate, _unb64(digest))


def new_secret(prefix: str) -> str:
    """A credential to hand out once: `tw_key_...`, `tw_tok_...`; the prefix tells a leaked
    string's kind at a glance (and to secret scanners)."""
    return f"{prefix}_{secrets.token_urlsafe(32)}"


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def csrf_token_for(session_secret: str) -> str:
    """The CSRF token of a web session. Derived from the session cookie, which scripts on other
    sites cannot read, so a forged form cannot carry it; nothing extra to store."""
    return hashlib.sha256(b"csrf:" + session_secret.encode()).hexdigest()[:40]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: str) -> bytes:
    return base64.b64decode(text)
