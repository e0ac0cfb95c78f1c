/* Embedding lookup and its deterministic scatter-add backward against the double
 * reference in tests/common/ref_embedding.c. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/recorder.h"
#include "device_data.h"
#include "harness.h"
#include "ops/embedding.h"
#include "ref_embedding.h"
#include "ref_gradcheck.h"

/* The forward is a copy: exact. The backward adds, per table entry, the d out rows of
 * the positions holding that id (in position order) to the entry: k additions of
 * numbers in [-1, 1), error <= k * 6e-8 * sum|terms|; with k up to ~100 repeats here,
 * 1e-5 against the sum of the terms' magnitudes. */
#define TOL_BACKWARD 1e-5

typedef struct emb_case {
    uint32_t rows, dim, vocab;
    uint32_t distinct;   /* ids drawn from [0, distinct): fewer than vocab gives repeats */
    int invalid;         /* some ids >= vocab */
} emb_case;

static void run_case(enn_context *ctx, enn_recorder *rec, const emb_case *c, uint64_t *seed)
{
    uint32_t R = c->rows, D = c->dim, V = c->vocab;
    size_t nt = (size_t)V * D, no = (size_t)R * D;
    float *table = malloc(nt * 4), *dtable = malloc(nt * 4), *out = malloc(no * 4), *dout = malloc(no * 4);
    double *tabled = malloc(nt * 8), *dtabled = malloc(nt * 8), *outd = malloc(no * 8), *doutd = malloc(no * 8);
    double *mag = malloc(nt * 8);
    uint32_t *ids = malloc(R * 4ull);
    dd_fill_uniform(seed, table, tabled, nt, -1, 1);
    dd_fill_uniform(seed, dtable, dtabled, nt, -1, 1);
    dd_fill_uniform(seed, dout, doutd, no, -1, 1);
    for (uint32_t r = 0; r < R; r++) {
        ids[r] = (uint32_t)(test_rand_u64(seed) % c->distinct);
        if (c->invalid && r % 7 == 3) ids[r] = V + r;
    }
    enn_buffer *bt = dd_upload(ctx, table, nt * 4), *bdt = dd_upload(ctx, dtable, nt * 4);
    enn_buffer *bids = dd_upload(ctx, ids, R * 4ull), *bout = dd_upload(ctx, NULL, no * 4);
    enn_buffer *bdout = dd_upload(ctx, dout, no * 4);
    enn_buffer *bws = dd_upload(ctx, NULL, enn_embedding_backward_workspace_bytes(R));
    ENN_ASSERT_OK(enn_recorder_begin(rec));
    ENN_ASSERT_OK(enn_embedding_forward(rec, R, D, V, enn_view_of(bt), enn_view_of(bids), enn_view_of(bout)));
    ENN_ASSERT_OK(enn_embedding_backward(rec, R, D, V, enn_view_of(bids), enn_view_of(bdout), enn_view_of(bws),
                                         enn_view_of(bdt)));
    ENN_ASSERT_OK(enn_recorder_run(rec));
    dd_download(ctx, bout, 0, out, no * 4);
    dd_download(ctx, bdt, 0, dtable, nt * 4);

    ref_embedding_forward(R, D, V, tabled, ids, outd);
    /* magnitudes: |initial entry| + sum |d out| of its positions */
    for (size_t i = 0; i < nt; i++) mag[i] = fabs(dtabled[i]) + 1e-30;
    for (uint32_t r = 0; r < R; r++)
        if (ids[r] < V)
            for (uint32_t d = 0; d < D; d++) mag[(size_t)ids[r] * D + d] += fabs(doutd[(size_t)r * D + d]);
    ref_embedding_backward(R, D, V, ids, doutd, dtabled);
    size_t w;
    cr_expect(dd_max_rel_error(out, outd, no, 1e-30, &w) == 0, "R %u D %u V %u: forward differs at %zu", R, D, V, w);
    double e = dd_max_scaled_error(dtable, dtabled, mag, nt, &w);
    cr_expect(e <= TOL_BACKWARD, "R %u D %u V %u: backward error %g at %zu (%g vs %g)", R, D, V, e, w, dtable[w],
              dtabled[w]);

    /* Bitwise repeatable: the same backward again from the same start gives the same bits. */
    float *again = malloc(nt * 4), *first = malloc(nt * 4);
    memcpy(first, dtable, nt * 4);
    for (size_t i = 0; i < nt; i++) dtable[i] = 0;
    ENN_ASSERT_OK(enn_buffer_upload(ctx, bdt, 0, dtable, nt * 4));
    ENN_ASSERT_OK(enn_recorder_begin(rec));
    ENN_ASSERT_OK(enn_embedding_backward(rec, R, D, V, enn_view_of(bids), enn_view_of(bdout), enn_view_of(bws),
                                         enn_view_of(bdt)));
    ENN_ASSERT_OK(enn_recorder_run(rec));
    dd_download(ctx, bdt, 0, again, nt * 4);
    ENN_ASSERT_OK(enn_buffer_upload(ctx, bdt, 0, dtable, nt * 4));
    ENN_ASSERT_OK(enn_recorder_begin(rec));
    ENN_ASSERT_OK(enn_embedding_backward(rec, R, D, V, enn_view_of(bids), enn_view_of(bdout), enn_view_of(bws),
                                         enn_view_of(bdt)));
    ENN_ASSERT_OK(enn_recorder_run(rec));
    dd_download(ctx, bdt, 0, first, nt * 4);
    cr_expect(memcmp(again, first, nt * 4) == 0, "R %u D %u V %u: two runs differ", R, D, V);

    enn_buffer_destroy(ctx, bt), enn_buffer_destroy(ctx, bdt), enn_buffer_destroy(ctx, bids);
    enn_buffer_destroy(ctx, bout), enn_buffer_destroy(ctx, bdout), enn_buffer_destroy(ctx, bws);
    free(table), free(dtable), free(out), free(dout), free(tabled), free(dtabled), free(outd), free(doutd);
    free(mag), free(ids), free(again), free(first);
}

Test(ops_embedding, matches_reference)
{
    enn_context *ctx = test_context();
    enn_recorder *rec;
    ENN_ASSERT_OK(enn_recorder_create(ctx, &rec));
    uint64_t seed = 21;
    const emb_case cases[] = {
        {1, 1, 1, 1, 0},
        {7, 3, 5, 5, 0},             /* repeats */
        {257, 13, 31, 3, 1},         /* many repeats of 3 ids, ids past the vocabulary */
        {128 * 28, 128, 1009, 1009, 0}, /* B*T = 128*28 ids, h = 128 */
        {128 * 32, 128, 2003, 40, 0},   /* the LM's B*T = 4096, ~100 repeats per id */
        {300, 28, 188590, 188590, 0},  /* the paper's vocabulary */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) run_case(ctx, rec, &cases[i], &seed);
    for (int k = 0; k < 3; k++) { /* random shapes */
        uint32_t vocab = 1 + (uint32_t)(test_rand_u64(&seed) % 3000);
        emb_case c = {1 + (uint32_t)(test_rand_u64(&seed) % 1000), 1 + (uint32_t)(test_rand_u64(&seed) % 200), vocab,
                      1 + (uint32_t)(test_rand_u64(&seed) % vocab), k == 2};
        run_case(ctx, rec, &c, &seed);
    }
    enn_recorder_destroy(rec);
    test_context_finish(ctx);
}

typedef struct emb_fd { uint32_t rows, dim, vocab; const uint32_t *ids; } emb_fd;

static void emb_fn(void *user, const double *table, double *out)
{
    emb_fd *f = user;
    ref_embedding_forward(f->rows, f->dim, f->vocab, table, f->ids, out);
}

/* The backward is the derivative of the forward with respect to the table, repeated
 * ids included: finite differences of the reference (linear: rounding only, 1e-7), and
 * the device's backward against those (fp32 sums of 3 terms: 1e-6). */
Test(ops_embedding, backward_matches_finite_differences)
{
    enum { R = 9, D = 4, V = 6 };
    const uint32_t ids[R] = {2, 5, 2, 0, 2, 5, 1, 7, 0}; /* 7 is past the vocabulary */
    double table[V * D], w[R * D], fd[V * D], an[V * D] = {0};
    float tablef[V * D], wf[R * D], got[V * D] = {0};
    uint64_t seed = 22;
    dd_fill_uniform(&seed, tablef, table, V * D, -1, 1);
    dd_fill_uniform(&seed, wf, w, R * D, -1, 1);
    emb_fd f = {R, D, V, ids};
    ref_fd_gradient(emb_fn, &f, table, V * D, R * D, w, 1e-5, fd);
    ref_embedding_backward(R, D, V, ids, w, an);
    size_t at;
    double e = dd_max_rel_error_d(an, fd, V * D, 1e-3, &at);
    cr_expect(e <= 1e-7, "reference: analytic %g vs finite difference %g at %zu", an[at], fd[at], at);

    enn_context *ctx = test_context();
    enn_recorder *rec;
    ENN_ASSERT_OK(enn_recorder_create(ctx, &rec));
    enn_buffer *bids = dd_upload(ctx, ids, sizeof ids), *bdout = dd_upload(ctx, wf, sizeof wf);
    enn_buffer *bdt = dd_upload(ctx, NULL, sizeof got), *bws = dd_upload(ctx, NULL, enn_embedding_backward_workspace_bytes(R));
    ENN_ASSERT_OK(enn_recorder_begin(rec));
    ENN_ASSERT_OK(enn_embedding_backward(rec, R, D, V, enn_view_of(bids), enn_view_of(bdout), enn_view_of(bws),
                                         enn_view_of(bdt)));
    ENN_ASSERT_OK(enn_recorder_run(rec));
    dd_download(ctx, bdt, 0, got, sizeof got);
    e = dd_max_rel_error(got, fd, V * D, 1e-3, &at);
    cr_expect(e <= 1e-6, "device %g vs finite difference %g at %zu", got[at], fd[at], at);
    enn_buffer_destroy(ctx, bids), enn_buffer_destroy(ctx, bdout), enn_buffer_destroy(ctx, bdt);
    enn_buffer_destroy(ctx, bws);
    enn_recorder_destroy(rec);
    test_context_finish(ctx);
}
