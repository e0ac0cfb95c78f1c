/* Model configurations: parameter counts against the paper's table (ENN-SPEC.md), and
 * impossible options refused with a message naming the field. */
#include <math.h>
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
