/* Model flags of the `enn` commands: one table row per field of enn_model_config. The
 * words of enumerations are those of the checkpoint's config JSON (models/config_json.h),
 * with '-' for '_' accepted. */
#include "model_options.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "models/config_json.h"

typedef enum opt_type { O_U32, O_F32, O_SWITCH, O_ENUM, O_U64, O_UNITS } opt_type;

typedef struct model_option {
    const char *flag;
    opt_type type;
    size_t offset;
    const char *const *names; /* O_ENUM */
    const char *help;
} model_option;

#define AT(member) offsetof(enn_model_config, member)

static const char *const head_words[] = {"classifier", "regressor", "language_model", NULL};

static const model_option options[] = {
    {"--model", O_ENUM, AT(kind), enn_model_kind_names, "enn | rnn | gru | lstm"},
    {"--head", O_ENUM, AT(head), head_words, "classifier | regressor | language-model (sets the head's defaults)"},
    {"--layers", O_U32, AT(layers), NULL, "baselines: stacked recurrent layers"},
    {"--units", O_UNITS, AT(layer_units), NULL, "baselines: units per layer, comma-separated (128,64)"},
    {"--input-features", O_U32, AT(input_features), NULL, "d: features per step (not for an embedding LM)"},
    {"--max-seq-len", O_U32, AT(max_seq_len), NULL, "T: longest sequence"},
    {"--max-batch", O_U32, AT(max_batch), NULL, "B: largest batch (128)"},
    {"--hidden", O_U32, AT(cell.hidden), NULL, "h: hidden size (128)"},
    {"--memory-slots", O_U32, AT(cell.memory_slots), NULL, "N: memory slots (64)"},
    {"--hebbian-rate", O_F32, AT(cell.hebbian_rate), NULL, "eta (0.05)"},
    {"--trace-scale", O_F32, AT(cell.trace_scale), NULL, "alpha (0.5)"},
    {"--temperature", O_F32, AT(cell.temperature), NULL, "tau (1.5)"},
    {"--sparsity", O_F32, AT(cell.sparsity), NULL, "lambda (0.1)"},
    {"--layer-norm", O_SWITCH, AT(cell.layer_norm), NULL, "on | off (on)"},
    {"--noise", O_SWITCH, AT(cell.noise), NULL, "trace noise: on | off (on)"},
    {"--noise-std", O_F32, AT(cell.noise_std), NULL, "sigma (0.001)"},
    {"--trace-mode", O_ENUM, AT(cell.trace_mode), enn_trace_mode_names, "shared | per-sample (shared)"},
    {"--trace-gradient", O_ENUM, AT(cell.trace_gradient), enn_trace_gradient_names, "exact | stop (exact)"},
    {"--stateful", O_SWITCH, AT(cell.stateful), NULL, "carry h and H across batches: on | off (off)"},
    {"--recompute", O_U32, AT(cell.recompute_interval), NULL,
     "store the trace every K steps, recompute the rest in the backward pass (0: store all)"},
    {"--outputs", O_U32, AT(outputs), NULL, "classes, regression outputs or vocabulary size"},
    {"--pooling", O_ENUM, AT(pooling), enn_pooling_names, "classifier: attention | last (attention)"},
    {"--dropout", O_F32, AT(dropout), NULL, "classifier: rate before the dense layer (0.3)"},
    {"--return-sequences", O_SWITCH, AT(return_sequences), NULL, "regressor: predict at every step: on | off"},
    {"--lm-input", O_ENUM, AT(lm_input), enn_lm_input_names, "language model: embedding | float (embedding)"},
    {"--embedding-dim", O_U32, AT(embedding_dim), NULL, "language model: embedding size (128)"},
    {"--learning-rate", O_F32, AT(optimizer.learning_rate), NULL, "Adam step size (0.001)"},
    /* The short names `enn train` also takes, so that one set of flags works for both. */
    {"--slots", O_U32, AT(cell.memory_slots), NULL, "same as --memory-slots"},
    {"--eta", O_F32, AT(cell.hebbian_rate), NULL, "same as --hebbian-rate"},
    {"--alpha", O_F32, AT(cell.trace_scale), NULL, "same as --trace-scale"},
    {"--tau", O_F32, AT(cell.temperature), NULL, "same as --temperature"},
    {"--lambda", O_F32, AT(cell.sparsity), NULL, "same as --sparsity"},
    {"--trace", O_ENUM, AT(cell.trace_mode), enn_trace_mode_names, "same as --trace-mode"},
    {"--lr", O_F32, AT(optimizer.learning_rate), NULL, "same as --learning-rate"},
    {"--beta1", O_F32, AT(optimizer.beta1), NULL, "Adam beta1 (0.9)"},
    {"--beta2", O_F32, AT(optimizer.beta2), NULL, "Adam beta2 (0.999)"},
    {"--epsilon", O_F32, AT(optimizer.epsilon), NULL, "Adam epsilon (1e-7)"},
    {"--weight-decay", O_F32, AT(optimizer.weight_decay), NULL, "> 0: AdamW (0)"},
    {"--clip", O_ENUM, AT(optimizer.clip), enn_clip_names, "none | per-tensor | global (per-tensor)"},
    {"--clip-norm", O_F32, AT(optimizer.clip_norm), NULL, "clipping norm (1.0)"},
    {"--seed", O_U64, AT(seed), NULL, "initialisation, noise and dropout (1)"},
};
#define OPTION_COUNT (sizeof options / sizeof options[0])

static int fail(const char *flag, const char *value, const char *what)
{
    fprintf(stderr, "enn: %s %s: %s\n", flag, value ? value : "", what);
    return ENN_CLI_ERROR;
}

static int parse_u64(const char *s, uint64_t max, uint64_t *out)
{
    if (!s || !(*s >= '0' && *s <= '9')) return 0;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || *end || v > max) return 0;
    *out = v;
    return 1;
}

static int parse_switch(const char *s, int *out)
{
    static const char *const on[] = {"on", "true", "yes", "1"}, *const off[] = {"off", "false", "no", "0"};
    for (int i = 0; i < 4; i++) {
        if (!strcmp(s, on[i])) { *out = 1; return 1; }
        if (!strcmp(s, off[i])) { *out = 0; return 1; }
    }
    return 0;
}

void enn_cli_model_defaults(int argc, char **argv, enn_model_config *c)
{
    enn_head_kind head = ENN_HEAD_CLASSIFIER;
    for (int i = 1; i < argc; i++) {
        const char *v = NULL;
        if (!strcmp(argv[i], "--head") && i + 1 < argc) v = argv[i + 1];
        else if (!strncmp(argv[i], "--head=", 7)) v = argv[i] + 7;
        int h = v ? enn_enum_parse(head_words, !strcmp(v, "lm") ? "language_model" : v) : -1;
        if (h >= 0) head = (enn_head_kind)h;
    }
    enn_model_config_init(c, head);
}

int enn_cli_model_option(enn_model_config *c, const char *flag, const char *value)
{
    const model_option *o = NULL;
    for (size_t i = 0; i < OPTION_COUNT && !o; i++)
        if (!strcmp(flag, options[i].flag)) o = &options[i];
    if (!o) return ENN_CLI_UNKNOWN;
    if (!value) return fail(flag, "", "needs a value");
    void *p = (char *)c + o->offset;
    uint64_t n;
    switch (o->type) {
    case O_U32:
        if (!parse_u64(value, UINT32_MAX, &n)) return fail(flag, value, "expected a non-negative integer");
        *(uint32_t *)p = (uint32_t)n;
        break;
    case O_U64:
        if (!parse_u64(value, UINT64_MAX, &n)) return fail(flag, value, "expected a non-negative integer");
        *(uint64_t *)p = n;
        break;
    case O_F32: {
        char *end;
        errno = 0;
        float f = strtof(value, &end);
        if (errno || end == value || *end) return fail(flag, value, "expected a number");
        *(float *)p = f;
        break;
    }
    case O_SWITCH:
        if (!parse_switch(value, (int *)p)) return fail(flag, value, "expected on or off");
        break;
    case O_ENUM: {
        int e = enn_enum_parse(o->names, o->names == head_words && !strcmp(value, "lm") ? "language_model" : value);
        if (e < 0) return fail(flag, value, o->help);
        *(int *)p = e;
        break;
    }
    case O_UNITS: {
        uint32_t units[ENN_MAX_LAYERS], count = 0;
        char buf[128];
        snprintf(buf, sizeof buf, "%s", value);
        for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
            if (count == ENN_MAX_LAYERS || !parse_u64(tok, UINT32_MAX, &n) || !n)
                return fail(flag, value, "expected 1 to 4 positive integers separated by commas");
            units[count++] = (uint32_t)n;
        }
        if (!count) return fail(flag, value, "expected at least one layer size");
        memcpy(c->layer_units, units, count * sizeof *units);
        c->layers = count;
        break;
    }
    }
    return ENN_CLI_HANDLED;
}

int enn_cli_model_finish(enn_model_config *c)
{
    if (c->head == ENN_HEAD_LANGUAGE_MODEL && c->lm_input == ENN_LM_FLOAT_FEATURE && !c->input_features)
        c->input_features = 1;
    if (enn_model_config_check(c) != ENN_OK) {
        fprintf(stderr, "enn: model configuration: %s\n", enn_last_error());
        return 1;
    }
    return 0;
}

void enn_cli_model_help(FILE *f)
{
    fprintf(f, "model options:\n");
    for (size_t i = 0; i < OPTION_COUNT; i++) fprintf(f, "  %-20s %s\n", options[i].flag, options[i].help);
}
