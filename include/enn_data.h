/* libenn data: loaders for the datasets the paper trains on, and .npy arrays.
 *
 * Pure host code (no device needed). Every loader reads plain or gzip-compressed files
 * alike, checks sizes exactly, and rejects a malformed file with ENN_ERROR_FORMAT (or
 * ENN_ERROR_IO when it cannot be opened or read) and an enn_last_error() message that
 * names the file and the problem, e.g.
 *   "train-images-idx3-ubyte.gz: truncated: header says 60000 images of 28x28 (47040000
 *    bytes of data) but the decompressed file holds 1203 bytes of data"
 * Nothing here aborts; on failure the output is left empty (all pointers NULL).
 * (Sizes are checked on the decompressed data; bytes after a gzip stream that do not start
 * another gzip member are ignored, as zlib does.)
 */
#ifndef ENN_DATA_H
#define ENN_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "enn.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- n-dimensional arrays */
typedef enum enn_dtype {
    ENN_DTYPE_ANY = 0, /* only as a request: keep the file's type */
    ENN_DTYPE_F32 = 1, /* numpy '<f4' */
    ENN_DTYPE_F64 = 2, /* '<f8' */
    ENN_DTYPE_I32 = 3, /* '<i4' */
    ENN_DTYPE_I64 = 4, /* '<i8' */
    ENN_DTYPE_U8 = 5,  /* '|u1' */
    ENN_DTYPE_U32 = 6, /* '<u4' */
} enn_dtype;

#define ENN_ARRAY_MAX_RANK 32 /* numpy's own limit (NPY_MAXDIMS) before numpy 2 */

/* A dense C-order (row-major) array in host memory, in host byte order. */
typedef struct enn_array {
    enn_dtype dtype;
    uint32_t rank;                      /* 0 for a scalar */
    uint64_t shape[ENN_ARRAY_MAX_RANK];
    void *data;                         /* malloc'ed by the readers; enn_array_free frees it */
} enn_array;

ENN_API size_t enn_dtype_size(enn_dtype dtype);  /* bytes per element, 0 for ANY */
ENN_API const char *enn_dtype_name(enn_dtype dtype); /* numpy descr, e.g. "<f4" */
ENN_API uint64_t enn_array_count(const enn_array *a); /* product of the shape (1 if rank 0; 0 for NULL) */
/* Frees a->data and zeroes the array. NULL is ignored. */
ENN_API void enn_array_free(enn_array *a);

/* Reads a .npy file (format 1.0, 2.0 or 3.0; also gzip-compressed). `want`:
 * ENN_DTYPE_ANY keeps the file's dtype; ENN_DTYPE_F32 converts any supported dtype to
 * float; another type must match the file's. Little- and big-endian files are accepted;
 * fortran_order True is rejected (save with np.ascontiguousarray). */
ENN_API enn_status enn_npy_read(const char *path, enn_dtype want, enn_array *out);
/* Writes a .npy file (format 1.0; 2.0 if the header needs it) with the array's dtype,
 * little-endian, C order. Written to a temporary file in the same directory, flushed,
 * then renamed over `path`: a failure never leaves a half-written file behind. */
ENN_API enn_status enn_npy_write(const char *path, const enn_array *a);
/* Convenience: writes float32 `data` of the given shape (rank <= ENN_ARRAY_MAX_RANK). */
ENN_API enn_status enn_npy_write_f32(const char *path, const float *data, uint32_t rank,
                                     const uint64_t *shape);

/* Reads one IDX file (MNIST's format: magic 00 00 <type> <rank>, big-endian uint32 dims,
 * then the data). Types: 0x08 unsigned byte -> U8, 0x0C int -> I32, 0x0D float -> F32,
 * 0x0E double -> F64 (converted to host order). */
ENN_API enn_status enn_idx_read(const char *path, enn_array *out);

/* ---------------------------------------------------------------- datasets
 * Samples are sequences: features x[n, T, d]. Which of the other arrays is present says
 * what the task is (classification: labels; regression: y; language model: tokens and
 * targets, with x NULL). */
typedef struct enn_dataset {
    size_t n;              /* samples */
    uint32_t T;            /* time steps per sample */
    uint32_t d;            /* features per step (0 for token data) */
    float *x;              /* [n, T, d] or NULL */
    uint32_t *labels;      /* [n] class ids, or NULL */
    uint32_t num_classes;  /* 1 + the largest label (10 for MNIST, CIFAR-10) */
    float *y;              /* [n, k] regression targets, or NULL */
    uint32_t k;
    uint32_t *tokens;      /* [n, T] input token ids, or NULL */
    uint32_t *targets;     /* [n, T] target token ids, 0 = pad (ignored by the loss) */
    uint32_t vocab_size;   /* ids are < vocab_size (token data) */
} enn_dataset;

/* Frees every array and zeroes the struct. NULL is ignored. */
ENN_API void enn_dataset_free(enn_dataset *ds);

/* MNIST / Fashion-MNIST: an IDX image file [n, rows, cols] of unsigned bytes and an IDX
 * label file [n] (raw or .gz). Gives x[n, T = rows, d = cols] = pixel / 255 and labels;
 * the counts must agree. */
ENN_API enn_status enn_load_idx_pair(const char *images_path, const char *labels_path,
                                     enn_dataset *out);

/* One array of a .npz file (numpy's savez or savez_compressed: a zip of .npy files,
 * stored or deflated): `name` is the array's key ("x_train"; "x_train.npy" also works).
 * `want` as in enn_npy_read. A missing key is ENN_ERROR_FORMAT naming the keys there. */
ENN_API enn_status enn_npz_read(const char *path, const char *name, enn_dtype want, enn_array *out);
/* Keras's mnist.npz (what keras.datasets.mnist.load_data() downloads, and what the paper
 * trained on): x_train [60000, 28, 28] and y_train [60000], x_test and y_test, unsigned
 * bytes. As enn_load_idx_pair: x[n, T = 28, d = 28] = pixel / 255, and labels. Either
 * output may be NULL; on failure both are empty. */
ENN_API enn_status enn_load_mnist_npz(const char *path, enn_dataset *train, enn_dataset *test);

/* CIFAR-10 binary batches (data_batch_1.bin ... data_batch_5.bin, test_batch.bin),
 * concatenated in the order given. Each record is 1 label byte (0..9) then 3072 pixel
 * bytes: the 32x32 red plane, then green, then blue, each row-major. Rows as sequences:
 * T = 32 image rows, d = 96 with the channels interleaved per pixel, i.e.
 *   x[i, r, 3*c + ch] = record[1 + 1024*ch + 32*r + c] / 255   (ch 0 = R, 1 = G, 2 = B)
 * which is Keras's cifar10 image [32, 32, 3] reshaped to [32, 96]. */
ENN_API enn_status enn_load_cifar10(const char *const *paths, uint32_t count, enn_dataset *out);

/* CSV of numbers, for regression or (with `labels`) classification. Blank lines are
 * skipped; fields are numbers (strtod, finite); every row has the same number of fields. */
typedef struct enn_csv_options {
    int header;               /* 1: the first line is a header; 0: none; -1: detect it
                                 (a first line with a non-number field is a header) */
    char delimiter;           /* 0: ',' */
    /* Target columns (negative counts from the end: -1 is the last). Empty: the last
     * column. The other columns, in order, are the features. */
    const int *target_columns;
    uint32_t target_count;
    uint32_t T;               /* features per row are split into T steps of d (0: 1) */
    int labels;               /* 1: the (one) target column holds class ids, whole numbers
                                 from 0 (e.g. MNIST as CSV, label first): labels[n] and
                                 num_classes = the largest + 1 instead of y */
} enn_csv_options;
/* x[n, T, d], y[n, k] (or labels[n]). options may be NULL (detect header, ',', last
 * column, T = 1). */
ENN_API enn_status enn_load_csv(const char *path, const enn_csv_options *options,
                                enn_dataset *out);

/* Arrays from .npy files: x of rank 3 [n, T, d] (any numeric dtype, converted to float);
 * y either integers of rank 1 [n] (class labels) or floats (f4, f8) of rank 1 [n] or 2
 * [n, k] (regression targets; integers of rank 2 are refused). y_path may be NULL. */
ENN_API enn_status enn_load_npy_pair(const char *x_path, const char *y_path, enn_dataset *out);

/* ---------------------------------------------------------------- token text (WikiText)
 * A file in WikiText's layout (wiki.train.tokens, wiki.valid.tokens, wiki.test.tokens;
 * lines like " = Title = " and text with " @-@ "; a line ends at \n, \r\n or a lone \r, as in
 * Python's universal newlines): the tokens of a UTF-8 line are what
 * Python's line.lower().split() gives: split at every Unicode space (str.isspace(): U+0085,
 * U+00A0, U+2028, U+3000, ... and U+001C..U+001F, not U+200B or U+FEFF), lower-cased with
 * the full Unicode mappings (libunistring's), the Greek final sigma included. A byte order
 * mark opening the file is skipped; bytes that are not UTF-8 stay as they are (never a space,
 * never cased: Python's errors="surrogateescape"). Ids: 0 = <pad>, 1 = <unk> (also the id
 * of the literal "<unk>" in the text), then the vocabulary by falling frequency, ties in
 * byte order of the token. */
typedef struct enn_vocab enn_vocab;

typedef struct enn_text_options {
    uint32_t max_size;   /* most ids, <pad> and <unk> included (0: no limit) */
    uint32_t min_count;  /* a token rarer than this in the training text is <unk> (0: 1) */
    int keep_case;       /* 1: do not lower-case */
    /* Keep a random part of the lines (the paper used a random quarter of the training
     * set): line i is kept when a hash of (seed, i) falls below fraction. The same
     * options select the same lines in enn_vocab_build and enn_load_tokens. 0 or 1: all. */
    double fraction;
    uint64_t seed;
} enn_text_options;

ENN_API enn_status enn_vocab_build(const char *train_path, const enn_text_options *options,
                                   enn_vocab **out);
/* One token per line, line i holding id i (line 0 "<pad>", line 1 "<unk>"). */
ENN_API enn_status enn_vocab_save(const enn_vocab *vocab, const char *path);
ENN_API enn_status enn_vocab_load(const char *path, enn_vocab **out);
ENN_API void enn_vocab_free(enn_vocab *vocab);
ENN_API uint32_t enn_vocab_size(const enn_vocab *vocab);
ENN_API const char *enn_vocab_token(const enn_vocab *vocab, uint32_t id); /* NULL if >= size */
/* Id of an already lower-cased token; 1 (<unk>) if it is not in the vocabulary. */
ENN_API uint32_t enn_vocab_id(const enn_vocab *vocab, const char *token);
/* The ids of a text as the token loader reads a line of a file: its whitespace-separated
 * words, lower-cased unless keep_case (as enn_text_options), a word not in the vocabulary
 * <unk> (1). Writes the first `capacity` ids; *count gets the number of words (more than
 * capacity: call again with room for them). */
ENN_API enn_status enn_vocab_encode(const enn_vocab *vocab, const char *text, int keep_case, uint32_t *ids,
                                    size_t capacity, size_t *count);
/* How often the token was seen when the vocabulary was built (0 after enn_vocab_load). */
ENN_API uint64_t enn_vocab_count(const enn_vocab *vocab, uint32_t id);

typedef struct enn_span_options {
    uint32_t T;          /* span length (the paper: 32) */
    /* 0 (paper): target = input shifted by one, the last target set to pad 0.
     * 1: the last target is the first token of the next span (0 for the final span). */
    int carry_last_target;
    int drop_partial;    /* 1: drop the final partial span; 0: pad it with 0 */
} enn_span_options;

/* Token stream of the (selected lines of the) file, cut into non-overlapping spans:
 * tokens[n, T], targets[n, T]. text_options: lower-casing and line selection (its
 * vocabulary fields are unused); NULL means all lines, lower-cased. */
ENN_API enn_status enn_load_tokens(const char *path, const enn_vocab *vocab,
                                   const enn_text_options *text_options,
                                   const enn_span_options *span_options, enn_dataset *out);

/* ---------------------------------------------------------------- order, splits, batches
 * Deterministic for a seed on every platform: splitmix64 drives a Fisher-Yates shuffle. */
ENN_API void enn_permutation(size_t *perm, size_t n, uint64_t seed);
/* Reorders every array of the dataset by enn_permutation(seed). */
ENN_API enn_status enn_dataset_shuffle(enn_dataset *ds, uint64_t seed);
/* Moves the LAST samples into *val, as Keras's validation_split does: the training part
 * keeps floor(n * (1 - fraction)) samples in their current order, val gets the rest.
 * Keras takes them before any shuffling, so the paper's runs held out the last 10% of the
 * training file; splitting first and then shuffling the training part each epoch
 * reproduces exactly that held-out set (paper mode). Calling enn_dataset_shuffle(seed)
 * before the split instead gives a random validation set, which is safer for files
 * sorted by class or time. Fraction 0 leaves val empty. */
ENN_API enn_status enn_dataset_split(enn_dataset *ds, double fraction, enn_dataset *val);
/* Copies samples [first, first + count) into a new dataset. */
ENN_API enn_status enn_dataset_slice(const enn_dataset *ds, size_t first, size_t count,
                                     enn_dataset *out);
/* Number of batches of `batch` samples in an epoch (the last may be short unless
 * drop_last). */
ENN_API size_t enn_batch_count(size_t n, size_t batch, int drop_last);
/* Gathers the samples order[first .. first + count) (order NULL: identity) into the
 * caller's buffers; a NULL buffer is skipped. time_major 0: x[count, T, d],
 * tokens/targets[count, T]; 1: x[T, count, d], tokens/targets[T, count]. labels[count],
 * y[count, k]. */
ENN_API enn_status enn_dataset_gather(const enn_dataset *ds, const size_t *order, size_t first,
                                      size_t count, int time_major, float *x, uint32_t *labels,
                                      float *y, uint32_t *tokens, uint32_t *targets);

#ifdef __cplusplus
}
#endif
#endif /* ENN_DATA_H */
