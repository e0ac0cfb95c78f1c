/* A model: the recurrent part (the Engram cell, or a baseline's stack of RNN/GRU/LSTM
 * layers), a head and a loss, the flat parameter, gradient and Adam buffers, and one
 * recorder that records each training step. */
#ifndef ENN_MODELS_MODEL_H
#define ENN_MODELS_MODEL_H

#include "enn.h"
#include "models/enn_cell.h"
#include "models/layout.h"
#include "models/rnn_layers.h"
#include "ops/reduce.h"

/* What the head sees of the recurrent part, whichever it is: the top layer's hidden
 * states and where the head writes their gradient. */
typedef struct enn_sequence_output {
    enn_buffer *hs;                /* [T+1, Bp, f]: h_0 .. h_T (slab t at t * enn_view_round(Bp * f * 4)) */
    enn_buffer *dhs;               /* [T+1, Bp, f]: the head writes slabs 1..T */
    uint32_t f, Bp;
} enn_sequence_output;

typedef struct enn_head {
    enn_view W, b, dW, db;         /* out.W [f, outputs], out.b [outputs] */
    enn_view pool_w, dpool_w;      /* pool.w [f] followed by pool.b: [f + 1] */
    enn_buffer *pool_s, *pool_p;   /* [T, Bp] */
    enn_buffer *pool_partial;      /* [Bp, f + 1] */
    enn_buffer *feature;           /* [Bp, f] pooled context (attention pooling) */
    enn_buffer *dropped;           /* [Bp, f] after dropout */
    enn_buffer *dfeature;          /* [Bp, f] */
    enn_buffer *keep_mask;         /* [Bp, f] caller's dropout mask, when given */
    enn_buffer *labels;            /* classifier [Bp]; language model [T, Bp] uint32 */
    enn_buffer *targets;           /* regressor [T] slabs of [Bp, outputs] float */
    enn_buffer *logits;            /* [rows, outputs]: one chunk of rows at a time */
    enn_buffer *dlogits;           /* like logits (a language model with large chunks works in place) */
    const void *stats_host;        /* where the last pass's statistics are readable */
    float *chunk_scale;            /* language model: each chunk's share of the counted tokens */
    uint32_t total_tokens;         /* language model: non-pad targets in the batch */
    enn_buffer *row_loss, *lse, *pred; /* [rows] */
    enn_buffer *stats;             /* one 256-byte slab per chunk (enn_xent_stats / MSE loss) */
    uint32_t chunk_rows;           /* language model: rows of logits per chunk */
    uint32_t chunks;
    enn_buffer *tokens;            /* embedding language model: [T, Bp] ids */
    enn_buffer *embedding_ws;
    uint32_t dh_splits;            /* language model: K-slices of dh = dlogits W^T (1: no split) */
    enn_buffer *split_ws;          /* [dh_splits, chunk_rows, f] partial products of dh */
} enn_head;

struct enn_model {
    enn_context *ctx;
    enn_model_config config;
    enn_layout layout;
    uint32_t features;             /* d of the recurrent part's input */
    enn_buffer *params, *grads, *adam_m, *adam_v;
    enn_param_table *table;
    int baseline;                  /* config.kind is RNN, GRU or LSTM: rnn is used, else cell */
    enn_cell cell;
    enn_rnn_stack rnn;
    enn_sequence_output seq;       /* the recurrent part's output, for the head */
    enn_buffer *x, *dx;            /* [T, Bp, d]: the recurrent part's input and its gradient */
    enn_head head;
    uint64_t head_bytes;           /* device memory of the head's buffers */
    enn_recorder *rec;
    uint64_t step;                 /* Adam updates done */
    uint64_t passes;               /* forward passes: picks noise and dropout streams */
    int gradients_pending;         /* gradients computed or written since the last update */
    int have_state;                /* stateful: hs / H hold a carried state */
    uint32_t last_T, last_B;       /* shapes of the last forward pass */
    float *host;                   /* staging for layout changes of inputs and outputs */
    size_t host_floats;
};

/* Records clipping and one Adam update of the parameters from m->grads (step m->step + 1). */
enn_status enn_model_record_update(enn_model *m, enn_recorder *rec);

/* The model's host staging (m->host), grown to at least n floats; NULL when out of memory. */
float *enn_model_host_floats(enn_model *m, size_t n);

/* Heads (heads.c): buffers, then forward+loss and backward on the recorder. */
enn_status enn_head_create(enn_model *m);
void enn_head_destroy(enn_model *m);
/* Uploads labels / targets / tokens of the batch (host side, before recording). */
enn_status enn_head_upload(enn_model *m, const enn_batch *batch);
/* training: dropout on (unless inputs say otherwise). Writes loss stats to head.stats. */
enn_status enn_head_forward(enn_model *m, enn_recorder *rec, uint32_t T, uint32_t B, int training,
                            const enn_forward_inputs *inputs);
/* Writes seq.dhs slabs 1..T and accumulates the head's parameter gradients. */
enn_status enn_head_backward(enn_model *m, enn_recorder *rec, uint32_t T, uint32_t B, int training,
                             const enn_forward_inputs *inputs);
/* Records the copy of the loss statistics to the host (no wait of its own). */
enn_status enn_head_record_result(enn_model *m, enn_recorder *rec, uint32_t T);
/* Reads the loss statistics after the recording has run. */
enn_status enn_head_result(enn_model *m, uint32_t T, uint32_t B, enn_step_result *out);
/* The batch's labels, targets and tokens: present, and within the classes or vocabulary
 * (checked before a pass changes anything). */
enn_status enn_head_check_batch(const enn_model *m, const enn_batch *batch);
/* Copies the head's outputs (logits or predictions) to the caller's layout:
 * enn_head_output_count floats, when enn_head_outputs_kept says they are kept (a
 * language model's logits computed in chunks are not). */
size_t enn_head_output_count(const enn_model *m, uint32_t T, uint32_t B);
enn_status enn_head_outputs_kept(const enn_model *m, uint32_t T);
enn_status enn_head_outputs(enn_model *m, uint32_t T, uint32_t B, float *out);

#endif
