"""One small registry shape for degradations, models and metrics.

Built-ins register themselves where they are defined (``@DEGRADATIONS.register("haze")``) and are
imported explicitly by their package ``__init__``. Third-party packages register through the
entry-point group ``uirbench``: each entry point names a module (or callable) that is imported
(or called) once, the first time any registry is queried, and registers its objects there.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from importlib.metadata import entry_points
from typing import Any

from uirbench.errors import UserError

ENTRY_POINT_GROUP = "uirbench"
_plugins_loaded = False


def load_plugins() -> None:
    """Import every ``uirbench`` entry point once (third-party degradations, models, metrics)."""
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            obj = ep.load()
        except Exception as exc:  # a broken plugin must say which one it is
            raise RuntimeError(f"uirbench plugin entry point {ep.name!r} ({ep.value}) failed to load: {exc}") from exc
        if callable(obj) and not isinstance(obj, type):
            obj()


class UnknownNameError(UserError, KeyError):
    """A name that is not registered; the message lists close matches and the valid names."""


class Registry:
    """Name -> object, with per-name metadata, close-match hints and duplicate detection."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, Any] = {}
        self._meta: dict[str, dict[str, Any]] = {}

    def register(self, name: str, **meta: Any) -> Callable[[Any], Any]:
        """Decorator: ``@REG.register("name", key=value)`` stores the object under ``name``."""

        def decorator(obj: Any) -> Any:
            self.add(name, obj, **meta)
            return obj

        return decorator

    def add(self, name: str, obj: Any, **meta: Any) -> None:
        if not name or name != name.strip():
            raise ValueError(f"{self.kind} name must be a non-empty string without surrounding spaces, got {name!r}")
        if name in self._items:
            raise ValueError(f"duplicate {self.kind} name {name!r}: already registered by {self._items[name]!r}")
        self._items[name] = obj
        self._meta[name] = dict(meta)

    def get(self, name: str) -> Any:
        load_plugins()
        try:
            return self._items[name]
        except KeyError:
            raise UnknownNameError(self.unknown_message(name)) from None

    def meta(self, name: str) -> dict[str, Any]:
        self.get(name)
        return dict(self._meta[name])

    def unknown_message(self, name: str) -> str:
        close = difflib.get_close_matches(name, self._items, n=3, cutoff=0.5)
        hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        return f"unknown {self.kind} {name!r}.{hint} Valid {self.kind}s: {', '.join(self.names())}"

    def names(self) -> list[str]:
        load_plugins()
        return list(self._items)

    def __contains__(self, name: object) -> bool:
        load_plugins()
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())


DEGRADATIONS = Registry("degradation")
MODELS = Registry("model")
METRICS = Registry("metric")
