"""Secrets: scrypt password hashes, random credentials stored only as hashes, CSRF tokens derived
from the session."""

from __future__ import annotations

import pytest

from tradewindow.platform.auth import (
    csrf_token_for,
    hash_password,
    hash_secret,
    new_secret,
    verify_password,
)


@pytest.fixture(scope="module")
def stored() -> str:
    # The production cost, not the suite's cheap one (tests/conftest.py lowers it for speed).
    from tradewindow.platform import auth

    cheap, auth.SCRYPT_N = auth.SCRYPT_N, 2**14
    try:
        return hash_password("correct horse battery")
    finally:
        auth.SCRYPT_N = cheap


def test_a_password_hash_is_scrypt_with_its_parameters_and_salt(stored):
    scheme, n, r, p, salt, digest = stored.split("$")
    assert (scheme, n, r, p) == ("scrypt", str(2**14), "8", "1")
    assert salt and digest
    assert "correct horse battery" not in stored


def test_the_right_password_verifies(stored):
    assert verify_password("correct horse battery", stored)


@pytest.mark.parametrize("attempt", ["", "correct horse batter", "Correct horse battery",
                                     "correct horse battery ", "密码"])
def test_a_wrong_password_does_not_verify(stored, attempt):
    assert not verify_password(attempt, stored)


def test_the_same_password_hashes_differently_with_each_salt():
    first, second = hash_password("demo"), hash_password("demo")
    assert first != second
    assert first.split("$")[4] != second.split("$")[4]
    assert verify_password("demo", first) and verify_password("demo", second)


def test_a_non_ascii_password_round_trips():
    assert verify_password("重庆自贸区", hash_password("重庆自贸区"))


@pytest.mark.parametrize("garbage", ["", "plain", "bcrypt$1$2$3$4$5", "scrypt$16384$8$1$only-five"])
def test_a_malformed_stored_hash_never_verifies(garbage):
    assert not verify_password("anything", garbage)


@pytest.mark.parametrize("prefix", ["tw_key", "tw_tok", "tw_ses"])
def test_a_new_secret_carries_its_prefix_and_enough_randomness(prefix):
    secret = new_secret(prefix)
    assert secret.startswith(prefix + "_")
    assert len(secret) >= len(prefix) + 1 + 43     # 32 random bytes, url-safe base64
    assert new_secret(prefix) != secret


def test_a_secret_is_stored_as_its_sha256_hash():
    secret = new_secret("tw_key")
    digest = hash_secret(secret)
    assert len(digest) == 64 and int(digest, 16) >= 0
    assert digest == hash_secret(secret)
    assert secret not in digest


def test_the_csrf_token_is_derived_from_the_session_and_stable():
    session = new_secret("tw_ses")
    token = csrf_token_for(session)
    assert token == csrf_token_for(session)
    assert len(token) == 40
    assert token != csrf_token_for(new_secret("tw_ses"))
    assert session not in token
