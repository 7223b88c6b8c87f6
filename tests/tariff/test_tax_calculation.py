"""Hand-worked examples of DESIGN.md §4.2. Every figure in an assertion was worked out by hand in
the comment above it: a line is rounded half-up to the fen and the next line uses the rounded
figure."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from tradewindow.platform.errors import ValidationFailed
from tradewindow.tariff.model import (
    DutyKind,
    Incoterm,
    Rate,
    Regime,
    TaxRates,
    Valuation,
    cbec_taxes,
    customs_value_cny,
    general_trade_taxes,
    select_duty_rate,
)

from .builders import AGREEMENTS, DAY, D, item, quote_items, rates, tariff_line


def lines_of(quoted) -> tuple[Decimal, Decimal, Decimal, Decimal]:
    return (quoted.taxes.customs_value_cny, quoted.taxes.duty, quoted.taxes.consumption_tax,
            quoted.taxes.vat)


# --------------------------------------------------------------------------------------------
# The tax lines, as a table: value, quantity, duty (av, specific), CT (av, specific), VAT
# --------------------------------------------------------------------------------------------

TAX_TABLE = [
    # 1. The worked check of the issue: a car, CIF USD 50,000 at 7.1795 = 358,975.00;
    #    duty 15 % = 53,846.25; CT 9 %: (358,975 + 53,846.25) / 0.91 × 0.09 = 40,828.475 -> 40,828.48;
    #    VAT: (358,975 + 53,846.25 + 40,828.48) × 0.13 = 453,649.73 × 0.13 = 58,974.4649 -> 58,974.46
    pytest.param("358975.00", "1", ("0.15", "0"), ("0.09", "0"), "0.13",
                 ("53846.25", "40828.48", "58974.46"), id="car-2.0-2.5l-worked-check"),
    # 2. Ad valorem duty: 1,234.56 × 10 % = 123.456 -> 123.46;
    #    VAT (1,234.56 + 123.46) × 13 % = 1,358.02 × 0.13 = 176.5426 -> 176.54
    pytest.param("1234.56", "1", ("0.1", "0"), ("0", "0"), "0.13",
                 ("123.46", "0.00", "176.54"), id="ad-valorem-duty"),
    # 3. Specific duty and specific CT (beer-like): 100 l, value 1,000; duty 100 × 3 = 300.00;
    #    CT (1,000 + 300 + 25) / 1 × 0 + 100 × 0.25 = 25.00; VAT (1,000 + 300 + 25) × 13 % = 172.25
    pytest.param("1000", "100", ("0", "3"), ("0", "0.25"), "0.13",
                 ("300.00", "25.00", "172.25"), id="specific-duty-and-ct"),
    # 4. Compound duty: value 20,000, 2 units, 5 % + 100 CNY/unit = 1,000 + 200 = 1,200.00;
    #    VAT 21,200 × 13 % = 2,756.00
    pytest.param("20000", "2", ("0.05", "100"), ("0", "0"), "0.13",
                 ("1200.00", "0.00", "2756.00"), id="compound-duty"),
    # 5. Compound CT (baijiu-like, 20 % + 1 CNY/l), 10 l, value 2,000: duty 10 % = 200.00;
    #    CT (2,000 + 200 + 10) / 0.8 × 0.2 + 10 = 2,762.5 × 0.2 + 10 = 552.50 + 10 = 562.50;
    #    VAT (2,000 + 200 + 562.50) × 13 % = 359.125 -> 359.13 (half-up)
    pytest.param("2000", "10", ("0.1", "0"), ("0.2", "1"), "0.13",
                 ("200.00", "562.50", "359.13"), id="compound-ct-spirits"),
    # 6. 9 % VAT (cherries): value 30,000, duty 10 % = 3,000.00; VAT 33,000 × 9 % = 2,970.00
    pytest.param("30000", "500", ("0.1", "0"), ("0", "0"), "0.09",
                 ("3000.00", "0.00", "2970.00"), id="vat-9-percent"),
    # 7. Whisky-like CT 10 % after a 5 % duty: value 8,000, duty 400.00;
    #    CT 8,400 / 0.9 × 0.1 = 933.333 -> 933.33; VAT (8,000 + 400 + 933.33) × 13 % = 1,213.3329 -> 1,213.33
    pytest.param("8000", "1", ("0.05", "0"), ("0.1", "0"), "0.13",
                 ("400.00", "933.33", "1213.33"), id="ct-10-percent"),
    # 8. Car over 4.0 l, CT 40 %: value 1,000,000, duty 150,000.00;
    #    CT 1,150,000 / 0.6 × 0.4 = 766,666.667 -> 766,666.67;
    #    VAT (1,000,000 + 150,000 + 766,666.67) × 13 % = 249,166.6671 -> 249,166.67
    pytest.param("1000000", "1", ("0.15", "0"), ("0.4", "0"), "0.13",
                 ("150000.00", "766666.67", "249166.67"), id="car-over-4l-ct-40"),
    # 9. Battery-electric car, no CT: value 200,000, duty 30,000.00; VAT 230,000 × 13 % = 29,900.00
    pytest.param("200000", "1", ("0.15", "0"), ("0", "0"), "0.13",
                 ("30000.00", "0.00", "29900.00"), id="battery-electric-no-ct"),
    # 10. Medicines at the reduced 3 % VAT, duty 0: value 12,345.67; VAT × 3 % = 370.3701 -> 370.37
    pytest.param("12345.67", "1", ("0", "0"), ("0", "0"), "0.03",
                 ("0.00", "0.00", "370.37"), id="reduced-vat-3-percent"),
]


@pytest.mark.parametrize(("value", "quantity", "duty", "ct", "vat", "expected"), TAX_TABLE)
def test_tax_lines_match_the_hand_worked_table(value, quantity, duty, ct, vat, expected):
    taxes = general_trade_taxes(D(value), D(quantity),
                                TaxRates(Rate(D(duty[0]), D(duty[1])), Rate(D(ct[0]), D(ct[1])), D(vat)))
    assert (str(taxes.duty), str(taxes.consumption_tax), str(taxes.vat)) == expected


def test_the_car_worked_check_end_to_end_from_usd():
    # CIF USD 50,000 × 7.1795 = 358,975.00; then as row 1 of the table; total taxes
    # 53,846.25 + 40,828.48 + 58,974.46 = 153,649.19
    quoted = quote_items(item("50000", currency="USD", exchange_rate="7.1795",
                              line=tariff_line(mfn="0.15", ct="0.09", vat="0.13")))
    assert lines_of(quoted.items[0]) == (D("358975.00"), D("53846.25"), D("40828.48"),
                                         D("58974.46"))
    assert quoted.totals.total == D("153649.19")


# --------------------------------------------------------------------------------------------
# Customs value
# --------------------------------------------------------------------------------------------

def test_fob_adds_freight_and_the_insurance_given():
    # (10,000 + 500 + 30) × 7.1795 = 10,530 × 7.1795 = 75,600.135 -> 75,600.14
    valuation = Valuation("USD", D("7.1795"), price=D("10000"), incoterm=Incoterm.FOB,
                          freight=D("500"), insurance=D("30"))
    assert customs_value_cny(valuation) == D("75600.14")


def test_fob_with_unknown_insurance_adds_three_per_mille_of_cost_and_freight():
    # insurance = (10,000 + 500) × 0.3 % = 31.50; CIF 10,531.50 × 7.1795 = 75,610.90425 -> 75,610.90
    valuation = Valuation("USD", D("7.1795"), price=D("10000"), incoterm=Incoterm.FOB,
                          freight=D("500"))
    assert customs_value_cny(valuation) == D("75610.90")


def test_cfr_with_unknown_insurance_adds_three_per_mille_of_the_price():
    # CFR EUR 2,000 × 1.003 = 2,006 × 7.8123 = 15,671.4738 -> 15,671.47
    valuation = Valuation("EUR", D("7.8123"), price=D("2000"), incoterm=Incoterm.CFR)
    assert customs_value_cny(valuation) == D("15671.47")


def test_insurance_is_not_rounded_in_the_invoice_currency_only_the_cny_value_is():
    # CFR USD 1,234.57: insurance 3.70371 kept exact, CIF 1,238.27371 × 7.1795 = 8,890.186... -> 8,890.19.
    # Rounding the insurance first (3.70) would give 1,238.27 × 7.1795 = 8,890.16: not what we do.
    valuation = Valuation("USD", D("7.1795"), price=D("1234.57"), incoterm=Incoterm.CFR)
    assert customs_value_cny(valuation) == D("8890.19")


def test_a_jpy_value_converts_at_the_rate_for_one_yen():
    # JPY 1,000,000 × 0.047812 = 47,812.00
    assert customs_value_cny(Valuation("JPY", D("0.047812"), customs_value=D("1000000"))) \
        == D("47812.00")


def test_fob_quote_taxes_the_converted_value():
    # FOB USD 1,000 + freight 100, insurance unknown 3.30: CIF 1,103.30 × 7.2 = 7,943.76;
    # duty 10 % = 794.376 -> 794.38; VAT (7,943.76 + 794.38) × 13 % = 1,135.9582 -> 1,135.96
    quoted = quote_items(item(price="1000", incoterm=Incoterm.FOB, freight="100", currency="USD",
                              exchange_rate="7.2", line=tariff_line(mfn="0.1")))
    assert lines_of(quoted.items[0]) == (D("7943.76"), D("794.38"), D("0"), D("1135.96"))


# --------------------------------------------------------------------------------------------
# The duty rate by origin
# --------------------------------------------------------------------------------------------

def test_unknown_origin_pays_the_general_rate():
    # value 10,000, general 180 % = 18,000.00; VAT 28,000 × 13 % = 3,640.00
    quoted = quote_items(item("10000", origin=None, line=tariff_line(mfn="0.14", general="1.8")))
    assert lines_of(quoted.items[0])[1:] == (D("18000.00"), D("0"), D("3640.00"))
    assert quoted.items[0].duty_rate_applied.kind is DutyKind.GENERAL


def test_known_origin_pays_the_mfn_rate():
    # value 10,000, MFN 14 % = 1,400.00; VAT 11,400 × 13 % = 1,482.00
    quoted = quote_items(item("10000", origin="DE", line=tariff_line(mfn="0.14", general="1.8")))
    assert lines_of(quoted.items[0])[1:] == (D("1400.00"), D("0"), D("1482.00"))
    assert quoted.items[0].duty_rate_applied.kind is DutyKind.MFN


def test_a_provisional_rate_in_force_takes_the_place_of_mfn():
    # whisky from GB: MFN 10 %, provisional 5 %: value 8,000 -> duty 400.00, CT 933.33,
    # VAT 1,213.33 (table row 7)
    line = tariff_line(mfn="0.1", provisional="0.05", ct="0.1")
    quoted = quote_items(item("8000", origin="GB", line=line))
    assert lines_of(quoted.items[0])[1:] == (D("400.00"), D("933.33"), D("1213.33"))
    assert quoted.items[0].duty_rate_applied.kind is DutyKind.PROVISIONAL


WINE = tariff_line(mfn="0.14", general="1.8", conventional={"CN-AU": "0"}, ct="0.1")


def test_a_conventional_rate_needs_a_certificate_and_without_one_the_quote_shows_the_saving():
    # AU wine, value 10,000, no certificate: MFN 14 % = 1,400.00;
    # CT 11,400 / 0.9 × 0.1 = 1,266.667 -> 1,266.67; VAT 12,666.67 × 13 % = 1,646.6671 -> 1,646.67.
    # With the CN-AU rate 0 %: duty 0; CT 10,000 / 0.9 × 0.1 = 1,111.11; VAT 11,111.11 × 13 %
    # = 1,444.4443 -> 1,444.44; so the certificate would save
    # (1,400 + 1,266.67 + 1,646.67) − (0 + 1,111.11 + 1,444.44) = 4,313.34 − 2,555.55 = 1,757.79
    quoted = quote_items(item("10000", origin="AU", line=WINE))
    applied = quoted.items[0].duty_rate_applied
    assert lines_of(quoted.items[0])[1:] == (D("1400.00"), D("1266.67"), D("1646.67"))
    assert applied.kind is DutyKind.MFN
    assert applied.best_offer.agreement == "CN-AU"
    assert (applied.duty_saving, applied.total_saving) == (D("1400.00"), D("1757.79"))
    assert applied.as_dict()["best_agreement"]["total_saving"] == "1757.79"


def test_with_a_certificate_the_conventional_rate_applies():
    # as above with a CN-AU certificate: duty 0, CT 1,111.11, VAT 1,444.44
    quoted = quote_items(item("10000", origin="AU", certificate="CN-AU", line=WINE))
    applied = quoted.items[0].duty_rate_applied
    assert lines_of(quoted.items[0])[1:] == (D("0.00"), D("1111.11"), D("1444.44"))
    assert (applied.kind, applied.agreement, applied.best_offer) == (DutyKind.CONVENTIONAL, "CN-AU",
                                                                     None)


def test_a_certificate_under_an_agreement_that_does_not_cover_the_origin_is_not_used():
    # FR is no member of CN-AU: MFN 14 % = 1,400.00 on 10,000
    quoted = quote_items(item("10000", origin="FR", certificate="CN-AU", line=WINE))
    assert quoted.items[0].taxes.duty == D("1400.00")
    assert quoted.items[0].duty_rate_applied.kind is DutyKind.MFN
    assert any("FR is not a member" in e for e in quoted.items[0].explanation)


def test_the_lowest_rate_wins_a_provisional_rate_below_the_conventional_one_stays():
    # KR with a CN-KR certificate: provisional 3 % < conventional 5 %: duty 1,000 × 3 % = 30.00;
    # VAT 1,030 × 13 % = 133.90
    line = tariff_line(mfn="0.1", provisional="0.03", conventional={"CN-KR": "0.05"})
    quoted = quote_items(item("1000", origin="KR", certificate="CN-KR", line=line))
    assert lines_of(quoted.items[0])[1:] == (D("30.00"), D("0"), D("133.90"))
    assert quoted.items[0].duty_rate_applied.kind is DutyKind.PROVISIONAL


def test_the_lowest_rate_wins_a_conventional_rate_below_the_provisional_one_applies():
    # conventional 2 % < provisional 3 %: duty 20.00; VAT 1,020 × 13 % = 132.60
    line = tariff_line(mfn="0.1", provisional="0.03", conventional={"CN-KR": "0.02"})
    quoted = quote_items(item("1000", origin="KR", certificate="CN-KR", line=line))
    assert lines_of(quoted.items[0])[1:] == (D("20.00"), D("0"), D("132.60"))
    assert quoted.items[0].duty_rate_applied.kind is DutyKind.CONVENTIONAL


def test_an_agreement_covers_a_member_only_from_its_own_entry_into_force():
    # RCEP for PH from 2023-06-02: on 2023-06-01 MFN 10 %, on 2023-06-02 the RCEP rate 0 %
    line = tariff_line(mfn="0.1", conventional={"RCEP": "0"})
    before = select_duty_rate(line, "PH", "RCEP", date(2023, 6, 1), AGREEMENTS)
    after = select_duty_rate(line, "PH", "RCEP", date(2023, 6, 2), AGREEMENTS)
    assert (before.kind, after.kind) == (DutyKind.MFN, DutyKind.CONVENTIONAL)


def test_an_additional_duty_by_origin_is_added_on_top():
    # aluminium-like: value 100,000, MFN 5 % + anti-dumping 10 % on AQ = 15,000.00;
    # VAT 115,000 × 13 % = 14,950.00. From AU: duty 5,000.00; VAT 105,000 × 13 % = 13,650.00
    line = tariff_line(mfn="0.05", additional=(("anti_dumping", "AQ", "0.1"),))
    dumped = quote_items(item("100000", origin="AQ", line=line)).items[0]
    fair = quote_items(item("100000", origin="AU", line=line)).items[0]
    assert lines_of(dumped)[1:] == (D("15000.00"), D("0"), D("14950.00"))
    assert lines_of(fair)[1:] == (D("5000.00"), D("0"), D("13650.00"))
    assert [m.origin for m in dumped.duty_rate_applied.additional] == ["AQ"]


def test_an_additional_duty_stays_on_top_of_a_conventional_rate():
    # AU wine with a certificate while an anti-dumping duty of 218.4 % is in force:
    # value 1,000, duty (0 + 218.4 %) = 2,184.00; CT (1,000 + 2,184) / 0.9 × 0.1 = 353.778 -> 353.78;
    # VAT (1,000 + 2,184 + 353.78) × 13 % = 459.9114 -> 459.91
    line = tariff_line(mfn="0.14", conventional={"CN-AU": "0"}, ct="0.1",
                       additional=(("anti_dumping", "AU", "2.184"),))
    quoted = quote_items(item("1000", origin="AU", certificate="CN-AU", line=line))
    assert lines_of(quoted.items[0])[1:] == (D("2184.00"), D("353.78"), D("459.91"))
    assert quoted.items[0].duty_rate_applied.kind is DutyKind.CONVENTIONAL


def test_rates_given_with_the_request_are_applied_as_an_override():
    # value 1,000, duty 20 %: 200.00; VAT 1,200 × 9 % = 108.00
    quoted = quote_items(item("1000", override=rates(duty="0.2", vat="0.09")))
    assert lines_of(quoted.items[0])[1:] == (D("200.00"), D("0"), D("108.00"))
    assert quoted.items[0].duty_rate_applied.kind is DutyKind.OVERRIDE


def test_totals_are_the_sums_of_the_rounded_lines():
    # item A: 1,234.56 at 10 % -> duty 123.46, VAT 176.54 (table row 2);
    # item B: 2,000 × 10 l at 10 % / CT 20 % + 1 -> duty 200.00, CT 562.50, VAT 359.13 (row 5);
    # totals: value 3,234.56; duty 323.46; CT 562.50; VAT 535.67; total 1,421.63
    quoted = quote_items(item("1234.56", line=tariff_line(mfn="0.1")),
                         item("2000", quantity="10", line=tariff_line(mfn="0.1", ct="0.2",
                                                                      ct_specific="1")))
    totals = quoted.totals
    assert (totals.customs_value_cny, totals.duty, totals.consumption_tax, totals.vat,
            totals.total) == (D("3234.56"), D("323.46"), D("562.50"), D("535.67"), D("1421.63"))


# --------------------------------------------------------------------------------------------
# Cross-border e-commerce retail
# --------------------------------------------------------------------------------------------

def test_cbec_pays_no_duty_and_70_percent_of_ct_and_vat():
    # cosmetics 1,000, CT 15 %: full CT 1,000 / 0.85 × 0.15 = 176.4706 -> 176.47;
    # full VAT (1,000 + 0 + 176.47) × 13 % = 152.9411 -> 152.94;
    # × 70 %: CT 123.529 -> 123.53; VAT 107.058 -> 107.06; duty 0; total 230.59
    quoted = quote_items(item("1000", line=tariff_line(mfn="0.1", ct="0.15")), regime=Regime.CBEC)
    assert lines_of(quoted.items[0]) == (D("1000"), D("0"), D("123.53"), D("107.06"))
    assert quoted.totals.total == D("230.59")
    assert not quoted.cbec_single_item_over_limit


def test_cbec_with_a_compound_consumption_tax():
    # 2 l of baijiu worth 500: full CT (500 + 0 + 2) / 0.8 × 0.2 + 2 = 125.50 + 2 = 127.50;
    # full VAT (500 + 127.50) × 13 % = 81.575 -> 81.58; × 70 %: CT 89.25, VAT 57.106 -> 57.11
    taxes = cbec_taxes(D("500"), D("2"), TaxRates(Rate(D("0.1")), Rate(D("0.2"), D("1")), D("0.13")))
    assert (taxes.duty, taxes.consumption_tax, taxes.vat) == (D("0"), D("89.25"), D("57.11"))


def test_a_cbec_order_of_exactly_5000_is_within_the_limit():
    # 5,000, VAT 13 %: full VAT 650.00 × 70 % = 455.00
    quoted = quote_items(item("5000", line=tariff_line(mfn="0.1")), regime=Regime.CBEC)
    assert lines_of(quoted.items[0])[1:] == (D("0"), D("0"), D("455.00"))


def test_a_single_cbec_item_above_5000_pays_full_duty_and_taxes_and_is_flagged():
    # one item, quantity 1, 6,000: duty 10 % = 600.00; VAT 6,600 × 13 % = 858.00
    quoted = quote_items(item("6000", origin="JP", line=tariff_line(mfn="0.1")), regime=Regime.CBEC)
    assert lines_of(quoted.items[0])[1:] == (D("600.00"), D("0"), D("858.00"))
    assert quoted.cbec_single_item_over_limit
    assert quoted.as_dict()["cbec_single_item_over_limit"] is True


def test_a_cbec_order_of_several_items_above_5000_is_refused():
    line = tariff_line(mfn="0.1")
    with pytest.raises(ValidationFailed) as refused:
        quote_items(item("3000", line=line), item("2000.01", line=line), regime=Regime.CBEC)
    assert refused.value.code == "cbec_order_limit_exceeded"


def test_a_cbec_item_of_quantity_two_above_5000_is_refused():
    with pytest.raises(ValidationFailed) as refused:
        quote_items(item("6000", quantity="2", line=tariff_line(mfn="0.1")), regime=Regime.CBEC)
    assert refused.value.code == "cbec_order_limit_exceeded"


def test_a_line_without_a_vat_rate_is_reported_against_its_item():
    with pytest.raises(ValidationFailed) as refused:
        quote_items(item("100", line=tariff_line()), item("100", line=tariff_line(vat=None)))
    assert [(p.path, p.code) for p in refused.value.problems] == [
        ("items[1].tariff_code", "no_rate_in_force")]


def test_the_quote_says_which_rate_it_applied_and_why():
    quoted = quote_items(item("10000", origin="AU", line=WINE), on_date=DAY)
    body = quoted.as_dict()
    assert body["items"][0]["duty_rate_applied"]["kind"] == "mfn"
    assert body["items"][0]["duty"] == "1400.00"
    assert any("MFN rate 14%" in e for e in body["items"][0]["explanation"])
    assert any("CN-AU" in e and "would save 1757.79" in e for e in body["items"][0]["explanation"])
    assert body["totals"]["total"] == "4313.34"
