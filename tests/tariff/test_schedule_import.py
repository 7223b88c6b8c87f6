"""Loading and exporting a whole schedule (lines and measures), its agreements and exchange
rates: all or nothing, every problem listed, only customs (and the administrator) may change it."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from tradewindow.platform.errors import Forbidden, ValidationFailed
from tradewindow.platform.tables import audit_log, outbox_events
from tradewindow.tariff import service

DATA = Path(service.__file__).parent / "data"
SCHEDULE_HEADER = ("code,kind,hs6,unit,description_en,description_zh,agreement,origin,requirement,"
                   "ad_valorem,specific,valid_from,valid_to,source,note")


def data(name: str) -> str:
    return (DATA / name).read_text(encoding="utf-8")


def count(uow, table) -> int:
    with uow.read() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


def test_the_demo_schedule_loads_with_its_agreements_and_exchange_rates(world):
    loaded = service.load_demo_schedule(world.uow, world["customs_officer"])
    assert loaded["kind"] == "schedule" and loaded["lines"] >= 25
    summary = service.schedule_summary(world.uow)
    assert summary["lines"] == loaded["lines"] and summary["measures"] == loaded["measures"]
    assert summary["agreements"] == 7
    assert summary["exchange_rates"] == 7 * 24            # seven currencies, monthly, 2025-2026


def rows(csv_text: str) -> list[str]:
    """The rows of a CSV, in an order that does not depend on the writer's (exports go by code)."""
    return sorted(csv_text.splitlines())


def test_the_exports_hold_every_row_of_the_shipped_files_unchanged(world, demo_schedule):
    assert service.export_schedule(world.uow).splitlines()[0] == SCHEDULE_HEADER
    assert rows(service.export_schedule(world.uow)) == rows(data("demo_schedule.csv"))
    assert rows(service.export_agreements(world.uow)) == rows(data("agreements.csv"))
    assert rows(service.export_exchange_rates(world.uow)) == rows(data("exchange_rates.csv"))


def test_export_then_import_gives_an_identical_export(world, demo_schedule):
    customs = world["customs_officer"]
    first = (service.export_agreements(world.uow), service.export_exchange_rates(world.uow),
             service.export_schedule(world.uow))
    service.import_agreements(world.uow, customs, first[0])
    service.import_exchange_rates(world.uow, customs, first[1])
    service.import_schedule(world.uow, customs, first[2])
    assert (service.export_agreements(world.uow), service.export_exchange_rates(world.uow),
            service.export_schedule(world.uow)) == first


def test_each_import_is_audited_and_announced(world):
    before_audit, before_events = count(world.uow, audit_log), count(world.uow, outbox_events)
    service.load_demo_schedule(world.uow, world["customs_officer"])
    assert count(world.uow, audit_log) == before_audit + 3       # agreements, exchange rates, schedule
    assert count(world.uow, outbox_events) == before_events + 3


def test_a_schedule_with_bad_rows_is_refused_with_every_problem_and_the_old_one_stays(world, demo_schedule):
    before = service.export_schedule(world.uow)
    bad = "\n".join([
        SCHEDULE_HEADER,
        "22042100,line,220421,LTR,Wine,葡萄酒,,,,,,2017-01-01,,demo,",        # row 2: good
        "22042100,mfn,,,,,,,,fourteen,,2024-01-01,,demo,",                    # row 3
        "22042100,conventional,,,,,CN-XX,,,0,,2024-01-01,,demo,",             # row 4
        "22042100,vat,,,,,,,,0.13,,2024-06-01,2024-01-01,demo,",              # row 5
        "9999999,line,999999,NAR,Nothing,,,,,,,2017-01-01,,demo,",            # row 6
        "22042100,requirement,,,,,,,halal,,,2024-01-01,,demo,",               # row 7
    ]) + "\n"
    with pytest.raises(ValidationFailed) as refused:
        service.import_schedule(world.uow, world["customs_officer"], bad)
    found = {(p.path, p.code) for p in refused.value.problems}
    assert found >= {
        ("rows[3].ad_valorem", "not_a_number"),
        ("rows[4].agreement", "unknown_agreement"),
        ("rows[5].valid_to", "invalid_period"),
        ("rows[6].code", "invalid_tariff_code"),
        ("rows[7].requirement", "unknown_requirement"),
    }
    assert all(p.message for p in refused.value.problems)
    assert service.export_schedule(world.uow) == before


def test_a_schedule_missing_a_column_is_refused(world, demo_schedule):
    with pytest.raises(ValidationFailed) as refused:
        service.import_schedule(world.uow, world["customs_officer"], "code,kind\n22042100,line\n")
    assert {p.code for p in refused.value.problems} == {"missing_column"}
    assert service.schedule_summary(world.uow)["lines"] == demo_schedule["lines"]


def test_agreements_may_not_drop_one_the_schedule_uses(world, demo_schedule):
    before = service.export_agreements(world.uow)
    without_chile = "".join(line for line in before.splitlines(keepends=True) if not line.startswith("CN-CL,"))
    with pytest.raises(ValidationFailed) as refused:
        service.import_agreements(world.uow, world["customs_officer"], without_chile)
    assert [(p.path, p.code) for p in refused.value.problems] == [("agreements", "agreement_in_use")]
    assert "CN-CL" in refused.value.problems[0].message
    assert service.export_agreements(world.uow) == before


def test_agreements_may_drop_one_the_schedule_does_not_use(world, demo_schedule):
    before = service.export_agreements(world.uow)
    without_korea = "".join(line for line in before.splitlines(keepends=True) if not line.startswith("CN-KR,"))
    assert service.import_agreements(world.uow, world["customs_officer"], without_korea)["agreements"] == 6
    assert "CN-KR" not in {a["code"] for a in service.list_agreements(world.uow)}


def test_bad_exchange_rates_are_refused_and_the_old_table_stays(world, demo_schedule):
    before = service.export_exchange_rates(world.uow)
    bad = ("currency,rate,valid_from,valid_to,source\n"
           "USD,-7.1,2025-01-01,2025-01-31,demo\n"
           "XYZ,1.0,2025-01-01,2025-01-31,demo\n")
    with pytest.raises(ValidationFailed) as refused:
        service.import_exchange_rates(world.uow, world["customs_officer"], bad)
    assert {p.path for p in refused.value.problems} >= {"rows[2].rate", "rows[3].currency"}
    assert service.export_exchange_rates(world.uow) == before


@pytest.mark.parametrize("persona", ["trader", "broker", "zone", "bank", "quarantine_officer"])
def test_only_customs_and_the_administrator_change_the_tariff(world, persona):
    actor = world[persona]
    for action, name in ((service.import_schedule, "demo_schedule.csv"),
                         (service.import_agreements, "agreements.csv"),
                         (service.import_exchange_rates, "exchange_rates.csv")):
        with pytest.raises(Forbidden) as refused:
            action(world.uow, actor, data(name))
        assert refused.value.code == "role_not_allowed"
    assert service.schedule_summary(world.uow) == {"lines": 0, "measures": 0, "agreements": 0,
                                                    "exchange_rates": 0, "hs_entries": 0}


def test_the_administrator_may_load_the_schedule(world):
    assert service.load_demo_schedule(world.uow, world["admin"])["lines"] >= 25


# --- API -----------------------------------------------------------------------------------------

CSV = {"Content-Type": "text/csv; charset=utf-8"}


def test_api_exports_the_schedule_as_csv_to_any_role(client, as_user, demo_schedule, world):
    response = client.get("/api/v1/tariff/schedule.csv", headers=as_user("trader"))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert 'filename="schedule.csv"' in response.headers["content-disposition"]
    assert response.text == service.export_schedule(world.uow)
    assert rows(response.text) == rows(data("demo_schedule.csv"))
    assert rows(client.get("/api/v1/tariff/agreements.csv", headers=as_user("bank")).text) == \
        rows(data("agreements.csv"))


def test_api_refuses_a_trader_loading_the_schedule(client, as_user, demo_schedule, world):
    before = service.export_schedule(world.uow)
    body = data("demo_schedule.csv").replace("MFN 15 %", "MFN 15 % (edited)").encode()
    response = client.put("/api/v1/tariff/schedule.csv", content=body, headers={**as_user("trader"), **CSV})
    assert response.status_code == 403
    assert response.json()["errors"][0]["code"] == "role_not_allowed"
    assert service.export_schedule(world.uow) == before


def test_api_lets_customs_replace_the_schedule(client, as_user, demo_schedule, world):
    edited = data("demo_schedule.csv").replace("MFN 15 % on passenger cars", "MFN 15 % on cars")
    response = client.put("/api/v1/tariff/schedule.csv", content=edited.encode(),
                          headers={**as_user("customs_officer"), **CSV})
    assert response.status_code == 200, response.text
    assert response.json()["kind"] == "schedule"
    assert response.json()["lines"] == demo_schedule["lines"]
    assert rows(client.get("/api/v1/tariff/schedule.csv", headers=as_user("trader")).text) == rows(edited)


def test_api_answers_a_bad_schedule_with_422_and_every_problem(client, as_user, demo_schedule, world):
    bad = "\n".join([SCHEDULE_HEADER,
                     "22042100,line,220421,LTR,Wine,葡萄酒,,,,,,2017-01-01,,demo,",
                     "22042100,mfn,,,,,,,,abc,,2024-01-01,,demo,",
                     "22042100,vat,,,,,,,,7,,2024-01-01,,demo,"]) + "\n"
    response = client.put("/api/v1/tariff/schedule.csv", content=bad.encode(),
                          headers={**as_user("customs_officer"), **CSV})
    assert response.status_code == 422
    assert {(e["path"], e["code"]) for e in response.json()["errors"]} == {
        ("rows[3].ad_valorem", "not_a_number"), ("rows[4].ad_valorem", "rate_out_of_range")}
    assert rows(service.export_schedule(world.uow)) == rows(data("demo_schedule.csv"))


def test_api_refuses_a_body_that_is_not_utf8(client, as_user, demo_schedule):
    response = client.put("/api/v1/tariff/schedule.csv", content=b"code,kind\n\xff\xfe\xfd",
                          headers={**as_user("customs_officer"), **CSV})
    assert response.status_code == 422
    assert response.json()["errors"][0]["code"] == "not_utf8"


def test_api_needs_a_login_to_read_the_schedule(client, demo_schedule):
    assert client.get("/api/v1/tariff/schedule.csv").status_code == 401
