/* Shuffles, the validation split and batch gathering. Samples carry their own index in
 * every array, so any mix-up between arrays shows. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data_files.h"
#include "enn_data.h"

enum { T = 3, D = 2, K = 2 };

/* A dataset where everything about sample i encodes i. */
static void make_dataset(enn_dataset *ds, size_t n)
{
    memset(ds, 0, sizeof *ds);
    ds->n = n, ds->T = T, ds->d = D, ds->k = K, ds->num_classes = (uint32_t)n, ds->vocab_size = 1000;
    ds->x = malloc(n * T * D * sizeof(float));
    ds->labels = malloc(n * sizeof(uint32_t));
    ds->y = malloc(n * K * sizeof(float));
    ds->tokens = malloc(n * T * sizeof(uint32_t));
    ds->targets = malloc(n * T * sizeof(uint32_t));
    for (size_t i = 0; i < n; i++) {
        ds->labels[i] = (uint32_t)i;
        for (int k = 0; k < K; k++) ds->y[i * K + k] = (float)(i * 10 + k);
        for (int t = 0; t < T; t++) {
            ds->tokens[i * T + t] = (uint32_t)(i * 100 + t);
            ds->targets[i * T + t] = (uint32_t)(i * 100 + t + 1);
            for (int d = 0; d < D; d++) ds->x[(i * T + t) * D + d] = (float)(i * 1000 + t * 10 + d);
        }
    }
}

/* Sample j of ds is original sample `orig`. */
static void expect_sample(const enn_dataset *ds, size_t j, size_t orig)
{
    cr_assert_eq(ds->labels[j], orig);
    for (int k = 0; k < K; k++) cr_assert_eq(ds->y[j * K + k], (float)(orig * 10 + k));
    for (int t = 0; t < T; t++) {
        cr_assert_eq(ds->tokens[j * T + t], orig * 100 + t);
        cr_assert_eq(ds->targets[j * T + t], orig * 100 + t + 1);
        for (int d = 0; d < D; d++) cr_assert_eq(ds->x[(j * T + t) * D + d], (float)(orig * 1000 + t * 10 + d));
    }
}

Test(data_dataset, permutations_are_seeded_and_uniform)
{
    size_t a[50], b[50], seen[50];
    enn_permutation(a, 50, 1);
    enn_permutation(b, 50, 1);
    cr_assert_arr_eq(a, b, sizeof a, "same seed, different order");
    memset(seen, 0, sizeof seen);
    for (int i = 0; i < 50; i++) seen[a[i]]++;
    for (int i = 0; i < 50; i++) cr_assert_eq(seen[i], 1, "not a permutation");
    enn_permutation(b, 50, 2);
    cr_assert(memcmp(a, b, sizeof a) != 0, "seeds 1 and 2 gave the same order");
    /* All 6 orders of 3 items equally often over 6000 seeds: expected 1000 each, standard
     * deviation sqrt(6000 * 1/6 * 5/6) = 28.9; allow 5 sigma. */
    int counts[6] = {0};
    for (uint64_t seed = 0; seed < 6000; seed++) {
        size_t p[3];
        enn_permutation(p, 3, seed * 0x9e3779b97f4a7c15ull);
        counts[p[0] * 2 + (p[1] > p[2])]++;
    }
    for (int i = 0; i < 6; i++) cr_assert(abs(counts[i] - 1000) < 145, "order %d seen %d times of 6000", i, counts[i]);
}

Test(data_dataset, shuffle_keeps_every_array_together)
{
    enn_dataset ds;
    make_dataset(&ds, 17);
    ENN_ASSERT_OK(enn_dataset_shuffle(&ds, 99));
    size_t perm[17];
    enn_permutation(perm, 17, 99);
    for (size_t j = 0; j < 17; j++) expect_sample(&ds, j, perm[j]);
    enn_dataset_free(&ds);
}

Test(data_dataset, validation_split_takes_the_last_fraction_like_keras)
{
    /* Keras: split_at = floor(n * (1 - fraction)). */
    const struct { size_t n; double f; size_t keep; } cases[] = {
        {10, 0.1, 9}, {60000, 0.1, 54000}, {7, 0.25, 5}, {50000, 0.1, 45000}, {3, 0.5, 1}, {5, 0.0, 5},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        enn_dataset ds, val;
        make_dataset(&ds, cases[c].n);
        ENN_ASSERT_OK(enn_dataset_split(&ds, cases[c].f, &val));
        cr_assert_eq(ds.n, cases[c].keep, "n %zu fraction %g", cases[c].n, cases[c].f);
        cr_assert_eq(val.n, cases[c].n - cases[c].keep);
        cr_assert_eq((size_t)floor(cases[c].n * (1.0 - cases[c].f)), cases[c].keep);
        expect_sample(&ds, 0, 0);
        expect_sample(&ds, ds.n - 1, ds.n - 1);
        if (val.n) {
            expect_sample(&val, 0, ds.n);
            expect_sample(&val, val.n - 1, cases[c].n - 1);
            cr_assert_eq(val.T, T);
            cr_assert_eq(val.k, K);
        }
        enn_dataset_free(&ds);
        enn_dataset_free(&val);
    }
    enn_dataset ds, val;
    make_dataset(&ds, 4);
    test_expect_error(enn_dataset_split(&ds, 1.0, &val), ENN_ERROR_INVALID_ARGUMENT, NULL, "fraction 1 is not in [0, 1)");
    test_expect_error(enn_dataset_split(&ds, -0.1, &val), ENN_ERROR_INVALID_ARGUMENT, NULL, "not in [0, 1)");
    test_expect_error(enn_dataset_split(&ds, 0.9, &val), ENN_ERROR_INVALID_ARGUMENT, NULL, "leaves 0 for training and 4");
    test_expect_error(enn_dataset_split(&ds, 1e-17, &val), ENN_ERROR_INVALID_ARGUMENT, NULL, "leaves 4 for training and 0");
    /* The same struct as both halves: refused before either is touched. */
    test_expect_error(enn_dataset_split(&ds, 0.5, &ds), ENN_ERROR_INVALID_ARGUMENT, NULL, "another dataset than ds");
    cr_expect_eq(ds.n, 4, "the refused split changed the dataset");
    cr_expect_eq(enn_array_count(NULL), 0);
    cr_assert_eq(ds.n, 4, "a refused split changed the dataset");
    enn_dataset_free(&ds);
}

Test(data_dataset, gather_batches_in_either_layout)
{
    enn_dataset ds;
    make_dataset(&ds, 10);
    cr_assert_eq(enn_batch_count(10, 4, 0), 3);
    cr_assert_eq(enn_batch_count(10, 4, 1), 2);
    cr_assert_eq(enn_batch_count(8, 4, 0), 2);
    size_t order[10];
    enn_permutation(order, 10, 5);
    /* The short last batch: positions 8, 9 of the order. */
    float x[2 * T * D], xt[2 * T * D], y[2 * K];
    uint32_t labels[2], tokens[2 * T], tokens_t[2 * T], targets[2 * T];
    ENN_ASSERT_OK(enn_dataset_gather(&ds, order, 8, 2, 0, x, labels, y, tokens, targets));
    ENN_ASSERT_OK(enn_dataset_gather(&ds, order, 8, 2, 1, xt, NULL, NULL, tokens_t, NULL));
    for (size_t b = 0; b < 2; b++) {
        size_t i = order[8 + b];
        cr_assert_eq(labels[b], i);
        cr_assert_eq(y[b * K + 1], (float)(i * 10 + 1));
        for (size_t t = 0; t < T; t++) {
            cr_assert_eq(tokens[b * T + t], i * 100 + t);
            cr_assert_eq(targets[b * T + t], i * 100 + t + 1);
            cr_assert_eq(tokens_t[t * 2 + b], i * 100 + t);                    /* [T, B] */
            for (size_t d = 0; d < D; d++) {
                cr_assert_eq(x[(b * T + t) * D + d], (float)(i * 1000 + t * 10 + d));  /* [B, T, d] */
                cr_assert_eq(xt[(t * 2 + b) * D + d], (float)(i * 1000 + t * 10 + d)); /* [T, B, d] */
            }
        }
    }
    test_expect_error(enn_dataset_gather(&ds, order, 9, 2, 0, x, NULL, NULL, NULL, NULL), ENN_ERROR_OUT_OF_RANGE, NULL,
                      "positions [9, 9+2) of an order of 10");
    size_t bad[2] = {3, 10};
    test_expect_error(enn_dataset_gather(&ds, bad, 0, 2, 0, x, NULL, NULL, NULL, NULL), ENN_ERROR_OUT_OF_RANGE, NULL,
                      "order[1] = 10");
    /* Slices copy. */
    enn_dataset part;
    ENN_ASSERT_OK(enn_dataset_slice(&ds, 6, 3, &part));
    cr_assert_eq(part.n, 3);
    for (size_t j = 0; j < 3; j++) expect_sample(&part, j, 6 + j);
    enn_dataset_free(&part);
    test_expect_error(enn_dataset_slice(&ds, 8, 3, &part), ENN_ERROR_OUT_OF_RANGE, NULL, "of a dataset of 10");
    free(ds.y);
    ds.y = NULL;
    test_expect_error(enn_dataset_gather(&ds, NULL, 0, 1, 0, NULL, NULL, y, NULL, NULL), ENN_ERROR_INVALID_ARGUMENT, NULL,
                      "has no y");
    enn_dataset_free(&ds);
}
