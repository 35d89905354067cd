"""Per-source adversary tests: benign sources flagged at most at alpha, attacks found."""

from __future__ import annotations

import numpy as np
import pytest

from watchkeeper.outliers import (
    SourceResult,
    boundary_probing,
    embedding_tests,
    near_duplicates,
    volume_bursts,
)

D = 16
MIX = np.random.default_rng(5).normal(size=(D, D)) / np.sqrt(D)


RATES = np.random.default_rng(6).lognormal(np.log(60.0), 0.5, 50)


def _benign(rng: np.random.Generator, n_sources: int = 50):  # type: ignore[no-untyped-def]
    """One window of benign traffic: each source at its own steady rate (heterogeneous volumes),
    embeddings from one distribution."""
    counts = rng.poisson(RATES[:n_sources])
    src = np.repeat([f"s{i:02d}" for i in range(n_sources)], counts).astype(object)
    n = src.size
    emb = np.maximum(rng.normal(size=(n, D)) @ MIX, 0.0)  # ReLU-like, as a CNN's embedding
    scores = 1.0 / (1.0 + np.exp(-rng.normal(-1.5, 1.5, n)))
    ts = rng.uniform(0, 3600, n)
    return src, emb, scores, ts


def _raw_false_alarms(results: list[SourceResult], alpha: float) -> tuple[int, int]:
    hits = sum(int((r.p_values <= alpha).sum()) for r in results)
    return hits, sum(r.sources.size for r in results)


def test_benign_sources_are_flagged_at_most_at_alpha(rng: np.random.Generator) -> None:
    # The raw per-source p-values of every test: P(p <= 0.05) <= 0.05 on benign traffic.
    alpha = 0.05
    out: dict[str, list[SourceResult]] = {}
    state = None
    for w in range(6):
        src, emb, scores, ts = _benign(rng)
        clustering, prada = embedding_tests(emb, src, ts, n_null=100, seed=w, min_events=32)
        out.setdefault("clustering", []).append(clustering)
        out.setdefault("prada", []).append(prada)
        out.setdefault("boundary", []).append(boundary_probing(scores, src, 0.5))
        out.setdefault("duplicates", []).append(near_duplicates(emb, src, ts, seed=w))
        volume, state = volume_bursts(src, state)
        if w:
            out.setdefault("volume", []).append(volume)
    for test, results in out.items():
        hits, tested = _raw_false_alarms(results, alpha)
        assert tested >= 150, test
        # Binomial band: mean + 3 sd of the count at rate alpha.
        bound = alpha * tested + 3 * np.sqrt(alpha * (1 - alpha) * tested)
        assert hits <= bound, f"{test}: {hits} of {tested} benign sources at p <= {alpha}"
        # And with the Holm correction no benign source is flagged in these windows.
        assert sum(r.flagged.sum() for r in results) <= 1, test


def test_each_attack_is_found(rng: np.random.Generator) -> None:
    src, emb, scores, ts = _benign(rng)
    n_attack = 200
    centre = emb[0]
    # (a) tight cluster of queries around one input; (d) a near-duplicate flood.
    tight = centre + 0.02 * rng.normal(size=(n_attack, D))
    flood = np.repeat(emb[1:2], n_attack, axis=0) + 1e-6 * rng.normal(size=(n_attack, D))
    # (b) extraction: seeds and tiny perturbations of them (a bimodal distance distribution).
    seeds = np.maximum(rng.normal(size=(20, D)) @ MIX, 0.0)
    extraction = np.repeat(seeds, 10, axis=0) + 0.01 * rng.normal(size=(n_attack, D))
    # (c) boundary probing: scores hugging the threshold.
    probe_scores = 0.5 + rng.uniform(-0.03, 0.03, n_attack)
    tags = ["tight", "flood", "extract", "probe"]
    all_src = np.r_[src, np.repeat(tags, n_attack)].astype(object)
    all_emb = np.r_[emb, tight, flood, rng.permutation(extraction), emb[:n_attack]]
    all_scores = np.r_[scores, scores[: 3 * n_attack], probe_scores]
    all_ts = np.r_[ts, np.tile(np.linspace(0, 3600, n_attack), 4)]
    clustering, prada = embedding_tests(all_emb, all_src, all_ts)
    assert {"tight", "flood", "extract"} <= set(clustering.flagged_sources)
    assert "extract" in prada.flagged_sources
    assert boundary_probing(all_scores, all_src, 0.5).flagged_sources == ["probe"]
    assert "flood" in near_duplicates(all_emb, all_src, all_ts).flagged_sources
    _, state = volume_bursts(src)
    burst, _ = volume_bursts(np.r_[src, np.repeat("s07", 1000)].astype(object), state)
    assert burst.flagged_sources == ["s07"]
    benign_flags = [
        s
        for r in (clustering, prada)
        for s in r.flagged_sources
        if s.startswith("s")
    ]
    assert benign_flags == []


def test_untagged_and_small_sources_are_not_tested(rng: np.random.Generator) -> None:
    src, _, scores, _ = _benign(rng, n_sources=5)
    src = src.copy()
    src[:50] = None
    src[50:55] = "tiny"
    r = boundary_probing(scores, src, 0.5, min_events=20)
    assert "tiny" not in r.sources.tolist() and "" not in r.sources.tolist()
    d = r.to_dict()
    assert {"source", "n", "p_value", "adjusted_p_value", "flagged"} <= set(d["sources"][0])


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: boundary_probing([0.1, 0.2], ["a"], 0.5), "sources: expected 2 values"),
        (lambda: boundary_probing([0.1], ["a"], float("nan")), "threshold: must be a finite"),
        (lambda: boundary_probing([0.1], ["a"], 0.5, margin=0), "margin: must be a positive"),
        (lambda: boundary_probing([0.1], ["a"], 0.5, alpha=2), "alpha: must be in"),
        (lambda: boundary_probing([0.1], ["a"], 0.5, correction="x"), "correction: must be"),
        (lambda: embedding_tests(np.zeros(3), ["a"] * 3), "embeddings: expected a 2-D"),
        (lambda: embedding_tests(np.zeros((3, 2)), ["a"] * 3, n_null=5), "n_null: an integer"),
        (lambda: near_duplicates(np.zeros((3, 2)), ["a"] * 3, bits=99), "bits: an integer"),
        (lambda: volume_bursts(["a"], ratio=0.5), "ratio: must be >= 1"),
        (lambda: volume_bursts(["a"], {"sources": ["a"], "rate": []}), "state: 'sources'"),
    ],
)
def test_bad_input_names_the_field(call, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.slow
def test_family_wise_false_alarms_over_many_windows() -> None:
    # With Holm at alpha = 0.01, a window of 50 benign sources raises any flag in at most 1% of
    # windows per test (+ binomial slack over 60 windows).
    rng = np.random.default_rng(99)
    windows_with_flags = {"clustering": 0, "prada": 0, "boundary": 0, "duplicates": 0}
    for w in range(60):
        src, emb, scores, ts = _benign(rng)
        clustering, prada = embedding_tests(emb, src, ts, n_null=100, seed=w)
        for r in (clustering, prada, boundary_probing(scores, src, 0.5),
                  near_duplicates(emb, src, ts, seed=w)):
            windows_with_flags[r.test] += int(r.flagged.any())
    assert all(v <= 3 for v in windows_with_flags.values()), windows_with_flags
