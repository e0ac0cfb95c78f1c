/* One host synchronisation per training step: the batch goes up and the loss statistics
 * come back inside the step's own submission, on the mapped path (unified memory) and on
 * the staged one that discrete GPUs take. */
#include <stdlib.h>

#include "core/context.h"
#include "harness.h"
#include "runtime_helpers.h"

static void one_wait_per_step(enn_head_kind head, int staging)
{
    if (staging) test_setenv("ENN_FORCE_STAGING", "1");
    enn_context *ctx = test_context();
    enn_model_config c;
    enn_model_config_init(&c, head);
    c.max_batch = 8;
    c.max_seq_len = 6;
    c.input_features = head == ENN_HEAD_LANGUAGE_MODEL ? 0 : 3;
    c.outputs = head == ENN_HEAD_LANGUAGE_MODEL ? 50 : 4;
    c.cell.hidden = 8;
    c.cell.memory_slots = 4;
    enn_model *m;
    ENN_ASSERT_OK(enn_model_create(ctx, &c, &m));
    uint64_t seed = 7;
    float x[8 * 6 * 3], y[8 * 4];
    uint32_t labels[8], tokens[8 * 6], targets[8 * 6];
    for (int i = 0; i < 8 * 6 * 3; i++) x[i] = (float)test_rand_uniform(&seed, -1, 1);
    for (int i = 0; i < 8 * 4; i++) y[i] = (float)test_rand_uniform(&seed, -1, 1);
    for (int i = 0; i < 8; i++) labels[i] = (uint32_t)(i % 4);
    for (int i = 0; i < 8 * 6; i++) tokens[i] = (uint32_t)(1 + i % 49), targets[i] = (uint32_t)(i % 50);
    enn_batch b = {.size = 8, .seq_len = 6, .x = x, .y = y, .labels = labels, .tokens = tokens, .targets = targets};
    enn_step_result r1, r2;
    ENN_ASSERT_OK(enn_model_train_step(m, &b, &r1));
    uint64_t w0 = ctx->host_waits;
    ENN_ASSERT_OK(enn_model_train_step(m, &b, &r2));
    ENN_ASSERT_OK(enn_model_train_step(m, &b, &r2));
    cr_assert_eq(ctx->host_waits - w0, 2, "%s, %s path: %llu host waits for 2 steps", 
                 head == ENN_HEAD_CLASSIFIER ? "classifier" : head == ENN_HEAD_REGRESSOR ? "regressor" : "LM",
                 staging ? "staged" : "mapped", (unsigned long long)(ctx->host_waits - w0));
    /* The statistics that came back are the step's: a finite loss that training lowers. */
    cr_assert(r2.loss > 0 && r2.loss < 1e3, "loss %g", r2.loss);
    cr_assert(r2.counted > 0);
    enn_model_destroy(m);
    test_context_finish(ctx);
}

Test(model_syncs, classifier_mapped) { one_wait_per_step(ENN_HEAD_CLASSIFIER, 0); }
Test(model_syncs, classifier_staged) { one_wait_per_step(ENN_HEAD_CLASSIFIER, 1); }
Test(model_syncs, regressor_staged) { one_wait_per_step(ENN_HEAD_REGRESSOR, 1); }
Test(model_syncs, language_model_staged) { one_wait_per_step(ENN_HEAD_LANGUAGE_MODEL, 1); }
