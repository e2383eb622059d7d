"""One small registry per pluggable kind: datasets, encoders, fusions, heads, models and metrics.

A decorator registers a name; a duplicate name is an error; an unknown name lists the known ones.
A registered part's config keys are its constructor's keyword arguments (``schema.signature_schema``),
except the ones its kind takes from the data (``data_args``); an entry may instead register an
explicit ``params`` class (datasets do).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from .errors import ConfigError, closest
from .schema import Resolved, signature_schema, validate_params

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to builders (classes or functions) with a short description each.

    Args:
        kind: what the entries are ("fusion"), for messages.
        data_args: constructor arguments that come from the data or from the other parts, never from
            a config (an encoder's ``input_dim``).
    """

    def __init__(self, kind: str, data_args: Iterable[str] = ()) -> None:
        self.kind = kind
        self.data_args = tuple(data_args)
        self._items: dict[str, T] = {}
        self._info: dict[str, dict[str, Any]] = {}
        self._schemas: dict[str, type[BaseModel]] = {}

    def register(self, name: str, **info: Any) -> Callable[[T], T]:
        """Decorator: ``@FUSIONS.register("concat", description=..., citation=...)``."""

        def add(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} '{name}' is registered twice")
            self._items[name] = obj
            self._info[name] = info
            return obj

        return add

    def get(self, name: str) -> T:
        # a name from a config may be any YAML value (null, a list): not a known name, never a crash
        if not isinstance(name, str) or name not in self._items:
            known = ", ".join(sorted(self._items))
            raise ConfigError(
                f"unknown {self.kind} '{name}'{closest(name, self._items)}; known: {known}"
            )
        return self._items[name]

    def info(self, name: str) -> dict[str, Any]:
        self.get(name)
        return dict(self._info[name])

    def schema(self, name: str) -> type[BaseModel]:
        """The entry's config keys: its ``params`` class, or its constructor's signature."""
        if name not in self._schemas:
            obj = self.get(name)
            explicit = self._info[name].get("params")
            self._schemas[name] = explicit or signature_schema(obj, self.data_args, f"{self.kind}:{name}")  # type: ignore[arg-type]
        return self._schemas[name]

    def resolve(self, spec: Any, path: str) -> dict[str, Any]:
        """A ``{name: ..., **keys}`` spec checked against the named entry; returns it with defaults.

        Raises:
            ConfigError: unknown name or key, or a bad value, naming the full key path.
        """
        if isinstance(spec, str):
            spec = {"name": spec}
        if not isinstance(spec, dict) or "name" not in spec:
            raise ConfigError(f"config key '{path}' needs a 'name' (one of: {', '.join(self.names())})")
        name = spec["name"]
        if name not in self._items:
            raise ConfigError(f"config key '{path}.name': unknown {self.kind} '{name}'{closest(str(name), self._items)}; "
                              f"known: {', '.join(self.names())}")
        params = validate_params(self.schema(name), {k: v for k, v in spec.items() if k != "name"}, path)
        resolved = Resolved(name=name, **params.model_dump(mode="json"))
        resolved.params = params  # the typed, validated object behind the keys
        return resolved

    def build(self, spec: dict[str, Any], path: str, **data: Any) -> Any:
        """Construct a spec with the data's arguments (validated here unless it is ``Resolved``
        already); a constructor's ``ValueError`` (a combination that cannot work) becomes a
        ``ConfigError`` naming ``path``."""
        spec = dict(spec) if isinstance(spec, Resolved) else self.resolve(spec, path)
        ctor = self.get(spec.pop("name"))
        try:
            return ctor(**data, **spec)
        except ConfigError:
            raise
        except ValueError as e:
            raise ConfigError(f"config key '{path}': {e}") from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __len__(self) -> int:
        return len(self._items)


DATASETS: Registry[Callable[..., Any]] = Registry("dataset")
# encoder(input_dim, seq_len, **keys) -> module with output_dim, returns_sequence
ENCODERS: Registry[Callable[..., Any]] = Registry("encoder", data_args=("input_dim", "seq_len"))
# fusion(input_dims, sequence, **keys) -> module with output_dim, parts; forward -> FusionOutput
FUSIONS: Registry[Callable[..., Any]] = Registry("fusion", data_args=("input_dims", "sequence"))
# head(input_dim, num_outputs, task, parts, **keys) -> module; forward -> {"logits", ["aux_logits"]}
HEADS: Registry[Callable[..., Any]] = Registry("head", data_args=("input_dim", "num_outputs", "task", "parts"))
# model(specs, task, **keys) -> module; forward(features, masks) -> {"logits", ...}
MODELS: Registry[Callable[..., Any]] = Registry("model", data_args=("specs", "task"))
METRICS: Registry[Callable[..., Any]] = Registry("metric")
