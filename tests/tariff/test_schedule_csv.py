"""Importing a schedule: every bad cell is reported with its row and column."""

from __future__ import annotations

from tradewindow.tariff.model import (
    SCHEDULE_COLUMNS,
    read_agreements_csv,
    read_exchange_rates_csv,
    read_schedule_csv,
)

HEADER = ",".join(SCHEDULE_COLUMNS)


def schedule(*rows: str) -> str:
    return "\n".join([HEADER, *rows]) + "\n"


GOOD_LINE = "22042100,line,220421,LTR,Wine,葡萄酒,,,,,,2017-01-01,,demo,"


def codes(problems) -> list[tuple[str, str]]:
    return [(p.path, p.code) for p in problems]


def test_a_schedule_with_a_line_and_its_measures_parses():
    lines, problems = read_schedule_csv(schedule(
        GOOD_LINE,
        "22042100,mfn,,,,,,,,0.14,,2024-01-01,,demo,",
        "22042100,consumption_tax,,,,,,,,0.2,1,2024-01-01,,demo,",
        "22042100,requirement,,,,,,,quarantine,,,2024-01-01,,demo,",
    ))
    assert problems == []
    assert [m.kind.value for m in lines["22042100"].measures] == ["mfn", "consumption_tax",
                                                                  "requirement"]


def test_every_bad_cell_is_reported_with_its_row_and_column():
    _, problems = read_schedule_csv(schedule(
        GOOD_LINE,                                                              # row 2
        "2204210,line,220421,LTR,Wine,,,,,,,2017-01-01,,demo,",                 # row 3
        "22042100,mfn,,,,,,,,abc,,2024-01-01,,demo,",                           # row 4
        "22042100,conventional,,,,,,,,0,,2024-01-01,,demo,",                    # row 5
        "22042100,anti_dumping,,,,,,XX,,0.5,,2024-01-01,,demo,",                # row 6
        "22042100,vat,,,,,,,,1.5,,2024-01-01,2023-01-01,demo,",                 # row 7
        "22042100,consumption_tax,,,,,,,,1,,2024-01-01,,demo,",                 # row 8
        "22042100,requirement,,,,,,,licence,,,2024-01-01,,demo,",               # row 9
        "22042100,tariff_quota,,,,,,,,0.1,,2024-01-01,,demo,",                  # row 10
        "11111111,mfn,,,,,,,,0.1,,2024-01-01,,demo,",                           # row 11
        "22042100,mfn,,KGM,,,,,,0.1,,2024-13-01,,demo,",                        # row 12
        "33041000,line,220421,GALLON,,,,,,,,,,demo,",                           # row 13
    ), agreements={})
    assert sorted(codes(problems)) == sorted([
        ("rows[3].code", "invalid_tariff_code"),
        ("rows[4].ad_valorem", "not_a_number"),
        ("rows[5].agreement", "required"),
        ("rows[6].origin", "unknown_country"),
        ("rows[7].ad_valorem", "rate_out_of_range"),
        ("rows[7].valid_to", "invalid_period"),
        ("rows[8].ad_valorem", "rate_out_of_range"),
        ("rows[9].requirement", "unknown_requirement"),
        ("rows[10].kind", "unknown_kind"),
        ("rows[11].code", "unknown_tariff_code"),
        ("rows[12].unit", "not_applicable"),
        ("rows[12].valid_from", "invalid_date"),
        ("rows[13].hs6", "hs6_mismatch"),
        ("rows[13].unit", "unknown_unit"),
        ("rows[13].description_en", "required"),
        ("rows[13].valid_from", "required"),
    ])


def test_overlapping_measures_of_one_kind_are_refused():
    _, problems = read_schedule_csv(schedule(
        GOOD_LINE,
        "22042100,mfn,,,,,,,,0.14,,2024-01-01,2024-12-31,demo,",
        "22042100,mfn,,,,,,,,0.1,,2024-12-31,,demo,",
        "22042100,conventional,,,,,CN-AU,,,0,,2024-01-01,,demo,",
        "22042100,conventional,,,,,CN-NZ,,,0,,2024-01-01,,demo,",
    ))
    assert codes(problems) == [("rows[4].valid_from", "overlapping_validity")]


def test_a_conventional_rate_must_name_a_known_agreement():
    agreements, _ = read_agreements_csv(
        "code,name,members,valid_from,valid_to,source\nCN-AU,ChAFTA,AU,2015-12-20,,x\n")
    _, problems = read_schedule_csv(schedule(
        GOOD_LINE, "22042100,conventional,,,,,CN-XX,,,0,,2024-01-01,,demo,"), agreements)
    assert codes(problems) == [("rows[3].agreement", "unknown_agreement")]


def test_a_file_with_a_wrong_header_is_refused_before_its_rows():
    _, problems = read_schedule_csv("code,kind,rate\n22042100,mfn,0.1\n")
    assert ("header", "unknown_column") in codes(problems)
    assert ("header", "missing_column") in codes(problems)


def test_agreement_members_may_join_later_and_must_be_countries():
    agreements, problems = read_agreements_csv(
        "code,name,members,valid_from,valid_to,source\n"
        "RCEP,RCEP,JP KR@2022-02-01 XX PH@2023-02-30,2022-01-01,,x\n"
        "RCEP,again,JP,2022-01-01,,x\n")
    assert codes(problems) == [("rows[2].members", "unknown_country"),
                               ("rows[2].members", "invalid_date"),
                               ("rows[3].code", "duplicate_agreement")]
    assert agreements == {}


def test_exchange_rates_must_be_positive_known_and_not_overlap():
    rates, problems = read_exchange_rates_csv(
        "currency,rate,valid_from,valid_to,source\n"
        "USD,7.18,2025-01-01,2025-01-31,x\n"
        "USD,7.19,2025-01-31,2025-02-28,x\n"
        "XYZ,1,2025-01-01,,x\n"
        "EUR,0,2025-01-01,,x\n")
    assert codes(problems) == [("rows[4].currency", "unknown_currency"),
                               ("rows[5].rate", "not_positive"),
                               ("rows[3].valid_from", "overlapping_validity")]
    assert len(rates) == 2
