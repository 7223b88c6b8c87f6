"""Code lists as data: countries and currencies (ISO, from pycountry), units of measure
(UN/ECE Recommendation 20, the subset trade uses), transport modes (UN/ECE Rec. 19 codes) and the
zone's locations (UN/LOCODE). Loaded into `code_list_entries` by a migration; read from there."""

from __future__ import annotations

import csv
from pathlib import Path

import pycountry
from sqlalchemy import select
from sqlalchemy.engine import Connection

from tradewindow.platform.tables import code_list_entries

DATA_DIR = Path(__file__).resolve().parent / "data"
LISTS = ("country", "currency", "unit", "transport_mode", "location")


def builtin_entries() -> list[dict]:
    """Every code list entry the platform ships, ready to insert."""
    entries = [{"list_name": "country", "code": c.alpha_2, "name": c.name, "name_zh": None,
                "extra": {"alpha_3": c.alpha_3, "numeric": c.numeric}} for c in pycountry.countries]
    entries += [{"list_name": "currency", "code": c.alpha_3, "name": c.name, "name_zh": None,
                 "extra": {"numeric": c.numeric}} for c in pycountry.currencies]
    for list_name in ("unit", "transport_mode", "location"):
        with open(DATA_DIR / f"{list_name}s.csv", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                extra = {k: v for k, v in row.items() if k not in ("code", "name", "name_zh") and v}
                entries.append({"list_name": list_name, "code": row["code"], "name": row["name"],
                                "name_zh": row.get("name_zh") or None, "extra": extra or None})
    return entries


def entries(conn: Connection, list_name: str) -> list[dict]:
    rows = conn.execute(select(code_list_entries).where(code_list_entries.c.list_name == list_name)
                        .order_by(code_list_entries.c.code)).mappings()
    return [dict(r) for r in rows]


def codes(conn: Connection, list_name: str) -> set[str]:
    return set(conn.execute(select(code_list_entries.c.code)
                            .where(code_list_entries.c.list_name == list_name)).scalars())
