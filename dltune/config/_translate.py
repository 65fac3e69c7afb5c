"""Pydantic's validation errors in the config's own words (no pydantic text, no URLs)."""

from __future__ import annotations

import inspect
from typing import Any

from pydantic import BaseModel
from pydantic import ValidationError
from pydantic.fields import FieldInfo

from dltune.config._errors import Loc
from dltune.config._errors import Problem
from dltune.config._errors import Problems

__all__ = ["translate"]

_PROBLEMS = {
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "int_from_float": "must be an integer",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "finite_number": "must be a finite number",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "string_type": "must be a string",
    "string_too_short": "must not be empty",
    "dict_type": "must be a mapping",
    "model_type": "must be a mapping",
    "model_attributes_type": "must be a mapping",
    "list_type": "must be a list",
}
_BOUNDS = {"gt": ">", "ge": ">=", "lt": "<", "le": "<="}


def _model_at(model: type[BaseModel], loc: Loc) -> type[BaseModel] | None:
    """The model that validates the value at ``loc``, if it is a model."""
    current: type[BaseModel] | None = model
    for part in loc:
        field = current.model_fields.get(part) if current and isinstance(part, str) else None
        if field is None:
            return None
        ann = field.annotation
        current = ann if inspect.isclass(ann) and issubclass(ann, BaseModel) else None
    return current


def _field_at(model: type[BaseModel], loc: Loc) -> FieldInfo | None:
    parent = _model_at(model, loc[:-1]) if loc else None
    if parent is None or not isinstance(loc[-1], str):
        return None
    return parent.model_fields.get(loc[-1])


def _one(error: Any, model: type[BaseModel]) -> Problem:
    loc: Loc = tuple(error["loc"])
    kind, got, ctx = error["type"], error.get("input"), error.get("ctx") or {}
    field = _field_at(model, loc)
    accepted = (field.description if field else None) or "see the config's schema"
    if kind == "missing":
        return Problem.missing(loc, "required", accepted)
    if kind == "extra_forbidden":
        parent = _model_at(model, loc[:-1])
        keys = list(parent.model_fields) if parent else []
        return Problem.unknown_key(loc, loc[-1], got, keys)
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        sub = _model_at(model, loc)
        if sub is not None:
            accepted = f"a mapping with keys {', '.join(sub.model_fields)}"
    if kind in _PROBLEMS:
        return Problem.bad(loc, _PROBLEMS[kind], got, accepted)
    for bound, sign in _BOUNDS.items():
        if bound in ctx and kind.startswith(("greater", "less")):
            value = ctx[bound]
            if isinstance(value, float) and value.is_integer():
                value = int(value)  # "> 0", not "> 0.0", for a float field's bound of 0
            return Problem.bad(loc, f"must be {sign} {value!r}", got, accepted)
    if kind == "literal_error":
        return Problem.bad(loc, f"must be {ctx.get('expected')}", got, accepted)
    if kind == "value_error" and "error" in ctx:
        return Problem.bad(loc, str(ctx["error"]), got, accepted)
    message = str(error.get("msg", kind))
    return Problem.bad(loc, message[:1].lower() + message[1:], got, accepted)


def translate(exc: ValidationError, model: type[BaseModel]) -> list[Problem]:
    """One problem per pydantic error; our validators' :class:`Problems` are expanded under
    the location pydantic gives them."""
    out: list[Problem] = []
    for error in exc.errors():
        found = (error.get("ctx") or {}).get("error")
        if isinstance(found, Problems):
            out.extend(p.under(tuple(error["loc"])) for p in found.problems)
        else:
            out.append(_one(error, model))
    return out
