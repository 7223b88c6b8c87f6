"""The public reference data (HS 2022 nomenclature, EPCIS schemas, ...) the tests read.

Tests call ``require_reference("hs2022")``. Where the data set is missing the test fails with the
data set's name, the path looked at and the variable that sets the folder: a missing component is
an error, never a skip, like a missing PostgreSQL server or chromium (tests/support/postgres.py).
CI always has ../shared/data; a checkout without it points TRADEWINDOW_REFERENCE_DATA at a copy.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

__all__ = ["REFERENCE_ENV", "reference_data_dir", "require_reference"]

REFERENCE_ENV = "TRADEWINDOW_REFERENCE_DATA"
REPO_ROOT = Path(__file__).resolve().parents[2]


def reference_data_dir() -> Path:
    """$TRADEWINDOW_REFERENCE_DATA, else ``<repo>/../shared/data``."""
    configured = os.environ.get(REFERENCE_ENV)
    return Path(configured) if configured else REPO_ROOT.parent / "shared" / "data"


def require_reference(name: str) -> Path:
    """The path of reference data set `name` (a file or folder under the reference directory);
    fails the calling test where it is absent."""
    path = reference_data_dir() / name
    if not path.exists():
        pytest.fail(f"reference data {name} absent at {path}: put the public reference data there "
                    f"or set {REFERENCE_ENV} to its folder", pytrace=False)
    return path
