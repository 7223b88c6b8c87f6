"""Secrets the platform must read back are sealed under a master key kept outside the database: a
copy of the database alone opens none of them, a value copied into another row does not open, and a
wrong or missing key is an operator's clear error, not a stack trace."""

from __future__ import annotations

import base64
import stat
import threading

import pytest
from sqlalchemy import text

from tradewindow.migrations import upgrade
from tradewindow.platform import vault
from tradewindow.platform.db import make_engine
from tradewindow.platform.settings import get_settings
from tradewindow.titles import model


@pytest.fixture
def key_file(tmp_path, monkeypatch):
    """A master key of the test's own (created on first use) instead of the run's."""
    path = tmp_path / "keys" / "secret.key"
    monkeypatch.setenv("TRADEWINDOW_SECRET_KEY_FILE", str(path))
    get_settings.cache_clear()
    yield path
    get_settings.cache_clear()


def test_a_sealed_secret_opens_for_its_own_purpose_only(key_file):
    sealed = vault.seal(b"the custodial key", "signing_keys.private_key:A")
    assert sealed.startswith("v1:") and b"the custodial key" not in base64.b64decode(sealed[3:])
    assert vault.unseal(sealed, "signing_keys.private_key:A") == b"the custodial key"
    with pytest.raises(vault.VaultUnavailable) as moved:
        vault.unseal(sealed, "signing_keys.private_key:B")      # copied into another row
    assert moved.value.code == "wrong_master_key" and moved.value.status == 503


def test_a_damaged_sealed_value_is_a_clear_error_not_a_crash(key_file):
    sealed = vault.seal(b"the custodial key", "signing_keys.private_key:A")
    for damaged in (sealed[:-1], "v1:", "v1:AAAA", "v1:not base64!"):
        with pytest.raises(vault.VaultUnavailable) as caught:
            vault.unseal(damaged, "signing_keys.private_key:A")
        assert caught.value.code in ("secret_damaged", "wrong_master_key") and caught.value.status == 503


def test_the_master_key_is_created_once_readable_by_its_owner_only(key_file):
    assert not key_file.exists()
    results: list[bytes] = []
    start = threading.Barrier(8)

    def first_use() -> None:
        start.wait()
        results.append(vault.master_key())

    threads = [threading.Thread(target=first_use) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(results)) == 1 and len(results[0]) == vault.KEY_BYTES
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert [p.name for p in key_file.parent.iterdir()] == ["secret.key"]    # no temporary files left


def test_another_installation_s_key_does_not_open_the_secret(key_file, tmp_path, monkeypatch):
    sealed = vault.seal(b"webhook secret", "webhook_subscriptions.secret:S")
    monkeypatch.setenv("TRADEWINDOW_SECRET_KEY_FILE", str(tmp_path / "other.key"))
    get_settings.cache_clear()
    with pytest.raises(vault.VaultUnavailable) as wrong:
        vault.unseal(sealed, "webhook_subscriptions.secret:S")
    assert wrong.value.code == "wrong_master_key"
    assert "TRADEWINDOW_SECRET_KEY_FILE" in wrong.value.problems[0].message


def test_a_damaged_key_file_is_a_clear_error(key_file):
    key_file.parent.mkdir(parents=True)
    key_file.write_text("not a key\n")
    with pytest.raises(vault.VaultUnavailable) as damaged:
        vault.seal(b"x", "p")
    assert damaged.value.code == "master_key_unreadable" and str(key_file) in damaged.value.problems[0].message


def test_a_database_from_before_sealing_gets_its_secrets_sealed_by_the_upgrade(tmp_path, key_file):
    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    upgrade(engine, "0010")
    private = model.new_private_key()
    with engine.begin() as conn:     # as 0010 stored them: in clear
        conn.execute(text("INSERT INTO signing_keys (id, enterprise_id, fingerprint, public_key, private_key, "
                          "custodial, created_at, created_by) VALUES ('K1', 'E1', 'f', 'p', :k, 1, "
                          "'2026-01-01 00:00:00', 'old')"), {"k": base64.b64encode(private).decode()})
    upgrade(engine)
    with engine.connect() as conn:
        sealed = conn.execute(text("SELECT private_key FROM signing_keys WHERE id = 'K1'")).scalar_one()
    assert sealed.startswith("v1:")
    assert vault.unseal(sealed, "signing_keys.private_key:K1") == private
    engine.dispose()
