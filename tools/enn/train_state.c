/* See train_state.h. The file is JSON (jansson); doubles are written with 17 significant
 * digits, so they read back bit for bit, and a non-finite one (the +inf of "no best yet")
 * as null. */
#include "train_state.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <unistd.h>

#include <jansson.h>

#include "core/atomic_file.h"
#include "core/json_util.h"
#include "enn.h"

#define STATE_FORMAT "enn.train-state"
#define STATE_VERSION 1

static json_t *real_or_null(double v) { return isfinite(v) ? json_real(v) : json_null(); }

char *train_state_to_text(const train_state *s)
{
    json_t *config = json_loads(s->config ? s->config : "{}", 0, NULL);
    json_t *root = !config ? NULL : json_pack(
        "{s:s, s:i, s:i, s:I, s:{s:o, s:I, s:I}, s:{s:o, s:i, s:i}, s:{s:o, s:i}, s:b, s:i, s:b, s:f, "
        "s:I, s:{s:s, s:I, s:i, s:i, s:i, s:I, s:i, s:i, s:o}}",
        "format", STATE_FORMAT, "version", STATE_VERSION, "epoch", (int)s->epoch, "batches_done",
        (json_int_t)s->batches_done, "train_sum", "loss_sum", real_or_null(s->train_sum.loss_sum), "correct",
        (json_int_t)s->train_sum.correct, "counted", (json_int_t)s->train_sum.counted, "early_stopping", "best",
        real_or_null(s->stopper.best), "best_epoch", (int)s->stopper.best_epoch, "wait", (int)s->stopper.wait,
        "plateau", "best", real_or_null(s->lr_plateau.best), "wait", (int)s->lr_plateau.wait, "have_best",
        s->have_best, "last_epoch", (int)s->last_epoch, "stopped_early", s->stopped_early, "seconds", s->seconds, "updates",
        (json_int_t)s->updates, "run",
        "data", s->data, "train_samples", (json_int_t)s->train_samples, "batch", (int)s->batch, "accumulate",
        (int)s->accumulate, "processes", (int)s->processes, "seed", (json_int_t)s->seed, "lr_schedule", s->lr_schedule, "warmup",
        (int)s->warmup, "config", config);
    /* Each process's pass count, in rank order, and the data's checksum. */
    json_t *passes = json_array();
    int ok = root && passes && !json_object_set_new(json_object_get(root, "run"), "data_crc32",
                                                    json_integer((json_int_t)s->data_crc32));
    for (uint32_t i = 0; ok && i < s->n_passes; i++)
        ok = json_array_append_new(passes, json_integer((json_int_t)s->passes[i])) == 0;
    if (ok) {
        ok = json_object_set_new(root, "passes", passes) == 0;   /* takes passes either way */
        passes = NULL;
    }
    json_decref(passes);
    /* The metrics logs' sizes when this state was written: a resumed run cuts them back
     * to these, so an epoch it trains again is not logged twice. */
    ok = ok && !json_object_set_new(root, "log_bytes", json_pack("{s:I, s:I}", "csv", (json_int_t)s->csv_bytes,
                                                                   "jsonl", (json_int_t)s->jsonl_bytes));
    char *text = ok ? enn_json_dumps(root, JSON_INDENT(2) | JSON_REAL_PRECISION(17)) : NULL; /* never a damaged text */
    json_decref(root);
    if (!text) fprintf(stderr, "enn train: out of memory building the training state\n");
    return text;
}

int train_state_save(const char *path, const char *text)
{
    /* Replaced whole or not at all (core/atomic_file.h): a reader never sees half a state. */
    enn_atomic_file af;
    enn_status st = enn_atomic_open(&af, path);
    if (st == ENN_OK) {
        st = enn_atomic_write(&af, text, strlen(text));
        if (st == ENN_OK) st = enn_atomic_write(&af, "\n", 1);
        if (st == ENN_OK) st = enn_atomic_commit(&af);
        else enn_atomic_abort(&af);
    }
    if (st != ENN_OK) {
        fprintf(stderr, "enn train: cannot write the training state: %s\n", enn_last_error());
        return -1;
    }
    return 0;
}

/* The double at key, or `absent` for null. */
static int get_real(json_t *obj, const char *key, double absent, double *out)
{
    json_t *v = json_object_get(obj, key);
    if (json_is_null(v)) *out = absent;
    else if (json_is_number(v)) *out = json_number_value(v);
    else return -1;
    return 0;
}

static int from_json(json_t *root, json_error_t *parse_error, const char *path, train_state *s);

int train_state_load(const char *path, train_state *s)
{
    if (access(path, F_OK) != 0) {
        fprintf(stderr, "enn train: --resume: no run to go on with: %s does not exist\n", path);
        return -1;
    }
    json_error_t err;
    json_t *root = json_load_file(path, 0, &err);
    return from_json(root, &err, path, s);
}

int train_state_parse(const char *text, const char *origin, train_state *s)
{
    json_error_t err;
    json_t *root = json_loads(text, 0, &err);
    return from_json(root, &err, origin, s);
}

/* Takes root (NULL: err says why it did not parse). */
static int from_json(json_t *root, json_error_t *parse_error, const char *path, train_state *s)
{
    json_error_t err = *parse_error;
    if (!root) {
        fprintf(stderr, "enn train: %s is not a training state: %s", path, err.text);
        if (err.line > 0) fprintf(stderr, " (line %d)", err.line);
        fprintf(stderr, "\n");
        return -1;
    }
    memset(s, 0, sizeof *s);
    const char *format = NULL, *data = NULL;
    json_t *config = NULL;
    int version = 0, epoch = 0, best_epoch = 0, wait = 0, pwait = 0, last_epoch = 0, have_best = 0, stopped_early = 0;
    int batch = 0, accumulate = 0, processes = 0, lr_schedule = 0, warmup = 0;
    json_int_t done = 0, correct = 0, counted = 0, train_samples = 0, seed = 0, updates = 0;
    json_t *sum = NULL, *stop = NULL, *plat = NULL;
    int bad = json_unpack_ex(root, &err, 0,
                             "{s:s, s:i, s:i, s:I, s:o, s:o, s:o, s:b, s:i, s:b, s:F, "
                             "s:I, s:{s:s, s:I, s:i, s:i, s:i, s:I, s:i, s:i, s:o}}",
                             "format", &format, "version", &version, "epoch", &epoch, "batches_done", &done,
                             "train_sum", &sum, "early_stopping", &stop, "plateau", &plat, "have_best", &have_best,
                             "last_epoch", &last_epoch, "stopped_early", &stopped_early, "seconds", &s->seconds, "updates",
                             &updates, "run", "data",
                             &data, "train_samples", &train_samples, "batch", &batch, "accumulate", &accumulate,
                             "processes", &processes, "seed", &seed, "lr_schedule", &lr_schedule, "warmup", &warmup,
                             "config", &config);
    if (!bad && (strcmp(format, STATE_FORMAT) || version != STATE_VERSION)) {
        snprintf(err.text, sizeof err.text, "not an %s version %d file", STATE_FORMAT, STATE_VERSION);
        bad = 1;
    }
    if (!bad) {
        bad = json_unpack_ex(sum, &err, 0, "{s:I, s:I}", "correct", &correct, "counted", &counted) ||
              json_unpack_ex(stop, &err, 0, "{s:i, s:i}", "best_epoch", &best_epoch, "wait", &wait) ||
              json_unpack_ex(plat, &err, 0, "{s:i}", "wait", &pwait);
        if (!bad && (get_real(sum, "loss_sum", NAN, &s->train_sum.loss_sum) ||
                     get_real(stop, "best", INFINITY, &s->stopper.best) ||
                     get_real(plat, "best", INFINITY, &s->lr_plateau.best))) {
            snprintf(err.text, sizeof err.text, "a loss is neither a number nor null");
            bad = 1;
        }
    }
    /* Counts a run can have written (a file edited by hand may hold others). */
    const char *range = NULL;
    if (!bad) {
        if (epoch < 1) range = "\"epoch\" below 1";
        else if (done < 0) range = "\"batches_done\" negative";
        else if (counted < 0 || correct < 0 || correct > counted) range = "\"train_sum\": correct not within 0..counted";
        else if (best_epoch < 0 || best_epoch >= epoch || wait < 0 || pwait < 0)
            range = "\"early_stopping\" or \"plateau\": a best epoch not before \"epoch\", or a negative wait";
        else if (last_epoch < 0 || last_epoch >= epoch) range = "\"last_epoch\" not before \"epoch\"";
        else if (batch < 1 || accumulate < 1 || processes < 1) range = "\"run\": batch, accumulate or processes below 1";
        if (range) {
            snprintf(err.text, sizeof err.text, "%s", range);
            bad = 1;
        }
    }
    if (bad) {
        fprintf(stderr, "enn train: %s is not a training state: %s\n", path, err.text);
        json_decref(root);
        return -1;
    }
    s->epoch = (uint32_t)epoch;
    s->batches_done = (uint64_t)done;
    s->train_sum.correct = (uint64_t)correct;
    s->train_sum.counted = (uint64_t)counted;
    s->stopper.best_epoch = (uint32_t)best_epoch;
    s->stopper.wait = (uint32_t)wait;
    s->lr_plateau.wait = (uint32_t)pwait;
    s->have_best = have_best;
    s->last_epoch = (uint32_t)last_epoch;
    s->stopped_early = stopped_early;
    snprintf(s->data, sizeof s->data, "%s", data);
    s->train_samples = (uint64_t)train_samples;
    s->batch = (uint32_t)batch;
    s->accumulate = (uint32_t)accumulate;
    s->processes = (uint32_t)processes;
    s->seed = (uint64_t)seed;
    s->updates = (uint64_t)updates;
    s->lr_schedule = lr_schedule;
    s->warmup = (uint32_t)warmup;
    s->config = json_dumps(config, JSON_REAL_PRECISION(17));
    json_t *crc = json_object_get(json_object_get(root, "run"), "data_crc32");
    if (crc && (!json_is_integer(crc) || json_integer_value(crc) < 0 || json_integer_value(crc) > UINT32_MAX)) {
        fprintf(stderr, "enn train: %s is not a training state: \"data_crc32\" is not a CRC-32\n", path);
        json_decref(root);
        return -1;
    }
    s->have_data_crc32 = crc != NULL;
    s->data_crc32 = crc ? (uint32_t)json_integer_value(crc) : 0;
    /* Each process's pass count (absent from files of earlier versions: left at 0). */
    json_t *passes = json_object_get(root, "passes");
    size_t n = json_array_size(passes);
    if (passes && (!json_is_array(passes) || n != s->processes)) {
        fprintf(stderr, "enn train: %s is not a training state: \"passes\" is not an array of %u counts\n", path,
                s->processes);
        json_decref(root);
        return -1;
    }
    if (n && !(s->passes = calloc(n, sizeof *s->passes))) {
        json_decref(root);
        fprintf(stderr, "enn train: out of memory reading %s\n", path);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_array_get(passes, i);
        if (!json_is_integer(v) || json_integer_value(v) < 0) {
            fprintf(stderr, "enn train: %s is not a training state: \"passes\" holds %s\n", path,
                    json_is_integer(v) ? "a negative count" : "something other than a count");
            json_decref(root);
            return -1;
        }
        s->passes[i] = (uint64_t)json_integer_value(v);
    }
    s->n_passes = (uint32_t)n;
    /* The logs' sizes (absent from files of earlier versions: 0, nothing cut). */
    json_t *logs = json_object_get(root, "log_bytes");
    json_int_t csv_bytes = 0, jsonl_bytes = 0;
    if (logs && (json_unpack(logs, "{s:I, s:I}", "csv", &csv_bytes, "jsonl", &jsonl_bytes) || csv_bytes < 0 ||
                 jsonl_bytes < 0)) {
        fprintf(stderr, "enn train: %s is not a training state: \"log_bytes\" is not two sizes\n", path);
        json_decref(root);
        return -1;
    }
    s->csv_bytes = (uint64_t)csv_bytes;
    s->jsonl_bytes = (uint64_t)jsonl_bytes;
    json_decref(root);
    if (!s->config) {
        fprintf(stderr, "enn train: out of memory reading %s\n", path);
        return -1;
    }
    return 0;
}

void train_state_free(train_state *s)
{
    free(s->config);
    free(s->passes);
    s->config = NULL;
    s->passes = NULL;
    s->n_passes = 0;
}

/* Appends ".key" (or "key" first) to a path. */
static void path_add(char *buf, size_t size, const char *key)
{
    size_t len = strlen(buf);
    snprintf(buf + len, size - len, "%s%s", len ? "." : "", key);
}

/* The path of the first value that differs between two JSON documents, into buf: a key
 * of either that the other lacks, or whose values differ. */
static int first_difference(json_t *a, json_t *b, char *buf, size_t size)
{
    if (json_is_object(a) && json_is_object(b)) {
        const char *key;
        json_t *va, *vb;
        json_object_foreach(a, key, va) {
            vb = json_object_get(b, key);
            if (!vb || !json_equal(va, vb)) {
                path_add(buf, size, key);
                if (vb) first_difference(va, vb, buf, size);
                return 1;
            }
        }
        json_object_foreach(b, key, vb) {
            if (!json_object_get(a, key)) {
                path_add(buf, size, key);
                return 1;
            }
        }
        return 0;
    }
    return !json_equal(a, b);
}

/* A model configuration as this version writes it. A run of an earlier version lacks
 * the keys added since (optional ones, whose defaults are the earlier behaviour), which
 * is no difference; a text that does not parse is compared as it is. */
static json_t *normalized_config(const char *text)
{
    enn_model_config c = {0};
    char *json = NULL;
    json_t *out = NULL;
    if (text && enn_model_config_from_json(text, NULL, &c) == ENN_OK && enn_model_config_to_json(&c, &json) == ENN_OK)
        out = json_loads(json, 0, NULL);
    free(json);
    enn_error_clear();
    return out ? out : json_loads(text ? text : "", 0, NULL);
}

int train_state_check(const train_state *saved, const train_state *now)
{
    char a[64], b[64];
    const char *what = NULL;
#define DIFF(field, name, fmt, cast)                                            \
    if (!what && saved->field != now->field) {                                  \
        what = name;                                                            \
        snprintf(a, sizeof a, fmt, (cast)saved->field);                         \
        snprintf(b, sizeof b, fmt, (cast)now->field);                           \
    }
    if (strcmp(saved->data, now->data)) {
        what = "the data";
        snprintf(a, sizeof a, "%s", saved->data);
        snprintf(b, sizeof b, "%s", now->data);
    }
    DIFF(train_samples, "training samples", "%llu", unsigned long long)
    if (saved->have_data_crc32 && now->have_data_crc32) {
        DIFF(data_crc32, "training and validation samples of CRC-32", "%08x", unsigned)
    }
    DIFF(batch, "--batch", "%u", unsigned)
    DIFF(accumulate, "--accumulate", "%u", unsigned)
    DIFF(processes, "processes", "%u", unsigned)
    DIFF(seed, "--seed", "%llu", unsigned long long)
    if (!what && saved->lr_schedule != now->lr_schedule) {
        static const char *const shapes[] = {"constant", "cosine", "linear"};
        what = "--lr-schedule";
        snprintf(a, sizeof a, "%s", saved->lr_schedule >= 0 && saved->lr_schedule < 3 ? shapes[saved->lr_schedule] : "?");
        snprintf(b, sizeof b, "%s", now->lr_schedule >= 0 && now->lr_schedule < 3 ? shapes[now->lr_schedule] : "?");
    }
    DIFF(warmup, "--warmup", "%u", unsigned)
#undef DIFF
    json_t *ja = normalized_config(saved->config), *jb = normalized_config(now->config);
    if (!what && !(ja && jb && json_equal(ja, jb))) {
        char key[128] = "";
        if (ja && jb) first_difference(ja, jb, key, sizeof key);
        fprintf(stderr, "enn train: --resume: the run's model differs from this one's%s%s%s (resume with the run's "
                        "flags)\n", key[0] ? " in \"" : "", key, key[0] ? "\"" : "");
        what = "the model";
    }
    json_decref(ja);
    json_decref(jb);
    if (what && !strcmp(what, "the model")) return -1;
    if (!what) return 0;
    fprintf(stderr, "enn train: --resume: the run used %s %s, this one %s (resume with the run's settings)\n", what, a, b);
    return -1;
}
