"""One small registry per pluggable kind: datasets, encoders, fusions, models and metrics.

A decorator registers a name; a duplicate name is an error; an unknown name lists the known ones.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

from .errors import ConfigError, closest

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to builders (classes or functions) with a short description each."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}
        self._info: dict[str, dict[str, Any]] = {}

    def register(self, name: str, **info: Any) -> Callable[[T], T]:
        """Decorator: ``@MODELS.register("attend-fusion", task="yt8m")``."""

        def add(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} '{name}' is registered twice")
            self._items[name] = obj
            self._info[name] = info
            return obj

        return add

    def get(self, name: str) -> T:
        if name not in self._items:
            known = ", ".join(sorted(self._items))
            raise ConfigError(
                f"unknown {self.kind} '{name}'{closest(name, self._items)}; known: {known}"
            )
        return self._items[name]

    def info(self, name: str) -> dict[str, Any]:
        self.get(name)
        return dict(self._info[name])

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __len__(self) -> int:
        return len(self._items)


DATASETS: Registry[Callable[..., Any]] = Registry("dataset")
ENCODERS: Registry[Callable[..., Any]] = Registry("encoder")
FUSIONS: Registry[Callable[..., Any]] = Registry("fusion")
MODELS: Registry[Callable[..., Any]] = Registry("model")
METRICS: Registry[Callable[..., Any]] = Registry("metric")
