"""The bill of lading's rules and its hash chain, pure: particulars, who may take which action,
the canonical record, signatures, verification of a chain and of published heads."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from tests.titles.conftest import bill
from tradewindow.platform.errors import Conflict, DomainError, Forbidden, ValidationFailed
from tradewindow.titles import model
from tradewindow.titles.model import Action, Head, Particulars, PublicKey, Status

T0 = datetime(2026, 5, 1, 8, 30, tzinfo=UTC)
PARTIES = ("carrier", "shipper", "buyer", "bank", "bank2", "consignee")
PRIVATE = {p: model.new_private_key() for p in PARTIES}
PUBLIC = {p: model.public_key_of(k) for p, k in PRIVATE.items()}
KEYS = {model.fingerprint(raw): PublicKey(p, raw) for p, raw in PUBLIC.items()}


def fp(party: str) -> str:
    return model.fingerprint(PUBLIC[party])


def particulars(consignee: str | None = None, number: str = "CQDUI2026000001") -> Particulars:
    return Particulars(bol_number=number, issuer="carrier", shipper="shipper", consignee=consignee,
                       goods_description="Laptops", packages=40, gross_mass_kg=Decimal("12850.5"),
                       containers=("CSQU3054383",), place_of_receipt="CNCKG", place_of_delivery="DEDUI",
                       consignment_reference=None)


def signed(record: model.Record, party: str | None = None) -> model.Record:
    record = replace(record, signature=model.sign(PRIVATE[party or record.actor], record))
    return replace(record, hash=model.record_hash(record))


class Chain:
    """A bill's history built through the model's rules, each record signed by its actor."""

    def __init__(self, consignee: str | None = None) -> None:
        self.particulars = particulars(consignee)
        first = signed(model.issue_record(self.particulars, T0, fp("carrier")))
        self.records = [first]
        self.state = model.apply(None, first, consignee)

    def act(self, action: Action, actor: str, to: str | None = None) -> Chain:
        at = T0 + timedelta(minutes=len(self.records))
        record = signed(model.next_record(self.state, action, actor, at, fp(actor), to))
        self.records.append(record)
        self.state = model.apply(self.state, record)
        return self

    def verify(self) -> model.Verification:
        return model.verify_chain(self.records, KEYS, self.particulars)


def refused(action: Action, actor: str, chain: Chain, to: str | None = None) -> DomainError:
    with pytest.raises(DomainError) as caught:
        chain.act(action, actor, to)
    return caught.value


# --- particulars ---------------------------------------------------------------------------------

def test_valid_particulars_are_normalised():
    filed, problems = model.check_bill(bill("cqdui-2026/1", containers=["csqu 305438 3"], place_of_receipt="cn ckg"))
    assert not problems
    assert filed.bol_number == "CQDUI-2026/1"
    assert filed.containers == ("CSQU3054383",)
    assert filed.place_of_receipt == "CNCKG"
    assert filed.consignee_uscc is None and filed.gross_mass_kg == Decimal("12850.5")


def test_every_problem_of_the_particulars_is_reported_at_once():
    _, problems = model.check_bill(bill("x", containers=["CSQU3054384", "CSQU3054383", "CSQU3054383", 7],
                                        packages="forty", gross_mass_kg="0", place_of_receipt="XXABC",
                                        place_of_delivery="DEDU", goods_description=None, colour="red"))
    codes = {(p.path, p.code) for p in problems.items}
    assert codes == {
        ("bol_number", "invalid_bol_number"), ("containers[0]", "invalid_container_number"),
        ("containers[2]", "duplicate_container"), ("containers[3]", "not_a_string"),
        ("packages", "not_a_whole_number"), ("gross_mass_kg", "not_positive"),
        ("place_of_receipt", "invalid_locode"), ("place_of_delivery", "invalid_locode"),
        ("goods_description", "required"), ("colour", "unknown_field"),
    }


def test_a_bill_is_a_json_object():
    assert [p.code for p in model.check_bill(["no"])[1].items] == ["not_an_object"]


def test_the_document_digest_does_not_depend_on_how_a_number_was_written():
    assert model.document_digest(replace(particulars(), gross_mass_kg=Decimal("12850.50"))) == \
        model.document_digest(particulars())
    assert model.decimal_text(Decimal("2.01E+4")) == "20100"


# --- the rules -----------------------------------------------------------------------------------

def test_a_bill_is_issued_to_its_shipper_who_becomes_the_one_holder():
    chain = Chain()
    assert (chain.state.holder, chain.state.pledgee, chain.state.status) == ("shipper", None, Status.ACTIVE)
    assert chain.records[0].previous == model.GENESIS and chain.records[0].sequence == 1


def test_only_the_holder_endorses():
    chain = Chain()
    assert refused(Action.ENDORSE, "buyer", chain, "bank").code == "not_the_holder"
    chain.act(Action.ENDORSE, "shipper", "buyer")
    assert chain.state.holder == "buyer"
    error = refused(Action.ENDORSE, "shipper", chain, "bank")
    assert isinstance(error, Forbidden) and error.code == "not_the_holder"


def test_endorsing_to_the_holder_itself_is_refused():
    assert refused(Action.ENDORSE, "shipper", Chain(), "shipper").code == "same_holder"


def test_an_endorsement_names_its_endorsee():
    error = refused(Action.ENDORSE, "shipper", Chain(), None)
    assert isinstance(error, ValidationFailed) and error.code == "required"


def test_a_bill_to_a_named_consignee_goes_only_to_that_consignee():
    chain = Chain(consignee="consignee")
    assert refused(Action.ENDORSE, "shipper", chain, "buyer").code == "not_negotiable"
    chain.act(Action.ENDORSE, "shipper", "consignee")
    assert chain.state.holder == "consignee"


def test_a_pledged_bill_is_locked_until_the_bank_releases_it():
    chain = Chain().act(Action.PLEDGE, "shipper", "bank")
    assert (chain.state.holder, chain.state.pledgee, chain.state.status) == ("shipper", "bank", Status.PLEDGED)
    assert isinstance(refused(Action.ENDORSE, "shipper", chain, "buyer"), Conflict)
    assert refused(Action.ENDORSE, "shipper", chain, "buyer").code == "pledged"
    assert refused(Action.SURRENDER, "shipper", chain).code == "pledged"
    assert refused(Action.PLEDGE, "shipper", chain, "bank2").code == "already_pledged"
    assert refused(Action.RELEASE_PLEDGE, "shipper", chain).code == "not_the_pledgee"
    assert refused(Action.RELEASE_PLEDGE, "bank2", chain).code == "not_the_pledgee"
    chain.act(Action.RELEASE_PLEDGE, "bank")
    assert (chain.state.holder, chain.state.pledgee, chain.state.status) == ("shipper", None, Status.ACTIVE)
    chain.act(Action.ENDORSE, "shipper", "buyer")
    assert chain.verify().valid


def test_only_the_holder_pledges_and_not_to_itself():
    assert refused(Action.PLEDGE, "buyer", Chain(), "bank").code == "not_the_holder"
    assert refused(Action.PLEDGE, "shipper", Chain(), "shipper").code == "pledgee_is_holder"


def test_releasing_or_taking_over_an_unpledged_bill_is_refused():
    assert refused(Action.RELEASE_PLEDGE, "bank", Chain()).code == "not_pledged"
    assert refused(Action.TAKE_OVER, "bank", Chain()).code == "not_pledged"


def test_on_default_the_pledgee_takes_the_bill_over():
    chain = Chain().act(Action.PLEDGE, "shipper", "bank")
    assert refused(Action.TAKE_OVER, "bank2", chain).code == "not_the_pledgee"
    chain.act(Action.TAKE_OVER, "bank")
    assert (chain.state.holder, chain.state.pledgee, chain.state.status) == ("bank", None, Status.ACTIVE)
    chain.act(Action.ENDORSE, "bank", "buyer")
    assert chain.verify().valid


def test_surrender_returns_the_bill_to_its_issuer_and_is_final():
    chain = Chain().act(Action.ENDORSE, "shipper", "buyer")
    assert refused(Action.SURRENDER, "shipper", chain).code == "not_the_holder"
    chain.act(Action.SURRENDER, "buyer")
    assert (chain.state.holder, chain.state.status) == ("carrier", Status.SURRENDERED)
    for action, actor, to in ((Action.ENDORSE, "carrier", "buyer"), (Action.SURRENDER, "carrier", None),
                              (Action.PLEDGE, "carrier", "bank"), (Action.VOID, "carrier", None)):
        assert refused(action, actor, chain, to).code == "already_surrendered"


def test_only_the_issuer_voids_and_only_before_the_first_transfer():
    assert refused(Action.VOID, "shipper", Chain()).code == "not_the_issuer"
    chain = Chain().act(Action.VOID, "carrier")
    assert (chain.state.holder, chain.state.status) == ("carrier", Status.VOID)
    assert refused(Action.ENDORSE, "carrier", chain, "buyer").code == "voided"
    assert refused(Action.VOID, "carrier", Chain().act(Action.PLEDGE, "shipper", "bank").act(
        Action.RELEASE_PLEDGE, "bank")).code == "already_transferred"


def test_a_bill_is_issued_once():
    assert refused(Action.ISSUE, "carrier", Chain()).code == "already_issued"


# --- the canonical record and its signature -------------------------------------------------------

def test_the_canonical_form_is_sorted_compact_utf8_json_of_the_documented_fields():
    record = model.issue_record(particulars(), T0, fp("carrier"))
    data = model.canonical_bytes(record)
    parsed = json.loads(data)
    assert list(parsed) == sorted(parsed)
    assert set(parsed) == {"action", "actor", "at", "bill", "document", "format", "from_holder", "key",
                           "pledgee", "previous", "sequence", "to_holder"}
    assert parsed["at"] == "2026-05-01T08:30:00.000000Z" and parsed["sequence"] == 1
    assert parsed["format"] == "tradewindow.title-record/1" and parsed["from_holder"] is None
    assert b" " not in data and data.startswith(b'{"action":"issue","actor":"carrier","at":')
    assert model.record_hash(record) == __import__("hashlib").sha256(data).hexdigest()


def test_a_signature_verifies_only_with_the_signers_key_over_the_same_record():
    record = model.issue_record(particulars(), T0, fp("carrier"))
    signature = model.sign(PRIVATE["carrier"], record)
    assert model.signature_valid(PUBLIC["carrier"], record, signature)
    assert not model.signature_valid(PUBLIC["shipper"], record, signature)
    assert not model.signature_valid(PUBLIC["carrier"], replace(record, to_holder="buyer"), signature)
    assert not model.signature_valid(PUBLIC["carrier"], record, "not base64!")
    assert not model.signature_valid(PUBLIC["carrier"], record, signature[:-8] + "AAAAAAA=")


def test_public_keys_are_read_as_pem_base64_or_hex():
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    raw = PUBLIC["buyer"]
    pem = Ed25519PrivateKey.from_private_bytes(PRIVATE["buyer"]).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    import base64
    assert model.parse_public_key(pem) == raw
    assert model.parse_public_key(base64.b64encode(raw).decode()) == raw
    assert model.parse_public_key(raw.hex()) == raw
    for wrong in ("", "abc", "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----", raw.hex()[:-2]):
        with pytest.raises(ValidationFailed) as caught:
            model.parse_public_key(wrong)
        assert caught.value.code == "invalid_public_key"


# --- verification --------------------------------------------------------------------------------

def _long_chain() -> Chain:
    return (Chain().act(Action.ENDORSE, "shipper", "buyer").act(Action.PLEDGE, "buyer", "bank")
            .act(Action.RELEASE_PLEDGE, "bank").act(Action.SURRENDER, "buyer"))


def test_a_chain_built_by_the_rules_verifies():
    report = _long_chain().verify()
    assert report.valid and report.length == 5 and report.state.status is Status.SURRENDERED
    assert report.broken_sequence is None


@pytest.mark.parametrize(("change", "code"), [
    ({"to_holder": "bank2"}, "hash_mismatch"),
    ({"actor": "bank2"}, "hash_mismatch"),
    ({"at": T0 + timedelta(days=1)}, "hash_mismatch"),
    ({"pledgee": None}, "hash_mismatch"),
    ({"previous": "f" * 64}, "broken_link"),
    ({"sequence": 7}, "sequence_gap"),
    ({"signature": ""}, "bad_signature"),
    ({"key": "0" * 64}, "hash_mismatch"),
])
def test_changing_any_field_of_a_stored_record_names_that_record(change, code):
    chain = _long_chain()
    chain.records[2] = replace(chain.records[2], **change)
    report = chain.verify()
    assert not report.valid and report.broken_sequence == 3 and report.code == code


def test_a_record_rewritten_with_a_recomputed_hash_fails_its_signature():
    chain = _long_chain()
    forged = replace(chain.records[1], to_holder="bank2")
    chain.records[1] = replace(forged, hash=model.record_hash(forged))
    report = chain.verify()
    assert (report.valid, report.broken_sequence, report.code) == (False, 2, "bad_signature")


def test_a_record_signed_with_a_key_the_platform_does_not_know_is_refused():
    stranger = model.new_private_key()
    chain = Chain()
    record = model.next_record(chain.state, Action.ENDORSE, "shipper", T0, model.fingerprint(
        model.public_key_of(stranger)), "buyer")
    record = replace(record, signature=model.sign(stranger, record))
    chain.records.append(replace(record, hash=model.record_hash(record)))
    assert (chain.verify().code, chain.verify().broken_sequence) == ("unknown_key", 2)


def test_a_record_signed_by_someone_other_than_its_actor_is_refused():
    chain = Chain()
    record = signed(model.next_record(chain.state, Action.ENDORSE, "shipper", T0, fp("buyer"), "buyer"), "buyer")
    chain.records.append(record)
    assert chain.verify().code == "key_not_actors"


def test_a_signed_record_that_the_rules_do_not_allow_is_refused():
    # The buyer signs, with its own key, a record claiming the bill from the shipper.
    chain = Chain()
    record = model.Record(bill=chain.state.bol_number, sequence=2, action=Action.ENDORSE, actor="buyer",
                          from_holder="shipper", to_holder="buyer", pledgee=None, at=T0, previous=chain.state.head,
                          document=chain.state.document, key=fp("buyer"))
    chain.records.append(signed(record))
    report = chain.verify()
    assert (report.broken_sequence, report.code) == (2, "illegal_transition")


def test_changed_particulars_show_against_the_signed_digest():
    chain = _long_chain()
    chain.particulars = replace(chain.particulars, packages=41)
    assert (chain.verify().code, chain.verify().broken_sequence) == ("document_mismatch", 1)


def test_an_empty_chain_is_not_valid():
    assert model.verify_chain([], KEYS).code == "empty_chain"


def test_published_heads_catch_a_chain_rewritten_and_re_signed_by_the_key_holders():
    chain = _long_chain()
    published = [Head("CQDUI2026000001", r.sequence, r.hash) for r in chain.records[:3]]
    assert model.check_against_heads(chain.records, published) is None
    # Everyone re-signs a different history from record 2 on (as whoever holds custodial keys could).
    rewritten = Chain().act(Action.ENDORSE, "shipper", "bank2").act(Action.PLEDGE, "bank2", "bank") \
        .act(Action.RELEASE_PLEDGE, "bank").act(Action.SURRENDER, "bank2")
    assert rewritten.verify().valid
    assert model.check_against_heads(rewritten.records, published)[:1] == ("head_mismatch",)
    assert model.check_against_heads(chain.records[:2], published)[0] == "chain_truncated"


def test_the_heads_root_is_over_the_sorted_heads():
    heads = [Head("B", 2, "b" * 64), Head("A", 1, "a" * 64)]
    assert model.heads_root(heads) == model.heads_root(list(reversed(heads)))
    assert model.heads_root(heads) != model.heads_root([Head("B", 3, "b" * 64), Head("A", 1, "a" * 64)])
    assert model.checkpoint_hash(model.GENESIS, T0, "r", 2) != model.checkpoint_hash("1" * 64, T0, "r", 2)


# --- properties ----------------------------------------------------------------------------------

ACTIONS = st.lists(st.tuples(st.sampled_from([a for a in Action if a is not Action.ISSUE]),
                             st.sampled_from(PARTIES), st.sampled_from(PARTIES)), max_size=25)


@settings(max_examples=150, deadline=None)
@given(ACTIONS, st.booleans())
def test_any_sequence_of_attempts_keeps_one_holder_and_a_valid_chain(attempts, named_consignee):
    chain = Chain(consignee="consignee" if named_consignee else None)
    for action, actor, to in attempts:
        before = chain.state
        try:
            chain.act(action, actor, to)
        except DomainError:
            assert chain.state == before          # a refused action changes nothing
            continue
        assert chain.state.holder in PARTIES      # exactly one holder, always a party
        assert (chain.state.status is Status.PLEDGED) == (chain.state.pledgee is not None)
    report = chain.verify()
    assert report.valid and report.state == chain.state


class BillOfLadingMachine(RuleBasedStateMachine):
    """Random valid actions by whoever may take them: the chain stays valid with one holder."""

    def __init__(self) -> None:
        super().__init__()
        self.chain = Chain()

    @precondition(lambda self: self.chain.state.status is Status.ACTIVE)
    @rule(to=st.sampled_from(("buyer", "bank", "bank2", "consignee", "shipper")))
    def endorse(self, to):
        if to != self.chain.state.holder:
            self.chain.act(Action.ENDORSE, self.chain.state.holder, to)

    @precondition(lambda self: self.chain.state.status is Status.ACTIVE)
    @rule(bank=st.sampled_from(("bank", "bank2")))
    def pledge(self, bank):
        if bank != self.chain.state.holder:
            self.chain.act(Action.PLEDGE, self.chain.state.holder, bank)

    @precondition(lambda self: self.chain.state.status is Status.PLEDGED)
    @rule(take_over=st.booleans())
    def release_or_take_over(self, take_over):
        self.chain.act(Action.TAKE_OVER if take_over else Action.RELEASE_PLEDGE, self.chain.state.pledgee)

    @precondition(lambda self: self.chain.state.status is Status.ACTIVE and len(self.chain.records) > 3)
    @rule()
    def surrender(self):
        self.chain.act(Action.SURRENDER, self.chain.state.holder)

    @precondition(lambda self: self.chain.state.status in model.FINAL)
    @rule()
    def next_bill(self):
        assert self.chain.state.holder == "carrier"      # surrendered: back with its issuer
        self.chain = Chain()

    @invariant()
    def one_holder_and_a_valid_chain(self):
        report = self.chain.verify()
        assert report.valid, report.message
        assert report.state.holder == self.chain.state.holder
        assert report.length == len(self.chain.records) == self.chain.state.sequence


BillOfLadingMachine.TestCase.settings = settings(max_examples=40, stateful_step_count=15, deadline=None)
TestBillOfLadingMachine = BillOfLadingMachine.TestCase
