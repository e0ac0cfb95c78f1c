/* Damaged files must never crash a loader: every loader reads thousands of randomly
 * mutated copies of a valid file (bytes changed, cut short, bytes inserted) and either
 * succeeds or fails with ENN_ERROR_FORMAT and a message naming the file. Run under the
 * sanitizer build, this also checks every error path for memory errors and leaks. */
#include <stdlib.h>
#include <string.h>

#include "data_files.h"
#include "enn_data.h"
#include "npy_numpy_ref.h"

typedef enn_status (*loader_fn)(const char *path);

static enn_status load_idx(const char *path)
{
    enn_array a;
    enn_status s = enn_idx_read(path, &a);
    enn_array_free(&a);
    return s;
}
static enn_status load_npy(const char *path)
{
    enn_array a;
    enn_status s = enn_npy_read(path, ENN_DTYPE_F32, &a);
    enn_array_free(&a);
    return s;
}
static enn_status load_cifar(const char *path)
{
    enn_dataset ds;
    enn_status s = enn_load_cifar10(&path, 1, &ds);
    enn_dataset_free(&ds);
    return s;
}
static enn_status load_csv(const char *path)
{
    enn_dataset ds;
    enn_status s = enn_load_csv(path, NULL, &ds);
    enn_dataset_free(&ds);
    return s;
}
static enn_status load_vocab(const char *path)
{
    enn_vocab *v;
    enn_status s = enn_vocab_load(path, &v);
    enn_vocab_free(v);
    return s;
}
static enn_status load_text(const char *path)
{
    enn_vocab *v;
    enn_status s = enn_vocab_build(path, NULL, &v);
    if (s != ENN_OK) return s;
    enn_dataset ds;
    enn_span_options so = {.T = 5};
    s = enn_load_tokens(path, v, NULL, &so, &ds);
    enn_dataset_free(&ds);
    enn_vocab_free(v);
    return s;
}

static enn_status load_npz(const char *path)
{
    enn_dataset train, test;
    enn_status s = enn_load_mnist_npz(path, &train, &test);
    enn_dataset_free(&train);
    enn_dataset_free(&test);
    return s;
}

static void fuzz(const char *name, const unsigned char *valid, size_t n, loader_fn load, int rounds, uint64_t seed)
{
    char dir[TEST_PATH_MAX], path[TEST_PATH_MAX];
    test_tmpdir(dir);
    test_path(path, dir, name);
    unsigned char *buf = malloc(n + 64);
    for (int r = 0; r < rounds; r++) {
        size_t len = n;
        memcpy(buf, valid, n);
        uint64_t kind = test_rand_u64(&seed) % 4;
        if (kind == 0) { /* change 1-4 bytes */
            for (uint64_t k = 0, m = 1 + test_rand_u64(&seed) % 4; k < m; k++)
                buf[test_rand_u64(&seed) % n] = (unsigned char)test_rand_u64(&seed);
        } else if (kind == 1) { /* cut short */
            len = (size_t)(test_rand_u64(&seed) % n);
        } else if (kind == 2) { /* insert bytes */
            size_t at = (size_t)(test_rand_u64(&seed) % n), m = 1 + (size_t)(test_rand_u64(&seed) % 63);
            memmove(buf + at + m, buf + at, n - at);
            for (size_t k = 0; k < m; k++) buf[at + k] = (unsigned char)test_rand_u64(&seed);
            len = n + m;
        } else { /* change a byte in the first 64 (headers) */
            buf[test_rand_u64(&seed) % (n < 64 ? n : 64)] ^= (unsigned char)(1 + test_rand_u64(&seed) % 255);
        }
        int gz = (r & 1);
        (gz ? test_write_gz : test_write_file)(path, buf, len);
        enn_status s = load(path);
        if (s != ENN_OK) test_expect_error(s, ENN_ERROR_FORMAT, name, NULL);
    }
    free(buf);
    test_tmpdir_remove(dir);
}

Test(data_fuzz, idx)
{
    unsigned char f[8 + 16 + 2 * 3 * 4];
    const unsigned char head[16] = {0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4};
    memcpy(f, head, 16);
    for (int i = 16; i < (int)sizeof f - 8; i++) f[i] = (unsigned char)(i * 37);
    fuzz("images-idx3-ubyte", f, 16 + 24, load_idx, 600, 1);
}

Test(data_fuzz, npy) { fuzz("a.npy", (const unsigned char *)npy_f8_2x1x2, NPY_F8_2X1X2_LEN, load_npy, 600, 2); }

Test(data_fuzz, cifar)
{
    unsigned char *f = calloc(2, 3073);
    f[3073] = 9;
    fuzz("data_batch_1.bin", f, 2 * 3073, load_cifar, 150, 3);
    free(f);
}

Test(data_fuzz, csv)
{
    const char *f = "a,b,c\n1.5,2,3\n-4,5e1,6\n\n7,8,9\n";
    fuzz("x.csv", (const unsigned char *)f, strlen(f), load_csv, 600, 4);
}

Test(data_fuzz, vocab)
{
    const char *f = "<pad>\n<unk>\nthe\n,\n.\nof\n";
    fuzz("vocab.txt", (const unsigned char *)f, strlen(f), load_vocab, 600, 5);
}

Test(data_fuzz, tokens)
{
    const char *f = " = Valkyria Chronicles III = \n \n Senj\xc5\x8d no Valkyria 3 : <unk> Chronicles ( Japanese : "
                    "\xe6\x88\xa6\xe5\xa0\xb4\xe3\x81\xae ) , commonly referred to as Valkyria Chronicles III outside "
                    "Japan , is a tactical role @-@ playing video game \n";
    fuzz("wiki.train.tokens", (const unsigned char *)f, strlen(f), load_text, 400, 6);
}

/* Keras's mnist.npz layout, deflated members (a zip: never gzip-wrapped, so the odd rounds
 * test the "not a zip" path). */
Test(data_fuzz, npz)
{
    unsigned char *f;
    size_t n = test_read_file(ENN_SOURCE_DIR "/tests/data/npz/mnist_small.npz", &f);
    fuzz("mnist.npz", f, n, load_npz, 400, 7);
    free(f);
}
