/* A ctypes entry point into CPFloat (header-only C library), for bench_cpfloat.py only.
 *
 * Not part of numfmt: bench_cpfloat.py compiles this file against a CPFloat source
 * tree given on its command line (CPFloat's src/ and its PCG dependency), so that
 * numfmt's compiled kernel and CPFloat run side by side in one process.
 */
#include "cpfloat_binary32.h"
#include "cpfloat_binary64.h"

static optstruct *opts = NULL;

/* Target format (precision p with the implicit bit, emin, emax), subnormals kept,
 * infinities (1) or not (0), rounding as CPFloat's CPFLOAT_RND_* value. 0 on success. */
int shim_setup(int p, int emin, int emax, int infinity, int round) {
  if (opts == NULL) {
    opts = init_optstruct();
    if (opts == NULL) return -1;
  }
  strcpy(opts->format, "custom");
  opts->precision = (cpfloat_precision_t)p;
  opts->emin = emin;
  opts->emax = emax;
  opts->explim = CPFLOAT_EXPRANGE_TARG;
  opts->infinity = infinity ? CPFLOAT_INF_USE : CPFLOAT_INF_NO;
  opts->round = (cpfloat_rounding_t)round;
  opts->saturation = CPFLOAT_SAT_NO;
  opts->subnormal = CPFLOAT_SUBN_USE;
  opts->flip = CPFLOAT_SOFTERR_NO;
  opts->p = 0.0;
  return 0;
}

int shim_round32(float *dst, const float *src, size_t n) { return cpfloatf(dst, src, n, opts); }

int shim_round64(double *dst, const double *src, size_t n) { return cpfloat(dst, src, n, opts); }
