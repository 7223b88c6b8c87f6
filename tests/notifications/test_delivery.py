"""Signed webhook deliveries to a real HTTP receiver on 127.0.0.1, made by the worker from the
outbox: signature, retries with back-off, the attempt log, the dead state and redelivery."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select

from tests.notifications.conftest import notify, relay, run_worker
from tradewindow.notifications import service
from tradewindow.notifications.model import EVENT_ID_HEADER, SIGNATURE_HEADER, verify_signature
from tradewindow.platform.settings import get_settings
from tradewindow.platform.tables import jobs

pytestmark = pytest.mark.usefixtures("installed")


def subscribe(world, receiver, who="trader", codes=("*",)) -> dict:
    return service.create_subscription(world.uow, world[who], receiver.url, list(codes))


def deliveries(world, subscription, who="trader") -> list[dict]:
    return service.list_deliveries(world.uow, world[who], subscription["id"])["items"]


def test_a_notification_is_posted_signed_to_the_subscriber(world, db, receiver):
    subscription = subscribe(world, receiver)
    event_id = notify(world.uow, world.enterprises["trader"]["id"], code="declaration.released",
                      subject_id="D42", number="500020260000042")
    assert receiver.requests == []           # nothing is sent by the action itself
    run_worker(db)

    [request] = receiver.requests
    headers = {k.lower(): v for k, v in request["headers"].items()}
    assert verify_signature(subscription["secret"], headers[SIGNATURE_HEADER.lower()], request["body"],
                            now=time.time())
    assert headers[EVENT_ID_HEADER.lower()] == event_id
    assert headers["content-type"] == "application/json"
    body = receiver.bodies[0]
    assert body == {"id": event_id, "code": "declaration.released",
                    "message": "Declaration 500020260000042 was released.", "subject_type": "declaration",
                    "subject_id": "D42", "at": body["at"], "data": {"number": "500020260000042"}}
    [delivery] = deliveries(world, subscription)
    assert (delivery["status"], delivery["attempts"], delivery["last_status_code"]) == ("delivered", 1, 200)
    assert delivery["delivered_at"] is not None
    [attempt] = delivery["attempt_log"]
    assert attempt["status_code"] == 200 and attempt["error"] is None and attempt["duration_ms"] >= 0


def test_a_signature_made_with_another_secret_or_replayed_late_is_refused(world, db, receiver):
    subscription = subscribe(world, receiver)
    notify(world.uow, world.enterprises["trader"]["id"])
    run_worker(db)
    [request] = receiver.requests
    header = request["headers"][SIGNATURE_HEADER]
    assert not verify_signature("tw_whsec_guess", header, request["body"], now=time.time())
    assert not verify_signature(subscription["secret"], header, request["body"], now=time.time() + 301)


def test_a_receiver_that_fails_once_gets_the_delivery_on_the_retry(world, db, receiver, fast_retries):
    receiver.script = [500, 200]
    subscription = subscribe(world, receiver)
    event_id = notify(world.uow, world.enterprises["trader"]["id"])
    run_worker(db)

    assert [r["headers"][EVENT_ID_HEADER] for r in receiver.requests] == [event_id, event_id]
    assert receiver.requests[0]["body"] == receiver.requests[1]["body"]   # the same body, for dedup
    [delivery] = deliveries(world, subscription)
    assert (delivery["status"], delivery["attempts"]) == ("delivered", 2)
    assert [a["status_code"] for a in delivery["attempt_log"]] == [500, 200]
    assert "500" in delivery["attempt_log"][0]["error"]


def test_a_failed_try_waits_for_its_back_off(world, db, receiver):
    receiver.script = [503]
    subscription = subscribe(world, receiver)
    notify(world.uow, world.enterprises["trader"]["id"])
    run_worker(db)
    run_worker(db)
    assert len(receiver.requests) == 1             # the retry is not due yet
    [delivery] = deliveries(world, subscription)
    assert (delivery["status"], delivery["attempts"], delivery["last_status_code"]) == ("failed", 1, 503)
    with world.uow.read() as conn:
        queued = conn.execute(select(jobs.c.run_after).where(jobs.c.queue == "webhooks",
                                                             jobs.c.status == "queued")).scalar_one()
    wait = (queued - delivery["attempt_log"][0]["at"]).total_seconds()
    assert delivery["next_attempt_at"] == queued and 9 <= wait <= 11       # the schedule's first wait: 10 s


def test_a_receiver_that_always_fails_leaves_the_delivery_dead_and_it_can_be_redelivered(
        world, db, receiver, fast_retries, client, as_user):
    receiver.script = [500]
    subscription = subscribe(world, receiver)
    notify(world.uow, world.enterprises["trader"]["id"])
    run_worker(db)

    assert len(receiver.requests) == fast_retries
    [dead] = deliveries(world, subscription)
    assert (dead["status"], dead["attempts"], dead["next_attempt_at"]) == ("dead", fast_retries, None)
    assert len(dead["attempt_log"]) == fast_retries
    listed = client.get(f"/api/v1/webhooks/{subscription['id']}/deliveries?status=dead", headers=as_user("trader"))
    assert [d["id"] for d in listed.json()["items"]] == [dead["id"]]

    receiver.script = [200]
    response = client.post(f"/api/v1/webhooks/deliveries/{dead['id']}/redeliver", headers=as_user("trader"))
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "pending"
    assert len(receiver.requests) == fast_retries          # sent by the worker, not by the request
    run_worker(db)
    [delivered] = deliveries(world, subscription)
    assert (delivered["status"], delivered["attempts"]) == ("delivered", 1)
    assert [a["status_code"] for a in delivered["attempt_log"]] == [500] * fast_retries + [200]


def test_an_unreachable_receiver_is_retried_and_its_error_logged(world, db, receiver, fast_retries):
    subscription = service.create_subscription(world.uow, world["trader"], "http://127.0.0.1:1/unreachable", ["*"])
    notify(world.uow, world.enterprises["trader"]["id"])
    run_worker(db)
    [dead] = deliveries(world, subscription)
    assert dead["status"] == "dead" and dead["last_status_code"] is None
    assert all(a["status_code"] is None and "Connect" in a["error"] for a in dead["attempt_log"])


def test_a_rotated_secret_signs_the_next_deliveries(world, db, receiver):
    subscription = subscribe(world, receiver)
    rotated = service.rotate_secret(world.uow, world["trader"], subscription["id"])
    notify(world.uow, world.enterprises["trader"]["id"])
    run_worker(db)
    [request] = receiver.requests
    header = request["headers"][SIGNATURE_HEADER]
    assert verify_signature(rotated["secret"], header, request["body"], now=time.time())
    assert not verify_signature(subscription["secret"], header, request["body"], now=time.time())


def test_a_broker_named_as_audience_gets_its_own_delivery(world, db, receiver, authorised_broker):
    broker_subscription = subscribe(world, receiver, who="broker")
    notify(world.uow, world.enterprises["trader"]["id"], audiences=[world.enterprises["broker"]["id"]])
    notify(world.uow, world.enterprises["trader"]["id"], subject_id="not-for-the-broker")
    run_worker(db)
    assert [b["subject_id"] for b in receiver.bodies] == ["D1"]
    assert [d["status"] for d in deliveries(world, broker_subscription, "broker")] == ["delivered"]


def test_deleting_a_subscription_gives_up_its_waiting_deliveries(world, db, receiver):
    receiver.script = [500]
    subscription = subscribe(world, receiver)
    notify(world.uow, world.enterprises["trader"]["id"])
    run_worker(db)
    service.delete_subscription(world.uow, world["trader"], subscription["id"])
    [delivery] = deliveries(world, subscription)
    assert delivery["status"] == "dead" and delivery["last_error"] == "The subscription was deleted."


def test_relaying_twice_never_delivers_twice(world, db, receiver):
    subscribe(world, receiver)
    notify(world.uow, world.enterprises["trader"]["id"])
    relay(world.uow)
    relay(world.uow)
    run_worker(db)
    run_worker(db)
    assert len(receiver.requests) == 1


def test_a_receiver_that_resolves_to_the_platforms_own_network_is_never_posted_to(
        world, db, receiver, fast_retries, monkeypatch):
    # "localhost" resolves to loopback: once private addresses are no longer allowed (a real
    # deployment), each try is refused before connecting and logged, and the receiver sees nothing.
    subscription = service.create_subscription(world.uow, world["trader"],
                                               receiver.url.replace("127.0.0.1", "localhost"), ["*"])
    monkeypatch.setenv("TRADEWINDOW_WEBHOOK_PRIVATE_ADDRESSES", "false")
    get_settings.cache_clear()
    notify(world.uow, world.enterprises["trader"]["id"])
    run_worker(db)
    assert receiver.requests == []
    [dead] = deliveries(world, subscription)
    assert dead["status"] == "dead"
    assert all("non-public address" in a["error"] for a in dead["attempt_log"])
