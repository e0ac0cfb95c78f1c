/* Checkpoints and determinism: one seed gives one run, bit for bit; save, load and
 * continue equals the uninterrupted run, bit for bit (also for a stateful model that
 * carries its state across batches); a corrupt, truncated or mismatched checkpoint is
 * rejected with a message naming the file and the problem, and the model is unchanged;
 * the configuration survives JSON exactly; a checkpoint opens in Python.
 *
 * "Bit for bit" is the right bar here, not a tolerance: the same kernels on the same
 * device with the same inputs and the same random streams must give the same floats, so
 * any difference means some piece of training state (step, pass counter, learning rate,
 * carried state, moments) was not saved or not restored. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data_files.h"
#include "harness.h"
#include "model_snapshot.h"
#include "small_config.h"
#include "io/safetensors.h"

enum { B = 4, T = 5, D = 3, H = 8, N = 5, C = 3 };

static enn_model_config small_config(uint64_t seed, int stateful)
{
    enn_model_config c = test_small_classifier(D, T, B, C, H, N);
    c.cell.noise_std = 0.05f; /* large enough that a wrong noise stream shows */
    c.cell.stateful = stateful;
    if (stateful) c.cell.trace_mode = ENN_TRACE_PER_SAMPLE;
    c.optimizer.learning_rate = 0.01f;
    c.seed = seed;
    return c;
}

/* Batch i of a fixed sequence of batches. */
typedef struct batch_data {
    float x[B * T * D];
    uint32_t labels[B];
    enn_batch batch;
} batch_data;

static void make_batch(uint32_t i, batch_data *b)
{
    test_random_batch(1000 + i, b->x, B * T * D, 1, b->labels, B, C);
    b->batch = (enn_batch){.size = B, .seq_len = T, .x = b->x, .labels = b->labels};
}

static void train(enn_model *m, uint32_t first, uint32_t steps)
{
    for (uint32_t i = first; i < first + steps; i++) {
        batch_data b;
        make_batch(i, &b);
        ENN_ASSERT_OK(enn_model_train_step(m, &b.batch, NULL));
    }
}

static float *snapshot(enn_model *m, size_t *count) { return test_model_snapshot(m, 0, count); }

static void expect_same(enn_model *a, enn_model *b, const char *what)
{
    size_t na, nb;
    float *pa = snapshot(a, &na), *pb = snapshot(b, &nb);
    cr_assert_eq(na, nb);
    size_t first = test_first_difference(pa, pb, na);
    cr_expect_eq(first, na, "%s: first difference at float %zu: %.9g vs %.9g", what, first, pa[first < na ? first : 0],
                 pb[first < na ? first : 0]);
    free(pa);
    free(pb);
}

Test(model_checkpoint, one_seed_one_run)
{
    enn_context *ctx = test_context();
    enn_model_config c1 = small_config(7, 0), c2 = small_config(8, 0);
    enn_model *a, *b, *other;
    ENN_ASSERT_OK(enn_model_create(ctx, &c1, &a));
    ENN_ASSERT_OK(enn_model_create(ctx, &c1, &b));
    ENN_ASSERT_OK(enn_model_create(ctx, &c2, &other));
    train(a, 0, 3);
    train(b, 0, 3);
    expect_same(a, b, "two runs with one seed");
    /* Another seed starts elsewhere and stays elsewhere. */
    train(other, 0, 3);
    size_t n;
    float *pa = snapshot(a, &n), *po = snapshot(other, &n);
    cr_expect_neq(memcmp(pa, po, n * 4), 0, "seeds 7 and 8 trained to identical parameters");
    free(pa);
    free(po);
    enn_model_destroy(a);
    enn_model_destroy(b);
    enn_model_destroy(other);
    test_context_finish(ctx);
}

/* The pass count places the noise and dropout streams: a model whose count is set to
 * another's, after two evaluations there, trains as that one does; left at 0 it draws
 * other noise and ends elsewhere. */
Test(model_checkpoint, pass_count_places_the_noise_streams)
{
    enn_context *ctx = test_context();
    enn_model_config c = small_config(7, 0);
    enn_model *evaluated, *placed, *unplaced;
    ENN_ASSERT_OK(enn_model_create(ctx, &c, &evaluated));
    ENN_ASSERT_OK(enn_model_create(ctx, &c, &placed));
    ENN_ASSERT_OK(enn_model_create(ctx, &c, &unplaced));
    batch_data b;
    make_batch(99, &b);
    ENN_ASSERT_OK(enn_model_evaluate(evaluated, &b.batch, NULL, NULL));
    ENN_ASSERT_OK(enn_model_evaluate(evaluated, &b.batch, NULL, NULL));
    cr_expect_eq(enn_model_pass_count(evaluated), 2);
    ENN_ASSERT_OK(enn_model_set_pass_count(placed, 2));
    cr_expect_eq(enn_model_pass_count(placed), 2);
    train(evaluated, 0, 2);
    train(placed, 0, 2);
    train(unplaced, 0, 2);
    cr_expect_eq(enn_model_pass_count(placed), 4);
    expect_same(evaluated, placed, "pass count set to the evaluated model's");
    size_t n;
    float *pe = snapshot(evaluated, &n), *pu = snapshot(unplaced, &n);
    cr_expect_neq(memcmp(pe, pu, n * 4), 0, "the pass count changed nothing: the test cannot tell");
    free(pe);
    free(pu);
    cr_expect_eq(enn_model_set_pass_count(NULL, 1), ENN_ERROR_INVALID_ARGUMENT);
    enn_model_destroy(evaluated);
    enn_model_destroy(placed);
    enn_model_destroy(unplaced);
    test_context_finish(ctx);
}

/* Train `before` steps, save, train `after` more; load the checkpoint two ways (a new
 * model from the file, and into a fresh model of the same configuration) and continue
 * with the same batches: all three end identical. */
static void resume_case(int stateful)
{
    char dir[TEST_PATH_MAX], path[TEST_PATH_MAX];
    test_tmpdir(dir);
    test_path(path, dir, "ckpt.safetensors");
    enn_context *ctx = test_context();
    enn_model_config c = small_config(11, stateful);
    enn_model *run, *loaded, *into;
    ENN_ASSERT_OK(enn_model_create(ctx, &c, &run));
    ENN_ASSERT_OK(enn_model_set_learning_rate(run, 0.02f)); /* training state the config does not hold */
    train(run, 0, 2);
    ENN_ASSERT_OK(enn_model_save(run, path));
    train(run, 2, 2);

    ENN_ASSERT_OK(enn_model_load(ctx, path, &loaded));
    cr_expect_eq(enn_model_step_count(loaded), 2);
    cr_expect_eq(enn_model_learning_rate(loaded), 0.02f);
    train(loaded, 2, 2);
    expect_same(run, loaded, "uninterrupted vs enn_model_load and continue");

    ENN_ASSERT_OK(enn_model_create(ctx, &c, &into));
    train(into, 5, 1); /* whatever the fresh model did before is overwritten */
    ENN_ASSERT_OK(enn_model_load_into(into, path));
    train(into, 2, 2);
    expect_same(run, into, "uninterrupted vs enn_model_load_into and continue");

    /* Evaluation after the resume (stateful: from the carried state) agrees too. */
    batch_data b;
    make_batch(9, &b);
    float out_run[B * C], out_into[B * C];
    enn_step_result r1, r2;
    ENN_ASSERT_OK(enn_model_evaluate(run, &b.batch, &r1, out_run));
    ENN_ASSERT_OK(enn_model_evaluate(into, &b.batch, &r2, out_into));
    cr_expect_eq(memcmp(out_run, out_into, sizeof out_run), 0, "evaluation outputs differ after the resume");

    enn_model_destroy(run);
    enn_model_destroy(loaded);
    enn_model_destroy(into);
    test_context_finish(ctx);
    test_tmpdir_remove(dir);
}

Test(model_checkpoint, resume_is_bit_exact) { resume_case(0); }
Test(model_checkpoint, resume_is_bit_exact_stateful) { resume_case(1); }

/* A caller's metadata saved with the model (enn train keeps its loop state there) reads
 * back as given, leaves the load alone, and may not take libenn's own keys. */
Test(model_checkpoint, caller_metadata)
{
    char dir[TEST_PATH_MAX], path[TEST_PATH_MAX], other[TEST_PATH_MAX];
    test_tmpdir(dir);
    test_path(path, dir, "ckpt.safetensors");
    enn_context *ctx = test_context();
    enn_model_config c = small_config(3, 0);
    enn_model *m, *loaded;
    ENN_ASSERT_OK(enn_model_create(ctx, &c, &m));
    train(m, 0, 1);
    const enn_metadata extra[2] = {{"my.loop", "{\"epoch\": 3}"}, {"note", "caf\xc3\xa9 \"quoted\"\n"}};
    ENN_ASSERT_OK(enn_model_save_with_metadata(m, path, extra, 2));
    char *value;
    for (int i = 0; i < 2; i++) {
        ENN_ASSERT_OK(enn_checkpoint_metadata(path, extra[i].key, &value));
        cr_expect(value && !strcmp(value, extra[i].value), "%s: %s", extra[i].key, value ? value : "(none)");
        free(value);
    }
    ENN_ASSERT_OK(enn_checkpoint_metadata(path, "absent", &value));
    cr_expect_null(value);
    ENN_ASSERT_OK(enn_model_load(ctx, path, &loaded));
    expect_same(m, loaded, "a checkpoint with the caller's metadata");
    enn_model_destroy(loaded);
    /* libenn's keys, a key twice, an entry without a value: refused, nothing written. */
    test_path(other, dir, "other.safetensors");
    const enn_metadata own[1] = {{"step", "0"}}, twice[2] = {{"a", "1"}, {"a", "2"}}, empty[1] = {{"a", NULL}};
    test_expect_error(enn_model_save_with_metadata(m, other, own, 1), ENN_ERROR_INVALID_ARGUMENT, "other.safetensors",
                      "metadata key \"step\" is libenn's own");
    test_expect_error(enn_model_save_with_metadata(m, other, twice, 2), ENN_ERROR_INVALID_ARGUMENT, NULL,
                      "metadata key \"a\" given twice");
    test_expect_error(enn_model_save_with_metadata(m, other, empty, 1), ENN_ERROR_INVALID_ARGUMENT, NULL,
                      "has no key or no value");
    cr_expect_neq(access(other, F_OK), 0, "a refused save wrote %s", other);
    enn_model_destroy(m);
    test_context_finish(ctx);
    test_tmpdir_remove(dir);
}

/* Rewrites a checkpoint with one change: `drop` omitted ("" adds a tensor "extra"),
 * `retype` given another dtype
 * (same bytes reinterpreted, so the file is a valid safetensors file), metadata `key`
 * set to `value`. */
static void rewrite(const char *from, const char *to, const char *drop, const char *retype, const char *key,
                    const char *value)
{
    enn_safetensors *st;
    ENN_ASSERT_OK(enn_safetensors_read(from, &st));
    uint32_t n = enn_safetensors_count(st), out = 0;
    enn_st_tensor *t = calloc(n + 1, sizeof *t);
    static const float one = 1.0f;
    if (drop && !drop[0]) t[out++] = (enn_st_tensor){.name = "extra", .dtype = ENN_ST_F32, .rank = 1, .shape = {1}, .data = &one};
    for (uint32_t i = 0; i < n; i++) {
        const enn_st_tensor *s = enn_safetensors_at(st, i);
        if (drop && !strcmp(s->name, drop)) continue;
        t[out] = *s;
        if (retype && !strcmp(s->name, retype)) {
            t[out].dtype = ENN_ST_I32;
        }
        out++;
    }
    /* No data_crc32: the checksum is optional, and these files test the other checks. */
    static const char *const keys[] = {"format", "format_version", "config", "step", "passes", "state_T", "state_B"};
    enn_st_meta meta[7];
    for (int i = 0; i < 7; i++) {
        meta[i].key = keys[i];
        meta[i].value = key && !strcmp(key, keys[i]) ? value : enn_safetensors_meta(st, keys[i]);
    }
    ENN_ASSERT_OK(enn_safetensors_write(to, t, out, meta, 7));
    free(t);
    enn_safetensors_free(st);
}

/* load_into must fail with `want`, a message with the file name and `problem`, and leave
 * every parameter, moment, the step count and the learning rate as they were. */
static void expect_rejected_into(enn_model *m, const char *path, enn_status want, const char *problem)
{
    size_t n;
    float *before = snapshot(m, &n);
    uint64_t step = enn_model_step_count(m);
    float lr = enn_model_learning_rate(m);
    test_expect_error(enn_model_load_into(m, path), want, path, problem);
    float *after = snapshot(m, &n);
    cr_expect_eq(memcmp(before, after, n * 4), 0, "%s: the model changed although the load failed", problem);
    cr_expect_eq(enn_model_step_count(m), step);
    cr_expect_eq(enn_model_learning_rate(m), lr);
    free(before);
    free(after);
}

/* ... and enn_model_load must fail on it too. */
static void expect_rejected(enn_context *ctx, enn_model *m, const char *path, enn_status want, const char *problem)
{
    expect_rejected_into(m, path, want, problem);
    enn_model *other = (enn_model *)1;
    cr_expect_neq(enn_model_load(ctx, path, &other), ENN_OK, "%s: enn_model_load accepted it", problem);
    cr_expect_null(other);
}

Test(model_checkpoint, rejects_bad_files_and_leaves_the_model_alone)
{
    char dir[TEST_PATH_MAX], good[TEST_PATH_MAX], bad[TEST_PATH_MAX];
    test_tmpdir(dir);
    test_path(good, dir, "good.safetensors");
    test_path(bad, dir, "bad.safetensors");
    enn_context *ctx = test_context();
    enn_model_config c = small_config(3, 0), wide = small_config(3, 0);
    wide.cell.hidden = H + 2;
    enn_model *m, *source, *other;
    ENN_ASSERT_OK(enn_model_create(ctx, &c, &source));
    train(source, 0, 1);
    ENN_ASSERT_OK(enn_model_save(source, good));
    ENN_ASSERT_OK(enn_model_create(ctx, &c, &m));
    ENN_ASSERT_OK(enn_model_set_learning_rate(m, 0.005f));
    train(m, 3, 1);

    unsigned char *bytes;
    size_t size = test_read_file(good, &bytes);

    test_expect_error(enn_model_load_into(m, "/nonexistent/ckpt.safetensors"), ENN_ERROR_IO,
                      "/nonexistent/ckpt.safetensors", "cannot open");

    test_write_file(bad, bytes, size - 100);
    expect_rejected(ctx, m, bad, ENN_ERROR_FORMAT, "truncated");

    unsigned char *flipped = malloc(size);
    memcpy(flipped, bytes, size);
    flipped[8] ^= 0x5a; /* the header's opening brace */
    test_write_file(bad, flipped, size);
    expect_rejected(ctx, m, bad, ENN_ERROR_FORMAT, "not valid JSON");
    memcpy(flipped, bytes, size);
    flipped[3] = 0x7f; /* the header length */
    test_write_file(bad, flipped, size);
    expect_rejected(ctx, m, bad, ENN_ERROR_FORMAT, "header length");
    memcpy(flipped, bytes, size);
    flipped[size - 5] ^= 0x01; /* one bit of the data section */
    test_write_file(bad, flipped, size);
    expect_rejected(ctx, m, bad, ENN_ERROR_FORMAT, "CRC-32");
    free(flipped);

    /* A checkpoint of another configuration: W_z [3, 10] instead of [3, 8]. */
    ENN_ASSERT_OK(enn_model_create(ctx, &wide, &other));
    ENN_ASSERT_OK(enn_model_save(other, bad));
    enn_model_destroy(other);
    expect_rejected_into(m, bad, ENN_ERROR_SHAPE, "tensor \"W_z\" has shape [3, 10]; the model's is [3, 8]");

    rewrite(good, bad, NULL, "M", NULL, NULL);
    expect_rejected(ctx, m, bad, ENN_ERROR_FORMAT, "tensor \"M\" is I32");
    rewrite(good, bad, "adam.v.out.b", NULL, NULL, NULL);
    expect_rejected(ctx, m, bad, ENN_ERROR_FORMAT, "lacks tensor \"adam.v.out.b\"");
    rewrite(good, bad, NULL, NULL, NULL, NULL);
    ENN_ASSERT_OK(enn_model_load_into(m, bad)); /* the rewrite alone breaks nothing */
    rewrite(good, bad, "", NULL, NULL, NULL);
    expect_rejected(ctx, m, bad, ENN_ERROR_FORMAT, "tensor \"extra\" is not part of this model");
    rewrite(good, bad, NULL, NULL, "config", "{\"version\": 1, \"kind\": ");
    expect_rejected(ctx, m, bad, ENN_ERROR_FORMAT, "not valid JSON");
    rewrite(good, bad, NULL, NULL, "config", "{\"version\": 1}");
    expect_rejected(ctx, m, bad, ENN_ERROR_FORMAT, "lacks the key \"kind\"");
    rewrite(good, bad, NULL, NULL, "step", "12x");
    expect_rejected(ctx, m, bad, ENN_ERROR_FORMAT, "\"step\" = \"12x\"");
    rewrite(good, bad, NULL, NULL, "format", "something.else");
    expect_rejected(ctx, m, bad, ENN_ERROR_FORMAT, "not an enn checkpoint");
    rewrite(good, bad, NULL, NULL, "format_version", "99");
    expect_rejected(ctx, m, bad, ENN_ERROR_FORMAT, "format version 99");
    /* A configuration the check refuses: its reason, whole (it was garbled when the
     * message was built from the buffer it was written into). */
    enn_model_config cold = c;
    cold.cell.temperature = 0;
    char *cold_json;
    ENN_ASSERT_OK(enn_model_config_to_json(&cold, &cold_json));
    rewrite(good, bad, NULL, NULL, "config", cold_json);
    free(cold_json);
    expect_rejected(ctx, m, bad, ENN_ERROR_FORMAT, "the checkpoint's config is invalid: temperature 0 must be positive");
    /* Bytes appended to a good file belong to no tensor; a directory is not a file. */
    unsigned char *longer = malloc(size + 16);
    memcpy(longer, bytes, size);
    memset(longer + size, 0, 16);
    test_write_file(bad, longer, size + 16);
    free(longer);
    expect_rejected(ctx, m, bad, ENN_ERROR_FORMAT, "16 bytes after the last tensor");
    test_expect_error(enn_model_load_into(m, dir), ENN_ERROR_IO, dir, "is a directory");

    /* The good file still loads, and makes m equal to the model that wrote it. */
    ENN_ASSERT_OK(enn_model_load_into(m, good));
    expect_same(source, m, "after loading the good checkpoint");

    free(bytes);
    enn_model_destroy(m);
    enn_model_destroy(source);
    test_context_finish(ctx);
    test_tmpdir_remove(dir);
}

Test(model_checkpoint, config_json_round_trip_and_strictness)
{
    enn_model_config c, back;
    enn_model_config_init(&c, ENN_HEAD_LANGUAGE_MODEL);
    c.input_features = 1;
    c.max_seq_len = 17;
    c.max_batch = 9;
    c.outputs = 50;
    c.lm_input = ENN_LM_FLOAT_FEATURE;
    c.cell.hebbian_rate = 0.123456789f; /* not a short decimal: must survive exactly */
    c.cell.trace_mode = ENN_TRACE_PER_SAMPLE;
    c.cell.trace_gradient = ENN_TRACE_GRADIENT_STOP;
    c.cell.layer_norm = 0;
    c.cell.stateful = 1;
    c.optimizer.clip = ENN_CLIP_GLOBAL;
    c.optimizer.epsilon = 3e-9f;
    c.seed = 0xfedcba9876543210ull; /* past 2^63 */
    char *json;
    ENN_ASSERT_OK(enn_model_config_to_json(&c, &json));
    memset(&back, 0xff, sizeof back);
    ENN_ASSERT_OK(enn_model_config_from_json(json, "test", &back));
    cr_expect_eq(memcmp(&c.cell, &back.cell, sizeof c.cell), 0);
    cr_expect_eq(memcmp(&c.optimizer, &back.optimizer, sizeof c.optimizer), 0);
    cr_expect_eq(back.seed, c.seed);
    cr_expect_eq(back.lm_input, ENN_LM_FLOAT_FEATURE);
    cr_expect_eq(back.head, ENN_HEAD_LANGUAGE_MODEL);
    cr_expect_eq(back.max_seq_len, 17);
    cr_expect_eq(back.outputs, 50);
    cr_expect_eq(back.layer_units[0], c.layer_units[0]);
    cr_expect(strstr(json, "\"trace_mode\": \"per_sample\"") != NULL, "%s", json);
    /* A key newer than the format (cell.recompute_interval) is left out at its default, so
     * that a libenn from before it still reads the model; set, it is written and read back. */
    cr_expect(strstr(json, "recompute_interval") == NULL, "a key older libenn refuses, at its default: %s", json);
    enn_model_config recompute = c;
    recompute.cell.recompute_interval = 4;
    char *recompute_json;
    ENN_ASSERT_OK(enn_model_config_to_json(&recompute, &recompute_json));
    cr_expect(strstr(recompute_json, "\"recompute_interval\": 4") != NULL, "%s", recompute_json);
    ENN_ASSERT_OK(enn_model_config_from_json(recompute_json, "test", &back));
    cr_expect_eq(back.cell.recompute_interval, 4);
    free(recompute_json);
    ENN_ASSERT_OK(enn_model_config_from_json(json, "test", &back));

    /* An unknown key, a misspelt word, a wrong type. */
    char *edit = malloc(strlen(json) + 64);
    snprintf(edit, strlen(json) + 64, "{\"bogus\": 1, %s", json + 1);
    test_expect_error(enn_model_config_from_json(edit, "cfg.json", &back), ENN_ERROR_FORMAT, "cfg.json",
                      "unknown key \"bogus\"");
    strcpy(edit, json);
    char *w = strstr(edit, "\"per_sample\"");
    memcpy(w, "\"per_sampel\"", 12);
    test_expect_error(enn_model_config_from_json(edit, "cfg.json", &back), ENN_ERROR_FORMAT, "cfg.json",
                      "\"cell.trace_mode\" must be one of \"shared\", \"per_sample\"");
    strcpy(edit, json);
    w = strstr(edit, "\"layer_norm\": false");
    memcpy(w, "\"layer_norm\": 0    ", 19);
    test_expect_error(enn_model_config_from_json(edit, "cfg.json", &back), ENN_ERROR_FORMAT, "cfg.json",
                      "\"cell.layer_norm\" must be true or false");
    free(edit);
    free(json);
}

Test(model_checkpoint, opens_in_python)
{
    if (access("/usr/bin/python3", X_OK) != 0 || system("/usr/bin/python3 -c 'import numpy' 2>/dev/null") != 0)
        cr_skip_test("python3 with numpy is not installed");
    char dir[TEST_PATH_MAX], path[TEST_PATH_MAX];
    test_tmpdir(dir);
    test_path(path, dir, "ckpt.safetensors");
    enn_context *ctx = test_context();
    enn_model_config c = small_config(5, 0);
    enn_model *m;
    ENN_ASSERT_OK(enn_model_create(ctx, &c, &m));
    ENN_ASSERT_OK(enn_model_save(m, path));
    char cmd[1024], out[8192] = "";
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/tests/python/read_safetensors.py %s 2>&1", ENN_SOURCE_DIR, path);
    FILE *p = popen(cmd, "r");
    size_t got = fread(out, 1, sizeof out - 1, p);
    out[got] = '\0';
    cr_assert_eq(pclose(p), 0, "python failed: %s", out);
    cr_expect(strstr(out, "tensor W_z F32 [3, 8]") != NULL, "%s", out);
    cr_expect(strstr(out, "tensor adam.v.M F32 [5, 8]") != NULL, "%s", out);
    cr_expect(strstr(out, "meta format=enn.checkpoint") != NULL, "%s", out);
    enn_model_destroy(m);
    test_context_finish(ctx);
    test_tmpdir_remove(dir);
}

/* Explicit h0 and H0 (enn grad) win over a stateful model's carried state: a model that
 * carries state and a copy of its parameters that carries none give the same pass. */
Test(model_checkpoint, given_initial_state_overrides_carried_state)
{
    enn_context *ctx = test_context();
    enn_model_config c = small_config(13, 1);
    c.dropout = 0.0f;
    enn_model *carrying, *plain;
    ENN_ASSERT_OK(enn_model_create(ctx, &c, &carrying));
    ENN_ASSERT_OK(enn_model_create(ctx, &c, &plain));
    train(carrying, 0, 2);
    for (uint32_t i = 0; i < enn_model_parameter_tensors(carrying); i++) {
        enn_tensor_desc d;
        ENN_ASSERT_OK(enn_model_parameter_desc(carrying, i, &d));
        size_t n = (size_t)d.shape[0] * (d.rank == 2 ? d.shape[1] : 1);
        float *v = malloc(n * 4);
        ENN_ASSERT_OK(enn_model_read(carrying, d.name, v, n));
        ENN_ASSERT_OK(enn_model_write(plain, d.name, v, n));
        free(v);
    }
    float h0[B * H], H0[B * N * H], noise[T * B * N * H];
    uint64_t state = 99;
    for (size_t i = 0; i < B * H; i++) h0[i] = (float)test_rand_uniform(&state, -0.1, 0.1);
    for (size_t i = 0; i < B * N * H; i++) H0[i] = (float)test_rand_uniform(&state, -0.1, 0.1);
    for (size_t i = 0; i < T * B * N * H; i++) noise[i] = (float)test_rand_uniform(&state, -0.01, 0.01);
    enn_forward_inputs in = {.h0 = h0, .H0 = H0, .noise = noise, .no_dropout = 1};
    batch_data b;
    make_batch(4, &b);
    enn_step_result r1, r2;
    ENN_ASSERT_OK(enn_model_compute_gradients(carrying, &b.batch, &in, &r1));
    ENN_ASSERT_OK(enn_model_compute_gradients(plain, &b.batch, &in, &r2));
    float hs1[T * B * H], hs2[T * B * H];
    ENN_ASSERT_OK(enn_model_read(carrying, "out.hs", hs1, T * B * H));
    ENN_ASSERT_OK(enn_model_read(plain, "out.hs", hs2, T * B * H));
    cr_expect_eq(memcmp(hs1, hs2, sizeof hs1), 0, "the carried state was used instead of the given h0, H0");
    cr_expect_eq(memcmp(&r1.loss, &r2.loss, 4), 0, "losses %.9g and %.9g", r1.loss, r2.loss);
    enn_model_destroy(carrying);
    enn_model_destroy(plain);
    test_context_finish(ctx);
}
