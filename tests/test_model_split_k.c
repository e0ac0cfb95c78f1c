/* Weight gradients over all time steps are split over K (the T * B rows) on GPUs
 * (enn_gemm_split_k_count_for). Planned as for a GPU on the test device, the split
 * gradients must equal the unsplit ones (ENN_DISABLE_SPLIT_K=1) up to the order of the
 * additions: fp32 sums of 320 terms of size O(1), so 1e-5 of the largest gradient. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "harness.h"
#include "small_config.h"

enum { B = 8, T = 40, D = 5, H = 8, N = 4, C = 3 };

/* The weight gradients of one step on a context of their own, planned as for a GPU and
 * with ENN_DISABLE_SPLIT_K=split_off (both read when the context is created). */
static float *gradients(int split_off, size_t *count)
{
    setenv("ENN_PLAN_AS_GPU", "1", 1);
    if (split_off) setenv("ENN_DISABLE_SPLIT_K", "1", 1);
    enn_context *ctx = test_context();
    unsetenv("ENN_DISABLE_SPLIT_K");
    enn_model_config c = test_small_classifier(D, T, B, C, H, N);
    c.seed = 5;
    enn_model *m;
    ENN_ASSERT_OK(enn_model_create(ctx, &c, &m));
    float x[B * T * D];
    uint32_t labels[B];
    test_random_batch(99, x, B * T * D, 1, labels, B, C);
    enn_batch batch = {.size = B, .seq_len = T, .x = x, .labels = labels};
    ENN_ASSERT_OK(enn_model_compute_gradients(m, &batch, NULL, NULL));
    static const char *const names[] = {"W_z", "W_u", "W_o"};
    size_t sizes[] = {D * H, 9 * H * H, 3 * H * H}, total = 0;
    for (int i = 0; i < 3; i++) total += sizes[i];
    float *all = malloc(total * sizeof *all), *p = all;
    cr_assert_not_null(all);
    for (int i = 0; i < 3; i++) {
        char name[32];
        snprintf(name, sizeof name, "grad.%s", names[i]);
        ENN_ASSERT_OK(enn_model_read(m, name, p, sizes[i]));
        p += sizes[i];
    }
    enn_model_destroy(m);
    test_context_finish(ctx);
    *count = total;
    return all;
}

Test(model_split_k, weight_gradients_match_unsplit)
{
    size_t n1, n2;
    float *whole = gradients(1, &n1);
    float *split = gradients(0, &n2);
    cr_assert_eq(n1, n2);
    double scale = 0, err = 0;
    int differ = 0;
    for (size_t i = 0; i < n1; i++) {
        scale = fmax(scale, fabs(whole[i]));
        err = fmax(err, fabs((double)whole[i] - split[i]));
        differ |= whole[i] != split[i];
    }
    cr_expect(scale > 0, "all gradients are zero");
    cr_expect_lt(err, 1e-5 * scale, "split-K weight gradients differ by %g (largest %g)", err, scale);
    /* The split path really ran: a different summation order changes some bits. */
    cr_expect(differ, "split and unsplit gradients are bit-identical: was split-K used at all?");
    free(whole);
    free(split);
}
