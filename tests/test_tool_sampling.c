/* enn generate's next-word draw (tools/enn/sampling.c) against probabilities worked out
 * by hand, and against a plain double-precision reference written here (softmax over
 * the allowed ids normalised directly, candidates ordered by a selection sort, top-k and
 * top-p cut, then the inverse of the cumulative distribution at u) on random logits. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>

#include "harness.h"
#include "sampling.h"

static uint32_t draw(const float *logits, uint32_t V, float temperature, uint32_t top_k, float top_p, double u)
{
    sampling_candidate scratch[64];
    cr_assert_leq(V, 64);
    sampling s = {.temperature = temperature, .top_k = top_k, .top_p = top_p};
    return sampling_choose(logits, V, 1, &s, u, scratch);
}

/* Id 0 (<pad>) has the largest logit and is never drawn. Ids 1, 2, 3 have probabilities
 * 0.1, 0.3, 0.6 at temperature 1. */
Test(sampling, known_probabilities)
{
    const float L[4] = {9.0f, 0.0f, logf(3.0f), logf(6.0f)};
    cr_expect_eq(draw(L, 4, 1, 0, 1, 0.59), 3);
    cr_expect_eq(draw(L, 4, 1, 0, 1, 0.61), 2);
    cr_expect_eq(draw(L, 4, 1, 0, 1, 0.95), 1);
    cr_expect_eq(draw(L, 4, 0, 0, 1, 0.95), 3, "temperature 0: the likeliest");
    cr_expect_eq(draw(L, 4, 100, 1, 1, 0.99), 3, "top-k 1: the likeliest at any temperature");
    /* Top-k 2 and top-p 0.85 (0.6 + 0.3 >= 0.85) both keep {3, 2}, renormalised to 2/3, 1/3. */
    cr_expect_eq(draw(L, 4, 1, 2, 1, 0.65), 3);
    cr_expect_eq(draw(L, 4, 1, 2, 1, 0.68), 2);
    cr_expect_eq(draw(L, 4, 1, 0, 0.85f, 0.65), 3);
    cr_expect_eq(draw(L, 4, 1, 0, 0.85f, 0.99), 2);
    cr_expect_eq(draw(L, 4, 1, 0, 0.55f, 0.99), 3, "top-p 0.55: the likeliest alone (0.6)");
    /* Top-k then top-p: k = 2 keeps {3, 2} (2/3, 1/3), p = 0.7 of that needs both. */
    cr_expect_eq(draw(L, 4, 1, 2, 0.7f, 0.99), 2);
    cr_expect_eq(draw(L, 4, 1, 2, 0.6f, 0.99), 3);
    /* Temperature 2: weights sqrt(1, 3, 6), so id 3 has 2.449 / 5.182 = 0.4727. */
    cr_expect_eq(draw(L, 4, 2, 0, 1, 0.47), 3);
    cr_expect_eq(draw(L, 4, 2, 0, 1, 0.48), 2);
    /* Ties go to the lower id. */
    const float E[4] = {0, 1, 1, 1};
    cr_expect_eq(draw(E, 4, 0, 0, 1, 0.5), 1);
    cr_expect_eq(draw(E, 4, 1, 1, 1, 0.9), 1);
    cr_expect_eq(draw(E, 4, 1, 0, 0.1f, 0.9), 1);
    /* One word besides <pad>: that word. */
    cr_expect_eq(draw(L, 2, 1, 0, 1, 0.9), 1);
}

/* The reference: the id drawn at u, or 0 when u or p falls within 1e-9 of a boundary of
 * the cumulative distribution (where rounding may decide either way). */
static uint32_t reference(const float *logits, uint32_t V, double T, uint32_t top_k, double top_p, double u)
{
    uint32_t order[64], n = V - 1;
    double prob[64], total = 0;
    for (uint32_t v = 1; v < V; v++) {
        order[v - 1] = v;
        total += exp(logits[v] / T);
    }
    for (uint32_t v = 1; v < V; v++) prob[v] = exp(logits[v] / T) / total;
    for (uint32_t i = 0; i < n; i++)
        for (uint32_t j = i + 1; j < n; j++)
            if (prob[order[j]] > prob[order[i]] || (prob[order[j]] == prob[order[i]] && order[j] < order[i])) {
                uint32_t t = order[i];
                order[i] = order[j];
                order[j] = t;
            }
    uint32_t k = top_k && top_k < n ? top_k : n;
    double kept_k = 0;
    for (uint32_t i = 0; i < k; i++) kept_k += prob[order[i]];
    if (top_p < 1) {
        double cum = 0;
        uint32_t i = 0;
        while (i < k) {
            cum += prob[order[i]] / kept_k;
            i++;
            if (fabs(cum - top_p) < 1e-9) return 0;
            if (cum >= top_p) break;
        }
        k = i;
    }
    double kept = 0, cum = 0;
    for (uint32_t i = 0; i < k; i++) kept += prob[order[i]];
    for (uint32_t i = 0; i < k; i++) {
        cum += prob[order[i]] / kept;
        if (fabs(cum - u) < 1e-9) return 0;
        if (u < cum) return order[i];
    }
    return order[k - 1];
}

Test(sampling, matches_a_double_reference_on_random_logits)
{
    uint64_t state = 12345;
    uint32_t checked = 0;
    for (int c = 0; c < 2000; c++) {
        uint32_t V = 2 + (uint32_t)(test_rand_u64(&state) % 40);
        float logits[64];
        for (uint32_t v = 0; v < V; v++) {
            logits[v] = (float)test_rand_uniform(&state, -4, 4);
            if (test_rand_u64(&state) % 8 == 0 && v > 1) logits[v] = logits[v - 1];   /* some ties */
        }
        float T = (float)test_rand_uniform(&state, 0.2, 3);
        uint32_t k = (uint32_t)(test_rand_u64(&state) % (V + 2));
        float p = test_rand_u64(&state) % 3 ? (float)test_rand_uniform(&state, 0.05, 1) : 1.0f;
        double u = test_rand_uniform(&state, 0, 1);
        uint32_t want = reference(logits, V, T, k, p, u);
        if (!want) continue;
        uint32_t got = draw(logits, V, T, k, p, u);
        cr_assert_eq(got, want, "case %d: V %u, T %g, top-k %u, top-p %g, u %g: drew %u, the reference %u", c, V, T,
                     k, p, u, got, want);
        checked++;
    }
    cr_expect_gt(checked, 1900, "only %u of 2000 cases away from a boundary", checked);
}
