/* The float family's element rounding, shared by the compiled kernels that round into
 * float formats (numfmt/float/_ckernel.c; numfmt/block/_ckernel.c rounds block elements
 * with it): the packed plan of numfmt.float.native and round_one, a line by line
 * transcription of numfmt.float.kernel.round_bits on one element. Header-only (static
 * inline): each extension compiles its own copy. Include Python.h and _rounding.h first.
 */
#ifndef NUMFMT_FLOAT_ELEMENT_H
#define NUMFMT_FLOAT_ELEMENT_H
#include <stdint.h>
#include <string.h>

/* The plan: uint64 fields in this order (numfmt.float.native._FIELDS). */
enum {
    F_WIDTH, F_CONTAINER, F_IN_MAN, F_IN_BIAS, F_MAN, F_EMIN, F_SIGNED, F_NEGZERO, F_HASZERO,
    F_SUBN, F_NEED_CLZ, F_QE_SUB, F_Q_SUB_BITS, F_MIN_BITS, F_THRESHOLD, F_HAS_MAX, F_MAX_BITS,
    F_INF_BITS, F_NAN_BITS, F_HAS_INF_LIKE, F_INF_LIKE, F_HAS_INF_INPUT, F_INF_INPUT,
    F_CARRY_OVER, F_MAX_BEYOND, F_TINY_BEYOND, F_CAN_UNREP, F_ROUNDING, F_OVERFLOW, F_RBITS,
    F_FAST, F_F_SATURATE, F_F_MAX, F_F_LO, F_F_SPAN, F_F_SHIFT, F_F_BIAS, F_F_KEEP, F_F_ABS,
    F_F_MAGIC, F_COUNT
};

enum { O_NONE, O_FINITE, O_PROPAGATE };
enum { S_ON, S_FLUSH, S_RTN, S_NOZERO };

typedef struct {
    int64_t width, container, in_man, in_bias, man, emin, qe_sub, nbits;
    int signed_, negzero, haszero, subn, need_clz, has_max, has_inf_like, has_inf_input;
    int carry_over, max_beyond, tiny_beyond, can_unrep, rounding, overflow;
    int fast, f_saturate; /* fast: 0 none, 1 nearest even, 2 stochastic (fast.py), 3 directed, 4 stochastic_equal */
    uint64_t q_sub_bits, min_bits, threshold, max_bits, inf_bits, nan_bits, inf_like, inf_input;
    uint64_t f_max, f_lo, f_span, f_shift, f_bias, f_keep, f_abs, f_magic;
} plan_t;

static int read_plan(PyObject *obj, plan_t *p) {
    uint64_t f[F_COUNT];
    if (!PyBytes_Check(obj) || PyBytes_GET_SIZE(obj) != (Py_ssize_t)sizeof(f)) {
        PyErr_SetString(PyExc_TypeError, "plan must be the packed bytes of numfmt.float.native");
        return -1;
    }
    memcpy(f, PyBytes_AS_STRING(obj), sizeof(f));
    p->width = (int64_t)f[F_WIDTH];
    p->container = (int64_t)f[F_CONTAINER];
    p->in_man = (int64_t)f[F_IN_MAN];
    p->in_bias = (int64_t)f[F_IN_BIAS];
    p->man = (int64_t)f[F_MAN];
    p->emin = (int64_t)f[F_EMIN];
    p->qe_sub = (int64_t)f[F_QE_SUB];
    p->nbits = (int64_t)f[F_RBITS];
    p->signed_ = (int)f[F_SIGNED];
    p->negzero = (int)f[F_NEGZERO];
    p->haszero = (int)f[F_HASZERO];
    p->subn = (int)f[F_SUBN];
    p->need_clz = (int)f[F_NEED_CLZ];
    p->has_max = (int)f[F_HAS_MAX];
    p->has_inf_like = (int)f[F_HAS_INF_LIKE];
    p->has_inf_input = (int)f[F_HAS_INF_INPUT];
    p->carry_over = (int)f[F_CARRY_OVER];
    p->max_beyond = (int)f[F_MAX_BEYOND];
    p->tiny_beyond = (int)f[F_TINY_BEYOND];
    p->can_unrep = (int)f[F_CAN_UNREP];
    p->rounding = (int)f[F_ROUNDING];
    p->overflow = (int)f[F_OVERFLOW];
    p->fast = (int)f[F_FAST];
    p->f_saturate = (int)f[F_F_SATURATE];
    p->q_sub_bits = f[F_Q_SUB_BITS];
    p->min_bits = f[F_MIN_BITS];
    p->threshold = f[F_THRESHOLD];
    p->max_bits = f[F_MAX_BITS];
    p->inf_bits = f[F_INF_BITS];
    p->nan_bits = f[F_NAN_BITS];
    p->inf_like = f[F_INF_LIKE];
    p->inf_input = f[F_INF_INPUT];
    p->f_max = f[F_F_MAX];
    p->f_lo = f[F_F_LO];
    p->f_span = f[F_F_SPAN];
    p->f_shift = f[F_F_SHIFT];
    p->f_bias = f[F_F_BIAS];
    p->f_keep = f[F_F_KEEP];
    p->f_abs = f[F_F_ABS];
    p->f_magic = f[F_F_MAGIC];
    if (!(p->width == 16 || p->width == 32 || p->width == 64) || p->container != (p->width == 64 ? 64 : 32) ||
        p->in_man < 1 || p->in_man > 52 || p->nbits < 0 || p->nbits >= p->container) {
        PyErr_SetString(PyExc_ValueError, "inconsistent plan");
        return -1;
    }
    return 0;
}

/* numfmt.float.kernel._sr_up on one element (all values fit the container). */
static inline int sr_up(const plan_t *p, uint64_t rem, int64_t d, uint64_t r) {
    return sr_decide(p->rounding, p->nbits, p->container, rem, d, r);
}

/* numfmt.float.kernel.round_bits on one pattern u (the input's width, widened). */
static inline uint64_t round_one(const plan_t *p, uint64_t u, uint64_t r, int *unrep_out) {
    const uint64_t one = 1, sign_bit = one << (p->width - 1);
    const uint64_t cmask = p->container == 64 ? ~(uint64_t)0 : 0xFFFFFFFFu;
    /* decompose */
    uint64_t a = u & (sign_bit - 1);
    int neg = (u & sign_bit) != 0;
    uint64_t ex = a >> p->in_man;
    uint64_t mant = a & ((one << p->in_man) - 1);
    uint64_t s = ex == 0 ? mant : (mant | (one << p->in_man));
    int64_t exi = (int64_t)ex;
    int64_t e_q = (exi > 1 ? exi : 1) - (p->in_bias + p->in_man);
    int64_t e_x;
    if (p->need_clz)
        e_x = ex == 0 ? e_q + (int64_t)bit_length64(mant) - 1 : e_q + p->in_man;
    else
        e_x = exi - p->in_bias;
    int below = e_x < p->emin;
    int64_t qe = below ? p->qe_sub : e_x - p->man;
    int64_t d = qe - e_q;
    int64_t dc = clamp64(d, 0, p->in_man + 2);
    uint64_t kept = s >> dc, rem = s & ((one << dc) - 1), half = (one << dc) >> 1;
    int inexact = rem != 0;
    uint64_t parity;
    if (p->man == 0) {
        int64_t offset = p->subn == S_NOZERO ? 1 : 0;
        parity = (kept + (uint64_t)(qe - (p->emin + offset))) & 1;
    } else {
        parity = kept & 1;
    }
    int inc;
    switch (p->rounding) {
    case R_NE:
        if (p->subn == S_RTN && p->man > 0 && below) parity = 1;
        inc = half_even_up(rem, half, parity);
        break;
    case R_NA: inc = inexact & (rem >= half); break;
    case R_TZ: inc = 0; break;
    case R_TP: inc = inexact & !neg; break;
    case R_TN: inc = inexact & neg; break;
    case R_ODD: inc = inexact & (parity == 0); break;
    case R_SREQ: inc = inexact & (int)((r >> (p->container - 1)) == 1); break;
    default: inc = sr_up(p, rem, d, r); break;
    }
    uint64_t res = (a - rem + ((uint64_t)inc << dc)) & cmask;
    int deep = d > p->in_man;
    if (deep) res = inc ? p->q_sub_bits : 0;
    if (p->subn == S_FLUSH && below) res = 0;
    else if (p->subn == S_NOZERO && below) res = p->min_bits;
    int tiny = 0;
    if (p->tiny_beyond) {
        tiny = p->subn == S_NOZERO ? below : (deep & inc);
        tiny = tiny & (a != 0) & (a < p->inf_bits);
    }
    /* overflow */
    int unrep = 0;
    int over = (res > p->threshold) & (a < p->inf_bits);
    if (!p->carry_over && p->max_beyond) {
        unrep = over;
    } else {
        int to_max;
        if (p->overflow != O_NONE || p->rounding == R_TZ || p->rounding == R_ODD) to_max = 1;
        else if (!p->has_inf_like) to_max = 1;
        else if (p->rounding == R_TP) to_max = neg;
        else if (p->rounding == R_TN) to_max = !neg;
        else to_max = 0;
        uint64_t big = to_max ? (p->has_max ? p->max_bits : 0) : (p->has_inf_like ? p->inf_like : 0);
        if (over) res = big;
        if (!p->has_max) unrep = over & to_max;
    }
    /* special inputs */
    int is_inf = a == p->inf_bits;
    if (!p->has_inf_input) {
        if (is_inf) res = p->has_max ? p->max_bits : 0;
        if (!p->has_max) unrep |= is_inf;
    } else if (is_inf) {
        res = p->inf_input;
    }
    if (!p->haszero && a == 0) res = p->nan_bits;
    uint64_t out;
    if (!p->signed_)
        out = (neg && a != 0) ? p->nan_bits : res;
    else if (p->negzero)
        out = res | (u & sign_bit);
    else
        out = (neg && res != 0) ? (res | sign_bit) : res;
    if (a > p->inf_bits) out = u;
    unrep |= tiny;
    if (!p->signed_) unrep &= !neg;
    *unrep_out = p->can_unrep ? unrep : 0;
    return out;
}

#endif
