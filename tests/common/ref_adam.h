/* Double-precision reference for runtime/ops/adam.h (Keras's Adam / AdamW with clipnorm). */
#ifndef ENN_TEST_REF_ADAM_H
#define ENN_TEST_REF_ADAM_H

#include <stddef.h>
#include <stdint.h>

typedef struct ref_adam_tensor {
    size_t offset, count;
    int decay;               /* weight decay applies */
} ref_adam_tensor;

typedef struct ref_adam_hparams {
    double lr, beta1, beta2, epsilon, weight_decay;
    uint64_t step;
    int clip;                /* 0 none, 1 per tensor (clipnorm), 2 global (global_clipnorm) */
    double clipnorm;
} ref_adam_hparams;

/* One step over the tensors of flat buffers p, g, m, v. */
void ref_adam_update(size_t tensors, const ref_adam_tensor *t, const ref_adam_hparams *hp, double *p,
                     const double *g, double *m, double *v);

#endif
