/* Flags and config files of `enn train` / `enn eval` (see train_options.h). */
#include "train_options.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli_values.h"

void train_options_init(train_options *o)
{
    memset(o, 0, sizeof *o);
    o->validation_split = 0.1;
    o->seq_len = 0;
    o->text_fraction = 1.0;
    o->input_scale = 1.0;
    enn_cli_model_flags_init(&o->model, ENN_CLI_FROM_DATA);
    o->epochs = 50;
    o->batch = 128;
    o->accumulate = 1;
    o->early_stopping = 1;
    o->restore_best = 1;
    o->patience = 3;
    o->plateau = 1;
    o->plateau_factor = 0.5f;
    o->plateau_patience = 2;
    o->min_learning_rate = 1e-5f;
    o->report = 1;
    o->plots = 1;
}

const char *data_kind_name(data_kind k)
{
    static const char *names[] = {"none", "fashion-mnist", "mnist-idx", "cifar10", "wikitext", "csv", "npy", "mnist-npz"};
    return k <= DATA_MNIST_NPZ ? names[k] : "?";
}

/* The model and optimizer flags' defaults here: the spec's, and the paper's two layers of
 * 128 and 64 units for a baseline. */
static void train_defaults(enn_model_config *c)
{
    enn_model_config_init(c, ENN_HEAD_CLASSIFIER);
    c->layers = 2;
    c->layer_units[0] = 128;
    c->layer_units[1] = 64;
}

void train_options_usage(FILE *f, int for_eval)
{
    if (for_eval)
        fprintf(f, "usage: enn eval CHECKPOINT --data SET [options]\n\n"
                   "Evaluates a saved model on the test part of a data set: loss, accuracy, perplexity\n"
                   "(language models), a confusion matrix and per-class precision/recall/F1.\n\n");
    else
        fprintf(f, "usage: enn train --data SET [options]\n\n"
                   "Trains a model with the protocol of the paper's experiments (Adam 1e-3, per-tensor\n"
                   "clipnorm 1.0, batch 128, early stopping on validation loss with patience 3 and the\n"
                   "best weights restored, reduce-on-plateau 0.5/2/1e-5, the last 10%% of the training\n"
                   "data for validation), then prints the test metrics. Ctrl-C stops after the current\n"
                   "batch and saves. Later settings win; --config FILE reads `flag value` lines\n"
                   "(without the leading --; # starts a comment) at its place on the command line.\n"
                   "Flags take `--flag value` or `--flag=value`.\n\n");
    fprintf(f,
            "data:\n"
            "  --data fashion-mnist        /usr/share/datasets/fashion-mnist (apt install dataset-fashion-mnist)\n"
            "  --data mnist-idx DIR        {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]\n"
            "  --data mnist-npz FILE       Keras's mnist.npz (x_train, y_train, x_test, y_test)\n"
            "  --data cifar10 DIR          data_batch_{1..5}.bin, test_batch.bin (rows: T=32, d=96); the\n"
            "                              python version: convert with tools/cifar10_to_binary.py\n"
            "  --data wikitext DIR         wiki.{train,test}.tokens, or .raw (language model)\n"
            "                              (each DIR may be the folder its archive unpacks into)\n"
            "  --data csv FILE | --data npy X.npy Y.npy   (and --test-data csv|npy ... for a test set)\n"
            "  --train-samples N           first N training samples (default all)\n"
            "  --test-samples N            first N test samples (default all)\n"
            "  --validation-split F        0.1; --shuffle-split: a random validation set, not the last F\n"
            "  --seq-len T                 wikitext span length (32); csv steps per row (1)\n"
            "  --vocab-size V              wikitext: most ids (default: every token)\n"
            "  --text-fraction F           wikitext: fraction of training lines (the paper: 0.25)\n"
            "  --target-columns C[,C...]   csv: the regression targets' columns (default -1, the last)\n"
            "  --label-column C            csv: class ids in column C (0: the first): a classifier\n"
            "  --input-scale S             csv, npy: inputs times S (1/255 = 0.00392157 for pixels)\n"
            "  (enn eval takes the run's --seq-len, --label-column, --target-columns and\n"
            "  --input-scale from its checkpoint when not given)\n"
            "%s", for_eval ? "" : "model (the data set decides the head, input, sequence length and outputs; --batch the\n"
                                 "largest batch):\n");
    if (for_eval) {
        fprintf(f, "  (the model flags and --batch are read, so that one --config file serves enn train\n"
                   "  and enn eval, but the checkpoint decides the model)\n"
                   "eval:\n"
                   "  --out DIR                   the vocabulary (wikitext) and the pictures: confusion matrix,\n"
                   "                              per-class scores (default: the checkpoint's directory)\n"
                   "  --predictions FILE          one CSV row per test sample: classifier index, label,\n"
                   "                              predicted class, class probabilities; regressor index\n"
                   "                              (and step), targets, outputs\n"
                   "  --device NAME|INDEX --plain --no-report --no-plots --config FILE\n");
        return;
    }
    enn_model_config defaults;
    train_defaults(&defaults);
    enn_cli_model_help(f, ENN_CLI_FROM_DATA, &defaults);
    fprintf(f,
            "training:\n"
            "  --epochs E (50) --batch B (128)\n"
            "  --accumulate K              each batch as K micro-batches in turn, their gradients\n"
            "                              summed before one update (the memory of B/K samples)\n"
            "  --patience P (3) --no-early-stopping --no-restore-best\n"
            "  --plateau-factor F (0.5) --plateau-patience P (2) --min-lr R (1e-5) --no-plateau\n"
            "  --lr-schedule constant|cosine|linear\n"
            "                              per update instead of reduce-on-plateau: after --warmup N\n"
            "                              updates rising from 0, from --lr down to --min-lr at the\n"
            "                              end of the last epoch (default constant)\n"
            "  --device NAME|INDEX --max-time SECONDS\n"
            "  --out DIR                   metrics.csv, metrics.jsonl, best.safetensors, and\n"
            "                              last.safetensors + last.json after every epoch and when\n"
            "                              cut short (default runs/<data>); one enn train at a\n"
            "                              time writes there (another is refused)\n"
            "  --resume                    go on with the run in --out where it stopped (same flags)\n"
            "  --overwrite                 start afresh in an --out that holds a run (else refused)\n"
            "  --plain                     progress as plain lines even on a terminal\n"
            "  --no-report                 no confusion matrix or per-class scores\n"
            "  --no-plots                  no trace-monitor pictures (ENN: <out>/plots/*.png, drawn\n"
            "                              after every epoch: trace heatmap, initial trace, change,\n"
            "                              statistics over epochs, attention over time, curves)\n"
            "  --report, --plots           turn them back on (the default; after a --config file's\n"
            "                              --no-report or --no-plots)\n"
            "presets:\n"
            "  --quick                     the main job's subset: the first %d training samples,\n"
            "                              %d epochs, training stopped after %.0f s at the latest\n"
            "  --full                      undoes --quick: all the data, up to 50 epochs\n"
            "  --paper                     the reference package's choices: last-state pooling,\n"
            "                              the token id as a float feature (language model),\n"
            "                              a quarter of WikiText's training lines\n"
            "  --config FILE               flags from a file\n"
            "data parallel: mpirun -np P enn train ... trains on P processes (GPUs, machines), each\n"
            "on its share of every batch, with the gradients averaged (enn built with MPI)\n",
            QUICK_TRAIN_SAMPLES, QUICK_EPOCHS, QUICK_MAX_TIME);
}

/* ------------------------------------------------------------------ flags */
static int copy_path(const char *flag, const char *v, char *dst, size_t size)
{
    if (!v || !*v) return enn_cli_bad(flag, v, "a path");
    if (strlen(v) >= size) return enn_cli_bad(flag, v, "a path short enough");
    memcpy(dst, v, strlen(v) + 1);
    return 0;
}

/* --data NAME ARGS...: the number of arguments depends on NAME. Returns the number of
 * argv entries consumed after the flag, or -1. */
static int parse_data(const char *flag, int argc, char **argv, int i, data_spec *d)
{
    static const char *const names[] = {"fashion-mnist", "mnist-idx", "cifar10", "wikitext", "csv", "npy", "mnist-npz",
                                        NULL};
    static const int args[] = {0, 1, 1, 1, 1, 2, 1};
    int k;
    if (i >= argc) return enn_cli_bad(flag, NULL, "a data set");
    if (enn_cli_word(flag, argv[i], names, &k)) return -1;
    memset(d, 0, sizeof *d);
    d->kind = (data_kind)(k + 1);
    for (int a = 0; a < args[k]; a++) {
        if (i + 1 + a >= argc || !strncmp(argv[i + 1 + a], "--", 2)) {
            fprintf(stderr, "enn: %s %s takes %d path%s\n", flag, names[k], args[k], args[k] > 1 ? "s" : "");
            return -1;
        }
        if (copy_path(flag, argv[i + 1 + a], d->path[a], sizeof d->path[a])) return -1;
    }
    return 1 + args[k];
}

static int parse_config(train_options *o, const char *path, int for_eval, int depth);

/* One flag at argv[i]; returns how many entries it used, 0 for an unknown flag, -1 on
 * an error, -2 for --help. `attached`: argv[i + 1] came as --flag=value. */
static int parse_flag(train_options *o, int argc, char **argv, int i, int for_eval, int depth, int attached)
{
    const char *f = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    /* The model flags (model_options.c): 1 or 2 entries used, 0 for another flag. */
    int used = enn_cli_model_option(&o->model, f, v, attached);
    if (used) return used;
#define FLAG(name) (!strcmp(f, name))
#define VALUE(expr) return (expr) ? -1 : 2
#define SWITCH(stmt) \
    do {             \
        stmt;        \
        return 1;    \
    } while (0)
    if (FLAG("--help") || FLAG("-h")) return -2;
    /* On enn eval's command line the training flags would do nothing: refused (a --config
     * file, which serves both commands, may hold them). */
    static const char *const training_only[] = {
        "--epochs", "--accumulate", "--patience", "--no-early-stopping", "--no-restore-best", "--plateau-factor",
        "--plateau-patience", "--min-lr", "--no-plateau", "--lr-schedule", "--warmup", "--max-time", "--resume",
        "--overwrite", "--quick", "--full", NULL};
    for (int k = 0; for_eval && !depth && training_only[k]; k++)
        if (FLAG(training_only[k])) {
            fprintf(stderr, "enn eval: %s is a flag of enn train; it does nothing to an evaluation\n", f);
            return -1;
        }
    if (FLAG("--data")) {
        int used = parse_data(f, argc, argv, i + 1, &o->data);
        return used < 0 ? -1 : used + 1;
    }
    if (FLAG("--test-data")) {
        int used = parse_data(f, argc, argv, i + 1, &o->test_data);
        if (used < 0) return -1;
        if (o->test_data.kind != DATA_CSV && o->test_data.kind != DATA_NPY) {
            fprintf(stderr, "enn: --test-data is for csv and npy data; the other sets have their own test files\n");
            return -1;
        }
        return used + 1;
    }
    if (FLAG("--config")) {
        if (!v) return enn_cli_bad(f, v, "a file");
        return parse_config(o, v, for_eval, depth + 1) ? -1 : 2;
    }
    if (FLAG("--train-samples")) {
        uint64_t n;
        if (enn_cli_u64(f, v, 0, SIZE_MAX, &n)) return -1;
        o->train_samples = (size_t)n;
        return 2;
    }
    if (FLAG("--test-samples")) {
        uint64_t n;
        if (enn_cli_u64(f, v, 0, SIZE_MAX, &n)) return -1;
        o->test_samples = (size_t)n;
        return 2;
    }
    if (FLAG("--validation-split")) VALUE(enn_cli_double(f, v, 0.0, 0.9, &o->validation_split));
    if (FLAG("--shuffle-split")) SWITCH(o->shuffle_split = 1);
    if (FLAG("--seq-len")) VALUE(enn_cli_u32(f, v, 1, 1u << 20, &o->seq_len));
    if (FLAG("--vocab-size")) VALUE(enn_cli_u32(f, v, 3, UINT32_MAX, &o->vocab_size));
    if (FLAG("--text-fraction")) VALUE(enn_cli_double(f, v, 1e-6, 1.0, &o->text_fraction));
    if (FLAG("--target-columns") || FLAG("--label-column")) {
        /* C[,C...]: column numbers from 0, negative from the end (-1: the last). */
        int labels = FLAG("--label-column"), max = labels ? 1 : 8;
        char want[96], buf[128], *save = NULL;
        snprintf(want, sizeof want, labels ? "a column number (0: the first, -1: the last)"
                                           : "1 to %d column numbers like 0 or 0,-1 (-1: the last)", max);
        if (!v || strlen(v) >= sizeof buf || !v[0] || v[strlen(v) - 1] == ',' || strstr(v, ",,") || v[0] == ',')
            return enn_cli_bad(f, v, want);
        snprintf(buf, sizeof buf, "%s", v);
        uint32_t n = 0;
        for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            char *end;
            long c = strtol(t, &end, 10);
            if (n == (uint32_t)max || *end || end == t || c < -100000 || c > 100000) return enn_cli_bad(f, v, want);
            o->csv_columns[n++] = (int)c;
        }
        o->csv_column_count = n;
        o->csv_labels = labels;
        return 2;
    }
    if (FLAG("--input-scale")) {
        o->input_scale_given = 1;
        VALUE(enn_cli_double(f, v, 1e-12, 1e12, &o->input_scale));
    }

    if (FLAG("--epochs")) VALUE(enn_cli_u32(f, v, 1, 1u << 20, &o->epochs));
    if (FLAG("--batch")) VALUE(enn_cli_u32(f, v, 1, 1u << 16, &o->batch));
    if (FLAG("--accumulate")) VALUE(enn_cli_u32(f, v, 1, 1u << 16, &o->accumulate));
    if (FLAG("--patience")) VALUE(enn_cli_u32(f, v, 1, 1u << 20, &o->patience));
    if (FLAG("--no-early-stopping")) SWITCH(o->early_stopping = 0);
    if (FLAG("--no-restore-best")) SWITCH(o->restore_best = 0);
    if (FLAG("--plateau-factor")) VALUE(enn_cli_float(f, v, 1e-6, 0.999999, &o->plateau_factor));
    if (FLAG("--plateau-patience")) VALUE(enn_cli_u32(f, v, 1, 1u << 20, &o->plateau_patience));
    if (FLAG("--min-lr")) VALUE(enn_cli_float(f, v, 0.0, 1e3, &o->min_learning_rate));
    if (FLAG("--no-plateau")) SWITCH(o->plateau = 0);
    if (FLAG("--lr-schedule")) {
        static const char *const shapes[] = {"constant", "cosine", "linear", NULL};
        VALUE(enn_cli_word(f, v, shapes, &o->lr_schedule));
    }
    if (FLAG("--warmup")) VALUE(enn_cli_u32(f, v, 0, UINT32_MAX, &o->warmup));
    if (FLAG("--device")) VALUE(copy_path(f, v, o->device, sizeof o->device));
    if (FLAG("--max-time")) VALUE(enn_cli_double(f, v, 0.0, 1e9, &o->max_time));
    if (FLAG("--out")) VALUE(copy_path(f, v, o->out_dir, sizeof o->out_dir));
    if (FLAG("--plain")) SWITCH(o->plain = 1);
    if (FLAG("--resume")) SWITCH(o->resume = 1);
    if (FLAG("--overwrite")) SWITCH(o->overwrite = 1);
    if (FLAG("--predictions")) {
        if (!for_eval) {
            fprintf(stderr, "enn: --predictions is a flag of enn eval\n");
            return -1;
        }
        VALUE(copy_path(f, v, o->predictions, sizeof o->predictions));
    }
    if (FLAG("--no-report")) SWITCH(o->report = 0);
    if (FLAG("--report")) SWITCH(o->report = 1);
    if (FLAG("--no-plots")) SWITCH(o->plots = 0);
    if (FLAG("--plots")) SWITCH(o->plots = 1);
    if (FLAG("--quick"))
        SWITCH((o->quick = 1, o->train_samples = QUICK_TRAIN_SAMPLES, o->epochs = QUICK_EPOCHS,
                o->max_time = QUICK_MAX_TIME));
    if (FLAG("--full")) SWITCH((o->quick = 0, o->train_samples = 0, o->epochs = 50, o->max_time = 0));
    if (FLAG("--paper")) SWITCH((o->paper = 1, o->text_fraction = 0.25));
#undef FLAG
#undef VALUE
#undef SWITCH
    return 0;
}

static int parse_tokens(train_options *o, int argc, char **argv, int for_eval, int depth)
{
    for (int i = 0; i < argc;) {
        if (strncmp(argv[i], "--", 2) && strcmp(argv[i], "-h")) {
            if (for_eval && !o->checkpoint[0]) {
                if (copy_path("CHECKPOINT", argv[i], o->checkpoint, sizeof o->checkpoint)) return -1;
                i++;
                continue;
            }
            fprintf(stderr, "enn: unexpected argument '%s'\n", argv[i]);
            return -1;
        }
        const char *eq = strchr(argv[i], '=');
        int used;
        if (eq) {
            /* "--flag=value": the flag, the value and what follows, as if written apart. */
            char name[128], **split = malloc((size_t)(argc - i + 1) * sizeof *split);
            if (!split) return -1;
            snprintf(name, sizeof name, "%.*s", (int)(eq - argv[i]), argv[i]);
            split[0] = name;
            split[1] = (char *)(eq + 1);
            memcpy(split + 2, argv + i + 1, (size_t)(argc - i - 1) * sizeof *split);
            used = parse_flag(o, argc - i + 1, split, 0, for_eval, depth, 1);
            free(split);
            if (used == 1) {
                fprintf(stderr, "enn: %s takes no value\n", name);
                return -1;
            }
            if (used > 1) used--;
        } else {
            used = parse_flag(o, argc, argv, i, for_eval, depth, 0);
        }
        if (used == -2) return 1;
        if (used < 0) return -1;
        if (used == 0) {
            fprintf(stderr, "enn: unknown option '%s' (see --help)\n", argv[i]);
            return -1;
        }
        i += used;
    }
    return 0;
}

/* A config file: each line `flag value...` (the leading -- optional), `#` comments. */
static int parse_config(train_options *o, const char *path, int for_eval, int depth)
{
    if (depth > 4) {
        fprintf(stderr, "enn: %s: config files include each other too deeply\n", path);
        return -1;
    }
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "enn: %s: %s\n", path, strerror(errno));
        return -1;
    }
    char line[4096];
    int rc = 0, lineno = 0;
    while (!rc && fgets(line, sizeof line, f)) {
        lineno++;
        char *hash = strchr(line, '#');
        if (hash) *hash = 0;
        char *tokens[16], flag[128], *save = NULL;
        int n = 0;
        for (char *t = strtok_r(line, " \t\r\n=", &save); t && n < 16; t = strtok_r(NULL, " \t\r\n=", &save))
            tokens[n++] = t;
        if (!n) continue;
        snprintf(flag, sizeof flag, "%s%s", strncmp(tokens[0], "--", 2) ? "--" : "", tokens[0]);
        tokens[0] = flag;
        int r = parse_tokens(o, n, tokens, 0, depth);
        if (r) {
            fprintf(stderr, "enn: (in %s, line %d)\n", path, lineno);
            rc = -1;
        }
    }
    fclose(f);
    return rc;
}

int train_options_parse(train_options *o, int argc, char **argv, int for_eval)
{
    int r = parse_tokens(o, argc - 1, argv + 1, for_eval, 0);
    if (r) {
        if (r > 0) train_options_usage(stdout, for_eval);
        return r;
    }
    if (o->data.kind == DATA_NONE) {
        fprintf(stderr, "enn: which data? --data fashion-mnist, mnist-idx DIR, mnist-npz FILE, cifar10 DIR, wikitext DIR, csv FILE "
                        "or npy X Y (see --help)\n");
        return -1;
    }
    if (for_eval && !o->checkpoint[0]) {
        fprintf(stderr, "enn eval: which checkpoint? usage: enn eval CHECKPOINT --data SET\n");
        return -1;
    }
    /* Flags that would be ignored for this data are refused, not ignored. */
    int table = o->data.kind == DATA_CSV || o->data.kind == DATA_NPY;
    if (o->test_data.kind != DATA_NONE && !table) {
        fprintf(stderr, "enn: --test-data goes with --data csv or npy; %s has its own test files\n",
                data_kind_name(o->data.kind));
        return -1;
    }
    if (o->csv_column_count && o->data.kind != DATA_CSV) {
        fprintf(stderr, "enn: --%s is for csv data; %s has its own %s\n",
                o->csv_labels ? "label-column" : "target-columns", data_kind_name(o->data.kind),
                o->csv_labels ? "labels" : "targets");
        return -1;
    }
    if (o->input_scale != 1.0 && !table) {
        fprintf(stderr, "enn: --input-scale is for csv and npy data; %s is scaled as its format says\n",
                data_kind_name(o->data.kind));
        return -1;
    }
    if (o->seq_len && o->data.kind != DATA_WIKITEXT && o->data.kind != DATA_CSV) {
        fprintf(stderr, "enn: --seq-len is for wikitext (span length) and csv (steps per row); %s sets its own "
                        "sequence length\n", data_kind_name(o->data.kind));
        return -1;
    }
    /* enn eval reads the vocabulary and draws its pictures beside the checkpoint (where
     * enn train wrote them) unless --out says otherwise. */
    const char *slash = strrchr(o->checkpoint, '/');
    if (!o->out_dir[0] && for_eval)
        snprintf(o->out_dir, sizeof o->out_dir, "%.*s", slash ? (int)(slash - o->checkpoint) : 1,
                 slash ? o->checkpoint : ".");
    if (!o->out_dir[0]) snprintf(o->out_dir, sizeof o->out_dir, "runs/%s", data_kind_name(o->data.kind));
    return 0;
}

int train_options_model_config(const train_options *o, enn_head_kind head, uint32_t features, uint32_t seq_len,
                               uint32_t outputs, enn_model_config *c)
{
    enn_model_config_init(c, head);
    if (o->model.values.kind != ENN_MODEL_ENN) {
        /* The paper's baselines: two stacked layers of 128 and 64 units. */
        c->layers = 2;
        c->layer_units[0] = 128;
        c->layer_units[1] = 64;
    }
    if (o->paper) {
        /* The reference package: last-state pooling, the token id as a float feature. */
        c->pooling = ENN_POOL_LAST;
        c->lm_input = ENN_LM_FLOAT_FEATURE;
    }
    c->input_features = features;
    c->max_seq_len = seq_len;
    c->max_batch = o->batch;
    c->outputs = outputs;
    /* The flags win over the presets, wherever they stand on the command line. */
    enn_cli_model_apply(&o->model, c);
    return enn_cli_model_finish(&o->model, c, 0);
}
