/* Loading the data sets that `enn train` and `enn eval` name (see train_data.h). */
#include "train_data.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <zlib.h>

static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* DIR/NAME, or DIR/NAME.gz when only the compressed file is there. */
static int find_file(const char *dir, const char *name, char *out, size_t size)
{
    snprintf(out, size, "%s/%s", dir, name);
    if (exists(out)) return 0;
    snprintf(out, size, "%s/%s.gz", dir, name);
    if (exists(out)) return 0;
    fprintf(stderr, "enn: %s/%s (or .gz) not found\n", dir, name);
    return -1;
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

static int load_idx_dir(const char *dir, int need_train, train_data *d)
{
    char images[1100], labels[1100];
    if (need_train) {
        if (find_file(dir, "train-images-idx3-ubyte", images, sizeof images) ||
            find_file(dir, "train-labels-idx1-ubyte", labels, sizeof labels))
            return -1;
        if (enn_load_idx_pair(images, labels, &d->train)) return failed("training data");
    }
    if (find_file(dir, "t10k-images-idx3-ubyte", images, sizeof images) ||
        find_file(dir, "t10k-labels-idx1-ubyte", labels, sizeof labels))
        return -1;
    if (enn_load_idx_pair(images, labels, &d->test)) return failed("test data");
    return 0;
}

static int load_cifar10(const char *dir, int need_train, train_data *d)
{
    char paths[5][1100], test[1100];
    const char *list[5];
    char base[1100];
    /* The archive unpacks into cifar-10-batches-bin/: accept either directory. */
    snprintf(base, sizeof base, "%s/cifar-10-batches-bin/test_batch.bin", dir);
    if (exists(base)) snprintf(base, sizeof base, "%s/cifar-10-batches-bin", dir);
    else snprintf(base, sizeof base, "%s", dir);
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
    char train[1100], test[1100], vocab_path[1100];
    const char *dir = o->data.path[0];
    if (find_file(dir, "wiki.train.tokens", train, sizeof train) ||
        find_file(dir, "wiki.test.tokens", test, sizeof test))
        return -1;
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

static int load_table(const data_spec *spec, enn_dataset *out, uint32_t csv_steps)
{
    if (spec->kind == DATA_CSV) {
        enn_csv_options opt = {.header = -1, .T = csv_steps};
        return enn_load_csv(spec->path[0], &opt, out) ? failed(spec->path[0]) : 0;
    }
    return enn_load_npy_pair(spec->path[0], spec->path[1], out) ? failed(spec->path[0]) : 0;
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
    case DATA_CIFAR10: rc = load_cifar10(o->data.path[0], need_train, d); break;
    case DATA_WIKITEXT: rc = load_wikitext(o, need_train, d); break;
    case DATA_CSV:
    case DATA_NPY:
        if (need_train) rc = load_table(&o->data, &d->train, o->seq_len);
        /* csv/npy: the file is the training data, and --test-data names a test set;
         * `enn eval` evaluates on --test-data, or else on the --data file itself. */
        if (!rc && o->test_data.kind != DATA_NONE) rc = load_table(&o->test_data, &d->test, o->seq_len);
        else if (!rc && !need_train) rc = load_table(&o->data, &d->test, o->seq_len);
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

const char *const *train_data_class_names(data_kind kind)
{
    static const char *const fashion[10] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                            "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
    return kind == DATA_FASHION_MNIST ? fashion : NULL;
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
