"""Merge of profiles, property-based: associative, commutative, zero the identity, and the
merge of parts the profile of the whole (exact for counts, ranges and sketch buckets)."""

from __future__ import annotations

import json

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from watchkeeper.profiles import Profile, profile

floats = st.one_of(st.floats(-1e6, 1e6), st.just(float("nan")))
column = arrays(np.float64, st.integers(0, 40), elements=floats)
words = st.lists(st.sampled_from(["a", "b", "c", "d", None]), min_size=0, max_size=40)


def _profile(xs: np.ndarray, cs: list[str | None]) -> Profile:
    n = min(len(xs), len(cs))
    return profile({"x": xs[:n], "c": np.array(cs[:n], dtype=object)})


def _key(p: Profile) -> str:
    """Everything but float sums, which depend on the order of addition, to 9 digits; the
    spread (``m2``, ``std``), which can be a rounding error away from zero, is left to
    :func:`_assert_same_spread`."""

    def round_(x: object) -> object:
        if isinstance(x, dict):
            return {k: round_(v) for k, v in x.items() if k not in ("m2", "std")}
        if isinstance(x, list):
            return [round_(v) for v in x]
        if isinstance(x, float):
            return float(f"{x:.9g}")
        return x

    return json.dumps(round_(p.to_dict()), sort_keys=True)


@settings(max_examples=60, deadline=None)
@given(column, words, column, words, column, words)
def test_merge_associative_and_commutative(x1, c1, x2, c2, x3, c3) -> None:  # type: ignore[no-untyped-def]
    a, b, c = _profile(x1, c1), _profile(x2, c2), _profile(x3, c3)
    assert _key(a.merge(b).merge(c)) == _key(a.merge(b.merge(c)))
    assert _key(a.merge(b)) == _key(b.merge(a))
    assert _key(a.merge(Profile.zero())) == _key(a) == _key(Profile.zero().merge(a))


@settings(max_examples=60, deadline=None)
@given(column, words, st.integers(0, 40))
def test_parts_merge_to_whole(xs, cs, cut) -> None:  # type: ignore[no-untyped-def]
    n = min(len(xs), len(cs))
    cut = min(cut, n)
    whole = _profile(xs[:n], cs[:n])
    parts = _profile(xs[:cut], cs[:cut]).merge(_profile(xs[cut:n], cs[cut:n]))
    assert _key(parts) == _key(whole)
    _assert_same_spread(parts, whole)
    assert Profile.from_bytes(parts.to_bytes()) == parts


def _assert_same_spread(a: Profile, b: Profile) -> None:
    """Standard deviations equal to rounding error relative to the column's magnitude."""
    for name, column in a.to_dict()["features"].items():
        other = b.to_dict()["features"][name]
        if column.get("kind") != "numeric" or column.get("std") is None:
            continue
        scale = abs(column["mean"]) + column["std"] + 1e-300
        assert abs(column["std"] - other["std"]) <= 1e-6 * scale, (name, column, other)


def test_spread_survives_a_large_offset() -> None:
    # found by the property above: five equal values near 8e5 had std 0.0 whole but 0.011
    # merged, when the variance came from sum and sum of squares (catastrophic cancellation)
    xs = np.full(5, 838656.06441235)
    whole = _profile(xs, ["a"] * 5)
    parts = _profile(xs[:2], ["a"] * 2).merge(_profile(xs[2:], ["a"] * 3))
    assert parts.to_dict()["features"]["x"]["std"] < 1e-9
    rng = np.random.default_rng(0)
    ts = 1.7e9 + rng.normal(scale=1e-3, size=1000)  # timestamps with a millisecond spread
    merged = _profile(ts[:300], ["a"] * 300).merge(_profile(ts[300:], ["a"] * 700))
    got = merged.to_dict()["features"]["x"]["std"]
    assert abs(got - np.std(ts, ddof=1)) <= 1e-6 * np.std(ts, ddof=1)
    assert _key(parts) == _key(whole)


def test_a_part_with_only_missing_text_keeps_its_missing_count() -> None:
    # found by the property above: ['a'] profiles as text, [None] as an empty numeric column
    xs, cs = np.array([0.0, 0.0]), ["a", None]
    whole = _profile(xs, cs)
    parts = _profile(xs[:1], cs[:1]).merge(_profile(xs[1:], cs[1:]))
    assert _key(parts) == _key(whole)
