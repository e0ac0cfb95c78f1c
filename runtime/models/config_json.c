/* enn_model_config <-> JSON. One table per JSON object lists each key, its type and
 * where it lives in the struct, so that writing and (strict) reading cannot drift apart:
 *
 *   {"version": 1, "kind": "enn", "layers": 1, "layer_units": [128], "input_features": 3,
 *    "max_seq_len": 5, "max_batch": 4,
 *    "cell": {"hidden": 8, "memory_slots": 5, "hebbian_rate": 0.05, ...},
 *    "head": "classifier", "outputs": 2, "pooling": "attention", "dropout": 0.3, ...,
 *    "optimizer": {"learning_rate": 0.001, ..., "clip": "per_tensor", "clip_norm": 1},
 *    "seed": 1}
 *
 * Floats go through double with 17 significant digits, so every float reads back
 * bit for bit. */
#include "models/config_json.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/json_util.h"
#include "core/struct_size.h"
#include "models/config.h"

const char *const enn_model_kind_names[] = {"enn", "rnn", "gru", "lstm", NULL};
const char *const enn_head_names[] = {"classifier", "regressor", "language_model", NULL};
const char *const enn_pooling_names[] = {"attention", "last", NULL};
const char *const enn_trace_mode_names[] = {"shared", "per_sample", NULL};
const char *const enn_trace_gradient_names[] = {"exact", "stop", NULL};
const char *const enn_lm_input_names[] = {"embedding", "float", NULL};
const char *const enn_clip_names[] = {"none", "per_tensor", "global", NULL};

int enn_enum_parse(const char *const *names, const char *word)
{
    for (int i = 0; word && names[i]; i++) {
        const char *a = names[i], *b = word;
        while (*a && (*a == *b || (*a == '_' && *b == '-'))) a++, b++;
        if (!*a && !*b) return i;
    }
    return -1;
}

typedef enum field_type { F_U32, F_F32, F_BOOL, F_ENUM } field_type;

typedef struct field {
    const char *key;
    field_type type;
    size_t offset;                /* into the struct the table describes */
    const char *const *names;     /* F_ENUM */
    int optional;                 /* U32 only: missing in files written before it existed, and
                                     left out when 0 */
} field;

#define U32(s, k, m) {k, F_U32, offsetof(s, m), NULL, 0}
#define F32(s, k, m) {k, F_F32, offsetof(s, m), NULL, 0}
#define BOOL(s, k, m) {k, F_BOOL, offsetof(s, m), NULL, 0}
#define ENUM(s, k, m, n) {k, F_ENUM, offsetof(s, m), n, 0}
#define U32_OPTIONAL(s, k, m) {k, F_U32, offsetof(s, m), NULL, 1}

static const field cell_fields[] = {
    U32(enn_cell_config, "hidden", hidden),
    U32(enn_cell_config, "memory_slots", memory_slots),
    F32(enn_cell_config, "hebbian_rate", hebbian_rate),
    F32(enn_cell_config, "trace_scale", trace_scale),
    F32(enn_cell_config, "temperature", temperature),
    F32(enn_cell_config, "sparsity", sparsity),
    BOOL(enn_cell_config, "layer_norm", layer_norm),
    BOOL(enn_cell_config, "noise", noise),
    F32(enn_cell_config, "noise_std", noise_std),
    ENUM(enn_cell_config, "trace_mode", trace_mode, enn_trace_mode_names),
    ENUM(enn_cell_config, "trace_gradient", trace_gradient, enn_trace_gradient_names),
    BOOL(enn_cell_config, "stateful", stateful),
    U32_OPTIONAL(enn_cell_config, "recompute_interval", recompute_interval),
};

static const field optimizer_fields[] = {
    F32(enn_optimizer_config, "learning_rate", learning_rate),
    F32(enn_optimizer_config, "beta1", beta1),
    F32(enn_optimizer_config, "beta2", beta2),
    F32(enn_optimizer_config, "epsilon", epsilon),
    F32(enn_optimizer_config, "weight_decay", weight_decay),
    ENUM(enn_optimizer_config, "clip", clip, enn_clip_names),
    F32(enn_optimizer_config, "clip_norm", clip_norm),
};

/* Top-level scalar keys; "version", "layer_units", "cell", "optimizer" and "seed" are
 * handled apart. */
static const field model_fields[] = {
    ENUM(enn_model_config, "kind", kind, enn_model_kind_names),
    U32(enn_model_config, "layers", layers),
    U32(enn_model_config, "input_features", input_features),
    U32(enn_model_config, "max_seq_len", max_seq_len),
    U32(enn_model_config, "max_batch", max_batch),
    ENUM(enn_model_config, "head", head, enn_head_names),
    U32(enn_model_config, "outputs", outputs),
    ENUM(enn_model_config, "pooling", pooling, enn_pooling_names),
    F32(enn_model_config, "dropout", dropout),
    BOOL(enn_model_config, "return_sequences", return_sequences),
    ENUM(enn_model_config, "lm_input", lm_input, enn_lm_input_names),
    U32(enn_model_config, "embedding_dim", embedding_dim),
};

#define COUNT(a) (sizeof a / sizeof a[0])
#define OOM(what) enn_error(ENN_ERROR_OUT_OF_HOST_MEMORY, "out of host memory building the config JSON (%s)", what)

static int names_count(const char *const *names)
{
    int n = 0;
    while (names[n]) n++;
    return n;
}

static enn_status put_fields(json_t *obj, const void *base, const field *fields, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        const void *p = (const char *)base + fields[i].offset;
        /* A key added after the format's first release is written only when it is not at
         * its default (0, the old behaviour): a model that does not use it stays readable
         * by a libenn from before the key existed. */
        if (fields[i].optional && *(const uint32_t *)p == 0) continue;
        json_t *v = NULL;
        switch (fields[i].type) {
        case F_U32: v = json_integer(*(const uint32_t *)p); break;
        case F_F32:
            /* JSON has no NaN or infinity: refused by name, not mistaken for a failed allocation. */
            if (!isfinite(*(const float *)p))
                return enn_error(ENN_ERROR_INVALID_ARGUMENT, "config to JSON: %s is %g, not a finite number",
                                 fields[i].key, *(const float *)p);
            v = json_real(*(const float *)p);
            break;
        case F_BOOL: v = json_boolean(*(const int *)p); break;
        case F_ENUM: {
            int e = *(const int *)p;
            if (e < 0 || e >= names_count(fields[i].names))
                return enn_error(ENN_ERROR_INVALID_ARGUMENT, "config to JSON: %s has no name for value %d", fields[i].key, e);
            v = json_string(fields[i].names[e]);
            break;
        }
        }
        /* Keys and enum names are ASCII and floats finite: a failure here is an allocation. */
        if (json_object_set_new(obj, fields[i].key, v)) return OOM(fields[i].key);
    }
    return ENN_OK;
}

enn_status enn_model_config_to_json(const enn_model_config *caller, char **out)
{
    if (!caller || !out) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "enn_model_config_to_json: NULL argument");
    *out = NULL;
    enn_model_config local;
    ENN_TRY(enn_model_config_read(caller, &local));
    const enn_model_config *c = &local;
    if (c->layers > ENN_MAX_LAYERS)
        return enn_error(ENN_ERROR_INVALID_ARGUMENT, "config to JSON: %u layers (at most %d)", c->layers, ENN_MAX_LAYERS);
    json_t *root = json_object(), *cell = json_object(), *opt = json_object(), *units = json_array();
    enn_status s = ENN_OK;
    if (!root || !cell || !opt || !units) s = OOM("objects");
    /* Every set and append is checked: one dropped on allocation failure would leave a
     * config that saves fine and cannot be read back. The _new calls take the value
     * (freeing it on failure, and failing on NULL). */
    if (s == ENN_OK && json_object_set_new(root, "version", json_integer(ENN_CONFIG_JSON_VERSION))) s = OOM("version");
    if (s == ENN_OK) s = put_fields(root, c, model_fields, COUNT(model_fields));
    for (uint32_t i = 0; s == ENN_OK && i < c->layers; i++)
        if (json_array_append_new(units, json_integer(c->layer_units[i]))) s = OOM("layer_units");
    if (s == ENN_OK) s = put_fields(cell, &c->cell, cell_fields, COUNT(cell_fields));
    if (s == ENN_OK) s = put_fields(opt, &c->optimizer, optimizer_fields, COUNT(optimizer_fields));
    if (s == ENN_OK && json_object_set(root, "layer_units", units)) s = OOM("layer_units");
    if (s == ENN_OK && json_object_set(root, "cell", cell)) s = OOM("cell");
    if (s == ENN_OK && json_object_set(root, "optimizer", opt)) s = OOM("optimizer");
    if (s == ENN_OK) {
        /* JSON integers are signed 64-bit here: a seed past 2^63 goes as a decimal string. */
        char seed[24];
        snprintf(seed, sizeof seed, "%llu", (unsigned long long)c->seed);
        if (json_object_set_new(root, "seed",
                                c->seed <= (uint64_t)INT64_MAX ? json_integer((json_int_t)c->seed) : json_string(seed)))
            s = OOM("seed");
    }
    if (s == ENN_OK) {
        *out = enn_json_dumps(root, JSON_INDENT(1) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17));
        if (!*out) s = OOM("text");
    }
    json_decref(units);
    json_decref(cell);
    json_decref(opt);
    json_decref(root);
    return s;
}

#define BAD(...) enn_error(ENN_ERROR_FORMAT, __VA_ARGS__)

/* Reads every key of `fields` from obj (where = "cell.", "optimizer." or "" for messages),
 * and rejects keys that are neither in the table nor in `extra`. */
static enn_status get_fields(const char *origin, const char *where, json_t *obj, void *base, const field *fields,
                             size_t count, const char *const *extra)
{
    if (!json_is_object(obj)) return BAD("%s: config %s is not a JSON object", origin, where[0] ? where : "text");
    for (size_t i = 0; i < count; i++) {
        const char *key = fields[i].key;
        json_t *v = json_object_get(obj, key);
        void *p = (char *)base + fields[i].offset;
        if (!v && fields[i].optional) continue;
        if (!v) return BAD("%s: config lacks the key \"%s%s\"", origin, where, key);
        switch (fields[i].type) {
        case F_U32:
            if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > UINT32_MAX)
                return BAD("%s: config \"%s%s\" must be an integer in 0..4294967295", origin, where, key);
            *(uint32_t *)p = (uint32_t)json_integer_value(v);
            break;
        case F_F32:
            if (!json_is_number(v)) return BAD("%s: config \"%s%s\" must be a number", origin, where, key);
            *(float *)p = (float)json_number_value(v);
            break;
        case F_BOOL:
            if (!json_is_boolean(v)) return BAD("%s: config \"%s%s\" must be true or false", origin, where, key);
            *(int *)p = json_is_true(v);
            break;
        case F_ENUM: {
            int e = json_is_string(v) ? enn_enum_parse(fields[i].names, json_string_value(v)) : -1;
            if (e < 0) {
                char words[128] = "";
                for (int k = 0; fields[i].names[k]; k++)
                    snprintf(words + strlen(words), sizeof words - strlen(words), "%s\"%s\"", k ? ", " : "",
                             fields[i].names[k]);
                return BAD("%s: config \"%s%s\" must be one of %s", origin, where, key, words);
            }
            *(int *)p = e;
            break;
        }
        }
    }
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v) {
        int known = 0;
        for (size_t i = 0; i < count && !known; i++) known = !strcmp(key, fields[i].key);
        for (size_t i = 0; extra && extra[i] && !known; i++) known = !strcmp(key, extra[i]);
        if (!known) return BAD("%s: config has an unknown key \"%s%s\"", origin, where, key);
    }
    return ENN_OK;
}

static enn_status get_seed(const char *origin, json_t *v, uint64_t *seed)
{
    if (json_is_integer(v) && json_integer_value(v) >= 0) {
        *seed = (uint64_t)json_integer_value(v);
        return ENN_OK;
    }
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        char *end;
        unsigned long long n = strtoull(s, &end, 10);
        if (*s >= '0' && *s <= '9' && !*end) {
            *seed = n;
            return ENN_OK;
        }
    }
    return BAD("%s: config \"seed\" must be a non-negative integer (or one as a decimal string)", origin);
}

static enn_status from_json(json_t *root, const char *o, enn_model_config *c)
{
    static const char *const top_extra[] = {"version", "layer_units", "cell", "optimizer", "seed", NULL};
    if (!json_is_object(root)) return BAD("%s: the config is not a JSON object", o);
    json_t *version = json_object_get(root, "version");
    if (!json_is_integer(version)) return BAD("%s: config lacks an integer \"version\"", o);
    if (json_integer_value(version) != ENN_CONFIG_JSON_VERSION)
        return BAD("%s: config version %lld; this libenn reads version %d", o, (long long)json_integer_value(version),
                   ENN_CONFIG_JSON_VERSION);
    ENN_TRY(get_fields(o, "", root, c, model_fields, sizeof model_fields / sizeof *model_fields, top_extra));
    ENN_TRY(get_fields(o, "cell.", json_object_get(root, "cell"), &c->cell, cell_fields,
                       sizeof cell_fields / sizeof *cell_fields, NULL));
    ENN_TRY(get_fields(o, "optimizer.", json_object_get(root, "optimizer"), &c->optimizer, optimizer_fields,
                       sizeof optimizer_fields / sizeof *optimizer_fields, NULL));
    json_t *units = json_object_get(root, "layer_units");
    if (!json_is_array(units) || json_array_size(units) != c->layers || c->layers > ENN_MAX_LAYERS)
        return BAD("%s: config \"layer_units\" must be an array of \"layers\" (%u, at most %d) integers", o, c->layers,
                   ENN_MAX_LAYERS);
    for (uint32_t i = 0; i < c->layers; i++) {
        json_t *u = json_array_get(units, i);
        if (!json_is_integer(u) || json_integer_value(u) < 0 || json_integer_value(u) > UINT32_MAX)
            return BAD("%s: config \"layer_units\"[%u] must be a non-negative integer", o, i);
        c->layer_units[i] = (uint32_t)json_integer_value(u);
    }
    json_t *seed = json_object_get(root, "seed");
    if (!seed) return BAD("%s: config lacks the key \"seed\"", o);
    return get_seed(o, seed, &c->seed);
}

enn_status enn_model_config_from_json(const char *text, const char *origin, enn_model_config *out)
{
    if (!text || !out) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "enn_model_config_from_json: NULL argument");
    const char *o = origin ? origin : "model config";
    json_error_t err;
    memset(&err, 0, sizeof err);   /* jansson leaves the code unset on some failures */
    errno = 0;
    json_t *root = json_loads(text, 0, &err);
    if (enn_json_load_out_of_memory(root, &err, errno)) {
        json_decref(root);
        return enn_error(ENN_ERROR_OUT_OF_HOST_MEMORY, "out of host memory reading %s (the config JSON)", o);
    }
    if (!root) return BAD("%s: the config is not valid JSON (%s, line %d)", o, err.text, err.line);
    enn_model_config c;
    memset(&c, 0, sizeof c);
    enn_status s = from_json(root, o, &c);
    json_decref(root);
    if (s != ENN_OK) return s;
    return ENN_STRUCT_WRITE("enn_model_config", ENN_MODEL_CONFIG_SIZE_0_2, out, &c);
}
