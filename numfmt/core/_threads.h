/* Splitting a kernel's element range across threads (numfmt.set_num_threads), shared by the
 * compiled kernels. Header-only (static): each extension compiles its own copy and keeps
 * its own thread count, which numfmt.core.threads sets through the module's set_threads.
 *
 * nf_split(run, ctx, n, grain) calls run(ctx, lo, hi) on consecutive ranges covering [0, n):
 * one range where n is below 2 * grain or one thread is asked for, else up to nf_threads
 * ranges of at least about grain elements each (NF_GRAIN_VECTOR or NF_GRAIN_SCALAR), their
 * bounds multiples of NF_ALIGN (so no two threads write one cache line). The
 * first range runs in the calling thread, the others in POSIX threads created for the
 * call (none kept between calls: nothing to clean up at exit or after fork); where one
 * cannot be created its range runs in the calling thread. A kernel's results depend on
 * the flat index only (the counter hash of element i is hash(key, start + i)), so they
 * are the same bits for any split. Without pthreads (Windows) everything runs in one.
 *
 * run returns -1 or the index (relative to lo) of the first element whose result the
 * input dtype cannot hold; nf_split returns -1 or the smallest such index over all ranges.
 */
#ifndef NUMFMT_THREADS_H
#define NUMFMT_THREADS_H
#include <Python.h>
#include <stdint.h>

#if !defined(_WIN32) && (defined(__unix__) || defined(__APPLE__))
#include <unistd.h>
#if defined(_POSIX_THREADS) && _POSIX_THREADS > 0
#define NF_HAVE_PTHREADS 1
#include <pthread.h>
#endif
#endif

#define NF_MAX_THREADS 256
/* The fewest elements a thread gets (a call below twice this runs in one thread): creating
 * and joining a thread costs some 10-20 us (measured: benchmarks/bench_kernel.py --threads),
 * about what the vector loops take for 2**16 float32 elements and the one-element-at-a-time
 * loops (round_one, fixed_one: 5-10 ns each) for 2**11; a thread's range is well above. */
#define NF_GRAIN_VECTOR ((Py_ssize_t)1 << 17)
#define NF_GRAIN_SCALAR ((Py_ssize_t)1 << 13)
#define NF_ALIGN ((Py_ssize_t)512)

typedef Py_ssize_t (*nf_range_fn)(void *ctx, Py_ssize_t lo, Py_ssize_t hi);

static int nf_threads = 1;

#ifdef NF_HAVE_PTHREADS
typedef struct {
    nf_range_fn run;
    void *ctx;
    Py_ssize_t lo, hi, bad;
} nf_job_t;

static void *nf_worker(void *arg) {
    nf_job_t *job = (nf_job_t *)arg;
    job->bad = job->run(job->ctx, job->lo, job->hi);
    return NULL;
}
#endif

/* The number of ranges nf_split cuts n elements into with t threads. */
static Py_ssize_t nf_parts(Py_ssize_t n, int t, Py_ssize_t grain) {
    Py_ssize_t parts = n / grain;
    if (parts > t) parts = t;
    return parts > 1 ? parts : 1;
}

static Py_ssize_t nf_split(nf_range_fn run, void *ctx, Py_ssize_t n, Py_ssize_t grain) {
#ifdef NF_HAVE_PTHREADS
    Py_ssize_t parts = nf_parts(n, nf_threads, grain);
    if (parts > 1) {
        nf_job_t jobs[NF_MAX_THREADS];
        pthread_t ids[NF_MAX_THREADS];
        int started[NF_MAX_THREADS];
        for (Py_ssize_t t = 0; t < parts; t++) {
            /* bounds: t * (n / parts) rounded down to NF_ALIGN (n / parts >= grain > NF_ALIGN) */
            Py_ssize_t lo = t * (n / parts) / NF_ALIGN * NF_ALIGN;
            jobs[t].run = run;
            jobs[t].ctx = ctx;
            jobs[t].lo = lo;
            jobs[t].bad = -1;
            if (t > 0) jobs[t - 1].hi = lo;
        }
        jobs[parts - 1].hi = n;
        for (Py_ssize_t t = 1; t < parts; t++) started[t] = pthread_create(&ids[t], NULL, nf_worker, &jobs[t]) == 0;
        jobs[0].bad = run(ctx, jobs[0].lo, jobs[0].hi);
        for (Py_ssize_t t = 1; t < parts; t++) {
            if (started[t])
                pthread_join(ids[t], NULL);
            else
                jobs[t].bad = run(ctx, jobs[t].lo, jobs[t].hi);
        }
        for (Py_ssize_t t = 0; t < parts; t++)
            if (jobs[t].bad >= 0) return jobs[t].lo + jobs[t].bad;
        return -1;
    }
#endif
    return run(ctx, 0, n);
}

/* The extension's set_threads(n): the thread count of later calls (1..NF_MAX_THREADS); on
 * a build without pthreads it stays 1. Returns the count in effect. */
static PyObject *nf_set_threads(PyObject *self, PyObject *arg) {
    (void)self;
    long t = PyLong_AsLong(arg);
    if (t == -1 && PyErr_Occurred()) return NULL;
    if (t < 1 || t > NF_MAX_THREADS) {
        PyErr_Format(PyExc_ValueError, "set_threads(n): n must be in 1..%d, got %ld", NF_MAX_THREADS, t);
        return NULL;
    }
#ifdef NF_HAVE_PTHREADS
    nf_threads = (int)t;
#endif
    return PyLong_FromLong(nf_threads);
}

#endif
