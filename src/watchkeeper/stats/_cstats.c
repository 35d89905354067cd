/* The two-sample KS statistic of two sorted samples in one merge, compiled ahead of time.
 *
 * Optional (built by setup.py when a C compiler is available); without it
 * watchkeeper/stats/_numeric.py computes the same integer with numpy (one binary search per
 * value), and a test checks that both agree. Plain C and the buffer protocol only.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

static int get_sorted(PyObject *obj, Py_buffer *view, const char *name) {
    if (PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) != 0) {
        PyErr_Format(PyExc_ValueError, "%s must be a C-contiguous float64 array", name);
        return -1;
    }
    const char *fmt = view->format ? view->format : "B";
    while (*fmt == '@' || *fmt == '=' || *fmt == '<') fmt++;
    if (view->itemsize != 8 || strcmp(fmt, "d") != 0 || view->ndim != 1) {
        PyErr_Format(PyExc_ValueError, "%s must be a 1-D float64 array", name);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

/* max over every value t of |n2 * #{x <= t} - n1 * #{y <= t}|: the KS statistic times n1*n2. */
static PyObject *ks_gap(PyObject *self, PyObject *args) {
    PyObject *ox, *oy;
    if (!PyArg_ParseTuple(args, "OO", &ox, &oy)) return NULL;
    Py_buffer bx, by;
    if (get_sorted(ox, &bx, "xs")) return NULL;
    if (get_sorted(oy, &by, "ys")) { PyBuffer_Release(&bx); return NULL; }
    const double *xs = (const double *)bx.buf, *ys = (const double *)by.buf;
    int64_t n1 = (int64_t)(bx.len / 8), n2 = (int64_t)(by.len / 8);
    int64_t i = 0, j = 0, best = 0;
    Py_BEGIN_ALLOW_THREADS
    while (i < n1 || j < n2) {
        double v = (j >= n2 || (i < n1 && xs[i] <= ys[j])) ? xs[i] : ys[j];
        while (i < n1 && xs[i] <= v) i++;
        while (j < n2 && ys[j] <= v) j++;
        int64_t gap = i * n2 - j * n1;
        if (gap < 0) gap = -gap;
        if (gap > best) best = gap;
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&bx);
    PyBuffer_Release(&by);
    return PyLong_FromLongLong((long long)best);
}

static PyMethodDef methods[] = {
    {"ks_gap", ks_gap, METH_VARARGS,
     "ks_gap(xs, ys): n1 * n2 times the KS statistic of two sorted float64 samples"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_cstats", "Compiled helpers of the drift tests (C).", -1, methods,
};

PyMODINIT_FUNC PyInit__cstats(void) { return PyModule_Create(&module); }
