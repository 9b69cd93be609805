/* The compiled rounding kernel of the posit family (numfmt.posit.native loads it).
 *
 * Plain C99 on the Python C API and the buffer protocol (no NumPy headers), as the float and
 * fixed-point kernels, with the same entry point round_into(plan, src, dst, rmode, start, seed,
 * rbits) (arguments, buffers and threads: ../core/_call.h): it rounds the bit patterns of src
 * (float16/bfloat16, float32 or float64, C-contiguous) into dst (same size and width, may be
 * src), with the GIL released. The plan is the packed constants of
 * numfmt.posit.kernel.PositPlan; posit_one is a line by line transcription of posit_codes,
 * posit_decode_bits and PositPlan.round_bits on one element, which every plan can take
 * (loop_*: float16/bfloat16 input, and formats with n - 3 - es < 0); float32/float64 plans
 * take a vector loop on the input patterns instead (fast_*), every element. The result is the NumPy
 * path's bit for bit, stochastic modes included (the random words are the counter hash of
 * numfmt.core.random, in ../core/_rounding.h, or a buffer of a NumPy Generator's words).
 * Posits have no unrepresentable results: it returns -1, or -2 where src or dst is not a
 * C-contiguous (writable) buffer.
 *
 * What it does with specials (as the NumPy path): NaN and +-inf give the input layout's
 * canonical quiet NaN (NaR); +-0 give +0 (posits have no -0); |x| >= maxpos gives +-maxpos and
 * a nonzero |x| < minpos gives +-minpos, whatever the rounding mode. Integer operations only.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#include "../core/_rounding.h" /* Rounding order, counter hash, SR decision */
#include "../core/_call.h"     /* round_into's arguments and buffers, the split across threads, the module */

/* The plan: uint64 fields in this order (numfmt.posit.native._FIELDS). */
enum {
    F_WIDTH, F_CONTAINER, F_IN_MAN, F_IN_BIAS, F_N, F_ES, F_NEED_CLZ, F_ROUNDING, F_RBITS, F_NAN_BITS,
    F_FAST, F_MAXPOS, F_MINPOS, F_COUNT
};

typedef struct {
    int64_t width, container, in_man, in_bias, n, es, emax, nbits;
    int need_clz, rounding, fast;
    uint64_t nan_bits, maxpos, minpos; /* patterns in the input layout (maxpos, minpos: fast plans) */
} plan_t;

static int read_plan(PyObject *obj, plan_t *p) {
    uint64_t f[F_COUNT];
    if (nf_read_fields(obj, f, F_COUNT, "numfmt.posit.native") < 0) return -1;
    p->width = (int64_t)f[F_WIDTH];
    p->container = (int64_t)f[F_CONTAINER];
    p->in_man = (int64_t)f[F_IN_MAN];
    p->in_bias = (int64_t)f[F_IN_BIAS];
    p->n = (int64_t)f[F_N];
    p->es = (int64_t)f[F_ES];
    p->need_clz = (int)f[F_NEED_CLZ];
    p->rounding = (int)f[F_ROUNDING];
    p->nbits = (int64_t)f[F_RBITS];
    p->nan_bits = f[F_NAN_BITS];
    p->fast = (int)f[F_FAST];
    p->maxpos = f[F_MAXPOS];
    p->minpos = f[F_MINPOS];
    if (!(p->width == 16 || p->width == 32 || p->width == 64) || p->container != (p->width == 64 ? 64 : 32) ||
        p->in_man < 1 || p->in_man > 52 || p->nbits < 0 || p->nbits >= p->container || p->n < 2 ||
        p->n > 32 || p->es < 0 || p->es > 16 || p->rounding < R_NE || p->rounding > R_SREQ ||
        (p->fast && (p->container != p->width || p->n - 3 - p->es < 0 || p->minpos >> p->in_man == 0 ||
                    p->maxpos <= p->minpos))) {
        PyErr_SetString(PyExc_ValueError, "inconsistent plan");
        return -1;
    }
    p->emax = (p->n - 2) << p->es; /* log2(maxpos); the Python side checks that the dtype holds 2**+-emax */
    return 0;
}

static inline uint64_t float_bits(const plan_t *p, uint64_t m, int64_t q) { return nf_float_bits(p->in_man, p->in_bias, m, q); }

/* numfmt.posit.kernel.posit_decode_bits: the pattern of a positive magnitude code (0: +0). */
static inline uint64_t decode_one(const plan_t *p, uint64_t code) {
    if (code == 0) return 0;
    const int64_t w = p->n - 1, es = p->es;
    const uint64_t mask = low_mask(w), one = 1;
    int top = (int)((code >> (w - 1)) & 1);
    uint64_t lead = top ? (~code) & mask : code;
    int64_t run = w - bit_length64(lead);
    int64_t k = top ? run - 1 : -run;
    int64_t left = w - 1 - run > 0 ? w - 1 - run : 0;
    uint64_t rest = code & ((one << left) - 1);
    int64_t fb = left - es > 0 ? left - es : 0;
    uint64_t ex = left >= es ? rest >> fb : rest << (es - left);
    uint64_t frac = left >= es ? rest & ((one << fb) - 1) : 0;
    int64_t scale = k * ((int64_t)1 << es) + (int64_t)ex;
    return float_bits(p, (one << fb) | frac, scale - fb);
}

/* The rounding decision of numfmt.float.intbits.increment on the dropped bits rem. */
static inline int increment(const plan_t *p, uint64_t rem, uint64_t half, uint64_t parity, int neg, int64_t d,
                            uint64_t r) {
    int inexact = rem != 0;
    switch (p->rounding) {
    case R_NE: return half_even_up(rem, half, parity);
    case R_NA: return inexact & (rem >= half);
    case R_TZ: return 0;
    case R_TP: return inexact & !neg;
    case R_TN: return inexact & neg;
    case R_ODD: return inexact & (parity == 0);
    case R_SREQ: return inexact & (int)((r >> (p->container - 1)) == 1);
    default: return inexact & sr_decide(p->rounding, p->nbits, p->container, rem, d, r);
    }
}

/* numfmt.posit.kernel.posit_codes and PositPlan.round_bits on one pattern u (widened). */
static inline uint64_t posit_one(const plan_t *p, uint64_t u, uint64_t r) {
    const uint64_t one = 1, sign_bit = one << (p->width - 1), cmask = low_mask(p->container);
    const int64_t man = p->in_man, C = p->container, n = p->n, es = p->es, emax = p->emax;
    /* decompose */
    uint64_t a = u & (sign_bit - 1);
    int neg = (u & sign_bit) != 0;
    uint64_t ex = a >> man, mant = a & ((one << man) - 1);
    uint64_t s = ex == 0 ? mant : (mant | (one << man));
    int64_t exi = (int64_t)ex;
    int64_t e_q = (exi > 1 ? exi : 1) - (p->in_bias + man);
    int64_t e_x;
    if (p->need_clz)
        e_x = ex == 0 ? e_q + (int64_t)bit_length64(mant) - 1 : e_q + man;
    else
        e_x = exi - p->in_bias;
    int special = a >= sign_bit - (one << man); /* NaN or inf */
    if (a == 0 || special) return special ? p->nan_bits : 0;
    int big = e_x >= emax, tiny = e_x < -emax;
    uint64_t code;
    if (big) {
        code = (one << (n - 1)) - 1;
    } else if (tiny) {
        code = 1;
    } else {
        /* the bit string: regime of k, es bits of ec mod 2**es, the t fraction bits of s */
        int64_t ec = clamp64(e_x, -emax, emax - 1 > 0 ? emax - 1 : 0);
        int64_t k = ec >> es; /* floor division (arithmetic shift) */
        uint64_t exb = (uint64_t)(ec & (((int64_t)1 << es) - 1));
        int64_t run = k < 0 ? -k + 1 : k + 2; /* <= n - 1 here */
        uint64_t regime = k < 0 ? 1 : (one << (k + 2)) - 2;
        int64_t keep = n - 1 - run;
        int64_t t = e_x - e_q > 0 ? e_x - e_q : 0;
        uint64_t tail = ((exb << t) | (s & ((one << t) - 1))) & cmask;
        int64_t drop = t + es - keep;
        int64_t dpos = clamp64(drop, 0, C - 1), dneg = clamp64(-drop, 0, C - 1);
        uint64_t kept = tail >> dpos, rem = tail & ((one << dpos) - 1), half = (one << dpos) >> 1;
        uint64_t trunc = ((regime << keep) + (kept << dneg)) & cmask;
        code = (trunc + (uint64_t)increment(p, rem, half, trunc & 1, neg, drop, r)) & cmask;
    }
    uint64_t out = decode_one(p, code);
    return (neg ? out | sign_bit : out) & low_mask(p->width);
}

#define LOOP(T)                                                                               \
    static NF_CLONES void loop_##T(const plan_t *p, const T *src, T *dst, Py_ssize_t n, int rmode, \
                                   uint64_t start, const uint32_t *seed, const void *rbits) {  \
        const int C = (int)p->container;                                                      \
        for (Py_ssize_t i = 0; i < n; i++) {                                                  \
            uint64_t r = random_word(rmode, C, seed, start + (uint64_t)i, rbits, i);          \
            dst[i] = (T)posit_one(p, (uint64_t)src[i], r);                                    \
        }                                                                                     \
    }
LOOP(uint16_t)
LOOP(uint32_t)
LOOP(uint64_t)

/* float32/float64 plans with n - 3 - es >= 0 and a normal minpos: every element in one vector
 * loop. The magnitude pattern is first clamped to [minpos, maxpos] (posits both: |x| >= maxpos
 * gives maxpos, a nonzero |x| < minpos gives minpos, and neither moves in rounding). A positive
 * x in the binade 2**E <= x < 2**(E+1) (E = k * 2**es + e) has the regime of k, kk + 2 bits
 * long (kk: k for k >= 0, -k-1 below), then fb = topfb - kk fraction bits (topfb = n - 3 - es)
 * where fb >= 0, else the exponent field cut short by j = -fb bits (j <= es: kk <= n - 3 below
 * maxpos). Rounding along the bit string drops d = in_man - fb bits: the low d bits of
 * pp = x's pattern + 2**in_man, whose exponent field is E + bias + 1 = E + 2**B (the bias is
 * 2**B - 1), so that its low j <= es bits are E's, the posit's exponent bits: a carry out of
 * the dropped bits gives the next posit (the next fraction, exponent or regime), and pp's value
 * less 2**in_man is the result. The last kept bit (ties to even, to odd) is pp's bit d, but
 * where j = es (d = dtop: no exponent bit is left) it is the regime's last bit, 1 iff E < 0.
 * Nearest even adds half a unit minus one plus that bit, then truncates; plain SR adds the
 * random word's top d bits. +-0 and NaN/inf are selected after. */
#define CHUNK 2048
/* Magnitudes are below 2**(w-1): they compare as signed (one AVX2 instruction for 64 bits too). */
#define PO_PRE(T, ST)                                                                         \
        T u = s[i], a = u & absm, sign = u ^ a;                                               \
        T ac = (ST)a < (ST)minp ? minp : a;                                                   \
        ac = (ST)ac > (ST)maxp ? maxp : ac;                                                   \
        T t = (ac >> in_man) - ubias, sm = (ST)t < 0 ? all : 0; /* sm: E < 0 */               \
        T kk = (t ^ sm) >> es;                                                                \
        T kc = (ST)kk > (ST)kcut ? kcut : kk; /* maxpos: its zero fraction and exponent stay */ \
        ST d = (ST)kc + dbase;                                                                \
        T dc = in_man == 52 ? (T)d : (T)(d > 0 ? d : 0); /* d >= 0 where in_man > topfb */    \
        T pp = ac + hid, msk = (one << dc) - 1;
/* The sign, then the specials. */
#define PO_POST(T, ST, RES)                                                                   \
        T isnan = (ST)a > (ST)infb_1 ? all : 0, zero = (ST)a > 0 ? 0 : all;                   \
        T res = ((((RES) - hid) | sign) & ~(isnan | zero)) | (nanb & isnan);                  \
        out[i] = res;
/* The last kept bit of the truncated posit. */
#define PO_PARITY(T)                                                                          \
        T par = d == dtop ? (sm & one) : ((pp >> dc) & one);
#define PO_NE(T, ST)                                                                          \
    {                                                                                         \
        PO_PRE(T, ST)                                                                         \
        PO_PARITY(T)                                                                          \
        PO_POST(T, ST, (pp + (msk >> 1) + (par & msk)) & ~msk)                                \
    }
#define PO_DET(T, ST)                                                                         \
    {                                                                                         \
        PO_PRE(T, ST)                                                                         \
        PO_PARITY(T)                                                                          \
        T rem = pp & msk, half = (one << dc) >> 1, neg = u >> (w - 1);                        \
        T gt = rem > half ? one : 0, eq = rem == half ? one : 0, nz = rem != 0 ? one : 0;    \
        T inc = (m_ne & gt) | (m_ne & eq & nz & par) | (m_na & nz & (gt | eq)) |               \
                (m_tp & nz & (neg ^ one)) | (m_tn & nz & neg) | (m_odd & nz & (par ^ one));    \
        PO_POST(T, ST, (pp & ~msk) + ((inc & one) << dc))                                     \
    }
/* Plain stochastic (nbits = w - 1 >= d): the random word's top d bits added below the kept
 * bits, then truncated (sr_decide's rem + floor(r_n / 2**(n-d)) >= 2**d). */
#define PO_SR_PLAIN(T, ST, RWORD)                                                             \
    {                                                                                         \
        PO_PRE(T, ST)                                                                         \
        T r = RWORD;                                                                          \
        PO_POST(T, ST, (pp + ((r >> 1) >> (unb - dc))) & ~msk)                                \
    }
/* sr_decide on T (d clamped at 0: with no dropped bits nothing rounds). */
#define PO_SR(T, ST, RWORD)                                                                   \
    {                                                                                         \
        PO_PRE(T, ST)                                                                         \
        T r = RWORD, rem = pp & msk;                                                          \
        T lsc = dc <= unb ? unb - dc : 0, rsc = dc > unb ? dc - unb : 0;                      \
        T h = rem >> rsc, e = rem & ((one << rsc) - 1), hf = (one << rsc) >> 1;                \
        h += m_b & (e != 0 ? one : 0) & (e >= hf ? one : 0);                                  \
        h += m_c & ((e > hf ? one : 0) | ((e == hf ? one : 0) & (e != 0 ? one : 0) & (h & 1))); \
        T vn = dc <= unb ? (rem << lsc) : h;                                                  \
        T nz = rem != 0 ? one : 0;                                                            \
        T inc = (m_eq & nz & (r >> (w - 1))) | (~m_eq & nz & (vn + (r >> (w - unb)) >= top ? one : 0)); \
        PO_POST(T, ST, (pp & ~msk) + ((inc & one) << dc))                                     \
    }
#define HASH32 (mix32(mix32(ctr ^ k0) ^ (k1 ^ fold)))
#define HASH64                                                                                \
    ((((uint64_t)mix32(mix32(ctr ^ k0) ^ (k1 ^ fold)) << 32) |                                \
      (uint64_t)mix32(mix32(ctr ^ k2) ^ (k3 ^ fold))))
/* Each element is read before it is written: dst may be src. */
#define FAST_LOOP(T, ST, HASH, MAN, BIAS)                                                     \
    static NF_CLONES void fast_##T(const plan_t *p, const T *src, T *dst, Py_ssize_t n, int rmode, \
                                   uint64_t start, const uint32_t *seed, const void *rbits) {  \
        /* one: not a constant, or GCC narrows the count of one << dc and vectorizes no shift; \
         * the layout's constants are literals (float32 or float64) */                        \
        const T one = (T)(p->width > 0), in_man = MAN, ubias = BIAS, w = sizeof(T) * 8;       \
        const T hid = ((T)1) << in_man, absm = (((T)1) << (w - 1)) - 1, infb = absm - (hid - 1); \
        const T all = (T)~(T)0, infb_1 = infb - 1;                                            \
        const T maxp = (T)p->maxpos, minp = (T)p->minpos, nanb = (T)p->nan_bits;             \
        const T kcut = (T)(p->n - 3), es = (T)p->es;                                          \
        /* d = in_man - fb = kk + in_man - topfb, dtop where kk = n - 3 */                    \
        const ST dbase = (ST)(p->in_man - (p->n - 3 - p->es)), dtop = (ST)(p->in_man + p->es); \
        const T unb = (T)p->nbits;                                                            \
        const T top = ((T)1) << (p->nbits > 0 ? p->nbits : 1);                                \
        const int rd = p->rounding, C = (int)p->container;                                    \
        const T m_ne = rd == R_NE ? all : 0, m_na = rd == R_NA ? all : 0;                     \
        const T m_tp = rd == R_TP ? all : 0, m_tn = rd == R_TN ? all : 0;                     \
        const T m_odd = rd == R_ODD ? all : 0, m_b = rd == R_SRB ? all : 0;                   \
        const T m_c = rd == R_SRC ? all : 0, m_eq = rd == R_SREQ ? all : 0;                   \
        const int plain = rd == R_SR && p->nbits == p->width - 1;                             \
        const uint32_t k0 = seed[0], k1 = seed[1], k2 = seed[2], k3 = seed[3];                \
        (void)k2; (void)k3;                                                                   \
        for (Py_ssize_t base = 0; base < n; base += CHUNK) {                                  \
            Py_ssize_t m = n - base < CHUNK ? n - base : CHUNK;                               \
            uint64_t idx0 = start + (uint64_t)base;                                           \
            const T *s = src + base;                                                          \
            T *out = dst + base;                                                              \
            if (rd == R_NE) {                                                                 \
                for (Py_ssize_t i = 0; i < m; i++) PO_NE(T, ST)                               \
            } else if (rd < R_SR) {                                                           \
                for (Py_ssize_t i = 0; i < m; i++) PO_DET(T, ST)                              \
            } else if (rmode == 1 && ((idx0 + (uint64_t)m - 1) >> 32) == (idx0 >> 32)) {     \
                const uint32_t fold = (uint32_t)((idx0 >> 32) * 0x9E3779B9U);                 \
                uint32_t ctr = (uint32_t)idx0; /* the index's low word, counted along */       \
                if (plain)                                                                    \
                    for (Py_ssize_t i = 0; i < m; i++, ctr++) PO_SR_PLAIN(T, ST, (T)(HASH))   \
                else                                                                          \
                    for (Py_ssize_t i = 0; i < m; i++, ctr++) PO_SR(T, ST, (T)(HASH))         \
            } else if (rmode == 2) { /* a Generator's words, one of the width per element */ \
                const T *rw = (const T *)rbits + base;                                        \
                if (plain)                                                                    \
                    for (Py_ssize_t i = 0; i < m; i++) PO_SR_PLAIN(T, ST, rw[i])              \
                else                                                                          \
                    for (Py_ssize_t i = 0; i < m; i++) PO_SR(T, ST, rw[i])                    \
            } else { /* the hash of a chunk across a multiple of 2**32 */                     \
                for (Py_ssize_t i = 0; i < m; i++)                                            \
                    PO_SR(T, ST, (T)random_word(rmode, C, seed, idx0 + (uint64_t)i, rbits, base + i)) \
            }                                                                                 \
        }                                                                                     \
    }
FAST_LOOP(uint32_t, int32_t, HASH32, 23, 127)
FAST_LOOP(uint64_t, int64_t, HASH64, 52, 1023)

/* nf_split's ranges: elements lo .. hi - 1 of the call (numfmt/core/_call.h). Posits have
 * no unrepresentable results: always -1. */
static Py_ssize_t run_range(void *ctx, Py_ssize_t lo, Py_ssize_t hi) {
    const nf_call_t *c = (const nf_call_t *)ctx;
    const plan_t *p = (const plan_t *)c->plan;
    Py_ssize_t n = hi - lo;
    uint64_t start = c->start + (uint64_t)lo;
    const void *rb = NF_RBITS(c, lo);
    if (p->fast && p->width == 32)
        fast_uint32_t(p, NF_SRC(c, uint32_t, lo), NF_DST(c, uint32_t, lo), n, c->rmode, start, c->seed, rb);
    else if (p->fast && p->width == 64)
        fast_uint64_t(p, NF_SRC(c, uint64_t, lo), NF_DST(c, uint64_t, lo), n, c->rmode, start, c->seed, rb);
    else if (p->width == 16)
        loop_uint16_t(p, NF_SRC(c, uint16_t, lo), NF_DST(c, uint16_t, lo), n, c->rmode, start, c->seed, rb);
    else if (p->width == 32)
        loop_uint32_t(p, NF_SRC(c, uint32_t, lo), NF_DST(c, uint32_t, lo), n, c->rmode, start, c->seed, rb);
    else
        loop_uint64_t(p, NF_SRC(c, uint64_t, lo), NF_DST(c, uint64_t, lo), n, c->rmode, start, c->seed, rb);
    return -1;
}

static PyObject *round_into(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    plan_t p;
    if (nargs < 1 || read_plan(args[0], &p) < 0) {
        if (nargs < 1) PyErr_SetString(PyExc_TypeError, "round_into takes 7 arguments");
        return NULL;
    }
    return nf_round_into(args, nargs, &p, (int)p.width, (int)p.container, p.rounding >= R_SR, 0, p.fast != 0,
                         run_range);
}

NF_MODULE("The posit family's compiled rounding kernel.", F_COUNT)
