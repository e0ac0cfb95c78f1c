/* `enn train --data ...` finds a data set where its archives unpack it and in the other
 * forms users hold it: Keras's mnist.npz, torchvision's MNIST/raw/ with dotted file names,
 * gzipped CIFAR-10 batches in cifar-10-batches-bin/, CIFAR-10's python version (refused
 * with the way to convert it, and tools/cifar10_to_binary.py converting it byte for byte),
 * WikiText's raw variant; and an archive given for a folder is named. Each run trains one
 * epoch of a tiny model; the data line says what was read. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <zlib.h>

#include "data_files.h"
#include "harness.h"
#include "enn_data.h"
#include "tool_run.h"

/* `enn train` on `data` for one epoch of a tiny model: its exit status and output. */
static int train(const char *dir, const char *data, char **out)
{
    char args[2048];
    snprintf(args, sizeof args, "train --data %s --epochs 1 --hidden 4 --slots 2 --batch 8 --plain --no-plots "
             "--no-report --overwrite --out '%s/run'", data, dir);
    return test_run_tool("", ENN_TOOL_PATH, args, out);
}

static void expect_trains(const char *dir, const char *data, const char *want)
{
    char *out;
    int rc = train(dir, data, &out);
    cr_expect_eq(rc, 0, "enn train --data %s exited with %d:\n%s", data, rc, out);
    cr_expect(strstr(out, want), "enn train --data %s: want \"%s\":\n%s", data, want, out);
    free(out);
}

static void expect_refused(const char *dir, const char *data, const char *want)
{
    char *out;
    int rc = train(dir, data, &out);
    cr_expect(rc != 0 && strstr(out, want), "enn train --data %s (exit %d): want \"%s\":\n%s", data, rc, want, out);
    free(out);
}

static void make_dirs(const char *dir, const char *sub, char out[TEST_PATH_MAX])
{
    char cmd[2 * TEST_PATH_MAX];
    snprintf(out, TEST_PATH_MAX, "%s/%s", dir, sub);
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", out);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
}

static void remove_tree(const char *dir)
{
    char cmd[TEST_PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

/* An IDX file of unsigned bytes: magic, big-endian dims, data. */
static void write_idx(const char *path, unsigned rank, const uint32_t *dims, size_t count, unsigned seed)
{
    unsigned char *b = malloc(4 + 4 * rank + count), *p = b;
    *p++ = 0, *p++ = 0, *p++ = 8, *p++ = (unsigned char)rank;
    for (unsigned i = 0; i < rank; i++)
        *p++ = (unsigned char)(dims[i] >> 24), *p++ = (unsigned char)(dims[i] >> 16),
        *p++ = (unsigned char)(dims[i] >> 8), *p++ = (unsigned char)dims[i];
    for (size_t i = 0; i < count; i++) p[i] = rank == 1 ? (unsigned char)((i + seed) % 10) : (unsigned char)(i * seed);
    test_write_gz(path, b, 4 + 4 * rank + count);
    free(b);
}

Test(tool_data_layouts, mnist_forms, .timeout = 300)
{
    char dir[TEST_PATH_MAX], raw[TEST_PATH_MAX], path[TEST_PATH_MAX], data[2 * TEST_PATH_MAX];
    test_tmpdir(dir);
    expect_trains(dir, "mnist-npz " ENN_SOURCE_DIR "/tests/data/npz/mnist_small.npz",
                  "data: mnist-npz, 10 training, 2 validation, 5 test samples of [T=28, d=28]");
    /* torchvision's layout, and the dotted names some unpackers write. */
    make_dirs(dir, "MNIST/raw", raw);
    const uint32_t train_dims[3] = {16, 6, 5}, test_dims[3] = {8, 6, 5};
    write_idx(test_path(path, raw, "train-images.idx3-ubyte.gz"), 3, train_dims, 16 * 30, 7);
    write_idx(test_path(path, raw, "train-labels.idx1-ubyte.gz"), 1, train_dims, 16, 1);
    write_idx(test_path(path, raw, "t10k-images-idx3-ubyte.gz"), 3, test_dims, 8 * 30, 3);
    write_idx(test_path(path, raw, "t10k-labels-idx1-ubyte.gz"), 1, test_dims, 8, 2);
    snprintf(data, sizeof data, "mnist-idx '%s'", dir);
    expect_trains(dir, data, "data: mnist-idx, 14 training, 2 validation, 8 test samples of [T=6, d=5]");
    /* mnist.npz given as IDX, and a file given for the folder. */
    expect_refused(dir, "mnist-idx " ENN_SOURCE_DIR "/tests/data/npz/mnist_small.npz", "use --data mnist-npz");
    snprintf(data, sizeof data, "mnist-idx '%s/t10k-labels-idx1-ubyte.gz'", raw);
    expect_refused(dir, data, "this is a file, not a folder");
    remove_tree(dir);
}

/* CIFAR-10 batches of `n` records, pixel (i, byte j) = (i * 7 + j) mod 251, labels i mod 10,
 * pickled as the python version is (protocol 2, dict of b"data" and b"labels") by numpy. */
static void write_python_cifar(const char *folder, int n)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 -c \"import numpy as np, pickle\n"
             "for name in ['data_batch_%%d' %% i for i in range(1, 6)] + ['test_batch']:\n"
             "    i = np.arange(%d)[:, None]; j = np.arange(3072)[None, :]\n"
             "    d = {b'batch_label': b'x', b'labels': [int(k) %% 10 for k in range(%d)],\n"
             "         b'data': ((i * 7 + j) %% 251).astype(np.uint8), b'filenames': [b'f'] * %d}\n"
             "    pickle.dump(d, open('%s/' + name, 'wb'), protocol=2)\"",
             n, n, n, folder);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
}

Test(tool_data_layouts, cifar10_forms, .timeout = 300)
{
    char dir[TEST_PATH_MAX], bin[TEST_PATH_MAX], py[TEST_PATH_MAX], path[TEST_PATH_MAX], data[2 * TEST_PATH_MAX];
    test_tmpdir(dir);
    /* The python version: refused with the way to convert it, then converted. */
    make_dirs(dir, "keras/cifar-10-batches-py", py);
    write_python_cifar(py, 10);
    snprintf(data, sizeof data, "cifar10 '%s/keras'", dir);
    expect_refused(dir, data, "python version (pickled batches");
    char cmd[3 * TEST_PATH_MAX];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s/tools/cifar10_to_binary.py' '%s/keras' 2>&1", ENN_SOURCE_DIR, dir);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
    enn_dataset ds;
    const char *test_batch = test_path(path, dir, "keras/cifar-10-batches-bin/test_batch.bin");
    ENN_ASSERT_OK(enn_load_cifar10(&test_batch, 1, &ds));
    cr_assert_eq(ds.n, 10);
    for (size_t i = 0; i < 10; i++) {
        cr_expect_eq(ds.labels[i], i % 10);
        for (int ch = 0; ch < 3; ch++)
            for (int r = 0; r < 32; r++)
                for (int c = 0; c < 32; c++) {
                    float want = (float)((i * 7 + (size_t)(1024 * ch + 32 * r + c)) % 251) / 255.0f;
                    cr_assert_eq(ds.x[(i * 32 + r) * 96 + 3 * c + ch], want, "image %zu channel %d pixel (%d, %d)", i,
                                 ch, r, c);
                }
    }
    enn_dataset_free(&ds);
    expect_trains(dir, data, "data: cifar10, 45 training, 5 validation, 10 test samples of [T=32, d=96]");
    /* Gzipped batches in cifar-10-batches-bin/, found from the folder above. */
    make_dirs(dir, "gz/cifar-10-batches-bin", bin);
    static const char *const names[] = {"data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4",
                                        "data_batch_5", "test_batch"};
    for (int k = 0; k < 6; k++) {
        char from[TEST_PATH_MAX], name[64];
        snprintf(name, sizeof name, "keras/cifar-10-batches-bin/%s.bin", names[k]);
        unsigned char *bytes;
        size_t n = test_read_file(test_path(from, dir, name), &bytes);
        snprintf(name, sizeof name, "%s.bin.gz", names[k]);
        test_write_gz(test_path(path, bin, name), bytes, n);
        free(bytes);
    }
    snprintf(data, sizeof data, "cifar10 '%s/gz'", dir);
    expect_trains(dir, data, "data: cifar10, 45 training, 5 validation, 10 test samples of [T=32, d=96]");
    remove_tree(dir);
}

Test(tool_data_layouts, wikitext_raw_variant, .timeout = 300)
{
    char dir[TEST_PATH_MAX], raw[TEST_PATH_MAX], path[TEST_PATH_MAX], data[2 * TEST_PATH_MAX];
    test_tmpdir(dir);
    make_dirs(dir, "wikitext-103-raw", raw);
    const char *text = " = Title = \n\n the cat sat on the mat , and the dog sat on the log . \n";
    char big[4096] = "";
    for (int i = 0; i < 20; i++) strcat(big, text);
    test_write_file(test_path(path, raw, "wiki.train.raw"), big, strlen(big));
    test_write_file(test_path(path, raw, "wiki.test.raw"), text, strlen(text));
    snprintf(data, sizeof data, "wikitext '%s' --seq-len 8", dir);
    expect_trains(dir, data, "data: wikitext, 40 training, 5 validation, 3 test samples of [T=8, d=1]");
    /* The archive itself given for the folder. */
    test_write_file(test_path(path, dir, "wikitext-103-raw-v1.zip"), "PK\x03\x04", 4);
    snprintf(data, sizeof data, "wikitext '%s'", path);
    expect_refused(dir, data, "this is a file, not a folder; it wants the folder that holds wiki.test.tokens "
                              "(extract the archive first)");
    remove_tree(dir);
}

/* MNIST as CSV (Kaggle's form: a header, the label first, pixels 0..255): a classifier
 * with --label-column 0, pixels scaled by --input-scale. */
Test(tool_data_layouts, csv_with_labels_first, .timeout = 300)
{
    char dir[TEST_PATH_MAX], path[TEST_PATH_MAX], data[2 * TEST_PATH_MAX], text[8192] = "label,p1,p2,p3,p4\n";
    test_tmpdir(dir);
    for (int i = 0; i < 40; i++) {
        size_t n = strlen(text);
        snprintf(text + n, sizeof text - n, "%d,%d,%d,%d,%d\n", i % 3, i * 5 % 256, 255 - i, i * 11 % 256, 17);
    }
    test_write_file(test_path(path, dir, "mnist_train.csv"), text, strlen(text));
    snprintf(data, sizeof data, "csv '%s' --label-column 0 --seq-len 2 --input-scale 0.00392156862745098", path);
    expect_trains(dir, data, "data: csv, 36 training, 4 validation, 0 test samples of [T=2, d=2]");
    expect_trains(dir, data, "model: ENN classifier");
    expect_trains(dir, data, "3 outputs");
    /* What was read: last.json's CRC-32 of the training then validation samples (inputs,
     * then labels, per part), recomputed from the rows as written, pixels scaled. */
    uLong crc = 0;
    for (int part = 0; part < 2; part++) {
        int first = part ? 36 : 0, count = part ? 4 : 36;
        for (int i = first; i < first + count; i++) {
            const int pixels[4] = {i * 5 % 256, 255 - i, i * 11 % 256, 17};
            for (int k = 0; k < 4; k++) {
                float v = (float)((float)pixels[k] * 0.00392156862745098);
                crc = crc32(crc, (const Bytef *)&v, sizeof v);
            }
        }
        for (int i = first; i < first + count; i++) {
            uint32_t label = (uint32_t)(i % 3);
            crc = crc32(crc, (const Bytef *)&label, sizeof label);
        }
    }
    unsigned char *state;
    char state_path[TEST_PATH_MAX];
    size_t n = test_read_file(test_path(state_path, dir, "run/last.json"), &state);
    char json[8192];
    snprintf(json, sizeof json, "%.*s", (int)n, (const char *)state);
    free(state);
    const char *at = strstr(json, "\"data_crc32\":");
    cr_assert(at, "%s", json);
    cr_expect_eq(strtoull(at + strlen("\"data_crc32\":"), NULL, 10), (unsigned long long)crc,
                 "the samples read are not the rows written, scaled:\n%s", json);
    /* The flags that shaped the data go with the checkpoints, and enn eval reads the data
     * the same way without them. */
    char ckpt[TEST_PATH_MAX];
    const char *names[] = {"run/best.safetensors", "run/last.safetensors"};
    for (int i = 0; i < 2; i++) {
        char *value = NULL;
        cr_assert_eq(enn_checkpoint_metadata(test_path(ckpt, dir, names[i]), "enn.data_layout", &value), ENN_OK, "%s",
                     enn_last_error());
        cr_expect(value && !strcmp(value, "{\"seq_len\":2,\"label_column\":[0],\"input_scale\":0.0039215686274509803}"),
                  "%s: enn.data_layout = %s", names[i], value ? value : "(none)");
        free(value);
    }
    const struct {
        const char *flags, *want, *unwanted;
    } evals[] = {
        {"", "data read as the run read it: --seq-len 2 --label-column 0 --input-scale 0.00392156863", "note:"},
        {"--label-column 0 --seq-len 2 --input-scale 0.00392156862745098", "accuracy", "read as the run"},
        {"--input-scale 1", "note: the run read its data with --input-scale 0.00392156863; --input-scale 1 is used",
         "--label-column 0 --input-scale"},
        {"--seq-len 1", "note: the run read its data with --seq-len 2; --seq-len 1 is used", "accuracy"},
    };
    for (size_t i = 0; i < sizeof evals / sizeof evals[0]; i++) {
        char args[4 * TEST_PATH_MAX], *out;
        snprintf(args, sizeof args, "eval '%s' --data csv '%s' --test-data csv '%s' --plain --no-report --no-plots %s",
                 ckpt, path, path, evals[i].flags);
        int rc = test_run_tool("", ENN_TOOL_PATH, args, &out);
        cr_expect(strstr(out, evals[i].want) && !strstr(out, evals[i].unwanted), "enn %s (exit %d): want \"%s\", not "
                  "\"%s\":\n%s", args, rc, evals[i].want, evals[i].unwanted, out);
        cr_expect(i == 3 ? rc != 0 : rc == 0, "enn %s exited with %d:\n%s", args, rc, out);
        free(out);
    }
    /* A layout that is not one is refused, naming the key. */
    enn_context *ctx = test_context();
    enn_model *model;
    cr_assert_eq(enn_model_load(ctx, ckpt, &model), ENN_OK, "%s", enn_last_error());
    char bad[TEST_PATH_MAX], args[4 * TEST_PATH_MAX], *out;
    enn_metadata layout = {"enn.data_layout", "{\"seq_len\":\"2\"}"};
    cr_assert_eq(enn_model_save_with_metadata(model, test_path(bad, dir, "bad.safetensors"), &layout, 1), ENN_OK, "%s",
                 enn_last_error());
    enn_model_destroy(model);
    test_context_finish(ctx);
    snprintf(args, sizeof args, "eval '%s' --data csv '%s' --test-data csv '%s' --plain", bad, path, path);
    int rc = test_run_tool("", ENN_TOOL_PATH, args, &out);
    cr_expect(rc != 0 && strstr(out, "metadata \"enn.data_layout\" is not a data layout"), "enn %s (exit %d):\n%s", args,
              rc, out);
    free(out);
    /* Without the flag the last column is a regression target; elsewhere the flag is refused. */
    snprintf(data, sizeof data, "csv '%s' --seq-len 2", path);
    expect_trains(dir, data, "model: ENN regressor");
    expect_refused(dir, "fashion-mnist --label-column 0", "--label-column is for csv data");
    expect_refused(dir, "fashion-mnist --input-scale 2", "--input-scale is for csv and npy data");
    snprintf(data, sizeof data, "csv '%s' --label-column 0,1", path);
    expect_refused(dir, data, "--label-column: '0,1'");
    test_tmpdir_remove(dir);
}
