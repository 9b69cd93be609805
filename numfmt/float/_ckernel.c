/* The compiled rounding kernel of the float family (numfmt.float.native loads it).
 *
 * Plain C99 on the Python C API and the buffer protocol (no NumPy headers). One
 * entry point, round_into(plan, src, dst, rmode, start, seed, rbits): it rounds the
 * bit patterns of src (float16/bfloat16, float32 or float64, C-contiguous) into
 * dst (same size and width, may be src itself) element by element, with the GIL
 * released. The plan is the packed constants of numfmt.float.kernel.Plan (and,
 * where numfmt.float.fast applies, of its FastPlan); the arithmetic is a line by
 * line transcription of numfmt.float.kernel.round_bits on one element (round_one),
 * so the result is that kernel's bit for bit; float32/float64 inputs of the plans
 * numfmt.float.fast covers (and of the directed modes on the same formats) take
 * vector loops first (fast_*), which leave what they cannot do to round_one.
 * Stochastic modes take their random words
 * from numfmt.core.random's counter hash of the flat index (rmode 1: four seed
 * words and the index of src's first element) or from a buffer (rmode 2: the
 * words a NumPy Generator drew). It returns -1, or the index of the first
 * element whose result the input dtype cannot hold (the caller raises), or -2
 * where src or dst is not a C-contiguous (writable) buffer.
 *
 * Integer operations only: no floating-point arithmetic, so no exceptions and no
 * dependence on the CPU's subnormal mode. NaN is returned unchanged.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#include "../core/_rounding.h" /* Rounding order, counter hash, SR decision */

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define NF_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define NF_CLONES
#endif

#include "_element.h" /* the packed plan, read_plan, round_one */

/* round_one out of line, for the few elements the short sequences leave: inlined, it
 * would crowd the registers of the vector loops around it. */
static __attribute__((noinline)) uint64_t round_rare(const plan_t *p, uint64_t u, uint64_t r) {
    int unrep;
    return round_one(p, u, r, &unrep);
}

/* The random word of element i (relative to src's start). */
#define WORD(i) (rmode == 1 ? (p->container == 64 ? hash64(seed, start + (uint64_t)(i)) \
                                                   : (uint64_t)hash32(seed, start + (uint64_t)(i))) \
                 : rmode == 2 ? (p->container == 64 ? ((const uint64_t *)rbits)[i] \
                                                    : (uint64_t)((const uint32_t *)rbits)[i]) \
                 : 0)

/* Every element through round_one (plans without a short sequence, 16-bit inputs). */
#define GENERAL_LOOP(T)                                                                       \
    static NF_CLONES Py_ssize_t general_##T(const plan_t *p, const T *src, T *dst, Py_ssize_t n, \
                                            int rmode, uint64_t start, const uint32_t *seed,  \
                                            const void *rbits) {                              \
        for (Py_ssize_t i = 0; i < n; i++) {                                                  \
            int unrep;                                                                        \
            T v = (T)round_one(p, (uint64_t)src[i], WORD(i), &unrep);                         \
            if (unrep) return i;                                                              \
            dst[i] = v;                                                                       \
        }                                                                                     \
        return -1;                                                                            \
    }
GENERAL_LOOP(uint16_t)
GENERAL_LOOP(uint32_t)
GENERAL_LOOP(uint64_t)

/* The short sequence widened to the format's subnormal range (and zeros): below the
 * format's normal range the number of dropped bits grows by one per binade,
 * d = max(d_n, D0 - E) (E the input's exponent field, at least 1; D0 = qe_sub +
 * in_bias + in_man), computed per element with variable shifts, which AVX2 has. Beyond
 * in_man dropped bits the result is 0 or the smallest subnormal q (round_bits' "deep"
 * case; for SR v = floor(s * 2**(N - d)) as in numfmt.float.fast_sr). Only magnitudes
 * above the short sequence's range (overflow, inf, NaN) go through round_one. */
/* (Selects written as ternaries on T throughout: gcc vectorizes those, not mixed int/T logic.) */
#define WIDE_PRE(T, ST)                                                                       \
        T u = s[i], a = u & absm, sign = u ^ a;                                               \
        T v = a < mx ? a : mx; /* mx: the max for a saturating plan, else all ones */         \
        nout += a > hi ? one : 0;                                                             \
        nlow += a < lo ? one : 0;                                                             \
        T ex = v >> in_man;                                                                   \
        T exe = ex > 1 ? ex : one;                                                            \
        T sig = (v & mmask) | (ex != 0 ? hidden : 0);                                         \
        ST dd = d0 - (ST)exe;                                                                 \
        ST dt = dd > dn ? dd : dn;                                                            \
        T deep = dt > (ST)in_man ? one : 0;
#define WIDE_RNE(T, ST)                                                                       \
    {                                                                                         \
        WIDE_PRE(T, ST)                                                                       \
        T d = (T)(dt > (ST)in_man + 2 ? (ST)in_man + 2 : dt);                                 \
        T rem = sig & ((one << d) - 1);                                                       \
        T half = (one << d) >> 1;                                                             \
        T gt = rem > half ? one : 0, eq = rem == half ? one : 0, nz = rem != 0 ? one : 0;    \
        T par = (sig >> d) & 1, neg = u >> (w - 1);                                           \
        /* the deterministic modes by loop-invariant masks (fast == 3: directed modes) */     \
        T inc = (m_ne & (gt | (eq & par))) | (m_na & (gt | eq)) | (m_tp & nz & (neg ^ one)) | \
                (m_tn & nz & neg) | (m_odd & nz & (par ^ one));                               \
        T near = v - rem + (inc << d);                                                        \
        T tiny = inc ? qbits : 0;                                                             \
        buf[i] = (deep ? tiny : near) | sign;                                                 \
    }
#define WIDE_SR(T, ST, RWORD)                                                                 \
    {                                                                                         \
        WIDE_PRE(T, ST)                                                                       \
        T r = RWORD;                                                                          \
        T dk = deep ? one : (T)dt; /* keeps the shift counts in range */                      \
        T near = (v + (r >> (w - dk))) & ~((one << dk) - 1);                                  \
        ST ls = nb - dt, rs = dt - nb;                                                        \
        T lsc = ls > 0 ? (T)ls : 0, rsc = rs < 0 ? 0 : (rs > (ST)w - 1 ? w - 1 : (T)rs);      \
        T vn = ls >= 0 ? (sig << lsc) : (sig >> rsc);                                         \
        T up = vn + (r >> 1) >= top ? qbits : 0;                                              \
        buf[i] = (deep ? up : near) | sign;                                                   \
    }

#define HASH32 (mix32(mix32((i0 + (uint32_t)i) ^ k0) ^ (k1 ^ fold)))
#define HASH64                                                                                \
    ((((uint64_t)mix32(mix32((i0 + (uint32_t)i) ^ k0) ^ (k1 ^ fold)) << 32) |               \
         (uint64_t)mix32(mix32((i0 + (uint32_t)i) ^ k2) ^ (k3 ^ fold))))
/* numfmt.float.fast's plans (width == container), a chunk at a time into a local buffer
 * (so dst may be src). A chunk first takes the short sequence (SHORT_*: a few
 * operations, right within [lo, hi]); where more than DENSE of its elements lie
 * outside, it takes the widened sequence instead (WIDE_*: right up to hi), and so
 * do the following chunks while they have that many below lo. What is left (above
 * hi: overflow, inf, NaN; or a few elements outside [lo, hi]) goes through round_one. */
#define CHUNK 512
#define DENSE 8
#define SHORT_RNE(T, ST)                                                                        \
    {                                                                                         \
        T u = s[i], a = u & absm;                                                             \
        T v = (a < mx ? a : mx) | (u ^ a);                                                    \
        nout += (T)(a - lo) > span ? one : 0;                                                 \
        buf[i] = (v + bias + ((v >> shift) & 1)) & keep;                                      \
    }
#define SHORT_SR(T, ST, RWORD)                                                                \
    {                                                                                         \
        T u = s[i], a = u & absm;                                                             \
        T v = (a < mx ? a : mx) | (u ^ a);                                                    \
        T r = RWORD;                                                                          \
        nout += (T)(a - lo) > span ? one : 0;                                                 \
        buf[i] = (v + (r >> shift)) & keep;                                                   \
    }
#define RUN(T, ST, HASH, BODY_RNE, BODY_SR)                                                   \
    do {                                                                                      \
        if (!sr) {                                                                            \
            for (Py_ssize_t i = 0; i < m; i++) BODY_RNE(T, ST)                                \
        } else if (rmode == 1) {                                                              \
            uint32_t fold = (uint32_t)((idx0 >> 32) * 0x9E3779B9U), i0 = (uint32_t)idx0;      \
            for (Py_ssize_t i = 0; i < m; i++) BODY_SR(T, ST, (T)(HASH))                      \
        } else {                                                                              \
            const T *rb = (const T *)rbits + base;                                            \
            for (Py_ssize_t i = 0; i < m; i++) BODY_SR(T, ST, rb[i])                          \
        }                                                                                     \
    } while (0)

#define FAST_LOOP(T, ST, HASH)                                                                \
    static NF_CLONES Py_ssize_t fast_##T(const plan_t *p, const T *src, T *dst, Py_ssize_t n, \
                                         int rmode, uint64_t start, const uint32_t *seed,     \
                                         const void *rbits) {                                 \
        /* one is not a compile-time constant: gcc 12 does not vectorize 1 << (vector) */    \
        const T one = (T)(p->width > 0), in_man = (T)p->in_man, mmask = (one << in_man) - 1;  \
        const T absm = (T)p->f_abs, mx = p->f_saturate ? (T)p->f_max : (T)~(T)0;             \
        const T lo = (T)p->f_lo, span = (T)p->f_span, hi = (T)(p->f_lo + p->f_span);          \
        const T shift = (T)p->f_shift, bias = (T)p->f_bias, keep = (T)p->f_keep;              \
        const T hidden = one << in_man, qbits = (T)p->q_sub_bits, w = (T)p->width;            \
        const ST d0 = (ST)(p->qe_sub + p->in_bias + p->in_man), dn = (ST)(p->in_man - p->man); \
        const ST nb = (ST)p->nbits;                                                           \
        const T top = one << (p->nbits > 0 ? p->nbits : 1);                                   \
        const int sr = p->fast == 2;                                                          \
        const T all = (T)~(T)0, rd = (T)p->rounding;                                           \
        const T m_ne = rd == R_NE ? all : 0, m_na = rd == R_NA ? all : 0;                     \
        const T m_tp = rd == R_TP ? all : 0, m_tn = rd == R_TN ? all : 0;                     \
        const T m_odd = rd == R_ODD ? all : 0; /* toward zero: no mask, inc = 0 */            \
        uint32_t k0 = seed[0], k1 = seed[1], k2 = seed[2], k3 = seed[3];                      \
        T buf[CHUNK];                                                                         \
        uint8_t flg[CHUNK + 8];                                                               \
        int dense = p->fast == 3; /* directed modes have the widened sequence only */        \
        (void)k2; (void)k3;                                                                   \
        for (Py_ssize_t base = 0; base < n; base += CHUNK) {                                  \
            Py_ssize_t m = n - base < CHUNK ? n - base : CHUNK;                               \
            const T *s = src + base;                                                          \
            uint64_t idx0 = start + (uint64_t)base;                                           \
            if (sr && rmode == 1 && ((idx0 + (uint64_t)m - 1) >> 32) != (idx0 >> 32)) {       \
                /* the chunk straddles a multiple of 2**32: round_one hashes */               \
                for (Py_ssize_t i = 0; i < m; i++) {                                          \
                    int unrep;                                                                \
                    buf[i] = (T)round_one(p, s[i], WORD(base + i), &unrep);                   \
                }                                                                             \
                memcpy(dst + base, buf, (size_t)m * sizeof(T));                               \
                continue;                                                                     \
            }                                                                                 \
            T nlow = 0, nout = 0;                                                             \
            int wide = dense;                                                                 \
            if (!wide) {                                                                      \
                RUN(T, ST, HASH, SHORT_RNE, SHORT_SR);                                        \
                wide = nout > DENSE;                                                          \
                if (nout && !wide)                                                            \
                    for (Py_ssize_t i = 0; i < m; i++)                                        \
                        flg[i] = (T)((s[i] & absm) - lo) > span ? 1 : 0;                      \
            }                                                                                 \
            if (wide) {                                                                       \
                nout = 0;                                                                     \
                RUN(T, ST, HASH, WIDE_RNE, WIDE_SR);                                          \
                dense = nlow > DENSE || p->fast == 3;                                         \
                if (nout)                                                                     \
                    for (Py_ssize_t i = 0; i < m; i++) flg[i] = (s[i] & absm) > hi ? 1 : 0;   \
            }                                                                                 \
            memset(flg + m, 0, 8);                                                            \
            for (Py_ssize_t j = 0; nout && j < m; j += 8) {                                   \
                uint64_t word;                                                                \
                memcpy(&word, flg + j, 8);                                                    \
                if (!word) continue;                                                          \
                for (Py_ssize_t i = j; i < j + 8 && i < m; i++)                               \
                    if (flg[i]) {                                                             \
                        if ((s[i] & absm) > hi) /* overflow, inf, NaN */                          \
                            buf[i] = (T)round_rare(p, s[i], sr ? WORD(base + i) : 0);         \
                        else if (sr) /* below lo: the widened sequence, one element */        \
                            WIDE_SR(T, ST, (T)WORD(base + i))                                 \
                        else                                                                  \
                            WIDE_RNE(T, ST)                                                   \
                        nout--;                                                               \
                    }                                                                         \
            }                                                                                 \
            memcpy(dst + base, buf, (size_t)m * sizeof(T));                                   \
        }                                                                                     \
        return -1;                                                                            \
    }
FAST_LOOP(uint32_t, int32_t, HASH32)
FAST_LOOP(uint64_t, int64_t, HASH64)

static int get_buffer(PyObject *obj, Py_buffer *view, int writable, const char *name) {
    int flags = PyBUF_C_CONTIGUOUS | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(obj, view, flags) < 0) {
        PyErr_Clear();
        PyErr_Format(PyExc_ValueError, "%s must be a %sC-contiguous buffer", name, writable ? "writable " : "");
        return -1;
    }
    return 0;
}

static PyObject *round_into(PyObject *self, PyObject *args) {
    PyObject *plan_obj, *src_obj, *dst_obj, *rbits_obj;
    int rmode;
    unsigned long long start;
    unsigned int k0, k1, k2, k3;
    (void)self;
    if (!PyArg_ParseTuple(args, "OOOiK(IIII)O", &plan_obj, &src_obj, &dst_obj, &rmode, &start, &k0, &k1, &k2,
                          &k3, &rbits_obj))
        return NULL;
    plan_t p;
    if (read_plan(plan_obj, &p) < 0) return NULL;
    int is_sr = p.rounding >= R_SR;
    if (is_sr != (rmode != 0) || rmode < 0 || rmode > 2) {
        PyErr_SetString(PyExc_ValueError, "rmode must be 1 or 2 exactly for the stochastic modes");
        return NULL;
    }
    Py_buffer src, dst, rb;
    /* src or dst not a C-contiguous (writable) buffer: -2, and the caller takes another path */
    if (PyObject_GetBuffer(src_obj, &src, PyBUF_C_CONTIGUOUS) < 0) {
        PyErr_Clear();
        return PyLong_FromLong(-2);
    }
    if (PyObject_GetBuffer(dst_obj, &dst, PyBUF_C_CONTIGUOUS | PyBUF_WRITABLE) < 0) {
        PyErr_Clear();
        PyBuffer_Release(&src);
        return PyLong_FromLong(-2);
    }
    Py_ssize_t item = p.width / 8, n = src.len / item;
    int have_rb = 0;
    if (src.len != dst.len || src.len % item) {
        PyErr_SetString(PyExc_ValueError, "src and dst must hold the same number of elements of the plan's width");
        goto fail;
    }
    if (rmode == 2) {
        if (get_buffer(rbits_obj, &rb, 0, "rbits") < 0) goto fail;
        have_rb = 1;
        if (rb.len != n * (p.container / 8)) {
            PyErr_SetString(PyExc_ValueError, "rbits must hold one word of the container's width per element");
            goto fail;
        }
    }
    uint32_t seed[4] = {k0, k1, k2, k3};
    const void *rbits = have_rb ? rb.buf : NULL;
    Py_ssize_t bad;
    Py_BEGIN_ALLOW_THREADS
    if (p.fast && p.width == 32)
        bad = fast_uint32_t(&p, src.buf, dst.buf, n, rmode, start, seed, rbits);
    else if (p.fast && p.width == 64)
        bad = fast_uint64_t(&p, src.buf, dst.buf, n, rmode, start, seed, rbits);
    else if (p.width == 16)
        bad = general_uint16_t(&p, src.buf, dst.buf, n, rmode, start, seed, rbits);
    else if (p.width == 32)
        bad = general_uint32_t(&p, src.buf, dst.buf, n, rmode, start, seed, rbits);
    else
        bad = general_uint64_t(&p, src.buf, dst.buf, n, rmode, start, seed, rbits);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&src);
    PyBuffer_Release(&dst);
    if (have_rb) PyBuffer_Release(&rb);
    return PyLong_FromSsize_t(bad);
fail:
    PyBuffer_Release(&src);
    PyBuffer_Release(&dst);
    if (have_rb) PyBuffer_Release(&rb);
    return NULL;
}

static PyMethodDef methods[] = {
    {"round_into", round_into, METH_VARARGS,
     "round_into(plan, src, dst, rmode, start, seed, rbits) -> -1 or the index of the first unrepresentable "
     "result"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_ckernel", "The float family's compiled rounding kernel.", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__ckernel(void) {
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    if (PyModule_AddIntConstant(m, "FIELDS", F_COUNT) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
