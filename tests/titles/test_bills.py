"""Bills of lading through the service, on SQLite and PostgreSQL: issue, every transfer and who may
make it, signatures (custodial and the party's own), audit and notifications, tenancy, the holder
of record for customs, and tamper detection by verification and by the published heads."""

from __future__ import annotations

import base64
import json
import threading
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import select, text, update

from tests.conftest import USCC
from tests.titles.conftest import bill
from tradewindow.platform import vault
from tradewindow.platform.db import clock_at, utcnow
from tradewindow.platform.errors import Conflict, DomainError, Forbidden, NotFound, ValidationFailed
from tradewindow.platform.jobs import registered_periodic
from tradewindow.platform.settings import get_settings
from tradewindow.platform.tables import audit_log, outbox_events
from tradewindow.titles import model
from tradewindow.titles import service as titles
from tradewindow.titles.service import ClientSignature
from tradewindow.titles.tables import bills_of_lading, signing_keys, title_checkpoints, title_heads, title_records

NUMBER = "CQDUI2026000001"


def code_of(call, *args, **kwargs) -> tuple[int, str]:
    with pytest.raises(DomainError) as caught:
        call(*args, **kwargs)
    return caught.value.status, caught.value.code


# --- issue ---------------------------------------------------------------------------------------

def test_a_carrier_issues_a_bill_to_the_shipper(titles_world, issued):
    w = titles_world
    assert issued["bol_number"] == NUMBER and issued["status"] == "active" and issued["to_order"]
    assert issued["holder"]["uscc"] == USCC["trader"] and issued["issuer"]["uscc"] == USCC["carrier"]
    assert issued["containers"] == ["CSQU3054383", "MSKU9070323"] and issued["gross_mass_kg"] == "12850.5"
    full = titles.get_bill(w.uow, w["carrier"], NUMBER)
    assert [(r["sequence"], r["action"]) for r in full["records"]] == [(1, "issue")]
    assert full["records"][0]["previous"] == model.GENESIS
    assert titles.verify(w.uow, w["carrier"], NUMBER)["valid"]


def test_the_same_bill_again_returns_the_first_and_a_different_one_under_its_number_is_refused(titles_world,
                                                                                             issued):
    w = titles_world
    again = titles.issue_bill(w.uow, w["carrier"], bill())
    assert not again.created and again.bill["id"] == issued["id"]
    assert code_of(titles.issue_bill, w.uow, w["carrier"], bill(packages=41)) == (409, "duplicate")
    with w.uow.read() as conn:
        assert conn.execute(select(title_records)).all().__len__() == 1


def test_only_a_registered_carrier_issues(titles_world):
    w = titles_world
    assert code_of(titles.issue_bill, w.uow, w["trader"], bill()) == (403, "role_not_allowed")
    assert code_of(titles.issue_bill, w.uow, w["customs_officer"], bill()) == (403, "role_not_allowed")


def test_the_parties_of_a_bill_are_registered_enterprises_and_every_problem_is_reported(titles_world):
    w = titles_world
    with pytest.raises(ValidationFailed) as caught:
        titles.issue_bill(w.uow, w["carrier"], bill(shipper_uscc=USCC["spare2"], consignee_uscc=USCC["spare3"],
                                                    containers=["CSQU3054384"]))
    assert {(p.path, p.code) for p in caught.value.problems} == {
        ("shipper_uscc", "unknown_enterprise"), ("consignee_uscc", "unknown_enterprise"),
        ("containers[0]", "invalid_container_number")}


def test_a_party_without_a_signing_key_cannot_act(titles_world):
    w = titles_world
    with w.uow.transaction() as conn:
        conn.execute(update(signing_keys).values(retired_at=utcnow()))
    assert code_of(titles.issue_bill, w.uow, w["carrier"], bill()) == (422, "no_signing_key")


# --- transfers -----------------------------------------------------------------------------------

def test_endorse_pledge_release_and_surrender_through_the_parties(titles_world, issued):
    w = titles_world
    u = w.uow
    after = titles.endorse(u, w["trader"], NUMBER, USCC["other_trader"])
    assert after["holder"]["uscc"] == USCC["other_trader"]
    after = titles.pledge(u, w["other_trader"], NUMBER, USCC["bank"])
    assert (after["status"], after["holder"]["uscc"], after["pledgee"]["uscc"]) == \
        ("pledged", USCC["other_trader"], USCC["bank"])
    assert code_of(titles.endorse, u, w["other_trader"], NUMBER, USCC["trader"]) == (409, "pledged")
    assert code_of(titles.surrender, u, w["other_trader"], NUMBER) == (409, "pledged")
    assert code_of(titles.release_pledge, u, w["other_trader"], NUMBER) == (403, "not_the_pledgee")
    after = titles.release_pledge(u, w["bank"], NUMBER)
    assert (after["status"], after["pledgee"]) == ("active", None)
    assert code_of(titles.surrender, u, w["trader"], NUMBER) == (403, "not_the_holder")
    after = titles.surrender(u, w["other_trader"], NUMBER)
    assert (after["status"], after["holder"]["uscc"]) == ("surrendered", USCC["carrier"])
    assert code_of(titles.endorse, u, w["carrier"], NUMBER, USCC["trader"]) == (409, "already_surrendered")
    report = titles.verify(u, w["customs_officer"], NUMBER)
    assert report["valid"] and report["length"] == 5


def test_only_the_holder_endorses_and_the_endorsee_must_be_registered(titles_world, issued):
    w = titles_world
    assert code_of(titles.endorse, w.uow, w["carrier"], NUMBER, USCC["bank"]) == (403, "not_the_holder")
    assert code_of(titles.endorse, w.uow, w["trader"], NUMBER, USCC["spare2"]) == (422, "unknown_enterprise")
    assert code_of(titles.endorse, w.uow, w["trader"], NUMBER, USCC["trader"]) == (422, "same_holder")


def test_a_bill_is_pledged_only_to_a_bank(titles_world, issued):
    w = titles_world
    assert code_of(titles.pledge, w.uow, w["trader"], NUMBER, USCC["other_trader"]) == (422, "not_a_bank")
    titles.pledge(w.uow, w["trader"], NUMBER, USCC["bank"])
    assert code_of(titles.pledge, w.uow, w["trader"], NUMBER, USCC["spare"]) == (409, "already_pledged")
    assert code_of(titles.take_over, w.uow, w["other_bank"], NUMBER) == (404, "not_found")


def test_on_default_the_bank_takes_the_bill_over(titles_world, issued):
    w = titles_world
    titles.pledge(w.uow, w["trader"], NUMBER, USCC["bank"])
    assert code_of(titles.take_over, w.uow, w["trader"], NUMBER) == (403, "not_the_pledgee")
    after = titles.take_over(w.uow, w["bank"], NUMBER)
    assert (after["holder"]["uscc"], after["pledgee"], after["status"]) == (USCC["bank"], None, "active")
    assert code_of(titles.release_pledge, w.uow, w["bank"], NUMBER) == (409, "not_pledged")


def test_a_straight_bill_goes_only_to_its_consignee(titles_world):
    w = titles_world
    titles.issue_bill(w.uow, w["carrier"], bill(consignee_uscc=USCC["other_trader"]))
    assert code_of(titles.endorse, w.uow, w["trader"], NUMBER, USCC["bank"]) == (422, "not_negotiable")
    assert titles.endorse(w.uow, w["trader"], NUMBER, USCC["other_trader"])["holder"]["uscc"] == USCC["other_trader"]


def test_the_issuer_voids_only_before_the_first_transfer(titles_world, issued):
    w = titles_world
    assert code_of(titles.void, w.uow, w["trader"], NUMBER) == (403, "not_the_issuer")
    titles.issue_bill(w.uow, w["carrier"], bill("CQDUI2026000002"))
    titles.endorse(w.uow, w["trader"], "CQDUI2026000002", USCC["other_trader"])
    assert code_of(titles.void, w.uow, w["carrier"], "CQDUI2026000002") == (409, "already_transferred")
    after = titles.void(w.uow, w["carrier"], NUMBER)
    assert (after["status"], after["holder"]["uscc"]) == ("void", USCC["carrier"])
    assert code_of(titles.endorse, w.uow, w["carrier"], NUMBER, USCC["trader"]) == (409, "voided")


def test_every_action_is_audited_and_notifies_the_parties(titles_world, issued):
    w = titles_world
    titles.endorse(w.uow, w["trader"], NUMBER, USCC["other_trader"])
    titles.pledge(w.uow, w["other_trader"], NUMBER, USCC["bank"])
    with w.uow.read() as conn:
        actions = conn.execute(select(audit_log.c.action).where(audit_log.c.object_id == issued["id"])
                               .order_by(audit_log.c.id)).scalars().all()
        events = conn.execute(select(outbox_events).where(outbox_events.c.aggregate_id == issued["id"])
                              .order_by(outbox_events.c.id)).mappings().all()
    assert actions == ["titles.bill_issued", "titles.bill_endorsed", "titles.bill_pledged"]
    assert [e["event_type"] for e in events] == actions
    endorsed = events[1]
    assert endorsed["owner_enterprise_id"] == w.enterprises["other_trader"]["id"]
    note = endorsed["payload"]["notification"]
    assert note["code"] == "titles.bill_endorsed" and note["subject_id"] == issued["id"]
    assert set(note["audiences"]) == {w.enterprises[k]["id"] for k in ("carrier", "trader", "other_trader")}
    assert w.enterprises["bank"]["id"] in events[2]["payload"]["notification"]["audiences"]


def test_a_refused_action_changes_nothing(titles_world, issued):
    w = titles_world
    code_of(titles.endorse, w.uow, w["other_trader"], NUMBER, USCC["bank"])
    with w.uow.read() as conn:
        assert conn.execute(select(title_records.c.sequence)).scalars().all() == [1]


# --- signatures by the party's own key -----------------------------------------------------------

@pytest.fixture
def own_key(titles_world) -> bytes:
    """The second bank keeps its own key; its private half stays with the test."""
    private = model.new_private_key()
    titles.register_key(titles_world.uow, titles_world["other_bank"],
                        base64.b64encode(model.public_key_of(private)).decode())
    return private


def _sign(private: bytes, prepared: dict) -> ClientSignature:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    signature = Ed25519PrivateKey.from_private_bytes(private).sign(base64.b64decode(prepared["canonical_base64"]))
    return ClientSignature(base64.b64encode(signature).decode(), prepared["signed_at"], prepared["previous"])


def test_a_party_with_its_own_key_signs_the_prepared_record(titles_world, issued, own_key):
    w = titles_world
    titles.pledge(w.uow, w["trader"], NUMBER, USCC["spare"])
    prepared = titles.prepare(w.uow, w["other_bank"], NUMBER, "release_pledge")
    assert json.loads(prepared["canonical"]) == prepared["record"]
    assert prepared["record"]["actor"] == w.enterprises["other_bank"]["id"]
    assert code_of(titles.release_pledge, w.uow, w["other_bank"], NUMBER) == (422, "signature_required")
    after = titles.release_pledge(w.uow, w["other_bank"], NUMBER, _sign(own_key, prepared))
    assert after["status"] == "active" and after["head_hash"] == prepared["hash"]
    assert titles.verify(w.uow, w["trader"], NUMBER)["valid"]


def test_a_wrong_signature_is_refused_and_changes_nothing(titles_world, issued, own_key):
    w = titles_world
    titles.pledge(w.uow, w["trader"], NUMBER, USCC["spare"])
    prepared = titles.prepare(w.uow, w["other_bank"], NUMBER, "release_pledge")
    wrong = _sign(model.new_private_key(), prepared)
    assert code_of(titles.release_pledge, w.uow, w["other_bank"], NUMBER, wrong) == (422, "bad_signature")
    other_record = _sign(own_key, titles.prepare(w.uow, w["other_bank"], NUMBER, "take_over"))
    assert code_of(titles.release_pledge, w.uow, w["other_bank"], NUMBER, other_record) == (422, "bad_signature")
    assert titles.get_bill(w.uow, w["other_bank"], NUMBER)["status"] == "pledged"


def test_an_old_signature_cannot_be_replayed_later(titles_world, issued, own_key):
    w = titles_world
    titles.pledge(w.uow, w["trader"], NUMBER, USCC["spare"])
    prepared = titles.prepare(w.uow, w["other_bank"], NUMBER, "release_pledge")
    with clock_at(utcnow() + titles.SIGNATURE_MAX_AGE + timedelta(minutes=1)):
        assert code_of(titles.release_pledge, w.uow, w["other_bank"], NUMBER, _sign(own_key, prepared)) == \
            (422, "stale_signature")


def test_a_record_prepared_before_the_chain_moved_is_refused_and_a_repeat_returns_the_first_result(
        titles_world, issued):
    w = titles_world
    head = issued["head_hash"]
    first = titles.endorse(w.uow, w["trader"], NUMBER, USCC["other_trader"], ClientSignature(previous=head))
    again = titles.endorse(w.uow, w["trader"], NUMBER, USCC["other_trader"], ClientSignature(previous=head))
    assert again["sequence"] == first["sequence"] == 2
    assert code_of(titles.endorse, w.uow, w["trader"], NUMBER, USCC["bank"], ClientSignature(previous=head)) == \
        (409, "chain_moved")


def test_an_issuer_with_its_own_key_signs_the_issue(titles_world):
    w = titles_world
    private = model.new_private_key()
    titles.register_key(w.uow, w["carrier"], model.public_key_of(private).hex())
    prepared = titles.prepare_issue(w.uow, w["carrier"], bill())
    signed = _sign(private, prepared)
    body = {**bill(), "signature": signed.signature, "signed_at": signed.signed_at}
    issued = titles.issue_bill(w.uow, w["carrier"], body).bill
    assert issued["head_hash"] == prepared["hash"]
    assert code_of(titles.issue_bill, w.uow, w["carrier"], bill("CQDUI2026000009")) == (422, "signature_required")


# --- keys ----------------------------------------------------------------------------------------

def test_keys_are_registered_rotated_and_the_old_ones_still_verify(titles_world, issued):
    w = titles_world
    titles.endorse(w.uow, w["trader"], NUMBER, USCC["other_trader"])
    first = titles.list_keys(w.uow, w["trader"])
    titles.register_key(w.uow, w["trader"], custodial=True)
    keys = titles.list_keys(w.uow, w["trader"])
    assert [k["current"] for k in keys] == [True, False] and keys[1]["fingerprint"] == first[0]["fingerprint"]
    assert "private_key" not in keys[0]
    assert titles.verify(w.uow, w["trader"], NUMBER)["valid"]


def test_a_key_is_either_ones_own_or_custodial_and_registered_once(titles_world):
    w = titles_world
    raw = model.public_key_of(model.new_private_key()).hex()
    assert code_of(titles.register_key, w.uow, w["broker"]) == (422, "key_or_custodial")
    assert code_of(titles.register_key, w.uow, w["broker"], raw, True) == (422, "key_or_custodial")
    assert code_of(titles.register_key, w.uow, w["broker"], "nope") == (422, "invalid_public_key")
    titles.register_key(w.uow, w["broker"], raw)
    assert code_of(titles.register_key, w.uow, w["other_bank"], raw) == (409, "duplicate_key")
    assert code_of(titles.register_key, w.uow, w["customs_officer"], custodial=True) == (403, "role_not_allowed")


# --- tenancy and the holder of record ------------------------------------------------------------

def test_the_parties_and_customs_see_a_bill_and_nobody_else(titles_world, issued):
    w = titles_world
    titles.endorse(w.uow, w["trader"], NUMBER, USCC["other_trader"])
    titles.pledge(w.uow, w["other_trader"], NUMBER, USCC["bank"])
    for persona in ("carrier", "trader", "other_trader", "bank", "customs_officer"):
        assert titles.get_bill(w.uow, w[persona], NUMBER)["id"] == issued["id"], persona
        assert [b["bol_number"] for b in titles.list_bills(w.uow, w[persona])["items"]] == [NUMBER], persona
    for persona in ("other_bank", "broker", "zone", "quarantine_officer", "admin"):
        assert isinstance(_refusal(titles.get_bill, w.uow, w[persona], NUMBER), NotFound), persona
        assert titles.list_bills(w.uow, w[persona])["items"] == [], persona
    assert [b["bol_number"] for b in titles.list_bills(w.uow, w["trader"], held=True)["items"]] == []


def _refusal(call, *args):
    with pytest.raises(DomainError) as caught:
        call(*args)
    return caught.value


def test_customs_learns_the_holder_of_record_and_who_may_take_the_goods(titles_world, issued):
    w = titles_world
    assert titles.holder_of(w.uow, "NO-SUCH-BILL") is None
    record = titles.holder_of(w.uow, NUMBER.lower())
    assert record.holder_id == w.enterprises["trader"]["id"] == record.entitled_to_goods
    titles.pledge(w.uow, w["trader"], NUMBER, USCC["bank"])
    assert titles.holder_of(w.uow, NUMBER).entitled_to_goods is None       # the bank must release first
    titles.release_pledge(w.uow, w["bank"], NUMBER)
    titles.surrender(w.uow, w["trader"], NUMBER)
    record = titles.holder_of(w.uow, NUMBER)
    assert record.holder_id == w.enterprises["carrier"]["id"]
    assert record.entitled_to_goods == w.enterprises["trader"]["id"]


# --- tampering -----------------------------------------------------------------------------------

def _chain(w) -> None:
    titles.endorse(w.uow, w["trader"], NUMBER, USCC["other_trader"])
    titles.pledge(w.uow, w["other_trader"], NUMBER, USCC["bank"])
    titles.release_pledge(w.uow, w["bank"], NUMBER)


def _sql(w, statement: str, **params) -> None:
    with w.uow.engine.begin() as conn:     # as a database administrator would, around the services
        conn.execute(text(statement), params)


def test_a_record_changed_in_the_database_is_detected(titles_world, issued):
    w = titles_world
    _chain(w)
    _sql(w, "UPDATE title_records SET to_holder_id = :who WHERE sequence = 2",
         who=w.enterprises["other_bank"]["id"])
    report = titles.verify(w.uow, w["carrier"], NUMBER)
    assert (report["valid"], report["broken_sequence"], report["code"]) == (False, 2, "hash_mismatch")


def test_a_changed_particular_or_current_holder_is_detected(titles_world, issued):
    w = titles_world
    _chain(w)
    _sql(w, "UPDATE bills_of_lading SET packages = 4")
    assert titles.verify(w.uow, w["carrier"], NUMBER)["code"] == "document_mismatch"
    _sql(w, "UPDATE bills_of_lading SET packages = 40, holder_id = :who", who=w.enterprises["trader"]["id"])
    report = titles.verify(w.uow, w["carrier"], NUMBER)
    assert (report["valid"], report["code"]) == (False, "state_mismatch")


def test_a_deleted_record_is_detected(titles_world, issued):
    w = titles_world
    _chain(w)
    _sql(w, "DELETE FROM title_records WHERE sequence = 3")
    report = titles.verify(w.uow, w["carrier"], NUMBER)
    assert (report["valid"], report["broken_sequence"], report["code"]) == (False, 3, "sequence_gap")


def test_custodial_keys_are_stored_sealed_and_still_sign(titles_world, issued):
    with titles_world.uow.read() as conn:
        stored = conn.execute(select(signing_keys.c.private_key)
                              .where(signing_keys.c.custodial.is_(True))).scalars().all()
    assert len(stored) == 4 and all(value.startswith("v1:") for value in stored)
    assert titles.verify(titles_world.uow, titles_world["carrier"], NUMBER)["valid"]


def test_nothing_is_published_before_the_first_bill_is_issued(titles_world):
    nothing = titles.publish_heads(titles_world.uow)
    assert (nothing["published"], nothing["titles"], nothing["hash"]) == (False, 0, None)
    assert titles.list_checkpoints(titles_world.uow) == []


def test_publication_records_every_head_and_only_when_something_moved(titles_world, issued):
    w = titles_world
    titles.issue_bill(w.uow, w["carrier"], bill("CQDUI2026000002"))
    first = titles.publish_heads(w.uow)
    assert first["published"] and first["titles"] == 2
    assert titles.publish_heads(w.uow)["published"] is False
    titles.endorse(w.uow, w["trader"], NUMBER, USCC["other_trader"])
    second = titles.publish_heads(w.uow)
    assert second["published"] and second["previous_hash"] == first["hash"]
    assert [c["id"] for c in titles.list_checkpoints(w.uow)] == [second["id"], first["id"]]
    assert titles.verify_checkpoints(w.uow)["valid"]
    assert titles.verify(w.uow, w["trader"], NUMBER)["published_heads"] == 2
    _sql(w, "UPDATE title_heads SET sequence = 9 WHERE checkpoint_id = :c", c=first["id"])
    assert titles.verify_checkpoints(w.uow)["code"] == "checkpoint_mismatch"


def test_a_chain_rewritten_and_re_signed_is_caught_by_the_published_heads(titles_world, issued):
    w = titles_world
    titles.endorse(w.uow, w["trader"], NUMBER, USCC["other_trader"])
    titles.publish_heads(w.uow)
    with w.uow.read() as conn:
        bill_row = conn.execute(select(bills_of_lading)).mappings().one()
    # Record 2 rewritten by someone holding the database AND the master key: endorsed to the bank
    # instead, re-signed with the trader's custodial key, and the bill's current holder adjusted.
    with w.uow.engine.begin() as conn:
        keys = {r.fingerprint: vault.unseal(r.private_key, f"signing_keys.private_key:{r.id}")
                for r in conn.execute(select(signing_keys)) if r.private_key}
        row = conn.execute(select(title_records).where(title_records.c.sequence == 2)).mappings().one()
        record = replace(titles._record(NUMBER, row), to_holder=w.enterprises["bank"]["id"])
        record = replace(record, signature=model.sign(keys[record.key], record))
        record = replace(record, hash=model.record_hash(record))
        conn.execute(update(title_records).where(title_records.c.id == row["id"]).values(
            to_holder_id=record.to_holder, signature=record.signature, hash=record.hash))
        conn.execute(update(bills_of_lading).where(bills_of_lading.c.id == bill_row["id"]).values(
            holder_id=record.to_holder, head_hash=record.hash))
    with w.uow.read():
        records = titles._records(w.uow, bill_row)
        keys = titles._public_keys(w.uow, {r.key for r in records})
    assert model.verify_chain(records, keys).valid          # signatures and links alone cannot tell
    report = titles.verify(w.uow, w["carrier"], NUMBER)
    assert (report["valid"], report["broken_sequence"], report["code"]) == (False, 2, "head_mismatch")


def test_checkpoints_go_to_the_checkpoint_file_and_verification_reads_it(titles_world, issued, tmp_path,
                                                                         monkeypatch):
    w = titles_world
    path = tmp_path / "checkpoints.jsonl"
    monkeypatch.setenv(titles.CHECKPOINT_FILE_ENV, str(path))
    get_settings.cache_clear()
    published = titles.publish_heads(w.uow)
    line = json.loads(path.read_text().splitlines()[0])
    assert line["hash"] == published["hash"] and line["heads"] == [
        {"bill": NUMBER, "sequence": 1, "hash": issued["head_hash"]}]
    # Even with the checkpoint tables emptied, the file still holds the head.
    _sql(w, "DELETE FROM title_heads")
    _sql(w, "DELETE FROM title_checkpoints")
    assert titles.verify(w.uow, w["trader"], NUMBER)["published_heads"] == 1
    _sql(w, "UPDATE title_records SET hash = :h", h="0" * 64)
    assert titles.verify(w.uow, w["trader"], NUMBER)["valid"] is False


def test_the_worker_publishes_the_heads_periodically(titles_world, issued):
    w = titles_world
    seconds, task = registered_periodic()[titles.PUBLISH_TASK]
    assert seconds == titles.PUBLISH_EVERY.total_seconds()
    titles.endorse(w.uow, w["trader"], NUMBER, USCC["other_trader"])
    task(w.uow)
    task(w.uow)                     # nothing moved since: no second checkpoint
    with w.uow.read() as conn:
        assert conn.execute(select(title_checkpoints.c.titles)).scalars().all() == [1]
        assert conn.execute(select(title_heads.c.sequence)).scalars().all() == [2]


# --- concurrency ---------------------------------------------------------------------------------

def test_two_endorsements_racing_for_one_bill_let_exactly_one_through(titles_world, issued):
    # PostgreSQL: the bill's row lock; SQLite: BEGIN IMMEDIATE. The loser sees the chain moved.
    w = titles_world
    from tradewindow.platform.db import UnitOfWork

    outcomes: list[object] = []
    barrier = threading.Barrier(2)

    def endorse_to(uscc: str) -> None:
        barrier.wait()
        try:
            outcomes.append(titles.endorse(UnitOfWork(w.uow.engine), w["trader"], NUMBER, uscc,
                                           ClientSignature(previous=issued["head_hash"]))["holder"]["uscc"])
        except (Conflict, Forbidden) as exc:
            outcomes.append(exc.code)

    threads = [threading.Thread(target=endorse_to, args=(u,)) for u in (USCC["other_trader"], USCC["bank"])]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [o for o in outcomes if o in (USCC["other_trader"], USCC["bank"])]
    losers = [o for o in outcomes if o not in winners]
    assert len(winners) == 1 and losers in (["chain_moved"], ["duplicate"])
    with w.uow.read() as conn:
        assert conn.execute(select(title_records.c.sequence).order_by(title_records.c.sequence)).scalars().all() \
            == [1, 2]
    assert titles.verify(w.uow, w["trader"], NUMBER)["valid"]
