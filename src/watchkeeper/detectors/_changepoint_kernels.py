"""Compiled kernels of the change-point detectors: BOCPD and the seasonal-residual CUSUM.

Imported lazily (it imports numba). As in :mod:`watchkeeper.detectors._kernels`, each kernel
consumes an array of checked values, mutates the state arrays it is given in place and returns
the positions at which drift was signalled; a single ``update`` runs the same kernel on a
one-element array.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

# -- Bayesian online change-point detection (Adams & MacKay 2007) ------------------------------
#
# scalars: 0 values seen since the (re)start, 1 number of run lengths in use, 2 drift flag,
#          3 warm-up sum, 4 warm-up sum of squares, 5 prior mean, 6 prior beta,
#          7 probability of a recent change after the last value, 8 first value (the warm-up
#          sums are of differences from it, so large offsets lose no precision)
# logp[r]: log posterior of run length r; mu[r], beta[r]: Normal-Gamma posterior of a run of r
# values (kappa and alpha depend on r only: kappa0 + r, alpha0 + r / 2).


@njit(cache=True)
def _logsumexp(a, m):  # type: ignore[no-untyped-def]
    top = -np.inf
    for i in range(m):
        if a[i] > top:
            top = a[i]
    if top == -np.inf:
        return -np.inf
    total = 0.0
    for i in range(m):
        total += math.exp(a[i] - top)
    return top + math.log(total)


@njit(cache=True)
def bocpd(  # type: ignore[no-untyped-def]
    values,
    scalars,
    logp,
    mu,
    beta,
    log_hazard,
    log_survive,
    kappa0,
    alpha0,
    prior_mu,
    prior_sigma,
    warm_start,
    lag,
    threshold,
    reset,
):
    size = logp.size
    out = np.empty(values.size, dtype=np.int64)
    found = 0
    # Student-t constants per run length (alpha depends on r only).
    const = np.empty(size)
    for r in range(size):
        a = alpha0 + 0.5 * r
        const[r] = math.lgamma(a + 0.5) - math.lgamma(a) - 0.5 * math.log(2.0 * a * math.pi)
    joint = np.empty(size)
    last = prev = -np.inf
    for i in range(values.size):
        if scalars[2] != 0.0 and reset:
            scalars[:] = 0.0
            logp[:] = -np.inf
        scalars[2] = 0.0
        x = values[i]
        n = scalars[0]
        if n < warm_start:
            # Warm-up: the first values are one segment; they also set the prior's scale.
            if n == 0.0:
                scalars[8] = x
            dx = x - scalars[8]
            scalars[0] = n + 1.0
            scalars[3] += dx
            scalars[4] += dx * dx
            if n + 1.0 == warm_start:
                w = warm_start
                mean = scalars[8] + scalars[3] / w
                ss = max(scalars[4] - scalars[3] * scalars[3] / w, 0.0)
                m0 = mean if math.isnan(prior_mu) else prior_mu
                if math.isnan(prior_sigma):
                    var = ss / (w - 1.0)
                    var = max(var, 1e-12 * max(1.0, mean * mean))
                else:
                    var = prior_sigma * prior_sigma
                b0 = var * (alpha0 - 1.0) if alpha0 > 1.0 else var
                scalars[5] = m0
                scalars[6] = b0
                r = min(int(w), size - 1)
                k = kappa0 + r
                logp[:] = -np.inf
                logp[r] = 0.0
                mu[r] = (kappa0 * m0 + w * mean) / (kappa0 + w)
                beta[r] = b0 + 0.5 * ss + kappa0 * w * (mean - m0) ** 2 / (2.0 * k)
                scalars[1] = r + 1.0
                scalars[7] = 0.0
            continue
        m = int(scalars[1])
        for r in range(m):
            if logp[r] == -np.inf:
                joint[r] = -np.inf
                continue
            k = kappa0 + r
            a = alpha0 + 0.5 * r
            s2 = beta[r] * (k + 1.0) / (a * k)
            z = (x - mu[r]) ** 2 / (2.0 * a * s2)
            joint[r] = logp[r] + const[r] - 0.5 * math.log(s2) - (a + 0.5) * math.log1p(z)
        change = _logsumexp(joint, m) + log_hazard
        # Grow every run by one (the longest run length absorbs what would overflow).
        top = m if m < size else size - 1
        if m == size:
            last = joint[size - 1] + log_survive
            prev = joint[size - 2] + log_survive
            hi = max(last, prev)
            logp[size - 1] = (
                hi + math.log(math.exp(last - hi) + math.exp(prev - hi)) if hi > -np.inf else hi
            )
            if last >= prev:
                # The longest run keeps its own statistics when it holds more of the mass.
                k = kappa0 + size - 1
                mu_prev = mu[size - 1]
                mu[size - 1] = (k * mu_prev + x) / (k + 1.0)
                beta[size - 1] = beta[size - 1] + k * (x - mu_prev) ** 2 / (2.0 * (k + 1.0))
        for r in range(top, 0, -1):
            if r == size - 1 and m == size:
                if last >= prev:
                    continue
            else:
                logp[r] = joint[r - 1] + log_survive
            k = kappa0 + r - 1
            mu_prev = mu[r - 1]
            mu[r] = (k * mu_prev + x) / (k + 1.0)
            beta[r] = beta[r - 1] + k * (x - mu_prev) ** 2 / (2.0 * (k + 1.0))
        logp[0] = change
        mu[0] = scalars[5]
        beta[0] = scalars[6]
        m = top + 1
        scalars[1] = m
        norm = _logsumexp(logp, m)
        recent = 0.0
        for r in range(m):
            logp[r] -= norm
            if r <= lag:
                recent += math.exp(logp[r])
        scalars[0] = n + 1.0
        scalars[7] = recent
        if recent > threshold:
            scalars[2] = 1.0
            out[found] = i
            found += 1
    return out[:found]


# -- CUSUM on the residuals of a robust seasonal / trend model ---------------------------------
#
# scalars: 0 values seen since the (re)start, 1 values in the ring, 2 ring head (next slot),
#          3 residuals in their ring, 4 residual head, 5 S+, 6 S-, 7 drift flag, 8 last z
# ring: the last `window` values; resid: the last `window` one-step residuals.


@njit(cache=True)
def _forecast(y, phase, period, level_window, trend):  # type: ignore[no-untyped-def]
    """One-step forecast of the value after ``y`` (oldest first) whose phase is ``phase``."""
    m = y.size
    season = np.zeros(period)
    if period > 1 and m >= 2 * period:
        # Detrend with a moving mean over one cycle (it cancels the seasonal pattern), then the
        # seasonal profile is the median detrended value at each phase.
        half = period // 2
        det = np.full(m, np.nan)
        csum = np.zeros(m + 1)
        for i in range(m):
            csum[i + 1] = csum[i] + y[i]
        for i in range(half, m - (period - half) + 1):
            det[i] = y[i] - (csum[i - half + period] - csum[i - half]) / period
        for p in range(period):
            buf = np.empty(m)
            c = 0
            for i in range(m):
                if (phase - m + i) % period == p and not math.isnan(det[i]):
                    buf[c] = det[i]
                    c += 1
            if c > 0:
                season[p] = np.median(buf[:c])
        season -= season.mean()
    d = np.empty(m)
    for i in range(m):
        d[i] = y[i] - season[(phase - m + i) % period]
    lw = min(level_window, m)
    level = np.median(d[m - lw :])
    ahead = 0.5 * (lw + 1)
    slope = 0.0
    if trend and m >= 4:
        # Median of the slopes between values half the history apart: the values after a
        # recent level shift straddle few of these pairs, so the trend does not absorb it.
        h = m // 2
        pairs = (d[h:] - d[: m - h]) / h
        slope = np.median(pairs)
    return level + slope * ahead + season[phase % period]


@njit(cache=True)
def _ordered(ring, count, head):  # type: ignore[no-untyped-def]
    size = ring.size
    out = np.empty(count)
    start = (head - count) % size
    for j in range(count):
        out[j] = ring[(start + j) % size]
    return out


@njit(cache=True)
def seasonal_residual(  # type: ignore[no-untyped-def]
    values,
    scalars,
    ring,
    resid,
    period,
    level_window,
    trend,
    warm_start,
    min_residuals,
    k,
    h,
    clip,
    max_phi,
    reset,
):
    size = ring.size
    out = np.empty(values.size, dtype=np.int64)
    found = 0
    for i in range(values.size):
        if scalars[7] != 0.0 and reset:
            scalars[:] = 0.0
        scalars[7] = 0.0
        x = values[i]
        n = int(scalars[0])
        count = int(scalars[1])
        head = int(scalars[2])
        if count >= warm_start:
            y = _ordered(ring, count, head)
            e = x - _forecast(y, n % period, period, level_window, trend)
            rc = int(scalars[3])
            rh = int(scalars[4])
            if rc >= min_residuals:
                past = _ordered(resid, rc, rh)
                centre = np.median(past)
                scale = 1.4826 * np.median(np.abs(past - centre))
                if scale > 0.0:
                    # Autocorrelated residuals make a CUSUM wander: divide by the long-run
                    # standard deviation of an AR(1) with the residuals' lag-1 correlation.
                    u = np.empty(rc)
                    for j in range(rc):
                        u[j] = min(max((past[j] - centre) / scale, -clip), clip)
                    um = u.mean()
                    num = 0.0
                    den = 0.0
                    for j in range(rc):
                        den += (u[j] - um) ** 2
                        if j > 0:
                            num += (u[j] - um) * (u[j - 1] - um)
                    phi = num / den if den > 0.0 else 0.0
                    phi = min(max(phi, 0.0), max_phi)
                    z = min(max((e - centre) / scale, -clip), clip)
                    z /= math.sqrt((1.0 + phi) / (1.0 - phi))
                elif e == centre:
                    z = 0.0
                else:
                    z = clip if e > centre else -clip
                scalars[8] = z
                scalars[5] = max(0.0, scalars[5] + z - k)
                scalars[6] = max(0.0, scalars[6] - z - k)
                if scalars[5] > h or scalars[6] > h:
                    scalars[7] = 1.0
                    out[found] = i
                    found += 1
            resid[rh] = e
            scalars[4] = (rh + 1) % size
            scalars[3] = min(rc + 1, size)
        ring[head] = x
        scalars[2] = (head + 1) % size
        scalars[1] = min(count + 1, size)
        scalars[0] = n + 1
    return out[:found]
