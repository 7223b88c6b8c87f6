"""Act on bills of lading from one's own machine: sign each record locally with the party's
Ed25519 key file and send it to a Trade Window server over HTTP with an API key. The private key
never leaves the machine; the server sees only the signature.

The flow is the API's (see `tradewindow/titles/api.py`): ask the server for the record to sign
(`prepare`), check that it is the record meant (the action, the bill, one's own key, the
canonical bytes rebuilt here from the record's fields), sign those bytes, and send the action with
the record's `signed_at`, `previous` and the `signature`. `tradewindow titles endorse|pledge|...
--key KEY` uses this."""

from __future__ import annotations

import base64
import hashlib
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tradewindow.titles import model

URL_ENV = "TRADEWINDOW_URL"
API_KEY_ENV = "TRADEWINDOW_API_KEY"
DEFAULT_URL = "http://127.0.0.1:8000"
# The path of each action after /api/v1/titles/{number}/, and the body field naming its counterparty.
ACTIONS: dict[str, tuple[str, str | None]] = {
    "endorse": ("endorse", "to_uscc"),
    "pledge": ("pledge", "bank_uscc"),
    "release_pledge": ("release-pledge", None),
    "take_over": ("take-over", None),
    "surrender": ("surrender", None),
    "void": ("void", None),
}

# The fields of a title record's canonical form (model.Record.body).
RECORD_KEYS = frozenset({"action", "actor", "at", "bill", "document", "format", "from_holder", "key", "pledgee",
                         "previous", "sequence", "to_holder"})


@dataclass
class ClientError(Exception):
    """What the server refused (its errors as sent), or why it could not be asked."""

    status: int | None
    errors: list[dict[str, Any]] = field(default_factory=list)

    def __str__(self) -> str:
        return "; ".join(f"{e.get('code')}: {e.get('message')}" for e in self.errors) or f"HTTP {self.status}"


# --- the key file --------------------------------------------------------------------------------

def write_key_file(path: Path, raw_private_key: bytes, overwrite: bool = False) -> None:
    """Write the private key as PEM, readable by its owner only (mode 0600), created that way so it
    is never readable by others, not even for a moment. An existing file is kept unless
    `overwrite`."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if overwrite else os.O_EXCL)
    descriptor = os.open(path, flags, 0o600)
    try:
        os.fchmod(descriptor, 0o600)       # an overwritten file keeps no wider mode
        os.write(descriptor, model.private_key_pem(raw_private_key).encode())
    finally:
        os.close(descriptor)


def read_key_file(path: Path) -> bytes:
    """The raw private key of a key file; refused when others may read it (as ssh does)."""
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ClientError(None, [{"path": "key", "code": "key_file_unreadable",
                                  "message": f"Cannot read the key file {path}: {exc.strerror}."}]) from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ClientError(None, [{"path": "key", "code": "key_file_too_open",
                                  "message": f"The key file {path} may be read by others; run chmod 600 on it."}])
    try:
        return model.parse_private_key_pem(text)
    except model.ValidationFailed as exc:
        raise ClientError(None, [p.as_dict() for p in exc.problems]) from None


# --- the client ----------------------------------------------------------------------------------

class TitlesClient:
    """The titles API of one server, as one party, signing with one local key."""

    def __init__(self, url: str, api_key: str, private_key: bytes | None = None,
                 http: httpx.Client | None = None) -> None:
        self.private_key = private_key
        self.http = http or httpx.Client(base_url=url.rstrip("/"), timeout=30.0)
        self.headers = {"Authorization": f"Bearer {api_key}", "Accept": "application/json"}

    @property
    def fingerprint(self) -> str:
        assert self.private_key is not None
        return model.fingerprint(model.public_key_of(self.private_key))

    def close(self) -> None:
        self.http.close()

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        try:
            response = self.http.request(method, path, json=body, headers=self.headers)
        except httpx.HTTPError as exc:
            raise ClientError(None, [{"path": "", "code": "server_unreachable",
                                      "message": f"Cannot reach the server: {exc}."}]) from None
        try:
            data = response.json()
        except ValueError:
            data = None
        if response.status_code >= 400:
            errors = data.get("errors") if isinstance(data, Mapping) else None
            raise ClientError(response.status_code, errors or [
                {"path": "", "code": f"http_{response.status_code}", "message": response.text[:300]}])
        return data

    def register_key(self) -> dict:
        """Register the local key's public half as the enterprise's signing key."""
        assert self.private_key is not None
        return self._call("POST", "/api/v1/signing-keys",
                          {"public_key": model.public_key_pem(model.public_key_of(self.private_key))})

    def issue(self, particulars: Mapping[str, Any]) -> dict:
        """Issue a bill (the carrier): prepare its issue record, sign it here, send both."""
        prepared = self._call("POST", "/api/v1/titles/prepare", dict(particulars))
        number = str(particulars.get("bol_number", "")).strip().upper()
        signature = self._sign(prepared, "issue", number)
        return self._call("POST", "/api/v1/titles", {**particulars, "signed_at": prepared["signed_at"],
                                                     "signature": signature})

    def act(self, number: str, action: str, to_uscc: str | None = None) -> dict:
        """Endorse, pledge, release the pledge, take over, surrender or void, signed here."""
        path, counterparty = ACTIONS[action]
        number = number.strip().upper()
        prepared = self._call("POST", f"/api/v1/titles/{number}/prepare", {"action": action, "to_uscc": to_uscc})
        signature = self._sign(prepared, action, number)
        body: dict[str, Any] = {"signed_at": prepared["signed_at"], "previous": prepared["previous"],
                                "signature": signature}
        if counterparty:
            body[counterparty] = to_uscc
        return self._call("POST", f"/api/v1/titles/{number}/{path}", body)

    def _sign(self, prepared: Mapping[str, Any], action: str, number: str) -> str:
        """Sign the prepared record only if it is the one meant: the bytes signed are rebuilt here
        from the record's fields, never taken from the server as they are."""
        assert self.private_key is not None
        record = prepared.get("record") if isinstance(prepared, Mapping) else None
        problems = []
        if not isinstance(record, Mapping) or set(record) != RECORD_KEYS:
            problems.append(("record_malformed", "The server's record to sign is not a title record."))
        else:
            data = model.canonical_json(dict(record))
            expected = {"format": model.RECORD_FORMAT, "action": action, "bill": number, "key": self.fingerprint}
            for name, value in expected.items():
                if record.get(name) != value:
                    problems.append(("record_not_as_meant",
                                     f"The record to sign has {name} {record.get(name)!r}, not {value!r}."))
            if prepared.get("canonical") != data.decode("utf-8") or \
                    prepared.get("hash") != hashlib.sha256(data).hexdigest():
                problems.append(("record_malformed", "The record's canonical bytes or hash do not match its fields."))
        if problems:
            raise ClientError(None, [{"path": "record", "code": code, "message": message}
                                     for code, message in problems])
        return model.sign_bytes(self.private_key, data)


def public_key_text(raw_private_key: bytes) -> dict[str, str]:
    """The public key in the forms the platform accepts, and its fingerprint."""
    public = model.public_key_of(raw_private_key)
    return {"pem": model.public_key_pem(public), "base64": base64.b64encode(public).decode(),
            "fingerprint": model.fingerprint(public)}
