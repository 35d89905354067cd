"""The shadow report: how the challenger behaved on mirrored traffic, paired with the champion.

The champion's and the challenger's events of the same requests are joined by id. The report
gives what a reviewer asks before a promotion: how often the two agree, whether the challenger
flags more or fewer (with an interval), whether its flag count sits in the band its own
operating point promises, how far its scores moved, what it costs in latency, and, on the
events whose labels have arrived, which is more accurate, decided by the always-valid
:class:`~watchkeeper.loop.SequentialPairedTest` (fed in time order) and, for reference, the
fixed-sample exact McNemar test.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from watchkeeper.estimation import OperatingPoint, check_flags
from watchkeeper.loop._paired import mcnemar
from watchkeeper.loop._sequential import SequentialPairedTest
from watchkeeper.stats import ks, wasserstein
from watchkeeper.stats._result import _plain
from watchkeeper.window import Window


@dataclass(frozen=True, slots=True)
class ShadowReport:
    """Champion versus challenger on the same mirrored requests; see :func:`shadow_report`."""

    n_champion: int
    n_challenger: int
    n_paired: int
    agreement: float
    flag_rate_champion: float
    flag_rate_challenger: float
    flag_rate_difference: float
    flag_rate_ci: tuple[float, float]
    band: dict[str, Any] | None
    score_ks: float
    score_ks_p_value: float
    score_wasserstein: float
    latency: dict[str, float | None]
    n_labelled: int
    paired: dict[str, Any] | None
    sequential: dict[str, Any] | None
    decision: str

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict."""
        out: dict[str, Any] = _plain(
            {
                "n_champion": self.n_champion,
                "n_challenger": self.n_challenger,
                "n_paired": self.n_paired,
                "agreement": self.agreement,
                "flag_rate_champion": self.flag_rate_champion,
                "flag_rate_challenger": self.flag_rate_challenger,
                "flag_rate_difference": self.flag_rate_difference,
                "flag_rate_ci": list(self.flag_rate_ci),
                "band": self.band,
                "score_ks": self.score_ks,
                "score_ks_p_value": self.score_ks_p_value,
                "score_wasserstein": self.score_wasserstein,
                "latency": self.latency,
                "n_labelled": self.n_labelled,
                "paired": self.paired,
                "sequential": self.sequential,
                "decision": self.decision,
            }
        )
        return out

    def summary(self) -> list[str]:
        """A few lines for a terminal."""
        lo, hi = self.flag_rate_ci
        lines = [
            f"shadow: {self.n_paired} paired requests ({self.n_champion} served, "
            f"{self.n_challenger} mirrored); agreement {self.agreement:.1%}",
            f"  flag rate {self.flag_rate_champion:.3f} -> {self.flag_rate_challenger:.3f} "
            f"(difference {self.flag_rate_difference:+.3f} [{lo:+.3f}, {hi:+.3f}])",
        ]
        if self.band is not None:
            b = self.band
            lines.append(
                f"  challenger's band: {b['observed']} flags, expected [{b['low']}, {b['high']}]"
                f" -> {b['verdict']}"
            )
        lat = self.latency
        if lat.get("p50_champion") is not None and lat.get("p50_challenger") is not None:
            lines.append(
                f"  latency p50 {lat['p50_champion']:.2f} -> {lat['p50_challenger']:.2f} ms, "
                f"p99 {lat['p99_champion']:.2f} -> {lat['p99_challenger']:.2f} ms"
            )
        lines.append(
            f"  scores: KS {self.score_ks:.3f} (p {self.score_ks_p_value:.2g}), "
            f"Wasserstein {self.score_wasserstein:.3f} sd"
        )
        if self.paired is not None and self.sequential is not None:
            p = self.paired
            s = self.sequential
            lines.append(
                f"  labelled: {self.n_labelled}; accuracy {p['champion']:.3f} -> "
                f"{p['challenger']:.3f} (McNemar p {p['p_value']:.2g}); sequential test: "
                f"{s['decision'] or 'undecided'}"
                + (f" after {s['decided_at']} labelled events" if s["decided_at"] else "")
            )
        lines.append(f"  decision: {self.decision}")
        return lines


def _join(champion: Window, challenger: Window) -> tuple[np.ndarray, np.ndarray]:
    """Positions in each window of the ids both hold, in the champion's time order."""
    a_ids = np.asarray(champion.ids, dtype=str)
    b_ids = np.asarray(challenger.ids, dtype=str)
    _, ia, ib = np.intersect1d(a_ids, b_ids, assume_unique=False, return_indices=True)
    order = np.argsort(np.asarray(champion.ts)[ia], kind="stable")
    return ia[order], ib[order]


def _quantile(x: np.ndarray | None, q: float) -> float | None:
    if x is None:
        return None
    x = x[np.isfinite(x)]
    return float(np.quantile(x, q)) if x.size else None


def shadow_report(
    champion: Window,
    challenger: Window,
    *,
    champion_threshold: float,
    challenger_threshold: float,
    challenger_op: OperatingPoint | None = None,
    expected_prevalence: float | None = None,
    alpha: float = 0.05,
    sequential: SequentialPairedTest | None = None,
    coverage: float = 0.95,
) -> ShadowReport:
    """Compare the challenger's shadow events with the champion's served ones.

    Parameters
    ----------
    champion, challenger
        The champion's window (with labels where known) and the challenger's shadow window;
        joined by request id.
    champion_threshold, challenger_threshold
        Each model's operating threshold (``score >= threshold`` flags).
    challenger_op, expected_prevalence
        When both are given, the challenger's flag count is checked against the band its own
        operating point promises (:func:`~watchkeeper.estimation.check_flags`).
    sequential
        The sequential test to feed with the labelled pairs (a new one at ``alpha`` if
        ``None``); pass a resumed one to continue across days.

    Returns
    -------
    ShadowReport
        ``decision`` is ``"promote"`` when the sequential test found the challenger more
        accurate, ``"reject"`` when it found it less accurate or its flag count fell outside its
        band with a ``model_change`` verdict, ``"inconclusive"`` when the test reached its
        maximum without a decision, and ``"continue"`` otherwise.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> n = 3000
    >>> y = (rng.random(n) < 0.1).astype(object)
    >>> ids = np.array([f"r{i}" for i in range(n)], dtype=object)
    >>> ts = np.arange(n, dtype=float)
    >>> a = Window(ids, ts, scores=np.clip(y * 0.4 + rng.normal(0.3, 0.2, n), 0, 1), labels=y)
    >>> b = Window(ids, ts, scores=np.clip(y * 0.6 + rng.normal(0.2, 0.1, n), 0, 1))
    >>> r = shadow_report(a, b, champion_threshold=0.5, challenger_threshold=0.5)
    >>> r.n_paired, r.decision
    (3000, 'promote')
    """
    from scipy import stats

    ia, ib = _join(champion, challenger)
    n = int(ia.size)
    if n == 0:
        raise ValueError("challenger: no request id in common with the champion's events")
    if champion.scores is None or challenger.scores is None:
        raise ValueError("champion, challenger: both windows need scores")
    sa = np.asarray(champion.scores, dtype=np.float64)[ia]
    sb = np.asarray(challenger.scores, dtype=np.float64)[ib]
    ok = np.isfinite(sa) & np.isfinite(sb)
    ia, ib, sa, sb = ia[ok], ib[ok], sa[ok], sb[ok]
    n = int(ok.sum())
    if n == 0:
        raise ValueError("challenger: no paired request has a score on both sides")
    fa, fb = sa >= champion_threshold, sb >= challenger_threshold
    agreement = float((fa == fb).mean())
    diff = float(fb.mean() - fa.mean())
    z = float(stats.norm.ppf(0.5 + coverage / 2))
    n01 = int((~fa & fb).sum())
    n10 = int((fa & ~fb).sum())
    se = math.sqrt(max((n01 + n10 - (n01 - n10) ** 2 / n) / n**2, 1.0 / n**2))
    band = None
    if challenger_op is not None and expected_prevalence is not None:
        band = check_flags(
            challenger_op, expected_prevalence, n, int(fb.sum()), alpha=alpha
        ).to_dict()
    k = ks(sa, sb, alpha=alpha)
    w = wasserstein(sa, sb)
    la = None if champion.latency_ms is None else np.asarray(champion.latency_ms)[ia]
    lb = None if challenger.latency_ms is None else np.asarray(challenger.latency_ms)[ib]
    latency = {
        "p50_champion": _quantile(la, 0.5),
        "p99_champion": _quantile(la, 0.99),
        "p50_challenger": _quantile(lb, 0.5),
        "p99_challenger": _quantile(lb, 0.99),
    }
    for q in ("p50", "p99"):
        a_q, b_q = latency[f"{q}_champion"], latency[f"{q}_challenger"]
        latency[f"{q}_difference"] = None if a_q is None or b_q is None else b_q - a_q
    paired = seq = None
    n_labelled = 0
    test = sequential if sequential is not None else SequentialPairedTest(alpha=alpha)
    if champion.labels is not None:
        raw = np.asarray(champion.labels, dtype=object)[ia]
        known = np.array([v is not None for v in raw], dtype=bool)
        n_labelled = int(known.sum())
        if n_labelled:
            y = np.asarray(raw[known].astype(np.float64) > 0.5)
            ra, rb = fa[known] == y, fb[known] == y
            paired = mcnemar(ra, rb, coverage=coverage).to_dict()
            seq = test.update(ra, rb).state.to_dict()
    decision = "continue"
    if seq is not None and seq["decision"] == "better":
        decision = "promote"
    elif (seq is not None and seq["decision"] == "worse") or (
        band is not None and band["verdict"] == "model_change"
    ):
        decision = "reject"
    elif seq is not None and seq["decision"] == "inconclusive":
        decision = "inconclusive"
    return ShadowReport(
        n_champion=len(champion),
        n_challenger=len(challenger),
        n_paired=n,
        agreement=agreement,
        flag_rate_champion=float(fa.mean()),
        flag_rate_challenger=float(fb.mean()),
        flag_rate_difference=diff,
        flag_rate_ci=(diff - z * se, diff + z * se),
        band=band,
        score_ks=float(k.statistic),
        score_ks_p_value=float(k.p_value if k.p_value is not None else math.nan),
        score_wasserstein=float(w.statistic),
        latency=latency,
        n_labelled=n_labelled,
        paired=paired,
        sequential=seq,
        decision=decision,
    )
