"""Migration 0012 moves an existing database's EPCIS identifiers onto the event rows and its
containment rows into one row per aggregation, and back on downgrade, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from alembic import command
from sqlalchemy import select, text

from tradewindow.logistics import service
from tradewindow.logistics.service import EventQuery
from tradewindow.logistics.tables import containment, epcis_events
from tradewindow.migrations import alembic_config, upgrade
from tradewindow.platform.auth import Actor, Role
from tradewindow.platform.db import UnitOfWork

T = datetime(2026, 3, 1, tzinfo=UTC)
LATER = datetime(2026, 3, 2, tzinfo=UTC)
BAG, WAGON = "urn:epc:id:sscc:4012345.0000000001", "urn:tradewindow:wagon:C701234567"
PARCELS = [f"urn:epc:id:sgtin:4012345.011111.{n}" for n in range(3)]
CONTAINER = "urn:tradewindow:container:CSQU3054383"
OFFICER = Actor(user_id=None, username="officer", role=Role.CUSTOMS)


@pytest.fixture
def old_engine(engine_at):
    return engine_at("0011")


def _old_rows(conn) -> None:
    """Two aggregations in the old layout: parcels packed into a bag (one left it later), a
    container loaded onto a wagon; and an object event on a parcel."""
    conn.execute(text("INSERT INTO epcis_captures (id, captured_at, event_count, new_count) "
                      "VALUES ('C1', :t, 3, 3)"), {"t": T})
    for pk, kind, minutes in (("E1", "AggregationEvent", 0), ("E2", "AggregationEvent", 1), ("E3", "ObjectEvent", 2)):
        conn.execute(text("INSERT INTO epcis_events (pk, event_id, event_type, event_time, record_time, capture_id, "
                          "body) VALUES (:pk, :pk, :kind, :t, :t, 'C1', '{}')"),
                     {"pk": pk, "kind": kind, "t": T.replace(minute=minutes)})
    identifiers = [("E1", BAG, "parent"), *(("E1", p, "child") for p in PARCELS),
                   ("E2", WAGON, "parent"), ("E2", CONTAINER, "child"), ("E3", PARCELS[0], "epc")]
    conn.execute(text("INSERT INTO epcis_event_epcs (event_pk, epc, role) VALUES (:pk, :epc, :role)"),
                 [{"pk": pk, "epc": epc, "role": role} for pk, epc, role in identifiers])
    rows = [("R1", BAG, PARCELS[0], None, "E1"), ("R2", BAG, PARCELS[1], LATER, "E1"),
            ("R3", BAG, PARCELS[2], None, "E1"), ("R4", WAGON, CONTAINER, None, "E2")]
    conn.execute(text("INSERT INTO containment (id, parent_epc, child_epc, since, until, event_pk) "
                      "VALUES (:id, :parent, :child, :since, :until, :pk)"),
                 [{"id": i, "parent": p, "child": c, "since": T, "until": u, "pk": pk} for i, p, c, u, pk in rows])


def test_the_identifiers_and_containment_move_to_the_lean_layout_and_back(old_engine):
    with old_engine.begin() as conn:
        _old_rows(conn)
    upgrade(old_engine)
    with old_engine.connect() as conn:
        events = {r.pk: (r.parent_epc, sorted(r.epcs)) for r in conn.execute(select(epcis_events))}
        groups = sorted((r.parent_epc, list(r.children), r.until, r.event_pk)
                        for r in conn.execute(select(containment)))
    assert events == {"E1": (BAG, PARCELS), "E2": (WAGON, [CONTAINER]), "E3": (None, [PARCELS[0]])}
    assert groups == [(BAG, [PARCELS[0], PARCELS[2]], None, "E1"), (BAG, [PARCELS[1]], LATER, "E1"),
                      (WAGON, [CONTAINER], None, "E2")]
    uow = UnitOfWork(old_engine)
    found = service.query_events(uow, OFFICER, EventQuery(match_epc=[PARCELS[0]]))
    assert [e["eventID"] for e in found["epcisBody"]["queryResults"]["resultsBody"]["eventList"]] == ["E1", "E3"]
    with uow.read():
        assert service._contents(uow, {BAG}, LATER) == {PARCELS[0], PARCELS[2]}

    config = alembic_config(old_engine.url.render_as_string(hide_password=False))
    with old_engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0011")
    with old_engine.connect() as conn:
        identifiers = sorted(conn.execute(text("SELECT event_pk, epc, role FROM epcis_event_epcs")).all())
        rows = sorted(conn.execute(text("SELECT parent_epc, child_epc, until, event_pk FROM containment")).all())
    assert identifiers == sorted([("E1", BAG, "parent"), *(("E1", p, "child") for p in PARCELS),
                                  ("E2", WAGON, "parent"), ("E2", CONTAINER, "child"), ("E3", PARCELS[0], "epc")])
    assert [(p, c, u is not None, pk) for p, c, u, pk in rows] == [
        (BAG, PARCELS[0], False, "E1"), (BAG, PARCELS[1], True, "E1"), (BAG, PARCELS[2], False, "E1"),
        (WAGON, CONTAINER, False, "E2")]


def _collations(conn) -> dict[tuple[str, str], str | None]:
    """The collation of each identifier column 0016 changes (PostgreSQL; None: the database's)."""
    return {(t, c): conn.execute(text(
        "SELECT co.collname FROM pg_attribute a JOIN pg_class k ON k.oid = a.attrelid "
        "LEFT JOIN pg_collation co ON co.oid = a.attcollation AND co.collname <> 'default' "
        "WHERE k.relname = :t AND a.attname = :c"), {"t": t, "c": c}).scalar()
        for t, c in (("epcis_events", "event_id"), ("epcis_events", "parent_epc"), ("epcis_events", "epcs"),
                     ("containment", "parent_epc"), ("containment", "children"), ("equipment", "epc"))}


def test_identifiers_are_compared_bytewise_after_0016_and_the_events_are_found_as_before(engine_at):
    old_engine = engine_at("0015")
    with old_engine.begin() as conn:
        conn.execute(text("INSERT INTO epcis_captures (id, captured_at, event_count, new_count) "
                          "VALUES ('C1', :t, 2, 2)"), {"t": T})
        epcs = "{" + ",".join(PARCELS) + "}" if conn.dialect.name == "postgresql" else str(PARCELS).replace("'", '"')
        conn.execute(text("INSERT INTO epcis_events (pk, event_id, event_type, event_time, record_time, capture_id, "
                          "body, parent_epc, epcs) VALUES ('E1', 'urn:uuid:e1', 'AggregationEvent', :t, :t, 'C1', "
                          "'{}', :bag, :epcs)"), {"t": T, "bag": BAG, "epcs": epcs})
        conn.execute(text("INSERT INTO containment (id, parent_epc, children, since, event_pk) "
                          "VALUES ('R1', :bag, :epcs, :t, 'E1')"), {"t": T, "bag": BAG, "epcs": epcs})
    upgrade(old_engine)
    uow = UnitOfWork(old_engine)
    with old_engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            assert set(_collations(conn).values()) == {"C"}
            assert "ix_epcis_events_captured_by" not in conn.execute(text(
                "SELECT string_agg(indexname, ' ') FROM pg_indexes WHERE tablename = 'epcis_events'")).scalar()
    for match in (EventQuery(match_epc=[PARCELS[1]]), EventQuery(match_parent=[BAG]),
                  EventQuery(match_any_epc=["urn:epc:idpat:sgtin:4012345.011111.*"])):
        found = service.query_events(uow, OFFICER, match)
        assert [e["eventID"] for e in found["epcisBody"]["queryResults"]["resultsBody"]["eventList"]] == [
            "urn:uuid:e1"]
    with uow.read():
        assert service._contents(uow, {BAG}, LATER) == set(PARCELS)

    config = alembic_config(old_engine.url.render_as_string(hide_password=False))
    with old_engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0015")
    with old_engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            assert set(_collations(conn).values()) == {None}
        assert conn.execute(text("SELECT parent_epc FROM containment")).scalar() == BAG
    found = service.query_events(uow, OFFICER, EventQuery(match_epc=[PARCELS[2]]))
    assert len(found["epcisBody"]["queryResults"]["resultsBody"]["eventList"]) == 1


def test_0017_marks_the_containment_rows_that_hold_equipment_and_downgrade_drops_the_mark(engine_at):
    old_engine = engine_at("0016")
    pg = old_engine.dialect.name == "postgresql"

    def epc_list(values: list[str]) -> str:
        return "{" + ",".join(values) + "}" if pg else "[" + ",".join(f'"{v}"' for v in values) + "]"

    with old_engine.begin() as conn:
        conn.execute(text("INSERT INTO enterprises (id, uscc, name_zh, name_en, address, sector, business_scope, "
                          "kinds, credit_tier, status, registered_at, version) VALUES ('N1', '91500000000000000X', "
                          "'n', 'n', 'a', 'xiyong', '', '[\"carrier\"]', 'general', 'active', :t, 1)"), {"t": T})
        conn.execute(text("INSERT INTO consignments (id, forwarder_id, client_reference, transport_document, "
                          "trader_id, description, status, created_at) VALUES ('K1', 'N1', 'R', 'D', 'N1', 'x', "
                          "'planned', :t)"), {"t": T})
        conn.execute(text("INSERT INTO equipment (id, consignment_id, kind, number, epc, seal_broken) "
                          "VALUES ('U1', 'K1', 'container', 'CSQU3054383', :epc, false)"), {"epc": CONTAINER})
        conn.execute(text("INSERT INTO containment (id, parent_epc, children, since, event_pk) VALUES "
                          "('R1', :wagon, :units, :t, 'E1'), ('R2', :bag, :parcels, :t, 'E2')"),
                     {"t": T, "wagon": WAGON, "bag": BAG, "units": epc_list(["urn:x", CONTAINER]),
                      "parcels": epc_list(PARCELS)})
    upgrade(old_engine)
    with old_engine.connect() as conn:
        assert dict(conn.execute(select(containment.c.id, containment.c.holds_equipment)).all()) == {
            "R1": True, "R2": False}
    config = alembic_config(old_engine.url.render_as_string(hide_password=False))
    with old_engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0016")
    with old_engine.connect() as conn:
        assert sorted(conn.execute(text("SELECT id, parent_epc FROM containment")).all()) == [("R1", WAGON),
                                                                                              ("R2", BAG)]
