/* The compiled kernel of the block family's power-of-two scales (numfmt.block.native loads it).
 *
 * Plain C99 on the Python C API and the buffer protocol (no NumPy headers). One entry
 * point, block_into(bplan, eplan, src, dst, n, k0, k1, rmode, seed, rbits): src and dst
 * are the C-contiguous rows of numfmt.block.chunks.rows (float32 or float64 patterns,
 * rows of n elements, dst may not be src), cut into blocks of B elements (a trailing
 * partial block per row, quantized as if zero-padded); it quantizes blocks k0 .. k1 - 1
 * (block k: row k / nb, the nb = ceil(n / B) blocks of a row in order) with the GIL
 * released, each block in one visit while it is in cache:
 *
 * 1. amax and the NaN/inf state (numfmt.block.chop._scales),
 * 2. the scale exponent e (numfmt.block.chop.scale_exponent),
 * 3. the elements: where the plan is "direct" (numfmt.block.direct's argument: float
 *    elements with subnormals, or integer elements; nearest even, or "stochastic" where
 *    the work layout is the input's) the input's patterns are rounded onto the scaled
 *    element grid by a loop the compiler vectorizes; else each element is scaled into the work layout
 *    (numfmt.block.scale_bits.to_f64), rounded by the float family's round_one
 *    (numfmt/float/_element.h; integer elements clamped as numfmt.block.int_element),
 *    and scaled back (from_f64).
 *
 * Each step is a line by line transcription of the NumPy code named, so the results
 * are the NumPy path's bit for bit. Stochastic modes take the 64-bit random word of
 * the element's flat index in the zero-padded blocked array: the counter hash of a
 * JAX key's seed words (rmode 1) or a buffer of the words a NumPy Generator drew for
 * blocks k0 .. k1 - 1 (rmode 2); work patterns of 32 bits take its top half. It returns
 * the number of results the input dtype cannot hold (the caller raises), or -2 where
 * src or dst is not a C-contiguous (writable) buffer.
 *
 * Integer operations only: no floating-point arithmetic. NaN blocks are the positive
 * quiet NaN. Two more entry points serve NVFP4-style scales on float32 input
 * (_nvfp4.h, which follows numfmt.block.nvfp4's float64 arithmetic): finite_amax(src)
 * and nvfp4_into(nplan, eplan, splan, src, dst, n, k0, k1, rmode, seed, rbits).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#include "../core/_rounding.h" /* Rounding order, counter hash, SR decision */
#include "../float/_element.h" /* the element plan and round_one */

/* The block plan: uint64 fields in this order (numfmt.block.native._FIELDS). */
enum {
    B_WIDTH, B_IN_MAN, B_IN_BIAS, B_WORK_EXP, B_WORK_MAN, B_WORK_WIDTH, B_BLOCK, B_E_LO, B_E_HI,
    B_EMAX, B_HAS_TH, B_TH, B_STRICT, B_SATURATE, B_DIRECT, B_M, B_Q_OFF, B_MAX_K, B_MAX_SIG,
    B_MAX_TOP, B_NEG_K, B_NEG_SIG, B_NEG_TOP, B_IS_INT, B_POS, B_NEG, B_SM, B_COUNT
};

typedef struct {
    int64_t width, in_man, in_bias, we, wm, ww, block, e_lo, e_hi, emax, m, q_off, max_k, max_top, neg_k, neg_top;
    int has_th, strict, saturate, direct, is_int, sm;
    uint64_t th, max_sig, neg_sig, pos, neg, inf_bits, nan_bits, mmask;
} bplan_t;

static int read_bplan(PyObject *obj, bplan_t *b) {
    uint64_t f[B_COUNT];
    if (!PyBytes_Check(obj) || PyBytes_GET_SIZE(obj) != (Py_ssize_t)sizeof(f)) {
        PyErr_SetString(PyExc_TypeError, "bplan must be the packed bytes of numfmt.block.native");
        return -1;
    }
    memcpy(f, PyBytes_AS_STRING(obj), sizeof(f));
    b->width = (int64_t)f[B_WIDTH];
    b->in_man = (int64_t)f[B_IN_MAN];
    b->in_bias = (int64_t)f[B_IN_BIAS];
    b->we = (int64_t)f[B_WORK_EXP];
    b->wm = (int64_t)f[B_WORK_MAN];
    b->ww = (int64_t)f[B_WORK_WIDTH];
    b->block = (int64_t)f[B_BLOCK];
    b->e_lo = (int64_t)f[B_E_LO];
    b->e_hi = (int64_t)f[B_E_HI];
    b->emax = (int64_t)f[B_EMAX];
    b->has_th = (int)f[B_HAS_TH];
    b->th = f[B_TH];
    b->strict = (int)f[B_STRICT];
    b->saturate = (int)f[B_SATURATE];
    b->direct = (int)f[B_DIRECT];
    b->m = (int64_t)f[B_M];
    b->q_off = (int64_t)f[B_Q_OFF];
    b->max_k = (int64_t)f[B_MAX_K];
    b->max_sig = f[B_MAX_SIG];
    b->max_top = (int64_t)f[B_MAX_TOP];
    b->neg_k = (int64_t)f[B_NEG_K];
    b->neg_sig = f[B_NEG_SIG];
    b->neg_top = (int64_t)f[B_NEG_TOP];
    b->is_int = (int)f[B_IS_INT];
    b->pos = f[B_POS];
    b->neg = f[B_NEG];
    b->sm = (int)f[B_SM];
    if (!((b->width == 32 && b->in_man == 23 && b->in_bias == 127) ||
          (b->width == 64 && b->in_man == 52 && b->in_bias == 1023)) ||
        !((b->ww == 32 && b->we == 8 && b->wm == 23) || (b->ww == 64 && b->we == 11 && b->wm == 52)) ||
        b->ww < b->width || b->block < 1 || b->e_lo > b->e_hi || b->m < 0 || b->m > b->in_man ||
        b->max_top < 0 || b->max_top > b->in_man || b->neg_top < 0 || b->neg_top > b->in_man ||
        b->max_sig >> b->max_top != 1 || b->neg_sig >> b->neg_top != 1) {
        PyErr_SetString(PyExc_ValueError, "inconsistent block plan");
        return -1;
    }
    int64_t e_bits = b->width == 64 ? 11 : 8;
    b->inf_bits = (((uint64_t)1 << e_bits) - 1) << b->in_man;
    b->nan_bits = b->inf_bits | ((uint64_t)1 << (b->in_man - 1));
    b->mmask = ((uint64_t)1 << b->in_man) - 1;
    return 0;
}

/* numfmt.block.scale_bits.unpack of a magnitude pattern a (input layout). */
static inline void unpack_one(uint64_t a, int64_t man, int64_t bias, uint64_t *sig, int64_t *t, int64_t *e_x) {
    uint64_t ex = a >> man, mant = a & ((((uint64_t)1) << man) - 1);
    if (ex == 0) {
        *sig = mant;
        *t = (int64_t)bit_length64(mant) - 1;
        *e_x = *t + (1 - bias - man);
    } else {
        *sig = mant | (((uint64_t)1) << man);
        *t = man;
        *e_x = (int64_t)ex - bias;
    }
}

/* numfmt.block.chop.scale_exponent of one block's amax (finite pattern). */
static inline int64_t scale_exp(const bplan_t *b, uint64_t amax) {
    if (amax == 0) return b->e_lo;
    uint64_t sig;
    int64_t t, e_x;
    unpack_one(amax, b->in_man, b->in_bias, &sig, &t, &e_x);
    int64_t e = e_x - b->emax;
    if (b->has_th) {
        uint64_t frac = (sig << clamp64(b->in_man - t, 0, b->ww - 1)) & b->mmask;
        e += b->strict ? (frac > b->th) : (frac >= b->th);
    }
    return clamp64(e, b->e_lo, b->e_hi);
}

/* numfmt.block.direct._pow2_bits: the pattern of sig * 2**(k - top) (input layout). */
static inline uint64_t pow2_bits(const bplan_t *b, int64_t k, uint64_t sig, int64_t top) {
    uint64_t frac = (sig << (b->in_man - top)) & b->mmask;
    uint64_t normal = ((uint64_t)(k + b->in_bias > 1 ? k + b->in_bias : 1) << b->in_man) | frac;
    uint64_t sub = (sig << (b->in_man - top)) >> clamp64((1 - b->in_bias) - k, 0, 63);
    uint64_t pat = k >= 1 - b->in_bias ? normal : sub;
    return k > b->in_bias ? b->inf_bits : pat;
}

#include "_direct.h" /* the direct rounding loops */

/* Scale by 2**-e into the work layout (numfmt.block.scale_bits.to_f64), round by the element
 * plan, clamp integer elements (numfmt.block.int_element._IntPlan.round_bits), and scale
 * back by 2**e into the input layout (from_f64). */
static inline uint64_t general_one(const bplan_t *b, const plan_t *ep, uint64_t u, int64_t e, uint64_t r,
                                   int *unrep) {
    const uint64_t one = 1, sbit = one << (b->width - 1), wsign = one << (b->ww - 1);
    const int64_t wb = (one << (b->we - 1)) - 1;
    uint64_t a = u & (sbit - 1), sig;
    int neg = (u & sbit) != 0;
    int64_t t, e_x;
    unpack_one(a, b->in_man, b->in_bias, &sig, &t, &e_x);
    uint64_t y;
    if (a == b->inf_bits) {
        y = ((one << b->we) - 1) << b->wm;
    } else {
        int64_t e_new = e_x - e;
        uint64_t frac = (sig << clamp64(b->wm - t, 0, b->ww - 1)) & ((one << b->wm) - 1);
        y = ((uint64_t)clamp64(e_new + wb, 1, 2 * wb) << b->wm) | frac;
        if (e_new < 1 - wb) y = 1;
        if (sig == 0) y = 0;
    }
    if (neg) y |= wsign;
    int ignored;
    uint64_t q = round_one(ep, y, b->ww == 32 ? r >> 32 : r, &ignored);
    if (b->is_int) {
        uint64_t mag = q & (wsign - 1), cap;
        int qneg = (q & wsign) != 0;
        cap = qneg ? b->neg : b->pos;
        uint64_t cl = mag > ep->inf_bits ? mag : (mag < cap ? mag : cap);
        if (!b->sm) qneg = qneg && cl != 0;
        q = cl | (qneg ? wsign : 0);
    }
    /* from_f64 */
    uint64_t qa = q & (wsign - 1), qsig;
    int64_t qt, qe_x;
    unpack_one(qa, b->wm, wb, &qsig, &qt, &qe_x);
    (void)qt;
    int64_t e_new = qe_x + e, emin = 1 - b->in_bias, drop = b->wm - b->in_man;
    uint64_t pat_n = ((uint64_t)clamp64(e_new + b->in_bias, 1, 2 * b->in_bias) << b->in_man) |
                     ((qsig >> drop) & b->mmask);
    uint64_t lost_n = qsig & ((one << drop) - 1);
    int64_t shs = clamp64(drop + emin - e_new, 0, b->ww - 1);
    uint64_t pat_s = qsig >> shs, lost_s = qsig & ((one << shs) - 1);
    int normal = e_new >= emin, zero = qa == 0;
    uint64_t pat = normal ? pat_n : pat_s;
    int lost = (normal ? lost_n : lost_s) != 0;
    int over = normal && e_new > b->in_bias && !zero;
    *unrep = (lost && !zero) || over;
    if (zero) pat = 0;
    if (over) pat = b->inf_bits;
    return pat | ((q & wsign) ? sbit : 0);
}

/* The direct rounding's caps (max_pos, max_neg) and smallest quantum of scale 2**e. */
static inline void direct_caps(const bplan_t *b, int64_t e, uint64_t *max_pos, uint64_t *max_neg, uint64_t *q_sub) {
    *max_pos = pow2_bits(b, e + b->max_k, b->max_sig, b->max_top);
    *max_neg = pow2_bits(b, e + b->neg_k, b->neg_sig, b->neg_top);
    *q_sub = pow2_bits(b, e + b->q_off, 1, 0);
}

#define TABLE 512
#define SR_CHUNK 256
#define BLOCKS(T, ST)                                                                              \
    static NF_CLONES Py_ssize_t blocks_##T(const bplan_t *b, const plan_t *ep, const T *restrict src, \
                                 T *restrict dst,                                                 \
                                 Py_ssize_t n, Py_ssize_t k0, Py_ssize_t k1, int rmode,           \
                                 const uint32_t *seed, const uint64_t *rbits) {                   \
        const Py_ssize_t B = (Py_ssize_t)b->block, nb = (n + B - 1) / B;                         \
        const uint64_t sbit = (uint64_t)1 << (b->width - 1), absm = sbit - 1;                     \
        Py_ssize_t count = 0;                                                                     \
        /* the direct rounding's per-scale constants, for scale ranges like E8M0's */            \
        uint64_t table[3 * TABLE], *tab = NULL, words[SR_CHUNK];                                  \
        if (b->direct && b->e_hi - b->e_lo < TABLE && k1 - k0 > 4 * (b->e_hi - b->e_lo)) {      \
            tab = table;                                                                          \
            for (int64_t e = b->e_lo; e <= b->e_hi; e++)                                          \
                direct_caps(b, e, tab + 3 * (e - b->e_lo), tab + 3 * (e - b->e_lo) + 1,           \
                            tab + 3 * (e - b->e_lo) + 2);                                         \
        }                                                                                         \
        for (Py_ssize_t k = k0; k < k1; k++) {                                                    \
            Py_ssize_t row = k / nb, c = (k % nb) * B, w = n - c < B ? n - c : B;                 \
            const T *s = src + row * n + c;                                                       \
            T *o = dst + row * n + c;                                                             \
            /* 1. amax and the NaN/inf state */                                                   \
            int bad;                                                                              \
            int64_t e;                                                                            \
            if (!b->saturate) {                                                                   \
                T amax = 0;                                                                       \
                for (Py_ssize_t i = 0; i < w; i++) {                                              \
                    T a = s[i] & (T)absm;                                                         \
                    amax = a > amax ? a : amax;                                                   \
                }                                                                                 \
                bad = amax >= b->inf_bits;                                                        \
                e = scale_exp(b, bad ? 0 : amax);                                                 \
            } else {                                                                              \
                T amax = 0, top = 0;                                                              \
                for (Py_ssize_t i = 0; i < w; i++) {                                              \
                    T a = s[i] & (T)absm;                                                         \
                    top = a > top ? a : top;                                                      \
                    amax = (a < b->inf_bits && a > amax) ? a : amax;                              \
                }                                                                                 \
                bad = top > b->inf_bits;                                                          \
                e = top == b->inf_bits ? b->e_hi : scale_exp(b, amax);                            \
            }                                                                                     \
            if (bad) {                                                                            \
                for (Py_ssize_t i = 0; i < w; i++) o[i] = (T)b->nan_bits;                         \
                continue;                                                                         \
            }                                                                                     \
            /* 2., 3. the elements */                                                             \
            if (b->direct) {                                                                      \
                int64_t qlow = e + b->q_off; /* the scaled grid's smallest quantum */            \
                uint64_t max_pos, max_neg, q_sub;                                                 \
                if (tab) {                                                                        \
                    const uint64_t *row3 = tab + 3 * (e - b->e_lo);                               \
                    max_pos = row3[0], max_neg = row3[1], q_sub = row3[2];                        \
                } else {                                                                          \
                    direct_caps(b, e, &max_pos, &max_neg, &q_sub);                                \
                }                                                                                 \
                if (rmode != 0 && (b->is_int || qlow + b->m + b->in_bias >= 1)) {                 \
                    const T in_man = (T)b->in_man;                                                \
                    const ST dn = b->is_int ? -1 : b->in_man - b->m, Lq = qlow + b->in_bias + b->in_man; \
                    const int negzero = !b->is_int || b->sm;                                      \
                    for (Py_ssize_t c0 = 0; c0 < w; c0 += SR_CHUNK) {                             \
                        Py_ssize_t len = w - c0 < SR_CHUNK ? w - c0 : SR_CHUNK;                   \
                        const uint64_t *rw = words;                                               \
                        if (rmode == 2) {                                                         \
                            rw = rbits + (k - k0) * B + c0;                                       \
                        } else {                                                                  \
                            uint64_t idx = (uint64_t)k * (uint64_t)B + (uint64_t)c0;              \
                            for (Py_ssize_t i = 0; i < len; i++) words[i] = hash64(seed, idx + (uint64_t)i); \
                        }                                                                         \
                        count += direct_sr_##T(s + c0, o + c0, len, in_man, dn, Lq, (T)max_pos,   \
                                               (T)max_neg, (T)q_sub, (T)b->inf_bits, b->saturate, \
                                               negzero, rw, (T)ep->nbits);                        \
                    }                                                                             \
                    continue;                                                                     \
                }                                                                                 \
                if (rmode == 0 && (b->is_int || qlow + b->m + b->in_bias >= 1)) {                 \
                    const T in_man = (T)b->in_man;                                                \
                    const ST dn = b->is_int ? -1 : b->in_man - b->m, Lq = qlow + b->in_bias + b->in_man; \
                    const int negzero = !b->is_int || b->sm;                                      \
                    const T mp = (T)max_pos, mn = (T)max_neg, qs = (T)q_sub, ib = (T)b->inf_bits; \
                    switch (ep->rounding) { /* one loop per mode */                               \
                    case R_NE:                                                                    \
                        if (w == 32) /* the usual block: a loop of known length */                \
                            count += direct_##T(s, o, 32, in_man, dn, Lq, mp, mn, qs, ib, b->saturate, negzero, R_NE); \
                        else                                                                      \
                            count += direct_##T(s, o, w, in_man, dn, Lq, mp, mn, qs, ib, b->saturate, negzero, R_NE); \
                        break;                                                                    \
                    case R_NA: count += direct_##T(s, o, w, in_man, dn, Lq, mp, mn, qs, ib, b->saturate, negzero, R_NA); break; \
                    case R_TZ: count += direct_##T(s, o, w, in_man, dn, Lq, mp, mn, qs, ib, b->saturate, negzero, R_TZ); break; \
                    case R_TP: count += direct_##T(s, o, w, in_man, dn, Lq, mp, mn, qs, ib, b->saturate, negzero, R_TP); break; \
                    case R_TN: count += direct_##T(s, o, w, in_man, dn, Lq, mp, mn, qs, ib, b->saturate, negzero, R_TN); break; \
                    default: count += direct_##T(s, o, w, in_man, dn, Lq, mp, mn, qs, ib, b->saturate, negzero, R_ODD); break; \
                    }                                                                             \
                    continue;                                                                     \
                } else if (rmode == 0 && ep->rounding == R_NE) {                                  \
                    for (Py_ssize_t i = 0; i < w; i++) {                                          \
                        int over;                                                                 \
                        o[i] = (T)direct_one(b, s[i], qlow + b->m, max_pos, q_sub, &over);        \
                        count += over;                                                            \
                    }                                                                             \
                    continue;                                                                     \
                }                                                                                 \
            } /* other blocks below the input's normal range: the general path */                 \
            uint64_t idx = (uint64_t)k * (uint64_t)B;                                             \
            for (Py_ssize_t i = 0; i < w; i++) {                                                  \
                uint64_t r = rmode == 1   ? hash64(seed, idx + (uint64_t)i)                       \
                             : rmode == 2 ? rbits[(k - k0) * B + i]                               \
                                          : 0;                                                    \
                int unrep;                                                                        \
                o[i] = (T)general_one(b, ep, s[i], e, r, &unrep);                                 \
                count += unrep;                                                                   \
            }                                                                                     \
        }                                                                                         \
        return count;                                                                             \
    }
BLOCKS(uint32_t, int32_t)
BLOCKS(uint64_t, int64_t)

static PyObject *block_into(PyObject *self, PyObject *args) {
    PyObject *bplan_obj, *eplan_obj, *src_obj, *dst_obj, *rbits_obj;
    Py_ssize_t n, k0, k1;
    int rmode;
    unsigned int s0, s1, s2, s3;
    (void)self;
    if (!PyArg_ParseTuple(args, "OOOOnnni(IIII)O", &bplan_obj, &eplan_obj, &src_obj, &dst_obj, &n, &k0, &k1,
                          &rmode, &s0, &s1, &s2, &s3, &rbits_obj))
        return NULL;
    bplan_t b;
    plan_t ep;
    if (read_bplan(bplan_obj, &b) < 0 || read_plan(eplan_obj, &ep) < 0) return NULL;
    if (ep.width != b.ww || rmode < 0 || rmode > 2 || (rmode != 0) != (ep.rounding >= R_SR) ||
        (b.direct && rmode != 0 && (ep.rounding != R_SR || b.ww != b.width)) ||
        (b.direct && rmode == 0 && (ep.rounding > R_ODD || (ep.rounding != R_NE && b.ww != b.width)))) {
        PyErr_SetString(PyExc_ValueError, "inconsistent element plan or rmode");
        return NULL;
    }
    Py_buffer src, dst, rb;
    if (PyObject_GetBuffer(src_obj, &src, PyBUF_C_CONTIGUOUS) < 0) {
        PyErr_Clear();
        return PyLong_FromLong(-2);
    }
    if (PyObject_GetBuffer(dst_obj, &dst, PyBUF_C_CONTIGUOUS | PyBUF_WRITABLE) < 0) {
        PyErr_Clear();
        PyBuffer_Release(&src);
        return PyLong_FromLong(-2);
    }
    int have_rb = 0;
    Py_ssize_t item = b.width / 8, total = src.len / item, B = (Py_ssize_t)b.block;
    Py_ssize_t nb = n > 0 ? (n + B - 1) / B : 0, rows = n > 0 ? total / n : 0;
    if (src.len != dst.len || src.len % item || n < 0 || (n > 0 && total % n) || k0 < 0 || k1 < k0 ||
        k1 > rows * nb || src.buf == dst.buf) {
        PyErr_SetString(PyExc_ValueError, "src and dst must be distinct rows of n elements holding blocks k0..k1");
        goto fail;
    }
    if (rmode == 2) {
        if (PyObject_GetBuffer(rbits_obj, &rb, PyBUF_C_CONTIGUOUS) < 0) goto fail;
        have_rb = 1;
        if (rb.len != (k1 - k0) * B * 8) {
            PyErr_SetString(PyExc_ValueError, "rbits must hold one 64-bit word per element of blocks k0..k1");
            goto fail;
        }
    }
    uint32_t seed[4] = {s0, s1, s2, s3};
    const uint64_t *rbits = have_rb ? (const uint64_t *)rb.buf : NULL;
    Py_ssize_t count;
    Py_BEGIN_ALLOW_THREADS
    if (b.width == 32)
        count = blocks_uint32_t(&b, &ep, src.buf, dst.buf, n, k0, k1, rmode, seed, rbits);
    else
        count = blocks_uint64_t(&b, &ep, src.buf, dst.buf, n, k0, k1, rmode, seed, rbits);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&src);
    PyBuffer_Release(&dst);
    if (have_rb) PyBuffer_Release(&rb);
    return PyLong_FromSsize_t(count);
fail:
    PyBuffer_Release(&src);
    PyBuffer_Release(&dst);
    if (have_rb) PyBuffer_Release(&rb);
    return NULL;
}

#include "_nvfp4.h" /* NVFP4-style blocks of float32 input (uses unpack_one) */

/* The largest finite magnitude pattern of a float32 buffer (NVFP4's tensor amax). */
static NF_CLONES uint32_t amax32(const uint32_t *src, Py_ssize_t n) {
    uint32_t amax = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        uint32_t a = src[i] & 0x7FFFFFFFu;
        amax = (a < 0x7F800000u && a > amax) ? a : amax;
    }
    return amax;
}

static PyObject *finite_amax(PyObject *self, PyObject *arg) {
    Py_buffer src;
    (void)self;
    if (PyObject_GetBuffer(arg, &src, PyBUF_C_CONTIGUOUS) < 0) return NULL;
    uint32_t amax;
    Py_BEGIN_ALLOW_THREADS
    amax = amax32(src.buf, src.len / 4);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&src);
    return PyLong_FromUnsignedLong(amax);
}

static PyObject *nvfp4_into(PyObject *self, PyObject *args) {
    PyObject *nplan_obj, *eplan_obj, *splan_obj, *src_obj, *dst_obj, *rbits_obj;
    Py_ssize_t n, k0, k1;
    int rmode;
    unsigned int s0, s1, s2, s3;
    (void)self;
    if (!PyArg_ParseTuple(args, "OOOOOnnni(IIII)O", &nplan_obj, &eplan_obj, &splan_obj, &src_obj, &dst_obj, &n,
                          &k0, &k1, &rmode, &s0, &s1, &s2, &s3, &rbits_obj))
        return NULL;
    nplan_t np_;
    plan_t ep, sp;
    if (read_nplan(nplan_obj, &np_) < 0 || read_plan(eplan_obj, &ep) < 0 || read_plan(splan_obj, &sp) < 0)
        return NULL;
    if (ep.width != 64 || sp.width != 64 || sp.rounding != R_NE || rmode < 0 || rmode > 2 ||
        (rmode != 0) != (ep.rounding >= R_SR)) {
        PyErr_SetString(PyExc_ValueError, "inconsistent element or scale plan, or rmode");
        return NULL;
    }
    Py_buffer src, dst, rb;
    if (PyObject_GetBuffer(src_obj, &src, PyBUF_C_CONTIGUOUS) < 0) {
        PyErr_Clear();
        return PyLong_FromLong(-2);
    }
    if (PyObject_GetBuffer(dst_obj, &dst, PyBUF_C_CONTIGUOUS | PyBUF_WRITABLE) < 0) {
        PyErr_Clear();
        PyBuffer_Release(&src);
        return PyLong_FromLong(-2);
    }
    int have_rb = 0;
    Py_ssize_t total = src.len / 4, B = (Py_ssize_t)np_.block;
    Py_ssize_t nb = n > 0 ? (n + B - 1) / B : 0, rows = n > 0 ? total / n : 0;
    if (src.len != dst.len || src.len % 4 || n < 0 || (n > 0 && total % n) || k0 < 0 || k1 < k0 ||
        k1 > rows * nb || src.buf == dst.buf) {
        PyErr_SetString(PyExc_ValueError, "src and dst must be distinct float32 rows of n elements holding blocks k0..k1");
        goto fail;
    }
    if (rmode == 2) {
        if (PyObject_GetBuffer(rbits_obj, &rb, PyBUF_C_CONTIGUOUS) < 0) goto fail;
        have_rb = 1;
        if (rb.len != (k1 - k0) * B * 8) {
            PyErr_SetString(PyExc_ValueError, "rbits must hold one 64-bit word per element of blocks k0..k1");
            goto fail;
        }
    }
    uint32_t seed[4] = {s0, s1, s2, s3};
    const uint64_t *rbits = have_rb ? (const uint64_t *)rb.buf : NULL;
    Py_ssize_t count;
    Py_BEGIN_ALLOW_THREADS
    count = nvfp4_blocks(&np_, &ep, &sp, src.buf, dst.buf, n, k0, k1, rmode, seed, rbits);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&src);
    PyBuffer_Release(&dst);
    if (have_rb) PyBuffer_Release(&rb);
    return PyLong_FromSsize_t(count);
fail:
    PyBuffer_Release(&src);
    PyBuffer_Release(&dst);
    if (have_rb) PyBuffer_Release(&rb);
    return NULL;
}

static PyMethodDef methods[] = {
    {"block_into", block_into, METH_VARARGS,
     "block_into(bplan, eplan, src, dst, n, k0, k1, rmode, seed, rbits) -> the number of results the "
     "input dtype cannot hold (-2: src or dst not a C-contiguous buffer)"},
    {"nvfp4_into", nvfp4_into, METH_VARARGS,
     "nvfp4_into(nplan, eplan, splan, src, dst, n, k0, k1, rmode, seed, rbits) -> as block_into (float32 rows)"},
    {"finite_amax", finite_amax, METH_O, "finite_amax(float32 buffer) -> its largest finite magnitude pattern"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_ckernel", "The block family's compiled kernel (power-of-two scales).", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__ckernel(void) {
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    if (PyModule_AddIntConstant(m, "FIELDS", B_COUNT) < 0 || PyModule_AddIntConstant(m, "NV_FIELDS", N_COUNT) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
