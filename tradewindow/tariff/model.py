"""The tariff domain: national lines, their measures, trade agreements, exchange rates and the
tax quote engine (DESIGN.md §4.2). Pure: no I/O, no database, no web framework.

Conventions used throughout
---------------------------
- Rates are fractions as Decimals: 0.15 is 15 %. Ad valorem duty rates may exceed 1 (general
  rates of 180 %, anti-dumping duties of 218.4 %); consumption tax ad valorem is below 1 (it is
  grossed up by 1 / (1 − rate)); VAT lies in 0..1.
- A specific amount (duty or consumption tax) is CNY per unit of the line's unit, and a quoted
  quantity is always in the line's unit.
- Units are UN/ECE Recommendation 20 codes. Counted goods (cars, phones, laptops) use `NAR`
  ("number of articles"), never C62 or H87, so one counted unit has one spelling; mass is `KGM`,
  volume `LTR`. `UNITS` lists the codes a schedule may use.
- Validity: `valid_from` and `valid_to` are both inclusive business dates; `valid_to` None means
  open-ended.
- Amounts are CNY Decimals; each tax line is rounded half-up to the fen with `fen()`, and the next
  line is computed from the rounded figure.

The CSV formats of a schedule, of agreements and of exchange rates are described in
`tradewindow/tariff/data/README.md`; `parse_*_rows` / `render_*_rows` here convert them.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from enum import StrEnum
from functools import cache
from typing import Protocol

import pycountry

from tradewindow.platform.errors import Problem, Problems, ValidationFailed
from tradewindow.platform.fields import FieldReader
from tradewindow.platform.money import fen, parse_decimal

ZERO = Decimal(0)
ONE = Decimal(1)

# GACC valuation rule (Customs valuation measures, art. on insurance): when the insurance cost is
# not known it is taken as 3 ‰ of cost plus freight.
UNKNOWN_INSURANCE_RATE = Decimal("0.003")
# Cross-border e-commerce retail imports: duty 0, consumption tax and VAT at 70 % of the full
# amount, for orders up to 5,000 CNY (MOF/GACC/STA announcement 2018 No. 49).
CBEC_TAX_SHARE = Decimal("0.7")
CBEC_ORDER_LIMIT = Decimal("5000")
CBEC_ANNUAL_LIMIT = Decimal("26000")

# UN/ECE Rec. 20 codes a schedule may use. Add codes here, not ad-hoc spellings.
UNITS: dict[str, str] = {
    "NAR": "number of articles",
    "KGM": "kilogram",
    "GRM": "gram",
    "TNE": "tonne",
    "LTR": "litre",
    "MLT": "millilitre",
    "MTR": "metre",
    "MTK": "square metre",
    "MTQ": "cubic metre",
    "PR": "pair",
    "KWH": "kilowatt hour",
}
# What people type in a quote's `unit` field, mapped to the Rec. 20 code it means.
UNIT_ALIASES: dict[str, str] = {
    "unit": "NAR", "units": "NAR", "piece": "NAR", "pieces": "NAR", "pcs": "NAR", "pc": "NAR",
    "c62": "NAR", "h87": "NAR", "set": "NAR", "vehicle": "NAR",
    "kg": "KGM", "g": "GRM", "t": "TNE", "l": "LTR", "litre": "LTR", "liter": "LTR", "ml": "MLT",
    "m": "MTR", "m2": "MTK", "m3": "MTQ",
}


# --------------------------------------------------------------------------------------------
# Code lists
# --------------------------------------------------------------------------------------------

class Regime(StrEnum):
    GENERAL = "general"     # general trade
    CBEC = "cbec"           # cross-border e-commerce retail import


class Incoterm(StrEnum):
    FOB = "FOB"
    CFR = "CFR"
    CIF = "CIF"


class Requirement(StrEnum):
    IMPORT_LICENCE = "import_licence"
    QUARANTINE = "quarantine"
    CCC = "ccc"
    CBEC_POSITIVE_LIST = "cbec_positive_list"


class MeasureKind(StrEnum):
    # the base duty rates; exactly one of them is chosen for an item (select_duty_rate)
    MFN = "mfn"
    PROVISIONAL = "provisional"          # replaces MFN while in force
    CONVENTIONAL = "conventional"        # per agreement; needs a certificate of origin
    GENERAL = "general"                  # origin unknown (or not entitled to MFN)
    # additional duties by origin, added on top of the base rate
    ANTI_DUMPING = "anti_dumping"
    COUNTERVAILING = "countervailing"
    SAFEGUARD = "safeguard"
    RETALIATORY = "retaliatory"
    # taxes and the rest
    CONSUMPTION_TAX = "consumption_tax"
    VAT = "vat"
    REQUIREMENT = "requirement"
    EXPORT_DUTY = "export_duty"          # informative; the import quote does not use it


ADDITIONAL_DUTY_KINDS = frozenset({
    MeasureKind.ANTI_DUMPING, MeasureKind.COUNTERVAILING, MeasureKind.SAFEGUARD,
    MeasureKind.RETALIATORY,
})


class DutyKind(StrEnum):
    """Which rate a quote applied (the `duty_rate_applied.kind` of the API)."""
    MFN = "mfn"
    PROVISIONAL = "provisional"
    CONVENTIONAL = "conventional"
    GENERAL = "general"
    OVERRIDE = "override"


@cache
def is_country(code: str) -> bool:
    """ISO 3166-1 alpha-2, upper case."""
    return len(code) == 2 and code.isupper() and pycountry.countries.get(alpha_2=code) is not None


@cache
def is_currency(code: str) -> bool:
    """ISO 4217 alpha-3, upper case."""
    return len(code) == 3 and code.isupper() and pycountry.currencies.get(alpha_3=code) is not None


TARIFF_CODE = re.compile(r"^\d{8}$")


def normalise_tariff_code(text: str) -> str:
    """'8703.23.41' and '8703 2341' are the same line as '87032341'."""
    return re.sub(r"[\s.]", "", text)


def percent(rate: Decimal) -> str:
    """0.15 -> '15%', 1.162 -> '116.2%' (for explanations, never for arithmetic)."""
    return f"{_plain(rate * 100)}%"


def _plain(number: Decimal) -> str:
    """A Decimal without exponent or trailing zeros: 1E+2 -> '100', 2.500 -> '2.5'."""
    return format(number.normalize(), "f")


def in_force(valid_from: date, valid_to: date | None, day: date) -> bool:
    return valid_from <= day and (valid_to is None or day <= valid_to)


# --------------------------------------------------------------------------------------------
# Nomenclature, measures, agreements, exchange rates
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Rate:
    """A duty or tax rate: ad valorem (fraction of the value) plus specific (CNY per unit).
    Both non-zero is a compound rate."""

    ad_valorem: Decimal = ZERO
    specific: Decimal = ZERO

    def amount(self, value: Decimal, quantity: Decimal) -> Decimal:
        """Unrounded: value × ad valorem + quantity × specific."""
        return value * self.ad_valorem + quantity * self.specific

    def __add__(self, other: Rate) -> Rate:
        return Rate(self.ad_valorem + other.ad_valorem, self.specific + other.specific)

    def describe(self, unit: str = "unit") -> str:
        parts = []
        if self.ad_valorem or not self.specific:
            parts.append(percent(self.ad_valorem))
        if self.specific:
            parts.append(f"{_plain(self.specific)} CNY/{unit}")
        return " + ".join(parts)


ZERO_RATE = Rate()


@dataclass(frozen=True, slots=True)
class TariffLine:
    """A national tariff line: 8 digits, the first six being the HS subheading."""

    code: str
    hs6: str
    description_en: str
    unit: str                       # UN/ECE Rec. 20, see UNITS
    valid_from: date
    valid_to: date | None = None
    description_zh: str = ""
    source: str = ""
    note: str = ""

    def in_force(self, day: date) -> bool:
        return in_force(self.valid_from, self.valid_to, day)


@dataclass(frozen=True, slots=True)
class Measure:
    """One measure on a line for a period. Which optional fields are used depends on the kind:
    `agreement` for conventional rates, `origin` for additional duties, `requirement` for
    requirements; `ad_valorem`/`specific` for every rate (VAT uses ad valorem only)."""

    code: str
    kind: MeasureKind
    valid_from: date
    valid_to: date | None = None
    ad_valorem: Decimal = ZERO
    specific: Decimal = ZERO
    agreement: str | None = None
    origin: str | None = None
    requirement: Requirement | None = None
    source: str = ""
    note: str = ""

    @property
    def rate(self) -> Rate:
        return Rate(self.ad_valorem, self.specific)

    @property
    def key(self) -> tuple[str, str | None, str | None, str | None]:
        """Two measures with the same key must not be in force on the same day."""
        return (self.kind.value, self.agreement, self.origin,
                self.requirement.value if self.requirement else None)

    def in_force(self, day: date) -> bool:
        return in_force(self.valid_from, self.valid_to, day)


@dataclass(frozen=True, slots=True)
class RatesInForce:
    """What a line carries on one day: the snapshot the quote and the tariff browser read."""

    line: TariffLine
    on_date: date
    mfn: Measure | None = None
    provisional: Measure | None = None
    general: Measure | None = None
    conventional: Mapping[str, Measure] = field(default_factory=dict)
    additional: tuple[Measure, ...] = ()
    consumption_tax: Measure | None = None
    vat: Measure | None = None
    export_duty: Measure | None = None
    requirements: tuple[Requirement, ...] = ()

    def additional_for(self, origin: str | None) -> tuple[Measure, ...]:
        return tuple(m for m in self.additional if origin is not None and m.origin == origin)

    def as_api_rates(self) -> dict[str, object]:
        """The `rates` object of GET /api/v1/tariff/lines: decimal strings, None where none.
        `duty_specific` is the specific part of the rate that replaces MFN (provisional, else
        MFN)."""
        most_favoured = self.provisional or self.mfn
        return {
            "mfn": _rate_text(self.mfn),
            "general": _rate_text(self.general),
            "provisional": _rate_text(self.provisional),
            "conventional": {a: str(m.ad_valorem) for a, m in sorted(self.conventional.items())},
            "duty_specific": str(most_favoured.specific) if most_favoured else None,
            "consumption_tax": _rate_text(self.consumption_tax),
            "consumption_tax_specific": (str(self.consumption_tax.specific)
                                         if self.consumption_tax else None),
            "vat": _rate_text(self.vat),
        }


def _rate_text(measure: Measure | None) -> str | None:
    return None if measure is None else str(measure.ad_valorem)


@dataclass(frozen=True, slots=True)
class LineMeasures:
    """A line with all its measures over time."""

    line: TariffLine
    measures: tuple[Measure, ...] = ()
    # The rates in force per day, worked out once: a quote asks for them several times per item,
    # and lines are cached per process. Never part of equality; the answer is immutable.
    _by_day: dict[date, RatesInForce] = field(default_factory=dict, compare=False, hash=False, repr=False)

    @property
    def code(self) -> str:
        return self.line.code

    def in_force(self, day: date) -> RatesInForce:
        """The measures in force on `day`. Should the data hold two of one key on one day (the
        schedule parser refuses that), the one that started last wins: it is the newer decision."""
        rates = self._by_day.get(day)
        if rates is None:
            if len(self._by_day) >= 64:     # a long historical run must not grow it without bound
                self._by_day.clear()
            rates = self._by_day[day] = self._work_out(day)
        return rates

    def _work_out(self, day: date) -> RatesInForce:
        current: dict[tuple[str, str | None, str | None, str | None], Measure] = {}
        for measure in self.measures:
            if measure.in_force(day):
                held = current.get(measure.key)
                if held is None or measure.valid_from >= held.valid_from:
                    current[measure.key] = measure
        by_kind: dict[MeasureKind, list[Measure]] = {}
        for measure in current.values():
            by_kind.setdefault(measure.kind, []).append(measure)

        def single(kind: MeasureKind) -> Measure | None:
            found = by_kind.get(kind, [])
            return found[0] if found else None

        return RatesInForce(
            line=self.line,
            on_date=day,
            mfn=single(MeasureKind.MFN),
            provisional=single(MeasureKind.PROVISIONAL),
            general=single(MeasureKind.GENERAL),
            conventional={m.agreement: m for m in by_kind.get(MeasureKind.CONVENTIONAL, [])
                          if m.agreement},
            additional=tuple(m for k in sorted(ADDITIONAL_DUTY_KINDS)
                             for m in by_kind.get(k, [])),
            consumption_tax=single(MeasureKind.CONSUMPTION_TAX),
            vat=single(MeasureKind.VAT),
            export_duty=single(MeasureKind.EXPORT_DUTY),
            requirements=tuple(sorted((m.requirement for m in by_kind.get(MeasureKind.REQUIREMENT,
                                                                          [])
                                       if m.requirement), key=lambda r: r.value)),
        )


@dataclass(frozen=True, slots=True)
class AgreementMember:
    country: str                    # ISO 3166-1 alpha-2
    valid_from: date | None = None  # when the agreement entered into force for this member,
    #                                 if later than for the agreement as a whole


@dataclass(frozen=True, slots=True)
class Agreement:
    """A trade agreement China is party to. `members` are the partners whose originating goods
    may claim its conventional rates on import into China (China itself is not listed)."""

    code: str
    name: str
    members: tuple[AgreementMember, ...]
    valid_from: date
    valid_to: date | None = None
    source: str = ""

    def covers(self, origin: str, day: date) -> bool:
        if not in_force(self.valid_from, self.valid_to, day):
            return False
        return any(m.country == origin and (m.valid_from is None or m.valid_from <= day)
                   for m in self.members)


@dataclass(frozen=True, slots=True)
class ExchangeRate:
    """CNY for one unit of `currency` (one yen, one won: not per 100)."""

    currency: str
    rate: Decimal
    valid_from: date
    valid_to: date | None = None
    source: str = ""

    def in_force(self, day: date) -> bool:
        return in_force(self.valid_from, self.valid_to, day)


def exchange_rate_on(rates: Iterable[ExchangeRate], currency: str, day: date) -> Decimal | None:
    """The rate in force on `day`; the latest-starting one should periods overlap. CNY itself
    needs no table entry."""
    found = [r for r in rates if r.currency == currency and r.in_force(day)]
    if currency == "CNY" and not found:
        return ONE
    return max(found, key=lambda r: r.valid_from).rate if found else None


class TariffLookup(Protocol):
    """What the quote needs from the database. The service implements it with queries; the
    in-memory `Schedule` implements it for tests and the demo."""

    def line(self, code: str) -> LineMeasures | None: ...

    def exchange_rate(self, currency: str, day: date) -> Decimal | None: ...

    def agreements(self) -> Mapping[str, Agreement]: ...


@dataclass
class Schedule:
    """A whole schedule in memory (as parsed from the CSV files)."""

    lines: dict[str, LineMeasures] = field(default_factory=dict)
    agreement_list: dict[str, Agreement] = field(default_factory=dict)
    exchange_rates: list[ExchangeRate] = field(default_factory=list)

    def line(self, code: str) -> LineMeasures | None:
        return self.lines.get(code)

    def exchange_rate(self, currency: str, day: date) -> Decimal | None:
        return exchange_rate_on(self.exchange_rates, currency, day)

    def agreements(self) -> Mapping[str, Agreement]:
        return self.agreement_list


# --------------------------------------------------------------------------------------------
# Choice of the duty rate (§4.2)
# --------------------------------------------------------------------------------------------

class NoRateInForce(ValidationFailed):
    """A line lacks the rate the rules call for on that day: a gap in the schedule data."""


@dataclass(frozen=True, slots=True)
class AgreementOffer:
    """The best conventional rate the goods could have had with a certificate of origin."""

    agreement: str
    rate: Rate


@dataclass(frozen=True, slots=True)
class DutyRateChoice:
    kind: DutyKind
    rate: Rate                                  # the base rate, without additional duties
    explanation: tuple[str, ...]
    agreement: str | None = None
    additional: tuple[Measure, ...] = ()        # additional duties by origin, added on top
    best_offer: AgreementOffer | None = None    # only when no conventional rate was applied

    @property
    def total_rate(self) -> Rate:
        total = self.rate
        for measure in self.additional:
            total = total + measure.rate
        return total


def select_duty_rate(line_measures: LineMeasures, origin: str | None,
                     certificate_agreement: str | None, on_date: date,
                     agreements: Mapping[str, Agreement], *,
                     customs_value: Decimal | None = None,
                     quantity: Decimal = ONE, explain: bool = True) -> DutyRateChoice:
    """Unknown origin pays the general rate. Otherwise the lowest the goods qualify for: MFN (a
    provisional rate in force taking its place) or the conventional rate of an agreement that
    covers the origin and the line, the latter only with a certificate under that agreement.
    Additional duties by origin go on top of either.

    "Lowest" compares duty amounts when the customs value is known (so compound and specific
    rates compare fairly), else ad valorem then specific. On a tie MFN stays: a conventional
    rate is applied only when it is strictly lower.

    Simplification: every known origin is taken to have MFN treatment (China grants it to WTO
    members and nearly all others); LDC special preferential rates are not modelled.

    `explain=False`: the same choice with no explanation (a caller that reads the rates only)."""
    rates = line_measures.in_force(on_date)
    unit = line_measures.line.unit
    if origin is None:
        if rates.general is None:
            raise _no_rate(rates, "general")
        return DutyRateChoice(
            DutyKind.GENERAL, rates.general.rate,
            (f"origin unknown: the general rate {rates.general.rate.describe(unit)} applies",) if explain else ())

    kind, base = _most_favoured(rates)
    explanation = [_most_favoured_explanation(rates, origin, unit)] if explain else []
    chosen = DutyRateChoice(kind, base.rate, ())

    offers = agreement_offers(rates, origin, on_date, agreements)

    def cost(rate: Rate) -> tuple:
        if customs_value is None:
            return (rate.ad_valorem, rate.specific)
        return (rate.amount(customs_value, quantity),)

    if certificate_agreement is not None:
        offer = offers.get(certificate_agreement)
        if offer is None:
            explanation.append(_why_certificate_does_not_apply(
                certificate_agreement, rates, origin, on_date, agreements))
        elif cost(offer) < cost(base.rate):
            explanation.append(
                f"certificate of origin under {certificate_agreement}: the conventional rate "
                f"{offer.describe(unit)} is lower than {kind.value} "
                f"{base.rate.describe(unit)} and applies")
            chosen = DutyRateChoice(DutyKind.CONVENTIONAL, offer, (), certificate_agreement)
        else:
            explanation.append(
                f"certificate of origin under {certificate_agreement}: its conventional rate "
                f"{offer.describe(unit)} is not lower than {kind.value} "
                f"{base.rate.describe(unit)}, which stays")

    best_offer = None
    if chosen.kind is not DutyKind.CONVENTIONAL:
        cheaper = [(cost(r), a) for a, r in offers.items() if cost(r) < cost(chosen.rate)]
        if cheaper:
            _, agreement = min(cheaper)
            best_offer = AgreementOffer(agreement, offers[agreement])

    additional = rates.additional_for(origin)
    for measure in additional if explain else ():
        explanation.append(f"{measure.kind.value.replace('_', '-')} duty on goods of origin "
                           f"{origin}: {measure.rate.describe(unit)} added")
    return DutyRateChoice(chosen.kind, chosen.rate, tuple(explanation) if explain else (), chosen.agreement,
                          additional, best_offer)


def _most_favoured(rates: RatesInForce) -> tuple[DutyKind, Measure]:
    if rates.provisional is not None:
        return DutyKind.PROVISIONAL, rates.provisional
    if rates.mfn is not None:
        return DutyKind.MFN, rates.mfn
    raise _no_rate(rates, "MFN")


def _most_favoured_explanation(rates: RatesInForce, origin: str, unit: str) -> str:
    if rates.provisional is not None:
        mfn = f" in place of MFN {rates.mfn.rate.describe(unit)}" if rates.mfn else ""
        return (f"origin {origin}: the provisional rate {rates.provisional.rate.describe(unit)}"
                f" in force since {rates.provisional.valid_from} applies{mfn}")
    assert rates.mfn is not None
    return f"origin {origin}: the MFN rate {rates.mfn.rate.describe(unit)} applies"


def agreement_offers(rates: RatesInForce, origin: str, on_date: date,
                     agreements: Mapping[str, Agreement]) -> dict[str, Rate]:
    """Conventional rates of agreements that cover both the origin (on the date) and the line."""
    return {code: measure.rate for code, measure in rates.conventional.items()
            if code in agreements and agreements[code].covers(origin, on_date)}


def _why_certificate_does_not_apply(agreement_code: str, rates: RatesInForce, origin: str,
                                    on_date: date, agreements: Mapping[str, Agreement]) -> str:
    prefix = f"certificate of origin under {agreement_code} not used: "
    agreement = agreements.get(agreement_code)
    if agreement is None:
        return prefix + "no such agreement"
    if not in_force(agreement.valid_from, agreement.valid_to, on_date):
        return prefix + f"the agreement is not in force on {on_date}"
    if not agreement.covers(origin, on_date):
        return prefix + f"origin {origin} is not a member on {on_date}"
    return prefix + f"the agreement sets no conventional rate for line {rates.line.code}"


def _no_rate(rates: RatesInForce, what: str) -> NoRateInForce:
    return NoRateInForce([Problem(
        "tariff_code", "no_rate_in_force",
        f"Line {rates.line.code} has no {what} rate in force on {rates.on_date}.")])


# --------------------------------------------------------------------------------------------
# Customs value (§4.2)
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Valuation:
    """How the goods were priced. Either `customs_value` (CIF, in `currency`) or `price` with an
    incoterm; freight and insurance are in the same currency as the price."""

    currency: str
    exchange_rate: Decimal                  # CNY per one unit of currency
    customs_value: Decimal | None = None
    price: Decimal | None = None
    incoterm: Incoterm = Incoterm.CIF
    freight: Decimal = ZERO                 # FOB only
    insurance: Decimal | None = None        # FOB and CFR; None = unknown


def cif_in_currency(valuation: Valuation) -> tuple[Decimal, list[str]]:
    """CIF in the invoice currency, exact (nothing rounded here), with how it was reached.

    Why no rounding: the rules say the customs value in CNY is rounded to the fen; rounding the
    0.3 % insurance in the invoice currency first would be a second rounding that no rule asks
    for. So CIF is kept exact and `customs_value_cny` rounds once."""
    v = valuation
    if v.customs_value is not None:
        return v.customs_value, [f"customs value CIF {_plain(v.customs_value)} {v.currency}"]
    assert v.price is not None, "a valuation has a customs value or a price"
    if v.incoterm is Incoterm.CIF:
        return v.price, [f"CIF price {_plain(v.price)} {v.currency}"]
    freight = v.freight if v.incoterm is Incoterm.FOB else ZERO
    cost_and_freight = v.price + freight
    if v.insurance is None:
        insurance = cost_and_freight * UNKNOWN_INSURANCE_RATE
        how = f"insurance unknown, 0.3 % of cost and freight = {_plain(insurance)}"
    else:
        insurance = v.insurance
        how = f"insurance {_plain(insurance)}"
    cif = cost_and_freight + insurance
    if v.incoterm is Incoterm.FOB:
        text = f"FOB {_plain(v.price)} {v.currency} + freight {_plain(freight)} + {how}"
    else:
        text = f"CFR {_plain(v.price)} {v.currency} + {how}"
    return cif, [f"{text} = CIF {_plain(cif)} {v.currency}"]


def customs_value_cny(valuation: Valuation) -> Decimal:
    """CIF × exchange rate, rounded once, half-up, to the fen."""
    cif, _ = cif_in_currency(valuation)
    return fen(cif * valuation.exchange_rate)


# --------------------------------------------------------------------------------------------
# Tax lines (§4.2)
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class TaxRates:
    duty: Rate                   # the total: base rate plus additional duties
    consumption_tax: Rate
    vat: Decimal


@dataclass(frozen=True, slots=True)
class TaxLines:
    customs_value_cny: Decimal
    duty: Decimal
    consumption_tax: Decimal
    vat: Decimal

    @property
    def total(self) -> Decimal:
        """Taxes due (duty + consumption tax + VAT), not including the value."""
        return self.duty + self.consumption_tax + self.vat

    def __add__(self, other: TaxLines) -> TaxLines:
        return TaxLines(self.customs_value_cny + other.customs_value_cny, self.duty + other.duty,
                        self.consumption_tax + other.consumption_tax, self.vat + other.vat)

    def as_dict(self) -> dict[str, str]:
        return {"customs_value_cny": _money(self.customs_value_cny), "duty": _money(self.duty),
                "consumption_tax": _money(self.consumption_tax), "vat": _money(self.vat),
                "total": _money(self.total)}


NO_TAX = TaxLines(ZERO, ZERO, ZERO, ZERO)


def _money(amount: Decimal) -> str:
    return str(fen(amount))


def duty_amount(value: Decimal, quantity: Decimal, rate: Rate) -> Decimal:
    """duty = value × ad valorem + quantity × specific, rounded to the fen."""
    return fen(rate.amount(value, quantity))


def consumption_tax_amount(value: Decimal, duty: Decimal, quantity: Decimal,
                           rate: Rate) -> Decimal:
    """Composite-price method: (value + duty + quantity × specific) / (1 − ad valorem)
    × ad valorem + quantity × specific, rounded to the fen.

    Multiplying before dividing is the same formula and keeps the one inexact step (the
    division) last, so the Decimal context's 28 digits never cut a figure that matters."""
    specific = quantity * rate.specific
    base = value + duty + specific
    return fen(base * rate.ad_valorem / (ONE - rate.ad_valorem) + specific)


def vat_amount(value: Decimal, duty: Decimal, consumption_tax: Decimal, rate: Decimal) -> Decimal:
    """VAT = (value + duty + consumption tax) × rate, rounded to the fen."""
    return fen((value + duty + consumption_tax) * rate)


def general_trade_taxes(value: Decimal, quantity: Decimal, rates: TaxRates) -> TaxLines:
    """Each line rounded, and the next line computed from the rounded figures."""
    duty = duty_amount(value, quantity, rates.duty)
    consumption_tax = consumption_tax_amount(value, duty, quantity, rates.consumption_tax)
    vat = vat_amount(value, duty, consumption_tax, rates.vat)
    return TaxLines(value, duty, consumption_tax, vat)


def cbec_taxes(value: Decimal, quantity: Decimal, rates: TaxRates) -> TaxLines:
    """Cross-border e-commerce retail: duty 0; consumption tax and VAT computed in full with duty
    0 (each rounded, VAT on the full consumption tax), then each × 70 % and rounded again."""
    full_consumption_tax = consumption_tax_amount(value, ZERO, quantity, rates.consumption_tax)
    full_vat = vat_amount(value, ZERO, full_consumption_tax, rates.vat)
    return TaxLines(value, ZERO, fen(full_consumption_tax * CBEC_TAX_SHARE),
                    fen(full_vat * CBEC_TAX_SHARE))


# --------------------------------------------------------------------------------------------
# The quote
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class OverrideRates:
    """What-if rates given with a quote item. A field left None is taken from the line.
    Giving `duty` or `duty_specific` replaces the whole duty choice, additional duties
    included: the caller says what duty to assume."""

    duty: Decimal | None = None
    duty_specific: Decimal | None = None
    consumption_tax: Decimal | None = None
    consumption_tax_specific: Decimal | None = None
    vat: Decimal | None = None

    @property
    def overrides_duty(self) -> bool:
        return self.duty is not None or self.duty_specific is not None


@dataclass(frozen=True, slots=True)
class OriginCertificate:
    agreement: str
    number: str


@dataclass(frozen=True, slots=True)
class QuoteItem:
    """One item, already resolved: the line (or override rates) and the exchange rate known."""

    valuation: Valuation
    quantity: Decimal = ONE
    origin: str | None = None
    certificate: OriginCertificate | None = None
    line: LineMeasures | None = None
    override: OverrideRates | None = None


@dataclass(frozen=True, slots=True)
class QuoteRequest:
    regime: Regime
    on_date: date
    items: tuple[QuoteItem, ...]


@dataclass(frozen=True, slots=True)
class DutyRateApplied:
    kind: DutyKind
    rate: Rate                                  # base rate
    agreement: str | None = None
    additional: tuple[Measure, ...] = ()
    best_offer: AgreementOffer | None = None
    duty_saving: Decimal | None = None          # with the best offer's certificate
    total_saving: Decimal | None = None         # duty + consumption tax + VAT saved

    def as_dict(self) -> dict[str, object]:
        applied: dict[str, object] = {
            "kind": self.kind.value,
            "rate": str(self.rate.ad_valorem),
            "specific": str(self.rate.specific),
        }
        if self.agreement:
            applied["agreement"] = self.agreement
        if self.additional:
            applied["additional"] = [
                {"kind": m.kind.value, "origin": m.origin, "rate": str(m.ad_valorem),
                 "specific": str(m.specific)} for m in self.additional]
        if self.best_offer is not None:
            applied["best_agreement"] = {
                "agreement": self.best_offer.agreement,
                "rate": str(self.best_offer.rate.ad_valorem),
                "specific": str(self.best_offer.rate.specific),
                "duty_saving": _money(self.duty_saving or ZERO),
                "total_saving": _money(self.total_saving or ZERO),
            }
        return applied


@dataclass(frozen=True, slots=True)
class ItemQuote:
    taxes: TaxLines
    duty_rate_applied: DutyRateApplied
    explanation: tuple[str, ...]
    tariff_code: str | None = None
    requirements: tuple[Requirement, ...] = ()
    cbec_single_item_over_limit: bool = False

    def as_dict(self) -> dict[str, object]:
        result: dict[str, object] = {"tariff_code": self.tariff_code, **self.taxes.as_dict(),
                                     "duty_rate_applied": self.duty_rate_applied.as_dict(),
                                     "requirements": [r.value for r in self.requirements],
                                     "explanation": list(self.explanation)}
        if self.cbec_single_item_over_limit:
            result["cbec_single_item_over_limit"] = True
        return result


@dataclass(frozen=True, slots=True)
class Quote:
    regime: Regime
    on_date: date
    items: tuple[ItemQuote, ...]
    totals: TaxLines
    cbec_single_item_over_limit: bool = False

    def as_dict(self) -> dict[str, object]:
        result: dict[str, object] = {
            "regime": self.regime.value, "date": self.on_date.isoformat(),
            "items": [i.as_dict() for i in self.items], "totals": self.totals.as_dict()}
        if self.cbec_single_item_over_limit:
            result["cbec_single_item_over_limit"] = True
        return result


@dataclass(frozen=True, slots=True)
class _ResolvedRates:
    rates: TaxRates
    applied: DutyRateApplied
    explanation: tuple[str, ...]
    base_of_offer: TaxRates | None = None   # the rates had the best agreement applied


def _resolve_item_rates(item: QuoteItem, on_date: date, agreements: Mapping[str, Agreement],
                       value: Decimal, explain: bool = True) -> _ResolvedRates:
    """The duty choice by origin, consumption tax and VAT of the line, with overrides applied
    (and how, unless not `explain`)."""
    override = item.override or OverrideRates()
    explanation: list[str] = []
    choice: DutyRateChoice | None = None
    rates_in_force: RatesInForce | None = None
    if item.line is not None:
        rates_in_force = item.line.in_force(on_date)
        if not override.overrides_duty:
            choice = select_duty_rate(
                item.line, item.origin, item.certificate.agreement if item.certificate else None,
                on_date, agreements, customs_value=value, quantity=item.quantity, explain=explain)
            explanation.extend(choice.explanation)

    if choice is not None:
        duty = choice.total_rate
        applied = DutyRateApplied(choice.kind, choice.rate, choice.agreement, choice.additional,
                                  choice.best_offer)
    else:
        base = Rate(override.duty or ZERO, override.duty_specific or ZERO)
        duty = base
        applied = DutyRateApplied(DutyKind.OVERRIDE, base)
        if explain:
            explanation.append(f"duty rate given with the request: {base.describe()}")

    ct_measure = rates_in_force.consumption_tax if rates_in_force else None
    ct = ct_measure.rate if ct_measure else ZERO_RATE
    if override.consumption_tax is not None or override.consumption_tax_specific is not None:
        ct = Rate(_first(override.consumption_tax, ct.ad_valorem),
                  _first(override.consumption_tax_specific, ct.specific))
        if explain:
            explanation.append(f"consumption tax rate given with the request: {ct.describe()}")
    elif ct_measure is not None and explain:
        explanation.append(f"consumption tax {ct.describe()}")

    if override.vat is not None:
        vat = override.vat
        if explain:
            explanation.append(f"VAT rate given with the request: {percent(vat)}")
    elif rates_in_force is not None and rates_in_force.vat is not None:
        vat = rates_in_force.vat.ad_valorem
        if explain:
            explanation.append(f"VAT {percent(vat)}")
    else:
        what = f"Line {item.line.code}" if item.line else "A what-if item without rates.vat"
        raise NoRateInForce([Problem("tariff_code", "no_rate_in_force",
                                     f"{what} has no VAT rate in force on {on_date}.")])

    offer_rates = None
    if choice is not None and choice.best_offer is not None:
        offer_duty = choice.best_offer.rate
        for measure in choice.additional:
            offer_duty = offer_duty + measure.rate
        offer_rates = TaxRates(offer_duty, ct, vat)
    return _ResolvedRates(TaxRates(duty, ct, vat), applied, tuple(explanation), offer_rates)


def _first(value: Decimal | None, fallback: Decimal) -> Decimal:
    return fallback if value is None else value


def quote(request: QuoteRequest, agreements: Mapping[str, Agreement], *, explain: bool = True) -> Quote:
    """Duties and taxes for every item, and their totals (the sums of the rounded lines).

    Raises ValidationFailed listing every problem: a rate missing from the schedule for an
    item (`no_rate_in_force`, path `items[i].tariff_code`) or a CBEC order over the limit.
    `explain=False`: the same quote with no item's explanation (empty), for a caller that reads
    the figures only; the explanations are most of the work of a one-item quote."""
    problems = Problems()
    values: list[tuple[Decimal, list[str]]] = []
    resolved: list[_ResolvedRates | None] = []
    for index, item in enumerate(request.items):
        cif, how = cif_in_currency(item.valuation)
        value = fen(cif * item.valuation.exchange_rate)
        if explain:
            how = [*how, f"× {_plain(item.valuation.exchange_rate)} CNY/{item.valuation.currency}"
                         f" = customs value {_money(value)} CNY"]
        values.append((value, how))
        try:
            resolved.append(_resolve_item_rates(item, request.on_date, agreements, value, explain))
        except ValidationFailed as refused:
            resolved.append(None)
            for p in refused.problems:
                problems.add(f"items[{index}].{p.path}" if p.path else f"items[{index}]",
                             p.code, p.message)
    problems.raise_if_any()

    regime_of_items, single_over_limit = _cbec_treatment(request, [v for v, _ in values])
    items = []
    for item, (value, how), rates in zip(request.items, values, resolved, strict=True):
        assert rates is not None
        items.append(_quote_item(item, request.on_date, value, how, rates, regime_of_items,
                                 single_over_limit, explain))
    totals = NO_TAX
    for item_quote in items:
        totals = totals + item_quote.taxes
    return Quote(request.regime, request.on_date, tuple(items), totals, single_over_limit)


def _cbec_treatment(request: QuoteRequest, values: Sequence[Decimal]) -> tuple[Regime, bool]:
    """Which tax treatment the items get, and whether the single-item exception applied."""
    if request.regime is Regime.GENERAL:
        return Regime.GENERAL, False
    order_value = sum(values, ZERO)
    if order_value <= CBEC_ORDER_LIMIT:
        return Regime.CBEC, False
    # GACC: one indivisible item above the limit may still clear as CBEC but pays full duty
    # and taxes; a divisible order must be split or declared as general trade.
    if len(request.items) == 1 and request.items[0].quantity == ONE:
        return Regime.GENERAL, True
    raise ValidationFailed([Problem(
        "items", "cbec_order_limit_exceeded",
        f"The order's customs value {_money(order_value)} CNY exceeds the cross-border "
        f"e-commerce limit of {_money(CBEC_ORDER_LIMIT)} CNY per order; declare it as general "
        "trade or split it.")])


def _quote_item(item: QuoteItem, on_date: date, value: Decimal, how: list[str],
                resolved: _ResolvedRates, treatment: Regime,
                single_over_limit: bool, explain: bool = True) -> ItemQuote:
    explanation = [*how, *resolved.explanation] if explain else []
    if treatment is Regime.CBEC:
        taxes = cbec_taxes(value, item.quantity, resolved.rates)
        explanation.append("cross-border e-commerce retail: duty 0; consumption tax and VAT "
                           "at 70 % of the full amount")
        applied = resolved.applied
        applied = DutyRateApplied(applied.kind, applied.rate, applied.agreement,
                                  applied.additional)       # no saving offer: duty is 0 anyway
    else:
        taxes = general_trade_taxes(value, item.quantity, resolved.rates)
        applied = _with_saving(resolved, value, item.quantity, taxes, explanation)
        if single_over_limit and explain:
            explanation.append(
                f"cross-border e-commerce: a single indivisible item above "
                f"{_money(CBEC_ORDER_LIMIT)} CNY pays full duty, consumption tax and VAT")
    requirements = item.line.in_force(on_date).requirements if item.line else ()
    return ItemQuote(taxes, applied, tuple(explanation) if explain else (), item.line.code if item.line else None,
                     requirements, single_over_limit)


def _with_saving(resolved: _ResolvedRates, value: Decimal, quantity: Decimal, taxes: TaxLines,
                 explanation: list[str]) -> DutyRateApplied:
    applied = resolved.applied
    if applied.best_offer is None or resolved.base_of_offer is None:
        return applied
    with_certificate = general_trade_taxes(value, quantity, resolved.base_of_offer)
    duty_saving = taxes.duty - with_certificate.duty
    total_saving = taxes.total - with_certificate.total
    if total_saving <= ZERO:
        return DutyRateApplied(applied.kind, applied.rate, applied.agreement, applied.additional)
    explanation.append(
        f"no certificate of origin: under {applied.best_offer.agreement} the conventional rate "
        f"{applied.best_offer.rate.describe()} would save {_money(total_saving)} CNY "
        f"(duty {_money(duty_saving)} CNY)")
    return DutyRateApplied(applied.kind, applied.rate, applied.agreement, applied.additional,
                           applied.best_offer, duty_saving, total_saving)


# --------------------------------------------------------------------------------------------
# The raw quote request: every problem collected, then resolved against the tariff
# --------------------------------------------------------------------------------------------

QUOTE_FIELDS = frozenset({"regime", "date", "items"})
ITEM_FIELDS = frozenset({
    "tariff_code", "origin", "origin_certificate", "currency", "customs_value", "price",
    "incoterm", "freight", "insurance", "quantity", "unit", "exchange_rate", "rates",
})
CERTIFICATE_FIELDS = frozenset({"agreement", "number"})
OVERRIDE_FIELDS = frozenset({"duty", "duty_specific", "consumption_tax",
                             "consumption_tax_specific", "vat"})


# The reader of raw JSON objects is shared with every context's edge.
_Fields = FieldReader


def parse_quote_request(raw: object, lookup: TariffLookup, today: date) -> QuoteRequest:
    """Check a quote request as received (JSON decoded) and resolve it against the tariff.
    Raises ValidationFailed with every problem found; the database look-ups (tariff line,
    exchange rate, agreements) come in through `lookup`."""
    problems = Problems()
    if not isinstance(raw, Mapping):
        raise ValidationFailed([Problem("", "not_an_object", "The request must be an object.")])
    fields = _Fields(raw, "", problems)
    fields.refuse_unknown(QUOTE_FIELDS)
    regime = _parse_regime(fields)
    on_date = _parse_date_field(fields, "date") or today
    items_raw = raw.get("items")
    items: list[QuoteItem] = []
    if items_raw is None:
        fields.add("items", "required", "items is required.")
    elif not isinstance(items_raw, list) or not items_raw:
        fields.add("items", "empty" if isinstance(items_raw, list) else "not_a_list",
                   "items must be a non-empty list.")
    else:
        for index, item_raw in enumerate(items_raw):
            item = _parse_item(item_raw, f"items[{index}]", lookup, on_date, problems)
            if item is not None:
                items.append(item)
    problems.raise_if_any()
    return QuoteRequest(regime, on_date, tuple(items))


def quote_request_problems(raw: object, lookup: TariffLookup, today: date) -> list[Problem]:
    """Every problem of a raw quote request, an empty list when it is good."""
    try:
        parse_quote_request(raw, lookup, today)
    except ValidationFailed as refused:
        return refused.problems
    return []


def _parse_regime(fields: _Fields) -> Regime:
    text = fields.raw.get("regime")
    if text is None:
        return Regime.GENERAL
    try:
        return Regime(text)
    except ValueError:
        fields.add("regime", "unknown_regime", "regime is \"general\" or \"cbec\".")
        return Regime.GENERAL


def _parse_date_field(fields: _Fields, name: str) -> date | None:
    text = fields.raw.get(name)
    if text is None:
        return None
    parsed = _parse_iso_date(text) if isinstance(text, str) else None
    if parsed is None:
        fields.add(name, "invalid_date", f"{name} must be a date written YYYY-MM-DD.")
    return parsed


def _parse_iso_date(text: str) -> date | None:
    try:
        return date.fromisoformat(text.strip()) if len(text.strip()) == 10 else None
    except ValueError:
        return None


def _parse_item(raw: object, path: str, lookup: TariffLookup, on_date: date,
                problems: Problems) -> QuoteItem | None:
    if not isinstance(raw, Mapping):
        problems.add(path, "not_an_object", "Each item must be an object.")
        return None
    fields = _Fields(raw, path, problems)
    before = len(problems.items)
    fields.refuse_unknown(ITEM_FIELDS)
    override = _parse_override(raw.get("rates"), fields.path("rates"), problems)
    line = _parse_line_reference(fields, override, lookup, on_date)
    origin = _parse_origin(fields)
    certificate = _parse_certificate(fields, origin, lookup)
    valuation = _parse_valuation(fields, lookup, on_date)
    quantity = fields.amount("quantity", required=True, positive=True)
    _check_unit(fields, line)
    if len(problems.items) > before or valuation is None or quantity is None:
        return None
    return QuoteItem(valuation, quantity, origin, certificate, line, override)


def _parse_override(raw: object, path: str, problems: Problems) -> OverrideRates | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        problems.add(path, "not_an_object", "rates must be an object.")
        return None
    fields = _Fields(raw, path, problems)
    fields.refuse_unknown(OVERRIDE_FIELDS)
    return OverrideRates(
        duty=fields.rate("duty"),
        duty_specific=fields.amount("duty_specific"),
        # the gross-up divides by (1 − rate): a rate of 1 has no meaning
        consumption_tax=fields.rate("consumption_tax", below_one=True),
        consumption_tax_specific=fields.amount("consumption_tax_specific"),
        vat=fields.rate("vat"),
    )


def _parse_line_reference(fields: _Fields, override: OverrideRates | None,
                          lookup: TariffLookup, on_date: date) -> LineMeasures | None:
    text = fields.text("tariff_code")
    if text is None:
        if fields.given("tariff_code"):
            return None
        if override is None:
            fields.add("tariff_code", "required",
                       "Give a tariff_code, or the rates to use with a what-if quote.")
            return None
        rates = fields.raw.get("rates")
        assert isinstance(rates, Mapping)
        # what-if without a line: duty and VAT must be said; consumption tax defaults to none
        if "duty" not in rates and "duty_specific" not in rates:
            fields.add("rates.duty", "required", "Without a tariff_code, rates.duty is required.")
        if "vat" not in rates:
            fields.add("rates.vat", "required", "Without a tariff_code, rates.vat is required.")
        return None
    code = normalise_tariff_code(text)
    if not TARIFF_CODE.match(code):
        fields.add("tariff_code", "invalid_tariff_code", "A tariff code has 8 digits.")
        return None
    line = lookup.line(code)
    if line is None:
        fields.add("tariff_code", "unknown_tariff_code", f"No tariff line {code} exists.")
        return None
    if not line.line.in_force(on_date):
        fields.add("tariff_code", "tariff_line_not_in_force",
                   f"Tariff line {code} is not in force on {on_date}.")
        return None
    return line


def _parse_origin(fields: _Fields) -> str | None:
    text = fields.text("origin")
    if text is None:
        return None
    if not is_country(text.upper()):
        fields.add("origin", "unknown_country",
                   f"{text!r} is not an ISO 3166 alpha-2 country code.")
        return None
    return text.upper()


def _parse_certificate(fields: _Fields, origin: str | None,
                       lookup: TariffLookup) -> OriginCertificate | None:
    raw = fields.raw.get("origin_certificate")
    if raw is None:
        return None
    path = fields.path("origin_certificate")
    if not isinstance(raw, Mapping):
        fields.problems.add(path, "not_an_object", "origin_certificate must be an object.")
        return None
    cert = _Fields(raw, path, fields.problems)
    cert.refuse_unknown(CERTIFICATE_FIELDS)
    agreement = cert.text("agreement", required=True)
    number = cert.text("number", required=True)
    if agreement is not None and agreement not in lookup.agreements():
        cert.add("agreement", "unknown_agreement", f"No trade agreement {agreement!r} is known.")
        return None
    if origin is None and not fields.given("origin"):
        # a certificate of origin states an origin; without one there is nothing to check it by
        fields.add("origin", "required", "origin is required with an origin_certificate.")
        return None
    if agreement is None or number is None:
        return None
    return OriginCertificate(agreement, number)


def _parse_valuation(fields: _Fields, lookup: TariffLookup, on_date: date) -> Valuation | None:
    currency = _parse_currency(fields)
    exchange_rate = fields.amount("exchange_rate", positive=True)
    if currency is not None and exchange_rate is None and not fields.given("exchange_rate"):
        exchange_rate = lookup.exchange_rate(currency, on_date)
        if exchange_rate is None:
            fields.add("currency", "no_exchange_rate",
                       f"No exchange rate for {currency} is in force on {on_date}.")

    has_value, has_price = fields.given("customs_value"), fields.given("price")
    if has_value and has_price:
        fields.add("", "both_customs_value_and_price",
                   "Give either customs_value (CIF) or price with an incoterm, not both.")
    elif not has_value and not has_price:
        fields.add("", "neither_customs_value_nor_price",
                   "Give customs_value (CIF) or price with an incoterm.")
    customs_value = fields.amount("customs_value")
    price = fields.amount("price")
    incoterm = _parse_incoterm(fields, required=has_price and not has_value)
    freight = fields.amount("freight")
    insurance = fields.amount("insurance")
    _check_freight_and_insurance(fields, incoterm if has_price else Incoterm.CIF, freight)

    if currency is None or exchange_rate is None or (customs_value is None and price is None):
        return None
    return Valuation(currency, exchange_rate, customs_value, price, incoterm or Incoterm.CIF,
                     freight or ZERO, insurance)


def _parse_currency(fields: _Fields) -> str | None:
    text = fields.text("currency", required=True)
    if text is None:
        return None
    if not is_currency(text.upper()):
        fields.add("currency", "unknown_currency", f"{text!r} is not an ISO 4217 currency code.")
        return None
    return text.upper()


def _parse_incoterm(fields: _Fields, *, required: bool) -> Incoterm | None:
    text = fields.text("incoterm", required=required)
    if text is None:
        return None
    try:
        return Incoterm(text.upper())
    except ValueError:
        fields.add("incoterm", "unknown_incoterm", "incoterm is one of FOB, CFR, CIF.")
        return None


def _check_freight_and_insurance(fields: _Fields, incoterm: Incoterm | None,
                                 freight: Decimal | None) -> None:
    if incoterm is Incoterm.FOB and freight is None and not fields.given("freight"):
        fields.add("freight", "required", "An FOB price needs the freight to the border.")
    if incoterm in (Incoterm.CFR, Incoterm.CIF) and fields.given("freight"):
        fields.add("freight", "not_applicable",
                   "The freight is already in a CFR or CIF price (or in the customs value).")
    if incoterm is Incoterm.CIF and fields.given("insurance"):
        fields.add("insurance", "not_applicable",
                   "The insurance is already in a CIF price (or in the customs value).")


def _check_unit(fields: _Fields, line: LineMeasures | None) -> None:
    """A quantity is taken in the line's unit. A unit that names a different one is refused
    rather than silently used for a specific rate."""
    text = fields.text("unit")
    if text is None or line is None:
        return
    unit = UNIT_ALIASES.get(text.lower(), text.upper())
    if unit in UNITS and unit != line.line.unit:
        fields.add("unit", "unit_mismatch",
                   f"Line {line.code} is measured in {line.line.unit} "
                   f"({UNITS[line.line.unit]}); give the quantity in that unit.")


# --------------------------------------------------------------------------------------------
# CSV: schedule, agreements, exchange rates (formats in tradewindow/tariff/data/README.md)
# --------------------------------------------------------------------------------------------

SCHEDULE_COLUMNS = ("code", "kind", "hs6", "unit", "description_en", "description_zh",
                    "agreement", "origin", "requirement", "ad_valorem", "specific",
                    "valid_from", "valid_to", "source", "note")
AGREEMENT_COLUMNS = ("code", "name", "members", "valid_from", "valid_to", "source")
EXCHANGE_RATE_COLUMNS = ("currency", "rate", "valid_from", "valid_to", "source")

LINE_ROW = "line"
_LINE_ONLY = ("hs6", "unit", "description_en", "description_zh")
_MEASURE_ONLY = ("agreement", "origin", "requirement", "ad_valorem", "specific")
_AGREEMENT_CODE = re.compile(r"^[A-Z][A-Z0-9-]{1,19}$")

Row = Mapping[str, "str | None"]


class _RowReader:
    """Reads one CSV row; a problem's path is `rows[N].column`, N counting the header as 1 so
    that it is the row number a spreadsheet shows."""

    def __init__(self, row: Row, number: int, problems: Problems) -> None:
        self.row = row
        self.number = number
        self.problems = problems

    def cell(self, column: str) -> str:
        return (self.row.get(column) or "").strip()

    def has_problems(self) -> bool:
        return any(p.path.startswith(f"rows[{self.number}].") for p in self.problems.items)

    def add(self, column: str, code: str, message: str) -> None:
        self.problems.add(f"rows[{self.number}].{column}", code, message)

    def required(self, column: str) -> str | None:
        text = self.cell(column)
        if not text:
            self.add(column, "required", f"{column} is required.")
            return None
        return text

    def day(self, column: str, *, required: bool) -> date | None:
        text = self.required(column) if required else self.cell(column)
        if not text:
            return None
        parsed = _parse_iso_date(text)
        if parsed is None:
            self.add(column, "invalid_date", f"{column} must be a date written YYYY-MM-DD.")
        return parsed

    def period(self) -> tuple[date | None, date | None]:
        start = self.day("valid_from", required=True)
        end = self.day("valid_to", required=False)
        if start is not None and end is not None and end < start:
            self.add("valid_to", "invalid_period", "valid_to is before valid_from.")
        return start, end

    def number_cell(self, column: str, *, upper: Decimal | None = None,
                    below: Decimal | None = None) -> Decimal:
        text = self.cell(column)
        if not text:
            return ZERO
        number = parse_decimal(text)
        if number is None:
            self.add(column, "not_a_number", f"{column} must be a decimal number.")
            return ZERO
        if number < 0:
            self.add(column, "negative_amount", f"{column} must not be negative.")
        elif (upper is not None and number > upper) or (below is not None and number >= below):
            self.add(column, "rate_out_of_range", f"{column} is out of range for this kind.")
        return number

    def not_applicable(self, columns: Iterable[str], what: str) -> None:
        for column in columns:
            if self.cell(column):
                self.add(column, "not_applicable", f"{column} is not used on a {what} row.")


def parse_schedule_rows(rows: Iterable[Row], agreements: Mapping[str, Agreement] | None = None,
                        ) -> tuple[dict[str, LineMeasures], list[Problem]]:
    """Rows of the schedule CSV (dicts keyed by SCHEDULE_COLUMNS) into lines with their measures,
    in first-seen order, and every problem found. With `agreements`, conventional rows must name
    a known agreement."""
    problems = Problems()
    lines: dict[str, TariffLine] = {}
    measures: dict[str, list[tuple[int, Measure]]] = {}
    for number, row in enumerate(rows, start=2):
        reader = _RowReader(row, number, problems)
        code = reader.required("code")
        if code is not None and not TARIFF_CODE.match(code):
            reader.add("code", "invalid_tariff_code", "A tariff code has 8 digits.")
            code = None
        kind_text = reader.required("kind")
        if kind_text == LINE_ROW:
            line = _parse_line_row(reader, code)
            if line is not None and line.code in lines:
                reader.add("code", "duplicate_line", f"Line {line.code} is defined twice.")
            elif line is not None:
                lines[line.code] = line
                measures.setdefault(line.code, [])
            continue
        try:
            kind = MeasureKind(kind_text) if kind_text else None
        except ValueError:
            reader.add("kind", "unknown_kind",
                       f"kind is 'line' or one of {', '.join(k.value for k in MeasureKind)}.")
            kind = None
        measure = _parse_measure_row(reader, code, kind, agreements)
        if measure is not None:
            measures.setdefault(measure.code, []).append((number, measure))

    for code, numbered in measures.items():
        if code not in lines:
            for number, _ in numbered:
                problems.add(f"rows[{number}].code", "unknown_tariff_code",
                             f"No line row defines {code}.")
        _check_overlaps(numbered, problems)
    result = {code: LineMeasures(line, tuple(m for _, m in measures.get(code, [])))
              for code, line in lines.items()}
    return result, problems.items


def _parse_line_row(reader: _RowReader, code: str | None) -> TariffLine | None:
    reader.not_applicable(_MEASURE_ONLY, "line")
    hs6 = reader.required("hs6")
    if hs6 is not None and code is not None and hs6 != code[:6]:
        reader.add("hs6", "hs6_mismatch", "hs6 must be the first six digits of the code.")
    unit = reader.required("unit")
    if unit is not None and unit not in UNITS:
        reader.add("unit", "unknown_unit",
                   f"unit is a UN/ECE Rec. 20 code, one of {', '.join(UNITS)}.")
    description = reader.required("description_en")
    start, end = reader.period()
    if not (code and hs6 and unit and description and start) or reader.has_problems():
        return None
    return TariffLine(code, hs6, description, unit, start, end, reader.cell("description_zh"),
                      reader.cell("source"), reader.cell("note"))


def _parse_measure_row(reader: _RowReader, code: str | None, kind: MeasureKind | None,
                       agreements: Mapping[str, Agreement] | None) -> Measure | None:
    reader.not_applicable(_LINE_ONLY, "measure")
    agreement = _parse_measure_agreement(reader, kind, agreements)
    origin = _parse_measure_origin(reader, kind)
    requirement = _parse_measure_requirement(reader, kind)
    ad_valorem, specific = _parse_measure_rate(reader, kind)
    start, end = reader.period()
    if reader.has_problems() or code is None or kind is None or start is None:
        return None
    return Measure(code, kind, start, end, ad_valorem, specific, agreement, origin, requirement,
                   reader.cell("source"), reader.cell("note"))


def _parse_measure_agreement(reader: _RowReader, kind: MeasureKind | None,
                             agreements: Mapping[str, Agreement] | None) -> str | None:
    if kind is not MeasureKind.CONVENTIONAL:
        reader.not_applicable(["agreement"], kind.value if kind else "measure")
        return None
    agreement = reader.required("agreement")
    if agreement is not None and agreements is not None and agreement not in agreements:
        reader.add("agreement", "unknown_agreement", f"No trade agreement {agreement!r} is known.")
    return agreement


def _parse_measure_origin(reader: _RowReader, kind: MeasureKind | None) -> str | None:
    if kind not in ADDITIONAL_DUTY_KINDS:
        reader.not_applicable(["origin"], kind.value if kind else "measure")
        return None
    origin = reader.required("origin")
    if origin is not None and not is_country(origin):
        reader.add("origin", "unknown_country",
                   f"{origin!r} is not an ISO 3166 alpha-2 country code.")
    return origin


def _parse_measure_requirement(reader: _RowReader, kind: MeasureKind | None) -> Requirement | None:
    if kind is not MeasureKind.REQUIREMENT:
        reader.not_applicable(["requirement"], kind.value if kind else "measure")
        return None
    text = reader.required("requirement")
    if text is None:
        return None
    try:
        return Requirement(text)
    except ValueError:
        reader.add("requirement", "unknown_requirement",
                   f"requirement is one of {', '.join(r.value for r in Requirement)}.")
        return None


def _parse_measure_rate(reader: _RowReader, kind: MeasureKind | None) -> tuple[Decimal, Decimal]:
    if kind is None:
        return ZERO, ZERO
    if kind is MeasureKind.REQUIREMENT:
        reader.not_applicable(["ad_valorem", "specific"], "requirement")
        return ZERO, ZERO
    if kind is MeasureKind.VAT:
        reader.not_applicable(["specific"], "vat")
        reader.required("ad_valorem")
        return reader.number_cell("ad_valorem", upper=ONE), ZERO
    if not reader.cell("ad_valorem") and not reader.cell("specific"):
        reader.add("ad_valorem", "required", "A rate needs ad_valorem, specific or both.")
    # consumption tax is grossed up by 1 / (1 − rate): it must stay below 1
    below = ONE if kind is MeasureKind.CONSUMPTION_TAX else None
    return reader.number_cell("ad_valorem", below=below), reader.number_cell("specific")


def _check_overlaps(numbered: list[tuple[int, Measure]], problems: Problems) -> None:
    by_key: dict[tuple, list[tuple[int, Measure]]] = {}
    for number, measure in numbered:
        by_key.setdefault(measure.key, []).append((number, measure))
    for group in by_key.values():
        group.sort(key=lambda nm: nm[1].valid_from)
        for (_, earlier), (number, later) in zip(group, group[1:], strict=False):
            if earlier.valid_to is None or earlier.valid_to >= later.valid_from:
                problems.add(f"rows[{number}].valid_from", "overlapping_validity",
                             f"This {later.kind.value} measure overlaps one in force from "
                             f"{earlier.valid_from}.")


def render_schedule_rows(lines: Iterable[LineMeasures]) -> list[dict[str, str]]:
    """The inverse of parse_schedule_rows: a line row, then its measures, for each line."""
    rows: list[dict[str, str]] = []
    for line_measures in lines:
        line = line_measures.line
        rows.append(_row(SCHEDULE_COLUMNS, code=line.code, kind=LINE_ROW, hs6=line.hs6,
                         unit=line.unit, description_en=line.description_en,
                         description_zh=line.description_zh,
                         valid_from=line.valid_from.isoformat(),
                         valid_to=_date_text(line.valid_to), source=line.source, note=line.note))
        for m in line_measures.measures:
            rows.append(_row(SCHEDULE_COLUMNS, code=m.code, kind=m.kind.value,
                             agreement=m.agreement or "", origin=m.origin or "",
                             requirement=m.requirement.value if m.requirement else "",
                             **_rate_cells(m), valid_from=m.valid_from.isoformat(),
                             valid_to=_date_text(m.valid_to), source=m.source, note=m.note))
    return rows


def _rate_cells(measure: Measure) -> dict[str, str]:
    """Canonical form: ad valorem written unless the rate is purely specific; specific written
    only when non-zero; neither on a requirement."""
    if measure.kind is MeasureKind.REQUIREMENT:
        return {}
    cells = {}
    if measure.ad_valorem or not measure.specific:
        cells["ad_valorem"] = str(measure.ad_valorem)
    if measure.specific:
        cells["specific"] = str(measure.specific)
    return cells


def _row(columns: Sequence[str], **cells: str) -> dict[str, str]:
    return {column: cells.get(column, "") for column in columns}


def _date_text(day: date | None) -> str:
    return day.isoformat() if day else ""


def parse_agreement_rows(rows: Iterable[Row]) -> tuple[dict[str, Agreement], list[Problem]]:
    """Rows of agreements.csv. `members` is a space-separated list of ISO alpha-2 codes; a
    member for which the agreement entered into force later is written `KR@2022-02-01`."""
    problems = Problems()
    agreements: dict[str, Agreement] = {}
    seen: set[str] = set()
    for number, row in enumerate(rows, start=2):
        reader = _RowReader(row, number, problems)
        before = len(problems.items)
        code = reader.required("code")
        if code is not None and not _AGREEMENT_CODE.match(code):
            reader.add("code", "invalid_agreement_code",
                       "An agreement code is upper-case letters, digits and hyphens.")
        elif code is not None and code in seen:
            reader.add("code", "duplicate_agreement", f"Agreement {code} is defined twice.")
        if code is not None:
            seen.add(code)
        name = reader.required("name")
        members = _parse_members(reader)
        start, end = reader.period()
        if len(problems.items) == before and code and name and start:
            agreements[code] = Agreement(code, name, members, start, end, reader.cell("source"))
    return agreements, problems.items


def _parse_members(reader: _RowReader) -> tuple[AgreementMember, ...]:
    text = reader.required("members")
    members = []
    for token in (text or "").split():
        country, _, since = token.partition("@")
        day = _parse_iso_date(since) if since else None
        if not is_country(country):
            reader.add("members", "unknown_country",
                       f"{country!r} is not an ISO 3166 alpha-2 country code.")
        elif since and day is None:
            reader.add("members", "invalid_date", f"{token!r}: write the date YYYY-MM-DD.")
        else:
            members.append(AgreementMember(country, day))
    return tuple(members)


def render_agreement_rows(agreements: Iterable[Agreement]) -> list[dict[str, str]]:
    return [_row(AGREEMENT_COLUMNS, code=a.code, name=a.name,
                 members=" ".join(m.country + (f"@{m.valid_from.isoformat()}" if m.valid_from
                                               else "") for m in a.members),
                 valid_from=a.valid_from.isoformat(), valid_to=_date_text(a.valid_to),
                 source=a.source)
            for a in agreements]


def parse_exchange_rate_rows(rows: Iterable[Row]) -> tuple[list[ExchangeRate], list[Problem]]:
    """Rows of exchange_rates.csv: CNY per one unit of `currency` over a period."""
    problems = Problems()
    rates: list[tuple[int, ExchangeRate]] = []
    for number, row in enumerate(rows, start=2):
        reader = _RowReader(row, number, problems)
        before = len(problems.items)
        currency = reader.required("currency")
        if currency is not None and not is_currency(currency):
            reader.add("currency", "unknown_currency",
                       f"{currency!r} is not an ISO 4217 currency code.")
        reader.required("rate")
        rate = reader.number_cell("rate")
        if reader.cell("rate") and rate == 0:
            reader.add("rate", "not_positive", "rate must be greater than zero.")
        start, end = reader.period()
        if len(problems.items) == before and currency and start:
            rates.append((number, ExchangeRate(currency, rate, start, end, reader.cell("source"))))
    by_currency: dict[str, list[tuple[int, ExchangeRate]]] = {}
    for number, rate in rates:
        by_currency.setdefault(rate.currency, []).append((number, rate))
    for group in by_currency.values():
        group.sort(key=lambda nr: nr[1].valid_from)
        for (_, earlier), (number, later) in zip(group, group[1:], strict=False):
            if earlier.valid_to is None or earlier.valid_to >= later.valid_from:
                problems.add(f"rows[{number}].valid_from", "overlapping_validity",
                             f"This {later.currency} rate overlaps the one from "
                             f"{earlier.valid_from}.")
    return [r for _, r in rates], problems.items


def render_exchange_rate_rows(rates: Iterable[ExchangeRate]) -> list[dict[str, str]]:
    return [_row(EXCHANGE_RATE_COLUMNS, currency=r.currency, rate=str(r.rate),
                 valid_from=r.valid_from.isoformat(), valid_to=_date_text(r.valid_to),
                 source=r.source) for r in rates]


# Text in, text out: the service reads the file or upload, these only convert strings.

def read_csv_rows(text: str, columns: Sequence[str]) -> tuple[list[dict[str, str]], list[Problem]]:
    """Rows of a CSV text whose header must hold exactly `columns` (in any order)."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = list(reader.fieldnames or [])
    problems = Problems()
    for column in columns:
        if column not in header:
            problems.add("header", "missing_column", f"The header lacks the column {column!r}.")
    for column in header:
        if column not in columns:
            problems.add("header", "unknown_column", f"{column!r} is not a column of this file.")
    if problems:
        return [], problems.items
    return [dict(row) for row in reader], []


def write_csv_rows(rows: Iterable[Mapping[str, str]], columns: Sequence[str]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def read_schedule_csv(text: str, agreements: Mapping[str, Agreement] | None = None,
                      ) -> tuple[dict[str, LineMeasures], list[Problem]]:
    rows, problems = read_csv_rows(text, SCHEDULE_COLUMNS)
    return parse_schedule_rows(rows, agreements) if not problems else ({}, problems)


def write_schedule_csv(lines: Iterable[LineMeasures]) -> str:
    return write_csv_rows(render_schedule_rows(lines), SCHEDULE_COLUMNS)


def read_agreements_csv(text: str) -> tuple[dict[str, Agreement], list[Problem]]:
    rows, problems = read_csv_rows(text, AGREEMENT_COLUMNS)
    return parse_agreement_rows(rows) if not problems else ({}, problems)


def write_agreements_csv(agreements: Iterable[Agreement]) -> str:
    return write_csv_rows(render_agreement_rows(agreements), AGREEMENT_COLUMNS)


def read_exchange_rates_csv(text: str) -> tuple[list[ExchangeRate], list[Problem]]:
    rows, problems = read_csv_rows(text, EXCHANGE_RATE_COLUMNS)
    return parse_exchange_rate_rows(rows) if not problems else ([], problems)


def write_exchange_rates_csv(rates: Iterable[ExchangeRate]) -> str:
    return write_csv_rows(render_exchange_rate_rows(rates), EXCHANGE_RATE_COLUMNS)


def load_schedule(schedule_csv: str, agreements_csv: str, exchange_rates_csv: str,
                  ) -> tuple[Schedule, list[Problem]]:
    """The three CSV texts into one in-memory Schedule (a TariffLookup), with every problem;
    each problem's path is prefixed by the file it comes from."""
    agreements, agreement_problems = read_agreements_csv(agreements_csv)
    lines, line_problems = read_schedule_csv(schedule_csv, agreements)
    rates, rate_problems = read_exchange_rates_csv(exchange_rates_csv)
    problems = [*_prefixed("agreements", agreement_problems),
                *_prefixed("schedule", line_problems),
                *_prefixed("exchange_rates", rate_problems)]
    return Schedule(lines, agreements, rates), problems


def _prefixed(prefix: str, problems: list[Problem]) -> list[Problem]:
    return [Problem(f"{prefix}.{p.path}", p.code, p.message) for p in problems]

