"""Compiled sequential kernels for the detectors whose state does not reduce to a cumulative sum.

Imported lazily (it imports numba) by the detectors' ``update``/``update_many``. Each kernel
consumes an array of checked values, mutates the state arrays it is given in place and returns
the positions at which drift was signalled. A single ``update(x)`` runs the same kernel on a
one-element array, so the two paths cannot disagree. The arithmetic follows the published
algorithms in the operation order River uses, which is what makes detections match River's.

Kernels are compiled on first use and cached on disk (``cache=True``).
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from numba import njit

IntArray = npt.NDArray[np.int64]

# -- Page-Hinkley with forgetting (alpha < 1): a linear recurrence, run sequentially ------------


@njit(cache=True)
def page_hinkley(  # type: ignore[no-untyped-def]
    values, buf, min_instances, delta, threshold, alpha, mode, reset
):
    # buf: n, sum, inc, dec, min_inc, max_dec, drift
    out = np.empty(values.size, dtype=np.int64)
    found = 0
    n, total, inc, dec, min_inc, max_dec, drift = (
        buf[0],
        buf[1],
        buf[2],
        buf[3],
        buf[4],
        buf[5],
        buf[6] != 0,
    )
    for i in range(values.size):
        if drift and reset:
            n, total, inc, dec, min_inc, max_dec, drift = 0.0, 0.0, 0.0, 0.0, np.inf, -np.inf, False
        x = values[i]
        n += 1.0
        total = total + x
        dev = x - total / n
        inc = alpha * inc + (dev - delta)
        dec = alpha * dec + (dev + delta)
        min_inc = min(min_inc, inc)
        max_dec = max(max_dec, dec)
        if n >= min_instances:
            up = inc - min_inc > threshold
            down = max_dec - dec > threshold
            drift = up if mode == 0 else (down if mode == 1 else (up or down))
            if drift:
                out[found] = i
                found += 1
    buf[0], buf[1], buf[2], buf[3], buf[4], buf[5], buf[6] = (
        n,
        total,
        inc,
        dec,
        min_inc,
        max_dec,
        drift,
    )
    return out[:found]


# -- ADWIN: exponential histogram of buckets (Bifet & Gavaldà, 2007) ---------------------------
# scal: total, variance, width, tick, n_levels, drift
# counts[level]: entries at that level (each summarises 2**level values), oldest first
# totals[level, j], variances[level, j]: sum and sum of squared deviations of entry j


@njit(cache=True)
def _adwin_insert(scal, counts, totals, variances, value, max_buckets):  # type: ignore[no-untyped-def]
    c = counts[0]
    totals[0, c] = value
    variances[0, c] = 0.0
    counts[0] = c + 1
    if scal[4] == 0.0:
        scal[4] = 1.0
    width = scal[2] + 1.0
    inc_var = 0.0
    if width > 1.0:
        dv = value - scal[0] / (width - 1.0)
        inc_var = (width - 1.0) * dv * dv / width
    scal[1] += inc_var
    scal[0] += value
    scal[2] = width
    # Merge the two oldest entries of a full level into one entry of the next level.
    idx = 0
    while counts[idx] == max_buckets + 1:
        n1 = float(1 << idx)
        t0, t1 = totals[idx, 0], totals[idx, 1]
        v0, v1 = variances[idx, 0], variances[idx, 1]
        mu1 = t0 / n1
        mu2 = t1 / n1
        temp = n1 * 0.5 * (mu1 - mu2) * (mu1 - mu2)
        if idx + 1 >= scal[4]:
            scal[4] = idx + 2.0
        c1 = counts[idx + 1]
        totals[idx + 1, c1] = t0 + t1
        variances[idx + 1, c1] = v0 + v1 + temp
        counts[idx + 1] = c1 + 1
        k = counts[idx]
        for j in range(2, k):
            totals[idx, j - 2] = totals[idx, j]
            variances[idx, j - 2] = variances[idx, j]
        for j in range(k - 2, k):
            totals[idx, j] = 0.0
            variances[idx, j] = 0.0
        counts[idx] = k - 2
        if counts[idx + 1] <= max_buckets:
            break
        idx += 1


@njit(cache=True)
def _adwin_delete_oldest(scal, counts, totals, variances):  # type: ignore[no-untyped-def]
    last = int(scal[4]) - 1
    n = float(1 << last)
    u = totals[last, 0]
    v = variances[last, 0]
    mu = u / n
    scal[2] -= n
    scal[0] -= u
    width = scal[2]
    mu_window = scal[0] / width
    scal[1] -= v + n * width * (mu - mu_window) * (mu - mu_window) / (n + width)
    k = counts[last]
    for j in range(1, k):
        totals[last, j - 1] = totals[last, j]
        variances[last, j - 1] = variances[last, j]
    totals[last, k - 1] = 0.0
    variances[last, k - 1] = 0.0
    counts[last] = k - 1
    if k - 1 == 0:
        scal[4] -= 1.0


@njit(cache=True)
def _adwin_detect(scal, counts, totals, variances, delta, clock, min_len, grace):  # type: ignore[no-untyped-def]
    changed = False
    scal[3] += 1.0
    if not scal[2] > grace or int(scal[3]) % clock != 0:
        return False
    reduce = True
    while reduce:
        reduce = False
        n0, n1, u0, u1 = 0.0, scal[2], 0.0, scal[0]
        levels = int(scal[4])
        stop = False
        # Width and variance are fixed during one scan: compute the bound's constants once.
        width = scal[2]
        dprime = math.log(2.0 * math.log(width) / delta)
        var_w = scal[1] / width
        for idx in range(levels - 1, -1, -1):
            if stop:
                break
            size = float(1 << idx)
            k_count = counts[idx]
            for k in range(k_count):
                n0 += size
                n1 -= size
                t = totals[idx, k]
                u0 += t
                u1 -= t
                if idx == 0 and k == k_count - 1:
                    stop = True
                    break
                if n1 >= min_len and n0 >= min_len:
                    dmean = (u0 / n0) - (u1 / n1)
                    m_recip = 1.0 / (n0 - min_len + 1.0) + 1.0 / (n1 - min_len + 1.0)
                    eps = math.sqrt(2.0 * m_recip * var_w * dprime) + 2.0 / 3.0 * dprime * m_recip
                    if abs(dmean) > eps:
                        reduce = True
                        changed = True
                        if width > 0.0:
                            _adwin_delete_oldest(scal, counts, totals, variances)
                            stop = True
                            break
    return changed


@njit(cache=True)
def adwin(  # type: ignore[no-untyped-def]
    values, scal, counts, totals, variances, delta, clock, max_buckets, min_len, grace, reset
):
    out = np.empty(values.size, dtype=np.int64)
    found = 0
    for i in range(values.size):
        if scal[5] != 0.0 and reset:
            scal[:] = 0.0
            counts[:] = 0
            totals[:, :] = 0.0
            variances[:, :] = 0.0
        _adwin_insert(scal, counts, totals, variances, values[i], max_buckets)
        drift = _adwin_detect(scal, counts, totals, variances, delta, clock, min_len, grace)
        scal[5] = 1.0 if drift else 0.0
        if drift:
            out[found] = i
            found += 1
    return out[:found]


# -- KSWIN: Kolmogorov-Smirnov test between a random sample of the older part of a sliding
# window and its most recent values (Raab, Heusinger & Schleif, 2020) -------------------------


@njit(cache=True)
def _mix(z):  # type: ignore[no-untyped-def]
    # splitmix64 finaliser: a counter-based generator, so the sample drawn for test number t
    # depends only on (seed, t) and the state to save is a counter, not a generator's guts.
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


@njit(cache=True)
def _uniform(seed, t, j):  # type: ignore[no-untyped-def]
    # Uniform in [0, 1) for draw j of test t: two rounds of mixing over (seed, t, j).
    key = _mix(np.uint64(seed) + np.uint64(0x9E3779B97F4A7C15) * (np.uint64(t) + np.uint64(1)))
    z = _mix(key + np.uint64(0xD1B54A32D192ED03) * (np.uint64(j) + np.uint64(1)))
    return float(z >> np.uint64(11)) * (1.0 / 9007199254740992.0)


@njit(cache=True)
def ks_count_statistic(a, b):  # type: ignore[no-untyped-def]
    """Largest gap between the counts of two sorted samples of equal size below any value."""
    n = a.size
    i = 0
    j = 0
    best = 0
    while i < n and j < n:
        v = min(a[i], b[j])
        while i < n and a[i] <= v:
            i += 1
        while j < n and b[j] <= v:
            j += 1
        best = max(best, abs(i - j))
    return best


@njit(cache=True)
def _insert_sorted(arr, n, x):  # type: ignore[no-untyped-def]
    # Insert x into the sorted prefix arr[:n] (insertion sort step; fast for short arrays).
    j = n
    while j > 0 and arr[j - 1] > x:
        arr[j] = arr[j - 1]
        j -= 1
    arr[j] = x


@njit(cache=True)
def _remove_sorted(arr, n, x):  # type: ignore[no-untyped-def]
    # Remove one element equal to x from the sorted prefix arr[:n].
    lo, hi = 0, n - 1
    while lo < hi:
        mid = (lo + hi) // 2
        if arr[mid] < x:
            lo = mid + 1
        else:
            hi = mid
    for j in range(lo, n - 1):
        arr[j] = arr[j + 1]


@njit(cache=True)
def _build_older(ring, head, pool, window_size, older, rank):  # type: ignore[no-untyped-def]
    # Sort the ring slots of the oldest `pool` values by value (after a restart, a shrink or at
    # the start of a call; then maintained incrementally).
    slots = np.empty(pool, dtype=np.int64)
    vals = np.empty(pool, dtype=np.float64)
    for j in range(pool):
        slots[j] = (head + j) % window_size
        vals[j] = ring[slots[j]]
    order = np.argsort(vals)
    for j in range(pool):
        older[j] = slots[order[j]]
        rank[older[j]] = j


@njit(cache=True)
def _slide_older(ring, head, pool, window_size, older, rank):  # type: ignore[no-untyped-def]
    # The window is about to slide by one: the value in slot `head` leaves the older part and
    # the oldest recent value (slot head + pool) joins it. Keep `older` sorted, `rank` in step.
    for j in range(rank[head], pool - 1):
        older[j] = older[j + 1]
        rank[older[j]] = j
    joining = (head + pool) % window_size
    v = ring[joining]
    k = pool - 1
    while k > 0 and ring[older[k - 1]] > v:
        older[k] = older[k - 1]
        rank[older[k]] = k
        k -= 1
    older[k] = joining
    rank[joining] = k


@njit(cache=True)
def kswin(  # type: ignore[no-untyped-def]
    values, ring, scal, seed, window_size, stat_size, k_crit, reset, samples
):
    # scal: count, head (index of the oldest value in ring), tests, drift
    out = np.empty(values.size, dtype=np.int64)
    found = 0
    pool = window_size - stat_size
    a = np.empty(stat_size + 1, dtype=np.float64)
    count, head, tests, drift = int(scal[0]), int(scal[1]), int(scal[2]), scal[3] != 0.0
    # The most recent stat_size values, kept sorted as the window slides; the older values as
    # ring slots sorted by value (with each slot's rank), so that a random sample of them comes
    # out sorted by walking a membership mask in rank order, without sorting.
    recent = np.empty(stat_size, dtype=np.float64)
    n_recent = min(count, stat_size)
    for j in range(n_recent):
        recent[j] = ring[(head + count - n_recent + j) % window_size]
    recent[:n_recent] = np.sort(recent[:n_recent])
    older = np.empty(pool, dtype=np.int64)
    rank = np.zeros(window_size, dtype=np.int64)
    mask = np.zeros(pool, dtype=np.int64)
    older_ok = False
    given = 0
    for i in range(values.size):
        if drift and reset:
            count, head, tests, drift, n_recent, older_ok = 0, 0, 0, False, 0, False
        x = values[i]
        if count >= stat_size:
            _remove_sorted(recent, n_recent, ring[(head + count - stat_size) % window_size])
            n_recent -= 1
        _insert_sorted(recent, n_recent, x)
        n_recent += 1
        if count < window_size:
            ring[(head + count) % window_size] = x
            count += 1
        else:
            if older_ok:
                _slide_older(ring, head, pool, window_size, older, rank)
            ring[head] = x
            head = (head + 1) % window_size
        drift = False
        if count < window_size:
            continue
        if not older_ok:
            _build_older(ring, head, pool, window_size, older, rank)
            older_ok = True
        if samples.shape[0] > 0:
            for j in range(stat_size):
                mask[rank[(head + samples[given, j]) % window_size]] = 1
            given += 1
        else:
            # Floyd's algorithm: a uniformly random subset of stat_size of the pool positions.
            for j in range(pool - stat_size, pool):
                t = head + int(_uniform(seed, tests, j) * (j + 1))
                r = rank[t - window_size if t >= window_size else t]
                if mask[r] != 0:
                    jj = head + j
                    mask[rank[jj - window_size if jj >= window_size else jj]] = 1
                else:
                    mask[r] = 1
        tests += 1
        k = 0
        for r in range(pool):
            a[k] = ring[older[r]]
            k += mask[r]
            mask[r] = 0
        if ks_count_statistic(a[:stat_size], recent) >= k_crit:
            drift = True
            out[found] = i
            found += 1
            if not reset:
                # The paper's rule: keep only the most recent values as the new window.
                head = (head + pool) % window_size
                count = stat_size
                older_ok = False
    scal[0], scal[1], scal[2], scal[3] = count, head, tests, drift
    return out[:found]


# -- EDDM: distances between errors (Baena-García et al., 2006) --------------------------------


@njit(cache=True)
def eddm(values, scal, warm_start, alpha, beta, reset):  # type: ignore[no-untyped-def]
    # scal: n, last_error, n_errors, mean distance, sum of squared deviations, p2s_max,
    #       drift, warning
    out = np.empty(values.size, dtype=np.int64)
    found = 0
    n, last, errs, mean, ss, top = scal[0], scal[1], scal[2], scal[3], scal[4], scal[5]
    drift, warning = scal[6] != 0.0, scal[7] != 0.0
    for i in range(values.size):
        if drift:
            if reset:
                n, last, errs, mean, ss, top = 0.0, 0.0, 0.0, 0.0, 0.0, -1.0
                warning = False
            # Without a reset the detector carries on and re-arms for the next error.
            drift = False
        n += 1.0
        if values[i] == 1.0:
            errs += 1.0
            dist = n - last
            old = mean
            mean += (1.0 / errs) * (dist - mean)
            ss += 1.0 * (dist - old) * (dist - mean)
            if n > warm_start:
                sd = (ss / (errs - 1.0)) ** 0.5 if errs > 1.0 else 0.0
                p2s = mean + 2.0 * sd
                if p2s > top:
                    top = p2s
                elif errs > warm_start:
                    level = p2s / top
                    if level < beta:
                        drift = True
                    elif level < alpha:
                        warning = True
                    else:
                        warning = False
            last = n
        if drift:
            out[found] = i
            found += 1
    scal[0], scal[1], scal[2], scal[3], scal[4], scal[5] = n, last, errs, mean, ss, top
    scal[6], scal[7] = drift, warning
    return out[:found]


# -- HDDM_A: Hoeffding bounds on moving averages (Frías-Blanco et al., 2015) ---------------------


@njit(cache=True)
def _hoeffding(n, confidence):  # type: ignore[no-untyped-def]
    return math.sqrt(1.0 / (2.0 * n) * math.log(1.0 / confidence))


@njit(cache=True)
def _mean_moved(n_all, mean_all, n_cut, mean_cut, confidence, up):  # type: ignore[no-untyped-def]
    if n_cut == n_all:
        return False
    m = (n_all - n_cut) / n_cut * (1.0 / n_all)
    eps = math.sqrt(m / 2.0 * math.log(2.0 / confidence))
    if up:
        return mean_all - mean_cut >= eps
    return mean_cut - mean_all >= eps


@njit(cache=True)
def hddm_a(values, scal, drift_conf, warn_conf, two_sided, reset):  # type: ignore[no-untyped-def]
    # scal: z_n, z_mean, min_n, min_mean, max_n, max_mean, drift, warning
    out = np.empty(values.size, dtype=np.int64)
    found = 0
    zn, zm, an, am, bn, bm = scal[0], scal[1], scal[2], scal[3], scal[4], scal[5]
    drift, warning = scal[6] != 0.0, scal[7] != 0.0
    for i in range(values.size):
        if drift and reset:
            zn, zm, an, am, bn, bm = 0.0, 0.0, 0.0, 0.0, 0.0, 0.0
            drift, warning = False, False
        zn += 1.0
        zm += (1.0 / zn) * (values[i] - zm)
        if an == 0.0:
            an, am = zn, zm
        if bn == 0.0:
            bn, bm = zn, zm
        eps_z = _hoeffding(zn, drift_conf)
        if am + _hoeffding(an, drift_conf) >= zm + eps_z:
            an, am = zn, zm
        if bm - _hoeffding(bn, drift_conf) <= zm - eps_z:
            bn, bm = zn, zm
        if _mean_moved(zn, zm, an, am, drift_conf, True):
            warning, drift = False, True
        elif _mean_moved(zn, zm, an, am, warn_conf, True):
            warning, drift = True, False
        else:
            warning, drift = False, False
        if two_sided:
            if _mean_moved(zn, zm, bn, bm, drift_conf, False):
                drift = True
            elif _mean_moved(zn, zm, bn, bm, warn_conf, False):
                warning = True
        if drift:
            out[found] = i
            found += 1
    scal[0], scal[1], scal[2], scal[3], scal[4], scal[5] = zn, zm, an, am, bn, bm
    scal[6], scal[7] = drift, warning
    return out[:found]


# -- HDDM_W: McDiarmid bounds on exponentially weighted averages -------------------------------
# Each sample summary is (ewma, initialised, independent-bound condition).


@njit(cache=True)
def _mcdiarmid(ibc, confidence):  # type: ignore[no-untyped-def]
    return math.sqrt(ibc * math.log(1.0 / confidence) / 2.0)


@njit(cache=True)
def _summary_update(s, j, x, lam, lam_sq, c_lam_sq):  # type: ignore[no-untyped-def]
    if s[j + 1] == 0.0:
        s[j] = x
    else:
        s[j] = lam * x + (1.0 - lam) * s[j]
    s[j + 1] = 1.0
    s[j + 2] = lam_sq + c_lam_sq * s[j + 2]


@njit(cache=True)
def _changed(s, first, second, confidence):  # type: ignore[no-untyped-def]
    if s[first + 1] == 0.0 or s[second + 1] == 0.0:
        return False
    bound = _mcdiarmid(s[first + 2] + s[second + 2], confidence)
    return s[second] - s[first] > bound


@njit(cache=True)
def _hddm_w_reset(s):  # type: ignore[no-untyped-def]
    for j in range(0, 15, 3):
        s[j], s[j + 1], s[j + 2] = 0.0, 0.0, 1.0
    s[15], s[16], s[17], s[18] = np.inf, -np.inf, 0.0, 0.0


@njit(cache=True)
def hddm_w(values, s, drift_conf, warn_conf, lam, two_sided, reset):  # type: ignore[no-untyped-def]
    # s: total[0:3], s1_incr[3:6], s2_incr[6:9], s1_decr[9:12], s2_decr[12:15],
    #    incr_cut, decr_cut, drift, warning
    out = np.empty(values.size, dtype=np.int64)
    found = 0
    lam_sq = lam * lam
    c_lam_sq = (1.0 - lam) ** 2
    for i in range(values.size):
        if s[17] != 0.0 and reset:
            _hddm_w_reset(s)
        x = values[i]
        _summary_update(s, 0, x, lam, lam_sq, c_lam_sq)
        eps = _mcdiarmid(s[2], drift_conf)
        if s[0] + eps < s[15]:
            s[15] = s[0] + eps
            s[3], s[4], s[5] = s[0], s[1], s[2]
            s[6], s[7], s[8] = 0.0, 0.0, 1.0
        else:
            _summary_update(s, 6, x, lam, lam_sq, c_lam_sq)
        if _changed(s, 3, 6, drift_conf):
            warning, drift = False, True
        elif _changed(s, 3, 6, warn_conf):
            warning, drift = True, False
        else:
            warning, drift = False, False
        eps = _mcdiarmid(s[2], drift_conf)
        if s[0] - eps > s[16]:
            s[16] = s[0] - eps
            s[9], s[10], s[11] = s[0], s[1], s[2]
            s[12], s[13], s[14] = 0.0, 0.0, 1.0
        else:
            _summary_update(s, 12, x, lam, lam_sq, c_lam_sq)
        if two_sided:
            if _changed(s, 12, 9, drift_conf):
                drift = True
            elif _changed(s, 12, 9, warn_conf):
                warning = True
        s[17] = 1.0 if drift else 0.0
        s[18] = 1.0 if warning else 0.0
        if drift:
            out[found] = i
            found += 1
    return out[:found]
