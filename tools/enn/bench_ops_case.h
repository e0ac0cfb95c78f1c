/* The case runner that the families of `enn bench ops` (bench_ops_*.c) share. A family
 * sets up its shapes (the paper's: B=128, T=28, h=128, N=64, LM R=4096 tokens, plus a
 * smaller one; bigger ones on GPUs, smaller on CPU devices such as lavapipe) and runs a
 * bench_case per kernel: a function that records the op, a plain C loop computing the
 * same in float (bench_cpu.c), the bytes moved or the flops counted, and the outputs to
 * compare.
 *
 * Each case: one device run (compiles, warms up, and is the result checked against the
 * CPU loop's), then enough back-to-back runs in one recording to fill --time, timed by
 * timestamp queries (the sum over the case's dispatches) and by the host clock
 * (submit to fence), then the CPU loop repeated for --time. Rates: GB/s from the bytes
 * a kernel must move (inputs read once + outputs written once, stated per kernel), or
 * GFLOP/s for the memory path's kernels, which are compute-bound at the paper's shapes. */
#ifndef ENN_TOOL_BENCH_OPS_CASE_H
#define ENN_TOOL_BENCH_OPS_CASE_H

#include <stddef.h>
#include <stdint.h>

#include "bench.h"
#include "core/context.h"
#include "core/recorder.h"
#include "enn.h"
#include "ops/view.h"

#define MAX_CHECKS 4
#define DEFAULT_TOL 1e-3 /* fp32 with different summation orders; errors are relative to max |ref| */

typedef struct bench_check {
    const enn_buffer *buf;   /* the device output (floats from offset 0) */
    const float *ref;        /* the CPU loop's */
    size_t n;
    double tol;              /* 0: DEFAULT_TOL */
} bench_check;

typedef struct bench_case {
    const char *kernel;
    char shape[64];
    double bytes, flops;     /* per run; flops > 0: the rate is GFLOP/s, else GB/s */
    enn_status (*record)(enn_recorder *rec, void *st);
    void (*cpu)(void *st);
    void *st;
    bench_check checks[MAX_CHECKS];
    int nchecks;
} bench_case;

void add_check(bench_case *c, const enn_buffer *buf, const float *ref, size_t n, double tol);
/* Runs, checks, times and prints one case; 0 when it ran and matched. */
int run_case(enn_context *ctx, enn_recorder *rec, const bench_options *o, const bench_case *c);

/* Host arrays and device buffers of one shape, freed together. */
typedef struct arena {
    enn_context *ctx;
    enn_buffer *dev[32];
    void *host[48];
    int ndev, nhost, failed;
    uint64_t seed;
} arena;

void *host_alloc(arena *a, size_t bytes);
/* n floats uniform in [lo, hi). */
float *host_rand(arena *a, size_t n, float lo, float hi);
uint32_t *host_ids(arena *a, size_t n, uint32_t below);
/* A device buffer of `bytes` holding `data` (zeros when NULL). */
enn_buffer *dev_buf(arena *a, const void *data, size_t bytes);
void arena_free(arena *a);
int arena_ok(arena *a);

int is_cpu_device(const enn_context *ctx);

#define V(b) enn_view_of(b)

/* A family's loop over shapes: creates the recorder, runs `one` per shape (which sets
 * up its arena and runs its cases), frees each shape's arena. */
typedef int (*shape_fn)(enn_context *ctx, enn_recorder *rec, const bench_options *o, arena *ar, size_t shape);

int for_shapes(enn_context *ctx, const bench_options *o, size_t count, shape_fn one);

#endif
