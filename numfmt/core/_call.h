/* The entry point round_into(plan, src, dst, rmode, start, seed, rbits) that the compiled
 * kernels share: its arguments (METH_FASTCALL, parsed by hand: a call on a small array
 * costs mostly this), its buffers, and the split across threads (_threads.h). Each
 * extension reads its own plan and gives nf_round_into its run_range.
 *
 * src and dst: C-contiguous buffers of the same length, dst writable; where either is not,
 * or they overlap other than as the same memory (in place), or are the same memory for a
 * plan that can fail (can_unrep: the input must stay intact for the caller's error), the
 * answer is -2 and the caller takes another path. rmode 0: no random words; 1: the counter
 * hash of seed (four words) at the flat index start + i; 2: rbits, one word of the
 * container's width per element. The GIL is released for arrays of NF_NOGIL elements or
 * more (below, releasing and taking it back costs more than the work).
 */
#ifndef NUMFMT_CALL_H
#define NUMFMT_CALL_H
#include <Python.h>
#include <stdint.h>
#include <string.h>

#include "_threads.h"

#define NF_NOGIL ((Py_ssize_t)1 << 12)

/* One call's arguments, as run_range(ctx, lo, hi) reads them. */
typedef struct {
    const void *plan; /* the extension's plan_t */
    const char *src;
    char *dst;
    int rmode;
    uint64_t start;
    uint32_t seed[4];
    const char *rbits;
    Py_ssize_t item, word; /* bytes of an element and of a random word */
} nf_call_t;

/* The ranges' pointers: element lo of src/dst, word lo of rbits (NULL for rmode 0/1). */
#define NF_SRC(c, T, lo) ((const T *)((c)->src + (lo) * (c)->item))
#define NF_DST(c, T, lo) ((T *)((c)->dst + (lo) * (c)->item))
#define NF_RBITS(c, lo) ((const void *)((c)->rbits ? (c)->rbits + (lo) * (c)->word : NULL))

/* Copies the count uint64 fields of the packed plan obj into f (a TypeError otherwise). */
static inline int nf_read_fields(PyObject *obj, uint64_t *f, Py_ssize_t count, const char *who) {
    if (!PyBytes_Check(obj) || PyBytes_GET_SIZE(obj) != count * (Py_ssize_t)sizeof(uint64_t)) {
        PyErr_Format(PyExc_TypeError, "plan must be the packed bytes of %s", who);
        return -1;
    }
    memcpy(f, PyBytes_AS_STRING(obj), (size_t)count * sizeof(uint64_t));
    return 0;
}

static inline int nf_seed(PyObject *obj, uint32_t seed[4]) {
    if (!PyTuple_Check(obj) || PyTuple_GET_SIZE(obj) != 4) {
        PyErr_SetString(PyExc_TypeError, "seed must be a tuple of four ints");
        return -1;
    }
    for (int k = 0; k < 4; k++) {
        unsigned long v = PyLong_AsUnsignedLongMask(PyTuple_GET_ITEM(obj, k));
        if (v == (unsigned long)-1 && PyErr_Occurred()) return -1;
        seed[k] = (uint32_t)v;
    }
    return 0;
}

/* round_into's body, once the extension has read its plan: width/container in bits. */
static PyObject *nf_round_into(PyObject *const *args, Py_ssize_t nargs, const void *plan, int width, int container,
                               int is_sr, int can_unrep, int vector, nf_range_fn run_range) {
    if (nargs != 7) {
        PyErr_SetString(PyExc_TypeError, "round_into takes 7 arguments (plan, src, dst, rmode, start, seed, rbits)");
        return NULL;
    }
    nf_call_t c;
    c.plan = plan;
    c.item = width / 8;
    c.word = container / 8;
    long rmode = PyLong_AsLong(args[3]);
    if (rmode == -1 && PyErr_Occurred()) return NULL;
    if (is_sr != (rmode != 0) || rmode < 0 || rmode > 2) {
        PyErr_SetString(PyExc_ValueError, "rmode must be 1 or 2 exactly for the stochastic modes");
        return NULL;
    }
    c.rmode = (int)rmode;
    c.start = 0;
    memset(c.seed, 0, sizeof(c.seed));
    if (rmode == 1) {
        c.start = PyLong_AsUnsignedLongLongMask(args[4]);
        if (c.start == (unsigned long long)-1 && PyErr_Occurred()) return NULL;
        if (nf_seed(args[5], c.seed) < 0) return NULL;
    }
    Py_buffer src, dst, rb;
    if (PyObject_GetBuffer(args[1], &src, PyBUF_C_CONTIGUOUS) < 0) {
        PyErr_Clear();
        return PyLong_FromLong(-2);
    }
    if (PyObject_GetBuffer(args[2], &dst, PyBUF_C_CONTIGUOUS | PyBUF_WRITABLE) < 0) {
        PyErr_Clear();
        PyBuffer_Release(&src);
        return PyLong_FromLong(-2);
    }
    PyObject *result = NULL;
    int have_rb = 0;
    Py_ssize_t n = src.len / c.item;
    const char *s0 = (const char *)src.buf, *d0 = (const char *)dst.buf;
    if (src.len != dst.len || src.len % c.item) {
        PyErr_SetString(PyExc_ValueError, "src and dst must hold the same number of elements of the plan's width");
        goto done;
    }
    if (n > 0 && s0 < d0 + dst.len && d0 < s0 + src.len && (s0 != d0 || can_unrep)) {
        result = PyLong_FromLong(-2); /* overlapping, or in place where a result can fail */
        goto done;
    }
    c.src = s0;
    c.dst = (char *)dst.buf;
    c.rbits = NULL;
    if (rmode == 2) {
        if (PyObject_GetBuffer(args[6], &rb, PyBUF_C_CONTIGUOUS) < 0) {
            PyErr_Clear();
            PyErr_SetString(PyExc_ValueError, "rbits must be a C-contiguous buffer");
            goto done;
        }
        have_rb = 1;
        if (rb.len != n * c.word) {
            PyErr_SetString(PyExc_ValueError, "rbits must hold one word of the container's width per element");
            goto done;
        }
        c.rbits = (const char *)rb.buf;
    }
    Py_ssize_t bad;
    if (n < NF_NOGIL) {
        bad = run_range(&c, 0, n);
    } else {
        Py_BEGIN_ALLOW_THREADS
        bad = nf_split(run_range, &c, n, vector ? NF_GRAIN_VECTOR : NF_GRAIN_SCALAR);
        Py_END_ALLOW_THREADS
    }
    result = PyLong_FromSsize_t(bad);
done:
    PyBuffer_Release(&src);
    PyBuffer_Release(&dst);
    if (have_rb) PyBuffer_Release(&rb);
    return result;
}

#define NF_ROUND_INTO_DOC                                                                                  \
    "round_into(plan, src, dst, rmode, start, seed, rbits) -> -1, or the index of the first unrepresentable " \
    "result, or -2 (src/dst not C-contiguous, not writable, or overlapping: take another path)"

/* run_range and round_into of a kernel whose loops FAST##_uint32_t/_uint64_t (plans with p->fast)
 * and SLOW##_uint16_t/_uint32_t/_uint64_t return -1 or the first unrepresentable index, and
 * whose plan_t has width, container, rounding, can_unrep and fast (the float and fixed kernels). */
#define NF_ENTRY(FAST, SLOW)                                                                           \
    static Py_ssize_t run_range(void *ctx, Py_ssize_t lo, Py_ssize_t hi) {                            \
        const nf_call_t *c = (const nf_call_t *)ctx;                                                  \
        const plan_t *p = (const plan_t *)c->plan;                                                    \
        Py_ssize_t n = hi - lo;                                                                       \
        uint64_t start = c->start + (uint64_t)lo;                                                     \
        const void *rb = NF_RBITS(c, lo);                                                             \
        if (p->fast && p->width == 32)                                                                \
            return FAST##_uint32_t(p, NF_SRC(c, uint32_t, lo), NF_DST(c, uint32_t, lo), n, c->rmode,  \
                                   start, c->seed, rb);                                               \
        if (p->fast && p->width == 64)                                                                \
            return FAST##_uint64_t(p, NF_SRC(c, uint64_t, lo), NF_DST(c, uint64_t, lo), n, c->rmode,  \
                                   start, c->seed, rb);                                               \
        if (p->width == 16)                                                                           \
            return SLOW##_uint16_t(p, NF_SRC(c, uint16_t, lo), NF_DST(c, uint16_t, lo), n, c->rmode,  \
                                   start, c->seed, rb);                                               \
        if (p->width == 32)                                                                           \
            return SLOW##_uint32_t(p, NF_SRC(c, uint32_t, lo), NF_DST(c, uint32_t, lo), n, c->rmode,  \
                                   start, c->seed, rb);                                               \
        return SLOW##_uint64_t(p, NF_SRC(c, uint64_t, lo), NF_DST(c, uint64_t, lo), n, c->rmode, start, \
                               c->seed, rb);                                                          \
    }                                                                                                 \
    static PyObject *round_into(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {            \
        (void)self;                                                                                   \
        plan_t p;                                                                                     \
        if (nargs < 1 || read_plan(args[0], &p) < 0) {                                                \
            if (nargs < 1) PyErr_SetString(PyExc_TypeError, "round_into takes 7 arguments");          \
            return NULL;                                                                              \
        }                                                                                             \
        return nf_round_into(args, nargs, &p, (int)p.width, (int)p.container, p.rounding >= R_SR,     \
                             p.can_unrep, p.fast != 0, run_range);                                    \
    }

/* The extension's module: round_into (the extension's own, on nf_round_into), set_threads,
 * and the constants FIELDS (the plan's field count, checked by numfmt.core.native.Loader) and
 * CHECKS_OVERLAP (round_into answers -2 for overlapping src and dst). */
#define NF_MODULE(DOC, FIELDS)                                                                         \
    static PyMethodDef nf_methods[] = {                                                               \
        {"round_into", (PyCFunction)(void (*)(void))round_into, METH_FASTCALL, NF_ROUND_INTO_DOC},     \
        {"set_threads", nf_set_threads, METH_O,                                                       \
         "set_threads(n) -> the number of threads of later calls (1 without pthreads)"},              \
        {NULL, NULL, 0, NULL},                                                                        \
    };                                                                                                \
    static struct PyModuleDef nf_module = {                                                           \
        PyModuleDef_HEAD_INIT, "_ckernel", DOC, -1, nf_methods, NULL, NULL, NULL, NULL,               \
    };                                                                                                \
    PyMODINIT_FUNC PyInit__ckernel(void) {                                                            \
        PyObject *m = PyModule_Create(&nf_module);                                                    \
        if (m == NULL) return NULL;                                                                   \
        if (PyModule_AddIntConstant(m, "FIELDS", FIELDS) < 0 ||                                       \
            PyModule_AddIntConstant(m, "CHECKS_OVERLAP", 1) < 0) {                                    \
            Py_DECREF(m);                                                                             \
            return NULL;                                                                              \
        }                                                                                             \
        return m;                                                                                     \
    }

#endif
