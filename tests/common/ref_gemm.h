/* Plain C double-precision references for the GEMM family (runtime/ops/gemm.h). */
#ifndef ENN_TEST_REF_GEMM_H
#define ENN_TEST_REF_GEMM_H

#include <stdint.h>

/* The same contract as enn_gemm (see runtime/ops/gemm.h), on host arrays, in double:
 *   c = act(alpha * op(a) op(b) + beta * c_in + bias)
 * c_in and c are ldc-strided float arrays of the batch (c_in may be NULL when beta is
 * 0); the result goes to `out` (double, laid out like C). `abs_sum`, if not NULL,
 * receives per element |alpha| sum_k |op(a) op(b)| + |beta c_in| + |bias|: the scale of
 * the rounding error an fp32 evaluation may make, used to set tolerances. act: 0 none,
 * 1 relu, 2 tanh, 3 sigmoid. */
typedef struct ref_gemm_args {
    const float *a, *b, *c_in, *bias;
    uint32_t m, n, k;
    int trans_a, trans_b;
    uint32_t lda, ldb, ldc;   /* no zeros here: the caller resolves packed ones */
    uint32_t batch;
    uint64_t stride_a, stride_b, stride_c;
    double alpha, beta;
    int act;
} ref_gemm_args;

void ref_gemm(const ref_gemm_args *g, double *out, double *abs_sum);

/* IEEE half conversions, round to nearest even (for fp16-operand references). */
uint16_t ref_f32_to_f16(float f);
float ref_f16_to_f32(uint16_t h);

#endif
