"""The Harmonized System nomenclature as published in the public-domain HS data package
(`section,hscode,description,parent,level`): sections, chapters (2 digits), headings (4) and
subheadings (6), each with its parent. Pure: parsing and checking the hierarchy."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from tradewindow.platform.errors import Problem

HS_COLUMNS = ("section", "hscode", "description", "parent", "level")
ROOT = "TOTAL"


@dataclass(frozen=True, slots=True)
class HsEntry:
    code: str
    level: int          # 2 chapter, 4 heading, 6 subheading
    parent: str | None  # None for a chapter (its parent in the file is TOTAL)
    section: str
    description: str


def parse_hs_csv(text: str) -> tuple[list[HsEntry], list[Problem]]:
    """Every entry and every problem (path `rows[N].column`, N counting the header as row 1)."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    missing = [c for c in HS_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        return [], [Problem("header", "missing_column", f"Missing column(s): {', '.join(missing)}.")]
    entries: list[HsEntry] = []
    problems: list[Problem] = []
    seen: dict[str, HsEntry] = {}
    for number, row in enumerate(reader, start=2):
        if (row.get("hscode") or "").strip() == ROOT:
            continue   # the file's own root row ("Total of all commodities"), not a code
        entry, row_problems = _parse_row(row, number)
        problems.extend(row_problems)
        if entry is None:
            continue
        if entry.code in seen:
            problems.append(Problem(f"rows[{number}].hscode", "duplicate_code", f"{entry.code} appears twice."))
            continue
        seen[entry.code] = entry
        entries.append(entry)
    problems.extend(_hierarchy_problems(entries, seen))
    return entries, problems


def _parse_row(row: dict[str, str], number: int) -> tuple[HsEntry | None, list[Problem]]:
    problems = []
    code = (row.get("hscode") or "").strip()
    level_text = (row.get("level") or "").strip()
    if not code.isdigit() or len(code) not in (2, 4, 6):
        problems.append(Problem(f"rows[{number}].hscode", "invalid_hs_code", "An HS code has 2, 4 or 6 digits."))
    if not level_text.isdigit() or int(level_text) != len(code):
        problems.append(Problem(f"rows[{number}].level", "level_mismatch",
                                "The level must equal the number of digits of the code."))
    if not (row.get("description") or "").strip():
        problems.append(Problem(f"rows[{number}].description", "required", "A description is required."))
    if problems:
        return None, problems
    parent = (row.get("parent") or "").strip()
    return HsEntry(code=code, level=len(code), parent=None if parent == ROOT else parent,
                   section=(row.get("section") or "").strip(),
                   description=row["description"].strip()), []


def _hierarchy_problems(entries: list[HsEntry], by_code: dict[str, HsEntry]) -> list[Problem]:
    """A heading's parent is its chapter, a subheading's its heading: the code's own prefix."""
    problems = []
    for entry in entries:
        expected = entry.code[:-2] if entry.level > 2 else None
        if entry.parent != expected:
            problems.append(Problem(f"hscode[{entry.code}].parent", "wrong_parent",
                                    f"{entry.code}'s parent should be {expected or ROOT}."))
        elif expected is not None and expected not in by_code:
            problems.append(Problem(f"hscode[{entry.code}].parent", "unknown_parent",
                                    f"{entry.code}'s parent {expected} is not in the file."))
    return problems
