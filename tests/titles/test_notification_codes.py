"""Every event the titles context emits, and every notification logistics raises, has a known code
with a message template, so the feed and webhooks show a sentence, not a bare code."""

from __future__ import annotations

from sqlalchemy import select

from tests.conftest import USCC
from tests.logistics.conftest import CONTAINER, carriers, document, epcis_schema, event, train  # noqa: F401
from tests.titles.conftest import bill
from tradewindow.logistics import service as logistics
from tradewindow.notifications.model import NOTIFICATION_CODES, notice_from_event
from tradewindow.platform.tables import outbox_events
from tradewindow.titles import service as titles
from tradewindow.titles.service import NOTIFICATION_CODES as TITLE_ACTION_CODES


def _events(uow, prefix: str) -> list:
    with uow.read() as conn:
        return conn.execute(select(outbox_events).where(outbox_events.c.event_type.startswith(prefix))).all()


def test_every_titles_code_is_known_with_a_template():
    assert set(TITLE_ACTION_CODES.values()) | {"titles.key_registered", "titles.heads_published"} <= \
        set(NOTIFICATION_CODES)


def test_every_event_of_a_bills_life_has_a_known_code_and_a_message(titles_world):
    w = titles_world
    titles.issue_bill(w.uow, w["carrier"], bill())
    titles.issue_bill(w.uow, w["carrier"], bill("CQDUI2026000002"))
    titles.void(w.uow, w["carrier"], "CQDUI2026000002")
    titles.endorse(w.uow, w["trader"], "CQDUI2026000001", USCC["other_trader"])
    titles.pledge(w.uow, w["other_trader"], "CQDUI2026000001", USCC["bank"])
    titles.release_pledge(w.uow, w["bank"], "CQDUI2026000001")
    titles.pledge(w.uow, w["other_trader"], "CQDUI2026000001", USCC["bank"])
    titles.take_over(w.uow, w["bank"], "CQDUI2026000001")
    titles.surrender(w.uow, w["bank"], "CQDUI2026000001")
    titles.publish_heads(w.uow)
    events = _events(w.uow, "titles.")
    assert {e.event_type for e in events} == set(TITLE_ACTION_CODES.values()) | {
        "titles.key_registered", "titles.heads_published"}
    assert {e.event_type for e in events} - set(NOTIFICATION_CODES) == set()
    for e in events:
        notice = notice_from_event(e.aggregate_type, e.aggregate_id, e.payload, e.owner_enterprise_id)
        if notice is not None:
            assert notice.code in NOTIFICATION_CODES and notice.message and "{" not in notice.message


def test_every_notification_logistics_raises_has_a_known_code(carriers, epcis_schema):  # noqa: F811
    logistics.register_consignment(carriers.uow, carriers["carrier"], train())
    broken = {"tw:seal": {"number": "CN4471023", "kind": "elock", "status": "broken"}}
    logistics.capture(carriers.uow, carriers["carrier"], document(event(10, [CONTAINER], "CNTNR", **broken),
                                                                  event(20, [CONTAINER], "KZALA")))
    notices = [notice_from_event(e.aggregate_type, e.aggregate_id, e.payload, e.owner_enterprise_id)
               for e in _events(carriers.uow, "logistics.")]
    codes = {n.code for n in notices if n is not None}
    assert codes and codes <= set(NOTIFICATION_CODES)
