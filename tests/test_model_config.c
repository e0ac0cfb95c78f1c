/* Model configurations: parameter counts against the paper's table (ENN-SPEC.md),
 * impossible options refused with a message naming the field, and struct_size (enn.h,
 * "structs that grow") in every function that reads or writes a configuration. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "models/config.h"

static enn_model_config mnist(enn_model_kind kind)
{
    enn_model_config c;
    enn_model_config_init(&c, ENN_HEAD_CLASSIFIER);
    c.kind = kind;
    c.input_features = 28;
    c.max_seq_len = 28;
    c.outputs = 10;
    if (kind != ENN_MODEL_ENN) {
        c.layers = 2;
        c.layer_units[0] = 128;
        c.layer_units[1] = 64;
        c.pooling = ENN_POOL_LAST; /* the paper's baselines end in their last state */
    }
    return c;
}

static enn_model_config wikitext(enn_model_kind kind)
{
    enn_model_config c;
    enn_model_config_init(&c, ENN_HEAD_LANGUAGE_MODEL);
    c.kind = kind;
    c.lm_input = ENN_LM_FLOAT_FEATURE; /* the paper fed the token id as one float */
    c.input_features = 1;
    c.max_seq_len = 32;
    c.outputs = 188590;
    if (kind != ENN_MODEL_ENN) {
        c.layers = 2;
        c.layer_units[0] = 128;
        c.layer_units[1] = 128;
    }
    return c;
}

static uint64_t reference_count(enn_model_config c)
{
    uint64_t trainable = 0, reference = 0;
    ENN_ASSERT_OK(enn_model_parameter_count(&c, &trainable, &reference));
    return reference;
}

Test(model_config, paper_mnist_counts)
{
    enn_model_config enn = mnist(ENN_MODEL_ENN);
    enn.pooling = ENN_POOL_LAST; /* the paper's numbers come from last-state pooling */
    cr_assert_eq(reference_count(enn), 219018);
    uint64_t trainable;
    ENN_ASSERT_OK(enn_model_parameter_count(&enn, &trainable, NULL));
    cr_assert_eq(trainable, 219018 - 64 * 128, "trainable excludes the package's unused initial trace");
    /* Attention pooling adds Dense(h -> 1): h weights and a bias. */
    enn.pooling = ENN_POOL_ATTENTION;
    cr_assert_eq(reference_count(enn), 219018 + 128 + 1);
    cr_assert_eq(reference_count(mnist(ENN_MODEL_RNN)), 33098);
    cr_assert_eq(reference_count(mnist(ENN_MODEL_GRU)), 98570);
    cr_assert_eq(reference_count(mnist(ENN_MODEL_LSTM)), 130442);
}

Test(model_config, paper_wikitext_counts)
{
    cr_assert_eq(reference_count(wikitext(ENN_MODEL_ENN)), 24542382);
    cr_assert_eq(reference_count(wikitext(ENN_MODEL_RNN)), 24377646);
    cr_assert_eq(reference_count(wikitext(ENN_MODEL_GRU)), 24477486);
    cr_assert_eq(reference_count(wikitext(ENN_MODEL_LSTM)), 24526254);
}

Test(model_config, layout_is_aligned_and_disjoint)
{
    enn_model_config c = mnist(ENN_MODEL_ENN);
    enn_layout l;
    ENN_ASSERT_OK(enn_model_layout(&c, &l));
    for (uint32_t i = 0; i < l.count; i++) {
        cr_assert_eq(l.tensors[i].offset % 256, 0, "%s", l.tensors[i].name);
        uint64_t end = l.tensors[i].offset + l.tensors[i].count * 4;
        cr_assert_leq(end, i + 1 < l.count ? l.tensors[i + 1].offset : l.bytes, "%s", l.tensors[i].name);
    }
    const enn_tensor_info *w = enn_layout_find(&l, "W_u");
    cr_assert_not_null(w);
    cr_assert_eq(w->shape[0], 384);
    cr_assert_eq(w->shape[1], 384);
}

static void expect_invalid(enn_model_config c, const char *needle)
{
    enn_status s = enn_model_config_check(&c);
    cr_assert_eq(s, ENN_ERROR_INVALID_ARGUMENT, "expected a refusal mentioning \"%s\"", needle);
    cr_assert_not_null(strstr(enn_last_error(), needle), "message \"%s\" lacks \"%s\"", enn_last_error(), needle);
}

Test(model_config, impossible_options_are_refused)
{
    enn_model_config c = mnist(ENN_MODEL_ENN);
    ENN_ASSERT_OK(enn_model_config_check(&c));
    enn_model_config bad = c;
    bad.dropout = 1.0f;
    expect_invalid(bad, "dropout");
    bad = c;
    bad.outputs = 1;
    expect_invalid(bad, "2 classes");
    bad = c;
    bad.cell.temperature = 0;
    expect_invalid(bad, "temperature");
    bad = c;
    bad.max_seq_len = 0;
    expect_invalid(bad, "max_seq_len");
    bad = c;
    bad.optimizer.beta2 = 1.0f;
    expect_invalid(bad, "betas");
    bad = wikitext(ENN_MODEL_ENN);
    bad.input_features = 3;
    expect_invalid(bad, "input_features = 1");
    bad = mnist(ENN_MODEL_LSTM);
    bad.layers = 9;
    expect_invalid(bad, "layers");
    /* Values a checkpoint's JSON could not hold, enumerations out of range, and sizes
     * whose multiples (3h, 4 units) would wrap 32 bits. */
    bad = c;
    bad.cell.trace_scale = NAN;
    expect_invalid(bad, "trace_scale");
    bad = c;
    bad.optimizer.learning_rate = INFINITY;
    expect_invalid(bad, "learning_rate");
    bad = c;
    bad.optimizer.clip_norm = INFINITY;
    expect_invalid(bad, "clip_norm");
    bad = c;
    bad.cell.temperature = INFINITY;
    expect_invalid(bad, "temperature");
    bad = c;
    bad.pooling = (enn_pooling)7;
    expect_invalid(bad, "pooling");
    bad = c;
    bad.lm_input = (enn_lm_input)5;
    expect_invalid(bad, "lm_input");
    bad = c;
    bad.return_sequences = 5;
    expect_invalid(bad, "return_sequences");
    bad = c;
    bad.return_sequences = 1;
    expect_invalid(bad, "return_sequences is for a regressor");
    bad = c;
    bad.layers = 9;
    expect_invalid(bad, "layers");
    bad = c;
    bad.cell.hidden = 0x55555556u;
    expect_invalid(bad, "hidden 1431655766 is above the limit");
    bad = mnist(ENN_MODEL_LSTM);
    bad.layer_units[1] = 0x40000001u;
    expect_invalid(bad, "layer 1 has 1073741825 units");
    bad = c;
    bad.max_batch = 0xffffffffu;
    expect_invalid(bad, "max_batch");
    /* The checks let through nothing the JSON writer refuses; the writer names a
     * non-finite number instead of reporting a failed allocation. */
    char *json = NULL;
    bad = c;
    bad.optimizer.epsilon = NAN;
    cr_expect_eq(enn_model_config_to_json(&bad, &json), ENN_ERROR_INVALID_ARGUMENT);
    cr_expect(strstr(enn_last_error(), "epsilon"), "%s", enn_last_error());
    cr_assert_eq(enn_model_config_check(NULL), ENN_ERROR_INVALID_ARGUMENT);
}

/* ---- struct_size (enn.h, "structs that grow") */

/* The configuration as a newer enn.h would lay it out: the struct, then fields this
 * libenn does not know. Also the caller's buffer for enn_model_config_from_json, whose
 * bytes after the struct are guards. */
typedef struct newer_config {
    enn_model_config c;
    unsigned char newer[24];
} newer_config;

static newer_config newer_mnist(uint32_t struct_size)
{
    newer_config n;
    memset(&n, 0, sizeof n);
    n.c = mnist(ENN_MODEL_ENN);
    n.c.pooling = ENN_POOL_LAST;
    n.c.struct_size = struct_size;
    return n;
}

/* struct_size 0, exactly this struct, or a newer struct with its new fields zero: every
 * function that reads a configuration reads all of it (the paper's count, the same JSON,
 * and the model made from it). */
Test(model_config, struct_size_zero_and_larger)
{
    enn_model_config init;
    memset(&init, 0xA5, sizeof init);
    enn_model_config_init(&init, ENN_HEAD_CLASSIFIER);
    cr_expect_eq(init.struct_size, sizeof init);
    newer_config plain = newer_mnist(sizeof(enn_model_config));
    char *want_json = NULL;
    ENN_ASSERT_OK(enn_model_config_to_json(&plain.c, &want_json));
    cr_expect(strstr(want_json, "struct_size") == NULL, "struct_size is not part of the JSON: %s", want_json);
    enn_context *ctx = test_context();
    const uint32_t sizes[] = {0, (uint32_t)sizeof(enn_model_config), (uint32_t)sizeof(newer_config)};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        newer_config n = newer_mnist(sizes[i]);
        uint64_t reference = 0;
        ENN_ASSERT_OK(enn_model_parameter_count(&n.c, NULL, &reference));
        cr_expect_eq(reference, 219018, "struct_size %u", sizes[i]);
        ENN_ASSERT_OK(enn_model_config_check(&n.c));
        char *json = NULL;
        ENN_ASSERT_OK(enn_model_config_to_json(&n.c, &json));
        cr_expect_str_eq(json, want_json, "struct_size %u", sizes[i]);
        free(json);
        n.c.max_batch = 2;
        n.c.cell.hidden = 8;
        n.c.cell.memory_slots = 4;
        enn_model *m = NULL;
        ENN_ASSERT_OK(enn_model_create(ctx, &n.c, &m));
        const enn_model_config *got = enn_model_get_config(m);
        cr_expect_eq(got->struct_size, sizeof *got, "struct_size %u: get_config's is %u", sizes[i], got->struct_size);
        cr_expect(got->cell.hidden == 8 && got->max_batch == 2 && got->pooling == ENN_POOL_LAST,
                  "struct_size %u: the model is not the config's", sizes[i]);
        enn_model_destroy(m);
    }
    free(want_json);
    test_context_finish(ctx);
}

/* A call refused with `want` and a message holding each of `parts` (NULL-ended). */
static void expect_refused(enn_status got, enn_status want, const char *call, const char *const *parts)
{
    cr_expect_eq(got, want, "%s: %s", call, enn_status_name(got));
    for (; *parts; parts++) cr_expect(strstr(enn_last_error(), *parts), "%s: want \"%s\" in: %s", call, *parts,
                                      enn_last_error());
}

/* Every function that reads a configuration refuses a newer struct with a new field set
 * (naming its bytes and this libenn's version), and one smaller than the 0.2 struct. */
Test(model_config, struct_size_refused)
{
    enn_context *ctx = test_context();
    newer_config n = newer_mnist(sizeof(newer_config));
    n.newer[17] = 3;   /* a field this libenn does not know, set */
    char bytes[64];
    snprintf(bytes, sizeof bytes, "(bytes %zu..%zu;", sizeof n.c + 17, sizeof n.c + 17);
    const char *const unknown[] = {"enn_model_config", bytes, enn_version(), NULL};
    char below[96];
    snprintf(below, sizeof below, "enn_model_config.struct_size is 16, below the %zu bytes",
             (size_t)ENN_MODEL_CONFIG_SIZE_0_2);
    const char *const small[] = {below, NULL};
    for (int pass = 0; pass < 2; pass++) {
        enn_status want = pass == 0 ? ENN_ERROR_UNSUPPORTED : ENN_ERROR_INVALID_ARGUMENT;
        const char *const *parts = pass == 0 ? unknown : small;
        char *json = NULL;
        uint64_t count = 0;
        enn_model *m = NULL;
        expect_refused(enn_model_config_check(&n.c), want, "check", parts);
        expect_refused(enn_model_config_to_json(&n.c, &json), want, "to_json", parts);
        expect_refused(enn_model_parameter_count(&n.c, &count, NULL), want, "parameter_count", parts);
        expect_refused(enn_model_create(ctx, &n.c, &m), want, "create", parts);
        cr_expect(json == NULL && m == NULL);
        n = newer_mnist(16);
    }
    test_context_finish(ctx);
}

/* from_json writes the 0.2 struct for struct_size 0 or the 0.2 size, all it has for a
 * larger one, never past the caller's struct, and refuses a struct too small. */
Test(model_config, from_json_struct_size)
{
    newer_config plain = newer_mnist(0);
    char *json = NULL;
    ENN_ASSERT_OK(enn_model_config_to_json(&plain.c, &json));
    const uint32_t sizes[] = {0, (uint32_t)ENN_MODEL_CONFIG_SIZE_0_2, (uint32_t)sizeof(newer_config)};
    const uint32_t written[] = {(uint32_t)ENN_MODEL_CONFIG_SIZE_0_2, (uint32_t)ENN_MODEL_CONFIG_SIZE_0_2,
                                (uint32_t)sizeof(enn_model_config)};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        newer_config back;
        memset(&back, 0xA5, sizeof back);
        back.c.struct_size = sizes[i];
        ENN_ASSERT_OK(enn_model_config_from_json(json, "test", &back.c));
        cr_expect_eq(back.c.struct_size, written[i], "struct_size %u came back as %u", sizes[i], back.c.struct_size);
        cr_expect(back.c.seed == plain.c.seed && back.c.cell.hidden == 128 && back.c.pooling == ENN_POOL_LAST,
                  "struct_size %u: not the config", sizes[i]);
        cr_expect(test_all_bytes(back.newer, sizeof back.newer, 0xA5), "struct_size %u: written past the struct",
                  sizes[i]);
    }
    newer_config back;
    memset(&back, 0xA5, sizeof back);
    back.c.struct_size = 16;
    cr_expect_eq(enn_model_config_from_json(json, "test", &back.c), ENN_ERROR_INVALID_ARGUMENT);
    cr_expect(strstr(enn_last_error(), "enn_model_config.struct_size is 16"), "%s", enn_last_error());
    cr_expect(test_all_bytes((const unsigned char *)&back + sizeof back.c.struct_size,
                        sizeof back - sizeof back.c.struct_size, 0xA5),
              "a refused call wrote into the struct");
    free(json);
}
