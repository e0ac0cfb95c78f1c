/* Progress of an epoch: a bar redrawn in place on a terminal (batch, loss, accuracy,
 * samples/s, ETA), plain lines every so often when the output is a file or a pipe. */
#ifndef ENN_TOOLS_PROGRESS_H
#define ENN_TOOLS_PROGRESS_H

#include <stddef.h>
#include <stdio.h>

typedef struct progress {
    FILE *out;
    int tty;             /* 1: redraw one line with '\r' */
    char label[32];      /* e.g. "epoch 3/50" */
    size_t batches;      /* in the epoch */
    size_t line_every;   /* plain output: a line every this many batches */
    double start;        /* seconds (monotonic) */
    double last_draw;
    size_t samples;
} progress;

double now_seconds(void); /* monotonic clock */
/* Starts an epoch's progress. force_plain: lines even on a terminal. */
void progress_begin(progress *p, FILE *out, int force_plain, const char *label, size_t batches);
/* After batch `done` (1-based) of the epoch; loss and accuracy are running means (a NaN
 * accuracy is not shown). */
void progress_update(progress *p, size_t done, size_t batch_samples, double loss, double accuracy);
/* Clears the bar (terminal) so that the epoch's summary line can follow. */
void progress_end(progress *p);

#endif
