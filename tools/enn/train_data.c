/* Loading the data sets that `enn train` and `enn eval` name (see train_data.h). */
#include "train_data.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>
#include <zlib.h>

static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* DIR/NAME, or DIR/NAME.gz when only the compressed file is there; 0 if found. */
static int find_quiet(const char *dir, const char *name, char *out, size_t size)
{
    snprintf(out, size, "%s/%s", dir, name);
    if (exists(out)) return 0;
    snprintf(out, size, "%s/%s.gz", dir, name);
    return exists(out) ? 0 : -1;
}

/* The first of `names` (each also as .gz) in DIR; else a message listing them. */
static int find_file_named(const char *dir, const char *const *names, char *out, size_t size)
{
    for (int i = 0; names[i]; i++)
        if (!find_quiet(dir, names[i], out, size)) return 0;
    fprintf(stderr, "enn: %s/%s (or .gz) not found", dir, names[0]);
    for (int i = 1; names[i]; i++) fprintf(stderr, "%s %s", names[i + 1] ? "," : " or", names[i]);
    fprintf(stderr, "\n");
    return -1;
}

static int find_file(const char *dir, const char *name, char *out, size_t size)
{
    const char *names[] = {name, NULL};
    return find_file_named(dir, names, out, size);
}

/* The folder of a data set: DIR itself, or the first of `subdirs` below it (the layouts
 * the archives unpack into) that holds `probe` (plain or .gz). A file given for DIR (the
 * archive itself, most often) is named, not searched. */
static int find_data_dir(const char *set, const char *dir, const char *const *subdirs, const char *probe, char *out,
                         size_t size)
{
    if (!is_dir(dir)) {
        fprintf(stderr, "enn: --data %s %s: %s; it wants the folder that holds %s%s\n", set, dir,
                exists(dir) ? "this is a file, not a folder" : "no such folder", probe,
                exists(dir) && (strstr(dir, ".tar") || strstr(dir, ".tgz") || strstr(dir, ".zip"))
                    ? " (extract the archive first)" : "");
        return -1;
    }
    char file[1200];
    snprintf(out, size, "%s", dir);
    if (!find_quiet(dir, probe, file, sizeof file)) return 0;
    for (int i = 0; subdirs[i]; i++) {
        char sub[1100];
        snprintf(sub, sizeof sub, "%s/%s", dir, subdirs[i]);
        if (!find_quiet(sub, probe, file, sizeof file)) {
            snprintf(out, size, "%s", sub);
            return 0;
        }
    }
    return 0; /* not there: the loader names what it looked for */
}

static int failed(const char *what)
{
    fprintf(stderr, "enn: %s: %s\n", what, enn_last_error());
    return -1;
}

/* Keeps the first n samples (n = 0 or more than there are: all). */
static int keep_first(enn_dataset *ds, size_t n)
{
    if (!n || n >= ds->n) return 0;
    enn_dataset part = {0};
    if (enn_dataset_slice(ds, 0, n, &part)) return failed("taking a subset");
    enn_dataset_free(ds);
    *ds = part;
    return 0;
}

/* MNIST's IDX files as distributed (train-images-idx3-ubyte), as some unpackers name them
 * (train-images.idx3-ubyte), and in torchvision's MNIST/raw/ or FashionMNIST/raw/. */
static int load_idx_dir(const char *given, int need_train, train_data *d)
{
    static const char *const subdirs[] = {"MNIST/raw", "FashionMNIST/raw", "raw", NULL};
    static const char *const train_images[] = {"train-images-idx3-ubyte", "train-images.idx3-ubyte", NULL};
    static const char *const train_labels[] = {"train-labels-idx1-ubyte", "train-labels.idx1-ubyte", NULL};
    static const char *const test_images[] = {"t10k-images-idx3-ubyte", "t10k-images.idx3-ubyte", NULL};
    static const char *const test_labels[] = {"t10k-labels-idx1-ubyte", "t10k-labels.idx1-ubyte", NULL};
    char dir[1100], images[1200], labels[1200];
    if (strlen(given) > 4 && !strcmp(given + strlen(given) - 4, ".npz")) {
        fprintf(stderr, "enn: --data mnist-idx %s: this is Keras's mnist.npz; use --data mnist-npz %s\n", given, given);
        return -1;
    }
    if (find_data_dir("mnist-idx", given, subdirs, "t10k-labels-idx1-ubyte", dir, sizeof dir)) return -1;
    if (need_train) {
        if (find_file_named(dir, train_images, images, sizeof images) ||
            find_file_named(dir, train_labels, labels, sizeof labels))
            return -1;
        if (enn_load_idx_pair(images, labels, &d->train)) return failed("training data");
    }
    if (find_file_named(dir, test_images, images, sizeof images) ||
        find_file_named(dir, test_labels, labels, sizeof labels))
        return -1;
    if (enn_load_idx_pair(images, labels, &d->test)) return failed("test data");
    return 0;
}

/* The binary version (cifar-10-binary.tar.gz unpacks into cifar-10-batches-bin/). The
 * python version (Keras's download) is named, with the way to convert it. */
static int load_cifar10(const char *given, int need_train, train_data *d)
{
    static const char *const subdirs[] = {"cifar-10-batches-bin", NULL};
    char paths[5][1200], test[1200], base[1100], pickled[1200];
    const char *list[5];
    if (find_data_dir("cifar10", given, subdirs, "test_batch.bin", base, sizeof base)) return -1;
    snprintf(pickled, sizeof pickled, "%s/cifar-10-batches-py/test_batch", given);
    int python = exists(pickled);
    snprintf(pickled, sizeof pickled, "%s/test_batch", given);
    python = python || exists(pickled);
    if (python && find_quiet(base, "test_batch.bin", test, sizeof test)) {
        fprintf(stderr, "enn: %s holds CIFAR-10's python version (pickled batches, as Keras downloads it); enn reads "
                        "the binary version. Convert it with\n  python3 tools/cifar10_to_binary.py %s\n"
                        "or download cifar-10-binary.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html\n",
                given, given);
        return -1;
    }
    if (need_train) {
        for (int i = 0; i < 5; i++) {
            char name[32];
            snprintf(name, sizeof name, "data_batch_%d.bin", i + 1);
            if (find_file(base, name, paths[i], sizeof paths[i])) return -1;
            list[i] = paths[i];
        }
        if (enn_load_cifar10(list, 5, &d->train)) return failed("CIFAR-10 training batches");
    }
    if (find_file(base, "test_batch.bin", test, sizeof test)) return -1;
    const char *t = test;
    if (enn_load_cifar10(&t, 1, &d->test)) return failed("CIFAR-10 test batch");
    return 0;
}

static int load_wikitext(const train_options *o, int need_train, train_data *d)
{
    /* WikiText's archives unpack into wikitext-103/ (wiki.*.tokens) or wikitext-103-raw/
     * (wiki.*.raw: the same words without <unk>); WikiText-2 likewise. */
    static const char *const subdirs[] = {"wikitext-103", "wikitext-103-raw", "wikitext-2", "wikitext-2-raw", NULL};
    static const char *const train_names[] = {"wiki.train.tokens", "wiki.train.raw", NULL};
    char train[1200], test[1200], vocab_path[1100], dir[1100];
    if (find_data_dir("wikitext", o->data.path[0], subdirs, "wiki.test.tokens", dir, sizeof dir)) return -1;
    if (!strcmp(dir, o->data.path[0])) { /* no .tokens there: the raw variant's folders */
        static const char *const raw[] = {"wikitext-103-raw", "wikitext-2-raw", NULL};
        if (find_data_dir("wikitext", o->data.path[0], raw, "wiki.test.raw", dir, sizeof dir)) return -1;
    }
    if (find_file_named(dir, train_names, train, sizeof train)) return -1;
    /* The test file of the same variant as the training file. */
    int is_raw = strstr(train, ".raw") != NULL;
    if (find_file(dir, is_raw ? "wiki.test.raw" : "wiki.test.tokens", test, sizeof test)) return -1;
    enn_text_options text = {.max_size = o->vocab_size, .fraction = o->text_fraction, .seed = o->model.values.seed};
    enn_span_options spans = {.T = o->seq_len ? o->seq_len : 32};
    if (spans.T < 2) {
        fprintf(stderr, "enn: --seq-len %u: a language model's spans need at least 2 tokens (each step is scored on "
                        "the next token)\n", spans.T);
        return -1;
    }
    /* The vocabulary always comes from the (selected lines of the) training text, so that
     * `enn eval` gives the same ids as training did. */
    snprintf(vocab_path, sizeof vocab_path, "%s/vocab.txt", o->out_dir);
    if (!need_train && exists(vocab_path)) {
        if (enn_vocab_load(vocab_path, &d->vocab)) return failed(vocab_path);
    } else {
        if (!need_train)
            fprintf(stderr, "enn: no %s (enn train writes it beside its checkpoints): the vocabulary is rebuilt from "
                            "the training text, so --vocab-size, --text-fraction and --seed must be the run's\n",
                    vocab_path);
        if (enn_vocab_build(train, &text, &d->vocab)) return failed("building the vocabulary");
    }
    if (need_train && enn_load_tokens(train, d->vocab, &text, &spans, &d->train)) return failed(train);
    enn_text_options all = {.keep_case = text.keep_case};
    if (enn_load_tokens(test, d->vocab, &all, &spans, &d->test)) return failed(test);
    return 0;
}

static int load_table(const train_options *o, const data_spec *spec, enn_dataset *out)
{
    int rc;
    if (spec->kind == DATA_CSV) {
        enn_csv_options opt = {.header = -1, .T = o->seq_len, .target_columns = o->csv_columns,
                               .target_count = o->csv_column_count, .labels = o->csv_labels};
        rc = enn_load_csv(spec->path[0], &opt, out) ? failed(spec->path[0]) : 0;
    } else {
        rc = enn_load_npy_pair(spec->path[0], spec->path[1], out) ? failed(spec->path[0]) : 0;
    }
    if (!rc && o->input_scale != 1.0) {
        size_t count = out->n * (size_t)out->T * out->d;
        for (size_t i = 0; i < count; i++) out->x[i] = (float)(out->x[i] * o->input_scale);
    }
    return rc;
}

uint32_t train_data_layout_entry(const train_options *o, char text[512], enn_metadata *entry)
{
    size_t n = 0;
    if (o->seq_len) n += (size_t)snprintf(text + n, 512 - n, ",\"seq_len\":%u", o->seq_len);
    if (o->csv_column_count) {
        n += (size_t)snprintf(text + n, 512 - n, ",\"%s\":[", o->csv_labels ? "label_column" : "target_columns");
        for (uint32_t i = 0; i < o->csv_column_count; i++)
            n += (size_t)snprintf(text + n, 512 - n, "%s%d", i ? "," : "", o->csv_columns[i]);
        n += (size_t)snprintf(text + n, 512 - n, "]");
    }
    if (o->input_scale != 1.0) n += (size_t)snprintf(text + n, 512 - n, ",\"input_scale\":%.17g", o->input_scale);
    if (o->data.kind == DATA_WIKITEXT) n += (size_t)snprintf(text + n, 512 - n, ",\"words\":\"" WORD_RULES "\"");
    if (!n) return 0;
    text[0] = '{';   /* over the first comma */
    snprintf(text + n, 512 - n, "}");
    *entry = (enn_metadata){TRAIN_DATA_LAYOUT_KEY, text};
    return 1;
}

/* The recorded layout of a checkpoint, from its JSON; -1 after printing what is wrong. */
typedef struct data_layout {
    uint32_t seq_len;                /* 0: not recorded */
    int columns[8], labels;
    uint32_t column_count;
    double input_scale;              /* 1: not recorded */
    int words;                       /* the vocabulary's words were cut by WORD_RULES */
} data_layout;

static int parse_layout(const char *checkpoint, const char *text, data_layout *l)
{
    *l = (data_layout){.input_scale = 1.0};
    json_t *root = json_loads(text, 0, NULL);
    int ok = json_is_object(root);
    json_t *seq = ok ? json_object_get(root, "seq_len") : NULL;
    json_t *scale = ok ? json_object_get(root, "input_scale") : NULL;
    json_t *labels = ok ? json_object_get(root, "label_column") : NULL;
    json_t *targets = ok ? json_object_get(root, "target_columns") : NULL;
    const char *words = ok ? json_string_value(json_object_get(root, "words")) : NULL;
    l->words = words && !strcmp(words, WORD_RULES);
    json_t *columns = labels ? labels : targets;
    if (seq) {
        json_int_t v = json_integer_value(seq);
        ok = json_is_integer(seq) && v >= 1 && v <= (1 << 20);
        l->seq_len = (uint32_t)v;
    }
    if (ok && scale) {
        l->input_scale = json_number_value(scale);
        ok = json_is_number(scale) && l->input_scale > 0 && isfinite(l->input_scale);
    }
    if (ok && columns) {
        ok = !(labels && targets) && json_is_array(columns) && json_array_size(columns) >= 1 &&
             json_array_size(columns) <= 8;
        l->labels = labels != NULL;
    }
    for (size_t i = 0; ok && columns && i < json_array_size(columns); i++) {
        json_int_t c = json_integer_value(json_array_get(columns, i));
        ok = json_is_integer(json_array_get(columns, i)) && c >= -100000 && c <= 100000;
        l->columns[l->column_count++] = (int)c;
    }
    json_decref(root);
    if (!ok) fprintf(stderr, "enn: %s: metadata \"%s\" is not a data layout: %s\n", checkpoint, TRAIN_DATA_LAYOUT_KEY, text);
    return ok ? 0 : -1;
}

/* Appends " --flag value" to a line of flags. */
static void add_flag(char *line, size_t size, const char *flag, const char *value)
{
    size_t n = strlen(line);
    snprintf(line + n, size - n, " %s %s", flag, value);
}

static void columns_text(const int *columns, uint32_t count, char *out, size_t size)
{
    size_t n = 0;
    out[0] = '\0';
    for (uint32_t i = 0; i < count && n < size; i++) n += (size_t)snprintf(out + n, size - n, "%s%d", i ? "," : "", columns[i]);
}

/* Reads and parses checkpoint's layout (all defaults when it records none). */
static int read_layout(const char *checkpoint, data_layout *l)
{
    char *text = NULL;
    *l = (data_layout){.input_scale = 1.0};
    if (enn_checkpoint_metadata(checkpoint, TRAIN_DATA_LAYOUT_KEY, &text)) {
        fprintf(stderr, "enn: %s\n", enn_last_error());   /* (the message names the file) */
        return -1;
    }
    int rc = text ? parse_layout(checkpoint, text, l) : 0;
    free(text);
    return rc;
}

static void warn_other_words(const char *checkpoint)
{
    fprintf(stderr, "enn: warning: %s does not say how its vocabulary's words were cut: a language model of a libenn "
                    "from before words were cut as Python's str.lower().split() does, over all of Unicode (or one "
                    "written outside enn train). Words with capitals beyond Latin-1, Greek and Cyrillic, or with "
                    "spaces beyond ASCII, may now read as <unk>: train it again for exact results\n", checkpoint);
}

int train_data_check_words(const char *checkpoint)
{
    data_layout l;
    if (read_layout(checkpoint, &l)) return -1;
    if (!l.words) warn_other_words(checkpoint);
    return 0;
}

int train_data_layout_from_checkpoint(train_options *o, const char *checkpoint)
{
    data_layout l;
    if (read_layout(checkpoint, &l)) return -1;
    data_kind kind = o->data.kind;
    if (kind == DATA_WIKITEXT && !l.words) warn_other_words(checkpoint);
    char taken[600] = "", value[128];
    if (l.seq_len && (kind == DATA_CSV || kind == DATA_WIKITEXT)) {
        snprintf(value, sizeof value, "%u", l.seq_len);
        if (!o->seq_len) {
            o->seq_len = l.seq_len;
            add_flag(taken, sizeof taken, "--seq-len", value);
        } else if (o->seq_len != l.seq_len) {
            fprintf(stderr, "enn: note: the run read its data with --seq-len %s; --seq-len %u is used\n", value,
                    o->seq_len);
        }
    }
    if (l.column_count && kind == DATA_CSV) {
        const char *flag = l.labels ? "--label-column" : "--target-columns";
        columns_text(l.columns, l.column_count, value, sizeof value);
        if (!o->csv_column_count) {
            memcpy(o->csv_columns, l.columns, sizeof l.columns);
            o->csv_column_count = l.column_count;
            o->csv_labels = l.labels;
            add_flag(taken, sizeof taken, flag, value);
        } else if (o->csv_labels != l.labels || o->csv_column_count != l.column_count ||
                   memcmp(o->csv_columns, l.columns, l.column_count * sizeof l.columns[0])) {
            fprintf(stderr, "enn: note: the run read its data with %s %s; the columns given are used\n", flag, value);
        }
    }
    if (l.input_scale != 1.0 && (kind == DATA_CSV || kind == DATA_NPY)) {
        snprintf(value, sizeof value, "%.9g", l.input_scale);
        if (!o->input_scale_given) {
            o->input_scale = l.input_scale;
            add_flag(taken, sizeof taken, "--input-scale", value);
        } else if (o->input_scale != l.input_scale) {
            fprintf(stderr, "enn: note: the run read its data with --input-scale %s; --input-scale %.9g is used\n",
                    value, o->input_scale);
        }
    }
    if (taken[0]) printf("data read as the run read it:%s\n", taken);
    return 0;
}

/* What a data set trains on, in words: "class labels", "2 targets per sample", "tokens". */
static const char *describe_targets(const enn_dataset *ds, char *buf, size_t size)
{
    if (ds->labels) snprintf(buf, size, "class labels");
    else if (ds->y) snprintf(buf, size, "%u target%s per sample", ds->k, ds->k == 1 ? "" : "s");
    else snprintf(buf, size, ds->tokens ? "tokens" : "nothing to train on");
    return buf;
}

int train_data_load(const train_options *o, int need_train, train_data *d)
{
    memset(d, 0, sizeof *d);
    int rc = 0;
    switch (o->data.kind) {
    case DATA_FASHION_MNIST:
        if (!exists(FASHION_MNIST_DIR "/t10k-labels-idx1-ubyte.gz") &&
            !exists(FASHION_MNIST_DIR "/t10k-labels-idx1-ubyte")) {
            fprintf(stderr, "enn: Fashion-MNIST is not installed in %s: install it with\n"
                            "  sudo apt-get install dataset-fashion-mnist   (tools/setup.sh does)\n"
                            "or use --data mnist-idx DIR with the IDX files\n",
                    FASHION_MNIST_DIR);
            return -1;
        }
        rc = load_idx_dir(FASHION_MNIST_DIR, need_train, d);
        break;
    case DATA_MNIST_IDX: rc = load_idx_dir(o->data.path[0], need_train, d); break;
    case DATA_MNIST_NPZ:
        rc = enn_load_mnist_npz(o->data.path[0], need_train ? &d->train : NULL, &d->test) ? failed(o->data.path[0]) : 0;
        break;
    case DATA_CIFAR10: rc = load_cifar10(o->data.path[0], need_train, d); break;
    case DATA_WIKITEXT: rc = load_wikitext(o, need_train, d); break;
    case DATA_CSV:
    case DATA_NPY:
        if (need_train) rc = load_table(o, &o->data, &d->train);
        /* csv/npy: the file is the training data, and --test-data names a test set;
         * `enn eval` evaluates on --test-data, or else on the --data file itself. */
        if (!rc && o->test_data.kind != DATA_NONE) rc = load_table(o, &o->test_data, &d->test);
        else if (!rc && !need_train) rc = load_table(o, &o->data, &d->test);
        break;
    default: fprintf(stderr, "enn: no data set named\n"); return -1;
    }
    if (!rc && need_train) rc = keep_first(&d->train, o->train_samples);
    if (!rc) rc = keep_first(&d->test, o->test_samples);
    if (rc) {
        train_data_free(d);
        return -1;
    }
    const enn_dataset *any = need_train ? &d->train : &d->test;
    if (!any->n) {
        fprintf(stderr, "enn: the data set has no samples\n");
        train_data_free(d);
        return -1;
    }
    if (any->tokens) {
        d->head = ENN_HEAD_LANGUAGE_MODEL;
        d->outputs = enn_vocab_size(d->vocab);
    } else if (any->labels) {
        d->head = ENN_HEAD_CLASSIFIER;
        d->outputs = d->train.num_classes > d->test.num_classes ? d->train.num_classes : d->test.num_classes;
        if (d->outputs < 2) d->outputs = 2;
    } else if (any->y) {
        d->head = ENN_HEAD_REGRESSOR;
        d->outputs = any->k;
    } else {
        fprintf(stderr, "enn: the data set has no labels or targets to train on\n");
        train_data_free(d);
        return -1;
    }
    /* A --test-data set of another task or width than the training set: refused now,
     * not after training. */
    char test_what[48], train_what[48];
    if (need_train && d->test.n &&
        strcmp(describe_targets(&d->test, test_what, sizeof test_what),
               describe_targets(&d->train, train_what, sizeof train_what))) {
        fprintf(stderr, "enn: the test set holds %s but the training set %s\n", test_what, train_what);
        train_data_free(d);
        return -1;
    }
    if (d->test.n && (d->test.T != any->T || d->test.d != any->d)) {
        fprintf(stderr, "enn: test samples are [%u, %u] but training samples are [%u, %u]\n", d->test.T, d->test.d,
                any->T, any->d);
        train_data_free(d);
        return -1;
    }
    return 0;
}

void train_data_free(train_data *d)
{
    enn_dataset_free(&d->train);
    enn_dataset_free(&d->test);
    enn_vocab_free(d->vocab);
    memset(d, 0, sizeof *d);
}

const char *const *train_data_class_names(data_kind kind, uint32_t classes)
{
    static const char *const fashion[10] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                            "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
    /* Files of the layout given elsewhere may hold labels past 9: those have no name. */
    return kind == DATA_FASHION_MNIST && classes <= 10 ? fashion : NULL;
}

uint32_t train_data_crc32(const enn_dataset *ds, uint32_t crc)
{
    size_t n = ds->n, steps = (size_t)n * ds->T;
    const struct {
        const void *p;
        size_t bytes;
    } parts[] = {{ds->x, steps * ds->d * sizeof(float)}, {ds->labels, n * sizeof(uint32_t)},
                 {ds->y, n * ds->k * sizeof(float)}, {ds->tokens, steps * sizeof(uint32_t)},
                 {ds->targets, steps * sizeof(uint32_t)}};
    uLong c = crc;
    for (size_t i = 0; i < sizeof parts / sizeof *parts; i++) {
        const unsigned char *p = parts[i].p;
        /* zlib takes lengths as uInt: in pieces of 1 GiB. */
        for (size_t left = p ? parts[i].bytes : 0; left;) {
            uInt piece = left > (1u << 30) ? 1u << 30 : (uInt)left;
            c = crc32(c, p, piece);
            p += piece;
            left -= piece;
        }
    }
    return (uint32_t)c;
}
