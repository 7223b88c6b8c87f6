"""The pure rules: the event convention, code filters, the webhook signature and its replay
window, the retry schedule."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from tradewindow.notifications import model
from tradewindow.notifications.model import (
    matches,
    notice_from_event,
    retry_delay,
    sign,
    validate_subscription,
    verify_signature,
)

SECRET = "tw_whsec_test-secret"
BODY = b'{"id":"01J","code":"declaration.released"}'


def test_an_event_without_a_notification_is_not_a_notification():
    assert notice_from_event("declaration", "D1", {"number": "1"}, "E1") is None
    assert notice_from_event("declaration", "D1", {"notification": {"message": "no code"}}, "E1") is None


def test_the_owner_is_the_first_audience_and_listed_audiences_are_added_once():
    notice = notice_from_event("declaration", "D1", {"notification": {
        "code": "declaration.accepted", "audiences": ["BROKER", "E1", "BROKER"]}}, "E1")
    assert notice.audiences == ("E1", "BROKER")


def test_an_event_for_no_enterprise_is_for_officers_only():
    notice = notice_from_event("rule", "R1", {"notification": {"code": "webhook.test"}}, None)
    assert notice.audiences == (None,)


def test_the_default_message_is_the_codes_template_filled_from_the_event():
    notice = notice_from_event("declaration", "D1", {"number": "5000123", "lane": "red",
                                                     "notification": {"code": "declaration.lane_assigned"}}, "E1")
    assert notice.message == "Declaration 5000123 was routed to the red lane."
    assert (notice.subject_type, notice.subject_id) == ("declaration", "D1")
    assert notice.data == {"number": "5000123", "lane": "red"}


def test_an_own_message_wins_and_a_missing_field_is_left_as_written():
    assert notice_from_event("declaration", "D1", {"notification": {
        "code": "declaration.released", "message": "Released at Tuanjiecun."}}, "E1").message \
        == "Released at Tuanjiecun."
    assert notice_from_event("declaration", "D1", {"notification": {"code": "declaration.released"}},
                             "E1").message == "Declaration {number} was released."
    assert notice_from_event("parcel", "P1", {"notification": {"code": "ecommerce.unheard_of"}},
                             "E1").message == "ecommerce.unheard_of"


def test_every_code_in_the_registry_is_well_formed():
    assert all(model.CODE_PATTERN.match(code) for code in model.NOTIFICATION_CODES)


@pytest.mark.parametrize(("filters", "code", "expected"), [
    (["*"], "declaration.released", True),
    (["declaration.*"], "declaration.released", True),
    (["declaration.*"], "bonded.release_planned", False),
    (["declaration.released"], "declaration.released", True),
    (["declaration.released"], "declaration.released_late", False),
    (["bonded.*", "declaration.accepted"], "declaration.accepted", True),
    ([], "declaration.accepted", False),
])
def test_a_subscription_filter_takes_exact_codes_and_star_prefixes(filters, code, expected):
    assert matches(filters, code) is expected


def test_a_subscription_with_a_bad_url_and_bad_filters_is_refused_with_every_problem():
    problems = validate_subscription("ftp://example.com/x", ["declaration.*", "Declaration Released", "*.x"])
    assert [(p.path, p.code) for p in problems.items] == [
        ("url", "invalid_url"), ("codes[1]", "invalid_code_filter"), ("codes[2]", "invalid_code_filter")]
    assert not validate_subscription("https://erp.example.com/hook", ["*"])
    assert [p.code for p in validate_subscription("https://user:pw@erp.example.com/", ["*"]).items] == ["invalid_url"]


def test_a_signed_body_verifies():
    now = int(time.time())
    header = sign(SECRET, BODY, now)
    assert header.startswith(f"t={now},v1=")
    assert verify_signature(SECRET, header, BODY, now=now + 5)


def test_a_changed_body_a_wrong_secret_or_a_garbled_header_does_not_verify():
    now = int(time.time())
    header = sign(SECRET, BODY, now)
    assert not verify_signature(SECRET, header, BODY + b" ", now=now)
    assert not verify_signature("tw_whsec_other", header, BODY, now=now)
    assert not verify_signature(SECRET, "v1=" + header.split("v1=")[1], BODY, now=now)
    assert not verify_signature(SECRET, "", BODY, now=now)


def test_the_replay_window_refuses_old_and_future_timestamps():
    signed_at = 1_700_000_000
    header = sign(SECRET, BODY, signed_at)
    assert verify_signature(SECRET, header, BODY, now=signed_at + 300)
    assert not verify_signature(SECRET, header, BODY, now=signed_at + 301)
    assert not verify_signature(SECRET, header, BODY, now=signed_at - 301)
    assert verify_signature(SECRET, header, BODY, now=signed_at + 3000, tolerance=3600)


def test_retries_follow_the_schedule_then_give_up():
    schedule = (timedelta(seconds=10), timedelta(minutes=1))
    assert [retry_delay(n, schedule) for n in (1, 2, 3)] == [timedelta(seconds=10), timedelta(minutes=1), None]
    assert model.max_attempts(schedule) == 3
    assert model.max_attempts() == len(model.RETRY_SCHEDULE) + 1
    assert sum(model.RETRY_SCHEDULE, timedelta()) >= timedelta(hours=12)   # a night's outage is survived


@pytest.mark.parametrize("url", [
    "http://localhost:8000/hook", "http://127.0.0.1/hook", "http://10.1.2.3/hook", "http://192.168.0.9/",
    "http://169.254.169.254/latest/meta-data/", "http://[::1]:8080/", "http://[fd00::1]/", "http://0.0.0.0/",
])
def test_a_webhook_to_this_machine_or_its_network_is_refused_unless_allowed(url):
    assert [(p.path, p.code) for p in validate_subscription(url, ["*"]).items] == [("url", "private_address")]
    assert not validate_subscription(url, ["*"], allow_private=True)


def test_a_webhook_to_a_public_address_or_name_is_accepted():
    assert not validate_subscription("https://203.0.113.7.nip.example/hook", ["*"])
    assert not validate_subscription("https://8.8.8.8/hook", ["*"])
