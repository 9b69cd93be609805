/* The compiled rounding kernel of the float family (numfmt.float.native loads it).
 *
 * Plain C99 on the Python C API and the buffer protocol (no NumPy headers). One
 * entry point, round_into(plan, src, dst, rmode, start, seed, rbits): it rounds the
 * bit patterns of src (float16/bfloat16, float32 or float64, C-contiguous) into
 * dst (same size and width, may be src itself) element by element, with the GIL
 * released (from 2**12 elements). The plan is the packed constants of
 * numfmt.float.kernel.Plan (and, where numfmt.float.fast applies, of its
 * FastPlan); the arithmetic is a line by
 * line transcription of numfmt.float.kernel.round_bits on one element (round_one),
 * so the result is that kernel's bit for bit; float32/float64 inputs of the plans
 * numfmt.float.fast covers (and of the directed modes on the same formats) take
 * vector loops first (fast_*), which leave what they cannot do to round_one.
 * Stochastic modes take their random words
 * from numfmt.core.random's counter hash of the flat index (rmode 1: four seed
 * words and the index of src's first element) or from a buffer (rmode 2: the
 * words a NumPy Generator drew). It returns -1, or the index of the first
 * element whose result the input dtype cannot hold (the caller raises), or -2
 * where src or dst is not a C-contiguous (writable) buffer or they overlap
 * (../core/_call.h). Arrays of 2**18 elements or more (2**14 where every element
 * goes through round_one) are split across numfmt.set_num_threads threads.
 *
 * Integer operations only, but for MAGIC_NE (nearest even below the normal range: one
 * float addition and subtraction, exact up to the rounding they do, whose results do not
 * depend on the CPU's subnormal mode either; it assumes the default rounding direction, as
 * the fixed kernel's FX_SHORT and NumPy's own arithmetic do). NaN is returned unchanged.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#include "../core/_rounding.h" /* Rounding order, counter hash, SR decision */
#include "../core/_call.h"     /* round_into's arguments and buffers, the split across threads */

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define NF_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define NF_CLONES
#endif

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
    if (nf_read_fields(obj, f, F_COUNT, "numfmt.float.native") < 0) return -1;
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
#define WIDE_RNE(T, ST) WIDE_DET(T, ST, 0)
#define WIDE_DET(T, ST, RWORD)                                                                \
    {                                                                                         \
        WIDE_PRE(T, ST)                                                                       \
        T d = (T)(dt > (ST)in_man + 2 ? (ST)in_man + 2 : dt);                                 \
        T rem = sig & ((one << d) - 1);                                                       \
        T half = (one << d) >> 1;                                                             \
        T gt = rem > half ? one : 0, eq = rem == half ? one : 0, nz = rem != 0 ? one : 0;    \
        T par = (sig >> d) & 1, neg = u >> (w - 1);                                           \
        /* the deterministic modes by loop-invariant masks (fast == 3: directed modes) */     \
        T inc = (m_ne & (gt | (eq & par))) | (m_na & (gt | eq)) | (m_tp & nz & (neg ^ one)) | \
                (m_tn & nz & neg) | (m_odd & nz & (par ^ one)) | (m_eq & nz & ((RWORD) >> (w - 1))); \
        T near = v - rem + (inc << d);                                                        \
        T tiny = inc ? qbits : 0;                                                             \
        buf[i] = (deep ? tiny : near) | sign;                                                 \
    }
/* WIDE_RNE for nearest even alone (ne: at least one dropped bit in the normal range), fewer
 * operations: the carry of v + (half - 1) + parity rounds in place, as SHORT_RNE's does, with
 * the parity from the significand (at d == in_man the kept bit is the hidden one); deep, the
 * result is q where the magnitude exceeds q / 2 (one dropped bit past in_man, significand
 * above the hidden bit), else 0 (a tie at q / 2 goes to 0, even). */
#define WIDE_NE(T, ST)                                                                        \
    {                                                                                         \
        WIDE_PRE(T, ST)                                                                       \
        T d = (T)(dt > (ST)in_man ? (ST)in_man : dt);                                         \
        T par = (sig >> d) & 1;                                                               \
        T near = (v + ((one << d) >> 1) - one + par) & ~((one << d) - 1);                     \
        T tiny = dt == (ST)in_man + 1 && sig > hidden ? qbits : 0;                            \
        buf[i] = (deep ? tiny : near) | sign;                                                 \
    }
/* Nearest even right up to hi with the magic number of numfmt.float.fast (f_magic: M =
 * 3 * 2**(p-2) * q in the input's float type) below lo: (t + M) - M, t = min(|x|, lo), is t
 * rounded to nearest even among multiples of q, exactly (the proof: numfmt/float/fast.py).
 * Two float operations, as the fixed kernel's FX_SHORT: exact but for that rounding, whatever
 * the CPU's subnormal mode (an input subnormal is below q / 2 and gives 0 either way; t is
 * at most lo, so no inf or NaN enters); above lo, SHORT_RNE's sequence. Fewer operations
 * than WIDE_NE, which it replaces where fast.py has M. */
#define MAGIC_NE(T, ST, FT)                                                                   \
    {                                                                                         \
        T u = s[i], a = u & absm;                                                             \
        T v = a < mx ? a : mx;                                                                \
        T below = a < lo ? one : 0, sel = (T)0 - below;                                       \
        nout += a > hi ? one : 0;                                                             \
        nlow += below;                                                                        \
        T nr = (v + bias + ((v >> shift) & 1)) & keep;                                        \
        T t = v < lo ? v : lo, sub;                                                           \
        FT tf, rf;                                                                            \
        memcpy(&tf, &t, sizeof(T));                                                           \
        rf = (tf + magic) - magic;                                                            \
        memcpy(&sub, &rf, sizeof(T));                                                         \
        /* a select by mask: gcc keeps a ternary on a float result as a branch */             \
        buf[i] = (sub & sel) | (nr & ~sel) | (u ^ a);                                         \
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
/* numfmt.float.fast's plans (width == container), a chunk at a time, written straight
 * into dst, or into a local buffer where dst is src (the chunk's elements are read
 * again below: the widened pass and the rare ones). A chunk first takes the short sequence (SHORT_*: a few
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
/* The directed modes, nearest-away and to-odd within [lo, hi] (fast == 3): the increment
 * by the loop-invariant masks of WIDE_RNE (toward zero: none), then the dropped bits
 * cleared; to odd sets the lowest kept bit of an inexact result instead. */
#define SHORT_DIR(T, ST)                                                                        \
    {                                                                                         \
        T u = s[i], a = u & absm;                                                             \
        T v = (a < mx ? a : mx) | (u ^ a);                                                    \
        T neg = u >> (w - 1), low = ~keep;                                                    \
        nout += (T)(a - lo) > span ? one : 0;                                                 \
        T add = (m_na & (bias + one)) | (m_tp & (neg ? 0 : low)) | (m_tn & (neg ? low : 0));  \
        T odd = (v & low) != 0 ? (m_odd & (one << shift)) : 0;                                \
        buf[i] = ((v + add) & keep) | odd;                                                    \
    }
/* Stochastic with equal probabilities (fast == 4): up by the top bit of the word. */
#define SHORT_EQ(T, ST, RWORD)                                                                \
    {                                                                                         \
        T u = s[i], a = u & absm;                                                             \
        T v = (a < mx ? a : mx) | (u ^ a);                                                    \
        T r = RWORD;                                                                          \
        nout += (T)(a - lo) > span ? one : 0;                                                 \
        buf[i] = (v + ((r >> (w - 1)) ? ~keep : 0)) & keep;                                   \
    }
#define SHORT_SR(T, ST, RWORD)                                                                \
    {                                                                                         \
        T u = s[i], a = u & absm;                                                             \
        T v = (a < mx ? a : mx) | (u ^ a);                                                    \
        T r = RWORD;                                                                          \
        nout += (T)(a - lo) > span ? one : 0;                                                 \
        buf[i] = (v + (r >> shift)) & keep;                                                   \
    }
#define RUN(T, ST, FT, HASH, BODY_MAGIC, BODY_NE, BODY_DET, BODY_SR)                         \
    do {                                                                                      \
        if (!sr && use_magic) {                                                               \
            for (Py_ssize_t i = 0; i < m; i++) BODY_MAGIC(T, ST, FT)                          \
        } else if (!sr && ne) {                                                               \
            for (Py_ssize_t i = 0; i < m; i++) BODY_NE(T, ST)                                 \
        } else if (!sr) {                                                                     \
            for (Py_ssize_t i = 0; i < m; i++) BODY_DET(T, ST)                                \
        } else if (rmode == 1) {                                                              \
            uint32_t fold = (uint32_t)((idx0 >> 32) * 0x9E3779B9U), i0 = (uint32_t)idx0;      \
            for (Py_ssize_t i = 0; i < m; i++) BODY_SR(T, ST, (T)(HASH))                      \
        } else {                                                                              \
            const T *rb = (const T *)rbits + base;                                            \
            for (Py_ssize_t i = 0; i < m; i++) BODY_SR(T, ST, rb[i])                          \
        }                                                                                     \
    } while (0)

#define SHORT_RNE_(T, ST, FT) SHORT_RNE(T, ST) /* (RUN's magic body where it does not apply) */
#define FAST_LOOP(T, ST, FT, HASH)                                                            \
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
        const int sr = p->fast == 2 || p->fast == 4, eq = p->fast == 4;                       \
        const T all = (T)~(T)0, rd = (T)p->rounding;                                           \
        const T m_ne = rd == R_NE ? all : 0, m_na = rd == R_NA ? all : 0;                     \
        const T m_tp = rd == R_TP ? all : 0, m_tn = rd == R_TN ? all : 0;                     \
        const T m_odd = rd == R_ODD ? all : 0; /* toward zero: no mask, inc = 0 */            \
        const T m_eq = rd == R_SREQ ? all : 0;                                                \
        const int ne = rd == R_NE && dn > 0; /* WIDE_NE applies */                            \
        /* MAGIC_NE applies: it replaces WIDE_NE, and a chunk with more than one element      \
         * outside [lo, hi] takes it (the flag pass, scan and fix of a few cost about as much;  \
         * e2m1 of 10**7 float64: 1.97 -> 1.60 times a copy), and so do the next while they    \
         * have that many below lo */                                                          \
        const int magic_ok = ne && p->fast == 1 && p->f_magic != 0;                           \
        const T dense_at = magic_ok ? 1 : DENSE;                                                \
        const T magic_bits = (T)p->f_magic;                                                   \
        FT magic;                                                                             \
        memcpy(&magic, &magic_bits, sizeof(T));                                               \
        uint32_t k0 = seed[0], k1 = seed[1], k2 = seed[2], k3 = seed[3];                      \
        T lbuf[CHUNK];                                                                        \
        const int direct = dst + n <= src || src + n <= dst; /* no overlap: write dst itself */ \
        uint8_t flg[CHUNK + 8];                                                               \
        int dense = 0;                                                                        \
        (void)k2; (void)k3;                                                                   \
        for (Py_ssize_t base = 0; base < n; base += CHUNK) {                                  \
            Py_ssize_t m = n - base < CHUNK ? n - base : CHUNK;                               \
            const T *s = src + base;                                                          \
            T *buf = direct ? dst + base : lbuf;                                              \
            uint64_t idx0 = start + (uint64_t)base;                                           \
            if (sr && rmode == 1 && ((idx0 + (uint64_t)m - 1) >> 32) != (idx0 >> 32)) {       \
                /* the chunk straddles a multiple of 2**32: round_one hashes */               \
                for (Py_ssize_t i = 0; i < m; i++) {                                          \
                    int unrep;                                                                \
                    buf[i] = (T)round_one(p, s[i], WORD(base + i), &unrep);                   \
                }                                                                             \
                if (!direct) memcpy(dst + base, buf, (size_t)m * sizeof(T));                   \
                continue;                                                                     \
            }                                                                                 \
            T nlow = 0, nout = 0;                                                             \
            int wide = dense;                                                                 \
            if (!wide) {                                                                      \
                int use_magic = 0;                                                            \
                if (eq)                                                                       \
                    RUN(T, ST, FT, HASH, SHORT_RNE_, SHORT_RNE, SHORT_DIR, SHORT_EQ);         \
                else if (p->fast == 3)                                                        \
                    RUN(T, ST, FT, HASH, SHORT_RNE_, SHORT_RNE, SHORT_DIR, SHORT_SR);         \
                else                                                                          \
                    RUN(T, ST, FT, HASH, SHORT_RNE_, SHORT_RNE, SHORT_RNE, SHORT_SR);         \
                wide = nout > dense_at;                                                       \
                if (nout && !wide)                                                            \
                    for (Py_ssize_t i = 0; i < m; i++)                                        \
                        flg[i] = (T)((s[i] & absm) - lo) > span ? 1 : 0;                      \
            }                                                                                 \
            if (wide) {                                                                       \
                nout = 0;                                                                     \
                int use_magic = magic_ok;                                                     \
                if (eq)                                                                       \
                    RUN(T, ST, FT, HASH, MAGIC_NE, WIDE_NE, WIDE_RNE, WIDE_DET);              \
                else                                                                          \
                    RUN(T, ST, FT, HASH, MAGIC_NE, WIDE_NE, WIDE_RNE, WIDE_SR);               \
                dense = nlow > dense_at;                                                      \
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
                        else if (eq) /* below lo: the widened sequence, one element */        \
                            WIDE_DET(T, ST, (T)WORD(base + i))                                \
                        else if (sr)                                                          \
                            WIDE_SR(T, ST, (T)WORD(base + i))                                 \
                        else if (ne)                                                          \
                            WIDE_NE(T, ST)                                                    \
                        else                                                                  \
                            WIDE_RNE(T, ST)                                                   \
                        nout--;                                                               \
                    }                                                                         \
            }                                                                                 \
            if (!direct) memcpy(dst + base, buf, (size_t)m * sizeof(T));                       \
        }                                                                                     \
        return -1;                                                                            \
    }
FAST_LOOP(uint32_t, int32_t, float, HASH32)
FAST_LOOP(uint64_t, int64_t, double, HASH64)

/* nf_split's ranges: elements lo .. hi - 1 of the call (numfmt/core/_call.h). */
static Py_ssize_t run_range(void *ctx, Py_ssize_t lo, Py_ssize_t hi) {
    const nf_call_t *c = (const nf_call_t *)ctx;
    const plan_t *p = (const plan_t *)c->plan;
    Py_ssize_t n = hi - lo;
    uint64_t start = c->start + (uint64_t)lo;
    const void *rb = NF_RBITS(c, lo);
    if (p->fast && p->width == 32)
        return fast_uint32_t(p, NF_SRC(c, uint32_t, lo), NF_DST(c, uint32_t, lo), n, c->rmode, start, c->seed, rb);
    if (p->fast && p->width == 64)
        return fast_uint64_t(p, NF_SRC(c, uint64_t, lo), NF_DST(c, uint64_t, lo), n, c->rmode, start, c->seed, rb);
    if (p->width == 16)
        return general_uint16_t(p, NF_SRC(c, uint16_t, lo), NF_DST(c, uint16_t, lo), n, c->rmode, start, c->seed, rb);
    if (p->width == 32)
        return general_uint32_t(p, NF_SRC(c, uint32_t, lo), NF_DST(c, uint32_t, lo), n, c->rmode, start, c->seed, rb);
    return general_uint64_t(p, NF_SRC(c, uint64_t, lo), NF_DST(c, uint64_t, lo), n, c->rmode, start, c->seed, rb);
}

static PyObject *round_into(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    plan_t p;
    if (nargs < 1 || read_plan(args[0], &p) < 0) {
        if (nargs < 1) PyErr_SetString(PyExc_TypeError, "round_into takes 7 arguments");
        return NULL;
    }
    return nf_round_into(args, nargs, &p, (int)p.width, (int)p.container, p.rounding >= R_SR, p.can_unrep, p.fast != 0,
                         run_range);
}

NF_MODULE("The float family's compiled rounding kernel.", F_COUNT)
