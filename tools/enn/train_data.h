/* The data sets of `enn train` / `enn eval`: the training and test parts of a data set
 * named on the command line, and the task (head) they imply. */
#ifndef ENN_TOOLS_TRAIN_DATA_H
#define ENN_TOOLS_TRAIN_DATA_H

#include "enn_data.h"
#include "train_options.h"

#define FASHION_MNIST_DIR "/usr/share/datasets/fashion-mnist"

/* Names of the ten classes of --data fashion-mnist; NULL for other data. */
const char *const *train_data_class_names(data_kind kind);

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

/* enn train records --input-scale in the metadata of every checkpoint it writes, under
 * this key, so that enn eval scales the data as the run did without being told. */
#define TRAIN_DATA_SCALE_KEY "enn.input_scale"

/* The metadata entry for o's --input-scale, its value written into text: 1 entry, or 0
 * when the inputs are not scaled. */
uint32_t train_data_scale_entry(const train_options *o, char text[32], enn_metadata *entry);

/* enn eval: the scale recorded in `checkpoint` becomes o's when the command line gave
 * none and the data is csv or npy; a different one given is used, with a note. Returns
 * 0, or -1 after printing the problem. */
int train_data_scale_from_checkpoint(train_options *o, const char *checkpoint);

#endif
