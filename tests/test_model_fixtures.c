/* The whole model on the device against values dumped from an independent PyTorch
 * transcription of the spec (bench/make_fixtures.py, float64): the loss, the outputs,
 * the final trace and the gradient of every parameter, of the input, of h0 and of H0,
 * for every option combination the fixtures cover; and the RNN/GRU/LSTM baselines
 * (base_*) against torch.nn's own recurrent kernels, with weights in libenn's layout. */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "io/safetensors.h"
#include "torch_fixture.h"

/* Compares a model tensor with the fixture's: max |device - reference| against the
 * reference's largest magnitude. fp32 through a 5-step recurrence with layer norms
 * (which divide by standard deviations of 6 numbers) loses a few more digits than one
 * kernel: 3e-4 of the tensor's scale is well below any real error (a wrong sign or a
 * missing term moves a gradient by its own size) and above what fp32 rounding leaves. */
static void expect_close(enn_model *model, const torch_fixture *f, const char *model_name, const char *fixture_name)
{
    const enn_st_tensor *t = enn_safetensors_find(f->st, fixture_name);
    cr_assert_not_null(t, "fixture lacks %s", fixture_name);
    size_t n = enn_st_elements(t);
    float *got = malloc(n * sizeof *got);
    ENN_ASSERT_OK(enn_model_read(model, model_name, got, n));
    double scale = 0, err = 0;
    size_t worst = 0;
    for (size_t i = 0; i < n; i++) {
        double ref;
        memcpy(&ref, (const char *)t->data + i * 8, 8);
        scale = fmax(scale, fabs(ref));
        if (fabs(got[i] - ref) > err) {
            err = fabs(got[i] - ref);
            worst = i;
        }
    }
    double ref_worst;
    memcpy(&ref_worst, (const char *)t->data + worst * 8, 8);
    cr_expect(err <= 3e-4 * scale + 1e-6, "%s: max error %.3g at [%zu] (device %.7g, reference %.7g), scale %.3g",
              fixture_name, err, worst, got[worst], ref_worst, scale);
    free(got);
}

static void run_fixture(const char *name)
{
    torch_fixture f;
    torch_fixture_load(name, &f);
    enn_context *ctx = test_context();
    enn_model *model = NULL;
    ENN_ASSERT_OK(enn_model_create(ctx, &f.model, &model));

    /* The fixture's parameters replace the model's own initialisation. */
    for (uint32_t i = 0; i < enn_model_parameter_tensors(model); i++) {
        enn_tensor_desc d;
        ENN_ASSERT_OK(enn_model_parameter_desc(model, i, &d));
        char key[96];
        snprintf(key, sizeof key, "param.%s", d.name);
        size_t n;
        float *p = torch_fixture_tensor(&f, key, &n, 0);
        cr_assert_not_null(p, "fixture lacks %s", key);
        ENN_ASSERT_OK(enn_model_write(model, d.name, p, n));
        free(p);
    }
    enn_batch batch = {.size = f.B, .seq_len = f.T};
    float *x = torch_fixture_tensor(&f, "input.x", NULL, 0), *y = NULL;
    uint32_t *labels = torch_fixture_tensor(&f, "input.labels", NULL, 1), *tokens = torch_fixture_tensor(&f, "input.tokens", NULL, 1);
    uint32_t *targets = NULL;
    if (f.model.head == ENN_HEAD_REGRESSOR) y = torch_fixture_tensor(&f, "input.targets", NULL, 0);
    else targets = torch_fixture_tensor(&f, "input.targets", NULL, 1);
    batch.x = x;
    batch.y = y;
    batch.labels = labels;
    batch.tokens = tokens;
    batch.targets = targets;
    float *h0 = torch_fixture_tensor(&f, "input.h0", NULL, 0), *H0 = torch_fixture_tensor(&f, "input.H0", NULL, 0);
    float *xi = torch_fixture_tensor(&f, "input.xi", NULL, 0), *keep = torch_fixture_tensor(&f, "input.keep_mask", NULL, 0);
    enn_forward_inputs in = {.h0 = h0, .H0 = H0, .noise = xi, .keep_mask = keep, .no_dropout = keep == NULL};
    enn_step_result r;
    ENN_ASSERT_OK(enn_model_compute_gradients(model, &batch, &in, &r));

    const enn_st_tensor *loss = enn_safetensors_find(f.st, "out.loss");
    double ref_loss;
    memcpy(&ref_loss, loss->data, 8);
    cr_expect(fabs(r.loss - ref_loss) <= 1e-4 * fabs(ref_loss) + 1e-6, "%s: loss %.7g, reference %.7g", name, r.loss,
              ref_loss);
    expect_close(model, &f, "out.hs", "out.hs");
    int baseline = f.model.kind != ENN_MODEL_ENN;
    if (!baseline) {
        expect_close(model, &f, "out.a", "out.a");
        expect_close(model, &f, "out.H_T", "out.H_T");
    }
    if (f.model.head != ENN_HEAD_LANGUAGE_MODEL) expect_close(model, &f, "out.logits", "out.logits");
    for (uint32_t i = 0; i < enn_model_parameter_tensors(model); i++) {
        enn_tensor_desc d;
        ENN_ASSERT_OK(enn_model_parameter_desc(model, i, &d));
        char key[96];
        snprintf(key, sizeof key, "grad.%s", d.name);
        expect_close(model, &f, key, key);
    }
    if (!baseline) expect_close(model, &f, "grad.input.h0", "grad.input.h0");
    if (!baseline && f.model.cell.trace_gradient == ENN_TRACE_GRADIENT_EXACT)
        expect_close(model, &f, "grad.input.H0", "grad.input.H0");
    if (enn_safetensors_find(f.st, "grad.input.x")) expect_close(model, &f, "grad.input.x", "grad.input.x");

    free(x); free(y); free(labels); free(tokens); free(targets); free(h0); free(H0); free(xi); free(keep);
    enn_model_destroy(model);
    test_context_finish(ctx);
    torch_fixture_free(&f);
}

#define FIXTURE(name) Test(model_fixtures, name) { run_fixture(#name); }
FIXTURE(cls_ln1_shared_exact_attention)
FIXTURE(cls_ln1_shared_exact_last)
FIXTURE(cls_ln1_shared_stop_attention)
FIXTURE(cls_ln1_shared_stop_last)
FIXTURE(cls_ln1_per_sample_exact_attention)
FIXTURE(cls_ln1_per_sample_exact_last)
FIXTURE(cls_ln1_per_sample_stop_attention)
FIXTURE(cls_ln1_per_sample_stop_last)
FIXTURE(cls_ln0_shared_exact_attention)
FIXTURE(cls_ln0_shared_exact_last)
FIXTURE(cls_ln0_shared_stop_attention)
FIXTURE(cls_ln0_shared_stop_last)
FIXTURE(cls_ln0_per_sample_exact_attention)
FIXTURE(cls_ln0_per_sample_exact_last)
FIXTURE(cls_ln0_per_sample_stop_attention)
FIXTURE(cls_ln0_per_sample_stop_last)
FIXTURE(cls_clip_shared_exact_attention)
FIXTURE(cls_clip_per_sample_exact_last)
FIXTURE(cls_clip_shared_stop_attention)
FIXTURE(reg_last)
FIXTURE(reg_sequence)
FIXTURE(lm_embedding)
FIXTURE(lm_embedding_per_sample_stop)
FIXTURE(lm_float)
FIXTURE(base_rnn_cls_last)
FIXTURE(base_rnn_lm_embedding)
FIXTURE(base_gru_cls_last)
FIXTURE(base_gru_lm_embedding)
FIXTURE(base_lstm_cls_last)
FIXTURE(base_lstm_lm_embedding)
FIXTURE(base_lstm_cls_attention)
