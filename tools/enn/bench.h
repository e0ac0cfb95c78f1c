/* Shared parts of `enn bench ops`: options, the printed row, and the kernel families
 * (GEMM in cmd_bench.c, the others in bench_ops_*.c with their case runner in
 * bench_ops_case.c; CPU baselines in bench_cpu.c). */
#ifndef ENN_TOOL_BENCH_H
#define ENN_TOOL_BENCH_H

#include <stdint.h>

#include "core/context.h"

typedef struct bench_options {
    uint32_t min_size, max_size;   /* GEMM: square sizes, doubling */
    int max_size_given;
    int threads;                   /* GEMM's CPU baseline threads; 0: the library's default */
    int all_variants;              /* every variant the device runs, not only the choice */
    int quick;                     /* only each family's smallest shape (a smoke test) */
    double target_s;               /* time to spend per measurement */
    const char *filter;            /* family name, or NULL for all */
    uint32_t gemm_shapes[8][5];    /* GEMM: M, N, K, ta, tb given by --gemm, instead of squares */
    uint32_t gemm_epilogue[8];     /* and its epilogue: bit 0 bias, bit 1 beta = 0.5, bits 2-3 activation */
    uint32_t gemm_count;
} bench_options;

/* One printed row. Rates are in `unit` (GFLOP/s or GB/s); 0 means not measured. */
typedef struct bench_row {
    const char *kernel;
    char shape[64];
    const char *variant;
    double gpu_ms, host_ms;        /* per run: timestamp queries, host clock */
    double gpu_rate, host_rate;
    double cpu_ms, cpu_rate;       /* the CPU baseline's time per run and rate */
    const char *unit;
    char check[24];                /* the device result against the CPU's: max error, ok / BAD */
} bench_row;

void bench_print_row(const bench_row *r);
double bench_now_s(void);
/* The largest |x - ref| over max |ref|, the error that check columns show. */
double bench_rel_error(const float *x, const float *ref, size_t n);

int bench_gemm(enn_context *ctx, const bench_options *o);
int bench_cosine_attention(enn_context *ctx, const bench_options *o);
int bench_hebbian_trace(enn_context *ctx, const bench_options *o);
int bench_memory_step(enn_context *ctx, const bench_options *o);
int bench_effective_memory(enn_context *ctx, const bench_options *o);
int bench_layer_norm(enn_context *ctx, const bench_options *o);
int bench_recurrence(enn_context *ctx, const bench_options *o);
int bench_xent(enn_context *ctx, const bench_options *o);
int bench_embedding(enn_context *ctx, const bench_options *o);
int bench_elementwise(enn_context *ctx, const bench_options *o);
int bench_sum_rows(enn_context *ctx, const bench_options *o);
int bench_l2_norm(enn_context *ctx, const bench_options *o);
int bench_dropout(enn_context *ctx, const bench_options *o);
int bench_adam(enn_context *ctx, const bench_options *o);
int bench_pooling(enn_context *ctx, const bench_options *o);

#endif
