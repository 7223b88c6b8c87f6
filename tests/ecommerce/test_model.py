"""The pure rules: customs value, masking, the limit order of a batch (hypothesis)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.ecommerce.conftest import BUYER, Parcel
from tradewindow.ecommerce import model
from tradewindow.ecommerce.model import Assessment, Candidate, Decision, Reason
from tradewindow.platform.errors import ValidationFailed

LIMIT = Decimal(26000)


def test_customs_value_is_goods_plus_freight_minus_discount():
    order = model.parse_order(Parcel(value="300.00", freight="25.50", discount="40.00").order)
    assert order.customs_value == Decimal("285.50")


def test_identity_numbers_are_masked_to_the_first_three_and_last_four():
    assert model.mask_id(BUYER) == BUYER[:3] + "*" * 11 + BUYER[-4:]
    assert model.mask_id("123") == "***"
    assert model.mask_phone("13800138000") == "138****8000"


def test_limit_edges():
    assert model.within_annual_limit(Decimal("20000"), Decimal("6000.00"))
    assert not model.within_annual_limit(Decimal("20000"), Decimal("6000.01"))


def test_a_bonded_warehouse_order_names_its_warehouse_and_reads_apart():
    plain = model.parse_order(Parcel(order_no="ORD-BW").order)
    bonded = model.parse_order({**Parcel(order_no="ORD-BW").order, "bonded_warehouse": "CQ-BW-01"})
    assert (plain.bonded_warehouse, bonded.bonded_warehouse) == (None, "CQ-BW-01")
    assert "bonded_warehouse" not in model.canonical(plain)       # reads as before the mode existed
    assert model.canonical_text(plain) != model.canonical_text(bonded)


BUYERS = ["A", "B", "C"]
START = datetime(2026, 11, 11, tzinfo=UTC)
candidates = st.lists(st.tuples(
    st.sampled_from(BUYERS),
    st.integers(min_value=0, max_value=50),              # minutes after the start: ties happen
    st.decimals(min_value=Decimal("0.01"), max_value=Decimal("7000"), places=2),
    st.booleans(),                                       # clean or with a reason
), max_size=40)


def build(raw) -> list[Candidate]:
    return [Candidate(f"O{n:03d}", buyer, START + timedelta(minutes=minutes),
                      Assessment(() if clean else (Reason.PAYER_MISMATCH,), value), 2026)
            for n, (buyer, minutes, value, clean) in enumerate(raw)]


@settings(max_examples=200, deadline=None)
@given(candidates, st.randoms(use_true_random=False))
def test_a_buyers_year_never_passes_26000_and_results_do_not_depend_on_file_order(raw, rnd):
    parcels = build(raw)
    outcomes = model.decide_batch(parcels, sampling=model.Sampling(rate=Decimal("0.3"), seed="x"))
    for buyer in BUYERS:
        counted = sum((outcomes[p.order_no].counted for p in parcels if p.buyer_id_number == buyer), Decimal(0))
        assert counted <= LIMIT
    shuffled = list(parcels)
    rnd.shuffle(shuffled)
    assert model.decide_batch(shuffled, sampling=model.Sampling(rate=Decimal("0.3"), seed="x")) == outcomes


@settings(max_examples=100, deadline=None)
@given(candidates)
def test_a_refused_clean_parcel_is_only_ever_refused_for_the_limit(raw):
    parcels = build(raw)
    outcomes = model.decide_batch(parcels)
    for p in parcels:
        outcome = outcomes[p.order_no]
        if outcome.decision is Decision.REJECT and not p.assessment.reasons:
            assert outcome.reasons == (Reason.ANNUAL_LIMIT_EXCEEDED,)
            assert outcome.year_total_after + p.assessment.customs_value > LIMIT


def test_within_a_buyer_limits_follow_ordered_at_then_order_number():
    first, second = (Candidate(no, "A", START, Assessment((), Decimal("20000")), 2026) for no in ("O2", "O1"))
    outcomes = model.decide_batch([first, second])
    assert outcomes["O1"].decision is Decision.RELEASE and outcomes["O2"].decision is Decision.REJECT
    earlier = Candidate("O9", "A", START - timedelta(seconds=1), Assessment((), Decimal("20000")), 2026)
    assert model.decide_batch([first, second, earlier])["O9"].decision is Decision.RELEASE


# The quick readings of well-formed records (model._quick_*) repeat the full readings' checks for
# speed; a record must come out the same whichever reads it, and anything the quick one is unsure
# of must still get every problem from the full one. Odd values at every field check both.
ODD_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 10**6), st.floats(allow_nan=True), st.just([]), st.just({}),
    st.sampled_from(["", " ", "  12.50 ", "1e3", "NaN", "-0.00", "0", "0.001", "12.345", "5000.00", "+7",
                     "８７０３", "8703.23.41", "2026-11-11T00:05:00", "2026-11-11T00:05:00+08:00",
                     "20261111T000500+0800", "x" * 65, "x" * 301, "cn", "XX", "CNY", "USD", "1e30", "-1E+40",
                     "9" * 26 + ".99", "999999999999999.99", "1000000000000000"]),
    st.text(max_size=8))


def _reading(parse, raw):
    try:
        return parse(raw)
    except Exception as refused:  # noqa: BLE001 - compared by kind and problems
        return type(refused), [(p.path, p.code) for p in getattr(refused, "problems", [])]


@settings(max_examples=400, deadline=None)
@given(data=st.data())
def test_the_quick_reading_of_a_record_agrees_with_the_full_one(data):
    parcel = Parcel(order_no="ORD-Q")
    for record, quick, full in ((parcel.order, model.parse_order, model._read_order),
                                (parcel.payment, model.parse_payment, model._read_payment),
                                (parcel.waybill, model.parse_waybill, model._read_waybill)):
        raw = dict(record)
        for name in data.draw(st.lists(st.sampled_from(sorted(raw)), max_size=3, unique=True)):
            raw[name] = data.draw(ODD_VALUES)
        if "items" in raw and isinstance(raw["items"], list) and raw["items"]:
            item = dict(raw["items"][0])
            for name in data.draw(st.lists(st.sampled_from(sorted(item)), max_size=2, unique=True)):
                item[name] = data.draw(ODD_VALUES)
            raw["items"] = [item, *raw["items"][1:]]
        reading = _reading(quick, raw)
        assert reading == _reading(full, raw)
        # A record is read or refused with its problems: never an error from deeper down
        # (an amount of 1e30 once raised decimal.InvalidOperation from a quantize).
        assert not isinstance(reading, tuple) or reading[0] is ValidationFailed, reading


@settings(max_examples=500, deadline=None)
@given(value=st.decimals(allow_nan=True, allow_infinity=True) | st.sampled_from(
    [Decimal(t) for t in ("0", "-0", "0.00", "-0.00", "1E+2", "1E-7", "0E-8", "100", "12.50", "9" * 21 + ".10",
                          "1" * 19 + ".1", "sNaN")]))
def test_an_amount_written_plain_is_its_normalized_form(value):
    def written(write):
        try:
            return write(value)
        except ArithmeticError as refused:   # sNaN: the same refusal
            return type(refused)
    assert written(model._plain) == written(lambda v: format(v.normalize(), "f"))


_texts = st.text(st.characters(codec="utf-8"), min_size=1, max_size=12)
_odd_amounts = ("0", "0.00", "12.50", "1E+3", "-0.00", "5000.001")
_amounts = st.integers(0, 3).flatmap(lambda places: st.decimals(min_value=0, max_value=10**9, places=places)) | \
    st.sampled_from([Decimal(a) for a in _odd_amounts])
_moments = st.datetimes(timezones=st.sampled_from([UTC, ZoneInfo("Asia/Shanghai")]))


@settings(max_examples=300, deadline=None)
@given(texts=st.lists(_texts, min_size=12, max_size=12), amounts=st.lists(_amounts, min_size=6, max_size=6),
       moment=_moments, origin=st.none() | _texts, bonded=st.none() | _texts, items=st.integers(1, 3))
def test_the_canonical_text_written_by_hand_is_the_encoders(texts, amounts, moment, origin, bonded, items):
    """canonical_text writes the JSON of canonical(record) field by field: the same text, so the
    same content hash and stored body, for any strings, amounts, times and optional fields."""
    item = model.OrderItem(texts[0], texts[1], amounts[0], texts[2], amounts[1], origin)
    order = model.Order(texts[3], texts[4], moment, texts[5], texts[6], texts[7], texts[8], "CNY", amounts[2],
                        amounts[3], amounts[4], amounts[5], (item,) * items, bonded)
    payment = model.Payment(texts[9], texts[3], texts[5], texts[10], amounts[2], moment)
    waybill = model.Waybill(texts[11], texts[3], texts[7], texts[8], amounts[0], moment)
    for record in (order, payment, waybill):
        assert model.canonical_text(record) == model.canonical_text_encoded(record)


def test_an_amount_too_large_to_store_is_refused_with_its_field_not_raised():
    parcel = Parcel(order_no="ORD-BIG")
    for record, parse, field in ((parcel.order, model.parse_order, "goods_value"),
                                 (parcel.payment, model.parse_payment, "amount_paid"),
                                 (parcel.waybill, model.parse_waybill, "gross_weight_kg")):
        for written in ("1e30", "9" * 26 + ".99"):
            assert _reading(parse, {**record, field: written}) == (ValidationFailed, [(field, "too_large")])
