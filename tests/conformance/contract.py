"""Checks response bodies against the Licensing contract (contract/licensing-3.6.1.openapi.json).

The generated `veeam-spc` models are lenient: they take a `null` where the schema has none, keep
unknown properties in `additional_properties` and accept any number where an integer belongs.
This module reads the contract itself and reports every place where a body departs from the
response schema of an operation, so a test can assert both "the client parses it" and "it is
what the contract promises".

Only the parts of OpenAPI 3.0 that the contract uses are implemented: ``$ref``, ``type``,
``format`` (uuid, date-time, date, int32, binary), ``nullable``, ``enum``, ``required``,
``properties``, ``additionalProperties``, ``items``, ``anyOf`` and ``maxLength``.

Strictness beyond plain JSON Schema, each from the contract's conventions (section 2.1):

* a property the schema does not declare is a violation (the client would only keep it in
  ``additional_properties``);
* ``date-time`` values must be VSPC's spelling, RFC 3339 with seven fractional digits and a
  numeric offset (``2023-01-16T16:30:09.4952609+01:00``);
* ``meta`` of an envelope may be ``null`` (the conventions write ``ResponseMetadata|null``,
  which a ``$ref`` cannot express in OpenAPI 3.0);
* ``ResponseError`` may carry ``parameterName`` and ``propertyName`` strings (conventions.md
  section 2.2 lists them with ``failedJsonPatch`` and ``retryAfter`` as optional extras; the
  JSON schema only declares the last two).
"""

from __future__ import annotations

import functools
import json
import re
import uuid
from pathlib import Path
from typing import Any, Optional

CONTRACT_PATH = Path(__file__).resolve().parents[2] / "contract" / "licensing-3.6.1.openapi.json"

VSPC_DATE_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}(?:[+-]\d\d:\d\d)$")
DATE = re.compile(r"^\d{4}-\d\d-\d\d$")
INT32 = (-(2**31), 2**31 - 1)

# Optional properties conventions.md section 2.2 adds to schemas of the JSON document.
EXTRA_PROPERTIES = {
    "ResponseError": {
        "parameterName": {"type": "string"},
        "propertyName": {"type": "string"},
    },
}


@functools.lru_cache(maxsize=1)
def document() -> dict:
    return json.loads(CONTRACT_PATH.read_text())


@functools.lru_cache(maxsize=None)
def operation(operation_id: str) -> tuple[str, str, dict]:
    """(method, path, operation object) of an operationId."""
    for path, item in document()["paths"].items():
        for method, op in item.items():
            if isinstance(op, dict) and op.get("operationId") == operation_id:
                return method.upper(), path, op
    raise KeyError(f"no operation {operation_id!r} in the contract")


@functools.lru_cache(maxsize=None)
def operation_id_of_module(module_name: str) -> str:
    """The operationId a generated client module (``install_site_license``) calls.

    The contract names the module of every operation in ``x-python-client-module``.
    """
    short = module_name.rsplit(".", 1)[-1]
    for item in document()["paths"].values():
        for op in item.values():
            if isinstance(op, dict) and op.get("x-python-client-module") == short:
                return op["operationId"]
    raise KeyError(f"no operation is called by the client module {short!r}")


def response_schema(operation_id: str, status: int) -> Optional[dict]:
    """The JSON schema of ``status`` (or ``default``) for the operation, None if bodiless."""
    responses = operation(operation_id)[2]["responses"]
    response = responses.get(str(status)) or responses.get("default")
    if response is None:
        raise AssertionError(f"{operation_id} documents no response {status}")
    content = response.get("content") or {}
    media = content.get("application/json")
    return None if media is None else media["schema"]


def _resolve(schema: dict) -> tuple[dict, Optional[str]]:
    name = None
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = document()["components"]["schemas"][name]
    return schema, name


def violations(schema: dict, value: Any, where: str = "$") -> list[str]:
    """Every way ``value`` departs from ``schema``, as ``where: problem`` lines."""
    schema, name = _resolve(schema)
    out: list[str] = []

    if "anyOf" in schema:
        branches = [violations(branch, value, where) for branch in schema["anyOf"]]
        if all(branches):
            out.append(f"{where}: matches no anyOf branch ({'; '.join(b[0] for b in branches)})")
        return out

    if value is None:
        if schema.get("nullable") or name == "ResponseMetadata":
            return out
        return [f"{where}: null, but the schema{f' {name}' if name else ''} is not nullable"]

    if "enum" in schema and value not in schema["enum"]:
        out.append(f"{where}: {value!r} is not one of {schema['enum']}")

    kind = schema.get("type")
    fmt = schema.get("format")
    if kind == "object" or (kind is None and "properties" in schema):
        if not isinstance(value, dict):
            return [f"{where}: expected an object, got {type(value).__name__}"]
        props = {**schema.get("properties", {}), **EXTRA_PROPERTIES.get(name or "", {})}
        for required in schema.get("required", []):
            if required not in value:
                out.append(f"{where}: required property {required!r} is missing")
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            if key in props:
                out += violations(props[key], item, f"{where}.{key}")
            elif isinstance(extra, dict):
                out += violations(extra, item, f"{where}.{key}")
            elif extra is not True:
                out.append(f"{where}: property {key!r} is not in the schema{f' {name}' if name else ''}")
    elif kind == "array":
        if not isinstance(value, list):
            return [f"{where}: expected an array, got {type(value).__name__}"]
        for i, item in enumerate(value):
            out += violations(schema.get("items", {}), item, f"{where}[{i}]")
    elif kind == "string":
        if not isinstance(value, str):
            return [f"{where}: expected a string, got {value!r}"]
        if fmt == "uuid":
            try:
                uuid.UUID(value)
            except ValueError:
                out.append(f"{where}: {value!r} is not a UUID")
        elif fmt == "date-time" and not VSPC_DATE_TIME.match(value):
            out.append(f"{where}: {value!r} is not a VSPC date-time (7 fractional digits, offset)")
        elif fmt == "date" and not DATE.match(value):
            out.append(f"{where}: {value!r} is not a date")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            out.append(f"{where}: longer than {schema['maxLength']}")
    elif kind == "integer":
        if isinstance(value, bool) or not isinstance(value, int):
            out.append(f"{where}: expected an integer, got {value!r}")
        elif fmt == "int32" and not INT32[0] <= value <= INT32[1]:
            out.append(f"{where}: {value} does not fit int32")
    elif kind == "number":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            out.append(f"{where}: expected a number, got {value!r}")
    elif kind == "boolean":
        if not isinstance(value, bool):
            out.append(f"{where}: expected a boolean, got {value!r}")
    return out


def assert_conforms(operation_id: str, status: int, body: Any) -> None:
    """Fails with every contract violation of ``body`` as the ``status`` answer of the op."""
    schema = response_schema(operation_id, status)
    assert schema is not None, f"{operation_id} {status} has no JSON body in the contract"
    problems = violations(schema, body)
    assert not problems, f"{operation_id} {status} breaks the contract:\n  " + "\n  ".join(
        problems[:20]
    )
