/* Options of `enn train` and `enn eval`: the data set, the model, and the training
 * protocol, from flags and from an optional config file (one `flag value` a line).
 *
 * The model flags (and the optimizer's and the seed) are `enn init`'s, from the one table
 * in model_options.c: the same names, short and long, limits and help; only those the
 * data decide (--head, --input-features, --max-seq-len, --max-batch, --outputs,
 * --return-sequences) are refused here. */
#ifndef ENN_TOOLS_TRAIN_OPTIONS_H
#define ENN_TOOLS_TRAIN_OPTIONS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "enn.h"
#include "model_options.h"

typedef enum data_kind {
    DATA_NONE = 0,
    DATA_FASHION_MNIST, /* /usr/share/datasets/fashion-mnist (Debian dataset-fashion-mnist) */
    DATA_MNIST_IDX,     /* DIR with {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz] */
    DATA_CIFAR10,       /* DIR with data_batch_{1..5}.bin and test_batch.bin */
    DATA_WIKITEXT,      /* DIR with wiki.{train,valid,test}.tokens */
    DATA_CSV,           /* FILE */
    DATA_NPY,           /* X Y */
    DATA_MNIST_NPZ,     /* FILE: Keras's mnist.npz */
} data_kind;

typedef struct data_spec {
    data_kind kind;
    char path[2][1024];
} data_spec;

typedef struct train_options {
    data_spec data, test_data;      /* test_data: csv/npy only (the others have a test file) */
    size_t train_samples;           /* 0: all; else the first N of the training file */
    size_t test_samples;            /* 0: all; else the first N of the test file */
    double validation_split;        /* 0.1: the last 10% of the training data, as Keras */
    int shuffle_split;              /* 1: shuffle before splitting (random validation set) */
    uint32_t seq_len;               /* wikitext spans (32); csv: steps per row (1) */
    uint32_t vocab_size;            /* wikitext: most ids (0: every token) */
    double text_fraction;           /* wikitext: fraction of training lines (paper: 0.25) */
    int csv_columns[8];             /* csv: the target columns (negative: from the end) */
    uint32_t csv_column_count;      /* 0: the last column */
    int csv_labels;                 /* csv: the one target column holds class ids */
    double input_scale;             /* csv, npy: inputs multiplied by this (1; 1/255 for pixels) */
    int input_scale_given;          /* --input-scale was on the command line */

    /* The model flags given; model.values also holds the learning rate, clipping and seed
     * (the spec's defaults unless given). */
    enn_cli_model_flags model;

    uint32_t epochs, batch;
    uint32_t accumulate;            /* micro-batches per batch (gradient accumulation) */
    int early_stopping, restore_best;
    uint32_t patience;
    int plateau;
    float plateau_factor, min_learning_rate;
    uint32_t plateau_patience;
    int lr_schedule;                /* lr_shape (schedule.h): constant (plateau), cosine, linear */
    uint32_t warmup;                /* updates of linear warm-up (a schedule only) */
    char device[256];               /* "" : ENN_DEVICE, else the best device */
    char out_dir[1024];
    char checkpoint[1024];          /* enn eval: the checkpoint to load */
    double max_time;                /* stop training after this many seconds (0: no limit) */
    int plain;                      /* progress as plain lines even on a terminal */
    int report;                     /* print the confusion matrix and per-class scores */
    int plots;                      /* ENN: the trace monitor's pictures in <out>/plots */
    int paper, quick;
    int resume;                     /* go on with the run in out_dir (last.safetensors, last.json) */
    int overwrite;                  /* a new run may replace the one in out_dir */
    char predictions[1024];         /* enn eval: per-sample predictions to this CSV ("" : none) */
} train_options;

/* The protocol of the paper's experiments (ENN-SPEC.md), full data, up to 50 epochs. */
void train_options_init(train_options *o);
/* Parses argv[1..argc) (argv[0] is the command name). Returns 0, 1 after printing the
 * help (caller exits 0), or -1 after printing an error to stderr (caller exits 2).
 * `for_eval`: the first positional argument is the checkpoint. */
int train_options_parse(train_options *o, int argc, char **argv, int for_eval);
void train_options_usage(FILE *f, int for_eval);
const char *data_kind_name(data_kind k);

/* The model configuration for the data: head, input features, sequence length and
 * outputs come from the data set, the batch from --batch; the rest from the flags (and
 * --paper). Returns non-zero after printing why the configuration is impossible. */
int train_options_model_config(const train_options *o, enn_head_kind head, uint32_t features, uint32_t seq_len,
                                uint32_t outputs, enn_model_config *config);

/* The quick main job (`--quick`): the first 20,000 training images (18,000 to train on,
 * 2,000 for validation), 2 epochs, the full test set; sized to finish on lavapipe on two
 * CPU cores in about 5 to 8 minutes. QUICK_MAX_TIME bounds the training on a slower or
 * busy machine: the epoch under way then ends early, is validated like any other, and the
 * best epoch's weights are tested. */
#define QUICK_TRAIN_SAMPLES 20000
#define QUICK_EPOCHS 2
#define QUICK_MAX_TIME 540.0

#endif
