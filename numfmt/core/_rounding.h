/* What the compiled kernels (numfmt/float/_ckernel.c, numfmt/fixed/_ckernel.c,
 * numfmt/posit/_ckernel.c) share:
 * the order of numfmt.core.rounding.Rounding as their plans pack it, the counter hash
 * of numfmt.core.random, and the rounding decisions of numfmt.float.intbits.increment
 * on dropped bits. Header-only (static inline): each extension compiles its own copy.
 */
#ifndef NUMFMT_ROUNDING_H
#define NUMFMT_ROUNDING_H
#include <stdint.h>

/* Rounding, in the order of the native modules' _ROUNDINGS. */
/* Runtime CPU dispatch: with GCC on x86-64 Linux each vector loop is built twice, for AVX2 and
 * the baseline, and the loader picks one (target_clones); elsewhere, or built with
 * -DNUMFMT_PORTABLE (CFLAGS), one portable variant. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__) && !defined(NUMFMT_PORTABLE)
#define NF_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define NF_CLONES
#endif

enum { R_NE, R_NA, R_TZ, R_TP, R_TN, R_ODD, R_SR, R_SRA, R_SRB, R_SRC, R_SREQ };

/* numfmt.core.random: Chris Wellons' lowbias32 and the keyed hash of an index. */
static inline uint32_t mix32(uint32_t x) {
    x ^= x >> 16;
    x *= 0x7FEB352DU;
    x ^= x >> 15;
    x *= 0x846CA68BU;
    x ^= x >> 16;
    return x;
}

static inline uint32_t hash32(const uint32_t *k, uint64_t idx) {
    uint32_t fold = (uint32_t)((idx >> 32) * 0x9E3779B9U);
    return mix32(mix32((uint32_t)idx ^ k[0]) ^ (k[1] ^ fold));
}

static inline uint64_t hash64(const uint32_t *k, uint64_t idx) {
    uint32_t fold = (uint32_t)((idx >> 32) * 0x9E3779B9U);
    uint32_t i = (uint32_t)idx;
    uint64_t hi = mix32(mix32(i ^ k[0]) ^ (k[1] ^ fold));
    uint64_t lo = mix32(mix32(i ^ k[2]) ^ (k[3] ^ fold));
    return (hi << 32) | lo;
}

/* The random word of flat index idx from a JAX key's seed words, or from a buffer
 * of words a NumPy Generator drew (rmode 1 / 2; 0: none), container bits wide. */
static inline uint64_t random_word(int rmode, int container, const uint32_t *seed, uint64_t idx,
                                   const void *rbits, int64_t i) {
    if (rmode == 1) return container == 64 ? hash64(seed, idx) : (uint64_t)hash32(seed, idx);
    if (rmode == 2) return container == 64 ? ((const uint64_t *)rbits)[i] : (uint64_t)((const uint32_t *)rbits)[i];
    return 0;
}

static inline int64_t clamp64(int64_t v, int64_t lo, int64_t hi) { return v < lo ? lo : (v > hi ? hi : v); }

static inline int bit_length64(uint64_t v) { return v ? 64 - __builtin_clzll(v) : 0; }

static inline uint64_t low_mask(int64_t n) { return n >= 64 ? ~(uint64_t)0 : (((uint64_t)1) << n) - 1; }

/* numfmt.float.intbits.float_bits: the pattern of m * 2**q in a float of man fraction bits and
   exponent bias bias (exact where representable). */
static inline uint64_t nf_float_bits(int64_t man, int64_t bias, uint64_t m, int64_t q) {
    if (m == 0) return 0;
    const int64_t emin = 1 - bias;
    int64_t t = bit_length64(m) - 1, e = q + t;
    if (e >= emin) {
        uint64_t sig = t <= man ? m << clamp64(man - t, 0, 63) : m >> clamp64(t - man, 0, 63);
        return ((uint64_t)(e + bias) << man) + sig - (((uint64_t)1) << man);
    }
    int64_t sh = q - (emin - man);
    return sh >= 0 ? m << clamp64(sh, 0, 63) : m >> clamp64(-sh, 0, 63);
}

static inline int half_even_up(uint64_t rem, uint64_t half, uint64_t parity) {
    return (rem > half) | ((rem == half) & (rem != 0) & (parity == 1));
}

/* numfmt.float.kernel._sr_up on one element: the stochastic decision for the d dropped
 * bits rem, with n random bits of the container-wide word r (all values fit the container). */
static inline int sr_decide(int rounding, int64_t n, int64_t container, uint64_t rem, int64_t d, uint64_t r) {
    uint64_t left = rem << clamp64(n - d, 0, n);
    int64_t rs = clamp64(d - n, 0, container - 1);
    uint64_t h = rem >> rs, e = rem & ((((uint64_t)1) << rs) - 1), half = (((uint64_t)1) << rs) >> 1;
    if (rounding == R_SRB)
        h += (uint64_t)((e != 0) & (e >= half));
    else if (rounding == R_SRC)
        h += (uint64_t)half_even_up(e, half, h & 1);
    uint64_t v_n = d <= n ? left : h;
    uint64_t r_n = r >> (container - n);
    uint64_t sum = v_n + r_n;
    if (container == 32) sum &= 0xFFFFFFFFu;
    return sum >= (((uint64_t)1) << n);
}

#endif
