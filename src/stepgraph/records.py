"""A step result as the contract spells it: validation in, JSON out.

``parse_step_result`` turns one contract-shaped object (the REST row, camelCase
keys) into a store row (snake_case column names, Python values), reporting
every field at fault. ``step_result_json`` renders a store row back into the
contract shape, keys in the contract's order.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from stepgraph.domain import STEP_RESULT_FIELDS, StepStatus
from stepgraph.store.types import COST_SCALE
from stepgraph.timestamps import format_instant, parse_instant

# Contract field name -> store column name.
COLUMNS: dict[str, str] = {
    "id": "id",
    "userId": "user_id",
    "organizationId": "organization_id",
    "batchExecutionId": "batch_execution_id",
    "executionSessionId": "execution_session_id",
    "flowId": "flow_id",
    "flowVersionId": "flow_version_id",
    "recordId": "record_id",
    "recordName": "record_name",
    "stepId": "step_id",
    "stepType": "step_type",
    "stepName": "step_name",
    "order": "step_order",
    "status": "status",
    "startedAt": "started_at",
    "completedAt": "completed_at",
    "durationMs": "duration_ms",
    "outputPreview": "output_preview",
    "createdAt": "created_at",
    "recordMetadata": "record_metadata",
    "stepConfig": "step_config",
    "inputVariables": "input_variables",
    "resolvedPrompt": "resolved_prompt",
    "modelUsed": "model_used",
    "promptTokens": "prompt_tokens",
    "completionTokens": "completion_tokens",
    "totalTokens": "total_tokens",
    "estimatedCost": "estimated_cost",
    "errorMessage": "error_message",
    "retryCount": "retry_count",
}
assert tuple(COLUMNS) == STEP_RESULT_FIELDS

_MAX_ID = 255
_MAX_INT = 2**31 - 1
# Bounded so that SQLite can keep it as a 64-bit count of 10^-COST_SCALE dollars.
_MAX_COST = Decimal(10) ** 8


@dataclass(frozen=True, slots=True)
class FieldError:
    """One field of one step result that breaks the contract."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class InvalidStepResult(ValueError):
    """A step result with one or more fields at fault."""

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(str(e) for e in errors))
        self.errors = errors


def _identifier(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {_kind(value)}")
    if value == "":
        raise ValueError("must not be empty")
    if len(value) > _MAX_ID:
        raise ValueError(f"longer than {_MAX_ID} characters")
    return _text(value)


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {_kind(value)}")
    if "\x00" in value:
        # PostgreSQL text cannot hold it; refusing it everywhere keeps stores interchangeable.
        raise ValueError("must not contain the NUL character (U+0000)")
    return value


def _count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise ValueError(f"expected a whole number, got {_kind(value)}")
    if not 0 <= value <= _MAX_INT:
        raise ValueError(f"must be between 0 and {_MAX_INT}, got {value}")
    return int(value)


def _status(value: Any) -> str:
    allowed = [s.value for s in StepStatus]
    if value not in allowed:
        raise ValueError(f"must be one of {', '.join(allowed)}; got {value!r}")
    return str(value)


def _instant(value: Any) -> Any:
    if not isinstance(value, str):
        raise ValueError(f"expected an RFC 3339 date-time string, got {_kind(value)}")
    return parse_instant(value)


def _json_object(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"expected a JSON object, got {_kind(value)}")
    return value


def parse_cost(value: Any) -> Decimal:
    """An exact decimal from a string or a JSON number (no binary rounding kept)."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"expected a decimal string or number, got {_kind(value)}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("must be a finite number")
    try:
        # str() of a float is its shortest round-trip form: 0.0045 stays 0.0045.
        cost = Decimal(str(value).strip()) if isinstance(value, str | float) else Decimal(value)
    except InvalidOperation:
        raise ValueError(f'expected a decimal such as "0.0045", got {value!r}') from None
    if not cost.is_finite():
        raise ValueError("must be a finite number")
    exponent = cost.as_tuple().exponent
    if (
        isinstance(exponent, int)
        and exponent < -COST_SCALE
        and cost != cost.quantize(Decimal(1).scaleb(-COST_SCALE))
    ):
        raise ValueError(f"has more than {COST_SCALE} decimal places: {value!r}")
    if abs(cost) >= _MAX_COST:
        raise ValueError(f"must be below {_MAX_COST:,}")
    return cost


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return f"the number {value!r}"
    if isinstance(value, str):
        return f"the string {value!r}"[:80]
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


_Parser = Callable[[Any], Any]

# field -> (parser, required). Required fields may not be null or absent.
_FIELDS: dict[str, tuple[_Parser, bool]] = {
    "id": (_identifier, True),
    "userId": (_identifier, True),
    "organizationId": (_identifier, True),
    "batchExecutionId": (_identifier, False),
    "executionSessionId": (_identifier, False),
    "flowId": (_identifier, True),
    "flowVersionId": (_identifier, False),
    "recordId": (_identifier, False),
    "recordName": (_text, False),
    "stepId": (_identifier, True),
    "stepType": (_identifier, True),
    "stepName": (_text, True),
    "order": (_count, True),
    "status": (_status, True),
    "startedAt": (_instant, False),
    "completedAt": (_instant, False),
    "durationMs": (_count, False),
    "outputPreview": (_text, False),
    "createdAt": (_instant, True),
    "recordMetadata": (_json_object, False),
    "stepConfig": (_json_object, False),
    "inputVariables": (_json_object, False),
    "resolvedPrompt": (_text, False),
    "modelUsed": (_identifier, False),
    "promptTokens": (_count, False),
    "completionTokens": (_count, False),
    "totalTokens": (_count, False),
    "estimatedCost": (parse_cost, False),
    "errorMessage": (_text, False),
    "retryCount": (_count, True),
}


def parse_step_result(obj: Any) -> dict[str, Any]:
    """Validate one contract-shaped step result and return its store row.

    Every field at fault is reported at once in :class:`InvalidStepResult`.
    Absent nullable fields are null; an absent ``retryCount`` is 0 (an explicit null is
    refused, as for every non-null field); a key the
    contract does not know is an error, so nothing sent is dropped silently.
    """
    if not isinstance(obj, dict):
        raise InvalidStepResult([FieldError("(row)", f"expected a JSON object, got {_kind(obj)}")])
    errors: list[FieldError] = []
    row: dict[str, Any] = {}
    for name, (parse, required) in _FIELDS.items():
        value = obj.get(name)
        if name == "retryCount" and name not in obj:
            value = 0
        if value is None:
            if required:
                errors.append(
                    FieldError(name, "must not be null" if name in obj else "is required")
                )
            row[COLUMNS[name]] = None
            continue
        try:
            row[COLUMNS[name]] = parse(value)
        except ValueError as exc:
            errors.append(FieldError(name, str(exc)))
    for name in obj:
        if name not in _FIELDS:
            errors.append(FieldError(str(name), "is not a field of a step result"))
    if errors:
        raise InvalidStepResult(errors)
    return row


def format_cost(value: Decimal) -> str:
    """Render a cost without exponent and without trailing zeros: ``"0.0045"``."""
    text = format(value.normalize(), "f")
    return "0" if text in {"-0", ""} else text


def step_result_json(row: Mapping[Any, Any]) -> dict[str, Any]:
    """Render a store row in the contract's JSON shape (keys in contract order)."""
    out: dict[str, Any] = {}
    for name, column in COLUMNS.items():
        value = row[column]
        if value is not None:
            if name in {"startedAt", "completedAt", "createdAt"}:
                value = format_instant(value)
            elif name == "estimatedCost":
                value = format_cost(value)
        out[name] = value
    return out
