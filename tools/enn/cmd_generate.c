/* enn generate: continues a text with a trained language model.
 *
 *   the checkpoint (enn_model_load) and its vocabulary (vocab.txt beside it, as enn train
 *   writes it), the prompt encoded as the training text was read (enn_vocab_encode)
 *   one stream (enn_stream_*) from the reset state: a step per prompt word, then per
 *   generated word, each drawn from the softmax of the logits / temperature, top-k and
 *   top-p (sampling.c; temperature 0: the likeliest), never <pad>
 *   (the RNN/GRU/LSTM baselines do not stream: a stateful copy of the model evaluates
 *   one-word batches instead, carrying its state from each to the next) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_values.h"
#include "commands.h"
#include "enn.h"
#include "enn_data.h"
#include "sampling.h"
#include "train_data.h"

typedef struct generate_options {
    const char *checkpoint, *vocab, *prompt, *device;
    uint32_t tokens;
    sampling draw;
    uint64_t seed;
} generate_options;

static void usage(FILE *f)
{
    fprintf(f, "usage: enn generate CHECKPOINT --prompt TEXT [options]\n\n"
               "Continues TEXT with a language model (enn train --data wikitext ...): the prompt's\n"
               "words go through the model one step at a time, then each next word is drawn from the\n"
               "model's prediction and fed back.\n\n"
               "  --prompt TEXT        the words to start from (read as the training text was)\n"
               "  --vocab FILE         the model's vocabulary (default: vocab.txt beside CHECKPOINT)\n"
               "  --tokens N           words to generate (default 20)\n"
               "  --temperature T      softmax temperature; 0 takes the likeliest word (default 1)\n"
               "  --top-k K            draw among the K likeliest words only; 0: all (default 0)\n"
               "  --top-p P            then among the fewest likeliest words whose probabilities sum\n"
               "                       to P or more (nucleus sampling; 0 < P <= 1, default 1: all)\n"
               "  --seed S             the draws' seed (default 1)\n"
               "  --device NAME|INDEX  the Vulkan device (default: ENN_DEVICE, else the best)\n");
}

static int parse(int argc, char **argv, generate_options *o)
{
    *o = (generate_options){.tokens = 20, .draw = {.temperature = 1.0f, .top_p = 1.0f}, .seed = 1};
    for (int i = 1; i < argc; i++) {
        const char *f = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(f, "--help") || !strcmp(f, "-h")) {
            usage(stdout);
            return 1;
        }
        if (f[0] != '-') {
            if (o->checkpoint) {
                fprintf(stderr, "enn generate: one checkpoint (%s, then %s)\n", o->checkpoint, f);
                return -1;
            }
            o->checkpoint = f;
            continue;
        }
        int bad = 0;
        if (!v) bad = enn_cli_bad(f, v, "a value");
        else if (!strcmp(f, "--prompt")) o->prompt = v;
        else if (!strcmp(f, "--vocab")) o->vocab = v;
        else if (!strcmp(f, "--device")) o->device = v;
        else if (!strcmp(f, "--tokens")) bad = enn_cli_u32(f, v, 1, 1u << 20, &o->tokens);
        else if (!strcmp(f, "--top-k")) bad = enn_cli_u32(f, v, 0, UINT32_MAX, &o->draw.top_k);
        else if (!strcmp(f, "--top-p")) bad = enn_cli_float(f, v, 1e-30, 1.0, &o->draw.top_p);
        else if (!strcmp(f, "--temperature")) bad = enn_cli_float(f, v, 0.0, 1e6, &o->draw.temperature);
        else if (!strcmp(f, "--seed")) bad = enn_cli_u64(f, v, 0, UINT64_MAX, &o->seed);
        else {
            fprintf(stderr, "enn generate: unknown flag %s (see --help)\n", f);
            return -1;
        }
        if (bad) return -1;
        i++;
    }
    if (!o->checkpoint || !o->prompt) {
        fprintf(stderr, "enn generate: which checkpoint and prompt? (usage: enn generate CHECKPOINT --prompt TEXT)\n");
        return -1;
    }
    return 0;
}

/* splitmix64: the draws' random numbers, uniform in [0, 1). */
static double next_uniform(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (double)(z >> 11) * 0x1.0p-53;
}

/* One word in, the next word's logits out. */
typedef struct stepper {
    enn_stream *stream;     /* an ENN */
    enn_model *stateful;    /* a baseline: its stateful copy */
    int float_input;        /* the token id as a float feature (--paper) */
} stepper;

static enn_status step_word(stepper *s, uint32_t id, float *logits)
{
    float x = (float)id;
    if (s->stream)
        return s->float_input ? enn_stream_step(s->stream, &x, logits) : enn_stream_step_tokens(s->stream, &id, logits);
    uint32_t pad = 0;   /* no target: nothing to score */
    enn_batch b = {.size = 1, .seq_len = 1, .x = &x, .tokens = &id, .targets = &pad};
    return enn_model_evaluate(s->stateful, &b, NULL, logits);
}

/* A stepper for `model` (loaded from `checkpoint`). */
static enn_status stepper_open(stepper *s, enn_context *ctx, enn_model *model, const char *checkpoint)
{
    const enn_model_config *c = enn_model_get_config(model);
    *s = (stepper){.float_input = c->lm_input == ENN_LM_FLOAT_FEATURE};
    if (c->kind == ENN_MODEL_ENN) return enn_stream_create(model, 1, &s->stream);
    enn_model_config sc = *c;
    sc.cell.stateful = 1;
    sc.max_batch = 1;
    enn_status st = enn_model_create(ctx, &sc, &s->stateful);
    if (st == ENN_OK) st = enn_model_load_into(s->stateful, checkpoint);
    return st;
}

static void stepper_close(stepper *s)
{
    enn_stream_destroy(s->stream);
    enn_model_destroy(s->stateful);
}

int cmd_generate(int argc, char **argv)
{
    generate_options o;
    int parsed = parse(argc, argv, &o);
    if (parsed) return parsed > 0 ? 0 : 2;

    int rc = 1;
    enn_context *ctx = NULL;
    enn_model *model = NULL;
    stepper stepper = {0};
    enn_vocab *vocab = NULL;
    float *logits = NULL;
    uint32_t *ids = NULL;
    sampling_candidate *scratch = NULL;
    char vocab_path[1200];
    if (!o.vocab) {
        /* vocab.txt beside the checkpoint, where enn train writes it. */
        const char *slash = strrchr(o.checkpoint, '/');
        snprintf(vocab_path, sizeof vocab_path, "%.*svocab.txt", slash ? (int)(slash - o.checkpoint + 1) : 0,
                 o.checkpoint);
        o.vocab = vocab_path;
    }
    enn_context_options copt = {.device = o.device};
    if (enn_context_create(&copt, &ctx) || enn_model_load(ctx, o.checkpoint, &model)) goto fail;
    const enn_model_config *c = enn_model_get_config(model);
    if (c->head != ENN_HEAD_LANGUAGE_MODEL) {
        fprintf(stderr, "enn generate: %s is not a language model\n", o.checkpoint);
        goto done;
    }
    if (train_data_check_words(o.checkpoint) || enn_vocab_load(o.vocab, &vocab)) goto fail;
    uint32_t V = c->outputs;
    if (enn_vocab_size(vocab) != V) {
        fprintf(stderr, "enn generate: %s holds %u words; %s predicts over %u\n", o.vocab, enn_vocab_size(vocab),
                o.checkpoint, V);
        goto done;
    }
    size_t words;
    if (enn_vocab_encode(vocab, o.prompt, 0, NULL, 0, &words)) goto fail;
    if (!words) {
        fprintf(stderr, "enn generate: the prompt has no words\n");
        goto done;
    }
    if (!(ids = malloc(words * sizeof *ids)) || !(logits = malloc((size_t)V * sizeof *logits)) ||
        !(scratch = malloc((size_t)V * sizeof *scratch))) {
        fprintf(stderr, "enn generate: out of memory\n");
        goto done;
    }
    if (enn_vocab_encode(vocab, o.prompt, 0, ids, words, &words) || stepper_open(&stepper, ctx, model, o.checkpoint))
        goto fail;
    uint64_t rng = o.seed;
    printf("%s", o.prompt);
    uint32_t id = 0;
    for (size_t step = 0; step < words + o.tokens; step++) {
        if (step >= words) {
            id = sampling_choose(logits, V, 1, &o.draw, next_uniform(&rng), scratch);   /* never <pad> */
            printf(" %s", enn_vocab_token(vocab, id));
            fflush(stdout);
        } else {
            id = ids[step];
        }
        if (step + 1 == words + o.tokens) break;   /* the last word needs no prediction */
        if (step_word(&stepper, id, logits)) {
            printf("\n");
            goto fail;
        }
    }
    printf("\n");
    const char *first_message = NULL;
    uint32_t messages = enn_context_validation_messages(ctx, &first_message);
    if (messages) {
        fprintf(stderr, "enn generate: %u validation messages; the first: %s\n", messages, first_message);
        goto done;
    }
    rc = 0;
    goto done;
fail:
    fprintf(stderr, "enn generate: %s\n", enn_last_error());
done:
    free(ids);
    free(scratch);
    free(logits);
    stepper_close(&stepper);
    enn_vocab_free(vocab);
    enn_model_destroy(model);
    enn_context_destroy(ctx);
    return rc;
}
