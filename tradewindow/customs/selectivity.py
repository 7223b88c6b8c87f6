"""Selectivity: which lane a declaration takes, and why.

Lanes, most severe first: red (physical inspection), yellow (document check), blue (release now,
audit later), green (release). Customs keeps its rule profiles and each office's settings as data;
this module is pure — no I/O — so a lane decision can be explained and replayed from what was
recorded: the facts, the profiles, the office's settings and tally, and the seed.

How a lane is chosen
--------------------
One uniform draw in [0, 1) is made per declaration from ``random.Random(seed)``. Every rule that
applies to the declaration — each matching profile, and the office's minimum random rate for red —
has a *threshold*: its chance × the trader's credit-tier modifier, capped at 1. A rule selects the
declaration when the draw is below its threshold, and the most severe selected lane wins. When no
rule selects it (a would-be green), the office's top-up rules are compared with the same draw.

Why one draw rather than one per rule: the tier modifier then scales the chance of *every* lane
exactly, however many profiles overlap, so the GACC rule (AEO inspection rate below 20 % of the
standard rate) holds by construction, not just for a single profile; overlapping profiles do not
compound into rates nobody set; and the decision reads as one number compared with a few
thresholds ("why this lane"). Each profile still selects exactly its stated share of the
declarations it matches.
"""

from __future__ import annotations

import math
import random
import re
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any

from tradewindow.platform.errors import Problems
from tradewindow.platform.money import parse_decimal


class Lane(StrEnum):
    RED = "red"
    YELLOW = "yellow"
    BLUE = "blue"
    GREEN = "green"


LANE_WORK = {
    Lane.RED: "physical inspection",
    Lane.YELLOW: "document check",
    Lane.BLUE: "release, audit later",
    Lane.GREEN: "release",
}
SEVERITY = {Lane.GREEN: 0, Lane.BLUE: 1, Lane.YELLOW: 2, Lane.RED: 3}
# Lanes a rule can route to; green is what the others leave.
SELECTING_LANES = (Lane.RED, Lane.YELLOW, Lane.BLUE)

# The registry's credit tiers (registry.model.CreditTier), as the plain strings facts carry.
CREDIT_TIERS = ("advanced_aeo", "general_aeo", "general", "discredited")

RANDOM_RULE = "random"
TOP_UP_RULE = "top-up"

DEFAULT_EXPECTED_RATES = {Lane.RED.value: 0.02, Lane.YELLOW.value: 0.05, Lane.BLUE.value: 0.10}
DEFAULT_MINIMUM_RANDOM_RATE = 0.01
DEFAULT_TIER_MODIFIERS = {"advanced_aeo": 0.15, "general_aeo": 0.5, "general": 1.0, "discredited": 3.0}
# GACC rule: AEO inspection rate below 20 % of the standard rate
ADVANCED_AEO_CEILING = 0.2

_TARIFF_PREFIX = re.compile(r"^[0-9]{1,10}$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")


def most_severe(lanes: Iterable[Lane]) -> Lane:
    return max(lanes, key=SEVERITY.__getitem__, default=Lane.GREEN)


def tariff_digits(code: str) -> str:
    """Tariff codes are compared as digits: "8471.30.00" and "84713000" are the same line."""
    if code.isdigit():      # the usual case, checked many times per declaration: no copy
        return code
    return "".join(ch for ch in code if ch.isdigit())


def new_seed() -> int:
    """A fresh seed for one lane decision (63 bits: fits a signed BIGINT column)."""
    return secrets.randbits(63)


# --- facts -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ItemFacts:
    tariff_code: str
    origin: str
    quantity: Decimal
    value_cny: Decimal
    unit: str

    @property
    def unit_value(self) -> Decimal | None:
        """CNY per declared unit; none when nothing is declared to be there."""
        return self.value_cny / self.quantity if self.quantity > 0 else None


@dataclass(frozen=True)
class DeclarationFacts:
    """What selectivity may look at: the declaration as accepted, and its trader's standing."""
    office_code: str
    trader_id: str
    declarant_id: str
    credit_tier: str
    transport_mode: str
    is_first_declaration: bool
    items: tuple[ItemFacts, ...]


# --- rule profiles -----------------------------------------------------------------------------

@dataclass(frozen=True)
class ValueBand:
    """The unit value (CNY per declared unit) customs expects for goods under a tariff prefix.
    Outside it is the risk: under-valuation evades duty, over-valuation moves money abroad."""
    tariff_prefix: str
    minimum: Decimal | None = None
    maximum: Decimal | None = None
    unit: str | None = None  # CNY per kg and CNY per piece cannot be compared: limit to one unit

    def flags(self, item: ItemFacts) -> bool:
        if not tariff_digits(item.tariff_code).startswith(self.tariff_prefix):
            return False
        if self.unit and item.unit != self.unit:
            return False
        unit_value = item.unit_value
        if unit_value is None:
            return True  # a value on no quantity is itself the anomaly a band looks for
        below = self.minimum is not None and unit_value < self.minimum
        above = self.maximum is not None and unit_value > self.maximum
        return below or above


@dataclass(frozen=True)
class ProfileConditions:
    """Every condition given must hold (AND); a list holds when any of its entries matches (OR).
    Tariff prefixes, origins and the value band must hold together on one item."""
    tariff_prefixes: tuple[str, ...] = ()
    origins: tuple[str, ...] = ()
    value_band: ValueBand | None = None
    trader_ids: tuple[str, ...] = ()
    declarant_ids: tuple[str, ...] = ()
    credit_tiers: tuple[str, ...] = ()
    transport_modes: tuple[str, ...] = ()
    office_codes: tuple[str, ...] = ()
    first_declaration: bool = False  # only a trader's first declaration: nothing is known of it yet

    @property
    def concern_items(self) -> bool:
        return bool(self.tariff_prefixes or self.origins or self.value_band)


@dataclass(frozen=True)
class RuleProfile:
    """A risk rule customs keeps as data: declarations it matches go to `lane` with `probability`."""
    id: str
    name: str
    lane: str
    probability: float
    conditions: ProfileConditions = ProfileConditions()
    active: bool = True


def _listed(value: str, entries: tuple[str, ...]) -> bool:
    return not entries or value in entries


def declaration_matches(conditions: ProfileConditions, facts: DeclarationFacts) -> bool:
    return (_listed(facts.trader_id, conditions.trader_ids)
            and _listed(facts.declarant_id, conditions.declarant_ids)
            and _listed(facts.credit_tier, conditions.credit_tiers)
            and _listed(facts.transport_mode, conditions.transport_modes)
            and _listed(facts.office_code, conditions.office_codes)
            and (facts.is_first_declaration or not conditions.first_declaration))


def item_matches(conditions: ProfileConditions, item: ItemFacts) -> bool:
    code = tariff_digits(item.tariff_code)
    return ((not conditions.tariff_prefixes or any(code.startswith(p) for p in conditions.tariff_prefixes))
            and _listed(item.origin.upper(), conditions.origins)
            and (conditions.value_band is None or conditions.value_band.flags(item)))


def profile_matches(profile: RuleProfile, facts: DeclarationFacts) -> bool:
    """An active profile matches when the declaration-level conditions hold and, if it has
    item-level conditions, at least one item meets all of them."""
    conditions = profile.conditions
    if not profile.active or not declaration_matches(conditions, facts):
        return False
    return not conditions.concern_items or any(item_matches(conditions, i) for i in facts.items)


# --- office settings and tally -----------------------------------------------------------------

@dataclass(frozen=True)
class OfficeSettings:
    office_code: str
    expected_rates: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_EXPECTED_RATES))
    minimum_random_rate: float = DEFAULT_MINIMUM_RANDOM_RATE
    tier_modifiers: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_TIER_MODIFIERS))

    def modifier(self, credit_tier: str) -> float:
        if credit_tier not in self.tier_modifiers:
            problems = Problems()
            problems.add("credit_tier", "unknown_credit_tier",
                         f"Credit tier is one of: {', '.join(CREDIT_TIERS)}.")
            problems.raise_if_any()
        return self.tier_modifiers[credit_tier]


@dataclass(frozen=True)
class OfficeTally:
    """Declarations an office has decided in the current period, in all and per lane."""
    decided: int = 0
    by_lane: Mapping[str, int] = field(default_factory=dict)

    def share(self, lane: Lane) -> float:
        return self.by_lane.get(lane.value, 0) / self.decided if self.decided else 0.0

    def counted(self, lane: Lane) -> OfficeTally:
        """The tally once one more declaration has taken `lane`."""
        by_lane = dict(self.by_lane)
        by_lane[lane.value] = by_lane.get(lane.value, 0) + 1
        return OfficeTally(self.decided + 1, by_lane)


# --- the decision ------------------------------------------------------------------------------

@dataclass(frozen=True)
class LaneReason:
    """One rule compared with the declaration's draw."""
    rule: str           # the profile id, "random" or "top-up"
    name: str           # the profile's name, or what the random / top-up rule stands for
    lane: Lane
    chance: float       # as set, before the credit-tier modifier
    modifier: float
    probability: float  # chance × modifier, capped at 1: the threshold the draw must be below
    draw: float
    hit: bool


@dataclass(frozen=True)
class LaneDecision:
    lane: Lane
    reasons: tuple[LaneReason, ...]
    seed: int
    draw: float
    credit_tier: str

    @property
    def hits(self) -> tuple[LaneReason, ...]:
        return tuple(r for r in self.reasons if r.hit)


@dataclass(frozen=True)
class _Chance:
    rule: str
    name: str
    lane: Lane
    chance: float


def _rule_chances(facts: DeclarationFacts, profiles: Sequence[RuleProfile],
                  settings: OfficeSettings) -> list[_Chance]:
    chances = [_Chance(p.id, p.name, Lane(p.lane), p.probability) for p in profiles if profile_matches(p, facts)]
    if settings.minimum_random_rate > 0:
        # Any declaration may be inspected, so no trader can learn which goods are never looked at.
        chances.append(_Chance(RANDOM_RULE, "random selection for physical inspection", Lane.RED,
                               settings.minimum_random_rate))
    return chances


def _top_up_chances(settings: OfficeSettings, tally: OfficeTally) -> list[_Chance]:
    """Top-up keeps each lane near the office's expected rate without a quota. While a lane's
    observed share this period is below its expected rate, the shortfall in share points
    (expected − observed, e.g. 5 % − 3 % = 2 %) × the tier modifier becomes one more threshold for
    the declaration's draw, consulted only when no profile or random rule selected it (a would-be
    green). Being compared with the same draw, it acts as a floor: the declaration's chance of
    being selected becomes at least the shortfall × modifier, and one already carrying a larger
    chance from its profiles gains nothing. So the top-up is bounded by the expected rate, fades
    as the lane catches up, and keeps the AEO ratio exact."""
    chances = []
    for lane in SELECTING_LANES:
        expected = settings.expected_rates.get(lane.value, 0.0)
        observed = tally.share(lane)
        if observed < expected:
            name = (f"{lane.value} below its expected rate ({_percent(observed)} of {tally.decided} "
                    f"decided this period against {_percent(expected)})")
            chances.append(_Chance(TOP_UP_RULE, name, lane, expected - observed))
    return chances


def _compare(chances: list[_Chance], modifier: float, draw: float) -> list[LaneReason]:
    reasons = []
    for c in chances:
        threshold = min(1.0, c.chance * modifier)
        reasons.append(LaneReason(c.rule, c.name, c.lane, c.chance, modifier, threshold, draw, draw < threshold))
    return reasons


def _lane_for_draw(draw: float, rules: list[_Chance], top_ups: list[_Chance],
                   modifier: float) -> tuple[Lane, list[LaneReason]]:
    reasons = _compare(rules, modifier, draw)
    if not any(r.hit for r in reasons):
        reasons += _compare(top_ups, modifier, draw)  # only a would-be green is topped up
    return most_severe(r.lane for r in reasons if r.hit), reasons


def select_lane(facts: DeclarationFacts, profiles: Sequence[RuleProfile], settings: OfficeSettings,
                tally: OfficeTally, seed: int) -> LaneDecision:
    """The lane for a declaration: deterministic given the seed, every comparison recorded."""
    modifier = settings.modifier(facts.credit_tier)
    draw = random.Random(seed).random()
    lane, reasons = _lane_for_draw(draw, _rule_chances(facts, profiles, settings),
                                   _top_up_chances(settings, tally), modifier)
    return LaneDecision(lane, tuple(reasons), seed, draw, facts.credit_tier)


def replay(facts: DeclarationFacts, profiles: Sequence[RuleProfile], settings: OfficeSettings,
           tally: OfficeTally, seed: int) -> LaneDecision:
    """The decision again, from what was recorded with it: the same inputs give the same lane."""
    return select_lane(facts, profiles, settings, tally, seed)


def lane_chances(facts: DeclarationFacts, profiles: Sequence[RuleProfile], settings: OfficeSettings,
                 tally: OfficeTally) -> dict[Lane, float]:
    """The exact chance of each lane for these facts (for a profile simulator, and for tests):
    the lane only changes where the draw crosses a threshold, so sum the stretches between them."""
    modifier = settings.modifier(facts.credit_tier)
    rules, top_ups = _rule_chances(facts, profiles, settings), _top_up_chances(settings, tally)
    cuts = sorted({0.0, 1.0, *(min(1.0, c.chance * modifier) for c in rules + top_ups)})
    result = dict.fromkeys(Lane, 0.0)
    for low, high in zip(cuts, cuts[1:], strict=False):
        result[_lane_for_draw(low, rules, top_ups, modifier)[0]] += high - low
    return result


# --- "why this lane" ---------------------------------------------------------------------------

_TIER_WORDS = {"advanced_aeo": "an advanced AEO", "general_aeo": "a general AEO", "general": "a general",
               "discredited": "a discredited"}


def _percent(fraction: float) -> str:
    return f"{fraction * 100:.4g} %"


def _reason_sentence(reason: LaneReason, credit_tier: str) -> str:
    if reason.rule == RANDOM_RULE:
        what = f"Random selection: every declaration has a {_percent(reason.chance)} chance of {reason.lane.value}"
    elif reason.rule == TOP_UP_RULE:
        what = (f"Top-up: {reason.name}; a declaration no rule selected goes {reason.lane.value} when the "
                f"draw is below the {_percent(reason.chance)} shortfall")
    else:
        what = (f"Profile {reason.rule} “{reason.name}” matched and routes to {reason.lane.value} "
                f"({LANE_WORK[reason.lane]}) with a {_percent(reason.chance)} chance")
    comparison = "is below" if reason.hit else "is not below"
    outcome = f"selected for {reason.lane.value}" if reason.hit else "not selected"
    trader = _TIER_WORDS.get(credit_tier, f"a {credit_tier}")
    return (f"{what}; × {reason.modifier:g} for {trader} trader = {_percent(reason.probability)}. "
            f"The draw {reason.draw:.6f} {comparison} {reason.probability:.6f}: {outcome}.")


def explain(decision: LaneDecision) -> list[str]:
    """Why this lane, in sentences an officer or trader can read."""
    lines = [f"One draw was made for this declaration: {decision.draw:.6f} (seed {decision.seed}); "
             "a rule selects it when the draw is below the rule's chance after the credit-tier modifier."]
    lines += [_reason_sentence(r, decision.credit_tier) for r in decision.reasons]
    work = LANE_WORK[decision.lane]
    if decision.lane is Lane.GREEN:
        lines.append(f"Lane green ({work}): no rule selected this declaration.")
    else:
        chosen = ", ".join(r.rule for r in decision.hits if r.lane is decision.lane)
        lines.append(f"Lane {decision.lane.value} ({work}): the most severe lane selected, by {chosen}.")
    return lines


# --- validation --------------------------------------------------------------------------------

def _at(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _check_probability(problems: Problems, path: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        problems.add(path, "probability_out_of_range", "A probability lies between 0 and 1.")


def _check_entries(problems: Problems, path: str, entries: tuple[str, ...], valid: Any, code: str,
                   message: str) -> None:
    for i, entry in enumerate(entries):
        if not entry.strip():
            problems.add(f"{path}[{i}]", "required", "An empty entry matches nothing; remove it.")
        elif not valid(entry):
            problems.add(f"{path}[{i}]", code, message)


def _validate_band(band: ValueBand, path: str) -> Problems:
    problems = Problems()
    if not _TARIFF_PREFIX.match(band.tariff_prefix):
        problems.add(_at(path, "tariff_prefix"), "invalid_tariff_prefix", "A tariff prefix is 1 to 10 digits.")
    if band.minimum is None and band.maximum is None:
        problems.add(path, "band_empty", "Give a minimum or a maximum unit value (or both).")
    for name in ("minimum", "maximum"):
        bound = getattr(band, name)
        if bound is not None and bound < 0:
            problems.add(_at(path, name), "negative_value", "A unit value is not negative.")
    if band.minimum is not None and band.maximum is not None and band.minimum > band.maximum:
        problems.add(_at(path, "minimum"), "band_min_above_max", "The minimum unit value exceeds the maximum.")
    return problems


def validate_conditions(conditions: ProfileConditions, path: str = "conditions",
                        transport_modes: Iterable[str] | None = None) -> Problems:
    problems = Problems()
    _check_entries(problems, _at(path, "tariff_prefixes"), conditions.tariff_prefixes,
                   _TARIFF_PREFIX.match, "invalid_tariff_prefix", "A tariff prefix is 1 to 10 digits.")
    _check_entries(problems, _at(path, "origins"), conditions.origins, _COUNTRY.match,
                   "invalid_country_code", "An origin is a two-letter ISO 3166 country code.")
    _check_entries(problems, _at(path, "credit_tiers"), conditions.credit_tiers, CREDIT_TIERS.__contains__,
                   "unknown_credit_tier", f"Credit tier is one of: {', '.join(CREDIT_TIERS)}.")
    known_modes = set(transport_modes) if transport_modes is not None else None
    _check_entries(problems, _at(path, "transport_modes"), conditions.transport_modes,
                   lambda mode: known_modes is None or mode in known_modes,
                   "unknown_transport_mode", "Unknown transport mode.")
    for name in ("trader_ids", "declarant_ids", "office_codes"):
        _check_entries(problems, _at(path, name), getattr(conditions, name), lambda _: True, "required", "")
    if conditions.value_band is not None:
        problems.extend(_validate_band(conditions.value_band, _at(path, "value_band")).items)
    return problems


def validate_profile(profile: RuleProfile, path: str = "",
                     transport_modes: Iterable[str] | None = None) -> Problems:
    """Every problem of a rule profile at once."""
    problems = Problems()
    if not profile.id.strip():
        problems.add(_at(path, "id"), "required", "A profile needs an identifier.")
    if not profile.name.strip():
        problems.add(_at(path, "name"), "required", "Give the profile a name officers will recognise.")
    if not profile.lane:
        problems.add(_at(path, "lane"), "required", "Say which lane the profile routes to.")
    elif profile.lane == Lane.GREEN:
        problems.add(_at(path, "lane"), "green_lane_has_no_effect",
                     "Green is what no rule selects; a profile routes to red, yellow or blue.")
    elif profile.lane not in {lane.value for lane in SELECTING_LANES}:
        problems.add(_at(path, "lane"), "unknown_lane", "The lane is red, yellow or blue.")
    _check_probability(problems, _at(path, "probability"), profile.probability)
    problems.extend(validate_conditions(profile.conditions, _at(path, "conditions"), transport_modes).items)
    return problems


def validate_office_settings(settings: OfficeSettings, path: str = "") -> Problems:
    problems = Problems()
    if not settings.office_code.strip():
        problems.add(_at(path, "office_code"), "required", "Settings belong to a customs office.")
    rates_path = _at(path, "expected_rates")
    for lane, rate in settings.expected_rates.items():
        if lane not in {lane.value for lane in SELECTING_LANES}:
            problems.add(f"{rates_path}.{lane}", "unknown_lane",
                         "Expected rates are for red, yellow and blue; green is what they leave.")
        _check_probability(problems, f"{rates_path}.{lane}", rate)
    if sum(settings.expected_rates.values()) > 1.0:
        problems.add(rates_path, "expected_rates_exceed_one", "The expected rates add up to more than 100 %.")
    _check_probability(problems, _at(path, "minimum_random_rate"), settings.minimum_random_rate)
    problems.extend(_validate_modifiers(settings.tier_modifiers, _at(path, "tier_modifiers")).items)
    return problems


def _validate_modifiers(modifiers: Mapping[str, float], path: str) -> Problems:
    problems = Problems()
    for tier in modifiers:
        if tier not in CREDIT_TIERS:
            problems.add(f"{path}.{tier}", "unknown_credit_tier", f"Credit tier is one of: {', '.join(CREDIT_TIERS)}.")
    for tier in CREDIT_TIERS:
        if tier not in modifiers:
            problems.add(f"{path}.{tier}", "required", "Every credit tier needs a modifier.")
        elif modifiers[tier] < 0:
            problems.add(f"{path}.{tier}", "negative_modifier", "A modifier is not negative.")
    if problems:
        return problems
    # GACC rule: AEO inspection rate below 20 % of the standard rate
    if not modifiers["advanced_aeo"] < ADVANCED_AEO_CEILING * modifiers["general"]:
        problems.add(f"{path}.advanced_aeo", "aeo_modifier_too_high",
                     "Advanced AEO enterprises are inspected at less than 20 % of the general rate.")
    ordered = [modifiers[tier] for tier in CREDIT_TIERS]
    if ordered != sorted(ordered):
        problems.add(path, "tier_modifiers_out_of_order",
                     "Better credit never means more inspection: advanced AEO ≤ general AEO ≤ general ≤ discredited.")
    return problems


def validate_tally(tally: OfficeTally, path: str = "") -> Problems:
    problems = Problems()
    if tally.decided < 0:
        problems.add(_at(path, "decided"), "negative_count", "A count is not negative.")
    for lane, count in tally.by_lane.items():
        if lane not in {lane.value for lane in Lane}:
            problems.add(f"{_at(path, 'by_lane')}.{lane}", "unknown_lane", "The lane is red, yellow, blue or green.")
        if count < 0:
            problems.add(f"{_at(path, 'by_lane')}.{lane}", "negative_count", "A count is not negative.")
    if sum(tally.by_lane.values()) > tally.decided:
        problems.add(_at(path, "by_lane"), "more_lanes_than_decided",
                     "More declarations per lane than were decided in all.")
    return problems


# --- plain dicts for storage as JSON -------------------------------------------------------------

class _Reader:
    """Reads one JSON object, noting type problems and handing back harmless stand-ins, so the
    semantic validation can still report everything else in the same answer."""

    def __init__(self, data: Any, path: str, problems: Problems, allowed: Iterable[str]) -> None:
        self.path, self.problems = path, problems
        if not isinstance(data, Mapping):
            problems.add(path, "invalid_type", "Expected an object.")
            data = {}
        self.data = data
        for key in data:
            if key not in allowed:
                problems.add(self.at(str(key)), "unknown_field", f"Unknown field {key!r}.")

    def at(self, key: str) -> str:
        return _at(self.path, key)

    def has(self, key: str) -> bool:
        return self.data.get(key) is not None

    def text(self, key: str, default: str = "") -> str:
        value = self.data.get(key, default)
        if value is None:
            return default
        if not isinstance(value, str):
            self.problems.add(self.at(key), "invalid_type", "Expected a string.")
            return default
        return value.strip()

    def texts(self, key: str) -> tuple[str, ...]:
        value = self.data.get(key) or []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.problems.add(self.at(key), "invalid_type", "Expected a list of strings.")
            return ()
        return tuple(v.strip() for v in value)

    def flag(self, key: str, default: bool) -> bool:
        value = self.data.get(key, default)
        if not isinstance(value, bool):
            self.problems.add(self.at(key), "invalid_type", "Expected true or false.")
            return default
        return value

    def number(self, key: str, default: float) -> float:
        return _number(self.data.get(key, default), self.at(key), self.problems, default)

    def decimal(self, key: str) -> Decimal | None:
        if not self.has(key):
            return None
        value = parse_decimal(self.data[key])
        if value is None:
            self.problems.add(self.at(key), "not_a_number", "Expected a decimal number (as a string).")
        return value

    def integer(self, key: str) -> int:
        value = self.data.get(key, 0)
        if isinstance(value, bool) or not isinstance(value, int):
            self.problems.add(self.at(key), "invalid_type", "Expected a whole number.")
            return 0
        return value

    def mapping(self, key: str) -> Mapping[str, Any]:
        value = self.data.get(key) or {}
        if not isinstance(value, Mapping):
            self.problems.add(self.at(key), "invalid_type", "Expected an object.")
            return {}
        return value


def _number(value: Any, path: str, problems: Problems, default: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        problems.add(path, "not_a_number", "Expected a number.")
        return default
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not math.isfinite(number):
        problems.add(path, "not_a_number", "Expected a number.")
        return default
    return number


def _parse_band(data: Any, path: str, problems: Problems) -> ValueBand:
    r = _Reader(data, path, problems, ("tariff_prefix", "minimum", "maximum", "unit"))
    return ValueBand(tariff_digits(r.text("tariff_prefix")) or r.text("tariff_prefix"),
                     r.decimal("minimum"), r.decimal("maximum"), r.text("unit") or None)


def _parse_conditions(data: Any, path: str, problems: Problems) -> ProfileConditions:
    r = _Reader(data, path, problems, ("tariff_prefixes", "origins", "value_band", "trader_ids", "declarant_ids",
                                       "credit_tiers", "transport_modes", "office_codes", "first_declaration"))
    prefixes = tuple(tariff_digits(p) or p for p in r.texts("tariff_prefixes"))
    band = _parse_band(r.data["value_band"], r.at("value_band"), problems) if r.has("value_band") else None
    return ProfileConditions(
        tariff_prefixes=prefixes, origins=tuple(o.upper() for o in r.texts("origins")), value_band=band,
        trader_ids=r.texts("trader_ids"), declarant_ids=r.texts("declarant_ids"),
        credit_tiers=r.texts("credit_tiers"), transport_modes=r.texts("transport_modes"),
        office_codes=r.texts("office_codes"), first_declaration=r.flag("first_declaration", False))


def parse_profile(data: Any, path: str = "", transport_modes: Iterable[str] | None = None) -> RuleProfile:
    """A rule profile from its stored or submitted form; refuses it with every problem at once."""
    problems = Problems()
    r = _Reader(data, path, problems, ("id", "name", "active", "lane", "probability", "conditions"))
    profile = RuleProfile(id=r.text("id"), name=r.text("name"), lane=r.text("lane").lower(),
                          probability=r.number("probability", 0.0),
                          conditions=_parse_conditions(r.mapping("conditions"), r.at("conditions"), problems),
                          active=r.flag("active", True))
    problems.extend(validate_profile(profile, path, transport_modes).items)
    problems.raise_if_any()
    return profile


def _amount(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def render_profile(profile: RuleProfile) -> dict[str, Any]:
    c = profile.conditions
    band = c.value_band
    conditions: dict[str, Any] = {
        "tariff_prefixes": list(c.tariff_prefixes), "origins": list(c.origins),
        "value_band": None if band is None else {"tariff_prefix": band.tariff_prefix, "unit": band.unit,
                                                  "minimum": _amount(band.minimum), "maximum": _amount(band.maximum)},
        "trader_ids": list(c.trader_ids), "declarant_ids": list(c.declarant_ids),
        "credit_tiers": list(c.credit_tiers), "transport_modes": list(c.transport_modes),
        "office_codes": list(c.office_codes), "first_declaration": c.first_declaration,
    }
    return {"id": profile.id, "name": profile.name, "active": profile.active, "lane": str(profile.lane),
            "probability": profile.probability, "conditions": conditions}


def _numbers(data: Mapping[str, Any], path: str, problems: Problems) -> dict[str, float]:
    return {str(k): _number(v, f"{path}.{k}", problems, 0.0) for k, v in data.items()}


def parse_office_settings(data: Any, path: str = "") -> OfficeSettings:
    """An office's selectivity settings; what is left out keeps its default."""
    problems = Problems()
    r = _Reader(data, path, problems, ("office_code", "expected_rates", "minimum_random_rate", "tier_modifiers"))
    rates = _numbers(r.mapping("expected_rates"), r.at("expected_rates"), problems) if r.has("expected_rates") \
        else dict(DEFAULT_EXPECTED_RATES)
    modifiers = {**DEFAULT_TIER_MODIFIERS, **_numbers(r.mapping("tier_modifiers"), r.at("tier_modifiers"), problems)}
    settings = OfficeSettings(r.text("office_code"), rates,
                              r.number("minimum_random_rate", DEFAULT_MINIMUM_RANDOM_RATE), modifiers)
    problems.extend(validate_office_settings(settings, path).items)
    problems.raise_if_any()
    return settings


def render_office_settings(settings: OfficeSettings) -> dict[str, Any]:
    return {"office_code": settings.office_code, "expected_rates": dict(settings.expected_rates),
            "minimum_random_rate": settings.minimum_random_rate, "tier_modifiers": dict(settings.tier_modifiers)}


def parse_tally(data: Any, path: str = "") -> OfficeTally:
    problems = Problems()
    r = _Reader(data, path, problems, ("decided", "by_lane"))
    by_lane = {}
    for lane, count in r.mapping("by_lane").items():
        if isinstance(count, bool) or not isinstance(count, int):
            problems.add(f"{r.at('by_lane')}.{lane}", "invalid_type", "Expected a whole number.")
        else:
            by_lane[str(lane)] = count
    tally = OfficeTally(r.integer("decided"), by_lane)
    problems.extend(validate_tally(tally, path).items)
    problems.raise_if_any()
    return tally


def render_tally(tally: OfficeTally) -> dict[str, Any]:
    return {"decided": tally.decided, "by_lane": dict(tally.by_lane)}


def render_facts(facts: DeclarationFacts) -> dict[str, Any]:
    """The facts as decided on, to keep with the decision for replay."""
    return {"office_code": facts.office_code, "trader_id": facts.trader_id, "declarant_id": facts.declarant_id,
            "credit_tier": facts.credit_tier, "transport_mode": facts.transport_mode,
            "is_first_declaration": facts.is_first_declaration,
            "items": [{"tariff_code": i.tariff_code, "origin": i.origin, "quantity": str(i.quantity),
                       "value_cny": str(i.value_cny), "unit": i.unit} for i in facts.items]}


def parse_facts(data: Mapping[str, Any]) -> DeclarationFacts:
    """Facts back from `render_facts` (a stored record, so trusted: no validation)."""
    items = tuple(ItemFacts(i["tariff_code"], i["origin"], Decimal(i["quantity"]), Decimal(i["value_cny"]),
                            i["unit"]) for i in data["items"])
    return DeclarationFacts(data["office_code"], data["trader_id"], data["declarant_id"], data["credit_tier"],
                            data["transport_mode"], data["is_first_declaration"], items)


def render_decision(decision: LaneDecision) -> dict[str, Any]:
    return {"lane": decision.lane.value, "seed": decision.seed, "draw": decision.draw,
            "credit_tier": decision.credit_tier,
            "reasons": [{"rule": r.rule, "name": r.name, "lane": r.lane.value, "chance": r.chance,
                         "modifier": r.modifier, "probability": r.probability, "draw": r.draw, "hit": r.hit}
                        for r in decision.reasons]}


def parse_decision(data: Mapping[str, Any]) -> LaneDecision:
    """A decision back from `render_decision` (a stored record: no validation)."""
    reasons = tuple(LaneReason(r["rule"], r["name"], Lane(r["lane"]), r["chance"], r["modifier"],
                               r["probability"], r["draw"], r["hit"]) for r in data["reasons"])
    return LaneDecision(Lane(data["lane"]), reasons, data["seed"], data["draw"], data["credit_tier"])
