"""One registry contract for degradations, models and metrics.

Each kind has a frozen *spec* dataclass (:class:`DegradationSpec`, :class:`ModelSpec`,
:class:`MetricSpec`) holding what the rest of the package may know about a registered object, and
one :class:`Registry` holding name -> (object, spec). A registration states the name once
(``@MODELS.register("nafnet", kind="baseline", ...)``): the registry builds the spec from the
keywords (an unknown or missing keyword is an error at import time, not a silent default) and sets
the class's ``name`` attribute from the registration.

Built-ins are imported on the first query of a registry (``MODELS.get("nafnet")`` works right
after ``import uirbench``; no folder is scanned: each registry names its built-in modules). Third
party packages register through the entry-point group ``uirbench``: each entry point names a module
(or callable) that is imported (or called) once, after the built-ins, and registers its objects.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Generic, TypeVar

from uirbench.errors import UnknownNameError

__all__ = ["DEGRADATIONS", "METRICS", "MODELS", "DegradationSpec", "MetricSpec", "ModelSpec", "Registry", "UnknownNameError"]

ENTRY_POINT_GROUP = "uirbench"
_plugins_loaded = False


@dataclass(frozen=True)
class DegradationSpec:
    """A degradation variant: its family label (``noise``, ``blur``, ...) and, for a family alias, the
    variant it stands for (``noise`` -> ``awgn``)."""

    family: str
    alias_of: str | None = None


@dataclass(frozen=True)
class ModelSpec:
    """A restorer.

    ``kind``: ``baseline`` or ``reference`` (ours); ``paper``: what it reproduces; ``config``: the frozen
    config dataclass a checkpoint stores (None: nothing to configure); ``presets``: preset name -> config
    (the architecture half of a preset) and ``recipes``: preset name -> ``uirbench.recipes.Recipe`` (its
    optimisation half; read by the baselines' trainer);
    ``trainer``: ``"module:function"`` taking a :class:`uirbench.train.TrainConfig` (None: not trainable);
    ``options``: frozen dataclass of inference options (``--model-arg``; None: none);
    ``default_checkpoint``: callable returning the shipped checkpoint folder (None: none shipped).
    """

    kind: str
    paper: str
    config: type | None = None
    presets: Mapping[str, Any] = field(default_factory=dict, hash=False)
    recipes: Mapping[str, Any] = field(default_factory=dict, hash=False)
    trainer: str | None = None
    options: type | None = None
    default_checkpoint: Callable[[], Path] | None = None

    @property
    def trainable(self) -> bool:
        return self.trainer is not None


@dataclass(frozen=True)
class MetricSpec:
    """A metric: direction, whether it needs a reference image or pretrained weights, and whether it
    scores images one by one (``per_image``) or whole sets (FID, KID). Its conventions are the fields of
    its dataclass (``color_space``, ``crop_border``, ``weights_dir``, ...)."""

    higher_is_better: bool
    needs_reference: bool
    needs_weights: bool
    per_image: bool


S = TypeVar("S")


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


class Registry(Generic[S]):
    """Name -> (object, spec), with close-match hints and duplicate detection."""

    def __init__(self, kind: str, spec_type: type[S], builtins: tuple[str, ...]) -> None:
        self.kind, self.spec_type, self.builtins = kind, spec_type, builtins
        self._items: dict[str, Any] = {}
        self._specs: dict[str, S] = {}
        self._builtins_loaded = False

    def register(self, name: str, **spec: Any) -> Callable[[Any], Any]:
        """Decorator: ``@REG.register("name", **spec fields)`` stores the object under ``name`` and sets its ``name``."""

        def decorator(obj: Any) -> Any:
            self.add(name, obj, **spec)
            if isinstance(obj, type):
                obj.name = name
            return obj

        return decorator

    def add(self, name: str, obj: Any, **spec: Any) -> None:
        """Register ``obj`` under ``name`` without touching it (aliases, test objects)."""
        if not isinstance(name, str) or not name or name != name.strip():
            raise ValueError(f"{self.kind} name must be a non-empty string without surrounding spaces, got {name!r}")
        if name in self._items:
            raise ValueError(f"duplicate {self.kind} name {name!r}: already registered by {self._items[name]!r}")
        try:
            record = self.spec_type(**spec)
        except TypeError as exc:
            valid = ", ".join(f.name for f in dataclasses.fields(self.spec_type))  # type: ignore[arg-type]
            raise TypeError(f"registering {self.kind} {name!r}: {exc}; {self.spec_type.__name__} fields: {valid}") from None
        self._items[name] = obj
        self._specs[name] = record

    def remove(self, name: str) -> None:
        """Unregister ``name`` (tests and plugins that register temporarily)."""
        self._items.pop(name, None)
        self._specs.pop(name, None)

    def load_builtins(self) -> None:
        if self._builtins_loaded:
            return
        self._builtins_loaded = True  # set first: the modules register into this registry while they import
        for module in self.builtins:
            importlib.import_module(module)

    def _load(self) -> None:
        self.load_builtins()
        load_plugins()

    def get(self, name: str) -> Any:
        """The registered object (class) named ``name``; UnknownNameError lists the valid names."""
        self._load()
        try:
            return self._items[name]
        except KeyError:
            raise UnknownNameError(self.unknown_message(name)) from None

    def spec(self, name: str) -> S:
        """The spec registered with ``name``."""
        self.get(name)
        return self._specs[name]

    def unknown_message(self, name: str) -> str:
        close = difflib.get_close_matches(name, self._items, n=3, cutoff=0.5)
        hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        return f"unknown {self.kind} {name!r}.{hint} Valid {self.kind}s: {', '.join(sorted(self.names()))}"

    def names(self) -> list[str]:
        self._load()
        return list(self._items)

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())


DEGRADATIONS: Registry[DegradationSpec] = Registry("degradation", DegradationSpec, ("uirbench.degradations",))
MODELS: Registry[ModelSpec] = Registry("model", ModelSpec, ("uirbench.baselines", "uirbench.uir_lora"))
METRICS: Registry[MetricSpec] = Registry("metric", MetricSpec, ("uirbench.metrics",))
