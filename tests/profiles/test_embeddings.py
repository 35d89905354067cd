"""Embeddings in profiles: mergeable random-Fourier sums, an MMD verdict with a calibrated level."""

from __future__ import annotations

import numpy as np
import pytest

from watchkeeper.profiles import (
    EMBEDDINGS,
    EmbeddingSummary,
    Profile,
    RFFMap,
    compare_embeddings,
    compare_profiles,
    profile,
)
from watchkeeper.window import Window


def _profile(emb: np.ndarray, rff_map: RFFMap | str, seed: int = 0) -> Profile:
    x = np.random.default_rng(seed).normal(size=emb.shape[0])
    return profile(Window.from_columns(features={"x": x}, embeddings=emb), embedding_map=rff_map)


def test_merge_is_associative_and_equals_the_whole() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3000, 5))
    x[::97] = np.nan
    m = RFFMap.from_sample(x[:500], n_features=24)
    a, b, c = (EmbeddingSummary.of(part, m) for part in (x[:700], x[700:1900], x[1900:]))
    left, right = a.merge(b).merge(c), a.merge(b.merge(c))
    whole = EmbeddingSummary.of(x, m)
    for s in (left, right, c.merge(a).merge(b)):
        assert (s.count, s.missing) == (whole.count, whole.missing)
        assert s.rff is not None and whole.rff is not None
        np.testing.assert_allclose(s.rff.total, whole.rff.total, rtol=1e-12)
        np.testing.assert_allclose(s.rff.outer, whole.rff.outer, rtol=1e-12)
    assert EmbeddingSummary().merge(whole) == whole
    assert EmbeddingSummary(missing=3).merge(whole).missing == whole.missing + 3
    again = EmbeddingSummary.from_dict(whole.to_dict())
    assert again.rff_map == m and again.rff is not None
    np.testing.assert_allclose(again.rff.outer, whole.rff.outer)


def test_maps_must_match() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(400, 3))
    m1 = RFFMap(3, 1.0, 16, 0)
    m2 = RFFMap(3, 1.0, 16, 1)
    with pytest.raises(ValueError, match="random-Fourier"):
        EmbeddingSummary.of(x, m1).merge(EmbeddingSummary.of(x, m2))
    with pytest.raises(ValueError, match="embedding_map"):
        compare_embeddings(_profile(x, m1), _profile(x, m2))
    with pytest.raises(ValueError, match="reference"):
        compare_embeddings(_profile(x, None), _profile(x, m1))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"embedding_map\.bandwidth"):
        RFFMap(3, -1.0)
    with pytest.raises(ValueError, match=r"embedding_map\.n_features"):
        RFFMap(3, 1.0, n_features=100_000)
    with pytest.raises(ValueError, match="embedding_map"):
        _profile(x, "median")


def test_compare_profiles_reports_the_embeddings() -> None:
    rng = np.random.default_rng(2)
    ref = _profile(rng.normal(size=(4000, 8)), "auto")
    assert ref.embeddings is not None and ref.embeddings.rff_map is not None
    m = ref.embeddings.rff_map
    moved = _profile(rng.normal(0.15, 1.0, size=(4000, 8)), m, seed=1)
    report = compare_profiles(ref, moved)
    assert report.drifted == [EMBEDDINGS]
    assert report.columns[EMBEDDINGS].method == "rff_mmd"
    assert EMBEDDINGS not in compare_profiles(ref, moved, embeddings=False).columns
    assert EMBEDDINGS not in compare_profiles(ref, moved, columns=["x"]).columns
    none = profile(Window.from_columns(features={"x": rng.normal(size=100)}))
    assert compare_profiles(ref, none).columns[EMBEDDINGS].details["kind"] == "embeddings"


@pytest.mark.parametrize(("dim", "n", "n_features"), [(8, 2000, 64), (32, 5000, 128)])
def test_false_alarms_at_alpha_and_power(dim: int, n: int, n_features: int) -> None:
    """Level by simulation: 600 pairs of undrifted samples, each summarised in 3 merged parts."""
    rng = np.random.default_rng(dim)
    m = RFFMap.from_sample(rng.normal(size=(1000, dim)), n_features=n_features)

    def summarised(shift: float) -> Profile:
        x = rng.normal(size=(n, dim))
        x[:, 0] += shift
        parts = np.array_split(x, 3)
        emb = EmbeddingSummary.of(parts[0], m)
        for part in parts[1:]:
            emb = emb.merge(EmbeddingSummary.of(part, m))
        return Profile(n=n, embeddings=emb)

    reps = 600
    p_null = np.array([compare_embeddings(summarised(0.0), summarised(0.0)).p_value
                       for _ in range(reps)], dtype=float)
    rate = float((p_null < 0.05).mean())
    assert abs(rate - 0.05) < 0.027, rate  # three standard errors of 600 draws at 5%
    p_drift = np.array([compare_embeddings(summarised(0.0), summarised(0.2)).p_value
                        for _ in range(100)], dtype=float)
    assert (p_drift < 0.05).mean() > 0.9
