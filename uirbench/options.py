"""Model-specific options (``--model-arg key=value``), checked against the model's own config dataclass.

The generic commands (``train``, ``evaluate``) know no model's options. Each model names a frozen
dataclass in its registration (``ModelSpec.options`` for inference, its trainer's options for
training); :func:`typed_options` checks the keys against that dataclass's fields and converts the
text values to the fields' types, with an error that names the flag and lists the valid keys.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Any

from uirbench.errors import UserError

FLAG = "--model-arg"


def split_pairs(texts: Iterable[str], flag: str = FLAG) -> tuple[tuple[str, str], ...]:
    """``["top_k=3", "router=oracle"]`` -> ``(("top_k", "3"), ("router", "oracle"))``; a repeated key is refused.

    >>> split_pairs(["top_k=3", "router=oracle"])
    (('top_k', '3'), ('router', 'oracle'))
    """
    pairs: dict[str, str] = {}
    for text in texts:
        key, sep, value = text.partition("=")
        if not sep or not key.strip():
            raise UserError(f"{flag} {text!r}: expected key=value (e.g. {flag} top_k=3)")
        if key.strip() in pairs:
            raise UserError(f"{flag} {key.strip()}: given twice")
        pairs[key.strip()] = value
    return tuple(pairs.items())


def typed_options(cls: type | None, values: Mapping[str, Any], owner: str, flag: str = FLAG) -> dict[str, Any]:
    """``values`` checked against the fields of dataclass ``cls`` and converted to their types (text from the
    command line; typed values from Python callers are checked as they are). ``owner`` names whose options
    they are in errors (e.g. ``model 'uir-lora'``).

    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True)
    ... class Options:
    ...     top_k: int = 2
    ...     router: str = "learned"
    >>> typed_options(Options, {"top_k": "3"}, "model 'x'")
    {'top_k': 3}
    """
    if not values:
        return {}
    fields = {} if cls is None else {f.name: f for f in dataclasses.fields(cls) if f.init}
    if not fields:
        raise UserError(f"{flag}: {owner} takes no options (got {', '.join(sorted(values))})")
    hints = typing.get_type_hints(cls)
    typed = {}
    for key, value in values.items():
        if key not in fields:
            raise UserError(f"{flag} {key}: {owner} has no option {key!r}; valid: {', '.join(fields)}")
        typed[key] = _convert(value, hints[key], f"{flag} {key}={value}")
    return typed


def _convert(value: Any, hint: Any, what: str) -> Any:
    """``value`` as type ``hint`` (int, float, bool, str, tuples of them, or ``X | None``)."""
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        if value is None or (isinstance(value, str) and value.lower() == "none"):
            if type(None) in args:
                return None
        for arg in (a for a in args if a is not type(None)):
            try:
                return _convert(value, arg, what)
            except UserError:
                continue
        raise UserError(f"{what}: expected {_name(hint)}")
    if typing.get_origin(hint) is tuple:
        try:
            items = json.loads(value) if isinstance(value, str) and value.startswith("[") else value
        except json.JSONDecodeError:
            raise UserError(f"{what}: expected a list such as [1,2] or 1,2") from None
        if isinstance(items, str):
            items = [v for v in items.split(",") if v]
        return tuple(_convert(v, args[0], what) for v in items)
    if hint is bool:
        text = str(value).lower()
        if text in ("true", "1", "yes") or value is True:
            return True
        if text in ("false", "0", "no") or value is False:
            return False
        raise UserError(f"{what}: expected true or false")
    if hint in (int, float):
        if isinstance(value, bool) or (hint is int and isinstance(value, float) and not value.is_integer()):
            raise UserError(f"{what}: expected {hint.__name__}")
        try:
            return hint(value)
        except (TypeError, ValueError):
            raise UserError(f"{what}: expected {hint.__name__}") from None
    if hint is str:
        return str(value)
    raise UserError(f"{what}: options of type {_name(hint)} cannot be set from the command line")


def _name(hint: Any) -> str:
    return getattr(hint, "__name__", str(hint))
