"""The EPCIS 2.0 JSON Schema as the contract of capture, checked by a compiled validator.

Which validator
---------------
The generic `jsonschema` library validates about 250 events a second per core against this
schema (its `allOf` of `if`/`then` by event type is expensive to interpret). `fastjsonschema`,
which compiles the schema to Python, manages about 5,000 and stops at the first error. We use
`jsonschema_rs` (the schema compiled to a Rust validator): about 150,000 events a second per core,
and it lists every error with its path, so a refused document is answered with all its problems.
tests/logistics/test_schema_equivalence.py proves it accepts and refuses exactly what
`jsonschema` does, on every example document of the standard and on mutations of them.

Formats are not asserted, as draft-07 leaves `format` an annotation and `jsonschema` does by
default; capture checks the times it needs itself (`invalid_event_time`).

Where the schema comes from
---------------------------
The schema is GS1's. The licence file of GS1's EPCIS repository is a disclaimer (patents,
warranty) that grants no right to copy or redistribute, so Trade Window does not ship the file:
the operator downloads it from GS1 and names it in TRADEWINDOW_EPCIS_SCHEMA (Settings.epcis_schema).
Without it, capture refuses with 503 `epcis_schema_not_configured` rather than accept unchecked
documents.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import jsonschema_rs

from tradewindow.platform.errors import DomainError, Problem, json_path
from tradewindow.platform.settings import get_settings

MAX_LISTED_ERRORS = 200


class SchemaNotConfigured(DomainError):
    status = 503


@dataclass(frozen=True)
class CompiledSchema:
    path: Path
    sha256: str
    validator: Any

    def problems(self, document: Any) -> list[Problem]:
        """Every way `document` breaks the schema (at most MAX_LISTED_ERRORS), in document order."""
        if self.validator.is_valid(document):
            return []
        found = []
        for error in self.validator.iter_errors(document):
            found.append(Problem(json_path(error.instance_path), "schema_violation", error.message))
            if len(found) >= MAX_LISTED_ERRORS:
                break
        return sorted(found, key=lambda p: (p.path, p.message))


def compile_schema(path: Path) -> CompiledSchema:
    raw = path.read_bytes()
    schema = json.loads(raw)
    return CompiledSchema(path, hashlib.sha256(raw).hexdigest(),
                          jsonschema_rs.Draft7Validator(schema, validate_formats=False))


@lru_cache(maxsize=4)
def _compiled(path: str, mtime_ns: int, size: int) -> CompiledSchema:
    return compile_schema(Path(path))


def current_schema() -> CompiledSchema:
    """The configured schema, compiled once (again when the file changes)."""
    configured = get_settings().epcis_schema
    if configured is None:
        raise SchemaNotConfigured(
            "EPCIS capture needs the GS1 EPCIS 2.0 JSON Schema: download EPCIS-JSON-Schema.json from GS1 "
            "and set TRADEWINDOW_EPCIS_SCHEMA to its path.", "epcis_schema_not_configured")
    path = Path(configured)
    try:
        stat = path.stat()
        return _compiled(str(path.resolve()), stat.st_mtime_ns, stat.st_size)
    except (OSError, ValueError) as exc:
        raise SchemaNotConfigured(f"The EPCIS schema at {path} cannot be read or compiled ({exc}).",
                                  "epcis_schema_not_configured") from exc
