"""Attacks on the demo's document-fraud CNN, mixed into benign traffic from 50 sources.

The demo's CNN (``watchkeeper.demo.model``, trained here on synthetic documents; no network) is
the model under attack. Each window (an hour) 50 benign sources send fresh documents at their
own steady rates (log-normal, median ``--benign-rate`` per window). From window
``--attack-start`` on, one more source attacks:

* ``boundary`` — a decision-based boundary search written here in the manner of HopSkipJump:
  from a flagged photocopy and a genuine document, binary search to the decision boundary, then
  repeated steps along a gradient direction estimated from the decisions on random
  perturbations, each followed by a new binary search;
* ``extraction`` — a model-extraction client: a few seed documents and many synthetic queries
  made from them by small random perturbations (the Jacobian-augmentation pattern PRADA targets);
* ``flood`` — one document sent over and over with imperceptible pixel noise;
* ``noise`` — random-noise images (probing the model's behaviour off its input distribution).

Every window goes through :func:`watchkeeper.checks.adversaries.adversaries` as the runner would
(all five per-source tests, alpha = 0.01 with Holm's correction across sources). Reported per
attack: whether it was detected, which tests named it, the windows and queries until the first
detection; and the share of benign (source, window) pairs flagged by any test.

Run: ``.venv/bin/python -m benchmarks.adversaries [--seeds 3] [--windows 4] [--attack-rate 300 60]``
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

ATTACKS = ("boundary", "extraction", "flood", "noise")
HOUR = 3600.0


@dataclass
class Outcome:
    """What the harness saw for one attack."""

    attack: str
    detected: bool = False
    first_window: int | None = None
    queries_to_detection: int | None = None
    tests: set[str] = field(default_factory=set)
    benign_flags: int = 0
    benign_pairs: int = 0
    attack_queries: int = 0


class Model:
    """The demo CNN as a black box: images in, (scores, embeddings) out."""

    def __init__(self, n_train: int, epochs: int, seed: int) -> None:
        from watchkeeper.demo.documents import generate_documents
        from watchkeeper.demo.model import build_model, train_model

        if epochs > 0:
            docs = generate_documents(n_train, photocopy_share=0.5, seed=seed)
            self.net, _ = train_model(docs.images, docs.labels, epochs=epochs, seed=seed)
        else:  # an untrained network still has a decision boundary: enough for fast tests
            self.net = build_model(seed).eval()
        self.calls = 0
        # The operating point: the threshold that best separates a validation set (Youden).
        val = generate_documents(400, photocopy_share=0.5, seed=seed + 1)
        scores = self(val.images)[0]
        cuts = np.quantile(scores, np.linspace(0.05, 0.95, 91))
        y = val.labels == 1
        j = [(scores[y] >= c).mean() - (scores[~y] >= c).mean() for c in cuts]
        self.threshold = float(cuts[int(np.argmax(j))])
        self.calls = 0

    def __call__(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        from watchkeeper.demo.model import predict

        self.calls += len(images)
        return predict(self.net, images)

    def flags(self, images: np.ndarray) -> np.ndarray:
        return self(images)[0] >= self.threshold


def _as_images(x: np.ndarray) -> np.ndarray:
    out: np.ndarray = np.clip(np.rint(x), 0, 255).astype(np.uint8)
    return out


def boundary_search(
    model: Model, target: np.ndarray, start: np.ndarray, budget: int, rng: np.random.Generator
) -> list[np.ndarray]:
    """A HopSkipJump-like decision-based attack; returns every image it queried, in order."""
    queried: list[np.ndarray] = []

    def decide(batch: np.ndarray) -> np.ndarray:
        imgs = _as_images(batch)
        queried.extend(imgs)
        return model.flags(imgs)

    x_t = target.astype(np.float64)  # flagged: the attacker wants it not flagged
    x_a = start.astype(np.float64)  # not flagged
    target_flag = bool(decide(x_t[None])[0])

    def bisect(adv: np.ndarray, steps: int = 10) -> np.ndarray:
        lo, hi = 0.0, 1.0  # blend 0 = adv (other side), 1 = target
        for _ in range(steps):
            mid = (lo + hi) / 2
            if bool(decide(((1 - mid) * adv + mid * x_t)[None])[0]) == target_flag:
                hi = mid
            else:
                lo = mid
        return (1 - lo) * adv + lo * x_t

    x_b = bisect(x_a)
    delta = 2.0  # per-pixel size of the probes around the boundary point
    while len(queried) < budget:
        n_grad = 24
        u = rng.normal(size=(n_grad, *x_b.shape))
        u /= np.linalg.norm(u.reshape(n_grad, -1), axis=1)[:, None, None, None]
        probes = x_b[None] + delta * u * np.sqrt(u[0].size)
        side = decide(probes) != target_flag  # +1 where the probe is on the adversarial side
        signs = np.where(side, 1.0, -1.0)
        signs -= signs.mean()
        grad = (signs[:, None, None, None] * u).sum(axis=0)
        norm = np.linalg.norm(grad)
        if norm == 0:
            delta *= 0.5
            continue
        step = np.linalg.norm(x_b - x_t) / 4
        x_b = bisect(x_b + step * grad / norm)
        delta = max(0.5, delta * 0.8)
    return queried[:budget]


def _attack_images(
    attack: str, model: Model, n: int, rng: np.random.Generator, size: int
) -> np.ndarray:
    from watchkeeper.demo.documents import generate_documents

    if attack == "boundary":
        docs = generate_documents(40, photocopy_share=0.5, seed=rng)
        scores = model(docs.images)[0]
        model.calls -= len(docs.images)  # the attacker's own preparation is not logged
        target = docs.images[int(np.argmax(scores))]  # flagged
        start = docs.images[int(np.argmin(scores))]  # not flagged
        return np.stack(boundary_search(model, target, start, n, rng))
    if attack == "extraction":
        seeds = generate_documents(max(2, n // 15), photocopy_share=0.5, seed=rng).images
        base = seeds[rng.integers(0, len(seeds), n)].astype(np.float64)
        lam = 12.0 * np.sign(rng.normal(size=base.shape))  # Jacobian-style +-lambda steps
        return _as_images(base + lam * (rng.uniform(size=base.shape) < 0.3))
    if attack == "flood":
        one = generate_documents(1, seed=rng).images[0].astype(np.float64)
        return _as_images(one[None] + rng.integers(-1, 2, size=(n, *one.shape)))
    if attack == "noise":
        return rng.integers(0, 256, size=(n, size, size, 3), dtype=np.uint8)
    raise ValueError(f"attack: unknown attack {attack!r}; known: {ATTACKS}")


@dataclass
class BenignWindow:
    """One window of benign traffic, already through the model (reused by every attack)."""

    sources: np.ndarray
    scores: np.ndarray
    embeddings: np.ndarray
    counts: np.ndarray


def benign_traffic(
    model: Model, *, windows: int, n_sources: int = 50, benign_rate: float = 60.0, seed: int = 0
) -> list[BenignWindow]:
    """``windows`` windows of ``n_sources`` benign sources at steady log-normal rates."""
    from watchkeeper.demo.documents import generate_documents

    rng = np.random.default_rng(seed)
    rates = rng.lognormal(np.log(benign_rate), 0.5, n_sources)
    names = np.array([f"benign{i:02d}" for i in range(n_sources)], dtype=object)
    out = []
    for _ in range(windows):
        counts = rng.poisson(rates)
        docs = generate_documents(int(counts.sum()), photocopy_share=0.1, seed=rng)
        scores, emb = model(docs.images)
        out.append(BenignWindow(np.repeat(names, counts), scores, emb, counts))
    return out


def simulate(
    attack: str,
    *,
    model: Model,
    windows: int = 6,
    attack_start: int = 2,
    attack_rate: int = 300,
    n_sources: int = 50,
    benign_rate: float = 60.0,
    seed: int = 0,
    options: dict[str, Any] | None = None,
    benign: list[BenignWindow] | None = None,
) -> Outcome:
    """Run one attack through ``windows`` windows of mixed traffic; see the module docstring.

    ``benign`` (from :func:`benign_traffic`) reuses one draw of benign traffic across attacks;
    by default it is drawn here from ``seed``.
    """
    if attack not in ATTACKS:
        raise ValueError(f"attack: unknown attack {attack!r}; known: {ATTACKS}")
    from watchkeeper.checks.adversaries import adversaries
    from watchkeeper.demo.documents import SIZE
    from watchkeeper.window import Window

    if benign is None:
        benign = benign_traffic(
            model, windows=windows, n_sources=n_sources, benign_rate=benign_rate, seed=seed
        )
    if len(benign) < windows:
        raise ValueError(f"benign: {len(benign)} windows of traffic for {windows} windows")
    rng = np.random.default_rng([seed, ATTACKS.index(attack), attack_rate])
    out = Outcome(attack)
    state: dict[str, Any] | None = None
    sent = 0
    for w in range(windows):
        part = benign[w]
        src, scores, emb = part.sources, part.scores, part.embeddings
        attacking = w >= attack_start
        if attacking:
            imgs = _attack_images(attack, model, attack_rate, rng, SIZE)
            a_scores, a_emb = model(imgs)
            scores, emb = np.concatenate([scores, a_scores]), np.concatenate([emb, a_emb])
            src = np.concatenate([src, np.full(len(imgs), "attacker", dtype=object)])
            sent += len(imgs)
        start = w * HOUR
        ts = start + rng.uniform(0, HOUR, len(src))
        if attacking:  # the attacker's queries are sequential: keep their order in time
            k = len(src) - attack_rate
            ts[k:] = start + np.sort(rng.uniform(0, HOUR, attack_rate))
        window = Window.from_columns(
            ids=[f"w{w}-{i}" for i in range(len(src))],
            ts=ts,
            scores=scores,
            embeddings=emb,
            tags={"source": src},
            start=start,
            end=start + HOUR,
        )
        found, state = adversaries(window, options, threshold=model.threshold, state=state)
        flagged = {(f.check, f.subject) for f in found if f.drift and f.subject != "*"}
        tagged = {s for _, s in flagged}
        out.benign_flags += sum(1 for s in tagged if s.startswith("source=benign"))
        out.benign_pairs += int((part.counts > 0).sum())
        hits = {c.split(".", 1)[1] for c, s in flagged if s == "source=attacker"}
        if hits:
            out.tests |= hits
            if not out.detected:
                out.detected = True
                out.first_window = w - attack_start
                out.queries_to_detection = sent
    out.attack_queries = sent
    return out


def _summary(outcomes: list[Outcome]) -> dict[str, Any]:
    """Detection rate, medians of the time to detection (over detected runs), tests, FPR."""
    import statistics

    hit = [o for o in outcomes if o.detected]
    pairs = sum(o.benign_pairs for o in outcomes)
    flags = sum(o.benign_flags for o in outcomes)
    return {
        "runs": len(outcomes),
        "detected": len(hit),
        "windows": statistics.median([o.first_window or 0 for o in hit]) if hit else None,
        "queries": statistics.median([o.queries_to_detection or 0 for o in hit]) if hit else None,
        "tests": sorted(set().union(*(o.tests for o in outcomes))) if outcomes else [],
        "benign_flags": flags,
        "benign_pairs": pairs,
    }


def _g(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


def main() -> None:
    from benchmarks._common import machine_line, write_section

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--windows", type=int, default=4)
    parser.add_argument("--attack-start", type=int, default=1)
    parser.add_argument("--attack-rate", type=int, nargs="+", default=[300, 60])
    parser.add_argument("--benign-rate", type=float, default=60.0)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--train", type=int, default=2000)
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    t0 = time.perf_counter()
    load_start = os.getloadavg()[0]
    model = Model(args.train, args.epochs, seed=0)
    trained = (
        f"The demo CNN trained on {args.train:,} synthetic documents ({args.epochs} epochs)"
        if args.epochs > 0
        else "The demo CNN untrained (random weights: a decision boundary and embedding all the "
        "same; `--epochs` trains it)"
    )
    runs: dict[tuple[int, str], list[Outcome]] = {}
    for seed in range(args.seeds):
        benign = benign_traffic(
            model, windows=args.windows, benign_rate=args.benign_rate, seed=100 + seed
        )
        for rate in args.attack_rate:
            for attack in ATTACKS:
                o = simulate(
                    attack,
                    model=model,
                    windows=args.windows,
                    attack_start=args.attack_start,
                    attack_rate=rate,
                    benign_rate=args.benign_rate,
                    seed=100 + seed,
                    benign=benign,
                )
                runs.setdefault((rate, attack), []).append(o)
                print(seed, rate, o, flush=True)
        lines = [
            "## Adversaries: attacks on the demo CNN among 50 benign sources (issue 15)",
            "",
            f"{machine_line()} Load average {load_start:.1f} at the start, "
            f"{os.getloadavg()[0]:.1f} now. {trained}; {args.windows} windows of an hour; "
            f"50 benign sources at log-normal rates (median {args.benign_rate:g} documents per "
            f"window); the attacker from window {args.attack_start} on at the rate shown. All "
            "five per-source tests at alpha = 0.01 (Holm across sources, per test and window). "
            f"{seed + 1} seed(s) per row (benign traffic and attack drawn afresh per seed). "
            "Detected: runs in which a finding named the attacker; time to detection (median "
            "over the detected runs) in windows after the attack started (0 = its first "
            "window) and in attack queries sent by the end of that window. Benign: (source, "
            "window) pairs flagged by any test, pooled over seeds and windows.",
            "",
            "| attack | queries/window | detected | windows to detection | queries to "
            "detection | tests that named it | benign (source, window) pairs flagged |",
            "|---|---:|---|---:|---:|---|---:|",
        ]
        for (rate, attack), outs in runs.items():
            r = _summary(outs)
            share = r["benign_flags"] / max(r["benign_pairs"], 1)
            lines.append(
                f"| {attack} | {rate} | {r['detected']} of {r['runs']} | "
                f"{_g(r['windows'])} | {_g(r['queries'])} | "
                f"{', '.join(r['tests'])} | {r['benign_flags']} of {r['benign_pairs']} "
                f"({share:.2%}) |"
            )
        lines += [
            "",
            f"Run time {time.perf_counter() - t0:.0f} s. Reproduce: "
            f"`.venv/bin/python -m benchmarks.adversaries --seeds {args.seeds} --epochs "
            f"{args.epochs}`.",
        ]
        write_section("adversaries", "\n".join(lines))  # after every seed: partial is kept
        print("\n".join(lines), flush=True)


if __name__ == "__main__":
    main()
