"""`dataclass`, without compiling code at import time.

The standard decorator writes `__init__`, `__repr__`, `__eq__` (and, when frozen, `__setattr__`,
`__delattr__` and `__hash__`) as source text and compiles each one: about 0.4 ms per class, and a
check imports some sixty classes before doing anything (a quarter of its start-up). This decorator
lets `dataclasses` do everything else (fields, defaults, `__dataclass_fields__`, slots), so
`dataclasses.fields`, `replace`, `asdict` and `is_dataclass` work as before, and installs methods
shared by every class instead: the same behaviour (arguments, defaults, factories, `__post_init__`,
frozen instances, equality, hashing, repr), at the price of a slightly slower `__init__`. Classes
created by the hundred thousand (parse facts, spans) keep the standard decorator.

Not supported (the standard decorator is used for these): `order`, `kw_only`, `InitVar`,
`unsafe_hash`, `init=False` fields.
"""

from __future__ import annotations

import dataclasses
from reprlib import recursive_repr
from typing import Any

_MISSING = dataclasses.MISSING
_FrozenError = dataclasses.FrozenInstanceError


def dataclass(
    cls: type | None = None,
    /,
    *,
    frozen: bool = False,
    slots: bool = False,
    eq: bool = True,
) -> Any:
    """Drop-in for `dataclasses.dataclass` with the options this package uses."""

    def wrap(klass: type) -> type:
        return _make(klass, frozen=frozen, slots=slots, eq=eq)

    return wrap if cls is None else wrap(cls)


def _make(cls: type, *, frozen: bool, slots: bool, eq: bool) -> type:
    own = cls.__dict__
    cls = dataclasses.dataclass(cls, init=False, repr=False, eq=False, slots=slots)
    fields = tuple(f for f in dataclasses.fields(cls))
    for f in fields:
        if not f.init or f.kw_only:
            raise TypeError(
                f"{cls.__qualname__}.{f.name}: use dataclasses.dataclass for this field"
            )
    names = tuple(f.name for f in fields)
    compared = tuple(f.name for f in fields if f.compare)
    shown = tuple(f.name for f in fields if f.repr)
    hashed = tuple(f.name for f in fields if (f.compare if f.hash is None else f.hash))
    if "__init__" not in own:
        cls.__init__ = _init(cls, fields, frozen)  # type: ignore[misc]
    if "__repr__" not in own:
        cls.__repr__ = _repr(shown)  # type: ignore[method-assign]
    if eq and "__eq__" not in own:
        cls.__eq__ = _eq(compared)  # type: ignore[method-assign]
    if frozen:
        cls.__setattr__, cls.__delattr__ = _frozen(cls, names)  # type: ignore[method-assign]
        if slots:  # pickling sets slot values through setattr, which a frozen class refuses
            cls.__getstate__, cls.__setstate__ = _slots_state(names)  # type: ignore[attr-defined]
    if eq and "__hash__" not in own:
        # as the standard decorator: eq + frozen hashes the compared fields; eq alone is unhashable
        cls.__hash__ = _hash(hashed) if frozen else None  # type: ignore[assignment,method-assign]
    return cls


def _init(cls: type, fields: tuple[dataclasses.Field[Any], ...], frozen: bool) -> Any:
    names = tuple(f.name for f in fields)
    defaults = tuple(f.default for f in fields)
    factories = tuple(f.default_factory for f in fields)
    count = len(names)
    post_init = hasattr(cls, "__post_init__")
    qualname = cls.__qualname__
    setter = object.__setattr__ if frozen else None

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        if len(args) > count:
            raise TypeError(
                f"{qualname}.__init__() takes {count + 1} positional arguments but "
                f"{len(args) + 1} were given"
            )
        set_ = setter if setter is not None else type(self).__setattr__
        for i in range(count):
            name = names[i]
            if i < len(args):
                if name in kwargs:
                    raise TypeError(
                        f"{qualname}.__init__() got multiple values for argument {name!r}"
                    )
                value = args[i]
            elif name in kwargs:
                value = kwargs[name]
            elif defaults[i] is not _MISSING:
                value = defaults[i]
            elif factories[i] is not _MISSING:
                value = factories[i]()  # type: ignore[misc]
            else:
                raise TypeError(f"{qualname}.__init__() missing required argument: {name!r}")
            set_(self, name, value)
        if kwargs:
            unknown = [k for k in kwargs if k not in names]
            if unknown:
                raise TypeError(
                    f"{qualname}.__init__() got an unexpected keyword argument {unknown[0]!r}"
                )
        if post_init:
            self.__post_init__()

    __init__.__qualname__ = f"{qualname}.__init__"
    return __init__


def _repr(shown: tuple[str, ...]) -> Any:
    @recursive_repr()
    def __repr__(self: Any) -> str:
        inner = ", ".join(f"{name}={getattr(self, name)!r}" for name in shown)
        return f"{type(self).__qualname__}({inner})"

    return __repr__


def _eq(compared: tuple[str, ...]) -> Any:
    def __eq__(self: Any, other: object) -> Any:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return tuple(getattr(self, n) for n in compared) == tuple(
            getattr(other, n) for n in compared
        )

    return __eq__


def _hash(hashed: tuple[str, ...]) -> Any:
    def __hash__(self: Any) -> int:
        return hash(tuple(getattr(self, n) for n in hashed))

    return __hash__


def _frozen(cls: type, names: tuple[str, ...]) -> tuple[Any, Any]:
    """`__setattr__` and `__delattr__` of a frozen class (a subclass may set attributes that are
    not fields, as with the standard decorator)."""
    fields = frozenset(names)

    def __setattr__(self: Any, name: str, value: Any) -> None:
        if type(self) is cls or name in fields:
            raise _FrozenError(f"cannot assign to field {name!r}")
        super(cls, self).__setattr__(name, value)

    def __delattr__(self: Any, name: str) -> None:
        if type(self) is cls or name in fields:
            raise _FrozenError(f"cannot delete field {name!r}")
        super(cls, self).__delattr__(name)

    return __setattr__, __delattr__


def _slots_state(names: tuple[str, ...]) -> tuple[Any, Any]:
    setter = object.__setattr__

    def __getstate__(self: Any) -> list[Any]:
        return [getattr(self, name) for name in names]

    def __setstate__(self: Any, state: list[Any]) -> None:
        for name, value in zip(names, state, strict=False):
            setter(self, name, value)

    return __getstate__, __setstate__
