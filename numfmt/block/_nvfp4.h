/* NVFP4-style blocks (a float block scale with fraction bits, a float32 tensor scale) of
 * float32 input, for numfmt/block/_ckernel.c: a line by line transcription of
 * numfmt.block.nvfp4.quantize and dequantize (float32 branch) on one block.
 *
 * Per block: amax of the finite magnitudes; the block scale s = RN_scale(amax * g /
 * max_elem) from the integer quotient rounded to odd (_div_odd) as a float64 pattern,
 * rounded into the scale format by the float family's round_one; each element
 * |x * g / s| as one float64 product and division (exact in its effect: the proof in
 * quantize's docstring), rounded into the element format by round_one; the result
 * RN_f32(q * s / g) as one float64 product and division, converted to float32 (the
 * hardware conversion for normal results, an integer rounding of |r| * 2**149 for
 * subnormal ones, as dequantize). Values are assembled from bits (no conversion of
 * float32 subnormals, which a flush-to-zero mode would flush); the float64 values
 * lie within 2**-275 .. 2**22 and 2**-300 .. 2**200, away from float64's subnormals.
 * Include after _rounding.h and _element.h.
 */
#ifndef NUMFMT_BLOCK_NVFP4_H
#define NUMFMT_BLOCK_NVFP4_H
#include <stdint.h>
#include <string.h>

/* The element loop selects between float64 operations of both branches; gcc if-converts
 * (and then vectorizes) those only when they may not trap. No result depends on it:
 * numfmt reads no floating-point exception flags. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC push_options
#pragma GCC optimize("no-trapping-math")
#endif

/* The NVFP4 plan: uint64 fields in this order (numfmt.block.native._NV_FIELDS). */
enum { N_BLOCK, N_G, N_EN, N_EE, N_RINT, N_M, N_EMIN, N_MAX, N_COUNT };

typedef struct {
    int64_t block, ee, m, emin;
    int rint;
    uint64_t g, en, max;
} nplan_t;

static int read_nplan(PyObject *obj, nplan_t *p) {
    uint64_t f[N_COUNT];
    if (!PyBytes_Check(obj) || PyBytes_GET_SIZE(obj) != (Py_ssize_t)sizeof(f)) {
        PyErr_SetString(PyExc_TypeError, "nplan must be the packed bytes of numfmt.block.native");
        return -1;
    }
    memcpy(f, PyBytes_AS_STRING(obj), sizeof(f));
    p->block = (int64_t)f[N_BLOCK];
    p->g = f[N_G];
    p->en = f[N_EN];
    p->ee = (int64_t)f[N_EE];
    p->rint = (int)f[N_RINT];
    p->m = (int64_t)f[N_M];
    p->emin = (int64_t)f[N_EMIN];
    p->max = f[N_MAX];
    if (p->block < 1 || p->en < 1 || p->en > 15 || !(p->en & 1) || (p->g >> 63) ||
        p->g >= ((uint64_t)0x7FF << 52) || p->m < 0 || p->m > 3 || p->emin < -1000 || p->emin > 1000) {
        PyErr_SetString(PyExc_ValueError, "inconsistent NVFP4 plan");
        return -1;
    }
    return 0;
}

static inline double as_double(uint64_t bits) {
    double d;
    memcpy(&d, &bits, 8);
    return d;
}

static inline uint64_t double_bits(double d) {
    uint64_t u;
    memcpy(&u, &d, 8);
    return u;
}

/* numfmt.block.nvfp4._f64: the float64 pattern of q * 2**k (q < 2**53; below float64's
 * normal range the sentinel 1, as numfmt.block.scale_bits.to_f64). */
static inline uint64_t f64_of(uint64_t q, int64_t k) {
    if (q == 0) return 0;
    int64_t t = (int64_t)bit_length64(q) - 1, e_new = t + k;
    if (e_new < -1022) return 1;
    uint64_t frac = (q << (52 - t)) & ((((uint64_t)1) << 52) - 1);
    return ((uint64_t)clamp64(e_new + 1023, 1, 2046) << 52) | frac;
}

/* numfmt.block.nvfp4._values on one float32 magnitude pattern a: its exact value. */
static inline double f32_value(uint64_t a) {
    if (a < ((uint64_t)1 << 23)) return (double)(int64_t)a * as_double((uint64_t)(1023 - 149) << 52);
    return as_double((a << 29) + ((uint64_t)(1023 - 127) << 52));
}

/* num / en for an odd en <= 15: a division by each constant (a multiplication). */
static inline uint64_t div_odd(uint64_t num, uint64_t en) {
    switch (en) {
    case 1: return num;
    case 3: return num / 3;
    case 5: return num / 5;
    case 7: return num / 7;
    case 9: return num / 9;
    case 11: return num / 11;
    case 13: return num / 13;
    default: return num / 15;
    }
}

/* Round to nearest even of 0 <= v <= 2**23 (an integer-valued double). */
static inline int64_t rint_small(double v) {
    int64_t i = (int64_t)v;
    double frac = v - (double)i;
    return i + (frac > 0.5 || (frac == 0.5 && (i & 1)));
}


/* The elements of one block for nearest-even rounding into a float element with
 * subnormals (numfmt.block.nvfp4._rint_round's case): the float64 quotient's pattern
 * rounded on its bits (d = 52 - m + max(0, emin - e) bits dropped, as
 * numfmt.block.direct), saturated at max; the conversion to float32 as dequantize
 * (subnormal results: |r| * 2**149 rounded to an integer by adding and subtracting
 * 2**52, which rounds to nearest even in the default rounding mode, as np.rint).
 * Straight-line code: the loop vectorizes. Returns the overflow count. */
static inline __attribute__((always_inline)) int64_t nv_fast(const uint32_t *restrict s, uint32_t *restrict o,
                                                            Py_ssize_t w, double gd, double sd, double div,
                                                            uint64_t one, int64_t m, int64_t emin1023,
                                                            uint64_t max_bits) {
    const uint64_t mmask = (one << 52) - one, hidden = one << 52;
    const double sub_scale = 0x1p-149, tiny = 0x1p-126, top = 0x1.ffffffp+127, magic = 0x1p52;
    int64_t nover = 0;
    for (Py_ssize_t i = 0; i < w; i++) {
        uint32_t u = s[i];
        uint64_t a = u & 0x7FFFFFFFu;
        uint64_t nb = (a << 29) + ((uint64_t)(1023 - 127) << 52);
        double xn;
        memcpy(&xn, &nb, 8);
        double xs = (double)(int32_t)a * sub_scale;
        double x = a < ((uint64_t)1 << 23) ? xs : xn;
        double ay = x * gd / (a == 0 ? 1.0 : div);
        uint64_t p;
        memcpy(&p, &ay, 8);
        int64_t ex = (int64_t)(p >> 52);
        int64_t dd = emin1023 - ex;
        uint64_t d = (uint64_t)(52 - m + (dd > 0 ? dd : 0));
        uint64_t dc = d > 54 ? 54 : d;
        uint64_t sig = (p & mmask) | (ex != 0 ? hidden : 0);
        uint64_t rem = sig & ((one << dc) - one), half = (one << dc) >> 1;
        uint64_t odd = (sig >> dc) & one;
        uint64_t tie = rem == half ? odd : 0, nzr = rem != 0 ? tie : 0;
        uint64_t inc = (int64_t)rem > (int64_t)half ? one : nzr;
        uint64_t res = p - rem + (inc << dc);
        uint64_t qsub = (uint64_t)(emin1023 - m) << 52;
        uint64_t deep = inc ? qsub : 0;
        res = d > 52 ? deep : res;
        res = (int64_t)res < (int64_t)max_bits ? res : max_bits;
        double qd;
        memcpy(&qd, &res, 8);
        double ar = qd * sd / (res == 0 ? 1.0 : gd);
        float f = (float)ar;
        uint32_t pn;
        memcpy(&pn, &f, 4);
        uint32_t ps = (uint32_t)(int32_t)((ar * 0x1p149 + magic) - magic);
        uint32_t pat = ar < tiny ? ps : pn;
        int big = ar >= top;
        nover += big;
        pat = big ? 0x7F800000u : pat;
        o[i] = pat | (u & 0x80000000u);
    }
    return nover;
}

/* nv_fast for "stochastic" rounding (numfmt.float.kernel._sr_up's decision on the
 * quotient's dropped bits, with the top nbits of the element's 64-bit word), for
 * elements with a negative zero (round_bits keeps the sign of a zero result). */
static inline __attribute__((always_inline)) int64_t nv_fast_sr(const uint32_t *restrict s, uint32_t *restrict o,
                                                            Py_ssize_t w, double gd, double sd, double div,
                                                            uint64_t one, int64_t m, int64_t emin1023,
                                                            uint64_t max_bits, const uint64_t *restrict rw,
                                                               uint64_t nbits) {
    const uint64_t mmask = (one << 52) - one, hidden = one << 52;
    const double sub_scale = 0x1p-149, tiny = 0x1p-126, top = 0x1.ffffffp+127, magic = 0x1p52;
    int64_t nover = 0;
    for (Py_ssize_t i = 0; i < w; i++) {
        uint32_t u = s[i];
        uint64_t a = u & 0x7FFFFFFFu;
        uint64_t nb = (a << 29) + ((uint64_t)(1023 - 127) << 52);
        double xn;
        memcpy(&xn, &nb, 8);
        double xs = (double)(int32_t)a * sub_scale;
        double x = a < ((uint64_t)1 << 23) ? xs : xn;
        double ay = x * gd / (a == 0 ? 1.0 : div);
        uint64_t p;
        memcpy(&p, &ay, 8);
        int64_t ex = (int64_t)(p >> 52);
        int64_t dd = emin1023 - ex;
        uint64_t d = (uint64_t)(52 - m + (dd > 0 ? dd : 0));
        uint64_t dc = d > 54 ? 54 : d;
        uint64_t sig = (p & mmask) | (ex != 0 ? hidden : 0);
        uint64_t rem = sig & ((one << dc) - one), half = (one << dc) >> 1;
        (void)half;
        uint64_t ls = nbits > d ? nbits - d : 0, rs0 = d > nbits ? d - nbits : 0;
        uint64_t rs = rs0 > 63 ? 63 : rs0;
        uint64_t vn = d <= nbits ? (rem << ls) : (rem >> rs);
        uint64_t inc = vn + (rw[i] >> (64 - nbits)) >= (one << nbits) ? one : 0;
        uint64_t res = p - rem + (inc << dc);
        uint64_t qsub = (uint64_t)(emin1023 - m) << 52;
        uint64_t deep = inc ? qsub : 0;
        res = d > 52 ? deep : res;
        res = (int64_t)res < (int64_t)max_bits ? res : max_bits;
        double qd;
        memcpy(&qd, &res, 8);
        double ar = qd * sd / (res == 0 ? 1.0 : gd);
        float f = (float)ar;
        uint32_t pn;
        memcpy(&pn, &f, 4);
        uint32_t ps = (uint32_t)(int32_t)((ar * 0x1p149 + magic) - magic);
        uint32_t pat = ar < tiny ? ps : pn;
        int big = ar >= top;
        nover += big;
        pat = big ? 0x7F800000u : pat;
        o[i] = pat | (u & 0x80000000u);
    }
    return nover;
}

#define NV_CHUNK 256

/* Blocks k0 .. k1 - 1 of float32 rows (numfmt.block.nvfp4.quantize, then dequantize). */
static NF_CLONES Py_ssize_t nvfp4_blocks(const nplan_t *np_, const plan_t *ep, const plan_t *sp,
                                         const uint32_t *restrict src, uint32_t *restrict dst, Py_ssize_t n,
                                         Py_ssize_t k0, Py_ssize_t k1, int rmode, const uint32_t *seed,
                                         const uint64_t *rbits) {
    const Py_ssize_t B = (Py_ssize_t)np_->block, nb = (n + B - 1) / B;
    const uint32_t inf = 0x7F800000u;
    const uint64_t g_sig = ((np_->g & ((((uint64_t)1) << 52) - 1)) | (((uint64_t)1) << 52)) >> 29;
    const int64_t g_k = (int64_t)(np_->g >> 52) - 1023 - 23;
    const double gd = as_double(np_->g);
    const int db = bit_length64(np_->en), sh = 52 + db - 48; /* _div_odd: nb = 48 bits */
    const uint64_t one = (uint64_t)(np_->block > 0); /* not a constant: see DIRECT_BLOCK */
    Py_ssize_t count = 0;
    uint64_t words[NV_CHUNK];
    for (Py_ssize_t k = k0; k < k1; k++) {
        Py_ssize_t row = k / nb, c = (k % nb) * B, w = n - c < B ? n - c : B;
        const uint32_t *s = src + row * n + c;
        uint32_t *o = dst + row * n + c;
        uint32_t amax = 0, top = 0;
        for (Py_ssize_t i = 0; i < w; i++) {
            uint32_t a = s[i] & 0x7FFFFFFFu;
            top = a > top ? a : top;
            amax = (a < inf && a > amax) ? a : amax;
        }
        if (top >= inf) { /* NaN or inf: a NaN block */
            for (Py_ssize_t i = 0; i < w; i++) o[i] = 0x7FC00000u;
            continue;
        }
        /* the block scale (a float64 pattern; 0 for a zero block) */
        uint64_t sb = 0;
        if (amax != 0) {
            uint64_t b_sig;
            int64_t t, e_x;
            unpack_one(amax, 23, 127, &b_sig, &t, &e_x);
            b_sig <<= 23 - t; /* _norm: leading bit at 23 */
            uint64_t num = (b_sig * g_sig) << sh, q = div_odd(num, np_->en);
            q |= (uint64_t)(num - q * np_->en != 0);
            int unused;
            sb = round_one(sp, f64_of(q, (e_x - 23) + g_k - sh - np_->ee), 0, &unused);
        }
        const double sd = as_double(sb), div = sb == 0 ? as_double((uint64_t)0x7FF << 52) : sd;
        if (np_->rint == 2) { /* stochastic: the words a chunk at a time */
            for (Py_ssize_t c0 = 0; c0 < w; c0 += NV_CHUNK) {
                Py_ssize_t len = w - c0 < NV_CHUNK ? w - c0 : NV_CHUNK;
                const uint64_t *rw = words;
                if (rmode == 2) {
                    rw = rbits + (k - k0) * B + c0;
                } else {
                    uint64_t idx = (uint64_t)k * (uint64_t)B + (uint64_t)c0;
                    for (Py_ssize_t i = 0; i < len; i++) words[i] = hash64(seed, idx + (uint64_t)i);
                }
                count += nv_fast_sr(s + c0, o + c0, len, gd, sd, div, one, np_->m, 1023 + np_->emin, np_->max, rw,
                                    (uint64_t)ep->nbits);
            }
            continue;
        }
        if (np_->rint) {
            if (w == 16) /* NVFP4's block: a loop of known length */
                count += nv_fast(s, o, 16, gd, sd, div, one, np_->m, 1023 + np_->emin, np_->max);
            else
                count += nv_fast(s, o, w, gd, sd, div, one, np_->m, 1023 + np_->emin, np_->max);
            continue;
        }
        uint64_t idx = (uint64_t)k * (uint64_t)B;
        for (Py_ssize_t i = 0; i < w; i++) {
            uint32_t u = s[i];
            uint64_t a = u & 0x7FFFFFFFu, sign = (uint64_t)(u >> 31) << 63;
            double ay = f32_value(a) * gd / (a == 0 ? 1.0 : div);
            uint64_t r = rmode == 1 ? hash64(seed, idx + (uint64_t)i) : rmode == 2 ? rbits[(k - k0) * B + i] : 0;
            int unused;
            uint64_t qe = round_one(ep, (double_bits(ay) & ~((uint64_t)1 << 63)) | sign, r, &unused);
            double qd = as_double(qe & ~((uint64_t)1 << 63));
            double ar = qd * sd / (qd == 0.0 ? 1.0 : gd);
            uint32_t pat;
            if (ar >= 0x1.ffffffp+127) { /* 2**128 - 2**103: rounds above float32's max */
                pat = inf;
                count++;
            } else if (ar < as_double((uint64_t)(1023 - 126) << 52)) {
                pat = (uint32_t)rint_small(ar * as_double((uint64_t)(1023 + 149) << 52));
            } else {
                float f = (float)ar;
                memcpy(&pat, &f, 4);
            }
            o[i] = pat | (uint32_t)(qe >> 63 << 31);
        }
    }
    return count;
}

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC pop_options
#endif

#endif
