"""Realistic test files for the batch path (`tradewindow cbec generate`): a shopping festival's
orders, payments and waybills as three NDJSON files.

- buyers repeat with skewed frequencies (a Zipf-like law over the buyer ranks), each with a valid
  resident identity number (python-stdnum `cn.ric` check digit) derived from the rank;
- orders fall on the festival day (Asia/Shanghai) with the midnight rush and an evening peak;
- records are out of order within a file (a bounded shuffle buffer) and between the files
  (payments and waybills leave their buffers at other moments than their orders);
- a few percent of each defect: payer, amount and consignee mismatches, goods off the positive
  list, unknown tariff codes, invalid buyer ids, wrong tax withheld, duplicates (a different
  payment or waybill under a used number, and identical repeats), orders over 5,000 CNY, and a few
  buyers who buy far past 26,000 CNY in the year.

The tax withheld of a clean order is the tariff quote engine's own figure (`model.quote_order` on
the demo schedule shipped in tariff/data, cached per distinct request), never a formula of its own.
Deterministic for a seed; streaming: memory is bounded by the shuffle buffers and the caches,
whatever the number of parcels. Pure: no database."""

from __future__ import annotations

import json
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import IO, Any
from zoneinfo import ZoneInfo

from stdnum.cn import ric

from tradewindow.ecommerce import model
from tradewindow.platform.errors import ValidationFailed
from tradewindow.tariff import model as tariff_model

ZONE = ZoneInfo("Asia/Shanghai")
FESTIVAL = date(2026, 11, 11)
PLATFORM_CODE = "91500107MA5U8Q3K2D"
# (tariff code, description, unit, unit price, origin, gross kg per unit, popularity)
PRODUCTS = [
    ("04022100", "Whole milk powder 900 g", "can", "238.00", "NZ", "1.1", 30),
    ("19011010", "Infant formula stage 1, 800 g", "can", "328.00", "NL", "1.0", 25),
    ("33049900", "Face cream 50 ml", "jar", "560.00", "FR", "0.2", 15),
    ("33041000", "Lipstick", "piece", "320.00", "FR", "0.1", 12),
    ("33049100", "Loose powder", "box", "450.00", "JP", "0.2", 6),
    ("22042100", "Red wine 750 ml", "bottle", "198.00", "FR", "1.4", 8),
    ("22083000", "Single malt whisky 700 ml", "bottle", "699.00", "GB", "1.5", 3),
    ("22030000", "Craft beer 330 ml", "bottle", "18.50", "DE", "0.4", 6),
    ("33049900", "Serum 30 ml", "bottle", "890.00", "JP", "0.2", 8),
    ("85171300", "Smartphone", "piece", "4299.00", "KR", "0.5", 3),
    ("84713000", "Laptop", "piece", "6999.00", "US", "2.0", 1),   # one indivisible item over 5,000
]
OFF_LIST = ("85423100", "Processor", "piece", "1200.00", "KR", "0.1")      # a line, not on the list
UNKNOWN_CODE = "99999999"
DEFECTS = ("payer_mismatch", "amount_mismatch", "consignee_mismatch", "not_on_positive_list",
           "unknown_tariff_code", "invalid_buyer_id", "tax_withheld_mismatch", "duplicate",
           "order_over_5000", "big_spender")
REGIONS = ("110105", "310104", "440305", "500103", "330106", "510107", "320102", "420106")
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高"
GIVEN = "伟芳娜秀敏静丽强磊军洋勇艳杰娟涛明超霞平刚桂英华"
STREETS = ("解放碑", "南京路", "深南大道", "人民路", "中山路", "建设路", "和平街", "长江路")
CITIES = ("北京市朝阳区", "上海市黄浦区", "深圳市福田区", "重庆市渝中区", "杭州市西湖区", "成都市锦江区")


def resident_id(rank: int) -> str:
    """A valid, made-up resident identity number, one per buyer rank (region, birth date, serial)."""
    serial, rest = rank % 1000, rank // 1000
    born = date(1960, 1, 1) + timedelta(days=rest % 16000)
    region = REGIONS[(rest // 16000) % len(REGIONS)]
    body = f"{region}{born:%Y%m%d}{serial:03d}"
    return body + ric.calc_check_digit(body + "0")


def spoil_id(number: str) -> str:
    """The same number with a wrong check character."""
    wrong = "0" if number[-1] != "0" else "1"
    return number[:-1] + wrong


@dataclass
class Options:
    parcels: int
    seed: int = 1
    defect_rate: float = 0.01          # of each defect kind
    defects: tuple[str, ...] = DEFECTS
    shuffle_window: int = 2000         # lines held back to put a file out of order
    day: date = FESTIVAL


@dataclass
class Counts:
    parcels: int = 0
    lines: dict[str, int] = field(default_factory=lambda: {"orders": 0, "payments": 0, "waybills": 0})
    defects: dict[str, int] = field(default_factory=lambda: dict.fromkeys(DEFECTS, 0))


class _Shuffled:
    """A file written through a bounded shuffle buffer: lines leave in a random order, at most
    `window` lines away from where they were written."""

    def __init__(self, handle: IO[str], rng: random.Random, window: int) -> None:
        self.handle, self.rng, self.window, self.held = handle, rng, window, []

    def write(self, line: str) -> None:
        self.held.append(line)
        if len(self.held) > self.window:
            i = self.rng.randrange(len(self.held))
            self.held[i], self.held[-1] = self.held[-1], self.held[i]
            self.handle.write(self.held.pop())

    def close(self) -> None:
        self.rng.shuffle(self.held)
        self.handle.writelines(self.held)
        self.held = []


class TaxTable:
    """The tax of an order by the quote engine on the demo schedule, one quote per distinct
    request (bounded cache)."""

    def __init__(self) -> None:
        from tradewindow.tariff.service import DATA_DIR

        agreements, _ = tariff_model.read_agreements_csv((DATA_DIR / "agreements.csv").read_text(encoding="utf-8"))
        lines, _ = tariff_model.read_schedule_csv((DATA_DIR / "demo_schedule.csv").read_text(encoding="utf-8"),
                                                  agreements)
        self.schedule = tariff_model.Schedule(lines=lines, agreement_list=agreements)
        self.cache: dict[Any, Decimal | None] = {}

    def tax(self, order: model.Order) -> Decimal | None:
        on_date = order.ordered_at.astimezone(ZONE).date()
        key = (on_date, order.customs_value, tuple((i.tariff_code, i.quantity, i.unit_price, i.origin)
                                                   for i in order.items))
        if key not in self.cache:
            if len(self.cache) > 100_000:
                self.cache.clear()
            try:
                self.cache[key] = model.quote_order(order, on_date, self.schedule).totals.total
            except ValidationFailed:
                self.cache[key] = None
        return self.cache[key]


def _money(value: Decimal) -> str:
    return f"{value:.2f}"


def _festival_moment(rng: random.Random, day: date) -> datetime:
    """Midnight rush (a third of the day's orders in its first hour), an evening peak, the rest."""
    draw = rng.random()
    if draw < 0.33:
        seconds = rng.expovariate(1 / 900) % 3600
    elif draw < 0.6:
        seconds = 20 * 3600 + rng.random() * 4 * 3600
    else:
        seconds = rng.random() * 86400
    start = datetime(day.year, day.month, day.day, tzinfo=ZONE)
    return start + timedelta(seconds=int(seconds))


class _Buyers:
    """Buyer ranks drawn with a Zipf-like law (P(rank) ~ 1 / (rank + k)), in O(1) memory; and a
    few big spenders."""

    def __init__(self, rng: random.Random, parcels: int) -> None:
        self.rng = rng
        self.count = max(10, parcels // 4)
        self.offset = max(1, self.count // 20)
        self.log_span = math.log((self.count + self.offset) / self.offset)
        self.spenders = max(1, parcels // 3000)

    def regular(self) -> int:
        rank = int(self.offset * math.exp(self.rng.random() * self.log_span)) - self.offset
        return self.spenders + min(rank, self.count - 1)

    def big_spender(self) -> int:
        return self.rng.randrange(self.spenders)


def _person(rank: int) -> tuple[str, str]:
    name = SURNAMES[rank % len(SURNAMES)] + GIVEN[(rank // 20) % len(GIVEN)] + GIVEN[(rank // 7) % len(GIVEN)]
    address = (f"{CITIES[rank % len(CITIES)]}{STREETS[(rank // 6) % len(STREETS)]}"
               f"{rank % 997 + 1}号{rank % 31 + 1}楼")
    return name, address


def _items(rng: random.Random, defect: str | None) -> list[tuple[str, str, str, Decimal, str, Decimal, int]]:
    """(code, description, unit, unit price, origin, kg, quantity) lines of an order."""
    weights = [p[6] for p in PRODUCTS]
    count = 1 if rng.random() < 0.7 else rng.choice((2, 2, 3))
    chosen = []
    for product in rng.choices(PRODUCTS, weights, k=count):
        code, text, unit, price, origin, kg, _ = product
        quantity = 1 if rng.random() < 0.75 or Decimal(price) > 1000 else rng.randint(2, 4)
        chosen.append((code, text, unit, Decimal(price), origin, Decimal(kg), quantity))
    if sum(p[3] * p[6] for p in chosen) > 5000 and not (len(chosen) == 1 and chosen[0][6] == 1):
        chosen = chosen[:1]
        chosen[0] = (*chosen[0][:6], 1)
    if defect == "order_over_5000":
        phone = PRODUCTS[9]
        chosen = [(phone[0], phone[1], phone[2], Decimal(phone[3]), phone[4], Decimal(phone[5]), 2)]
    elif defect == "not_on_positive_list":
        code, text, unit, price, origin, kg = OFF_LIST
        chosen[0] = (code, text, unit, Decimal(price), origin, Decimal(kg), 1)
    elif defect == "unknown_tariff_code":
        chosen[0] = (UNKNOWN_CODE, *chosen[0][1:])
    elif defect == "big_spender":
        whisky = PRODUCTS[6]
        chosen = [(whisky[0], whisky[1], whisky[2], Decimal(whisky[3]), whisky[4], Decimal(whisky[5]), 4)]
    return chosen


def parcels(options: Options) -> Iterator[tuple[dict, list[dict], list[dict], str | None]]:
    """(order, payments, waybills, defect) for each parcel: usually one payment and one waybill;
    a `duplicate` parcel carries a second, different payment or waybill (refused) or a repeat."""
    rng = random.Random(options.seed)
    buyers = _Buyers(rng, options.parcels)
    taxes = TaxTable()
    defects = [d for d in DEFECTS if d in options.defects]
    for n in range(options.parcels):
        draw = rng.random()
        index = int(draw / options.defect_rate)
        defect = defects[index] if index < len(defects) else None
        rank = buyers.big_spender() if defect == "big_spender" else buyers.regular()
        buyer = resident_id(rank)
        name, address = _person(rank)
        if defect == "invalid_buyer_id":
            buyer = spoil_id(buyer)
        ordered_at = _festival_moment(rng, options.day)
        order_no = f"OD{options.seed:03d}{n:010d}"
        items = _items(rng, defect)
        goods = sum((price * quantity for _, _, _, price, _, _, quantity in items), Decimal(0))
        freight = Decimal(0) if goods >= 99 else Decimal("10.00")
        discount = Decimal("20.00") if goods > 300 and rng.random() < 0.2 else Decimal(0)
        order = {
            "order_no": order_no, "platform_code": PLATFORM_CODE, "ordered_at": ordered_at.isoformat(),
            "buyer_id_number": buyer, "buyer_name": name, "consignee_name": name, "consignee_address": address,
            "currency": "CNY", "goods_value": _money(goods), "freight": _money(freight),
            "discount": _money(discount), "tax_withheld": "0.00",
            "items": [{"tariff_code": code, "description": text, "quantity": str(quantity), "unit": unit,
                       "unit_price": _money(price), "origin": origin}
                      for code, text, unit, price, origin, _, quantity in items],
        }
        tax = taxes.tax(model.parse_order(order)) or Decimal(0)
        if defect == "tax_withheld_mismatch":
            tax = max(Decimal(0), tax - Decimal("1.00")) if tax else Decimal("1.00")
        order["tax_withheld"] = _money(tax)
        paid = goods + freight + tax - discount
        payment = {"payment_no": f"PY{options.seed:03d}{n:010d}", "order_no": order_no,
                   "payer_id_number": buyer, "payer_name": name,
                   "amount_paid": _money(paid + (Decimal("0.01") if defect == "amount_mismatch" else 0)),
                   "paid_at": (ordered_at + timedelta(seconds=rng.randint(5, 600))).isoformat()}
        if defect == "payer_mismatch":
            payment["payer_id_number"] = resident_id(rank + 1)
            payment["payer_name"] = _person(rank + 1)[0]
        kg = sum((k * q for _, _, _, _, _, k, q in items), Decimal(0)) + Decimal("0.2")
        waybill = {"waybill_no": f"WB{options.seed:03d}{n:010d}", "order_no": order_no,
                   "consignee_name": name, "consignee_address": address,
                   "gross_weight_kg": str(kg),
                   "shipped_at": (ordered_at + timedelta(hours=rng.randint(2, 48))).isoformat()}
        if defect == "consignee_mismatch":
            waybill["consignee_address"] = address + "（转寄）"
        payments, waybills = [payment], [waybill]
        if defect == "duplicate":
            kind = rng.randrange(3)
            if kind == 0:      # a different payment under the same payment number: refused
                payments.append({**payment, "amount_paid": _money(paid + 100)})
            elif kind == 1:    # a second waybill for the order under its own number: refused
                waybills.append({**waybill, "waybill_no": waybill["waybill_no"] + "X"})
            else:              # the same waybill sent twice: an idempotent repeat
                waybills.append(dict(waybill))
        yield order, payments, waybills, defect


def generate(options: Options, out: Path) -> Counts:
    """Write orders.ndjson, payments.ndjson and waybills.ndjson into `out`.

    A refused duplicate is written well after its first record (beyond the shuffle window), so
    the first one in the file is the one that stands."""
    out.mkdir(parents=True, exist_ok=True)
    counts = Counts()
    rng = random.Random(options.seed * 7919 + 1)
    late: list[tuple[int, str, str]] = []        # (due at parcel n, file, line): duplicates
    with (open(out / "orders.ndjson", "w", encoding="utf-8") as orders_file,
          open(out / "payments.ndjson", "w", encoding="utf-8") as payments_file,
          open(out / "waybills.ndjson", "w", encoding="utf-8") as waybills_file):
        files = {"orders": _Shuffled(orders_file, rng, options.shuffle_window),
                 "payments": _Shuffled(payments_file, rng, options.shuffle_window // 2 + 7),
                 "waybills": _Shuffled(waybills_file, rng, options.shuffle_window * 2 + 3)}

        def put(name: str, record: dict) -> None:
            files[name].write(json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n")
            counts.lines[name] += 1

        for n, (order, payments, waybills, defect) in enumerate(parcels(options)):
            counts.parcels += 1
            if defect:
                counts.defects[defect] += 1
            put("orders", order)
            put("payments", payments[0])
            put("waybills", waybills[0])
            due = n + 3 * options.shuffle_window + 10
            late.extend((due, "payments", json.dumps(p, ensure_ascii=False, separators=(",", ":")))
                        for p in payments[1:])
            late.extend((due, "waybills", json.dumps(w, ensure_ascii=False, separators=(",", ":")))
                        for w in waybills[1:])
            while late and late[0][0] <= n:
                _, name, line = late.pop(0)
                files[name].write(line + "\n")
                counts.lines[name] += 1
        for name in files:
            files[name].close()   # flush the buffers before the late lines: they stay late
        for _, name, line in late:
            files[name].handle.write(line + "\n")
            counts.lines[name] += 1
    return counts
