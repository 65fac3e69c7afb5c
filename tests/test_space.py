"""Search-space distributions: validation, the unit cube, internal values and JSON."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from dltune.space import BaseDistribution
from dltune.space import CategoricalDistribution
from dltune.space import FloatDistribution
from dltune.space import IntDistribution
from dltune.space import check_compatible
from dltune.space import distribution_from_json
from dltune.space import distribution_to_json

SETTINGS = settings(max_examples=200, deadline=None, derandomize=True)

# -- strategies ------------------------------------------------------------------------------

BOUND = 1e3  # keeps ``low + n * step`` exact enough for the grid checks below
_bounds = st.floats(min_value=-BOUND, max_value=BOUND, allow_nan=False)
_steps = st.sampled_from([1e-2, 0.1, 0.25, 0.5, 1.0, 3.0]) | st.floats(
    min_value=1e-2, max_value=50
)


@st.composite
def float_distributions(draw: st.DrawFn) -> FloatDistribution:
    kind = draw(st.sampled_from(["plain", "log", "step"]))
    if kind == "log":
        low = draw(st.floats(min_value=1e-8, max_value=BOUND))
        return FloatDistribution(low, draw(st.floats(min_value=low, max_value=BOUND)), log=True)
    low = draw(_bounds)
    if kind == "step":
        step = draw(_steps)
        return FloatDistribution(low, low + draw(st.integers(0, 500)) * step, step=step)
    return FloatDistribution(low, draw(st.floats(min_value=low, max_value=2 * BOUND)))


@st.composite
def int_distributions(draw: st.DrawFn) -> IntDistribution:
    if draw(st.booleans()):
        low = draw(st.integers(1, 10**6))
        return IntDistribution(low, draw(st.integers(low, 2 * 10**6)), log=True)
    low = draw(st.integers(-(10**6), 10**6))
    step = draw(st.integers(1, 100))
    return IntDistribution(low, low + draw(st.integers(0, 1000)) * step, step=step)


def _choice_key(value: Any) -> tuple[str, Any]:
    group = type(value).__name__ if isinstance(value, bool | type(None) | str) else "num"
    return group, value


_choices = (
    st.none()
    | st.booleans()
    | st.integers(-(2**62), 2**62)
    | st.floats(allow_nan=False)
    | st.text(max_size=12)
)
categorical_distributions = st.lists(_choices, min_size=1, max_size=12, unique_by=_choice_key).map(
    lambda c: CategoricalDistribution(tuple(c))
)
distributions = float_distributions() | int_distributions() | categorical_distributions


@st.composite
def with_internal(draw: st.DrawFn) -> tuple[BaseDistribution, float]:
    """A distribution and one of its internal values."""
    dist = draw(distributions)
    if isinstance(dist, CategoricalDistribution):
        return dist, float(draw(st.integers(0, len(dist.choices) - 1)))
    if isinstance(dist, IntDistribution):
        k = draw(st.integers(0, (dist.high - dist.low) // dist.step))
        return dist, float(dist.low + k * dist.step)
    if dist.step is not None:
        k = draw(st.integers(0, round((dist.high - dist.low) / dist.step)))
        return dist, min(dist.low + k * dist.step, dist.high)
    return dist, draw(st.floats(min_value=dist.low, max_value=dist.high))


def _is_discrete(dist: BaseDistribution) -> bool:
    return not isinstance(dist, FloatDistribution) or dist.step is not None


def _same(a: Any, b: Any) -> bool:
    """Equal and of the same type (``True`` is not ``1``, ``1.0`` is not ``1``)."""
    return type(a) is type(b) and (a == b or (a != a and b != b))


# -- the unit cube ---------------------------------------------------------------------------


@SETTINGS
@given(with_internal())
def test_from_unit_inverts_to_unit(case: tuple[BaseDistribution, float]) -> None:
    dist, x = case
    assert dist.contains(x)
    unit = dist.to_unit(x)
    assert 0.0 <= unit <= 1.0
    back = dist.from_unit(unit)
    assert dist.contains(back)
    if _is_discrete(dist):
        assert back == x
    else:  # a continuous round trip is exact up to rounding
        assert math.isclose(back, x, rel_tol=1e-9, abs_tol=1e-12 * (abs(x) + 1.0))


@SETTINGS
@given(distributions, st.floats(min_value=0.0, max_value=1.0))
def test_from_unit_is_always_contained(dist: BaseDistribution, unit: float) -> None:
    x = dist.from_unit(unit)
    assert dist.contains(x)
    assert dist.contains(dist.to_internal(dist.to_external(x)))


@SETTINGS
@given(distributions, st.floats(min_value=-10.0, max_value=10.0))
def test_from_unit_clamps_points_outside_the_cube(dist: BaseDistribution, unit: float) -> None:
    assert dist.contains(dist.from_unit(unit))


@SETTINGS
@given(with_internal())
def test_to_external_inverts_to_internal(case: tuple[BaseDistribution, float]) -> None:
    dist, x = case
    value = dist.to_external(x)
    assert dist.to_internal(value) == x
    assert _same(dist.to_external(dist.to_internal(value)), value)
    if isinstance(dist, CategoricalDistribution):
        assert _same(value, dist.choices[int(x)])


@SETTINGS
@given(distributions)
def test_json_round_trip(dist: BaseDistribution) -> None:
    text = distribution_to_json(dist)
    back = distribution_from_json(text)
    assert back == dist
    assert type(back) is type(dist)
    assert distribution_to_json(back) == text
    if isinstance(dist, CategoricalDistribution):
        assert isinstance(back, CategoricalDistribution)
        assert all(_same(a, b) for a, b in zip(back.choices, dist.choices, strict=True))


@pytest.mark.parametrize(
    "dist",
    [
        IntDistribution(0, 9),
        IntDistribution(-6, 6, step=3),
        FloatDistribution(0.0, 1.0, step=0.125),
        FloatDistribution(0.0, 1.0, step=0.1),
        CategoricalDistribution(("a", "b", "c", None, True, 1)),
    ],
    ids=repr,
)
def test_unit_interval_splits_evenly(dist: BaseDistribution) -> None:
    n_points = 6000
    counts: dict[float, int] = {}
    for i in range(n_points):
        x = dist.from_unit((i + 0.5) / n_points)
        counts[x] = counts.get(x, 0) + 1
    assert max(counts.values()) - min(counts.values()) <= 2
    expected = len(dist.choices) if isinstance(dist, CategoricalDistribution) else None
    assert len(counts) == (expected or len(counts))


@pytest.mark.parametrize(
    ("dist", "value"),
    [
        (FloatDistribution(2.0, 2.0), 2.0),
        (IntDistribution(-3, -3), -3),
        (CategoricalDistribution((None,)), None),
        (FloatDistribution(0.5, 0.5, step=0.25), 0.5),
    ],
    ids=repr,
)
def test_single_value_distributions(dist: BaseDistribution, value: Any) -> None:
    assert dist.is_single()
    for unit in (0.0, 0.3, 1.0):
        assert _same(dist.to_external(dist.from_unit(unit)), value)


def test_conversions() -> None:
    assert FloatDistribution(0, 1) == FloatDistribution(0.0, 1.0)
    assert type(FloatDistribution(0, 1).low) is float
    int_dist = IntDistribution(1.0, 4.0)  # type: ignore[arg-type]
    assert (type(int_dist.low), type(int_dist.high)) == (int, int)
    assert FloatDistribution(0.0, 1.0, step=0.1).contains(0.30000000000000004)
    assert not FloatDistribution(0.0, 1.0, step=0.1).contains(0.35)
    assert not IntDistribution(0, 10, step=2).contains(3.0)
    assert not IntDistribution(0, 10).contains(2.5)
    assert not CategoricalDistribution(("a", "b")).contains(2.0)
    assert not FloatDistribution(0.0, 1.0).contains(math.nan)


def test_float_step_range_of_large_values() -> None:
    # high is low + step as floats compute it; the error must not refuse its own suggestion.
    dist = FloatDistribution(1e6, 1e6 + 1e-3, step=1e-3)
    assert dist.contains(dist.high)


# -- validation ------------------------------------------------------------------------------

# Untyped aliases: the calls below pass wrong types on purpose.
Float: Any = FloatDistribution
Int: Any = IntDistribution
Categorical: Any = CategoricalDistribution


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (lambda: Float(2, 1), ValueError, r"low=2\.0 must be <= high=1\.0; swap them"),
        (lambda: Int(2, 1), ValueError, r"low=2 must be <= high=1; swap them"),
        (
            lambda: Float(0, 1, log=True),
            ValueError,
            r"log=True needs low > 0, got low=0\.0",
        ),
        (
            lambda: Float(-1, 1, log=True),
            ValueError,
            r"log=True needs low > 0, got low=-1\.0",
        ),
        (
            lambda: Int(0, 8, log=True),
            ValueError,
            r"log=True needs low >= 1, got low=0",
        ),
        (
            lambda: Float(0, 1, step=0.3),
            ValueError,
            r"step=0\.3 does not divide the range high - low = 1\.0; choose a step that divides "
            r"it or set high to 0\.8999",
        ),
        (
            lambda: Int(0, 10, step=3),
            ValueError,
            r"step=3 does not divide the range high - low = 10; .* set high to 9",
        ),
        (lambda: Float(0, 1, step=0), ValueError, r"step=0\.0 must be > 0"),
        (lambda: Float(0, 1, step=-0.5), ValueError, r"step=-0\.5 must be > 0"),
        (lambda: Int(0, 1, step=0), ValueError, r"step=0 must be an integer >= 1"),
        (lambda: Int(0, 4, step=2.5), TypeError, r"step=2\.5 must be an integer"),
        (
            lambda: Float(0.1, 1, log=True, step=0.1),
            ValueError,
            r"log=True cannot be combined with step=0\.1",
        ),
        (
            lambda: Int(1, 9, log=True, step=2),
            ValueError,
            r"log=True cannot be combined with step=2; use step=1",
        ),
        (lambda: Float(0, math.inf), ValueError, r"high=inf must be a finite number"),
        (lambda: Float(-math.inf, 0), ValueError, r"low=-inf must be a finite number"),
        (lambda: Float(math.nan, 1), ValueError, r"low=nan must be a finite number"),
        (lambda: Float(0, 1, step=math.inf), ValueError, r"step=inf must be a finite"),
        (lambda: Float(0, 1, step=math.nan), ValueError, r"step=nan must be a finite"),
        (lambda: Int(0, math.inf), TypeError, r"high=inf must be an integer"),
        (lambda: Int(0.5, 3), TypeError, r"low=0\.5 must be an integer"),
        (lambda: Int(True, 3), TypeError, r"low=True must be an integer"),
        (lambda: Float("0", 1), TypeError, r"low='0' must be a number"),
        (lambda: Float(0, None), TypeError, r"high=None must be a number"),
        (lambda: Float(False, 1), TypeError, r"low=False must be a number"),
        (
            lambda: Int(0, 2**60),
            ValueError,
            r"high=1152921504606846976",  # past 2**53 an int is not exact as an internal float
        ),
        (lambda: Categorical(()), ValueError, r"choices=\(\) is empty"),
        (lambda: Categorical([]), ValueError, r"choices=\(\) is empty"),
        (lambda: Categorical("abc"), TypeError, r"choices='abc' must be a list or"),
        (lambda: Categorical(None), TypeError, r"choices=None must be a list or"),
        (
            lambda: Categorical(([1],)),
            TypeError,
            r"choice \[1\] of type list is not supported; choices must be None, bool, int, "
            r"float or str",
        ),
        (lambda: Categorical(({},)), TypeError, r"choice \{\} of type dict is not"),
        (lambda: Categorical((b"x",)), TypeError, r"choice b'x' of type bytes"),
        (
            lambda: Categorical((1, 1)),
            ValueError,
            r"choices=\(1, 1\) holds duplicates",
        ),
        (lambda: Categorical((1, 1.0)), ValueError, r"holds duplicates"),
        (lambda: Categorical(("a", "b", "a")), ValueError, r"holds duplicates"),
        (lambda: Categorical((math.nan,)), ValueError, r"choice nan is not supported"),
    ],
)
def test_invalid_distribution(make: Any, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        make()


def test_bool_and_int_choices_are_distinct() -> None:
    dist = CategoricalDistribution((True, 1, False, 0, None))
    assert [dist.index(v) for v in (True, 1, False, 0, None)] == [0, 1, 2, 3, 4]
    assert _same(dist.to_external(1.0), 1)
    assert CategoricalDistribution((True, 2)) != CategoricalDistribution((1, 2))


@pytest.mark.parametrize(
    ("dist", "value", "error", "match"),
    [
        (FloatDistribution(0, 1), 2, ValueError, r"value 2 is outside FloatDistribution\("),
        (FloatDistribution(0, 1), math.nan, ValueError, r"value nan is outside"),
        (FloatDistribution(0, 1), "0.5", ValueError, r"value '0\.5' is not a number"),
        (FloatDistribution(0, 1), True, ValueError, r"value True is not a number"),
        (FloatDistribution(0, 1, step=0.1), 0.35, ValueError, r"value 0\.35 is outside"),
        (IntDistribution(0, 10), 1.5, ValueError, r"value 1\.5 is not an integer"),
        (IntDistribution(0, 10), 11, ValueError, r"value 11 is outside IntDistribution\("),
        (IntDistribution(0, 10, step=5), 3, ValueError, r"value 3 is outside"),
        (IntDistribution(0, 10), None, ValueError, r"value None is not an integer"),
        (CategoricalDistribution(("a",)), "b", ValueError, r"value 'b' is not one of \('a',\)"),
        (CategoricalDistribution(("a",)), [1], ValueError, r"value \[1\] is not one of"),
        (CategoricalDistribution((1,)), True, ValueError, r"value True is not one of \(1,\)"),
    ],
)
def test_to_internal_refuses_values_outside(
    dist: BaseDistribution, value: Any, error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        dist.to_internal(value)


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "null",
        "[1, 2]",
        '{"kind": "weird", "low": 0}',
        '{"low": 0, "high": 1}',
        '{"kind": "float"}',
        '{"kind": "categorical"}',
        '{"kind": "int", "low": 0, "high": 1, "bogus": 1}',
    ],
)
def test_from_json_refuses_what_is_not_a_distribution(text: str) -> None:
    with pytest.raises(ValueError, match=r"not a serialized distribution"):
        distribution_from_json(text)


def test_from_json_validates() -> None:
    with pytest.raises(ValueError, match=r"low=2\.0 must be <= high=1\.0"):
        distribution_from_json('{"kind":"float","low":2,"high":1,"log":false,"step":null}')


def test_json_is_compact_and_stable() -> None:
    assert distribution_to_json(IntDistribution(1, 4)) == (
        '{"kind":"int","low":1,"high":4,"log":false,"step":1}'
    )
    assert distribution_to_json(CategoricalDistribution((None, True, 1, 1.5, "a"))) == (
        '{"kind":"categorical","choices":[null,true,1,1.5,"a"]}'
    )


# -- compatibility ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (FloatDistribution(0, 1), FloatDistribution(0, 1)),
        (FloatDistribution(0, 1), FloatDistribution(-5, 5)),
        (FloatDistribution(0, 1), FloatDistribution(0, 1, step=0.5)),
        (FloatDistribution(1e-3, 1, log=True), FloatDistribution(1e-5, 10, log=True)),
        (IntDistribution(0, 10), IntDistribution(0, 100, step=10)),
        (IntDistribution(1, 10, log=True), IntDistribution(2, 64, log=True)),
        (CategoricalDistribution(("a", "b")), CategoricalDistribution(("a", "b"))),
    ],
    ids=repr,
)
def test_compatible(old: BaseDistribution, new: BaseDistribution) -> None:
    check_compatible("x", old, new)
    check_compatible("x", new, old)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (FloatDistribution(0, 1), IntDistribution(0, 1)),
        (IntDistribution(0, 1), FloatDistribution(0, 1)),
        (FloatDistribution(0.1, 1), FloatDistribution(0.1, 1, log=True)),
        (IntDistribution(1, 8), IntDistribution(1, 8, log=True)),
        (FloatDistribution(0, 1), CategoricalDistribution((0.0, 1.0))),
        (CategoricalDistribution(("a", "b")), CategoricalDistribution(("a", "b", "c"))),
        (CategoricalDistribution(("a", "b")), CategoricalDistribution(("b", "a"))),
        (CategoricalDistribution((1, 2)), CategoricalDistribution((True, 2))),
    ],
    ids=repr,
)
def test_incompatible(old: BaseDistribution, new: BaseDistribution) -> None:
    with pytest.raises(
        ValueError,
        match=r"parameter 'x' was already defined in this study as .*; .* is incompatible with "
        r"it \(the kind, log scale and categorical choices must stay the same\); use a "
        r"different name",
    ):
        check_compatible("x", old, new)
