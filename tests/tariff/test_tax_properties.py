"""Invariants of the quote engine, for any amounts and rates (hypothesis)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradewindow.platform.errors import ValidationFailed
from tradewindow.platform.money import FEN
from tradewindow.tariff.model import (
    CBEC_ORDER_LIMIT,
    Incoterm,
    LineMeasures,
    Measure,
    MeasureKind,
    QuoteItem,
    QuoteRequest,
    Rate,
    Regime,
    Requirement,
    TariffLine,
    TaxRates,
    Valuation,
    cbec_taxes,
    cif_in_currency,
    customs_value_cny,
    duty_amount,
    general_trade_taxes,
    parse_schedule_rows,
    quote,
    render_schedule_rows,
)

from .builders import AGREEMENTS, DAY, D, item, quote_items, rates, tariff_line

amounts = st.decimals(min_value=0, max_value=10_000_000, places=2, allow_nan=False,
                      allow_infinity=False)
small_amounts = st.decimals(min_value=0, max_value=2_400, places=2, allow_nan=False,
                            allow_infinity=False)
quantities = st.decimals(min_value=D("0.001"), max_value=100_000, places=3, allow_nan=False,
                         allow_infinity=False)
duty_rates = st.decimals(min_value=0, max_value=3, places=4, allow_nan=False, allow_infinity=False)
ct_rates = st.decimals(min_value=0, max_value=D("0.9"), places=4, allow_nan=False,
                       allow_infinity=False)
vat_rates = st.sampled_from([D("0.13"), D("0.09"), D("0.03"), D("0")])
specifics = st.decimals(min_value=0, max_value=1_000, places=2, allow_nan=False,
                        allow_infinity=False)


@st.composite
def tax_rates(draw) -> TaxRates:
    return TaxRates(Rate(draw(duty_rates), draw(specifics)), Rate(draw(ct_rates), draw(specifics)),
                    draw(vat_rates))


def is_fen(amount: Decimal) -> bool:
    return amount == amount.quantize(FEN) and amount.as_tuple().exponent >= -2


@given(amounts, quantities, tax_rates())
def test_taxes_are_never_negative(value, quantity, rates_):
    for taxes in (general_trade_taxes(value, quantity, rates_), cbec_taxes(value, quantity, rates_)):
        assert min(taxes.duty, taxes.consumption_tax, taxes.vat) >= 0


@given(amounts, quantities, tax_rates())
def test_every_tax_line_is_a_whole_number_of_fen(value, quantity, rates_):
    for taxes in (general_trade_taxes(value, quantity, rates_), cbec_taxes(value, quantity, rates_)):
        assert all(is_fen(a) for a in (taxes.duty, taxes.consumption_tax, taxes.vat, taxes.total))


@given(amounts, quantities, tax_rates())
def test_cbec_taxes_never_exceed_general_trade_taxes(value, quantity, rates_):
    cbec = cbec_taxes(value, quantity, rates_)
    general = general_trade_taxes(value, quantity, rates_)
    assert cbec.consumption_tax <= general.consumption_tax
    assert cbec.vat <= general.vat
    assert cbec.total <= general.total


@given(st.lists(st.tuples(small_amounts, st.sampled_from(["0", "0.1", "0.15"]),
                          st.sampled_from(["0", "0.15", "0.3"]), vat_rates),
                min_size=1, max_size=2))
def test_a_cbec_quote_is_never_above_the_general_quote_for_the_same_items(specs):
    items = [item(str(value), override=rates(duty=duty, ct=ct, vat=str(vat)))
             for value, duty, ct, vat in specs]
    assert sum((D(str(v)) for v, *_ in specs), D(0)) <= CBEC_ORDER_LIMIT
    cbec = quote_items(*items, regime=Regime.CBEC)
    general = quote_items(*items, regime=Regime.GENERAL)
    assert cbec.totals.total <= general.totals.total


@given(st.lists(st.tuples(amounts, quantities, tax_rates()), min_size=1, max_size=5),
       st.sampled_from([Regime.GENERAL, Regime.CBEC]))
@settings(max_examples=60)
def test_totals_equal_the_sum_of_the_rounded_lines(specs, regime):
    items = [item(str(value), quantity=str(quantity),
                  override=rates(duty=str(min(r.duty.ad_valorem, D(1))),
                                 duty_specific=str(r.duty.specific),
                                 ct=str(r.consumption_tax.ad_valorem),
                                 ct_specific=str(r.consumption_tax.specific), vat=str(r.vat)))
             for value, quantity, r in specs]
    if regime is Regime.CBEC:
        items = items[:1]
        items[0] = item("100", quantity="1", override=items[0].override)
    quoted = quote_items(*items, regime=regime)
    for field in ("customs_value_cny", "duty", "consumption_tax", "vat", "total"):
        assert getattr(quoted.totals, field) == sum((getattr(i.taxes, field) for i in quoted.items),
                                                    D(0))
    for line in quoted.items:
        assert line.taxes.total == line.taxes.duty + line.taxes.consumption_tax + line.taxes.vat
    body = quoted.as_dict()
    for amount in [*body["totals"].values(), *(i["total"] for i in body["items"])]:
        assert len(amount.split(".")[1]) == 2


@given(st.decimals(min_value=0, max_value=1_000_000, places=3, allow_nan=False,
                   allow_infinity=False))
def test_rounding_is_half_up_to_the_fen(value):
    # duty at 100 % equals the value rounded: a third decimal of 5 always rounds up
    rounded = duty_amount(value, D(0), Rate(D(1)))
    assert -D("0.005") < rounded - value <= D("0.005")
    if value.as_tuple().digits[-1:] == (5,) and value.as_tuple().exponent == -3:
        assert rounded > value


@given(amounts, st.sampled_from(list(Incoterm)), small_amounts,
       st.one_of(st.none(), small_amounts), st.decimals(min_value=D("0.0001"), max_value=20,
                                                        places=6, allow_nan=False,
                                                        allow_infinity=False))
def test_the_customs_value_is_exact_cif_times_the_rate_rounded_once(price, incoterm, freight,
                                                                    insurance, rate):
    valuation = Valuation("USD", rate, price=price, incoterm=incoterm,
                          freight=freight if incoterm is Incoterm.FOB else D(0),
                          insurance=None if incoterm is Incoterm.CIF else insurance)
    cif, _ = cif_in_currency(valuation)
    assert cif >= price
    assert customs_value_cny(valuation) == (cif * rate).quantize(FEN, rounding="ROUND_HALF_UP")


measure_kinds = st.sampled_from([k for k in MeasureKind])


@st.composite
def measures(draw) -> Measure:
    kind = draw(measure_kinds)
    start = draw(st.dates(min_value=date(2000, 1, 1), max_value=date(2030, 1, 1)))
    end = draw(st.one_of(st.none(), st.dates(min_value=start, max_value=date(2040, 1, 1))))
    av = draw(ct_rates if kind is MeasureKind.CONSUMPTION_TAX else
              vat_rates if kind is MeasureKind.VAT else duty_rates)
    specific = D(0) if kind in (MeasureKind.VAT, MeasureKind.REQUIREMENT) else draw(specifics)
    if kind is MeasureKind.REQUIREMENT:
        av = D(0)
    return Measure(
        "12345678", kind, start, end, av, specific,
        agreement="CN-AU" if kind is MeasureKind.CONVENTIONAL else None,
        origin="AU" if kind.value in ("anti_dumping", "countervailing", "safeguard",
                                      "retaliatory") else None,
        requirement=draw(st.sampled_from(list(Requirement))) if kind is MeasureKind.REQUIREMENT
        else None,
        source=draw(st.text(alphabet="abc ,\"é率", max_size=10)).strip())


@given(measures())
def test_a_measure_survives_the_csv_round_trip(measure):
    line = LineMeasures(TariffLine("12345678", "123456", "goods, \"quoted\"", "KGM",
                                   date(2017, 1, 1)), (measure,))
    parsed, problems = parse_schedule_rows(render_schedule_rows([line]))
    assert problems == []
    (back,) = parsed["12345678"].measures
    assert back == measure


@st.composite
def quote_requests(draw) -> QuoteRequest:
    """Items on tariff lines (MFN, provisional, conventional rates, additional duties, any origin
    and certificate) or on rates given with the request, general trade or CBEC, FOB, CFR or CIF."""
    def one_item(index: int) -> QuoteItem:
        price = str(draw(small_amounts) + D("0.01"))
        incoterm = draw(st.sampled_from(list(Incoterm)))
        common = {"quantity": str(draw(quantities)), "origin": draw(st.sampled_from([None, "DE", "AU", "JP", "US"])),
                  "price": price, "incoterm": incoterm, "freight": "12.5" if incoterm is Incoterm.FOB else "0",
                  "certificate": draw(st.sampled_from([None, "CN-AU", "RCEP"]))}
        if draw(st.booleans()):
            return item(**common, override=rates(duty=str(draw(duty_rates)), ct=str(draw(ct_rates)),
                                                  vat=str(draw(vat_rates)), ct_specific=str(draw(specifics))))
        line = tariff_line(code=f"3304990{index}", mfn=str(draw(duty_rates)),
                           provisional=draw(st.sampled_from([None, "0.02"])),
                           conventional=draw(st.sampled_from([{}, {"CN-AU": "0"}, {"RCEP": "0.05", "CN-AU": "0.2"}])),
                           additional=draw(st.sampled_from([(), (("retaliatory", "US", "0.25"),)])),
                           ct=draw(st.sampled_from([None, "0.15"])), vat=str(draw(vat_rates)))
        return item(**common, line=line)
    count = draw(st.integers(1, 3))
    return QuoteRequest(draw(st.sampled_from(list(Regime))), DAY, tuple(one_item(i) for i in range(count)))


@given(quote_requests())
@settings(max_examples=150)
def test_a_quote_without_explanations_has_the_same_figures(request):
    """`quote(..., explain=False)` (the e-commerce assessment's) is the quote with its items'
    explanations left empty: every figure, rate applied, offer and saving the same, or the same
    refusal."""
    try:
        explained = quote(request, AGREEMENTS)
    except ValidationFailed as refused:
        with pytest.raises(ValidationFailed) as also:
            quote(request, AGREEMENTS, explain=False)
        assert also.value.problems == refused.problems
        return
    plain = quote(request, AGREEMENTS, explain=False)
    assert all(i.explanation == () for i in plain.items) and all(i.explanation for i in explained.items)
    assert plain == replace(explained, items=tuple(replace(i, explanation=()) for i in explained.items))
