"""The batch path at scale (`bulk.clear`): generated festival files in, every parcel decided as the
per-record service would, whatever the order of the lines or the number of partitions, and a
second run of the same files storing nothing twice."""

from __future__ import annotations

import io
import json
import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from stdnum.cn import ric

from tests.ecommerce.conftest import Parcel
from tradewindow.ecommerce import bulk, generate, model, service
from tradewindow.ecommerce.tables import cbec_buyer_years, cbec_orders, cbec_parcels, cbec_payments, cbec_waybills
from tradewindow.platform import jsontext
from tradewindow.platform.auth import SYSTEM
from tradewindow.platform.money import from_minor_units, to_minor_units

SAMPLING = model.Sampling(rate=model.Decimal("0.05"), seed="test")
TABLES = (cbec_orders, cbec_payments, cbec_waybills, cbec_parcels, cbec_buyer_years)


def files(tmp_path: Path, parcels: int = 600, seed: int = 3, **options) -> Path:
    out = tmp_path / f"in-{seed}-{parcels}"
    generate.generate(generate.Options(parcels=parcels, seed=seed, shuffle_window=50, **options), out)
    return out


def clear(uow, folder: Path, out: Path, **options) -> tuple[bulk.ClearSummary, dict]:
    with open(out, "w", encoding="utf-8") as results:
        summary = bulk.clear(uow, SYSTEM, folder / "orders.ndjson", folder / "payments.ndjson",
                             folder / "waybills.ndjson", results, SAMPLING, **options)
    return summary, read_results(out)


def read_results(path: Path) -> dict:
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    found = {r["order_no"]: r for r in lines}
    assert len(found) == len(lines), "a parcel appears once in the results"
    return found


def counts(db) -> dict:
    with db.connect() as conn:
        return {t.name: conn.execute(select(func.count()).select_from(t)).scalar_one() for t in TABLES}


def forget(db) -> None:
    with db.begin() as conn:
        for table in TABLES:
            conn.execute(table.delete())


def reshuffled(folder: Path, target: Path, seed: int) -> Path:
    target.mkdir()
    for name in ("orders", "payments", "waybills"):
        lines = (folder / f"{name}.ndjson").read_text(encoding="utf-8").splitlines(keepends=True)
        random.Random(seed).shuffle(lines)
        (target / f"{name}.ndjson").write_text("".join(lines), encoding="utf-8")
    return target


def test_generated_files_are_deterministic_valid_and_out_of_order(tmp_path):
    a, b = files(tmp_path, 300, seed=5), tmp_path / "again"
    generate.generate(generate.Options(parcels=300, seed=5, shuffle_window=50), b)
    for name in ("orders", "payments", "waybills"):
        assert (a / f"{name}.ndjson").read_bytes() == (b / f"{name}.ndjson").read_bytes()
    orders = [json.loads(line) for line in (a / "orders.ndjson").read_text(encoding="utf-8").splitlines()]
    numbers = [o["order_no"] for o in orders]
    assert numbers != sorted(numbers), "orders leave the file out of their numbering"
    times = [o["ordered_at"] for o in orders]
    assert times != sorted(times)
    valid = [ric.is_valid(o["buyer_id_number"]) for o in orders]
    assert 0.9 < sum(valid) / len(valid) < 1
    buyers = [o["buyer_id_number"] for o in orders]
    assert max(buyers.count(b) for b in set(buyers)) >= 5, "some buyers come back again and again"
    assert all(o["ordered_at"].startswith("2026-11-11T") for o in orders)


def test_every_defect_gives_its_reason_and_the_results_file_has_the_issue_fields(cbec_world, uow, db, tmp_path):
    folder = files(tmp_path, 800, defect_rate=0.03)
    summary, results = clear(uow, folder, tmp_path / "results.ndjson")
    for reason in ("payer_mismatch", "amount_mismatch", "consignee_mismatch", "not_on_positive_list",
                   "unknown_tariff_code", "invalid_buyer_id", "tax_withheld_mismatch", "order_limit_exceeded",
                   "annual_limit_exceeded", "random_inspection"):
        assert summary.reasons.get(reason, 0) > 0, reason
    assert summary.refused == {"duplicate": summary.refused["duplicate"]} and summary.refused["duplicate"] > 0
    assert summary.repeated > 0                            # identical waybills sent twice
    assert summary.parcels == len(results) == 800 and summary.waiting == 0
    assert set(next(iter(results.values()))) == {
        "order_no", "waybill_no", "buyer_id_number", "decision", "reasons", "customs_value", "duty",
        "consumption_tax", "vat", "total_tax", "buyer_year_total_after"}
    assert all("*" in r["buyer_id_number"] for r in results.values()), "exports mask identity numbers"
    stored = counts(db)
    assert stored["cbec_orders"] == stored["cbec_payments"] == stored["cbec_waybills"] == stored["cbec_parcels"] == 800
    with db.connect() as conn:
        over = conn.execute(select(func.count()).select_from(cbec_buyer_years)
                            .where(cbec_buyer_years.c.total_fen > 2_600_000)).scalar_one()
    assert over == 0, "no buyer's year goes past 26,000"
    released = [r for r in results.values() if r["decision"] != "reject"]
    assert summary.as_dict()["taxes"]["total_tax"] == model.format_amount(
        sum((model.Decimal(r["total_tax"]) for r in released), model.ZERO))


def test_results_do_not_depend_on_line_order_partitions_or_workers(cbec_world, uow, db, tmp_path):
    folder = files(tmp_path, 500, defects=tuple(d for d in generate.DEFECTS if d != "duplicate"))
    first_summary, first = clear(uow, folder, tmp_path / "a.ndjson", partitions=1, workers=1)
    for n, (partitions, workers) in enumerate(((3, 2), (8, 1))):
        forget(db)
        shuffled = reshuffled(folder, tmp_path / f"shuffled{n}", seed=n)
        summary, again = clear(uow, shuffled, tmp_path / f"b{n}.ndjson", partitions=partitions, workers=workers)
        assert again == first
        assert summary.as_dict()["taxes"] == first_summary.as_dict()["taxes"]
        assert summary.accepted == first_summary.accepted and summary.reasons == first_summary.reasons


def test_files_cut_between_workers_keep_their_line_numbers_and_the_first_of_two_numbers_stands(
        cbec_world, uow, db, tmp_path):
    folder = files(tmp_path, 300)       # every defect, numbers used twice among them
    for name in ("orders", "payments", "waybills"):       # refusals all along the files, some near the cuts
        path = folder / f"{name}.ndjson"
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        for at in (0, len(lines) // 3, len(lines) // 2, len(lines) - 1):
            lines.insert(at, "{not json\n")
        path.write_text("".join(lines), encoding="utf-8")
    first_summary, first = clear(uow, folder, tmp_path / "a.ndjson", partitions=1, workers=1)
    forget(db)
    summary, again = clear(uow, folder, tmp_path / "b.ndjson", partitions=4, workers=3)
    assert again == first
    assert summary.as_dict()["refused_lines"] == first_summary.as_dict()["refused_lines"]
    assert summary.refused == first_summary.refused
    assert summary.refused["duplicate"] > 0 and summary.refused["malformed_json"] == 12
    assert summary.lines == first_summary.lines and summary.accepted == first_summary.accepted


@settings(max_examples=200, deadline=None)
@given(lines=st.lists(st.binary(max_size=6).map(lambda b: b.replace(b"\n", b"")), max_size=12),
       last_newline=st.booleans(), workers=st.integers(min_value=1, max_value=5))
def test_a_file_is_cut_in_pieces_at_line_starts_covering_every_line_once(tmp_path_factory, lines, last_newline,
                                                                          workers):
    data = b"\n".join(lines) + (b"\n" if last_newline and lines else b"")
    path = tmp_path_factory.mktemp("pieces") / "orders.ndjson"
    path.write_bytes(data)
    read = []
    with open(path, "rb") as handle:
        for kind, _, start, end in (share[0] for share in bulk._pieces({model.Kind.ORDER: path}, workers)):
            assert kind is model.Kind.ORDER
            assert start in (0, len(data)) or data[start - 1:start] == b"\n"
            piece = data[start:end]
            first = bulk._lines_before(handle, start) + 1
            read += [(first + n, line) for n, line in enumerate(io.BytesIO(piece).readlines())]
    assert read == list(enumerate(io.BytesIO(data).readlines(), start=1))     # lines as a file gives them


def test_the_same_files_again_store_nothing_twice_and_give_the_same_results(cbec_world, uow, db, tmp_path):
    folder = files(tmp_path, 400)
    first_summary, first = clear(uow, folder, tmp_path / "a.ndjson")
    before = counts(db)
    summary, again = clear(uow, folder, tmp_path / "b.ndjson", partitions=5)
    assert again == first and counts(db) == before
    assert summary.accepted == {"orders": 0, "payments": 0, "waybills": 0}
    assert summary.decided_before == 400 and summary.decisions == first_summary.decisions
    assert summary.refused == first_summary.refused


def test_decisions_equal_the_per_record_service_path(cbec_world, uow, db, tmp_path):
    folder = files(tmp_path, 500, seed=11, defect_rate=0.03)
    summary, bulk_results = clear(uow, folder, tmp_path / "bulk.ndjson")
    forget(db)
    lines = []
    for kind, name in (("order", "orders"), ("payment", "payments"), ("waybill", "waybills")):
        for line in (folder / f"{name}.ndjson").read_text(encoding="utf-8").splitlines():
            lines.append(json.dumps({"kind": kind, **json.loads(line)}, ensure_ascii=False))
    decided: dict = {}
    service.import_batch(uow, SYSTEM, service.ndjson_objects(lines), sampling=SAMPLING,
                         on_decided=lambda row: decided.update({row["order_no"]: service.result_line(row)}))
    assert decided == bulk_results
    assert summary.parcels == 500


def test_a_record_conflicting_with_a_stored_one_is_duplicate_and_the_stored_one_stands(cbec_world, uow, tmp_path):
    parcel = Parcel(order_no="OD-STORED-1")
    service.submit(uow, cbec_world["payment"], model.Kind.PAYMENT, parcel.payment)
    folder = tmp_path / "in"
    folder.mkdir()
    changed = {**parcel.payment, "amount_paid": "1.00"}
    for name, record in (("orders", parcel.order), ("payments", changed), ("waybills", parcel.waybill)):
        (folder / f"{name}.ndjson").write_text(json.dumps(record, ensure_ascii=False) + "\n", encoding="utf-8")
    summary, results = clear(uow, folder, tmp_path / "r.ndjson")
    assert summary.refused == {"duplicate": 1} and summary.refused_lines[0]["file"] == "payments"
    # the stored payment (the right amount) stands: the parcel is clean
    assert results["OD-STORED-1"]["decision"] in {"release", "inspect"}
    assert results["OD-STORED-1"]["reasons"] in ([], ["random_inspection"])


def test_year_totals_stored_before_count(cbec_world, uow, tmp_path):
    before = Parcel(value="4000.00", quantity="2", ordered_at="2026-03-01T10:00:00+08:00")
    for kind, record in (("platform", before.order), ("payment", before.payment), ("logistics", before.waybill)):
        service.submit(uow, cbec_world[kind], {"platform": model.Kind.ORDER, "payment": model.Kind.PAYMENT,
                                               "logistics": model.Kind.WAYBILL}[kind], record, model.NO_SAMPLING)
    folder = tmp_path / "in"
    folder.mkdir()
    values = ["4500.00"] * 4 + ["4000.00", "0.01"]
    parcels = [Parcel(value=v, quantity="2" if v != "0.01" else "1", ordered_at=f"2026-11-11T0{i}:00:00+08:00")
               for i, v in enumerate(values)]
    for name, kind in (("orders", "order"), ("payments", "payment"), ("waybills", "waybill")):
        (folder / f"{name}.ndjson").write_text(
            "".join(json.dumps(getattr(p, kind), ensure_ascii=False) + "\n" for p in reversed(parcels)),
            encoding="utf-8")
    with open(tmp_path / "r.ndjson", "w", encoding="utf-8") as out:
        bulk.clear(uow, SYSTEM, folder / "orders.ndjson", folder / "payments.ndjson", folder / "waybills.ndjson",
                   out, model.NO_SAMPLING)
    results = read_results(tmp_path / "r.ndjson")
    decisions = [results[p.order_no]["decision"] for p in parcels]
    # 4,000 stored before; 4 × 4,500 and 4,000 reach exactly 26,000.00; one fen more crosses it
    assert decisions == ["release"] * 5 + ["reject"]
    assert results[parcels[4].order_no]["buyer_year_total_after"] == "26000.00"
    assert results[parcels[5].order_no]["reasons"] == ["annual_limit_exceeded"]


def test_a_stored_body_read_back_is_the_same_canonical_text_however_it_was_written():
    """A repeat is recognised by its canonical text against the stored body's: bodies stored by the
    bulk paths (the canonical text itself) and by the per-record path (the engine's compact JSON)
    give it back the same."""
    parcel = Parcel()
    for kind, raw in ((model.Kind.ORDER, parcel.order), (model.Kind.PAYMENT, parcel.payment),
                      (model.Kind.WAYBILL, parcel.waybill)):
        record = model.parse_record(kind, raw)
        text = model.canonical_text(record)
        for stored in (text, jsontext.stored(model.canonical(record))):
            assert model.stored_canonical_text(json.loads(stored)) == text


@pytest.mark.parametrize("value", [0, 1, 99, 100, 123456, 2_600_000])
def test_fen_formatting_matches_format_amount(value):
    assert bulk._fen(value) == model.format_amount(model.Decimal(value) / 100)


def test_clear_refuses_malformed_lines_with_file_and_line(cbec_world, uow, tmp_path):
    parcel = Parcel()
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "orders.ndjson").write_text("{not json\n" + json.dumps({**parcel.order, "colour": "red"}) + "\n")
    (folder / "payments.ndjson").write_text(json.dumps(parcel.payment) + "\n")
    (folder / "waybills.ndjson").write_text("\n" + json.dumps(parcel.waybill) + "\n")
    summary, results = clear(uow, folder, tmp_path / "r.ndjson")
    assert {(r["file"], r["line"]) for r in summary.refused_lines} == {("orders", 1), ("orders", 2)}
    assert summary.refused == {"malformed_json": 1, "unknown_field": 1}
    assert results == {} and summary.waiting == 1


_names = st.sampled_from(["order_no", "items", "buyer_name", "x", "order_no ", "Order_no"])
_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=8),
                     st.sampled_from(["OD1", 'a"b', "a\\b", "\n", "é", "order_no", '"order_no":"X"']))
_json = st.recursive(_scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                        st.dictionaries(_names, inner, max_size=4)), max_leaves=8)


@settings(max_examples=400, deadline=None)
@given(first=st.one_of(st.none(), _scalars), rest=st.lists(st.tuples(_names, _json), max_size=5),
       spacing=st.sampled_from([(",", ":"), (", ", ": "), (" ,", " : ")]), ascii_only=st.booleans(),
       cut=st.integers(min_value=0, max_value=3))
def test_an_order_number_read_at_sight_is_the_one_parsing_gives(first, rest, spacing, ascii_only, cut):
    """Pass 1 reads an order's number off the raw line without parsing it only when parsing could
    give nothing else (odd keys, repeats, nesting, escapes, spacing, truncated lines)."""
    pairs = ([("order_no", first)] if first is not None else []) + rest
    text = "{" + spacing[0].join(json.dumps(k) + spacing[1] + json.dumps(v, ensure_ascii=ascii_only)
                                 for k, v in pairs) + "}"
    raw = text.encode()[:len(text.encode()) - cut] + b"\n"
    seen = bulk._order_no_at_sight(raw)
    if seen is None:
        return
    try:
        parsed = json.loads(raw)
    except ValueError:
        return                      # malformed: pass 2 parses it and refuses it
    assert isinstance(parsed, dict) and parsed["order_no"] == seen


_any_json = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(min_value=-10**30, max_value=10**30),
              st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=8)),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=4), inner, max_size=4)),
    max_leaves=10)
_odd_lines = st.sampled_from([b"\xef\xbb\xbf{}", b"NaN", b'{"a": NaN}', b'{"a": Infinity}', b'{"a": 1e400}',
                              b'{"a": "\\ud800"}', b'{"a": 1, "a": 2}', b"[" * 300 + b"]" * 300, b"\xff{}", b"{",
                              b'{"a": 12345678901234567890123}', b'{"a": -9999999999999999999}',
                              b'{"a": 18446744073709551616}', b'{"a": 9223372036854775808}',
                              b'{"a": -0}', b'{"a": "\xe9"}', b" {} \r\n", b""])


@settings(max_examples=300, deadline=None)
@given(value=_any_json, odd=st.one_of(st.none(), _odd_lines), line_no=st.sampled_from([1, 2]),
       ascii_only=st.booleans())
def test_a_line_read_by_orjson_is_what_the_standard_library_reads(value, odd, line_no, ascii_only):
    """Lines are read by orjson where it reads them as the standard library does; the same value,
    or the same refusal, whatever the line (huge integers, NaN, BOM, lone surrogates, nesting)."""
    raw = odd if odd is not None else json.dumps(value, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")
    try:
        expected = json.loads(raw.decode("utf-8-sig" if line_no == 1 else "utf-8"))
    except ValueError:
        with pytest.raises(ValueError):
            bulk._read_line(raw, line_no)
        return
    seen = bulk._read_line(raw, line_no)
    assert json.dumps(seen, sort_keys=True) == json.dumps(expected, sort_keys=True)
    assert type(seen) is type(expected)


@settings(max_examples=300, deadline=None)
@given(value=_any_json, fields=st.dictionaries(st.sampled_from(["order_no", "payment_no"]), _any_json),
       odd=st.one_of(st.none(), _odd_lines), line_no=st.sampled_from([1, 2]), ascii_only=st.booleans())
def test_a_payments_numbers_read_fast_are_the_ones_the_standard_library_reads(value, fields, odd, line_no,
                                                                             ascii_only):
    """Pass 1 takes a payment's or waybill's two numbers from orjson when both are text: then
    they are what the standard library reads; otherwise the line is read the full way."""
    if isinstance(value, dict):
        value = {**value, **fields}
    raw = odd if odd is not None else json.dumps(value, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")
    seen = bulk._numbers_read_fast(raw, "payment_no")
    if seen is None:
        return
    expected = json.loads(raw.decode("utf-8-sig" if line_no == 1 else "utf-8"))
    assert seen == (expected["order_no"], expected["payment_no"])
    assert type(expected["order_no"]) is str and expected["order_no"] and type(expected["payment_no"]) is str


@settings(max_examples=500, deadline=None)
@given(units=st.integers(-10**20, 10**20), amount=st.decimals(allow_nan=False, allow_infinity=False, places=3)
       | st.decimals(allow_nan=False, allow_infinity=False))
def test_the_batchs_fen_conversions_are_the_money_modules(units, amount):
    """bulk converts CNY amounts to fen and back per parcel without looking up the currency's
    places: the same numbers, written the same, or the same refusal, as platform.money's."""
    def converted(convert, value):
        try:
            return repr(convert(value))
        except (ValueError, ArithmeticError) as refused:
            return type(refused)
    assert converted(bulk._to_fen, amount) == converted(to_minor_units, amount)
    assert converted(bulk._from_fen, units) == converted(from_minor_units, units)


_odd_values = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 10**6), st.integers(2**63, 2**80), st.floats(allow_nan=True),
    st.just([]), st.just({}), st.just([{}]), st.text(max_size=6),
    st.sampled_from(["", " ", " 12.50 ", "1e3", "NaN", "-0.00", "0.001", "5000.00", "８７０３", "2026-11-11T00:05:00",
                     "x" * 65, "cn", "\ud800", "\x00", "CNY"]))


@settings(max_examples=400, deadline=None)
@given(data=st.data(), line_no=st.sampled_from([1, 2]), ascii_only=st.booleans(),
       bom=st.booleans(), extra=st.none() | st.sampled_from(["kind", "note"]))
def test_a_line_read_the_quick_way_gives_the_records_full_reading(data, line_no, ascii_only, bom, extra):
    """Pass 2 reads a line by orjson and the quick reading first: for good and spoilt lines alike,
    the same record, or the same refusal (malformed, or the same problems), as reading it with
    the standard library's value and `model.parse_record`."""
    parcel = Parcel(order_no="ORD-R")
    for kind, record in ((model.Kind.ORDER, parcel.order), (model.Kind.PAYMENT, parcel.payment),
                         (model.Kind.WAYBILL, parcel.waybill)):
        raw = dict(record)
        for name in data.draw(st.lists(st.sampled_from(sorted(raw)), max_size=2, unique=True)):
            raw[name] = data.draw(_odd_values)
        if extra:
            raw[extra] = data.draw(_odd_values)
        if kind is model.Kind.ORDER and isinstance(raw["items"], list) and raw["items"] and raw["items"][0]:
            item = dict(raw["items"][0])
            for name in data.draw(st.lists(st.sampled_from(sorted(item)), max_size=2, unique=True)):
                item[name] = data.draw(_odd_values)
            raw["items"] = [item]
        line = (b"\xef\xbb\xbf" if bom else b"") + json.dumps(raw, ensure_ascii=ascii_only).encode(
            "utf-8", "surrogatepass")
        expected, seen = _reading(_full_reading, kind, line, line_no), _reading(bulk._record, kind, line, line_no)
        assert seen == expected and repr(seen) == repr(expected)


def _full_reading(kind: model.Kind, line: bytes, line_no: int) -> model.Record:
    return model.parse_record(kind, bulk._read_line(line, line_no))


def _reading(read, *args):
    try:
        return read(*args)
    except ValueError:
        return "malformed"
    except model.ValidationFailed as refused:
        return [(p.path, p.code, p.message) for p in refused.problems]


@settings(max_examples=200, deadline=None)
@given(numbers=st.lists(st.text(min_size=1, max_size=10), min_size=3, max_size=3),
       decision=st.sampled_from(["release", "inspect", "reject"]),
       reasons=st.lists(st.sampled_from([r.value for r in model.Reason]), max_size=3),
       fen=st.lists(st.integers(0, 10**12), min_size=6, max_size=6))
def test_a_result_line_written_by_hand_is_json_dumps_of_the_result(numbers, decision, reasons, fen):
    order_no, waybill_no, buyer = numbers
    result = {"order_no": order_no, "waybill_no": waybill_no, "buyer_id_number": model.mask_id(buyer),
              "decision": decision, "reasons": reasons,
              **{name: bulk._fen(f) for name, f in zip(("customs_value", "duty", "consumption_tax", "vat", "total_tax",
                                                        "buyer_year_total_after"), fen, strict=True)}}
    text = bulk._result_text(order_no, waybill_no, buyer, decision, json.dumps(reasons), tuple(fen))
    assert text == json.dumps(result, ensure_ascii=False) + "\n"


def test_the_quote_cache_is_bounded_and_keeps_the_quotes_asked_again(cbec_world, uow):
    """Memory flat whatever the run's size: the least recently asked quote goes first, and a
    cached quote is the quote engine's."""
    from zoneinfo import ZoneInfo

    from tradewindow.ecommerce.rates import QuoteCache
    from tradewindow.tariff import service as tariff_service

    cache = QuoteCache(size=3)
    orders = [model.parse_order(Parcel(value=f"{100 + i}.00").order) for i in range(5)]
    day = orders[0].ordered_at.astimezone(ZoneInfo("Asia/Shanghai")).date()
    with uow.read():
        lookup = tariff_service.tariff_lookup(uow)
        for order in (*orders[:3], orders[0], orders[3], orders[0], orders[4]):
            assert cache(order, day, lookup).totals == model.quote_order(order, day, lookup).totals
    assert len(cache.quotes) == 3 and (cache.hits, cache.misses) == (2, 5)
    assert {key[1] for key in cache.quotes} == {orders[0].customs_value, orders[3].customs_value,
                                                orders[4].customs_value}


def test_an_order_number_too_long_for_any_record_is_refused_not_a_crash(cbec_world, uow, tmp_path):
    # pass 1 files lines by order number whatever its length (parsing, in pass 2, refuses it)
    parcel = Parcel()
    huge = "OD" + "9" * 70_000
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "orders.ndjson").write_text(json.dumps({**parcel.order, "order_no": huge}) + "\n")
    (folder / "payments.ndjson").write_text(json.dumps({**parcel.payment, "order_no": huge}) + "\n")
    (folder / "waybills.ndjson").write_text(json.dumps(parcel.waybill) + "\n")
    summary, results = clear(uow, folder, tmp_path / "r.ndjson")
    assert {(r["file"], r["line"]) for r in summary.refused_lines} == {("orders", 1), ("payments", 1)}
    assert results == {} and summary.waiting == 1


def test_an_order_whose_every_line_is_refused_is_neither_a_crash_nor_waiting(cbec_world, uow, tmp_path):
    parcel = Parcel()
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "orders.ndjson").write_text(json.dumps({**parcel.order, "colour": "red"}) + "\n")
    (folder / "payments.ndjson").write_text("")
    (folder / "waybills.ndjson").write_text("")
    summary, results = clear(uow, folder, tmp_path / "r.ndjson")
    assert summary.refused == {"unknown_field": 1} and [r["line"] for r in summary.refused_lines] == [1]
    assert results == {} and summary.waiting == 0


def test_a_worker_that_stops_is_named_and_a_rerun_completes_the_batch(cbec_world, uow, db, tmp_path, monkeypatch):
    folder = files(tmp_path, 200)
    expected_summary, expected = clear(uow, folder, tmp_path / "expected.ndjson", workers=2, partitions=4)
    forget(db)

    def disk_full(store):
        def storing(conn, table, *args, **kwargs):
            if table is bulk.cbec_parcels:            # the decisions cannot be written
                raise OSError(28, "No space left on device")
            return store(conn, table, *args, **kwargs)
        return storing

    real_insert_rows, real_copy_lines = bulk.insert_rows, bulk.copy_lines
    monkeypatch.setattr(bulk, "insert_rows", disk_full(real_insert_rows))   # SQLite
    monkeypatch.setattr(bulk, "copy_lines", disk_full(real_copy_lines))     # PostgreSQL's COPY text
    with pytest.raises(bulk.ClearingFailed) as failed:
        clear(uow, folder, tmp_path / "failed.ndjson", workers=2, partitions=4)
    assert failed.value.status == 503
    assert sorted(p.path for p in failed.value.problems) == ["worker 0", "worker 1"]   # every worker, not the first
    assert all(p.code == "worker_failed" and "No space left on device" in p.message and "again" in p.message
               for p in failed.value.problems)

    monkeypatch.setattr(bulk, "insert_rows", real_insert_rows)
    monkeypatch.setattr(bulk, "copy_lines", real_copy_lines)
    summary, results = clear(uow, folder, tmp_path / "rerun.ndjson", workers=2, partitions=4)
    assert results == expected and summary.decisions == expected_summary.decisions


def test_a_batch_that_stops_in_one_process_is_the_same_clear_error(cbec_world, uow, db, tmp_path, monkeypatch):
    """With one worker (SQLite's default) the failure is a ClearingFailed too, not a traceback."""
    folder = files(tmp_path, 50)

    def disk_full(conn, table, *args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(bulk, "insert_rows", disk_full)
    monkeypatch.setattr(bulk, "copy_lines", disk_full)       # PostgreSQL's COPY text
    with pytest.raises(bulk.ClearingFailed) as failed:
        clear(uow, folder, tmp_path / "failed.ndjson", workers=1, partitions=2)
    [problem] = failed.value.problems
    assert failed.value.status == 503 and problem.code == "clearing_failed"
    assert "No space left on device" in problem.message and "again" in problem.message


def test_a_parcel_copied_on_postgresql_fills_every_column_of_its_row():
    """Pass 2 writes a parcel's assessed columns, pass 3 the decided ones: all of the row's, once."""
    copied = bulk.PARCEL_ASSESSED + bulk.PARCEL_DECIDED
    assert sorted(copied) == sorted(bulk.PARCEL_COLUMNS) == sorted(c.name for c in cbec_parcels.columns)
