/* The direct rounding of power-of-two block scales, for numfmt/block/_ckernel.c: the input's
 * patterns rounded straight onto the scaled element grid (numfmt.block.direct's argument),
 * nearest even (direct_one), the deterministic modes (DIRECT_BLOCK) and "stochastic" (DIRECT_SR). Include after the
 * block plan (bplan_t), unpack_one and _rounding.h.
 */
#ifndef NUMFMT_BLOCK_DIRECT_H
#define NUMFMT_BLOCK_DIRECT_H

/* numfmt.block.direct.direct_round on one element (any block): exact e_x. */
static inline uint64_t direct_one(const bplan_t *b, uint64_t u, int64_t low, uint64_t max_bits, uint64_t q_sub,
                                  int *over) {
    const uint64_t one = 1, sbit = one << (b->width - 1);
    uint64_t a = u & (sbit - 1), s;
    int64_t t, e_x;
    unpack_one(a, b->in_man, b->in_bias, &s, &t, &e_x);
    int64_t d = (e_x > low ? e_x : low) - b->m - (e_x - t);
    int64_t dc = clamp64(d, 0, b->in_man + 2);
    uint64_t rem = s & ((one << dc) - 1), half = (one << dc) >> 1;
    int inc = half_even_up(rem, half, (s >> dc) & 1);
    uint64_t res = a - rem + ((uint64_t)inc << dc);
    if (d > b->in_man) res = inc ? q_sub : 0;
    if (res > max_bits) res = max_bits;
    if (b->saturate && a >= b->inf_bits) res = max_bits;
    *over = res >= b->inf_bits && (b->saturate || a < b->inf_bits);
    return res | (u & sbit);
}

/* The direct rounding of one block onto the grid of quantum 2**qe, qe = max(e_x - m, qlow)
 * (float elements: qlow = low - m; integer elements: m "infinite", qe = qlow): with
 * E = max(exponent field, 1) the input's quantum is 2**(E - in_bias - in_man), so the
 * bits dropped are d = max(dn, Lq - E) (dn = in_man - m, Lq = qlow + in_bias + in_man).
 * For float elements that needs e_x >= 1 - in_bias wherever it decides the max, which
 * holds when the scaled grid starts at or above the input's normal range (the caller
 * checks; below it direct_one counts leading zeros). No count of leading zeros, and
 * signed compares (all patterns are magnitudes below 2**(W-1)): the loop vectorizes.
 * The cap is max_pos or max_neg by sign (integer elements: max_int or -min_int
 * quanta); negzero 0: a negative result that rounds to zero is +0 (two's
 * complement). mode: the deterministic modes of numfmt.float.kernel.round_bits (a
 * constant at each call, so the loop keeps one). Returns the overflow count (results
 * at or above inf_bits). */
#define DIRECT_BLOCK(T, ST)                                                                      \
    static inline __attribute__((always_inline)) int64_t direct_##T(                              \
        const T *restrict s, T *restrict o, Py_ssize_t w, T in_man, ST dn, ST Lq,                 \
                                      T max_pos, T max_neg, T q_sub, T inf_bits, int saturate,    \
                                      int negzero, int mode) {                                    \
        /* one: not a compile-time constant, or gcc 12 does not vectorize 1 << (64-bit vector) */ \
        const T one = (T)(in_man > 0), sbit = one << (sizeof(T) * 8 - 1), absm = sbit - one;     \
        const T mmask = (one << in_man) - one, hidden = one << in_man, dmax = in_man + 2;        \
        const T all = (T)~(T)0, sat = saturate ? all : 0, nz = negzero ? all : 0;                \
        T nover = 0;                                                                              \
        for (Py_ssize_t i = 0; i < w; i++) {                                                      \
            T u = s[i], a = u & absm, sign = u & sbit;                                            \
            T ex = a >> in_man;                                                                   \
            ST big = ex != 0 ? (ST)ex : (ST)one;                                                  \
            T sig = (a & mmask) | (ex != 0 ? hidden : 0);                                         \
            ST dd = Lq - big;                                                                     \
            ST dv = dd > dn ? dd : dn;                                                            \
            T d = dv > 0 ? (T)dv : 0;                                                             \
            T dc = (ST)d > (ST)dmax ? dmax : d;                                                   \
            T rem = sig & ((one << dc) - one), half = (one << dc) >> 1;                           \
            T odd = (sig >> dc) & one;                                                            \
            T tie = rem == half ? odd : 0, nzr = rem != 0 ? tie : 0;                              \
            T inexact = rem != 0 ? one : 0, negb = sign >> (sizeof(T) * 8 - 1);                   \
            T inc = mode == R_NE   ? ((ST)rem > (ST)half ? one : nzr)                             \
                    : mode == R_NA ? ((ST)rem >= (ST)half ? inexact : 0)                          \
                    : mode == R_TP ? (inexact & (negb ^ one))                                     \
                    : mode == R_TN ? (inexact & negb)                                             \
                    : mode == R_ODD ? (inexact & (odd ^ one))                                     \
                                    : 0; /* toward zero */                                        \
            T res = a - rem + (inc << dc);                                                        \
            T tiny = inc ? q_sub : 0;                                                             \
            res = (ST)d > (ST)in_man ? tiny : res;                                                \
            T cap = sign ? max_neg : max_pos;                                                     \
            res = (ST)res < (ST)cap ? res : cap;                                                  \
            T special = (ST)a >= (ST)inf_bits ? sat : 0;                                          \
            res = special ? cap : res;                                                            \
            nover += (ST)res >= (ST)inf_bits ? one : 0;                                           \
            T keep = res != 0 ? all : nz;                                                         \
            o[i] = res | (sign & keep);                                                           \
        }                                                                                         \
        return (int64_t)nover;                                                                    \
    }
DIRECT_BLOCK(uint32_t, int32_t)
DIRECT_BLOCK(uint64_t, int64_t)

/* DIRECT_BLOCK for stochastic rounding ("stochastic": numfmt.float.kernel._sr_up's
 * decision, v_n = floor(rem * 2**(nbits - d)) plus the top nbits of the element's word
 * reaching 2**nbits). The work layout is the input's (the caller checks): its word is
 * the 64-bit word's top half for float32, as numfmt.block.chop.quantize takes it. The
 * decision depends on the dropped bits and their count only through v_n, which is the
 * same for x's own significand as for the scaled work pattern's. */
#define DIRECT_SR(T, ST)                                                                         \
    static inline __attribute__((always_inline)) int64_t direct_sr_##T(                           \
        const T *restrict s, T *restrict o, Py_ssize_t w, T in_man, ST dn, ST Lq,                 \
                                      T max_pos, T max_neg, T q_sub, T inf_bits, int saturate,    \
                                      int negzero, const uint64_t *restrict rw, T nbits) {       \
        /* one: not a compile-time constant, or gcc 12 does not vectorize 1 << (64-bit vector) */ \
        const T one = (T)(in_man > 0), sbit = one << (sizeof(T) * 8 - 1), absm = sbit - one;     \
        const T mmask = (one << in_man) - one, hidden = one << in_man, dmax = in_man + 2;        \
        const T all = (T)~(T)0, sat = saturate ? all : 0, nz = negzero ? all : 0;                \
        const T cw = (T)(sizeof(T) * 8);                                                          \
        T nover = 0;                                                                              \
        for (Py_ssize_t i = 0; i < w; i++) {                                                      \
            T u = s[i], a = u & absm, sign = u & sbit;                                            \
            T ex = a >> in_man;                                                                   \
            ST big = ex != 0 ? (ST)ex : (ST)one;                                                  \
            T sig = (a & mmask) | (ex != 0 ? hidden : 0);                                         \
            ST dd = Lq - big;                                                                     \
            ST dv = dd > dn ? dd : dn;                                                            \
            T d = dv > 0 ? (T)dv : 0;                                                             \
            T dc = (ST)d > (ST)dmax ? dmax : d;                                                   \
            T rem = sig & ((one << dc) - one), half = (one << dc) >> 1;                           \
            (void)half;                                                                           \
            T ls = (ST)nbits > (ST)d ? nbits - d : 0;                                             \
            T rs0 = (ST)d > (ST)nbits ? d - nbits : 0;                                            \
            T rs = (ST)rs0 > (ST)(cw - one) ? cw - one : rs0;                                     \
            T vn = (ST)d <= (ST)nbits ? (rem << ls) : (rem >> rs);                                \
            T rn = (T)(rw[i] >> (64 - cw)) >> (cw - nbits);                                       \
            T inc = vn + rn >= (one << nbits) ? one : 0;                                          \
            T res = a - rem + (inc << dc);                                                        \
            T tiny = inc ? q_sub : 0;                                                             \
            res = (ST)d > (ST)in_man ? tiny : res;                                                \
            T cap = sign ? max_neg : max_pos;                                                     \
            res = (ST)res < (ST)cap ? res : cap;                                                  \
            T special = (ST)a >= (ST)inf_bits ? sat : 0;                                          \
            res = special ? cap : res;                                                            \
            nover += (ST)res >= (ST)inf_bits ? one : 0;                                           \
            T keep = res != 0 ? all : nz;                                                         \
            o[i] = res | (sign & keep);                                                           \
        }                                                                                         \
        return (int64_t)nover;                                                                    \
    }
DIRECT_SR(uint32_t, int32_t)
DIRECT_SR(uint64_t, int64_t)

#endif
