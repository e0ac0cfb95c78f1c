/* The activations that GEMM epilogues and elementwise kernels share (values are what
 * the shaders switch on). */
#ifndef ENN_OPS_ACTIVATION_H
#define ENN_OPS_ACTIVATION_H

typedef enum enn_activation {
    ENN_ACT_NONE = 0,
    ENN_ACT_IDENTITY = 0, /* the same: no activation */
    ENN_ACT_RELU = 1,
    ENN_ACT_TANH = 2,
    ENN_ACT_SIGMOID = 3,
} enn_activation;

#endif
