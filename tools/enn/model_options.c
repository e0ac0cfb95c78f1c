/* Model flags of the `enn` commands (see model_options.h): one table row per field of
 * enn_model_config, with its long name, the short one `enn train` has always taken, the
 * limits of its value and its --help line. The words of enumerations are those of the
 * checkpoint's config JSON (models/config_json.h). */
#include "model_options.h"

#include <stddef.h>
#include <string.h>

#include "cli_values.h"
#include "models/config_json.h"

typedef enum opt_type { O_U32, O_U64, O_F32, O_SWITCH, O_WORD, O_UNITS } opt_type;

typedef struct model_option {
    const char *name;
    const char *arg;           /* the value in --help (words and switches show theirs) */
    opt_type type;
    size_t offset;             /* into enn_model_config */
    double min, max;           /* O_U32, O_F32, --units' sizes (O_U64: any) */
    const char *const *words;  /* O_WORD */
    const char *alias;         /* a short name for the same flag, or NULL */
    const char *from_data;     /* where a command with ENN_CLI_FROM_DATA takes this from */
    int no_default;            /* --help shows no default: the command must be told */
    int for_models;            /* a bit per config kind a flag applies to (FOR_*); 0: all */
    const char *help;
} model_option;

/* What a flag is for: the recurrent part, the head, the language model's input. A flag
 * given for a model it does nothing to is named (enn_cli_model_finish). */
enum {
    FOR_ENN = 1, FOR_BASELINES = 2, FOR_CLASSIFIER = 4, FOR_LANGUAGE_MODEL = 8, FOR_EMBEDDING = 16,
    FOR_FLOAT_INPUT = 32, /* every model but the embedding language model */
};

#define AT(member) offsetof(enn_model_config, member)
#define U32(member, lo, hi) .type = O_U32, .offset = AT(member), .min = lo, .max = hi
#define F32(member, lo, hi) .type = O_F32, .offset = AT(member), .min = lo, .max = hi
#define SWITCH(member) .type = O_SWITCH, .offset = AT(member)
#define WORD(member, list) .type = O_WORD, .offset = AT(member), .words = list

/* The limits refuse what could only be a typo, before a device or data set is touched;
 * enn_model_config_check then refuses what no model can be (e.g. --recompute 1). */
static const model_option options[] = {
    {"--model", NULL, WORD(kind, enn_model_kind_names), .help = "the recurrent part; baselines: --units"},
    {"--head", NULL, WORD(head, enn_head_names), .from_data = "the data (labels, targets or tokens)",
     .help = "the task and its defaults; lm: language-model"},
    {"--layers", "L", U32(layers, 1, ENN_MAX_LAYERS), .for_models = FOR_BASELINES, .help = "baselines: stacked recurrent layers"},
    {"--units", "A,B", .type = O_UNITS, .offset = AT(layer_units), .min = 1, .max = 1 << 16,
     .for_models = FOR_BASELINES, .help = "baselines: units per layer, which also sets --layers"},
    {"--input-features", "D", U32(input_features, 0, UINT32_MAX), .from_data = "the data's features per step",
     .no_default = 1, .for_models = FOR_FLOAT_INPUT, .help = "d: features per step, not for an embedding language model"},
    {"--max-seq-len", "T", U32(max_seq_len, 1, 1 << 20), .from_data = "the data (and --seq-len)", .no_default = 1,
     .help = "T: the longest sequence"},
    {"--max-batch", "B", U32(max_batch, 1, 1 << 16), .from_data = "--batch", .help = "B: the largest batch"},
    {"--hidden", "H", U32(cell.hidden, 1, 1 << 16), .for_models = FOR_ENN, .help = "h: hidden size"},
    {"--memory-slots", "N", U32(cell.memory_slots, 1, 1 << 16), .alias = "--slots", .for_models = FOR_ENN, .help = "N: memory slots"},
    {"--hebbian-rate", "E", F32(cell.hebbian_rate, 0.0, 1.0), .alias = "--eta", .for_models = FOR_ENN, .help = "eta"},
    {"--trace-scale", "A", F32(cell.trace_scale, 0.0, 1e6), .alias = "--alpha", .for_models = FOR_ENN, .help = "alpha"},
    {"--temperature", "T", F32(cell.temperature, 1e-6, 1e6), .alias = "--tau", .for_models = FOR_ENN, .help = "tau"},
    {"--sparsity", "L", F32(cell.sparsity, 0.0, 1e6), .alias = "--lambda", .for_models = FOR_ENN, .help = "lambda"},
    {"--layer-norm", NULL, SWITCH(cell.layer_norm), .for_models = FOR_ENN, .help = "the cell's layer norms"},
    {"--noise", NULL, SWITCH(cell.noise), .for_models = FOR_ENN, .help = "trace noise in training"},
    {"--noise-std", "S", F32(cell.noise_std, 0.0, 1e3), .for_models = FOR_ENN, .help = "sigma"},
    {"--trace-mode", NULL, WORD(cell.trace_mode, enn_trace_mode_names), .alias = "--trace",
     .for_models = FOR_ENN, .help = "a trace for the batch or per sample"},
    {"--trace-gradient", NULL, WORD(cell.trace_gradient, enn_trace_gradient_names),
     .for_models = FOR_ENN, .help = "stop: no gradient through the trace"},
    {"--stateful", NULL, SWITCH(cell.stateful), .help = "carry h and H across batches"},
    {"--recompute", "K", U32(cell.recompute_interval, 0, 1 << 20),
     .for_models = FOR_ENN, .help = "store the trace every K steps and recompute the rest in the backward pass, for less memory at "
             "long T; 0 stores all"},
    {"--outputs", "K", U32(outputs, 1, UINT32_MAX), .from_data = "the data (classes, targets or --vocab-size)",
     .no_default = 1, .help = "classes, regression outputs or vocabulary size"},
    {"--pooling", NULL, WORD(pooling, enn_pooling_names), .for_models = FOR_CLASSIFIER, .help = "classifier: over the steps"},
    {"--dropout", "P", F32(dropout, 0.0, 0.99), .for_models = FOR_CLASSIFIER, .help = "classifier: rate before the dense layer"},
    {"--return-sequences", NULL, SWITCH(return_sequences), .from_data = "the data (one target per sample)",
     .help = "regressor: a prediction per step"},
    {"--lm-input", NULL, WORD(lm_input, enn_lm_input_names), .for_models = FOR_LANGUAGE_MODEL, .help = "language model: token ids embedded or as a float"},
    {"--embedding-dim", "D", U32(embedding_dim, 1, 1 << 16), .for_models = FOR_EMBEDDING, .help = "language model: embedding size"},
    {"--learning-rate", "R", F32(optimizer.learning_rate, 1e-12, 1e3), .alias = "--lr", .help = "Adam step size"},
    {"--beta1", "B", F32(optimizer.beta1, 0.0, 1.0), .help = "Adam beta1, below 1"},
    {"--beta2", "B", F32(optimizer.beta2, 0.0, 1.0), .help = "Adam beta2, below 1"},
    {"--epsilon", "E", F32(optimizer.epsilon, 1e-30, 1.0), .help = "Adam epsilon"},
    {"--weight-decay", "W", F32(optimizer.weight_decay, 0.0, 10.0), .help = "> 0: AdamW"},
    {"--clip", NULL, WORD(optimizer.clip, enn_clip_names), .help = "gradient clipping"},
    {"--clip-norm", "C", F32(optimizer.clip_norm, 1e-12, 1e12), .help = "the clipping norm"},
    {"--seed", "S", .type = O_U64, .offset = AT(seed),
     .help = "initialisation, noise, dropout and the training data's order"},
};
#define OPTION_COUNT (sizeof options / sizeof options[0])
_Static_assert(OPTION_COUNT <= 64, "enn_cli_model_flags.given has a bit per option");
_Static_assert(sizeof(enn_trace_mode) == sizeof(int) && sizeof(enn_clip_mode) == sizeof(int),
               "word fields are stored as int");

static size_t field_size(const model_option *o)
{
    switch (o->type) {
    case O_U32: return sizeof(uint32_t);
    case O_U64: return sizeof(uint64_t);
    case O_F32: return sizeof(float);
    case O_UNITS: return sizeof(((enn_model_config *)0)->layer_units);
    default: return sizeof(int);
    }
}

/* The row for `flag`: its name, its alias, or "--no-" and a switch's name (*off set). */
static const model_option *find(const char *flag, int *off)
{
    *off = 0;
    for (size_t i = 0; i < OPTION_COUNT; i++) {
        const model_option *o = &options[i];
        if (!strcmp(flag, o->name) || (o->alias && !strcmp(flag, o->alias))) return o;
        if (o->type == O_SWITCH && !strncmp(flag, "--no-", 5) && !strcmp(flag + 5, o->name + 2)) {
            *off = 1;
            return o;
        }
    }
    return NULL;
}

static void mark_given(enn_cli_model_flags *f, size_t offset)
{
    for (size_t i = 0; i < OPTION_COUNT; i++)
        if (options[i].offset == offset) f->given |= 1ull << i;
}

void enn_cli_model_flags_init(enn_cli_model_flags *f, unsigned refuse)
{
    memset(f, 0, sizeof *f);
    enn_model_config_init(&f->values, ENN_HEAD_CLASSIFIER);
    f->refuse = refuse;
}

/* --units 128,64: the sizes and their count. */
static int parse_units(enn_cli_model_flags *f, const model_option *o, const char *flag, const char *value)
{
    uint32_t units[ENN_MAX_LAYERS] = {0}, count = 0;
    char buf[256], want[96], *save = NULL;
    snprintf(want, sizeof want, "1 to %d layer sizes in [%g, %g], like 128,64", ENN_MAX_LAYERS, o->min, o->max);
    /* strtok would pass over an empty size (4,,4 or a trailing comma): refused instead. */
    size_t len = value ? strlen(value) : 0;
    if (!value || len >= sizeof buf || !len || value[0] == ',' || value[len - 1] == ',' || strstr(value, ",,"))
        return enn_cli_bad(flag, value, want);
    memcpy(buf, value, len + 1);
    for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        uint64_t n;
        if (count == ENN_MAX_LAYERS || !enn_cli_is_u64(t, &n) || n < o->min || n > o->max)
            return enn_cli_bad(flag, value, want);
        units[count++] = (uint32_t)n;
    }
    if (!count) return enn_cli_bad(flag, value, want);
    memcpy(f->values.layer_units, units, sizeof units);
    f->values.layers = count; /* copied with the sizes (enn_cli_model_apply) */
    return 0;
}

int enn_cli_model_option(enn_cli_model_flags *f, const char *flag, const char *value, int attached)
{
    int off;
    const model_option *o = find(flag, &off);
    if (!o) return ENN_CLI_UNKNOWN;
    if (o->from_data && (f->refuse & ENN_CLI_FROM_DATA)) {
        fprintf(stderr, "enn: %s is not a flag here: the model takes it from %s\n", flag, o->from_data);
        return ENN_CLI_ERROR;
    }
    void *p = (char *)&f->values + o->offset;
    int used = 2, rc = 0;
    const char *v = value;
    if (o->words == enn_head_names && v && !strcmp(v, "lm")) v = "language_model";
    switch (o->type) {
    case O_U32: rc = enn_cli_u32(flag, v, (uint32_t)o->min, (uint32_t)o->max, p); break;
    case O_U64: rc = enn_cli_u64(flag, v, 0, UINT64_MAX, p); break;
    case O_F32: rc = enn_cli_float(flag, v, o->min, o->max, p); break;
    case O_WORD: rc = enn_cli_word(flag, v, o->words, p); break;
    case O_UNITS: rc = parse_units(f, o, flag, v); break;
    case O_SWITCH:
        /* --flag on|off, --flag=on|off, or the flag alone: on (--no-flag: off). */
        if (off) {
            if (attached) {
                fprintf(stderr, "enn: %s takes no value ('%s'): --%s=off does the same\n", flag, v, o->name + 2);
                return ENN_CLI_ERROR;
            }
            *(int *)p = 0;
            used = 1;
        } else if (!enn_cli_switch_word(v, p)) {
            if (attached) return enn_cli_bad(flag, v, "on or off");
            *(int *)p = 1;
            used = 1;
        }
        break;
    }
    if (rc) return ENN_CLI_ERROR;
    mark_given(f, o->offset);
    return used;
}

void enn_cli_model_apply(const enn_cli_model_flags *f, enn_model_config *c)
{
    for (size_t i = 0; i < OPTION_COUNT; i++)
        if (f->given >> i & 1) {
            const model_option *o = &options[i];
            memcpy((char *)c + o->offset, (const char *)&f->values + o->offset, field_size(o));
            if (o->type == O_UNITS) c->layers = f->values.layers;
        }
}

/* The FOR_* bits that `c` is. */
static int model_bits(const enn_model_config *c)
{
    int lm = c->head == ENN_HEAD_LANGUAGE_MODEL, embedded = lm && c->lm_input == ENN_LM_EMBEDDING;
    return (c->kind == ENN_MODEL_ENN ? FOR_ENN : FOR_BASELINES) | (c->head == ENN_HEAD_CLASSIFIER ? FOR_CLASSIFIER : 0) |
           (lm ? FOR_LANGUAGE_MODEL : 0) | (embedded ? FOR_EMBEDDING : FOR_FLOAT_INPUT);
}

static const char *models_described(int bits)
{
    switch (bits) {
    case FOR_ENN: return "the ENN";
    case FOR_BASELINES: return "the rnn, gru and lstm baselines";
    case FOR_CLASSIFIER: return "the classifier head";
    case FOR_LANGUAGE_MODEL: return "a language model";
    case FOR_EMBEDDING: return "a language model that embeds its tokens (--lm-input embedding)";
    default: return "models whose inputs are features (an embedding language model reads token ids)";
    }
}

int enn_cli_model_finish(const enn_cli_model_flags *f, enn_model_config *c, int strict)
{
    if (c->head == ENN_HEAD_LANGUAGE_MODEL && c->lm_input == ENN_LM_FLOAT_FEATURE && !c->input_features)
        c->input_features = 1;
    /* A flag that does nothing to this model is a mistake worth naming: refused where the
     * command line makes one model (enn init), a note where one set of flags may serve
     * several (a --config file or tools/reproduce.sh running every model). */
    int bits = model_bits(c), refused = 0;
    for (size_t i = 0; f && i < OPTION_COUNT; i++) {
        const model_option *o = &options[i];
        if (!(f->given >> i & 1) || !o->for_models || (o->for_models & bits)) continue;
        const char *head = enn_head_names[c->head];
        fprintf(stderr, "enn: %s%s is for %s; it does nothing to this %s %s\n", strict ? "" : "note: ", o->name,
                models_described(o->for_models), enn_model_kind_names[c->kind],
                c->head == ENN_HEAD_LANGUAGE_MODEL ? "language model" : head);
        refused = strict;
    }
    if (refused) return 1;
    if (enn_model_config_check(c) != ENN_OK) {
        fprintf(stderr, "enn: model configuration: %s\n", enn_last_error());
        return 1;
    }
    return 0;
}

/* "a|b|c" from a word list, spelt with '-'. */
static void join_words(char *out, size_t size, const char *const *words)
{
    size_t n = 0;
    out[0] = 0;
    for (int i = 0; words[i] && n + 2 < size; i++) {
        if (i) out[n++] = '|';
        for (const char *c = words[i]; *c && n + 1 < size; c++) out[n++] = *c == '_' ? '-' : *c;
        out[n] = 0;
    }
}

/* The field's value in `c` as a flag would give it. */
static void format_value(char *out, size_t size, const model_option *o, const enn_model_config *c)
{
    const void *p = (const char *)c + o->offset;
    switch (o->type) {
    case O_U32: snprintf(out, size, "%u", *(const uint32_t *)p); break;
    case O_U64: snprintf(out, size, "%llu", (unsigned long long)*(const uint64_t *)p); break;
    case O_F32: snprintf(out, size, "%g", *(const float *)p); break;
    case O_SWITCH: snprintf(out, size, "%s", *(const int *)p ? "on" : "off"); break;
    case O_WORD: {
        const char *const one[] = {o->words[*(const int *)p], NULL};
        join_words(out, size, one);
        break;
    }
    case O_UNITS: {
        size_t n = 0;
        out[0] = 0;
        for (uint32_t i = 0; i < c->layers && i < ENN_MAX_LAYERS && n < size; i++)
            n += (size_t)snprintf(out + n, size - n, "%s%u", i ? "," : "", c->layer_units[i]);
        break;
    }
    }
}

/* `text` from column 30, in lines of at most 100 columns. */
static void print_wrapped(FILE *f, const char *text)
{
    const int column = 30, width = 100 - 30;
    while (strlen(text) > (size_t)width) {
        int cut = width;
        while (cut > 0 && text[cut] != ' ') cut--;
        if (!cut) break;
        fprintf(f, "%.*s\n%*s", cut, text, column, "");
        text += cut + 1;
    }
    fprintf(f, "%s\n", text);
}

void enn_cli_model_help(FILE *f, unsigned refuse, const enn_model_config *defaults)
{
    for (size_t i = 0; i < OPTION_COUNT; i++) {
        const model_option *o = &options[i];
        if (o->from_data && (refuse & ENN_CLI_FROM_DATA)) continue;
        char arg[96], value[64], flag[160], text[512];
        if (o->type == O_WORD) join_words(arg, sizeof arg, o->words);
        else snprintf(arg, sizeof arg, "%s", o->type == O_SWITCH ? "[on|off]" : o->arg);
        int width = snprintf(flag, sizeof flag, "  %s %s", o->name, arg);
        /* A long flag and value get a line of their own. */
        if (width > 28) fprintf(f, "%s\n%30s", flag, "");
        else fprintf(f, "%-30s", flag);
        size_t n = (size_t)snprintf(text, sizeof text, "%s", o->help);
        const char *sep = " (";
        format_value(value, sizeof value, o, defaults);
        if (!o->no_default) n += (size_t)snprintf(text + n, sizeof text - n, "%sdefault %s", sep, value), sep = "; ";
        if (o->alias) n += (size_t)snprintf(text + n, sizeof text - n, "%salso %s", sep, o->alias), sep = "; ";
        if (sep[0] == ';') snprintf(text + n, sizeof text - n, ")");
        print_wrapped(f, text);
    }
    fprintf(f, "  A switch alone means on; --no-<switch> means off (--no-layer-norm).\n");
}
