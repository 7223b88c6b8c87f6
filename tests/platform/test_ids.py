"""Ids are ULIDs made client-side: 26 characters, unique, and in creation order (DESIGN.md §3)."""

from __future__ import annotations

import threading
import time

from tradewindow.platform.ids import _encode, is_id, new_id, new_ids

CROCKFORD = set("0123456789ABCDEFGHJKMNPQRSTVWXYZ")


def test_an_id_is_26_crockford_base32_characters():
    ident = new_id()
    assert len(ident) == 26
    assert set(ident) <= CROCKFORD
    assert is_id(ident)


def test_is_id_refuses_what_is_not_an_id():
    assert not is_id("")
    assert not is_id(new_id()[:-1])
    assert not is_id(new_id() + "0")
    assert not is_id("I" * 26)          # I, L, O, U are not in Crockford's alphabet
    assert not is_id(new_id().lower())


def test_ids_made_in_a_tight_loop_are_unique_and_strictly_increasing():
    ids = [new_id() for _ in range(50_000)]    # many share a millisecond
    assert len(set(ids)) == len(ids)
    assert all(a < b for a, b in zip(ids, ids[1:], strict=False))


def test_ids_made_in_bulk_are_ulids_in_order_with_those_made_one_by_one():
    before = new_id()
    made = new_ids(3000)
    after = new_id()
    assert all(is_id(ident) for ident in made)
    assert [before, *made, after] == sorted({before, *made, after})
    assert new_ids(0) == []


def test_bulk_ids_encode_like_single_ones_across_carries(monkeypatch):
    import tradewindow.platform.ids as ids

    for random_part in (0, 1023, (1 << 20) - 2, (1 << 80) - 2, 0x12345FFFFF):
        monkeypatch.setattr(ids, "_last_ms", 10**13)         # the next ids share that (future) millisecond
        monkeypatch.setattr(ids, "_last_random", random_part)
        made = new_ids(5)
        assert made == [_encode((10**13 << 80) | ((random_part + 1 + i) & ((1 << 80) - 1))) for i in range(5)]


def test_ids_sort_by_creation_time():
    first = new_id()
    time.sleep(0.002)
    second = new_id()
    assert first[:10] < second[:10]   # the first 10 characters are the millisecond timestamp


def test_ids_made_by_many_threads_at_once_are_unique():
    results: list[list[str]] = [[] for _ in range(8)]
    start = threading.Barrier(len(results))

    def make(into: list[str]) -> None:
        start.wait()
        into.extend(new_id() for _ in range(5_000))

    threads = [threading.Thread(target=make, args=(into,)) for into in results]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [ident for made in results for ident in made]
    assert len(every) == 40_000
    assert len(set(every)) == len(every)
    for made in results:       # each thread still sees its own ids in increasing order
        assert made == sorted(made)
