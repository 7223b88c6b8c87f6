"""Helpers for the bulk paths (EPCIS capture, e-commerce batches and stream batches)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def cycle_collection_paused() -> Iterator[None]:
    """A bulk run makes hundreds of thousands of small objects (records, facts, rows) that form no
    reference cycles: the cyclic garbage collector would walk the live ones again every few hundred
    allocations, up to a third of the run's CPU. Reference counting frees everything meanwhile; the
    collector resumes when the run is done. Nested use leaves it to the outermost."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
