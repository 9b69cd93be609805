/* The compiled rounding kernel of the fixed-point family (numfmt.fixed.native loads it).
 *
 * Plain C99 on the Python C API and the buffer protocol (no NumPy headers), as
 * numfmt/float/_ckernel.c, with the same entry point round_into(plan, src, dst,
 * rmode, start, seed, rbits): it rounds the bit patterns of src (float16/bfloat16,
 * float32 or float64, C-contiguous) into dst (same size and width, may be src), with
 * the GIL released (from 2**12 elements). The plan is the packed constants of
 * numfmt.fixed.kernel.FixedPlan; fixed_one is a line by line transcription of fixed_codes and FixedPlan.round_bits on
 * one element, which every plan can take (loop_*); float32/float64 plans whose values
 * the input dtype holds take vector loops first (fast_*), which leave what they cannot
 * do to fixed_one. The result is the NumPy kernel's bit for bit, stochastic modes included (the random words are the counter
 * hash of numfmt.core.random, shared with the float kernel in ../core/_rounding.h,
 * or a buffer of a NumPy Generator's words). It returns -1, or the index of the first
 * element whose result the input dtype cannot hold (the caller raises), or -2 where
 * src or dst is not a C-contiguous (writable) buffer or they overlap (../core/_call.h).
 * Large arrays are split across numfmt.set_num_threads threads (../core/_threads.h).
 *
 * Integer operations only, but for the short sequence of nearest even (FX_SHORT: two
 * exact float additions, whose results do not depend on the CPU's subnormal mode
 * either). NaN is returned unchanged.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#include "../core/_rounding.h" /* Rounding order, counter hash, SR decision */
#include "../core/_call.h"     /* round_into's arguments and buffers, the split across threads */

/* The plan: uint64 fields in this order (numfmt.fixed.native._FIELDS). */
enum {
    F_WIDTH, F_CONTAINER, F_IN_MAN, F_IN_BIAS, F_FRAC, F_MAG, F_BITS, F_SIGNED, F_WRAP, F_NEED_CLZ,
    F_CAN_UNREP, F_ROUNDING, F_RBITS, F_FAST, F_POS, F_NEG, F_QBITS, F_MAGIC, F_WRAP_C, F_MAGIC_W, F_LIMIT, F_WRAPV, F_COUNT
};

typedef struct {
    int64_t width, container, in_man, in_bias, frac, mag, bits, nbits;
    int signed_, wrap, need_clz, can_unrep, rounding, fast, wrapv;
    uint64_t pos, neg, qbits, magic; /* patterns of max_value, -min_value, the quantum, M (fast plans) */
    uint64_t wrap_c, magic_w, limit; /* numfmt.fixed.fast's lo, magic_w and limit (fast == 3) */
} plan_t;

static int read_plan(PyObject *obj, plan_t *p) {
    uint64_t f[F_COUNT];
    if (nf_read_fields(obj, f, F_COUNT, "numfmt.fixed.native") < 0) return -1;
    p->width = (int64_t)f[F_WIDTH];
    p->container = (int64_t)f[F_CONTAINER];
    p->in_man = (int64_t)f[F_IN_MAN];
    p->in_bias = (int64_t)f[F_IN_BIAS];
    p->frac = (int64_t)f[F_FRAC];
    p->mag = (int64_t)f[F_MAG];
    p->bits = (int64_t)f[F_BITS];
    p->nbits = (int64_t)f[F_RBITS];
    p->signed_ = (int)f[F_SIGNED];
    p->wrap = (int)f[F_WRAP];
    p->need_clz = (int)f[F_NEED_CLZ];
    p->can_unrep = (int)f[F_CAN_UNREP];
    p->rounding = (int)f[F_ROUNDING];
    p->fast = (int)f[F_FAST];
    p->pos = f[F_POS];
    p->neg = f[F_NEG];
    p->qbits = f[F_QBITS];
    p->magic = f[F_MAGIC];
    p->wrap_c = f[F_WRAP_C];
    p->magic_w = f[F_MAGIC_W];
    p->limit = f[F_LIMIT];
    p->wrapv = (int)f[F_WRAPV];
    if (!(p->width == 16 || p->width == 32 || p->width == 64) || !(p->container == 32 || p->container == 64) ||
        p->container < p->width || p->in_man < 1 || p->in_man > 52 || p->nbits < 0 ||
        p->nbits >= p->container || p->bits < 1 || p->bits > 64 || p->mag < 0 || p->mag > p->bits ||
        p->rounding < R_NE || p->rounding > R_SREQ || (p->fast && p->container != p->width) ||
        (p->fast >= 2 && p->rounding != R_NE) || (p->fast == 3 && !p->wrap) ||
        (p->wrapv && (p->fast != 1 || !p->wrap || p->bits > p->in_man + 1))) {
        PyErr_SetString(PyExc_ValueError, "inconsistent plan");
        return -1;
    }
    return 0;
}

static inline uint64_t float_bits(const plan_t *p, uint64_t m, int64_t q) { return nf_float_bits(p->in_man, p->in_bias, m, q); }

/* numfmt.fixed.kernel.fixed_codes and FixedPlan.round_bits on one pattern u. */
static inline uint64_t fixed_one(const plan_t *p, uint64_t u, uint64_t r, int *unrep_out) {
    const uint64_t one = 1, sign_bit = one << (p->width - 1);
    const uint64_t cmask = low_mask(p->container), mask = low_mask(p->bits);
    const int64_t man = p->in_man, F = p->frac, C = p->container;
    const uint64_t inf_bits = sign_bit - (one << man);
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
    int is_inf = a == inf_bits, nan = a > inf_bits;
    /* round the magnitude to a multiple of the quantum */
    int64_t d = -F - e_q;
    int64_t dc = clamp64(d, 0, man + 2);
    uint64_t kept = s >> dc, rem = s & ((one << dc) - 1), half = (one << dc) >> 1;
    int inexact = rem != 0, inc;
    switch (p->rounding) {
    case R_NE: inc = half_even_up(rem, half, kept & 1); break;
    case R_NA: inc = inexact & (rem >= half); break;
    case R_TZ: inc = 0; break;
    case R_TP: inc = inexact & !neg; break;
    case R_TN: inc = inexact & neg; break;
    case R_ODD: inc = inexact & ((kept & 1) == 0); break;
    case R_SREQ: inc = inexact & (int)((r >> (C - 1)) == 1); break;
    default: inc = inexact & sr_decide(p->rounding, p->nbits, C, rem, d, r); break;
    }
    uint64_t left = (uint64_t)clamp64(-d, 0, C - 1);
    uint64_t shifted = -d >= C ? 0 : (s << left) & cmask; /* exact below overflow, else mod 2**C */
    uint64_t k = d >= 0 ? (kept + (uint64_t)inc) & cmask : shifted;
    if (a == 0) k = 0;
    /* overflow */
    uint64_t code;
    if (p->wrap) {
        code = neg ? (~k + 1) & mask : k & mask;
        nan |= is_inf;
    } else {
        int big = (e_x + F >= p->mag) | is_inf;
        uint64_t top = low_mask(p->mag);
        uint64_t pos = (big | (k > top)) ? top : k;
        if (p->signed_) {
            uint64_t negmag = (big | (k > top + 1)) ? top + 1 : k;
            code = neg ? (~negmag + 1) & mask : pos;
        } else {
            code = neg ? 0 : pos;
        }
    }
    if (nan) code = 0;
    /* the code's value in the input's layout */
    int cneg = p->signed_ && ((code >> (p->bits - 1)) & 1);
    uint64_t m = cneg ? (~code + 1) & mask : code;
    uint64_t out = float_bits(p, m, -F) | (cneg ? sign_bit : 0);
    int unrep = 0;
    if (p->can_unrep && m != 0 && !nan) {
        int64_t t = bit_length64(m) - 1, low = __builtin_ctzll(m);
        int tiny = low - F < 1 - p->in_bias - man;
        unrep = (t - low > man) | tiny | (t - F > p->in_bias);
    }
    *unrep_out = unrep;
    if (nan) out = a > inf_bits ? u : (inf_bits | (one << (man - 1)));
    return out & low_mask(p->width);
}

#define LOOP(T)                                                                               \
    static NF_CLONES Py_ssize_t loop_##T(const plan_t *p, const T *src, T *dst, Py_ssize_t n,   \
                                         int rmode, uint64_t start, const uint32_t *seed,     \
                                         const void *rbits) {                                 \
        const int C = (int)p->container;                                                      \
        for (Py_ssize_t i = 0; i < n; i++) {                                                  \
            int unrep;                                                                        \
            uint64_t r = random_word(rmode, C, seed, start + (uint64_t)i, rbits, i);          \
            T v = (T)fixed_one(p, (uint64_t)src[i], r, &unrep);                               \
            if (unrep) return i;                                                              \
            dst[i] = v;                                                                       \
        }                                                                                     \
        return -1;                                                                            \
    }
LOOP(uint16_t)
LOOP(uint32_t)
LOOP(uint64_t)

/* Plans whose values the input dtype all holds (width == container, float32/float64): a
 * branch-free sequence on the patterns, which vectorizes. The magnitude pattern is first
 * clamped to the bound of its sign (saturate; the bounds are multiples of the quantum, so
 * clamping commutes with the monotone rounding, and +-inf goes to the bound) or, beyond it,
 * flagged (wrap: a code outside the range); then rounding drops d = D - max(E, 1) low bits
 * of the significand (E the exponent field, D = in_bias + in_man - frac_bits): within the
 * pattern where d <= in_man (a carry moves into the exponent field, as it should), else the
 * result is 0 or the quantum (fixed_codes' decision on the whole significand). No -0. The
 * flagged elements (NaN; beyond the bound under wrap, or +-inf where wrapv reduces the
 * codes itself: see FX_WRAP_CODES) go through fixed_one. */
#define CHUNK 512
#define DENSE 8
#define FX_PRE(T, ST)                                                                         \
        T u = s[i], a = u & absm, sign = u ^ a, neg = u >> (w - 1);                            \
        T bound = neg ? nbound : pbound;                                                      \
        nrare += a > (neg ? nlim : plim) ? one : 0;                                           \
        T v = a < bound ? a : bound;                                                          \
        T ex = v >> in_man, exe = ex > 1 ? ex : one;                                          \
        T sig = (v & mmask) | (ex != 0 ? hidden : 0);                                         \
        ST d = dd - (ST)exe;                                                                  \
        ST dp = d < 0 ? 0 : d;                                                                \
        T dc = (T)(dp > dmax ? dmax : dp);                                                    \
        T msk = (one << dc) - 1, rem = sig & msk, half = (one << dc) >> 1;                    \
        T deep = d > (ST)in_man ? one : 0;
#define FX_POST(T)                                                                            \
        T res = deep ? (inc ? qb : 0) : (v & ~msk) + (inc << dc);                              \
        buf[i] = res | (res != 0 ? sign : 0);
#define FX_DET(T, ST)                                                                         \
    {                                                                                         \
        FX_PRE(T, ST)                                                                         \
        T gt = rem > half ? one : 0, eq = rem == half ? one : 0, nz = rem != 0 ? one : 0;    \
        T par = (sig >> dc) & 1;                                                              \
        T inc = (m_ne & gt) | (m_ne & eq & nz & par) | (m_na & nz & (gt | eq)) |               \
                (m_tp & nz & (neg ^ one)) | (m_tn & nz & neg) | (m_odd & nz & (par ^ one));    \
        inc &= one;                                                                           \
        FX_POST(T)                                                                            \
    }
/* sr_decide on T (sum modulo 2**w, as the container's arithmetic). */
#define FX_SR(T, ST, RWORD)                                                                   \
    {                                                                                         \
        FX_PRE(T, ST)                                                                         \
        T r = RWORD;                                                                          \
        (void)half;                                                                           \
        ST ls = nb - d, rs = d - nb;                                                          \
        T lsc = ls < 0 ? 0 : (T)ls, rsc = rs < 0 ? 0 : (rs > (ST)w - 1 ? w - 1 : (T)rs);      \
        T h = rem >> rsc, e = rem & ((one << rsc) - 1), hf = (one << rsc) >> 1;                \
        h += m_b & (e != 0 ? one : 0) & (e >= hf ? one : 0);                                  \
        h += m_c & ((e > hf ? one : 0) | ((e == hf ? one : 0) & (e != 0 ? one : 0) & (h & 1))); \
        T vn = ls >= 0 ? (rem << lsc) : h;                                                    \
        T re = r >> (w - (T)nb);                                                              \
        T inc = (m_eq & (rem != 0 ? one : 0) & (r >> (w - 1))) | (~m_eq & (vn + re >= top ? one : 0)); \
        FX_POST(T)                                                                            \
    }
/* fast == 2 (nearest even, every clamped |x| <= 2**(in_man-1) * q, q >= 2**(emin+1)):
 * (x + M) - M with M = 3 * 2**(in_man-1) * q, two exact float additions as in
 * numfmt.fixed.fast (ties to even; +0 for negatives rounding to 0). Subnormal inputs
 * are below q/2 and round to +0 whether or not the CPU flushes them; every result is
 * 0 or normal. */
#define FX_SHORT(T, FT)                                                                       \
    {                                                                                         \
        T u = s[i], a = u & absm, sign = u ^ a, neg = u >> (w - 1);                            \
        T bound = neg ? nbound : pbound;                                                      \
        nrare += a > (neg ? nlim : plim) ? one : 0;                                           \
        T v = (a < bound ? a : bound) | sign;                                                 \
        FT x, y;                                                                              \
        memcpy(&x, &v, sizeof(T));                                                            \
        y = (x + magic) - magic;                                                              \
        memcpy(&v, &y, sizeof(T));                                                            \
        buf[i] = v;                                                                           \
    }
/* fast == 3 (nearest even under wrap, numfmt.fixed.fast's wrap sequence): y = (x + M) - M,
 * then y minus the multiple of W = 2**bits * q nearest y - c, by the same magic-number
 * rounding; exact for |x| <= limit = 2**(in_man-2) * q (the rest: fixed_one). */
#define FX_WRAP(T, FT)                                                                        \
    {                                                                                         \
        T u = s[i], a = u & absm;                                                             \
        nrare += a > plim ? one : 0;                                                          \
        FT x, y, z;                                                                           \
        memcpy(&x, &u, sizeof(T));                                                            \
        y = (x + magic) - magic;                                                              \
        z = ((y - wrap_c) + magic_w) - magic_w;                                               \
        y = y - z;                                                                            \
        memcpy(&u, &y, sizeof(T));                                                            \
        buf[i] = u;                                                                           \
    }
/* Plain stochastic (n = w - 1 random bits, so d <= n outside the deep case): the random
 * word's top d bits added below the kept bits, then truncated (the decision of sr_decide:
 * rem + floor(r_n / 2**(n-d)) >= 2**d). */
#define FX_SR_PLAIN(T, ST, RWORD)                                                             \
    {                                                                                         \
        FX_PRE(T, ST)                                                                         \
        T r = RWORD;                                                                          \
        (void)half; (void)rem;                                                                \
        T near = (v + ((r >> 1) >> ((T)nb - dc))) & ~msk;                                      \
        ST rs = d - nb;                                                                       \
        T lsc = deep ? (T)(nb - d < 0 ? 0 : nb - d) : 0;                                      \
        T rsc = rs < 0 ? 0 : (rs > (ST)w - 1 ? w - 1 : (T)rs);                               \
        T vn = rs <= 0 ? (sig << lsc) : (sig >> rsc);                                         \
        T res = deep ? (vn + (r >> 1) >= top ? qb : 0) : near;                                \
        ndeep += d > (ST)in_man ? one : 0;                                                    \
        buf[i] = res | (res != 0 ? sign : 0);                                                 \
    }
/* wrapv (the integer sequences under wrap, q >= 2**(emin+1), bits <= in_man + 1): the
 * sequence ran unclamped; each rounded value k * q becomes its code k modulo 2**bits
 * (two's complement if signed), whose value sext(code) * q two exact float operations
 * give (an integer of at most in_man + 1 bits, then a normal or zero product). */
#define FX_WRAP_CODES(T, ST, FT)                                                              \
    for (Py_ssize_t i = 0; i < m; i++) {                                                      \
        T o = buf[i], a = o & absm, ex = a >> in_man;                                         \
        T sig = (a & mmask) | (ex != 0 ? hidden : 0);                                         \
        ST sh = (ST)(ex > 1 ? ex : one) - dd;                                                 \
        T up = sh < 0 ? 0 : (sh >= cbits ? 0 : (T)sh), down = sh >= 0 ? 0 : (-sh > (ST)w - 1 ? w - 1 : (T)-sh); \
        T k = sh >= cbits ? 0 : ((sig << up) >> down);                                        \
        T code = ((o >> (w - 1)) != 0 ? (T)0 - k : k) & cmask;                               \
        ST sc = p->signed_ ? ((ST)(code << (w - (T)cbits))) >> (w - (T)cbits) : (ST)code;     \
        FT val = (FT)sc * qf;                                                                 \
        memcpy(&o, &val, sizeof(T));                                                          \
        buf[i] = o;                                                                           \
    }
/* Plain stochastic, the common case only: elements of at most in_man dropped bits (the
 * deep ones are counted, and the chunk's are redone by FX_SR_PLAIN). */
#define FX_SR_SHORT(T, ST, RWORD)                                                             \
    {                                                                                         \
        T u = s[i], a = u & absm, sign = u ^ a, neg = u >> (w - 1);                            \
        T bound = neg ? nbound : pbound;                                                      \
        nrare += a > (neg ? nlim : plim) ? one : 0;                                           \
        T v = a < bound ? a : bound;                                                          \
        T ex = v >> in_man, exe = ex > 1 ? ex : one;                                          \
        ST d = dd - (ST)exe;                                                                  \
        ndeep += v < deep_bits ? one : 0;                                                     \
        T dc = (T)(d < 0 ? 0 : d);                                                            \
        T r = RWORD;                                                                          \
        T res = (v + ((r >> 1) >> ((T)nb - dc))) & ~((one << dc) - 1);                         \
        buf[i] = res | (res != 0 ? sign : 0);                                                 \
    }
#define FX_HASH32 (mix32(mix32((i0 + (uint32_t)i) ^ k0) ^ (k1 ^ fold)))
#define FX_HASH64                                                                             \
    ((((uint64_t)mix32(mix32((i0 + (uint32_t)i) ^ k0) ^ (k1 ^ fold)) << 32) |               \
      (uint64_t)mix32(mix32((i0 + (uint32_t)i) ^ k2) ^ (k3 ^ fold))))

#define FAST_LOOP(T, ST, FT, HASH)                                                            \
    static NF_CLONES Py_ssize_t fast_##T(const plan_t *p, const T *src, T *dst, Py_ssize_t n, \
                                         int rmode, uint64_t start, const uint32_t *seed,     \
                                         const void *rbits) {                                 \
        const T one = (T)(p->width > 0), in_man = (T)p->in_man, mmask = (one << in_man) - 1;  \
        const T hidden = one << in_man, w = (T)p->width, absm = (((T)1) << (w - 1)) - 1;       \
        const T infb = absm - mmask, qb = (T)p->qbits;                                        \
        const T pbound = p->wrapv ? absm : (T)p->pos, nbound = p->wrapv ? absm : (T)p->neg;   \
        const int wrap = p->wrap, sr = p->rounding >= R_SR, C = (int)p->container;            \
        const ST dd = (ST)(p->in_bias + p->in_man - p->frac), nb = (ST)p->nbits;              \
        const T top = ((T)1) << (p->nbits > 0 ? p->nbits : 1), all = (T)~(T)0;               \
        const int rd = p->rounding;                                                           \
        const T m_ne = rd == R_NE ? all : 0, m_na = rd == R_NA ? all : 0;                     \
        const T m_tp = rd == R_TP ? all : 0, m_tn = rd == R_TN ? all : 0;                     \
        const T m_odd = rd == R_ODD ? all : 0, m_b = rd == R_SRB ? all : 0;                   \
        const T m_c = rd == R_SRC ? all : 0;                                                  \
        const T m_eq = rd == R_SREQ ? all : 0;                                                \
        const int plain = rd == R_SR && p->nbits == p->width - 1;                             \
        const ST dmax = (ST)p->in_man + 2;                                                    \
        uint32_t k0 = seed[0], k1 = seed[1], k2 = seed[2], k3 = seed[3];                      \
        T lbuf[CHUNK]; /* dst is src: a chunk's elements are read again after the pass */ \
        const int direct = dst + n <= src || src + n <= dst; /* else write dst itself */      \
        uint8_t flg[CHUNK + 8];                                                               \
        int dense = 0;                                                                        \
        /* v below this pattern: more than in_man dropped bits (a superset where the bound    \
         * exceeds the exponent field: then every finite element) */                         \
        const ST thr = dd - (ST)in_man;                                                       \
        const T deep_bits = thr <= 1 ? 0 : (thr >= (ST)(infb >> in_man) ? absm : ((T)thr) << in_man); \
        FT magic, magic_w, wrap_c;                                                            \
        T magic_bits = (T)p->magic, magic_w_bits = (T)p->magic_w, wrap_c_bits = (T)p->wrap_c; \
        memcpy(&magic, &magic_bits, sizeof(T));                                               \
        memcpy(&magic_w, &magic_w_bits, sizeof(T));                                           \
        memcpy(&wrap_c, &wrap_c_bits, sizeof(T));                                             \
        /* rare: beyond these (by sign) the element goes through fixed_one */                \
        const T plim = p->fast == 3 ? (T)p->limit : (wrap && !p->wrapv ? pbound : infb - 1);  \
        const T nlim = p->fast == 3 ? (T)p->limit : (wrap && !p->wrapv ? nbound : infb - 1);  \
        const T cmask = (((T)1) << (p->bits < p->width ? p->bits : 1)) - 1;                  \
        const ST cbits = (ST)p->bits;                                                         \
        FT qf;                                                                                \
        T qbits_t = (T)p->qbits;                                                              \
        memcpy(&qf, &qbits_t, sizeof(T));                                                     \
        (void)k2; (void)k3; (void)m_eq; (void)top; (void)nb; (void)m_b; (void)m_c;            \
        for (Py_ssize_t base = 0; base < n; base += CHUNK) {                                  \
            Py_ssize_t m = n - base < CHUNK ? n - base : CHUNK;                               \
            const T *s = src + base;                                                          \
            T *buf = direct ? dst + base : lbuf;                                              \
            uint64_t idx0 = start + (uint64_t)base;                                           \
            T nrare = 0;                                                                      \
            if (p->fast == 3) {                                                               \
                for (Py_ssize_t i = 0; i < m; i++) FX_WRAP(T, FT)                             \
            } else if (p->fast == 2) {                                                        \
                for (Py_ssize_t i = 0; i < m; i++) FX_SHORT(T, FT)                            \
            } else if (!sr) {                                                                 \
                for (Py_ssize_t i = 0; i < m; i++) FX_DET(T, ST)                              \
            } else if (rmode == 1 && ((idx0 + (uint64_t)m - 1) >> 32) == (idx0 >> 32)) {     \
                uint32_t fold = (uint32_t)((idx0 >> 32) * 0x9E3779B9U), i0 = (uint32_t)idx0;  \
                if (plain) {                                                                  \
                    /* a chunk with many deep elements takes FX_SR_PLAIN whole, and so do the \
                     * next ones while they have that many; a few are redone one by one */    \
                    T ndeep = 0, keep_rare = 0;                                               \
                    if (!dense) {                                                             \
                        for (Py_ssize_t i = 0; i < m; i++) FX_SR_SHORT(T, ST, (T)(HASH))      \
                        keep_rare = nrare;                                                    \
                        dense = ndeep > DENSE;                                                \
                        if (dense) ndeep = 0;                                                 \
                    }                                                                         \
                    if (dense) {                                                              \
                        nrare = 0;                                                            \
                        for (Py_ssize_t i = 0; i < m; i++) FX_SR_PLAIN(T, ST, (T)(HASH))      \
                        dense = ndeep > DENSE;                                                \
                    } else {                                                                  \
                        if (ndeep) {                                                          \
                            for (Py_ssize_t i = 0; i < m; i++) {                              \
                                T a0 = s[i] & absm, b0 = (s[i] >> (w - 1)) ? nbound : pbound; \
                                flg[i] = (a0 < b0 ? a0 : b0) < deep_bits ? 1 : 0;             \
                            }                                                                 \
                            memset(flg + m, 0, 8);                                            \
                        }                                                                     \
                        for (Py_ssize_t j = 0; ndeep && j < m; j += 8) {                      \
                            uint64_t word;                                                    \
                            memcpy(&word, flg + j, 8);                                        \
                            if (!word) continue;                                              \
                            for (Py_ssize_t i = j; i < j + 8 && i < m; i++)                   \
                                if (flg[i]) FX_SR_PLAIN(T, ST, (T)(HASH))                     \
                        }                                                                     \
                        nrare = keep_rare;                                                    \
                    }                                                                         \
                } else                                                                        \
                    for (Py_ssize_t i = 0; i < m; i++) FX_SR(T, ST, (T)(HASH))                \
            } else if (plain) {                                                               \
                T ndeep = 0;                                                                  \
                (void)ndeep;                                                                  \
                for (Py_ssize_t i = 0; i < m; i++)                                            \
                    FX_SR_PLAIN(T, ST, (T)random_word(rmode, C, seed, idx0 + (uint64_t)i, rbits, base + i)) \
            } else {                                                                          \
                for (Py_ssize_t i = 0; i < m; i++)                                            \
                    FX_SR(T, ST, (T)random_word(rmode, C, seed, idx0 + (uint64_t)i, rbits, base + i)) \
            }                                                                                 \
            if (p->wrapv) FX_WRAP_CODES(T, ST, FT)                                            \
            for (Py_ssize_t i = 0; nrare && i < m; i++) {                                     \
                T a = s[i] & absm;                                                            \
                if (a > ((s[i] >> (w - 1)) ? nlim : plim)) {                                  \
                    int unrep;                                                                \
                    uint64_t r = random_word(rmode, C, seed, idx0 + (uint64_t)i, rbits, base + i); \
                    buf[i] = (T)fixed_one(p, s[i], r, &unrep);                                \
                    nrare--;                                                                  \
                }                                                                             \
            }                                                                                 \
            if (!direct) memcpy(dst + base, buf, (size_t)m * sizeof(T));                       \
        }                                                                                     \
        return -1;                                                                            \
    }
FAST_LOOP(uint32_t, int32_t, float, FX_HASH32)
FAST_LOOP(uint64_t, int64_t, double, FX_HASH64)

/* run_range (nf_split's ranges) and round_into (numfmt/core/_call.h). */
NF_ENTRY(fast, loop)

NF_MODULE("The fixed-point family's compiled rounding kernel.", F_COUNT)
