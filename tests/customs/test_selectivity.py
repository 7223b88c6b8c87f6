"""Selectivity: risk lanes chosen from rule profiles, office settings and a recorded seed."""

from __future__ import annotations

import json
from dataclasses import replace
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradewindow.customs.selectivity import (
    CREDIT_TIERS,
    DEFAULT_TIER_MODIFIERS,
    SEVERITY,
    DeclarationFacts,
    ItemFacts,
    Lane,
    OfficeSettings,
    OfficeTally,
    ProfileConditions,
    RuleProfile,
    ValueBand,
    explain,
    lane_chances,
    most_severe,
    parse_decision,
    parse_facts,
    parse_office_settings,
    parse_profile,
    parse_tally,
    profile_matches,
    render_decision,
    render_facts,
    render_office_settings,
    render_profile,
    render_tally,
    replay,
    select_lane,
    validate_office_settings,
    validate_profile,
    validate_tally,
)
from tradewindow.platform.errors import ValidationFailed
from tradewindow.registry.model import CreditTier

D = Decimal
SEEDS = range(5_000)  # a fixed set: the statistical tests are deterministic


def item(tariff_code: str = "84713000", origin: str = "DE", quantity: str = "10", value: str = "50000",
         unit: str = "PCE") -> ItemFacts:
    return ItemFacts(tariff_code, origin, D(quantity), D(value), unit)


def facts(*items: ItemFacts, tier: str = "general", trader: str = "T1", declarant: str = "B1",
          mode: str = "rail", first: bool = False, office: str = "8601") -> DeclarationFacts:
    return DeclarationFacts(office, trader, declarant, tier, mode, first, items or (item(),))


def profile(lane: str = "red", probability: float = 1.0, pid: str = "P1", name: str = "Laptops from Germany",
            **conditions) -> RuleProfile:
    return RuleProfile(pid, name, lane, probability, ProfileConditions(**conditions))


def quiet_office(**changes) -> OfficeSettings:
    """An office with no random rate and no expected rates: only profiles select."""
    return replace(OfficeSettings("8601", expected_rates={}, minimum_random_rate=0.0), **changes)


NO_TALLY = OfficeTally()


def share_selected(declaration: DeclarationFacts, profiles, office, tally=NO_TALLY) -> float:
    lanes = [select_lane(declaration, profiles, office, tally, seed).lane for seed in SEEDS]
    return sum(lane is not Lane.GREEN for lane in lanes) / len(lanes)


# --- strategies --------------------------------------------------------------------------------

tariff_codes = st.sampled_from(["84713000", "85171200", "02013000", "61091000", "4011.10.00"])
origins = st.sampled_from(["DE", "PL", "KZ", "VN", "US"])
tiers = st.sampled_from(CREDIT_TIERS)
probabilities = st.floats(min_value=0, max_value=1, allow_nan=False)
seeds = st.integers(min_value=0, max_value=2**63 - 1)


@st.composite
def items_(draw) -> ItemFacts:
    return ItemFacts(draw(tariff_codes), draw(origins), D(draw(st.integers(0, 1_000))),
                     D(draw(st.integers(1, 10_000_000))), draw(st.sampled_from(["PCE", "KGM"])))


@st.composite
def facts_(draw, tier=tiers) -> DeclarationFacts:
    return DeclarationFacts(draw(st.sampled_from(["8601", "8602"])), draw(st.sampled_from(["T1", "T2"])),
                            draw(st.sampled_from(["B1", "B2"])), draw(tier),
                            draw(st.sampled_from(["rail", "sea", "air"])), draw(st.booleans()),
                            tuple(draw(st.lists(items_(), min_size=1, max_size=4))))


@st.composite
def conditions_(draw) -> ProfileConditions:
    some = lambda values: st.lists(st.sampled_from(values), max_size=2).map(tuple)  # noqa: E731
    band = draw(st.none() | st.builds(ValueBand, st.sampled_from(["84", "8517", "0201"]),
                                      st.none() | st.integers(0, 1_000).map(D),
                                      st.none() | st.integers(1_000, 100_000).map(D),
                                      st.none() | st.sampled_from(["PCE", "KGM"])))
    if band is not None and band.minimum is None and band.maximum is None:
        band = replace(band, maximum=D(5000))
    return ProfileConditions(
        tariff_prefixes=draw(some(["84", "8517", "02", "6109", "4011"])), origins=draw(some(["DE", "PL", "KZ"])),
        value_band=band, trader_ids=draw(some(["T1", "T2"])), declarant_ids=draw(some(["B1", "B2"])),
        credit_tiers=draw(some(list(CREDIT_TIERS))), transport_modes=draw(some(["rail", "sea", "air"])),
        office_codes=draw(some(["8601", "8602"])), first_declaration=draw(st.booleans()))


@st.composite
def profiles_(draw) -> list[RuleProfile]:
    count = draw(st.integers(0, 5))
    return [RuleProfile(f"P{i}", f"Profile {i}", draw(st.sampled_from(["red", "yellow", "blue"])),
                        draw(probabilities), draw(conditions_()), draw(st.booleans() | st.just(True)))
            for i in range(count)]


@st.composite
def offices(draw) -> OfficeSettings:
    red, yellow, blue = (draw(st.floats(0, 0.3)) for _ in range(3))
    return OfficeSettings("8601", {"red": red, "yellow": yellow, "blue": blue}, draw(st.floats(0, 0.1)),
                          dict(DEFAULT_TIER_MODIFIERS))


@st.composite
def tallies(draw) -> OfficeTally:
    counts = {lane.value: draw(st.integers(0, 200)) for lane in Lane}
    return OfficeTally(sum(counts.values()) + draw(st.integers(0, 10)), counts)


# --- lanes -------------------------------------------------------------------------------------

def test_lanes_rank_red_above_yellow_above_blue_above_green() -> None:
    assert sorted(Lane, key=SEVERITY.__getitem__, reverse=True) == [Lane.RED, Lane.YELLOW, Lane.BLUE, Lane.GREEN]
    assert most_severe([]) is Lane.GREEN
    assert most_severe([Lane.BLUE, Lane.RED, Lane.YELLOW]) is Lane.RED


def test_credit_tiers_are_the_registrys() -> None:
    assert set(CREDIT_TIERS) == {tier.value for tier in CreditTier}


# --- matching ----------------------------------------------------------------------------------

def test_a_tariff_prefix_matches_codes_written_with_or_without_dots() -> None:
    rule = profile(tariff_prefixes=("8471",))
    assert profile_matches(rule, facts(item("8471.30.00")))
    assert not profile_matches(rule, facts(item("85171200")))


def test_item_conditions_must_hold_on_one_and_the_same_item() -> None:
    rule = profile(tariff_prefixes=("8471",), origins=("VN",))
    mixed = facts(item("84713000", origin="DE"), item("85171200", origin="VN"))
    assert not profile_matches(rule, mixed)
    assert profile_matches(rule, facts(item("84713000", origin="DE"), item("84713000", origin="VN")))


def test_a_list_condition_holds_when_any_entry_matches() -> None:
    rule = profile(origins=("KZ", "DE"), transport_modes=("sea", "rail"))
    assert profile_matches(rule, facts(item(origin="DE"), mode="rail"))
    assert not profile_matches(rule, facts(item(origin="DE"), mode="air"))


def test_declaration_conditions_all_hold_together() -> None:
    rule = profile(trader_ids=("T1",), declarant_ids=("B9",), credit_tiers=("general",))
    assert not profile_matches(rule, facts(trader="T1", declarant="B1"))
    assert profile_matches(rule, facts(trader="T1", declarant="B9"))
    assert not profile_matches(rule, facts(trader="T1", declarant="B9", tier="general_aeo"))


def test_a_first_declaration_profile_only_matches_a_traders_first_declaration() -> None:
    rule = profile(first_declaration=True)
    assert profile_matches(rule, facts(first=True))
    assert not profile_matches(rule, facts(first=False))


@pytest.mark.parametrize(("value", "flagged"), [("400", True), ("1000", False), ("5000", False), ("9000", True)])
def test_a_unit_value_outside_the_band_flags_the_item(value: str, flagged: bool) -> None:
    band = ValueBand("8471", minimum=D("1000"), maximum=D("5000"), unit="PCE")
    rule = profile(value_band=band)
    assert profile_matches(rule, facts(item("84713000", quantity="1", value=value))) is flagged


def test_a_value_band_ignores_other_goods_and_other_units() -> None:
    rule = profile(value_band=ValueBand("8471", minimum=D("1000"), unit="PCE"))
    assert not profile_matches(rule, facts(item("85171200", quantity="1", value="1")))
    assert not profile_matches(rule, facts(item("84713000", quantity="1", value="1", unit="KGM")))


def test_a_value_declared_on_no_quantity_is_outside_any_band() -> None:
    rule = profile(value_band=ValueBand("8471", maximum=D("5000")))
    assert profile_matches(rule, facts(item("84713000", quantity="0", value="100")))


def test_an_inactive_profile_never_matches() -> None:
    assert not profile_matches(replace(profile(), active=False), facts())


def test_a_profile_without_conditions_matches_every_declaration() -> None:
    assert profile_matches(profile(), facts(item("02013000", origin="US"), tier="advanced_aeo"))


# --- deciding ----------------------------------------------------------------------------------

@given(facts_(), profiles_(), offices(), tallies(), seeds)
def test_the_same_seed_gives_the_same_decision_and_replay_reproduces_it(declaration, rules, office, tally, seed):
    decision = select_lane(declaration, rules, office, tally, seed)
    assert select_lane(declaration, rules, office, tally, seed) == decision
    assert replay(declaration, rules, office, tally, seed) == decision
    assert decision.seed == seed


@given(facts_(), profiles_(), offices(), tallies(), seeds)
def test_the_lane_is_always_one_of_the_four_and_the_most_severe_hit(declaration, rules, office, tally, seed):
    decision = select_lane(declaration, rules, office, tally, seed)
    assert decision.lane in set(Lane)
    assert decision.lane is most_severe(r.lane for r in decision.hits)


@given(facts_(), seeds)
def test_with_no_profiles_no_random_rate_and_no_top_up_every_declaration_is_green(declaration, seed):
    decision = select_lane(declaration, [], quiet_office(), NO_TALLY, seed)
    assert decision.lane is Lane.GREEN
    assert decision.reasons == ()


@given(facts_(tier=st.just("general")), st.sampled_from(["red", "yellow", "blue"]), seeds)
def test_a_probability_one_profile_always_selects_a_general_trader(declaration, lane, seed):
    decision = select_lane(declaration, [profile(lane)], quiet_office(), NO_TALLY, seed)
    assert decision.lane == lane


@given(facts_(), seeds)
def test_a_probability_zero_profile_never_selects(declaration, seed):
    assert select_lane(declaration, [profile("red", 0.0)], quiet_office(), NO_TALLY, seed).lane is Lane.GREEN


@given(st.lists(st.sampled_from(["red", "yellow", "blue"]), min_size=1, max_size=4), seeds)
def test_of_several_selecting_profiles_the_most_severe_lane_wins(lanes, seed):
    rules = [profile(lane, pid=f"P{i}") for i, lane in enumerate(lanes)]
    decision = select_lane(facts(), rules, quiet_office(), NO_TALLY, seed)
    assert decision.lane is most_severe(Lane(lane) for lane in lanes)


def test_advanced_aeo_traders_are_selected_at_under_20_percent_of_the_general_rate() -> None:
    rules = [profile("red", 0.5, pid="P1"), profile("yellow", 0.3, pid="P2", origins=("DE",))]
    office = OfficeSettings("8601")
    general = share_selected(facts(tier="general"), rules, office)
    advanced = share_selected(facts(tier="advanced_aeo"), rules, office)
    assert general > 0.4
    assert advanced < 0.2 * general


@settings(max_examples=200)
@given(facts_(), profiles_(), offices(), tallies())
def test_for_any_profiles_and_tally_the_advanced_aeo_chance_stays_under_20_percent_of_general(
        declaration, rules, office, tally):
    # The same goods from the same trader, only its standing differs: profiles that single out a
    # credit tier (customs may target discredited traders) are left out of this comparison.
    rules = [replace(r, conditions=replace(r.conditions, credit_tiers=())) for r in rules]
    general = lane_chances(replace(declaration, credit_tier="general"), rules, office, tally)
    advanced = lane_chances(replace(declaration, credit_tier="advanced_aeo"), rules, office, tally)
    for lane in (Lane.RED, Lane.YELLOW, Lane.BLUE):
        assert advanced[lane] <= 0.2 * general[lane] + 1e-12
    assert 1 - advanced[Lane.GREEN] <= 0.2 * (1 - general[Lane.GREEN]) + 1e-12


def test_discredited_traders_are_selected_more_often_than_general_ones() -> None:
    rules = [profile("yellow", 0.1)]
    office = OfficeSettings("8601")
    general = share_selected(facts(tier="general"), rules, office)
    discredited = share_selected(facts(tier="discredited"), rules, office)
    assert discredited > 2.5 * general


def test_a_tier_modifier_never_raises_a_probability_above_one() -> None:
    decision = select_lane(facts(tier="discredited"), [profile("red", 0.6)], quiet_office(), NO_TALLY, 7)
    assert decision.reasons[0].probability == 1.0
    assert decision.lane is Lane.RED


def test_the_minimum_random_rate_selects_for_red_whatever_the_profiles() -> None:
    office = quiet_office(minimum_random_rate=0.05)
    share = share_selected(facts(), [], office)
    assert 0.04 < share < 0.06
    decision = next(select_lane(facts(), [], office, NO_TALLY, seed) for seed in SEEDS
                    if select_lane(facts(), [], office, NO_TALLY, seed).lane is Lane.RED)
    assert [r.rule for r in decision.hits] == ["random"]


@given(facts_(), profiles_(), offices(), tallies())
def test_lane_chances_add_up_to_one(declaration, rules, office, tally):
    assert sum(lane_chances(declaration, rules, office, tally).values()) == pytest.approx(1.0)


def test_lane_chances_are_what_the_draws_give_over_many_seeds() -> None:
    rules = [profile("red", 0.1, pid="P1"), profile("blue", 0.3, pid="P2")]
    office = OfficeSettings("8601")
    tally = OfficeTally(100, {"red": 1, "yellow": 2, "blue": 20, "green": 77})
    declaration = facts(tier="general_aeo")
    chances = lane_chances(declaration, rules, office, tally)
    for lane in Lane:
        observed = sum(select_lane(declaration, rules, office, tally, s).lane is lane for s in SEEDS) / len(SEEDS)
        assert observed == pytest.approx(chances[lane], abs=0.015)


# --- top-up ------------------------------------------------------------------------------------

def test_a_lane_short_of_its_expected_rate_takes_would_be_greens_at_the_shortfall() -> None:
    # Yellow expected at 5 %, observed 2 % this period: would-be greens go yellow 3 % of the time.
    office = quiet_office(expected_rates={"yellow": 0.05})
    tally = OfficeTally(1000, {"yellow": 20, "green": 980})
    share = share_selected(facts(), [], office, tally)
    assert 0.024 < share < 0.036
    decision = next(d for d in (select_lane(facts(), [], office, tally, s) for s in SEEDS) if d.lane is Lane.YELLOW)
    assert decision.hits[0].rule == "top-up"
    assert decision.hits[0].chance == pytest.approx(0.03)


def test_no_top_up_once_the_office_meets_its_expected_rates() -> None:
    office = quiet_office(expected_rates={"red": 0.02, "yellow": 0.05})
    tally = OfficeTally(100, {"red": 2, "yellow": 6, "green": 92})
    assert share_selected(facts(), [], office, tally) == 0


def test_top_up_is_scaled_by_the_credit_tier_modifier() -> None:
    office = quiet_office(expected_rates={"blue": 0.10})
    general = share_selected(facts(tier="general"), [], office)
    advanced = share_selected(facts(tier="advanced_aeo"), [], office)
    assert 0.08 < general < 0.12
    assert advanced < 0.2 * general


@given(seeds)
def test_top_up_never_moves_a_declaration_a_profile_selected(seed):
    office = quiet_office(expected_rates={"red": 1.0})
    decision = select_lane(facts(), [profile("blue", 1.0)], office, NO_TALLY, seed)
    assert decision.lane is Lane.BLUE
    assert all(r.rule != "top-up" for r in decision.reasons)


def test_a_tally_counts_one_more_decision() -> None:
    tally = OfficeTally(3, {"green": 3}).counted(Lane.RED)
    assert tally == OfficeTally(4, {"green": 3, "red": 1})
    assert tally.share(Lane.RED) == 0.25


# --- why this lane -----------------------------------------------------------------------------

@given(facts_(), profiles_(), offices(), tallies(), seeds)
def test_the_explanation_mentions_each_selecting_profile_and_the_lane(declaration, rules, office, tally, seed):
    decision = select_lane(declaration, rules, office, tally, seed)
    text = "\n".join(explain(decision))
    for hit in decision.hits:
        if hit.rule not in ("random", "top-up"):
            assert f"Profile {hit.rule} “{hit.name}”" in text
    assert f"Lane {decision.lane.value}" in explain(decision)[-1]
    assert str(seed) in text


def test_the_explanation_reads_as_sentences_for_an_officer() -> None:
    rule = profile("red", 0.5, pid="P7", name="Used tyres", tariff_prefixes=("4011",))
    decision = select_lane(facts(item("40111000")), [rule], quiet_office(), NO_TALLY, seed=1)
    lines = explain(decision)
    assert "Profile P7 “Used tyres” matched and routes to red (physical inspection) with a 50 % chance" in lines[1]
    assert "× 1 for a general trader = 50 %" in lines[1]
    assert lines[-1].startswith(f"Lane {decision.lane.value}")


# --- validation --------------------------------------------------------------------------------

def codes(problems) -> set[tuple[str, str]]:
    return {(p.path, p.code) for p in problems.items}


def test_a_profile_reports_every_problem_at_once() -> None:
    bad = RuleProfile("", " ", "purple", 1.5, ProfileConditions(
        tariff_prefixes=("84x",), origins=("Germany",), credit_tiers=("gold",), transport_modes=("rocket",),
        trader_ids=("",), value_band=ValueBand("8471", minimum=D(10), maximum=D(5))))
    assert codes(validate_profile(bad, transport_modes={"rail", "sea"})) == {
        ("id", "required"), ("name", "required"), ("lane", "unknown_lane"),
        ("probability", "probability_out_of_range"),
        ("conditions.tariff_prefixes[0]", "invalid_tariff_prefix"),
        ("conditions.origins[0]", "invalid_country_code"),
        ("conditions.credit_tiers[0]", "unknown_credit_tier"),
        ("conditions.transport_modes[0]", "unknown_transport_mode"),
        ("conditions.trader_ids[0]", "required"),
        ("conditions.value_band.minimum", "band_min_above_max"),
    }


def test_a_profile_routing_to_green_is_refused_as_having_no_effect() -> None:
    assert codes(validate_profile(profile("green"))) == {("lane", "green_lane_has_no_effect")}


def test_a_value_band_needs_a_bound() -> None:
    assert ("conditions.value_band", "band_empty") in codes(validate_profile(profile(value_band=ValueBand("84"))))


def test_the_default_office_settings_are_valid() -> None:
    assert not validate_office_settings(OfficeSettings("8601"))


def test_advanced_aeo_modifier_must_stay_below_20_percent_of_general() -> None:
    office = OfficeSettings("8601", tier_modifiers={**DEFAULT_TIER_MODIFIERS, "advanced_aeo": 0.2})
    assert codes(validate_office_settings(office)) == {("tier_modifiers.advanced_aeo", "aeo_modifier_too_high")}


def test_office_settings_report_every_problem_at_once() -> None:
    office = OfficeSettings("", {"red": 0.6, "yellow": 0.6, "green": 0.1}, -0.1,
                            {"advanced_aeo": 0.1, "general_aeo": 2.0, "general": 1.0, "discredited": 3.0})
    assert codes(validate_office_settings(office)) == {
        ("office_code", "required"), ("expected_rates.green", "unknown_lane"),
        ("expected_rates", "expected_rates_exceed_one"), ("minimum_random_rate", "probability_out_of_range"),
        ("tier_modifiers", "tier_modifiers_out_of_order"),
    }


def test_every_credit_tier_needs_a_modifier() -> None:
    office = OfficeSettings("8601", tier_modifiers={"general": 1.0, "gold": 0.0})
    assert codes(validate_office_settings(office)) == {
        ("tier_modifiers.gold", "unknown_credit_tier"), ("tier_modifiers.advanced_aeo", "required"),
        ("tier_modifiers.general_aeo", "required"), ("tier_modifiers.discredited", "required")}


def test_a_tally_cannot_hold_more_lanes_than_decisions() -> None:
    assert codes(validate_tally(OfficeTally(2, {"red": 2, "green": 2, "pink": -1}))) == {
        ("by_lane", "more_lanes_than_decided"), ("by_lane.pink", "unknown_lane"), ("by_lane.pink", "negative_count")}


def test_an_unknown_credit_tier_is_refused_when_deciding() -> None:
    with pytest.raises(ValidationFailed) as refused:
        select_lane(facts(tier="gold"), [], OfficeSettings("8601"), NO_TALLY, 1)
    assert refused.value.code == "unknown_credit_tier"


# --- storage as JSON ---------------------------------------------------------------------------

@given(profiles_())
def test_a_profile_survives_rendering_to_json_and_back(rules):
    for rule in rules:
        assert parse_profile(json.loads(json.dumps(render_profile(rule)))) == rule


def test_parsing_a_profile_reports_type_and_rule_problems_together() -> None:
    data = {"id": "P1", "name": "", "lane": "red", "probability": "lots", "colour": "blue",
            "conditions": {"origins": "DE", "value_band": {"tariff_prefix": "8471", "minimum": "x", "maximum": "5"}}}
    with pytest.raises(ValidationFailed) as refused:
        parse_profile(data)
    assert {(p.path, p.code) for p in refused.value.problems} == {
        ("colour", "unknown_field"), ("name", "required"), ("probability", "not_a_number"),
        ("conditions.origins", "invalid_type"), ("conditions.value_band.minimum", "not_a_number")}


def test_parsing_normalises_prefixes_and_origins() -> None:
    rule = parse_profile({"id": "P1", "name": "Steaks", "lane": "Yellow", "probability": "0.25",
                          "conditions": {"tariff_prefixes": ["0201.30"], "origins": ["ar"]}})
    assert (rule.lane, rule.probability) == ("yellow", 0.25)
    assert rule.conditions.tariff_prefixes == ("020130",) and rule.conditions.origins == ("AR",)


def test_office_settings_survive_rendering_and_fill_in_defaults() -> None:
    office = OfficeSettings("8601", {"red": 0.03}, 0.02, dict(DEFAULT_TIER_MODIFIERS))
    assert parse_office_settings(json.loads(json.dumps(render_office_settings(office)))) == office
    assert parse_office_settings({"office_code": "8602"}) == OfficeSettings("8602")


def test_parsing_office_settings_refuses_an_aeo_modifier_against_the_gacc_rule() -> None:
    with pytest.raises(ValidationFailed) as refused:
        parse_office_settings({"office_code": "8601", "tier_modifiers": {"advanced_aeo": 0.5}})
    assert refused.value.code == "aeo_modifier_too_high"


def test_a_tally_survives_rendering_and_is_checked_when_parsed() -> None:
    tally = OfficeTally(10, {"red": 1, "green": 9})
    assert parse_tally(json.loads(json.dumps(render_tally(tally)))) == tally
    with pytest.raises(ValidationFailed):
        parse_tally({"decided": 1, "by_lane": {"red": 2}})


@given(facts_(), profiles_(), offices(), tallies(), seeds)
def test_a_stored_decision_replays_from_its_stored_inputs(declaration, rules, office, tally, seed):
    decision = select_lane(declaration, rules, office, tally, seed)
    stored = json.loads(json.dumps({
        "facts": render_facts(declaration), "profiles": [render_profile(r) for r in rules],
        "settings": render_office_settings(office), "tally": render_tally(tally),
        "decision": render_decision(decision)}))
    assert parse_decision(stored["decision"]) == decision
    again = replay(parse_facts(stored["facts"]), [parse_profile(p) for p in stored["profiles"]],
                   parse_office_settings(stored["settings"]), parse_tally(stored["tally"]), stored["decision"]["seed"])
    assert again == decision
