"""One schema per component: a registered part's keys, types and defaults are its constructor's signature.

``signature_schema(fn, data_args)`` turns ``def __init__(self, input_dim, hidden_dims: Dims = (64,),
dropout: Prob = 0.1)`` into a pydantic model with the keys ``hidden_dims`` and ``dropout`` (the
``data_args``, such as ``input_dim``, come from the data, not from the config). Constraints ride on the
annotations (``Prob``, ``PosInt`` ...), so nothing mirrors the signature. ``validate_params(schema, body, path)``
checks a config mapping against it and names the full key path in every error
(``model.encoders.text.hidden_dims``).
"""

from __future__ import annotations

import importlib
import inspect
import reprlib
import typing
from collections.abc import Callable, Iterable
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model
from pydantic_core import core_schema

from .errors import ConfigError, closest

# Annotations that carry their own constraints: a signature written with them is its own schema.
Prob = Annotated[float, Field(ge=0, lt=1)]  # a dropout-like probability in [0, 1)
PosInt = Annotated[int, Field(ge=1)]
NonNegInt = Annotated[int, Field(ge=0)]
NonNegFloat = Annotated[float, Field(ge=0)]
Dims = tuple[PosInt, ...]  # layer widths; a YAML list


def signature_schema(fn: Callable[..., Any], data_args: Iterable[str], name: str) -> type[BaseModel]:
    """A pydantic model of ``fn``'s keyword arguments other than ``data_args`` (for a class: ``__init__``)."""
    target = fn.__init__ if inspect.isclass(fn) else fn
    hints = typing.get_type_hints(target, include_extras=True)
    skip = set(data_args) | {"self"}
    fields: dict[str, Any] = {}
    for pname, param in inspect.signature(target).parameters.items():
        if pname in skip or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        default = ... if param.default is param.empty else param.default
        fields[pname] = (hints.get(pname, Any), default)
    model = create_model(name, __config__=ConfigDict(extra="forbid", protected_namespaces=(), frozen=True), **fields)
    # A class built at run time has no importable name; this one names it so that pickle finds it
    # again in a worker process (modalfuse.part_schemas rebuilds it from the registry there).
    model.__module__, model.__qualname__ = "modalfuse.part_schemas", name
    return model


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxdict, _REPR.maxlist, _REPR.maxstring, _REPR.maxother = 3, 4, 4, 50, 50


def describe(value: Any, limit: int = 60) -> str:
    """A short ``repr`` for an error message (reprlib bounds the work as well as the text: a full
    repr of a YAML tree with aliases is exponential)."""
    text = _REPR.repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def fields_at(schema: type[BaseModel], loc: list[str]) -> list[str]:
    """The valid keys of the mapping at ``loc`` inside ``schema`` (walking nested models; list
    indices and dict keys on the way are skipped)."""
    fields, current = list(schema.model_fields), schema
    for part in loc[:-1]:
        info = getattr(current, "model_fields", {}).get(part)
        if info is None:
            continue
        ann = info.annotation
        for arg in (ann, *getattr(ann, "__args__", ())):
            inner = [a for a in (arg, *getattr(arg, "__args__", ())) if isinstance(a, type) and issubclass(a, BaseModel)]
            if inner:
                current = inner[0]
                fields = list(current.model_fields)
                break
    return fields


def config_error(exc: ValidationError, schema: type[BaseModel], path: str = "", *, where: str = "",
                 noun: str = "config key", extra_keys: Iterable[str] = ()) -> ConfigError:
    """The one-line error for pydantic's first error: the full key path, what was expected and what
    was found. The one formatter of every validated file: configs, parts, claims.

    Args:
        path: the key path ``schema`` sits at (``model.fusion``); "" for a whole file.
        where: a prefix naming the file (``claims.yaml: ``).
        noun: what a key is called in the message.
        extra_keys: valid top-level keys the schema does not hold (a part's ``name``).
    """
    err = exc.errors()[0]
    loc = [str(p) for p in err["loc"]]
    key = ".".join([path, *loc]) if path else ".".join(loc)
    if err["type"] == "extra_forbidden":
        valid = sorted({*fields_at(schema, loc), *(extra_keys if len(loc) == 1 else ())})
        return ConfigError(f"{where}unknown {noun} '{key}'{closest(loc[-1], valid)}; valid keys: "
                           f"{', '.join(valid) or '(none)'}")
    if err["type"] == "missing":
        return ConfigError(f"{where}{noun} '{key}' is required")
    msg = err["msg"].removeprefix("Value error, ")
    found = "" if err["type"] == "value_error" else f", found {describe(err.get('input'))}"
    subject = f"{noun} '{key}': " if key else ""  # a whole-file check names no key
    return ConfigError(f"{where}{subject}{msg[:1].lower() + msg[1:]}{found}")


class Resolved(dict):
    """A config section or part that was validated (every default filled in): builders use it as it
    is and never validate it again. Its items are the plain JSON values a config file holds;
    ``params`` is the typed object they were validated into (the part's registered schema:
    ``Registry.schema``), for a dataset section and for every encoder, fusion and head."""

    params: BaseModel | None = None

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: Any) -> Any:
        # A field typed ``Resolved`` (``Config.data``/``.model``) accepts only a section validated
        # already, as it is (no second validation), and writes it as the mapping it is.
        def require(value: Any) -> Resolved:
            if not isinstance(value, Resolved):
                raise ValueError("expected a validated section (config.build_config makes one)")
            return value

        return core_schema.no_info_plain_validator_function(
            require, serialization=core_schema.plain_serializer_function_ser_schema(dict))

    def __reduce__(self) -> tuple[Any, ...]:
        # A Resolved sent to a worker process (compare --jobs) keeps its keys and its typed params:
        # a part's schema, built from its constructor at run time, is found again by the name
        # ``modalfuse.part_schemas`` gives it. A params class pickle cannot name (a plugin's own
        # unimportable class) is left behind: the keys alone build the part, validated already.
        cls = type(self.params)
        keep = False
        if self.params is not None:
            try:
                module = importlib.import_module(cls.__module__)
                keep = getattr(module, cls.__qualname__, None) is cls
            except (ImportError, AttributeError, ConfigError):
                keep = False
        return Resolved, (dict(self),), {"params": self.params} if keep else None


# YAML writes a Resolved section as the mapping it is (yaml.safe_dump knows only exact dicts).
yaml.SafeDumper.add_representer(Resolved, yaml.representer.SafeRepresenter.represent_dict)


def validate_params(schema: type[BaseModel], body: Any, path: str, extra_keys: Iterable[str] = ()) -> BaseModel:
    """``body`` checked against ``schema``: the typed params object.
    ``extra_keys``: valid keys outside the schema, for the message (a part's ``name``).

    Raises:
        ConfigError: naming the full key path, what was expected and what was found.
    """
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise ConfigError(f"config key '{path}': expected a mapping, found {describe(body)}")
    try:
        return schema.model_validate(body)
    except ValidationError as e:
        raise config_error(e, schema, path, extra_keys=extra_keys) from None
