/* The data sets of `enn train` / `enn eval`: the training and test parts of a data set
 * named on the command line, and the task (head) they imply. */
#ifndef ENN_TOOLS_TRAIN_DATA_H
#define ENN_TOOLS_TRAIN_DATA_H

#include "enn_data.h"
#include "train_options.h"

#define FASHION_MNIST_DIR "/usr/share/datasets/fashion-mnist"

/* Names of the ten classes of --data fashion-mnist; NULL for other data, and for files
 * with more than ten classes. */
const char *const *train_data_class_names(data_kind kind, uint32_t classes);

typedef struct train_data {
    enn_dataset train;      /* empty when only the test part was asked for */
    enn_dataset test;       /* empty when the data set has none */
    enn_head_kind head;     /* labels: classifier; y: regressor; tokens: language model */
    uint32_t outputs;       /* classes, regression outputs, or vocabulary size */
    enn_vocab *vocab;       /* wikitext */
} train_data;

/* Loads the data (honouring --train-samples, --test-samples and the wikitext options).
 * Prints the problem to stderr and returns -1 on failure. */
int train_data_load(const train_options *o, int need_train, train_data *out);
void train_data_free(train_data *d);

/* CRC-32 of a data set's contents (inputs, labels, targets, tokens), continuing `crc`:
 * what --resume compares to know the data is the run's. */
uint32_t train_data_crc32(const enn_dataset *ds, uint32_t crc);

/* enn train records the flags that shape how its data is read (--seq-len,
 * --label-column or --target-columns, --input-scale; for text, the word rules) in the
 * metadata of every checkpoint it writes, under this key, as JSON: enn eval reads the
 * data the same way without being told again. */
#define TRAIN_DATA_LAYOUT_KEY "enn.data_layout"

/* The metadata entry for o's data layout, its JSON written into text: 1 entry, or 0
 * when no such flag was given. */
uint32_t train_data_layout_entry(const train_options *o, char text[512], enn_metadata *entry);

/* enn eval: each flag recorded in `checkpoint` that applies to the data named and was
 * not on the command line becomes o's (said in one line); one given with another value
 * is used, with a note. Returns 0, or -1 after printing the problem. */
int train_data_layout_from_checkpoint(train_options *o, const char *checkpoint);

/* How text is cut into words (runtime/data/words.c), recorded in a language model's
 * layout ("words"): a checkpoint without it comes from a libenn whose vocabulary was
 * cut otherwise (ASCII spaces, a few scripts lower-cased). */
#define WORD_RULES "str.lower().split()"

/* Warns when a language model's checkpoint does not record WORD_RULES (its vocabulary
 * may read some words otherwise now). Returns 0, or -1 after printing the problem. */
int train_data_check_words(const char *checkpoint);

#endif
