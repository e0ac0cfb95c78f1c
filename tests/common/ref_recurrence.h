/* Double-precision reference of the ENN cell's h-dependent recurrence (runtime/ops/
 * recurrence.h), in dense arrays without padding: u [T,B,3h], hs [T+1,B,h], hp [T,B,h],
 * mean, rstd [T,B]; W_uh [h,3h], W_o [3h,h] row-major; b_o, gain, bias [h]. */
#ifndef ENN_TEST_REF_RECURRENCE_H
#define ENN_TEST_REF_RECURRENCE_H

#include <stdint.h>

typedef struct ref_recurrence_dims {
    uint32_t T, B, h;
    int layer_norm;
    double eps;
} ref_recurrence_dims;

/* u in/out (the z, m part on entry); hs: slab 0 = h_0 in, slabs 1..T out; hp, mean, rstd
 * out (layer norm only; may be NULL otherwise). */
void ref_recurrence_forward(const ref_recurrence_dims *d, double *u, double *hs, double *hp, double *mean,
                            double *rstd, const double *W_uh, const double *W_o, const double *b_o, const double *gain,
                            const double *bias);

/* dhs in/out (slab t >= 1: the head's gradient of h_t on entry; every slab gets the
 * recurrent part added); dhp [T,B,h], du [T,B,3h] out; dgain, dbias [h] overwritten with
 * the layer norm's parameter gradients (layer norm only, may be NULL). */
void ref_recurrence_backward(const ref_recurrence_dims *d, double *dhs, double *dhp, double *du, const double *u,
                             const double *hs, const double *hp, const double *mean, const double *rstd,
                             const double *W_uh, const double *W_o, const double *gain, double *dgain, double *dbias);

#endif
