"""`auditor.core.record.dataclass` behaves as `dataclasses.dataclass` for every option it accepts."""

from __future__ import annotations

import copy
import dataclasses
import pickle
from dataclasses import field

import pytest

from auditor.core import record

OPTIONS = [
    {},
    {"frozen": True},
    {"slots": True},
    {"frozen": True, "slots": True},
    {"frozen": True, "eq": False},
    {"eq": False},
]
CALLS = [((1,), {}), ((1, "y"), {}), ((), {"a": 2, "c": [1]}), ((1, "z", [3], 4), {})]


def pair(options: dict[str, bool]) -> tuple[type, type]:
    """The same class made by both decorators, both picklable (module-level names)."""
    made = []
    for name, deco in (("Standard", dataclasses.dataclass), ("Shared", record.dataclass)):

        @deco(**options)
        class Thing:
            """A class of every kind of field."""

            a: int
            b: str = "x"
            c: list[int] = field(default_factory=list)
            d: object = field(default=None, repr=False, compare=False)

        Thing.__qualname__ = Thing.__name__ = f"{name}{len(made)}"
        globals()[Thing.__qualname__] = Thing
        made.append(Thing)
    return made[0], made[1]


def hashable(obj: object) -> bool:
    try:
        hash(obj)
    except TypeError:
        return False
    return True


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: ",".join(o) or "plain")
def test_same_behaviour_as_the_standard_decorator(options: dict[str, bool]) -> None:
    standard, shared = pair(options)
    assert shared.__match_args__ == standard.__match_args__
    assert dataclasses.is_dataclass(shared)
    for args, kwargs in CALLS:
        s, r = standard(*args, **kwargs), shared(*args, **kwargs)
        assert repr(r).removeprefix(shared.__qualname__) == repr(s).removeprefix(
            standard.__qualname__
        )
        assert dataclasses.asdict(r) == dataclasses.asdict(s)
        assert [f.name for f in dataclasses.fields(r)] == [f.name for f in dataclasses.fields(s)]
        twin_s, twin_r = standard(*args, **kwargs), shared(*args, **kwargs)
        assert (r == twin_r) == (s == twin_s)
        assert (r == object()) is False
        assert hashable(r) == hashable(s)
        if hashable(r) and options.get("eq", True):
            assert hash(r) == hash(twin_r)
        for obj in (s, r):
            if options.get("frozen"):
                with pytest.raises(dataclasses.FrozenInstanceError):
                    obj.a = 5  # type: ignore[misc]
                with pytest.raises(dataclasses.FrozenInstanceError):
                    del obj.a  # type: ignore[misc]
            else:
                obj.a = 5  # type: ignore[misc]
                assert obj.a == 5
        back = pickle.loads(pickle.dumps(r, protocol=5))
        assert repr(back) == repr(r)
        assert repr(copy.deepcopy(r)) == repr(r)
        changed = dataclasses.replace(r, b="q")
        assert (changed.a, changed.b) == (r.a, "q")


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: ",".join(o) or "plain")
def test_same_errors_for_bad_arguments(options: dict[str, bool]) -> None:
    for cls in pair(options):
        with pytest.raises(TypeError):
            cls()
        with pytest.raises(TypeError):
            cls(1, "b", [], None, "too many")
        with pytest.raises(TypeError):
            cls(1, a=2)
        with pytest.raises(TypeError):
            cls(1, unknown=3)


def test_defaults_are_not_shared_and_post_init_runs() -> None:
    seen = []

    @record.dataclass
    class WithHook:
        """Calls `__post_init__` once its fields are set."""

        items: list[int] = field(default_factory=list)

        def __post_init__(self) -> None:
            seen.append(len(self.items))

    first, second = WithHook(), WithHook([1, 2])
    first.items.append(1)
    assert WithHook().items == [] and second.items == [1, 2]
    assert seen == [0, 2, 0]


def test_fields_it_cannot_make_are_refused() -> None:
    with pytest.raises(TypeError):

        @record.dataclass
        class NotInit:
            """A field outside __init__."""

            a: int = field(default=0, init=False)
