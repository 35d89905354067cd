/* Sequential kernels of the streaming detectors, compiled ahead of time.
 *
 * The same algorithms as watchkeeper/detectors/_kernels.py (the numba fallback), with the same
 * floating-point operations in the same order, so the two give identical detections (tested in
 * tests/detectors). Built by setup.py as an optional extension: when it is missing (no
 * compiler at install time), the detectors use the numba kernels instead.
 *
 * Plain C and the buffer protocol only: no numpy headers, so building needs nothing but
 * Python's own headers. Each kernel takes the values, the state arrays (mutated in place) and an
 * int64 output array as long as the values; it writes the positions of the detections there and
 * returns how many there are. The state is checked before use, so a corrupted saved state
 * raises ValueError rather than writing outside an array.
 *
 * Compile without floating-point contraction (-ffp-contract=off): a fused multiply-add would
 * round differently from the numba kernels and from River.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* -- buffers ------------------------------------------------------------------------------ */

/* Get a C-contiguous buffer of 8-byte items of kind 'd' (float64) or 'q' (int64). */
static int get_buffer(PyObject *obj, Py_buffer *view, char kind, int writable, int ndim,
                      const char *name) {
    int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(obj, view, flags) != 0) {
        PyErr_Format(PyExc_ValueError, "%s must be a C-contiguous%s array", name,
                     writable ? " writable" : "");
        return -1;
    }
    const char *fmt = view->format ? view->format : "B";
    while (*fmt == '@' || *fmt == '=' || *fmt == '<') fmt++;
    int ok = view->itemsize == 8 && fmt[0] != '\0' && fmt[1] == '\0' &&
             (kind == 'd' ? fmt[0] == 'd' : (fmt[0] == 'q' || fmt[0] == 'l'));
    if (!ok || view->ndim != ndim) {
        PyErr_Format(PyExc_ValueError, "%s must be a %d-D %s array", name, ndim,
                     kind == 'd' ? "float64" : "int64");
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

static Py_ssize_t length(const Py_buffer *view) { return view->len / view->itemsize; }

static int check_out(const Py_buffer *out, const Py_buffer *values) {
    if (length(out) < length(values)) {
        PyErr_SetString(PyExc_ValueError, "out must be at least as long as values");
        return -1;
    }
    return 0;
}

/* -- Page-Hinkley with forgetting ----------------------------------------------------------- */

static PyObject *page_hinkley(PyObject *self, PyObject *args) {
    PyObject *o_values, *o_buf, *o_out;
    long long min_instances;
    double delta, threshold, alpha;
    int mode, reset;
    if (!PyArg_ParseTuple(args, "OOOLdddip", &o_values, &o_buf, &o_out, &min_instances, &delta,
                          &threshold, &alpha, &mode, &reset))
        return NULL;
    Py_buffer bv, bb, bo;
    if (get_buffer(o_values, &bv, 'd', 0, 1, "values")) return NULL;
    if (get_buffer(o_buf, &bb, 'd', 1, 1, "buf")) { PyBuffer_Release(&bv); return NULL; }
    if (get_buffer(o_out, &bo, 'q', 1, 1, "out")) {
        PyBuffer_Release(&bv); PyBuffer_Release(&bb); return NULL;
    }
    Py_ssize_t found = 0;
    if (length(&bb) < 7) {
        PyErr_SetString(PyExc_ValueError, "buf must hold 7 values");
        found = -1;
    } else if (check_out(&bo, &bv) == 0) {
        const double *values = (const double *)bv.buf;
        double *buf = (double *)bb.buf;
        int64_t *out = (int64_t *)bo.buf;
        Py_ssize_t size = length(&bv);
        double n = buf[0], total = buf[1], inc = buf[2], dec = buf[3], min_inc = buf[4],
               max_dec = buf[5];
        int drift = buf[6] != 0.0;
        double min_n = (double)min_instances;
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t i = 0; i < size; i++) {
            if (drift && reset) {
                n = 0.0; total = 0.0; inc = 0.0; dec = 0.0;
                min_inc = INFINITY; max_dec = -INFINITY; drift = 0;
            }
            double x = values[i];
            n += 1.0;
            total = total + x;
            double dev = x - total / n;
            inc = alpha * inc + (dev - delta);
            dec = alpha * dec + (dev + delta);
            if (inc < min_inc) min_inc = inc;
            if (dec > max_dec) max_dec = dec;
            if (n >= min_n) {
                int up = inc - min_inc > threshold;
                int down = max_dec - dec > threshold;
                drift = mode == 0 ? up : (mode == 1 ? down : (up || down));
                if (drift) out[found++] = i;
            }
        }
        Py_END_ALLOW_THREADS
        buf[0] = n; buf[1] = total; buf[2] = inc; buf[3] = dec;
        buf[4] = min_inc; buf[5] = max_dec; buf[6] = drift ? 1.0 : 0.0;
    } else {
        found = -1;
    }
    PyBuffer_Release(&bv); PyBuffer_Release(&bb); PyBuffer_Release(&bo);
    return found < 0 ? NULL : PyLong_FromSsize_t(found);
}

/* -- ADWIN ---------------------------------------------------------------------------------- */
/* scal: total, variance, width, tick, n_levels, drift. counts[level]: entries at that level
 * (each summarises 2**level values), oldest first; totals/variances[level, j] (row-major). */

typedef struct {
    double *scal;
    int64_t *counts;
    double *totals;
    double *variances;
    Py_ssize_t levels; /* rows */
    Py_ssize_t width;  /* columns: max_buckets + 1 */
} Adwin;

#define AT(a, level, j) ((a)->totals[(level) * (a)->width + (j)])
#define VAR(a, level, j) ((a)->variances[(level) * (a)->width + (j)])

/* Returns -1 when a merge would need a level beyond the last (cannot happen below 2**63
 * values, but a corrupted state could ask for it). */
static int adwin_insert(Adwin *a, double value, int64_t max_buckets) {
    int64_t c = a->counts[0];
    AT(a, 0, c) = value;
    VAR(a, 0, c) = 0.0;
    a->counts[0] = c + 1;
    double *scal = a->scal;
    if (scal[4] == 0.0) scal[4] = 1.0;
    double width = scal[2] + 1.0;
    double inc_var = 0.0;
    if (width > 1.0) {
        double dv = value - scal[0] / (width - 1.0);
        inc_var = (width - 1.0) * dv * dv / width;
    }
    scal[1] += inc_var;
    scal[0] += value;
    scal[2] = width;
    Py_ssize_t idx = 0;
    while (a->counts[idx] == max_buckets + 1) {
        if (idx + 1 >= a->levels) return -1;
        double n1 = ldexp(1.0, (int)idx);
        double t0 = AT(a, idx, 0), t1 = AT(a, idx, 1);
        double v0 = VAR(a, idx, 0), v1 = VAR(a, idx, 1);
        double mu1 = t0 / n1;
        double mu2 = t1 / n1;
        double temp = n1 * 0.5 * (mu1 - mu2) * (mu1 - mu2);
        if ((double)(idx + 1) >= scal[4]) scal[4] = (double)idx + 2.0;
        int64_t c1 = a->counts[idx + 1];
        AT(a, idx + 1, c1) = t0 + t1;
        VAR(a, idx + 1, c1) = v0 + v1 + temp;
        a->counts[idx + 1] = c1 + 1;
        int64_t k = a->counts[idx];
        for (int64_t j = 2; j < k; j++) {
            AT(a, idx, j - 2) = AT(a, idx, j);
            VAR(a, idx, j - 2) = VAR(a, idx, j);
        }
        for (int64_t j = k - 2; j < k; j++) {
            AT(a, idx, j) = 0.0;
            VAR(a, idx, j) = 0.0;
        }
        a->counts[idx] = k - 2;
        if (a->counts[idx + 1] <= max_buckets) break;
        idx += 1;
    }
    return 0;
}

static int adwin_delete_oldest(Adwin *a) {
    double *scal = a->scal;
    Py_ssize_t last = (Py_ssize_t)scal[4] - 1;
    if (last < 0 || last >= a->levels || a->counts[last] < 1) return -1;
    double n = ldexp(1.0, (int)last);
    double u = AT(a, last, 0);
    double v = VAR(a, last, 0);
    double mu = u / n;
    scal[2] -= n;
    scal[0] -= u;
    double width = scal[2];
    double mu_window = scal[0] / width;
    scal[1] -= v + n * width * (mu - mu_window) * (mu - mu_window) / (n + width);
    int64_t k = a->counts[last];
    for (int64_t j = 1; j < k; j++) {
        AT(a, last, j - 1) = AT(a, last, j);
        VAR(a, last, j - 1) = VAR(a, last, j);
    }
    AT(a, last, k - 1) = 0.0;
    VAR(a, last, k - 1) = 0.0;
    a->counts[last] = k - 1;
    if (k - 1 == 0) scal[4] -= 1.0;
    return 0;
}

/* 1 on a change, 0 without, -1 on a corrupted state. */
static int adwin_detect(Adwin *a, double delta, int64_t clock, double min_len, double grace) {
    double *scal = a->scal;
    int changed = 0;
    scal[3] += 1.0;
    if (!(scal[2] > grace) || ((int64_t)scal[3]) % clock != 0) return 0;
    int reduce = 1;
    while (reduce) {
        reduce = 0;
        double n0 = 0.0, n1 = scal[2], u0 = 0.0, u1 = scal[0];
        Py_ssize_t levels = (Py_ssize_t)scal[4];
        if (levels > a->levels) return -1;
        int stop = 0;
        double width = scal[2];
        double dprime = log(2.0 * log(width) / delta);
        double var_w = scal[1] / width;
        for (Py_ssize_t idx = levels - 1; idx >= 0; idx--) {
            if (stop) break;
            double size = ldexp(1.0, (int)idx);
            int64_t k_count = a->counts[idx];
            for (int64_t k = 0; k < k_count; k++) {
                n0 += size;
                n1 -= size;
                double t = AT(a, idx, k);
                u0 += t;
                u1 -= t;
                if (idx == 0 && k == k_count - 1) {
                    stop = 1;
                    break;
                }
                if (n1 >= min_len && n0 >= min_len) {
                    double dmean = (u0 / n0) - (u1 / n1);
                    double m_recip =
                        1.0 / (n0 - min_len + 1.0) + 1.0 / (n1 - min_len + 1.0);
                    double eps = sqrt(2.0 * m_recip * var_w * dprime) +
                                 2.0 / 3.0 * dprime * m_recip;
                    if (fabs(dmean) > eps) {
                        reduce = 1;
                        changed = 1;
                        if (width > 0.0) {
                            if (adwin_delete_oldest(a) != 0) return -1;
                            stop = 1;
                            break;
                        }
                    }
                }
            }
        }
    }
    return changed;
}

static PyObject *adwin(PyObject *self, PyObject *args) {
    PyObject *o_values, *o_scal, *o_counts, *o_totals, *o_vars, *o_out;
    double delta, min_len, grace;
    long long clock, max_buckets;
    int reset;
    if (!PyArg_ParseTuple(args, "OOOOOOdLLddp", &o_values, &o_scal, &o_counts, &o_totals,
                          &o_vars, &o_out, &delta, &clock, &max_buckets, &min_len, &grace,
                          &reset))
        return NULL;
    Py_buffer bv, bs, bc, bt, bw, bo;
    int got = 0;
    Py_ssize_t found = -1;
    if (get_buffer(o_values, &bv, 'd', 0, 1, "values")) goto done;
    got = 1;
    if (get_buffer(o_scal, &bs, 'd', 1, 1, "scalars")) goto done;
    got = 2;
    if (get_buffer(o_counts, &bc, 'q', 1, 1, "counts")) goto done;
    got = 3;
    if (get_buffer(o_totals, &bt, 'd', 1, 2, "totals")) goto done;
    got = 4;
    if (get_buffer(o_vars, &bw, 'd', 1, 2, "variances")) goto done;
    got = 5;
    if (get_buffer(o_out, &bo, 'q', 1, 1, "out")) goto done;
    got = 6;
    if (check_out(&bo, &bv)) goto done;
    Adwin a = {(double *)bs.buf, (int64_t *)bc.buf, (double *)bt.buf, (double *)bw.buf,
               bt.shape[0], bt.shape[1]};
    /* The state may come from a saved dict: check every index the kernel will follow. */
    int ok = length(&bs) >= 6 && clock >= 1 && max_buckets >= 1 &&
             a.width == max_buckets + 1 && bw.shape[0] == a.levels &&
             bw.shape[1] == a.width && length(&bc) == a.levels && a.levels >= 1 &&
             a.scal[4] >= 0.0 && a.scal[4] <= (double)a.levels && a.scal[3] >= 0.0 &&
             a.scal[3] < 9.0e15;
    for (Py_ssize_t l = 0; ok && l < a.levels; l++)
        ok = a.counts[l] >= 0 && a.counts[l] <= max_buckets;
    if (!ok) {
        PyErr_SetString(PyExc_ValueError, "ADWIN state is inconsistent with its parameters");
        goto done;
    }
    const double *values = (const double *)bv.buf;
    int64_t *out = (int64_t *)bo.buf;
    Py_ssize_t size = length(&bv);
    int bad = 0;
    found = 0;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < size; i++) {
        if (a.scal[5] != 0.0 && reset) {
            memset(a.scal, 0, 6 * sizeof(double));
            memset(a.counts, 0, a.levels * sizeof(int64_t));
            memset(a.totals, 0, a.levels * a.width * sizeof(double));
            memset(a.variances, 0, a.levels * a.width * sizeof(double));
        }
        if (adwin_insert(&a, values[i], max_buckets) != 0) { bad = 1; break; }
        int drift = adwin_detect(&a, delta, clock, min_len, grace);
        if (drift < 0) { bad = 1; break; }
        a.scal[5] = drift ? 1.0 : 0.0;
        if (drift) out[found++] = i;
    }
    Py_END_ALLOW_THREADS
    if (bad) {
        PyErr_SetString(PyExc_ValueError, "ADWIN state is inconsistent with its parameters");
        found = -1;
    }
done:
    if (got >= 1) PyBuffer_Release(&bv);
    if (got >= 2) PyBuffer_Release(&bs);
    if (got >= 3) PyBuffer_Release(&bc);
    if (got >= 4) PyBuffer_Release(&bt);
    if (got >= 5) PyBuffer_Release(&bw);
    if (got >= 6) PyBuffer_Release(&bo);
    return found < 0 ? NULL : PyLong_FromSsize_t(found);
}

/* -- KSWIN ---------------------------------------------------------------------------------- */

static uint64_t mix(uint64_t z) {
    /* splitmix64 finaliser (a counter-based generator: draw j of test t depends on seed, t, j) */
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

static double uniform(uint64_t seed, uint64_t t, uint64_t j) {
    uint64_t key = mix(seed + UINT64_C(0x9E3779B97F4A7C15) * (t + 1));
    uint64_t z = mix(key + UINT64_C(0xD1B54A32D192ED03) * (j + 1));
    return (double)(z >> 11) * (1.0 / 9007199254740992.0);
}

static int64_t ks_count_statistic(const double *a, const double *b, int64_t n) {
    int64_t i = 0, j = 0, best = 0;
    while (i < n && j < n) {
        double v = a[i] < b[j] ? a[i] : b[j];
        while (i < n && a[i] <= v) i++;
        while (j < n && b[j] <= v) j++;
        int64_t gap = i > j ? i - j : j - i;
        if (gap > best) best = gap;
    }
    return best;
}

static void insert_sorted(double *arr, int64_t n, double x) {
    int64_t j = n;
    while (j > 0 && arr[j - 1] > x) {
        arr[j] = arr[j - 1];
        j--;
    }
    arr[j] = x;
}

static void remove_sorted(double *arr, int64_t n, double x) {
    int64_t lo = 0, hi = n - 1;
    while (lo < hi) {
        int64_t mid = (lo + hi) / 2;
        if (arr[mid] < x) lo = mid + 1;
        else hi = mid;
    }
    for (int64_t j = lo; j < n - 1; j++) arr[j] = arr[j + 1];
}

static int compare_double(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

/* Sort order of (value, slot) pairs: by value, ties by slot. Ties may be ordered differently
 * from the numba kernel's argsort; the sample drawn is the same set of slots either way, so the
 * sorted sample values (all the test sees) are the same. */
typedef struct { double value; int64_t slot; } Keyed;

static int compare_keyed(const void *x, const void *y) {
    const Keyed *a = (const Keyed *)x, *b = (const Keyed *)y;
    if (a->value < b->value) return -1;
    if (a->value > b->value) return 1;
    return (a->slot > b->slot) - (a->slot < b->slot);
}

static void build_older(const double *ring, int64_t head, int64_t pool, int64_t window_size,
                        int64_t *older, int64_t *rank, Keyed *scratch) {
    for (int64_t j = 0; j < pool; j++) {
        scratch[j].slot = (head + j) % window_size;
        scratch[j].value = ring[scratch[j].slot];
    }
    qsort(scratch, (size_t)pool, sizeof(Keyed), compare_keyed);
    for (int64_t j = 0; j < pool; j++) {
        older[j] = scratch[j].slot;
        rank[older[j]] = j;
    }
}

static void slide_older(const double *ring, int64_t head, int64_t pool, int64_t window_size,
                        int64_t *older, int64_t *rank) {
    for (int64_t j = rank[head]; j < pool - 1; j++) {
        older[j] = older[j + 1];
        rank[older[j]] = j;
    }
    int64_t joining = (head + pool) % window_size;
    double v = ring[joining];
    int64_t k = pool - 1;
    while (k > 0 && ring[older[k - 1]] > v) {
        older[k] = older[k - 1];
        rank[older[k]] = k;
        k--;
    }
    older[k] = joining;
    rank[joining] = k;
}

static PyObject *kswin(PyObject *self, PyObject *args) {
    PyObject *o_values, *o_ring, *o_scal, *o_samples, *o_out;
    unsigned long long seed;
    long long window_size, stat_size, k_crit;
    int reset;
    if (!PyArg_ParseTuple(args, "OOOKLLLpOO", &o_values, &o_ring, &o_scal, &seed, &window_size,
                          &stat_size, &k_crit, &reset, &o_samples, &o_out))
        return NULL;
    Py_buffer bv, br, bs, bp, bo;
    int got = 0;
    Py_ssize_t found = -1;
    char *memory = NULL;
    if (get_buffer(o_values, &bv, 'd', 0, 1, "values")) goto done;
    got = 1;
    if (get_buffer(o_ring, &br, 'd', 1, 1, "ring")) goto done;
    got = 2;
    if (get_buffer(o_scal, &bs, 'd', 1, 1, "scalars")) goto done;
    got = 3;
    if (get_buffer(o_samples, &bp, 'q', 0, 2, "samples")) goto done;
    got = 4;
    if (get_buffer(o_out, &bo, 'q', 1, 1, "out")) goto done;
    got = 5;
    if (check_out(&bo, &bv)) goto done;
    double *ring = (double *)br.buf;
    double *scal = (double *)bs.buf;
    const int64_t *samples = (const int64_t *)bp.buf;
    Py_ssize_t n_samples = bp.shape[0];
    int64_t pool = window_size - stat_size;
    int ok = stat_size >= 1 && pool >= stat_size && length(&br) == window_size &&
             length(&bs) >= 4 && bp.shape[1] == stat_size && scal[0] >= 0.0 &&
             scal[0] <= (double)window_size && scal[1] >= 0.0 &&
             scal[1] < (double)window_size && scal[2] >= 0.0 && scal[2] < 9.0e15;
    for (Py_ssize_t j = 0; ok && j < n_samples * stat_size; j++)
        ok = samples[j] >= 0 && samples[j] < window_size;
    if (!ok) {
        PyErr_SetString(PyExc_ValueError, "KSWIN state is inconsistent with its parameters");
        goto done;
    }
    /* Scratch: a (stat_size + 1), recent (stat_size), older (pool), rank (window_size),
     * mask (pool), keyed (pool). */
    size_t bytes = sizeof(double) * (size_t)(2 * stat_size + 1) +
                   sizeof(int64_t) * (size_t)(2 * pool + window_size) +
                   sizeof(Keyed) * (size_t)pool;
    memory = (char *)calloc(1, bytes);
    if (memory == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    double *a = (double *)memory;
    double *recent = a + stat_size + 1;
    int64_t *older = (int64_t *)(recent + stat_size);
    int64_t *rank = older + pool;
    int64_t *mask = rank + window_size;
    Keyed *keyed = (Keyed *)(mask + pool);

    const double *values = (const double *)bv.buf;
    int64_t *out = (int64_t *)bo.buf;
    Py_ssize_t size = length(&bv);
    int64_t count = (int64_t)scal[0], head = (int64_t)scal[1], tests = (int64_t)scal[2];
    int drift = scal[3] != 0.0;
    int exhausted = 0;
    found = 0;
    Py_BEGIN_ALLOW_THREADS
    int64_t n_recent = count < stat_size ? count : stat_size;
    for (int64_t j = 0; j < n_recent; j++)
        recent[j] = ring[(head + count - n_recent + j) % window_size];
    qsort(recent, (size_t)n_recent, sizeof(double), compare_double);
    int older_ok = 0;
    Py_ssize_t given = 0;
    for (Py_ssize_t i = 0; i < size; i++) {
        if (drift && reset) {
            count = 0; head = 0; tests = 0; drift = 0; n_recent = 0; older_ok = 0;
        }
        double x = values[i];
        if (count >= stat_size) {
            remove_sorted(recent, n_recent, ring[(head + count - stat_size) % window_size]);
            n_recent--;
        }
        insert_sorted(recent, n_recent, x);
        n_recent++;
        if (count < window_size) {
            ring[(head + count) % window_size] = x;
            count++;
        } else {
            if (older_ok) slide_older(ring, head, pool, window_size, older, rank);
            ring[head] = x;
            head = (head + 1) % window_size;
        }
        drift = 0;
        if (count < window_size) continue;
        if (!older_ok) {
            build_older(ring, head, pool, window_size, older, rank, keyed);
            older_ok = 1;
        }
        if (n_samples > 0) {
            if (given >= n_samples) { exhausted = 1; break; }
            for (int64_t j = 0; j < stat_size; j++)
                mask[rank[(head + samples[given * stat_size + j]) % window_size]] = 1;
            given++;
        } else {
            /* Floyd's algorithm: a uniformly random subset of stat_size of the pool positions. */
            for (int64_t j = pool - stat_size; j < pool; j++) {
                int64_t t = head + (int64_t)(uniform(seed, (uint64_t)tests, (uint64_t)j) *
                                             (double)(j + 1));
                int64_t r = rank[t >= window_size ? t - window_size : t];
                if (mask[r] != 0) {
                    int64_t jj = head + j;
                    mask[rank[jj >= window_size ? jj - window_size : jj]] = 1;
                } else {
                    mask[r] = 1;
                }
            }
        }
        tests++;
        int64_t k = 0;
        for (int64_t r = 0; r < pool; r++) {
            a[k] = ring[older[r]];
            k += mask[r];
            mask[r] = 0;
        }
        if (ks_count_statistic(a, recent, stat_size) >= k_crit) {
            drift = 1;
            out[found++] = i;
            if (!reset) {
                /* The paper's rule: keep only the most recent values as the new window. */
                head = (head + pool) % window_size;
                count = stat_size;
                older_ok = 0;
            }
        }
    }
    Py_END_ALLOW_THREADS
    if (exhausted) {
        PyErr_SetString(PyExc_ValueError, "samples has fewer rows than the tests to run");
        found = -1;
    } else {
        scal[0] = (double)count; scal[1] = (double)head; scal[2] = (double)tests;
        scal[3] = drift ? 1.0 : 0.0;
    }
done:
    free(memory);
    if (got >= 1) PyBuffer_Release(&bv);
    if (got >= 2) PyBuffer_Release(&br);
    if (got >= 3) PyBuffer_Release(&bs);
    if (got >= 4) PyBuffer_Release(&bp);
    if (got >= 5) PyBuffer_Release(&bo);
    return found < 0 ? NULL : PyLong_FromSsize_t(found);
}

/* -- scalar-state kernels: EDDM, HDDM_A, HDDM_W ------------------------------------------- */

/* Parse (values, scalars, out) buffers for the kernels whose state is one float64 array. */
static int three_buffers(PyObject *ov, PyObject *os, PyObject *oo, Py_buffer *bv, Py_buffer *bs,
                         Py_buffer *bo, Py_ssize_t n_scalars) {
    if (get_buffer(ov, bv, 'd', 0, 1, "values")) return -1;
    if (get_buffer(os, bs, 'd', 1, 1, "scalars")) { PyBuffer_Release(bv); return -1; }
    if (get_buffer(oo, bo, 'q', 1, 1, "out")) {
        PyBuffer_Release(bv); PyBuffer_Release(bs); return -1;
    }
    if (length(bs) < n_scalars) {
        PyErr_Format(PyExc_ValueError, "scalars must hold %zd values", n_scalars);
    } else if (check_out(bo, bv) == 0) {
        return 0;
    }
    PyBuffer_Release(bv); PyBuffer_Release(bs); PyBuffer_Release(bo);
    return -1;
}

static void release3(Py_buffer *a, Py_buffer *b, Py_buffer *c) {
    PyBuffer_Release(a); PyBuffer_Release(b); PyBuffer_Release(c);
}

static PyObject *eddm(PyObject *self, PyObject *args) {
    PyObject *ov, *os, *oo;
    double warm_start, alpha, beta;
    int reset;
    if (!PyArg_ParseTuple(args, "OOOdddp", &ov, &os, &oo, &warm_start, &alpha, &beta, &reset))
        return NULL;
    Py_buffer bv, bs, bo;
    if (three_buffers(ov, os, oo, &bv, &bs, &bo, 8)) return NULL;
    const double *values = (const double *)bv.buf;
    double *scal = (double *)bs.buf;
    int64_t *out = (int64_t *)bo.buf;
    Py_ssize_t size = length(&bv), found = 0;
    double n = scal[0], last = scal[1], errs = scal[2], mean = scal[3], ss = scal[4],
           top = scal[5];
    int drift = scal[6] != 0.0, warning = scal[7] != 0.0;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < size; i++) {
        if (drift) {
            if (reset) {
                n = 0.0; last = 0.0; errs = 0.0; mean = 0.0; ss = 0.0; top = -1.0;
                warning = 0;
            }
            drift = 0;
        }
        n += 1.0;
        if (values[i] == 1.0) {
            errs += 1.0;
            double dist = n - last;
            double old = mean;
            mean += (1.0 / errs) * (dist - mean);
            ss += 1.0 * (dist - old) * (dist - mean);
            if (n > warm_start) {
                double sd = errs > 1.0 ? pow(ss / (errs - 1.0), 0.5) : 0.0;
                double p2s = mean + 2.0 * sd;
                if (p2s > top) {
                    top = p2s;
                } else if (errs > warm_start) {
                    double level = p2s / top;
                    if (level < beta) drift = 1;
                    else if (level < alpha) warning = 1;
                    else warning = 0;
                }
            }
            last = n;
        }
        if (drift) out[found++] = i;
    }
    Py_END_ALLOW_THREADS
    scal[0] = n; scal[1] = last; scal[2] = errs; scal[3] = mean; scal[4] = ss; scal[5] = top;
    scal[6] = drift ? 1.0 : 0.0; scal[7] = warning ? 1.0 : 0.0;
    release3(&bv, &bs, &bo);
    return PyLong_FromSsize_t(found);
}

static double hoeffding(double n, double confidence) {
    return sqrt(1.0 / (2.0 * n) * log(1.0 / confidence));
}

static int mean_moved(double n_all, double mean_all, double n_cut, double mean_cut,
                      double confidence, int up) {
    if (n_cut == n_all) return 0;
    double m = (n_all - n_cut) / n_cut * (1.0 / n_all);
    double eps = sqrt(m / 2.0 * log(2.0 / confidence));
    if (up) return mean_all - mean_cut >= eps;
    return mean_cut - mean_all >= eps;
}

static PyObject *hddm_a(PyObject *self, PyObject *args) {
    PyObject *ov, *os, *oo;
    double drift_conf, warn_conf;
    int two_sided, reset;
    if (!PyArg_ParseTuple(args, "OOOddpp", &ov, &os, &oo, &drift_conf, &warn_conf, &two_sided,
                          &reset))
        return NULL;
    Py_buffer bv, bs, bo;
    if (three_buffers(ov, os, oo, &bv, &bs, &bo, 8)) return NULL;
    const double *values = (const double *)bv.buf;
    double *scal = (double *)bs.buf;
    int64_t *out = (int64_t *)bo.buf;
    Py_ssize_t size = length(&bv), found = 0;
    double zn = scal[0], zm = scal[1], an = scal[2], am = scal[3], bn = scal[4], bm = scal[5];
    int drift = scal[6] != 0.0, warning = scal[7] != 0.0;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < size; i++) {
        if (drift && reset) {
            zn = 0.0; zm = 0.0; an = 0.0; am = 0.0; bn = 0.0; bm = 0.0;
            drift = 0; warning = 0;
        }
        zn += 1.0;
        zm += (1.0 / zn) * (values[i] - zm);
        if (an == 0.0) { an = zn; am = zm; }
        if (bn == 0.0) { bn = zn; bm = zm; }
        double eps_z = hoeffding(zn, drift_conf);
        if (am + hoeffding(an, drift_conf) >= zm + eps_z) { an = zn; am = zm; }
        if (bm - hoeffding(bn, drift_conf) <= zm - eps_z) { bn = zn; bm = zm; }
        if (mean_moved(zn, zm, an, am, drift_conf, 1)) { warning = 0; drift = 1; }
        else if (mean_moved(zn, zm, an, am, warn_conf, 1)) { warning = 1; drift = 0; }
        else { warning = 0; drift = 0; }
        if (two_sided) {
            if (mean_moved(zn, zm, bn, bm, drift_conf, 0)) drift = 1;
            else if (mean_moved(zn, zm, bn, bm, warn_conf, 0)) warning = 1;
        }
        if (drift) out[found++] = i;
    }
    Py_END_ALLOW_THREADS
    scal[0] = zn; scal[1] = zm; scal[2] = an; scal[3] = am; scal[4] = bn; scal[5] = bm;
    scal[6] = drift ? 1.0 : 0.0; scal[7] = warning ? 1.0 : 0.0;
    release3(&bv, &bs, &bo);
    return PyLong_FromSsize_t(found);
}

/* HDDM_W: each sample summary is (ewma, initialised, independent-bound condition).
 * s: total[0:3], s1_incr[3:6], s2_incr[6:9], s1_decr[9:12], s2_decr[12:15],
 *    incr_cut, decr_cut, drift, warning */

static double mcdiarmid(double ibc, double confidence) {
    return sqrt(ibc * log(1.0 / confidence) / 2.0);
}

static void summary_update(double *s, int j, double x, double lam, double lam_sq,
                           double c_lam_sq) {
    if (s[j + 1] == 0.0) s[j] = x;
    else s[j] = lam * x + (1.0 - lam) * s[j];
    s[j + 1] = 1.0;
    s[j + 2] = lam_sq + c_lam_sq * s[j + 2];
}

static int changed(const double *s, int first, int second, double confidence) {
    if (s[first + 1] == 0.0 || s[second + 1] == 0.0) return 0;
    double bound = mcdiarmid(s[first + 2] + s[second + 2], confidence);
    return s[second] - s[first] > bound;
}

static PyObject *hddm_w(PyObject *self, PyObject *args) {
    PyObject *ov, *os, *oo;
    double drift_conf, warn_conf, lam;
    int two_sided, reset;
    if (!PyArg_ParseTuple(args, "OOOdddpp", &ov, &os, &oo, &drift_conf, &warn_conf, &lam,
                          &two_sided, &reset))
        return NULL;
    Py_buffer bv, bs, bo;
    if (three_buffers(ov, os, oo, &bv, &bs, &bo, 19)) return NULL;
    const double *values = (const double *)bv.buf;
    double *s = (double *)bs.buf;
    int64_t *out = (int64_t *)bo.buf;
    Py_ssize_t size = length(&bv), found = 0;
    double lam_sq = lam * lam;
    double c_lam_sq = (1.0 - lam) * (1.0 - lam);
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < size; i++) {
        if (s[17] != 0.0 && reset) {
            for (int j = 0; j < 15; j += 3) { s[j] = 0.0; s[j + 1] = 0.0; s[j + 2] = 1.0; }
            s[15] = INFINITY; s[16] = -INFINITY; s[17] = 0.0; s[18] = 0.0;
        }
        double x = values[i];
        int drift, warning;
        summary_update(s, 0, x, lam, lam_sq, c_lam_sq);
        double eps = mcdiarmid(s[2], drift_conf);
        if (s[0] + eps < s[15]) {
            s[15] = s[0] + eps;
            s[3] = s[0]; s[4] = s[1]; s[5] = s[2];
            s[6] = 0.0; s[7] = 0.0; s[8] = 1.0;
        } else {
            summary_update(s, 6, x, lam, lam_sq, c_lam_sq);
        }
        if (changed(s, 3, 6, drift_conf)) { warning = 0; drift = 1; }
        else if (changed(s, 3, 6, warn_conf)) { warning = 1; drift = 0; }
        else { warning = 0; drift = 0; }
        eps = mcdiarmid(s[2], drift_conf);
        if (s[0] - eps > s[16]) {
            s[16] = s[0] - eps;
            s[9] = s[0]; s[10] = s[1]; s[11] = s[2];
            s[12] = 0.0; s[13] = 0.0; s[14] = 1.0;
        } else {
            summary_update(s, 12, x, lam, lam_sq, c_lam_sq);
        }
        if (two_sided) {
            if (changed(s, 12, 9, drift_conf)) drift = 1;
            else if (changed(s, 12, 9, warn_conf)) warning = 1;
        }
        s[17] = drift ? 1.0 : 0.0;
        s[18] = warning ? 1.0 : 0.0;
        if (drift) out[found++] = i;
    }
    Py_END_ALLOW_THREADS
    release3(&bv, &bs, &bo);
    return PyLong_FromSsize_t(found);
}

/* -- module --------------------------------------------------------------------------------- */

static PyMethodDef methods[] = {
    {"page_hinkley", page_hinkley, METH_VARARGS,
     "page_hinkley(values, buf, out, min_instances, delta, threshold, alpha, mode, reset)"},
    {"adwin", adwin, METH_VARARGS,
     "adwin(values, scalars, counts, totals, variances, out, delta, clock, max_buckets, "
     "min_len, grace, reset)"},
    {"kswin", kswin, METH_VARARGS,
     "kswin(values, ring, scalars, seed, window_size, stat_size, k_crit, reset, samples, out)"},
    {"eddm", eddm, METH_VARARGS, "eddm(values, scalars, out, warm_start, alpha, beta, reset)"},
    {"hddm_a", hddm_a, METH_VARARGS,
     "hddm_a(values, scalars, out, drift_conf, warn_conf, two_sided, reset)"},
    {"hddm_w", hddm_w, METH_VARARGS,
     "hddm_w(values, scalars, out, drift_conf, warn_conf, lambda_, two_sided, reset)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_ckernels",
    "Sequential kernels of the streaming detectors, compiled ahead of time (C).", -1, methods,
};

PyMODINIT_FUNC PyInit__ckernels(void) { return PyModule_Create(&module); }
