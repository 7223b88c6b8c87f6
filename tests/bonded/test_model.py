"""The pure book: balances are the sum of moves and never negative, FIFO takes the oldest lot
first, VINs and bills of materials follow their rules, and a reconciliation always balances."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from tradewindow.bonded import model
from tradewindow.bonded.model import Location, Move, MoveKind

LOTS = ["L1", "L2", "L3"]
OUTWARD = {MoveKind.RELEASE: Location.DOMESTIC_MARKET, MoveKind.REEXPORT: Location.REEXPORTED,
           MoveKind.DESTRUCTION: Location.DESTROYED, MoveKind.TRANSFER_OUT: Location.OTHER_ZONE}


class Book(RuleBasedStateMachine):
    """Any sequence of entries, removals, relocations, temporary removals and adjustments, each
    checked with the model's rule before it is booked, as the service does."""

    def __init__(self) -> None:
        super().__init__()
        self.moves: list[Move] = []
        self.day = date(2025, 1, 1)
        self.refused = 0

    def _book(self, lot: str, source: Location, destination: Location, quantity: Decimal, kind: MoveKind) -> None:
        on_hand = model.balances(self.moves).get((lot, source), Decimal(0))
        try:
            model.check_available(lot, source, on_hand, Decimal(0), quantity)
        except model.InsufficientStock:
            self.refused += 1
            return
        self.moves.append(Move(lot, source, destination, quantity, kind, day=self.day, item_id=lot[:2]))

    @rule(lot=st.sampled_from(LOTS), quantity=st.integers(1, 50))
    def entry(self, lot, quantity):
        self.moves.append(Move(lot, Location.ABROAD, Location.BONDED_STORAGE, Decimal(quantity), MoveKind.ENTRY,
                               day=self.day, item_id=lot[:2]))

    @rule(lot=st.sampled_from(LOTS), quantity=st.integers(1, 60), kind=st.sampled_from(sorted(OUTWARD)))
    def remove(self, lot, quantity, kind):
        self._book(lot, Location.BONDED_STORAGE, OUTWARD[kind], Decimal(quantity), kind)

    @rule(lot=st.sampled_from(LOTS), quantity=st.integers(1, 30), there=st.booleans())
    def relocate(self, lot, quantity, there):
        source, destination = ((Location.BONDED_STORAGE, Location.BONDED_EXHIBITION) if there
                               else (Location.BONDED_EXHIBITION, Location.BONDED_STORAGE))
        self._book(lot, source, destination, Decimal(quantity), MoveKind.RELOCATION)

    @rule(lot=st.sampled_from(LOTS), quantity=st.integers(1, 30), out=st.booleans())
    def temporary(self, lot, quantity, out):
        source, destination, kind = ((Location.BONDED_STORAGE, Location.TEMPORARILY_OUT, MoveKind.TEMPORARY_OUT)
                                     if out else (Location.TEMPORARILY_OUT, Location.BONDED_STORAGE,
                                                  MoveKind.TEMPORARY_RETURN))
        self._book(lot, source, destination, Decimal(quantity), kind)

    @rule(lot=st.sampled_from(LOTS), quantity=st.integers(1, 10), shortage=st.booleans())
    def adjust(self, lot, quantity, shortage):
        if shortage:
            self._book(lot, Location.BONDED_STORAGE, Location.STOCKTAKING, Decimal(quantity), MoveKind.ADJUSTMENT)
        else:
            self.moves.append(Move(lot, Location.STOCKTAKING, Location.BONDED_STORAGE, Decimal(quantity),
                                   MoveKind.ADJUSTMENT, day=self.day, item_id=lot[:2]))

    @rule()
    def next_day(self):
        self.day += timedelta(days=1)

    @invariant()
    def held_locations_never_go_negative(self):
        for (_, location), quantity in model.balances(self.moves).items():
            if location in model.HELD:
                assert quantity >= 0

    @invariant()
    def balances_are_the_sum_of_moves(self):
        for lot in LOTS:
            inflow = sum((m.quantity for m in self.moves if m.lot_id == lot and m.to_location in model.HELD
                          and m.from_location not in model.HELD), Decimal(0))
            outflow = sum((m.quantity for m in self.moves if m.lot_id == lot and m.from_location in model.HELD
                           and m.to_location not in model.HELD), Decimal(0))
            assert model.held_quantity(model.balances(self.moves), lot) == inflow - outflow

    @precondition(lambda self: self.moves)
    @invariant()
    def every_reconciliation_balances(self):
        start = date(2025, 1, 1) + (self.day - date(2025, 1, 1)) // 2
        for row in model.reconcile(self.moves, start, self.day):
            assert row.balances
            assert row.closing == model.held_quantity(model.balances(
                [m for m in self.moves if m.item_id == row.item_id]))


TestBook = Book.TestCase


@given(st.lists(st.integers(0, 20), min_size=1, max_size=6), st.integers(1, 100))
def test_fifo_takes_the_oldest_lots_first_and_never_more_than_they_hold(quantities, asked):
    lots = [model.Available(f"L{i}", Decimal(q)) for i, q in enumerate(quantities)]
    if asked > sum(quantities):
        with pytest.raises(model.InsufficientStock) as refused:
            model.allocate_fifo(lots, Decimal(asked))
        assert refused.value.code == "insufficient_stock"
        assert refused.value.available == sum(quantities)
        return
    taken = model.allocate_fifo(lots, Decimal(asked))
    assert sum(q for _, q in taken) == asked
    order = [int(lot_id[1:]) for lot_id, _ in taken]
    assert order == sorted(order)
    # Every lot before the last one taken is emptied: nothing newer is touched while older stock remains.
    for lot_id, quantity in taken[:-1]:
        assert quantity == Decimal(quantities[int(lot_id[1:])])


def test_insufficient_stock_says_what_is_there():
    with pytest.raises(model.InsufficientStock) as refused:
        model.check_available("Lot A", Location.BONDED_STORAGE, Decimal(3), Decimal(1), Decimal(5))
    assert refused.value.problems[0].message == (
        "Lot A has 2 available at bonded_storage (1 more reserved for pending declarations); 5 asked.")


@pytest.mark.parametrize("vin, code", [
    ("1M8GDM9AXKP042788", None),                      # North America: check digit X verified
    ("1M8GDM9A1KP042788", "invalid_vin_check_digit"),
    ("WDD2220821A000001", None),                      # Germany: no check digit in position 9
    ("WDD2220821A00000I", "invalid_vin"),             # I is never used
    ("WDD2220821A0000", "invalid_vin"),
])
def test_vins(vin, code):
    problem = model.vin_problem(vin)
    assert (problem.code if problem else None) == code


def test_unit_consumption_grosses_the_net_up_by_the_loss_rate_and_flags_the_excess():
    bom = model.BillOfMaterials("phone", "chip", Decimal("2"), Decimal("0.2"), date(2025, 1, 1))
    assert bom.unit_consumption == Decimal("2.5")
    used = model.consumption(bom, Decimal(100), Decimal(260))
    assert used.allowed == Decimal(250) and used.taxable_excess == Decimal(10)
    assert model.consumption(bom, Decimal(100), Decimal(240)).taxable_excess == 0
    with pytest.raises(ValueError):
        model.BillOfMaterials("phone", "chip", Decimal("2"), Decimal("1"), date(2025, 1, 1))


def test_stock_differences():
    found = model.stock_differences({"a": Decimal(10), "b": Decimal(5)}, {"a": Decimal(8), "b": Decimal(6)})
    assert [(d.kind, d.difference) for d in found] == [("shortage", -2), ("overage", 1)]
