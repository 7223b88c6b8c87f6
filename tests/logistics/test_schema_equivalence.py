"""The compiled validator (jsonschema_rs) accepts and refuses exactly what the reference
`jsonschema` library does with the same schema: on every example document of the standard, and on
documents made invalid (or not) by changing one thing at a time. Speed is measured by
benchmarks/epcis.py, not asserted here."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator

import jsonschema
import pytest

from tests.logistics.test_capture_contract import examples
from tests.support.reference import require_reference
from tradewindow.logistics.schema import compile_schema
from tradewindow.platform.errors import json_path

REPLACEMENTS = (None, 7, 2.5, "text", "", True, [], {}, ["urn:epc:id:sgtin:0614141.107346.2018"],
                {"id": "urn:epc:id:sgln:0614141.07346.1234"})


@pytest.fixture(scope="module")
def validators():
    path = require_reference("epcis/EPCIS-JSON-Schema.json")
    schema = json.loads(path.read_text(encoding="utf-8"))
    return jsonschema.Draft7Validator(schema), compile_schema(path)


def paths(value, prefix=()) -> Iterator[tuple]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield (*prefix, key)
            yield from paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value[:3]):
            yield (*prefix, index)
            yield from paths(item, (*prefix, index))


def mutations(document: dict) -> Iterator[dict]:
    """One change at a time: each field removed, each value replaced by values of other types, and
    an unknown field added to each object."""
    for number, path in enumerate(paths(document)):
        parent = document
        for part in path[:-1]:
            parent = parent[part]
        if isinstance(parent, dict):
            removed = copy.deepcopy(document)
            target = removed
            for part in path[:-1]:
                target = target[part]
            del target[path[-1]]
            yield removed
        replacement = REPLACEMENTS[number % len(REPLACEMENTS)]
        changed = copy.deepcopy(document)
        target = changed
        for part in path[:-1]:
            target = target[part]
        target[path[-1]] = copy.deepcopy(replacement)
        yield changed
        if isinstance(parent[path[-1]], dict):
            extended = copy.deepcopy(document)
            target = extended
            for part in path:
                target = target[part]
            target["unknownField"] = 1
            yield extended


def agree(reference, compiled, document) -> None:
    expected = sorted({json_path(e.absolute_path) for e in reference.iter_errors(document)})
    found = sorted({p.path for p in compiled.problems(document)})
    assert reference.is_valid(document) == (not found)
    assert found == expected


def test_the_compiled_validator_agrees_on_every_example(validators):
    reference, compiled = validators
    for name, document in examples().items():
        try:
            agree(reference, compiled, document)
        except AssertionError as exc:
            raise AssertionError(name) from exc


@pytest.mark.slow
def test_the_compiled_validator_agrees_on_mutated_documents(validators):
    reference, compiled = validators
    checked = invalid = 0
    for name, document in examples().items():
        for mutated in list(mutations(document))[:60]:
            try:
                agree(reference, compiled, mutated)
            except AssertionError as exc:
                raise AssertionError(f"{name}: {json.dumps(mutated)[:400]}") from exc
            checked += 1
            invalid += not reference.is_valid(mutated)
    # The mutations exercise both answers, and many of them.
    assert checked > 1500
    assert 300 < invalid < checked
