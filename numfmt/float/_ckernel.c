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

/* run_range (nf_split's ranges) and round_into (numfmt/core/_call.h). */
NF_ENTRY(fast, general)

NF_MODULE("The float family's compiled rounding kernel.", F_COUNT)
