"""The public reference data (HS 2022 nomenclature, EPCIS schemas, ...) and its absences.

Tests that read it call ``require_reference("hs2022")``: where the data set is missing the test is
skipped with the reason "reference data hs2022 absent at /path" — the one documented exception to
"a missing component fails" (CI always has ../shared/data; a developer's checkout may not). The
plugin hooks below then name every absent data set in the terminal summary, so an absence is never
silent. Register them from tests/conftest.py with ``pytest_plugins = ["tests.support.reference"]``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

__all__ = ["REFERENCE_ENV", "reference_data_dir", "require_reference"]

REFERENCE_ENV = "TRADEWINDOW_REFERENCE_DATA"
REPO_ROOT = Path(__file__).resolve().parents[2]
_SKIP_REASON = re.compile(r"reference data (?P<name>\S+) absent at (?P<path>.+?)\s*$", re.MULTILINE)

# name -> (path, number of tests or modules skipped for it). Filled from the test reports, which with
# pytest-xdist reach the controller process too, so the summary is complete under `pytest -n 2`.
_absent: dict[str, tuple[str, int]] = {}


def reference_data_dir() -> Path:
    """$TRADEWINDOW_REFERENCE_DATA, else ``<repo>/../shared/data``."""
    configured = os.environ.get(REFERENCE_ENV)
    return Path(configured) if configured else REPO_ROOT.parent / "shared" / "data"


def require_reference(name: str) -> Path:
    """The path of reference data set `name` (a file or folder under the reference directory).

    Skips the calling test (or module, when called at import time) where it is absent.
    """
    path = reference_data_dir() / name
    if not path.exists():
        pytest.skip(f"reference data {name} absent at {path}", allow_module_level=True)
    return path


def _note(report: pytest.CollectReport | pytest.TestReport) -> None:
    if not report.skipped:
        return
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple | list) and len(longrepr) == 3 else str(longrepr or "")
    match = _SKIP_REASON.search(reason)
    if match:
        _path, count = _absent.get(match["name"], (match["path"], 0))
        _absent[match["name"]] = (match["path"], count + 1)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    _note(report)


def pytest_collectreport(report: pytest.CollectReport) -> None:
    _note(report)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _absent:
        return
    terminalreporter.section("absent reference data", sep="=", yellow=True, bold=True)
    for name, (path, count) in sorted(_absent.items()):
        terminalreporter.line(f"{name}: absent at {path} ({count} skipped; {REFERENCE_ENV} sets the folder)")
