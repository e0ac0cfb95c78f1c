/* The `enn` command end to end: `enn grad` on a checkpoint and .npy inputs made from a
 * PyTorch fixture (tests/data/enn_torch/, an independent float64 transcription of the
 * spec) writes the fixture's loss, outputs and gradients under the fixture's names and
 * shapes; `enn init` turns every model flag into the configuration it names. The tool
 * runs as a child process on the test device with validation on; any validation
 * message makes it exit non-zero. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "data_files.h"
#include "enn_data.h"
#include "harness.h"
#include "io/safetensors.h"
#include "torch_fixture.h"

/* Runs `enn <args>` on the test device with validation on. Leak checking is off in the
 * child: under the sanitizers every process that creates a Vulkan instance on lavapipe
 * reports 128 bytes the driver leaks (from a module already unloaded, so no suppression can
 * name it; `enn smoke` shows it too). The tool's own code was checked for leaks by hand. */
static int run_tool(const char *args)
{
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "LSAN_OPTIONS=detect_leaks=0 ENN_DEVICE='%s' ENN_VALIDATION=1 '%s' %s", test_device(),
             ENN_TOOL_PATH, args);
    int rc = system(cmd);
    return rc;
}

/* A fixture tensor written as .npy with the fixture's shape (floats, or uint32 ids). */
static void fixture_npy(const torch_fixture *f, const char *name, const char *path, int ids)
{
    const enn_st_tensor *t = enn_safetensors_find(f->st, name);
    cr_assert_not_null(t, "fixture lacks %s", name);
    enn_array a = {.dtype = ids ? ENN_DTYPE_U32 : ENN_DTYPE_F32, .rank = t->rank};
    memcpy(a.shape, t->shape, t->rank * sizeof *t->shape);
    a.data = torch_fixture_tensor(f, name, NULL, ids);
    ENN_ASSERT_OK(enn_npy_write(path, &a));
    free(a.data);
}

/* Same tolerance as test_model_fixtures.c, and for the same reason: 3e-4 of the tensor's
 * scale is far below a real error and above what fp32 through the recurrence leaves.
 * The shape must be the fixture's exactly (names and layouts are the documented ones). */
static void expect_close(const enn_safetensors *got, const torch_fixture *f, const char *name)
{
    const enn_st_tensor *ref = enn_safetensors_find(f->st, name), *out = enn_safetensors_find(got, name);
    cr_assert_not_null(ref, "fixture lacks %s", name);
    cr_assert_not_null(out, "enn grad wrote no %s", name);
    cr_assert_eq(out->dtype, ENN_ST_F32, "%s is not F32", name);
    cr_assert_eq(out->rank, ref->rank, "%s: rank %u, fixture %u", name, out->rank, ref->rank);
    for (uint32_t i = 0; i < ref->rank; i++)
        cr_assert_eq(out->shape[i], ref->shape[i], "%s: dim %u is %llu, fixture %llu", name, i,
                     (unsigned long long)out->shape[i], (unsigned long long)ref->shape[i]);
    size_t n = enn_st_elements(ref);
    double scale = 0, err = 0;
    for (size_t i = 0; i < n; i++) {
        double r;
        float g;
        memcpy(&r, (const char *)ref->data + i * 8, 8);
        memcpy(&g, (const char *)out->data + i * 4, 4);
        scale = fmax(scale, fabs(r));
        err = fmax(err, fabs(g - r));
    }
    cr_expect(err <= 3e-4 * scale + 1e-6, "%s: max error %.3g, scale %.3g", name, err, scale);
}

static void grad_case(const char *name)
{
    torch_fixture f;
    torch_fixture_load(name, &f);
    char dir[TEST_PATH_MAX], ckpt[TEST_PATH_MAX], out[TEST_PATH_MAX], p[TEST_PATH_MAX];
    test_tmpdir(dir);
    test_path(ckpt, dir, "model.safetensors");
    test_path(out, dir, "grads.safetensors");

    /* The checkpoint: a model of the fixture's configuration holding its parameters. */
    enn_context *ctx = test_context();
    enn_model *model;
    ENN_ASSERT_OK(enn_model_create(ctx, &f.model, &model));
    for (uint32_t i = 0; i < enn_model_parameter_tensors(model); i++) {
        enn_tensor_desc d;
        ENN_ASSERT_OK(enn_model_parameter_desc(model, i, &d));
        char key[96];
        snprintf(key, sizeof key, "param.%s", d.name);
        size_t n;
        float *v = torch_fixture_tensor(&f, key, &n, 0);
        cr_assert_not_null(v, "fixture lacks %s", key);
        ENN_ASSERT_OK(enn_model_write(model, d.name, v, n));
        free(v);
    }
    ENN_ASSERT_OK(enn_model_save(model, ckpt));
    enn_model_destroy(model);
    test_context_finish(ctx);

    /* The inputs as .npy files, and the command line naming them. */
    char args[4096];
    int n = snprintf(args, sizeof args, "grad --model '%s' --out '%s'", ckpt, out);
    const enn_head_kind head = f.model.head;
    struct { const char *tensor, *flag, *file; int ids, wanted; } inputs[] = {
        {"input.x", "--x", "x.npy", 0, head != ENN_HEAD_LANGUAGE_MODEL},
        {"input.labels", "--labels", "labels.npy", 1, head == ENN_HEAD_CLASSIFIER},
        {"input.targets", "--y", "y.npy", 0, head == ENN_HEAD_REGRESSOR},
        {"input.tokens", "--tokens", "tokens.npy", 1, head == ENN_HEAD_LANGUAGE_MODEL},
        {"input.targets", "--targets", "targets.npy", 1, head == ENN_HEAD_LANGUAGE_MODEL},
        {"input.h0", "--h0", "h0.npy", 0, 1},
        {"input.H0", "--H0", "H0.npy", 0, 1},
        {"input.xi", "--noise", "xi.npy", 0, 1},
        {"input.keep_mask", "--keep-mask", "keep.npy", 0, 1},
    };
    for (size_t i = 0; i < sizeof inputs / sizeof *inputs; i++) {
        if (!inputs[i].wanted || !enn_safetensors_find(f.st, inputs[i].tensor)) continue;
        fixture_npy(&f, inputs[i].tensor, test_path(p, dir, inputs[i].file), inputs[i].ids);
        n += snprintf(args + n, sizeof args - (size_t)n, " %s '%s'", inputs[i].flag, p);
    }
    cr_assert_eq(run_tool(args), 0, "enn %s failed", args);

    enn_safetensors *got;
    ENN_ASSERT_OK(enn_safetensors_read(out, &got));
    const enn_st_tensor *loss = enn_safetensors_find(got, "out.loss"), *ref = enn_safetensors_find(f.st, "out.loss");
    cr_assert(loss && ref && loss->rank == 1 && loss->shape[0] == 1);
    float l;
    double r;
    memcpy(&l, loss->data, 4);
    memcpy(&r, ref->data, 8);
    cr_expect(fabs(l - r) <= 1e-4 * fabs(r) + 1e-6, "loss %.7g, reference %.7g", l, r);
    expect_close(got, &f, "out.hs");
    expect_close(got, &f, "out.logits");
    if (f.model.kind == ENN_MODEL_ENN) {
        expect_close(got, &f, "out.a");
        expect_close(got, &f, "out.H_T");
        expect_close(got, &f, "grad.input.h0");
        if (f.model.cell.trace_gradient == ENN_TRACE_GRADIENT_EXACT) expect_close(got, &f, "grad.input.H0");
    } else {
        /* A baseline has no trace and starts from zeros: nothing of them is written. */
        static const char *const absent[] = {"out.a", "out.H_T", "grad.input.h0", "grad.input.H0"};
        for (size_t i = 0; i < sizeof absent / sizeof *absent; i++)
            cr_expect_null(enn_safetensors_find(got, absent[i]), "a baseline's output has %s", absent[i]);
    }
    if (enn_safetensors_find(f.st, "grad.input.x")) expect_close(got, &f, "grad.input.x");
    /* Every parameter's gradient, and nothing the fixture lacks. */
    uint32_t grads = 0;
    for (uint32_t i = 0; i < enn_safetensors_count(got); i++) {
        const char *tname = enn_safetensors_at(got, i)->name;
        if (strncmp(tname, "grad.", 5) || !strncmp(tname, "grad.input.", 11)) continue;
        expect_close(got, &f, tname);
        grads++;
    }
    uint32_t want = 0;
    for (uint32_t i = 0; i < enn_safetensors_count(f.st); i++)
        want += !strncmp(enn_safetensors_at(f.st, i)->name, "param.", 6);
    cr_expect_eq(grads, want, "%u parameter gradients, the fixture has %u parameters", grads, want);
    enn_safetensors_free(got);
    torch_fixture_free(&f);
    test_tmpdir_remove(dir);
}

Test(tool_grad, classifier_shared_attention) { grad_case("cls_ln1_shared_exact_attention"); }
Test(tool_grad, classifier_per_sample_stop_last) { grad_case("cls_ln0_per_sample_stop_last"); }
Test(tool_grad, regressor_sequence) { grad_case("reg_sequence"); }
Test(tool_grad, language_model_embedding) { grad_case("lm_embedding"); }
Test(tool_grad, language_model_float) { grad_case("lm_float"); }
/* The baselines against torch.nn's own cells (float64): a dropout mask of the last
 * layer's width, and a language model. */
Test(tool_grad, baseline_lstm_classifier) { grad_case("base_lstm_cls_attention"); }
Test(tool_grad, baseline_gru_language_model) { grad_case("base_gru_lm_embedding"); }

Test(tool_grad, rejects_wrong_shapes)
{
    torch_fixture f;
    torch_fixture_load("reg_last", &f);
    char dir[TEST_PATH_MAX], ckpt[TEST_PATH_MAX], x[TEST_PATH_MAX], args[4096];
    test_tmpdir(dir);
    test_path(ckpt, dir, "model.safetensors");
    test_path(x, dir, "x.npy");
    enn_context *ctx = test_context();
    enn_model *model;
    ENN_ASSERT_OK(enn_model_create(ctx, &f.model, &model));
    ENN_ASSERT_OK(enn_model_save(model, ckpt));
    enn_model_destroy(model);
    test_context_finish(ctx);
    /* x with one feature too many. */
    float data[3 * 5 * 5] = {0};
    ENN_ASSERT_OK(enn_npy_write_f32(x, data, 3, (uint64_t[]){3, 5, 5}));
    snprintf(args, sizeof args, "grad --model '%s' --x '%s' --y '%s' --out '%s/o.safetensors' 2>/dev/null", ckpt, x, x,
             dir);
    cr_expect_neq(run_tool(args), 0, "enn grad accepted x of 5 features for a model of 4");
    /* A baseline starts from zeros and has no trace: an initial state for it is refused. */
    snprintf(args, sizeof args, "init --model gru --units 4 --input-features 4 --max-seq-len 5 --outputs 2 "
             "--out '%s/gru.safetensors' >/dev/null", dir);
    cr_assert_eq(run_tool(args), 0, "enn %s", args);
    char gx[TEST_PATH_MAX], labels[TEST_PATH_MAX], h0[TEST_PATH_MAX], err[TEST_PATH_MAX];
    float zeros[3 * 5 * 4] = {0};
    ENN_ASSERT_OK(enn_npy_write_f32(test_path(gx, dir, "gx.npy"), zeros, 3, (uint64_t[]){3, 5, 4}));
    ENN_ASSERT_OK(enn_npy_write_f32(test_path(labels, dir, "labels.npy"), zeros, 1, (uint64_t[]){3}));
    ENN_ASSERT_OK(enn_npy_write_f32(test_path(h0, dir, "h0.npy"), zeros, 2, (uint64_t[]){3, 4}));
    snprintf(args, sizeof args, "grad --model '%s/gru.safetensors' --x '%s' --labels '%s' --h0 '%s' --out '%s/o.safetensors' "
             "2>'%s'", dir, gx, labels, h0, dir, test_path(err, dir, "err.txt"));
    cr_expect_neq(run_tool(args), 0, "enn grad took --h0 for a baseline");
    unsigned char *bytes;
    size_t n = test_read_file(err, &bytes);
    char text[1024];
    snprintf(text, sizeof text, "%.*s", (int)n, (const char *)bytes);
    free(bytes);
    cr_expect(strstr(text, "a baseline (rnn, gru, lstm) starts from zeros"), "%s", text);
    torch_fixture_free(&f);
    test_tmpdir_remove(dir);
}

/* enn init: every model flag lands in the configuration, and the checkpoint holds the
 * same parameters as a model created in-process from that configuration and seed. */
Test(tool_init, every_flag_reaches_the_config)
{
    char dir[TEST_PATH_MAX], ckpt[TEST_PATH_MAX], args[4096];
    test_tmpdir(dir);
    test_path(ckpt, dir, "init.safetensors");
    snprintf(args, sizeof args,
             "init --head regressor --model enn --input-features 3 --max-seq-len 6 --max-batch 5 --hidden 8 "
             "--memory-slots 4 --hebbian-rate 0.07 --trace-scale 0.4 --temperature 1.25 --sparsity 0.2 "
             "--layer-norm off --noise on --noise-std 0.003 --trace-mode per-sample --trace-gradient stop "
             "--stateful on --outputs 2 --return-sequences on --learning-rate 0.002 --beta1 0.8 --beta2 0.99 --epsilon 1e-6 --weight-decay 0.01 "
             "--clip global --clip-norm 2.5 --seed=12345 --out '%s' >/dev/null",
             ckpt);
    cr_assert_eq(run_tool(args), 0, "enn %s failed", args);
    enn_context *ctx = test_context();
    enn_model *loaded, *fresh;
    ENN_ASSERT_OK(enn_model_load(ctx, ckpt, &loaded));
    const enn_model_config *c = enn_model_get_config(loaded);
    enn_model_config want;
    enn_model_config_init(&want, ENN_HEAD_REGRESSOR);
    want.input_features = 3;
    want.max_seq_len = 6;
    want.max_batch = 5;
    want.cell = (enn_cell_config){.hidden = 8, .memory_slots = 4, .hebbian_rate = 0.07f, .trace_scale = 0.4f,
                                  .temperature = 1.25f, .sparsity = 0.2f, .layer_norm = 0, .noise = 1,
                                  .noise_std = 0.003f, .trace_mode = ENN_TRACE_PER_SAMPLE,
                                  .trace_gradient = ENN_TRACE_GRADIENT_STOP, .stateful = 1};
    want.outputs = 2;
    want.return_sequences = 1;
    want.optimizer = (enn_optimizer_config){.learning_rate = 0.002f, .beta1 = 0.8f, .beta2 = 0.99f, .epsilon = 1e-6f,
                                            .weight_decay = 0.01f, .clip = ENN_CLIP_GLOBAL, .clip_norm = 2.5f};
    want.seed = 12345;
    cr_expect_eq(memcmp(&c->cell, &want.cell, sizeof want.cell), 0, "cell options differ");
    cr_expect_eq(memcmp(&c->optimizer, &want.optimizer, sizeof want.optimizer), 0, "optimizer options differ");
    cr_expect(c->head == want.head && c->outputs == want.outputs && c->pooling == want.pooling &&
              c->dropout == want.dropout && c->return_sequences == want.return_sequences &&
              c->lm_input == want.lm_input && c->embedding_dim == want.embedding_dim &&
              c->input_features == want.input_features && c->max_seq_len == want.max_seq_len &&
              c->max_batch == want.max_batch && c->seed == want.seed && c->kind == ENN_MODEL_ENN,
              "model options differ");
    ENN_ASSERT_OK(enn_model_create(ctx, &want, &fresh));
    for (uint32_t i = 0; i < enn_model_parameter_tensors(fresh); i++) {
        enn_tensor_desc d;
        ENN_ASSERT_OK(enn_model_parameter_desc(fresh, i, &d));
        size_t count = (size_t)d.shape[0] * (d.rank == 2 ? d.shape[1] : 1);
        float *a = malloc(count * 4), *b = malloc(count * 4);
        ENN_ASSERT_OK(enn_model_read(fresh, d.name, a, count));
        ENN_ASSERT_OK(enn_model_read(loaded, d.name, b, count));
        cr_expect_eq(memcmp(a, b, count * 4), 0, "%s differs from an in-process model of the same seed", d.name);
        free(a);
        free(b);
    }
    enn_model_destroy(loaded);
    enn_model_destroy(fresh);
    test_context_finish(ctx);

    /* The flags of other heads (a regressor refuses them: they would do nothing to it). */
    static const struct {
        const char *flags;
        enn_model_config want;
    } heads[] = {
        {"--head classifier --input-features 3 --pooling last --dropout 0.1",
         {.head = ENN_HEAD_CLASSIFIER, .pooling = ENN_POOL_LAST, .dropout = 0.1f, .embedding_dim = 128}},
        {"--head lm --embedding-dim 16", {.head = ENN_HEAD_LANGUAGE_MODEL, .embedding_dim = 16}},
        {"--head lm --lm-input float",
         {.head = ENN_HEAD_LANGUAGE_MODEL, .lm_input = ENN_LM_FLOAT_FEATURE, .embedding_dim = 128}},
    };
    for (size_t i = 0; i < sizeof heads / sizeof *heads; i++) {
        snprintf(args, sizeof args, "init %s --max-seq-len 4 --outputs 3 --out '%s' >/dev/null", heads[i].flags, ckpt);
        cr_assert_eq(run_tool(args), 0, "enn %s failed", args);
        enn_safetensors *st;
        enn_model_config got = {0};
        ENN_ASSERT_OK(enn_safetensors_read(ckpt, &st));
        ENN_ASSERT_OK(enn_model_config_from_json(enn_safetensors_meta(st, "config"), ckpt, &got));
        enn_safetensors_free(st);
        const enn_model_config *w = &heads[i].want;
        cr_expect(got.head == w->head && got.pooling == w->pooling && got.dropout == w->dropout &&
                      got.lm_input == w->lm_input && got.embedding_dim == w->embedding_dim,
                  "enn %s: head %d pooling %d dropout %g lm_input %d embedding_dim %u", args, got.head, got.pooling,
                  got.dropout, got.lm_input, got.embedding_dim);
    }

    /* A bad value is refused with the flag named. */
    snprintf(args, sizeof args, "init --input-features 3 --max-seq-len 4 --outputs 2 --trace-mode sometimes --out '%s' 2>/dev/null",
             ckpt);
    cr_expect_eq(WEXITSTATUS(run_tool(args)), 2);
    test_tmpdir_remove(dir);
}
