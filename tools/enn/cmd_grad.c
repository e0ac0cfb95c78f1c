/* enn grad: one forward and backward pass of a checkpoint's model on a batch given as
 * .npy files, with everything random optionally given too (initial state, trace noise,
 * dropout mask), and the loss, outputs and every gradient written to a safetensors file.
 * This is how another implementation checks libenn number for number (README.md,
 * "Checking against another implementation"). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "enn.h"
#include "enn_data.h"
#include "io/safetensors.h"
#include "cli_values.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: enn grad --model ckpt.safetensors --out grads.safetensors\n"
            "                (--x x.npy | --tokens tokens.npy)\n"
            "                (--labels labels.npy | --y y.npy | --targets targets.npy)\n"
            "                [--h0 h0.npy] [--H0 H0.npy] [--noise xi.npy] [--keep-mask mask.npy]\n"
            "                [--device NAME]\n\n"
            "  --x          [B, T, d] float inputs (classifier, regressor)\n"
            "  --tokens     [B, T] integer ids (language model)\n"
            "  --labels     [B] class ids (classifier)\n"
            "  --y          [B, k] or [B, T, k] float targets (regressor)\n"
            "  --targets    [B, T] next-token ids, 0 = padding (language model)\n"
            "  --h0         [B, h] initial hidden state      (else drawn as in training)\n"
            "  --H0         [N, h], or [B, N, h] per-sample: initial trace (else drawn)\n"
            "  --noise      [T, N, h], or [T, B, N, h] per-sample: trace noise xi, already\n"
            "               scaled by sigma (else drawn from the seed when noise is on)\n"
            "  --keep-mask  [B, f] dropout mask, 1 kept / 0 dropped (else no dropout);\n"
            "               f = h, or a baseline's last layer's units\n\n"
            "Writes out.loss [1], out.logits, out.hs [T, B, f], out.a [T, B, N], out.H_T,\n"
            "grad.<parameter> for every parameter (same names and [in, out] layout as the\n"
            "checkpoint), grad.input.x [B, T, d], grad.input.h0 [B, h] and (exact trace\n"
            "gradient) grad.input.H0. A baseline (rnn, gru, lstm) starts from zeros and has\n"
            "no trace: it takes no --h0, --H0 or --noise and writes no out.a, out.H_T,\n"
            "grad.input.h0 or grad.input.H0.\n");
}

typedef struct grad_args {
    const char *model, *out, *device;
    const char *x, *tokens, *labels, *y, *targets, *h0, *H0, *noise, *keep_mask;
} grad_args;

static int fail(const char *fmt, const char *a, const char *b)
{
    fprintf(stderr, "enn grad: ");
    fprintf(stderr, fmt, a, b);
    fprintf(stderr, "\n");
    return 1;
}

/* Reads a float array and checks its shape (rank dims; a dim of 0 in `want` is free and
 * is returned). */
static int read_floats(const char *path, const char *what, uint32_t rank, uint64_t *want, enn_array *a)
{
    if (enn_npy_read(path, ENN_DTYPE_F32, a) != ENN_OK) return fail("%s", enn_last_error(), "");
    int ok = a->rank == rank;
    for (uint32_t i = 0; ok && i < rank; i++) ok = !want[i] || a->shape[i] == want[i];
    if (!ok) {
        char got[128] = "", exp[128] = "";
        for (uint32_t i = 0; i < a->rank && strlen(got) < 100; i++)
            snprintf(got + strlen(got), sizeof got - strlen(got), "%s%llu", i ? ", " : "", (unsigned long long)a->shape[i]);
        for (uint32_t i = 0; i < rank && strlen(exp) < 100; i++) {
            if (want[i]) snprintf(exp + strlen(exp), sizeof exp - strlen(exp), "%s%llu", i ? ", " : "", (unsigned long long)want[i]);
            else snprintf(exp + strlen(exp), sizeof exp - strlen(exp), "%s_", i ? ", " : "");
        }
        fprintf(stderr, "enn grad: %s (%s) has shape [%s]; expected [%s]\n", path, what, got, exp);
        return 1;
    }
    for (uint32_t i = 0; i < rank; i++) want[i] = a->shape[i];
    return 0;
}

/* An integer array (any integer dtype, or floats holding integers) as uint32. */
static int read_ids(const char *path, const char *what, uint32_t rank, uint64_t *want, uint32_t **ids)
{
    enn_array a;
    if (read_floats(path, what, rank, want, &a)) return 1;
    uint64_t n = enn_array_count(&a);
    *ids = malloc(n * sizeof **ids);
    const float *f = a.data;
    for (uint64_t i = 0; *ids && i < n; i++) {
        if (!(f[i] >= 0.0f && f[i] < 16777216.0f) || f[i] != floorf(f[i])) { /* exact in float */
            fprintf(stderr, "enn grad: %s (%s): element %llu is %g, not a non-negative integer\n", path, what,
                    (unsigned long long)i, f[i]);
            free(*ids);
            *ids = NULL;
            enn_array_free(&a);
            return 1;
        }
        (*ids)[i] = (uint32_t)f[i];
    }
    enn_array_free(&a);
    return *ids ? 0 : fail("out of memory reading %s", path, "");
}

/* The tensors of the output file; data malloc'ed. */
typedef struct outputs {
    enn_st_tensor t[160];
    char names[160][64];
    uint32_t count;
} outputs;

static int add_output(enn_model *m, outputs *o, const char *name, uint32_t rank, const uint64_t *shape)
{
    if (o->count == sizeof o->t / sizeof o->t[0]) return fail("too many outputs", "", "");
    uint64_t n = 1;
    for (uint32_t i = 0; i < rank; i++) n *= shape[i];
    float *data = malloc(n * sizeof *data);
    if (!data) return fail("out of memory for %s", name, "");
    if (enn_model_read(m, name, data, n) != ENN_OK) {
        free(data);
        return fail("%s", enn_last_error(), "");
    }
    enn_st_tensor *t = &o->t[o->count];
    snprintf(o->names[o->count], sizeof o->names[o->count], "%s", name);
    *t = (enn_st_tensor){.name = o->names[o->count], .dtype = ENN_ST_F32, .rank = rank, .data = data};
    memcpy(t->shape, shape, rank * sizeof *shape);
    o->count++;
    return 0;
}

static int parse_args(int argc, char **argv, grad_args *a)
{
    struct { const char *flag; const char **dst; } flags[] = {
        {"--model", &a->model}, {"--out", &a->out}, {"--device", &a->device}, {"--x", &a->x},
        {"--tokens", &a->tokens}, {"--labels", &a->labels}, {"--y", &a->y}, {"--targets", &a->targets},
        {"--h0", &a->h0}, {"--H0", &a->H0}, {"--noise", &a->noise}, {"--keep-mask", &a->keep_mask},
    };
    for (int i = 1; i < argc; i++) {
        char flag[64];
        const char *value;
        if (strncmp(argv[i], "--", 2)) return fail("unexpected argument '%s'", argv[i], "");
        if (!enn_cli_flag_value(argc, argv, &i, flag, sizeof flag, &value)) return 1;
        size_t k = 0;
        while (k < sizeof flags / sizeof *flags && strcmp(flag, flags[k].flag)) k++;
        if (k == sizeof flags / sizeof *flags) return fail("unknown option '%s' (see enn grad --help)", flag, "");
        *flags[k].dst = value;
    }
    if (!a->model || !a->out) return fail("--model and --out are required", "", "");
    return 0;
}

static int run(enn_context *ctx, const grad_args *a)
{
    enn_model *m = NULL;
    if (enn_model_load(ctx, a->model, &m) != ENN_OK) return fail("%s", enn_last_error(), "");
    const enn_model_config *c = enn_model_get_config(m);
    int rc = 1;
    int lm = c->head == ENN_HEAD_LANGUAGE_MODEL, embedded = lm && c->lm_input == ENN_LM_EMBEDDING;
    int per_sample = c->cell.trace_mode == ENN_TRACE_PER_SAMPLE, baseline = c->kind != ENN_MODEL_ENN;
    uint32_t h = c->cell.hidden, N = c->cell.memory_slots, d = embedded ? c->embedding_dim : c->input_features;
    /* f: the width of the hidden states the head reads (out.hs, the dropout mask). */
    uint32_t f = baseline ? c->layer_units[c->layers - 1] : h;
    enn_array x = {0}, y = {0}, h0 = {0}, H0 = {0}, noise = {0}, keep = {0};
    uint32_t *tokens = NULL, *labels = NULL, *targets = NULL;
    uint64_t B = 0, T = 0;
    outputs *o = calloc(1, sizeof *o);
    char *config = NULL;
    if (!o) goto done;
    enn_batch batch = {0};
    if (lm) {
        uint64_t s[2] = {0, 0};
        if (!a->tokens || !a->targets) { fail("a language model needs --tokens and --targets", "", ""); goto done; }
        if (read_ids(a->tokens, "tokens [B, T]", 2, s, &tokens) || read_ids(a->targets, "targets [B, T]", 2, s, &targets))
            goto done;
        B = s[0], T = s[1];
    } else {
        uint64_t s[3] = {0, 0, d};
        if (!a->x) { fail("--x is required", "", ""); goto done; }
        if (read_floats(a->x, "x [B, T, d]", 3, s, &x)) goto done;
        B = s[0], T = s[1];
        if (c->head == ENN_HEAD_CLASSIFIER) {
            uint64_t sl[1] = {B};
            if (!a->labels) { fail("a classifier needs --labels", "", ""); goto done; }
            if (read_ids(a->labels, "labels [B]", 1, sl, &labels)) goto done;
        } else {
            uint64_t sy[3] = {B, T, c->outputs};
            if (!a->y) { fail("a regressor needs --y", "", ""); goto done; }
            if (c->return_sequences ? read_floats(a->y, "y [B, T, k]", 3, sy, &y)
                                    : read_floats(a->y, "y [B, k]", 2, (uint64_t[]){B, c->outputs}, &y))
                goto done;
        }
    }
    if (!B || !T || B > c->max_batch || T > c->max_seq_len) {
        fprintf(stderr, "enn grad: a batch of B = %llu, T = %llu; the model takes B 1..%u, T 1..%u\n",
                (unsigned long long)B, (unsigned long long)T, c->max_batch, c->max_seq_len);
        goto done;
    }
    batch = (enn_batch){.size = (uint32_t)B, .seq_len = (uint32_t)T, .x = x.data, .tokens = tokens,
                        .labels = labels, .y = y.data, .targets = targets};
    enn_forward_inputs in = {.no_dropout = 1};
    if (baseline && (a->h0 || a->H0 || a->noise)) {
        fail("%s: a baseline (rnn, gru, lstm) starts from zeros and has no trace; --h0, --H0 and --noise are for "
             "the ENN", a->h0 ? a->h0 : a->H0 ? a->H0 : a->noise, "");
        goto done;
    }
    if (a->h0) {
        if (read_floats(a->h0, "h0 [B, h]", 2, (uint64_t[]){B, h}, &h0)) goto done;
        in.h0 = h0.data;
    }
    if (a->H0) {
        if (per_sample ? read_floats(a->H0, "H0 [B, N, h]", 3, (uint64_t[]){B, N, h}, &H0)
                       : read_floats(a->H0, "H0 [N, h]", 2, (uint64_t[]){N, h}, &H0))
            goto done;
        in.H0 = H0.data;
    }
    if (a->noise) {
        if (!c->cell.noise) { fail("%s: the model has trace noise off", a->noise, ""); goto done; }
        if (per_sample ? read_floats(a->noise, "noise [T, B, N, h]", 4, (uint64_t[]){T, B, N, h}, &noise)
                       : read_floats(a->noise, "noise [T, N, h]", 3, (uint64_t[]){T, N, h}, &noise))
            goto done;
        in.noise = noise.data;
    }
    if (a->keep_mask) {
        if (c->head != ENN_HEAD_CLASSIFIER) { fail("%s: only a classifier has dropout", a->keep_mask, ""); goto done; }
        if (read_floats(a->keep_mask, baseline ? "keep mask [B, f]" : "keep mask [B, h]", 2, (uint64_t[]){B, f}, &keep))
            goto done;
        in.keep_mask = keep.data;
        in.no_dropout = 0;
    }
    enn_step_result r;
    if (enn_model_compute_gradients(m, &batch, &in, &r) != ENN_OK) { fail("%s", enn_last_error(), ""); goto done; }

    /* The loss first, then the outputs, then the gradients. */
    float *loss = malloc(sizeof *loss);
    if (!loss) goto done;
    *loss = r.loss;
    snprintf(o->names[0], sizeof o->names[0], "out.loss");
    o->t[o->count++] = (enn_st_tensor){.name = o->names[0], .dtype = ENN_ST_F32, .rank = 1, .shape = {1}, .data = loss};
    uint64_t logits[3] = {B, T, c->outputs};
    int per_step = lm || (c->head == ENN_HEAD_REGRESSOR && c->return_sequences);
    if (per_step ? add_output(m, o, "out.logits", 3, logits) : add_output(m, o, "out.logits", 2, (uint64_t[]){B, c->outputs}))
        goto done;
    if (add_output(m, o, "out.hs", 3, (uint64_t[]){T, B, f})) goto done;
    if (!baseline &&
        (add_output(m, o, "out.a", 3, (uint64_t[]){T, B, N}) ||
         (per_sample ? add_output(m, o, "out.H_T", 3, (uint64_t[]){B, N, h}) : add_output(m, o, "out.H_T", 2, (uint64_t[]){N, h}))))
        goto done;
    for (uint32_t i = 0; i < enn_model_parameter_tensors(m); i++) {
        enn_tensor_desc t;
        if (enn_model_parameter_desc(m, i, &t) != ENN_OK) goto done;
        char name[96];
        snprintf(name, sizeof name, "grad.%s", t.name);
        uint64_t shape[2] = {t.shape[0], t.shape[1]};
        if (add_output(m, o, name, t.rank, shape)) goto done;
    }
    if (!embedded && add_output(m, o, "grad.input.x", 3, (uint64_t[]){B, T, d})) goto done;
    if (!baseline && add_output(m, o, "grad.input.h0", 2, (uint64_t[]){B, h})) goto done;
    /* With the stop-gradient trace no gradient reaches H0. */
    if (!baseline && c->cell.trace_gradient == ENN_TRACE_GRADIENT_EXACT &&
        (per_sample ? add_output(m, o, "grad.input.H0", 3, (uint64_t[]){B, N, h})
                    : add_output(m, o, "grad.input.H0", 2, (uint64_t[]){N, h})))
        goto done;
    if (enn_model_config_to_json(c, &config) != ENN_OK) { fail("%s", enn_last_error(), ""); goto done; }
    char counted[16];
    snprintf(counted, sizeof counted, "%u", r.counted);
    enn_st_meta meta[] = {{"format", "enn.grad"}, {"config", config}, {"model", a->model}, {"counted", counted}};
    if (enn_safetensors_write(a->out, o->t, o->count, meta, sizeof meta / sizeof *meta) != ENN_OK) {
        fail("%s", enn_last_error(), "");
        goto done;
    }
    printf("%s: loss %.9g over %u %s, %u tensors\n", a->out, r.loss, r.counted, lm ? "tokens" : "samples", o->count);
    rc = 0;
done:
    for (uint32_t i = 0; o && i < o->count; i++) free((void *)o->t[i].data);
    free(o);
    free(config);
    enn_array_free(&x);
    enn_array_free(&y);
    enn_array_free(&h0);
    enn_array_free(&H0);
    enn_array_free(&noise);
    enn_array_free(&keep);
    free(tokens);
    free(labels);
    free(targets);
    enn_model_destroy(m);
    return rc;
}

int cmd_grad(int argc, char **argv)
{
    if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        usage(stdout);
        return 0;
    }
    grad_args a = {0};
    if (parse_args(argc, argv, &a)) return 2;
    enn_context_options options = {.device = a.device};
    enn_context *ctx = NULL;
    if (enn_context_create(&options, &ctx) != ENN_OK) return fail("%s", enn_last_error(), "");
    int rc = run(ctx, &a);
    const char *first = NULL;
    uint32_t messages = enn_context_validation_messages(ctx, &first);
    if (messages) {
        fprintf(stderr, "enn grad: %u validation messages, the first: %s\n", messages, first);
        rc = 1;
    }
    enn_context_destroy(ctx);
    return rc;
}
