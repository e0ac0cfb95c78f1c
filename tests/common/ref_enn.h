/* A plain C double-precision reference of the whole Engram Neural Network model: the cell
 * unrolled over T steps (forward and backward through time), the three heads (classifier,
 * regressor, language model) and their losses, every option of /work/shared/ENN-SPEC.md.
 * It is the ground truth the device engine is tested against, and is itself checked by
 * finite differences (tests/test_ref_enn.c). Self-contained: no other helper is used.
 *
 * Layouts. Matrices are [in, out] row-major, as Keras stores kernels (y = x W + b).
 * User-facing sequence tensors are batch-major like Keras: x [B,T,d], tokens/targets
 * [B,T], per-step regressor targets [B,T,O], LM logits [B,T,V]. The tape (the recorded
 * intermediates) is time-major, [T,B,...], because that is how the recurrence walks.
 * Noise xi is [T,N,h] (shared trace) or [T,B,N,h] (per-sample trace).
 *
 * "nH" below is the number of trace copies: 1 for the shared trace, B per-sample. */
#ifndef ENN_TEST_REF_ENN_H
#define ENN_TEST_REF_ENN_H

#include <stddef.h>
#include <stdint.h>

typedef enum { REF_ENN_TRACE_SHARED = 0, REF_ENN_TRACE_PER_SAMPLE = 1 } ref_enn_trace_mode;
typedef enum { REF_ENN_TRACE_GRAD_EXACT = 0, REF_ENN_TRACE_GRAD_STOP = 1 } ref_enn_trace_grad;
typedef enum { REF_ENN_HEAD_CLASSIFIER = 0, REF_ENN_HEAD_REGRESSOR = 1, REF_ENN_HEAD_LM = 2 } ref_enn_head;
typedef enum { REF_ENN_POOL_ATTENTION = 0, REF_ENN_POOL_LAST = 1 } ref_enn_pooling;
typedef enum { REF_ENN_LM_EMBEDDING = 0, REF_ENN_LM_FLOAT = 1 } ref_enn_lm_input;

typedef struct ref_enn_config {
    int B, T, d, h, N;         /* batch, steps, input features, hidden, memory slots */
    double eta;                /* Hebbian learning rate */
    double alpha;              /* trace scale (scale_factor): E = M + alpha H */
    double tau, lambda;        /* temperature and sparsity: tau_e = tau / (1 + 10 lambda) */
    int layer_norm;            /* 1: LayerNorm1 on z and LayerNorm2 on h (eps 1e-6) */
    ref_enn_trace_mode trace_mode;
    ref_enn_trace_grad trace_grad;
    ref_enn_head head;
    /* classifier */
    ref_enn_pooling pooling;
    int num_classes;
    double dropout_rate;       /* used only with a keep mask; kept values scale 1/(1-rate) */
    /* regressor */
    int out_dim;
    int per_step;              /* 1: Dense(out_dim) on every step; 0: on the last state */
    /* language model: d is the embedding width (embedding input) or 1 (float input) */
    int vocab;
    ref_enn_lm_input lm_input;
} ref_enn_config;

/* The spec's defaults (eta 0.05, alpha 0.5, tau 1.5, lambda 0.1, layer norm on, shared
 * trace, exact gradient, attention pooling, dropout 0.3) for the given shapes, classifier
 * head with num_classes = 10. Change the fields you need afterwards. */
ref_enn_config ref_enn_config_default(int B, int T, int d, int h, int N);
/* NULL when the configuration is usable, else a sentence naming the problem. */
const char *ref_enn_config_check(const ref_enn_config *cfg);
/* 1 (shared) or B (per-sample). */
int ref_enn_trace_copies(const ref_enn_config *cfg);
double ref_enn_tau_effective(const ref_enn_config *cfg);

/* ---- Parameters: one flat double array -------------------------------------------
 * Names, order and shapes are those of the library's own layout (enn_model_layout in
 * runtime/models/config.c; tests/test_ref_enn.c checks they agree); only the offsets
 * differ: packed doubles here, 256-byte aligned floats there, so map tensors by name.
 * In this order, each present only when its condition holds:
 *   embedding.table [V, d]     LM with embedding input (d = embedding width)
 *   W_z             [d, h]
 *   b_z             [h]
 *   M               [N, h]
 *   W_u             [3h, 3h]   rows 0..h-1 take z, h..2h-1 take m, 2h..3h-1 take h_prev
 *   b_u             [3h]
 *   W_o             [3h, h]
 *   b_o             [h]
 *   ln1.gain        [h]        layer norm on
 *   ln1.bias        [h]        layer norm on
 *   ln2.gain        [h]        layer norm on
 *   ln2.bias        [h]        layer norm on
 *   pool.w          [h]        classifier with attention pooling (Dense(1) kernel [h,1])
 *   pool.b          [1]        classifier with attention pooling
 *   out.W           [h, K]     K = num_classes | out_dim | vocab
 *   out.b           [K]
 * Vectors have cols = 1 and rows = length. */
#define REF_ENN_MAX_TENSORS 16
typedef struct ref_enn_tensor {
    const char *name;
    size_t rows, cols;
    size_t offset, count;      /* in doubles */
} ref_enn_tensor;

/* Fills out (may be NULL) with the present tensors in order; returns how many. */
int ref_enn_layout(const ref_enn_config *cfg, ref_enn_tensor out[REF_ENN_MAX_TENSORS]);
size_t ref_enn_num_params(const ref_enn_config *cfg);
/* The tensor called name, or NULL when this configuration has none. */
const ref_enn_tensor *ref_enn_find(const ref_enn_config *cfg, const char *name, ref_enn_tensor *storage);
/* params + offset of name, or NULL when absent. */
double *ref_enn_param(const ref_enn_config *cfg, double *params, const char *name);

/* Parameter counting. trainable is the sum of the layout above. The Keras package also
 * creates the initial trace as a non-trainable weight of N*h (it is never used: the
 * trace is re-drawn at every batch), and Keras's model.count_params() includes it, which
 * is where the paper's numbers come from. keras_total = trainable + initial_trace.
 * (With a per-sample trace the library's state is [B,N,h], but it is state, not a
 * weight; initial_trace stays N*h so the count does not depend on the batch.) */
typedef struct ref_enn_count {
    size_t trainable;
    size_t initial_trace;
    size_t keras_total;
} ref_enn_count;
ref_enn_count ref_enn_count_params(const ref_enn_config *cfg);

/* ---- Initialisation (test set-ups only; the device uses its own Philox stream) ----
 * splitmix64 stream. W_z, W_u, W_o: Keras he_normal, i.e. a normal of std
 * sqrt(2/fan_in)/0.87962566 truncated at two of its std, which makes the drawn values'
 * std sqrt(2/fan_in). M, pool.w, out.W: Glorot uniform. Embedding: Keras's default
 * uniform(-0.05, 0.05). Biases 0, layer-norm gain 1 and bias 0. */
uint64_t ref_enn_rand_u64(uint64_t *state);
double ref_enn_rand_uniform(uint64_t *state, double lo, double hi);
double ref_enn_rand_normal(uint64_t *state);
void ref_enn_init_params(const ref_enn_config *cfg, double *params, uint64_t seed);
/* Fills x with Normal(0, std^2) values (h0, H0 at the start of a batch use std 0.01). */
void ref_enn_fill_normal(double *x, size_t n, double std, uint64_t *state);

/* ---- Inputs ---------------------------------------------------------------------- */
typedef struct ref_enn_inputs {
    const double *x;           /* [B,T,d] features (classifier, regressor; LM float: if
                                  non-NULL it replaces the float(token) feature, which
                                  lets a test perturb it) */
    const int *tokens;         /* [B,T] LM input ids in [0,V) */
    const int *labels;         /* [B] classifier classes in [0,num_classes) */
    const double *y;           /* regressor targets [B,O] (last) or [B,T,O] (per step) */
    const int *targets;        /* [B,T] LM targets in [0,V); 0 is padding, ignored */
    const double *h0;          /* [B,h] initial hidden state */
    const double *H0;          /* [nH,N,h] initial trace */
    const double *xi;          /* [T,nH,N,h] trace noise, NULL = none */
    const unsigned char *keep; /* [B,h] classifier dropout keep mask (1 keep, 0 drop), NULL = no dropout */
    /* Testing aid: when non-NULL, step t (0-based) reads H_{t} from frozen_trace
     * [T,nH,N,h] instead of the recurrence. Holding these fixed makes the loss a function
     * whose exact gradient is the stop-gradient mode's gradient. */
    const double *frozen_trace;
} ref_enn_inputs;

/* ---- The tape: every intermediate of one forward pass ------------------------------
 * Step t = 0..T-1 reads hs[t] and H[t] and writes hs[t+1] and H[t+1]. */
typedef struct ref_enn_tape {
    ref_enn_config cfg;
    int nH;
    double *x;          /* [T,B,d] input features, time-major */
    double *zpre;       /* [T,B,h] x W_z + b_z */
    double *zr;         /* [T,B,h] ReLU(zpre) */
    double *ln1_mean;   /* [T,B] */
    double *ln1_rstd;   /* [T,B] 1/sqrt(var + 1e-6) */
    double *z;          /* [T,B,h] the cell's z (after LayerNorm1 when on) */
    double *z_ss;       /* [T,B] sum of squares of z (before the 1e-12 clamp) */
    double *zn;         /* [T,B,h] z / |z| */
    double *E;          /* [T,nH,N,h] M + alpha H[t] */
    double *E_ss;       /* [T,nH,N] */
    double *En;         /* [T,nH,N,h] */
    double *a;          /* [T,B,N] attention over engrams */
    double *m;          /* [T,B,h] retrieved memory a E */
    double *upre;       /* [T,B,3h] [z, m, h_prev] W_u + b_u */
    double *u;          /* [T,B,3h] */
    double *opre;       /* [T,B,h] u W_o + b_o */
    double *hr;         /* [T,B,h] ReLU(opre) */
    double *ln2_mean;   /* [T,B] */
    double *ln2_rstd;   /* [T,B] */
    double *hs;         /* [T+1,B,h] hs[0] = h0, hs[t+1] = output of step t */
    double *Hpre;       /* [T,nH,N,h] (1-eta) H + eta (dH + xi), before the clip */
    double *H;          /* [T+1,nH,N,h] H[0] = H0 (or the frozen trace), H[T] final */
    /* heads */
    double *pool_s;     /* [T,B] tanh(h_t w + b) (attention pooling) */
    double *pool_p;     /* [T,B] softmax over t */
    double *feat;       /* [B,h] pooled feature (classifier) */
    double *feat_drop;  /* [B,h] after dropout */
    double *logits;     /* classifier [B,C]; regressor [B,O] or [B,T,O]; LM [B,T,V] */
    double *probs;      /* softmax of logits (classifier, LM); same shape */
    double loss;
    long lm_count;      /* LM: number of targets that are not padding */
} ref_enn_tape;

ref_enn_tape *ref_enn_tape_new(const ref_enn_config *cfg);
void ref_enn_tape_free(ref_enn_tape *tape);
/* H_T: [nH,N,h]. */
const double *ref_enn_final_trace(const ref_enn_tape *tape);

/* Runs the model, records everything in tape (made for the same cfg), returns the loss. */
double ref_enn_forward(const ref_enn_config *cfg, const double *params, const ref_enn_inputs *in,
                       ref_enn_tape *tape);

/* Gradients of the loss; every non-NULL field is overwritten (not accumulated). */
typedef struct ref_enn_grads {
    double *params;     /* [num_params], same layout as the parameters */
    double *x;          /* [B,T,d] w.r.t. the features (LM: the looked-up embeddings / the float id) */
    double *h0;         /* [B,h] */
    double *H0;         /* [nH,N,h]; all zero in stop mode */
} ref_enn_grads;

/* Backward through the heads and through time, from a tape filled by ref_enn_forward
 * with the same cfg, params and inputs. */
void ref_enn_backward(const ref_enn_config *cfg, const double *params, const ref_enn_inputs *in,
                      const ref_enn_tape *tape, ref_enn_grads *grads);

/* ---- Testing aids ---------------------------------------------------------------- */
/* A hash of every non-smooth decision of the forward pass (each ReLU's sign, each clip's
 * side, each L2-normalisation clamp): equal hashes before and after
 * a finite-difference step mean the step did not straddle a kink. */
uint64_t ref_enn_kink_signature(const ref_enn_tape *tape);
/* Entries of the trace update that the clip changed (|Hpre| > 0.1), over all steps. */
size_t ref_enn_clipped_count(const ref_enn_tape *tape);

#endif
