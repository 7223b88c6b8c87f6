"""Small builders for tariff tests: a line with the measures a test names, an item, a quote."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from tradewindow.tariff.model import (
    Agreement,
    AgreementMember,
    ExchangeRate,
    Incoterm,
    LineMeasures,
    Measure,
    MeasureKind,
    OriginCertificate,
    OverrideRates,
    Quote,
    QuoteItem,
    QuoteRequest,
    Regime,
    TariffLine,
    Valuation,
    quote,
)

D = Decimal
DAY = date(2025, 6, 2)
SINCE = date(2020, 1, 1)

AGREEMENTS = {
    "CN-AU": Agreement("CN-AU", "China-Australia", (AgreementMember("AU"),), date(2015, 12, 20)),
    "CN-KR": Agreement("CN-KR", "China-Korea", (AgreementMember("KR"),), date(2015, 12, 20)),
    "RCEP": Agreement("RCEP", "RCEP", (AgreementMember("JP"), AgreementMember("AU"),
                                       AgreementMember("PH", date(2023, 6, 2))),
                      date(2022, 1, 1)),
}


def tariff_line(*, code: str = "99999999", unit: str = "NAR", mfn: str | None = "0.1",
                general: str | None = "1", provisional: str | None = None,
                duty_specific: str = "0", conventional: dict[str, str] | None = None,
                additional: tuple[tuple[str, str, str], ...] = (),
                ct: str | None = None, ct_specific: str = "0", vat: str | None = "0.13",
                measures: tuple[Measure, ...] = ()) -> LineMeasures:
    """additional: (kind, origin, ad valorem) triples."""

    def measure(kind: MeasureKind, av: str, sp: str = "0", **extra: str) -> Measure:
        return Measure(code, kind, SINCE, None, D(av), D(sp), **extra)

    built: list[Measure] = []
    if mfn is not None:
        built.append(measure(MeasureKind.MFN, mfn, duty_specific))
    if general is not None:
        built.append(measure(MeasureKind.GENERAL, general))
    if provisional is not None:
        built.append(measure(MeasureKind.PROVISIONAL, provisional, duty_specific))
    for agreement, rate in (conventional or {}).items():
        built.append(measure(MeasureKind.CONVENTIONAL, rate, agreement=agreement))
    for kind, origin, rate in additional:
        built.append(measure(MeasureKind(kind), rate, origin=origin))
    if ct is not None:
        built.append(measure(MeasureKind.CONSUMPTION_TAX, ct, ct_specific))
    if vat is not None:
        built.append(measure(MeasureKind.VAT, vat))
    line = TariffLine(code, code[:6], "test goods", unit, SINCE)
    return LineMeasures(line, (*built, *measures))


def item(customs_value: str | None = None, *, currency: str = "CNY", exchange_rate: str = "1",
         price: str | None = None, incoterm: Incoterm = Incoterm.CIF, freight: str = "0",
         insurance: str | None = None, quantity: str = "1", origin: str | None = "DE",
         certificate: str | None = None, line: LineMeasures | None = None,
         override: OverrideRates | None = None) -> QuoteItem:
    valuation = Valuation(currency, D(exchange_rate),
                          D(customs_value) if customs_value is not None else None,
                          D(price) if price is not None else None, incoterm, D(freight),
                          D(insurance) if insurance is not None else None)
    cert = OriginCertificate(certificate, "CO-1") if certificate else None
    return QuoteItem(valuation, D(quantity), origin, cert, line, override)


def quote_items(*items: QuoteItem, regime: Regime = Regime.GENERAL, on_date: date = DAY) -> Quote:
    return quote(QuoteRequest(regime, on_date, tuple(items)), AGREEMENTS)


def rates(duty: str = "0", vat: str = "0.13", ct: str = "0", duty_specific: str = "0",
          ct_specific: str = "0") -> OverrideRates:
    return OverrideRates(D(duty), D(duty_specific), D(ct), D(ct_specific), D(vat))


def usd_at_7_1795(day: date) -> list[ExchangeRate]:
    """One open-ended USD rate of 7.1795 from the first of `day`'s month."""
    return [ExchangeRate("USD", D("7.1795"), day.replace(day=1), None)]
