/* `enn generate` end to end on lavapipe (validation on): an ENN language model trained by
 * `enn train` on a text that cycles through five words continues any prompt with the
 * cycle when it takes the likeliest word (a known answer: the next word of the text is
 * always determined by the last), and so does an LSTM (which does not stream: a stateful
 * copy evaluates one word at a time); draws with one seed repeat, and top-k 1 (or a
 * top-p below its probability) is the likeliest word at any temperature; a classifier, a vocabulary of another size and an
 * empty prompt are refused with a message. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data_files.h"
#include "harness.h"
#include "tool_run.h"

static const char *const CYCLE[5] = {"alpha", "beta", "gamma", "delta", "epsilon"};

/* wiki.{train,valid,test}.tokens: lines of 16 words of the cycle, each line starting
 * elsewhere in it. */
static void write_cycle_text(const char *dir)
{
    const char *names[3] = {"train", "valid", "test"};
    const int lines[3] = {200, 20, 20};
    for (int s = 0; s < 3; s++) {
        char path[TEST_PATH_MAX], name[32];
        snprintf(name, sizeof name, "wiki.%s.tokens", names[s]);
        FILE *f = fopen(test_path(path, dir, name), "w");
        cr_assert(f, "cannot write %s", path);
        for (int i = 0; i < lines[s]; i++) {
            for (int k = 0; k < 16; k++) fprintf(f, "%s ", CYCLE[(i * 7 + k) % 5]);
            fprintf(f, "\n");
        }
        fclose(f);
    }
}

/* `enn generate <args>`: its output's first line (the text), malloc'ed. */
static char *generate(const char *args, int want_rc)
{
    char cmd[2048], *out;
    snprintf(cmd, sizeof cmd, "generate %s", args);
    int rc = test_run_tool("", ENN_TOOL_PATH, cmd, &out);
    cr_assert_eq(rc, want_rc, "enn %s exited with %d:\n%s", cmd, rc, out);
    return out;
}

/* Whether `enn generate` on the checkpoint in `run` continues `prompt` greedily with the
 * cycle from word `next` on, for 12 words. */
static void expect_cycle(const char *run, const char *prompt, int next)
{
    char args[2048], want[512];
    snprintf(args, sizeof args, "'%s/best.safetensors' --prompt '%s' --tokens 12 --temperature 0", run, prompt);
    char *out = generate(args, 0);
    snprintf(want, sizeof want, "%s", prompt);
    for (int k = 0; k < 12; k++) {
        size_t len = strlen(want);
        snprintf(want + len, sizeof want - len, " %s", CYCLE[(next + k) % 5]);
    }
    cr_expect(!strncmp(out, want, strlen(want)) && out[strlen(want)] == '\n', "%s: want \"%s\", got:\n%s", run, want,
              out);
    free(out);
}

/* `enn train` on the cycle text in dir with `flags`, into dir/name (written to run). */
static void train_on_cycle(const char *dir, const char *name, const char *flags, char run[TEST_PATH_MAX])
{
    char args[2048], *out;
    snprintf(args, sizeof args, "train --data wikitext '%s' %s --batch 8 --embedding-dim 16 --plain --no-plots "
             "--no-report --out '%s'", dir, flags, test_path(run, dir, name));
    cr_assert_eq(test_run_tool("", ENN_TOOL_PATH, args, &out), 0, "%s", out);
    free(out);
}

Test(tool_generate, continues_the_text_it_learned, .timeout = 600)
{
    char dir[TEST_PATH_MAX], run[TEST_PATH_MAX], args[2048], *out;
    test_tmpdir(dir);
    write_cycle_text(dir);
    train_on_cycle(dir, "run", "--epochs 3 --hidden 16 --slots 4 --lr 0.01", run);

    /* The likeliest word each time: the cycle from wherever the prompt leaves it. */
    expect_cycle(run, "alpha beta", 2);
    expect_cycle(run, "Delta", 4);
    expect_cycle(run, "gamma delta epsilon alpha", 1);
    /* A baseline the same way (it learns the cycle more slowly). */
    char lstm[TEST_PATH_MAX];
    train_on_cycle(dir, "lstm", "--model lstm --units 16,16 --epochs 8 --lr 0.02", lstm);
    expect_cycle(lstm, "alpha beta", 2);
    expect_cycle(lstm, "Delta", 4);
    /* Draws: one seed, one text; top-k 1 is the likeliest word whatever the temperature. */
    snprintf(args, sizeof args, "'%s/best.safetensors' --prompt beta --tokens 30 --temperature 3 --seed 9", run);
    char *a = generate(args, 0), *b = generate(args, 0);
    cr_expect_str_eq(a, b, "two runs with seed 9 differ");
    free(a);
    free(b);
    /* Top-k 1, or a top-p below the likeliest word's probability, keeps that word alone. */
    const char *const alone[] = {"--top-k 1", "--top-p 0.01"};
    for (size_t i = 0; i < sizeof alone / sizeof *alone; i++) {
        snprintf(args, sizeof args, "'%s/best.safetensors' --prompt beta --tokens 6 --temperature 50 %s", run, alone[i]);
        out = generate(args, 0);
        cr_expect(!strncmp(out, "beta gamma delta epsilon alpha beta gamma\n", 42), "%s: %s", alone[i], out);
        free(out);
    }
    snprintf(args, sizeof args, "'%s/best.safetensors' --prompt beta --top-p 0", run);
    out = generate(args, 2);
    cr_expect(strstr(out, "--top-p"), "%s", out);
    free(out);

    /* enn eval reads the vocabulary beside the checkpoint: a run with a smaller one than
     * the text's evaluates without its flags repeated. */
    char small[TEST_PATH_MAX];
    train_on_cycle(dir, "small", "--epochs 1 --hidden 8 --slots 4 --vocab-size 5", small);
    snprintf(args, sizeof args, "eval '%s/best.safetensors' --data wikitext '%s' --plain", small, dir);
    cr_expect_eq(test_run_tool("", ENN_TOOL_PATH, args, &out), 0, "%s", out);
    cr_expect(strstr(out, "perplexity"), "%s", out);
    cr_expect(!strstr(out, "warning"), "%s", out);
    free(out);
    /* A language model that does not record the word rules of its vocabulary (a libenn
     * from before words were cut as Python's lower().split()) is warned about. */
    enn_context *ctx = test_context();
    enn_model *model;
    char best[TEST_PATH_MAX + 32], old[TEST_PATH_MAX + 32];
    snprintf(best, sizeof best, "%s/best.safetensors", small);
    snprintf(old, sizeof old, "%s/old.safetensors", small);
    char *layout = NULL;
    cr_assert_eq(enn_checkpoint_metadata(best, "enn.data_layout", &layout), ENN_OK, "%s", enn_last_error());
    cr_expect(layout && strstr(layout, "\"words\":\"str.lower().split()\""), "%s", layout ? layout : "(none)");
    free(layout);
    cr_assert_eq(enn_model_load(ctx, best, &model), ENN_OK, "%s", enn_last_error());
    cr_assert_eq(enn_model_save(model, old), ENN_OK, "%s", enn_last_error());
    enn_model_destroy(model);
    test_context_finish(ctx);
    const char *const commands[] = {"eval '%s' --data wikitext '%s' --plain", "generate '%s' --prompt alpha --tokens 2"};
    for (int i = 0; i < 2; i++) {
        snprintf(args, sizeof args, commands[i], old, dir);
        cr_expect_eq(test_run_tool("", ENN_TOOL_PATH, args, &out), 0, "%s", out);
        cr_expect(strstr(out, "warning: ") && strstr(out, "does not say how its vocabulary's words were cut"), "enn %s:\n%s",
                  args, out);
        free(out);
    }
    /* And a paper-mode model (the token id as one float feature) evaluates to the test
     * perplexity its training printed. */
    char paper[TEST_PATH_MAX], *trained;
    snprintf(args, sizeof args, "train --data wikitext '%s' --paper --epochs 1 --hidden 8 --slots 4 --batch 8 --plain "
             "--no-plots --no-report --out '%s'", dir, test_path(paper, dir, "paper"));
    cr_assert_eq(test_run_tool("", ENN_TOOL_PATH, args, &trained), 0, "%s", trained);
    snprintf(args, sizeof args, "eval '%s/best.safetensors' --data wikitext '%s' --plain", paper, dir);
    cr_expect_eq(test_run_tool("", ENN_TOOL_PATH, args, &out), 0, "%s", out);
    const char *want = strstr(trained, "\ntest: "), *got = strstr(out, "perplexity ");
    cr_assert(want && strstr(want, "perplexity ") && got, "enn train:\n%s\nenn eval:\n%s", trained, out);
    double ppl_train = atof(strstr(want, "perplexity ") + 11), ppl_eval = atof(got + 11);
    cr_expect(fabs(ppl_train - ppl_eval) <= 1e-3 * ppl_train, "enn train's test perplexity %g, enn eval's %g",
              ppl_train, ppl_eval);
    free(trained);
    free(out);
    /* Refusals. Spans of one token score nothing (each step is scored on the next). */
    snprintf(args, sizeof args, "train --data wikitext '%s' --seq-len 1 --plain --out '%s/one'", dir, dir);
    cr_expect_eq(test_run_tool("", ENN_TOOL_PATH, args, &out), 1, "%s", out);
    cr_expect(strstr(out, "--seq-len 1: a language model's spans need at least 2 tokens"), "%s", out);
    free(out);
    snprintf(args, sizeof args, "'%s/best.safetensors' --prompt '   '", run);
    out = generate(args, 1);
    cr_expect(strstr(out, "no words"), "%s", out);
    free(out);
    char vocab[TEST_PATH_MAX];
    test_write_file(test_path(vocab, dir, "small.txt"), "<pad>\n<unk>\nalpha\n", 18);
    snprintf(args, sizeof args, "'%s/best.safetensors' --prompt alpha --vocab '%s'", run, vocab);
    out = generate(args, 1);
    cr_expect(strstr(out, "holds 3 words") && strstr(out, "predicts over"), "%s", out);
    free(out);
    char classifier[TEST_PATH_MAX];
    snprintf(args, sizeof args, "init --head classifier --input-features 3 --max-seq-len 4 --outputs 3 --out '%s'",
             test_path(classifier, dir, "classifier.safetensors"));
    cr_assert_eq(test_run_tool("", ENN_TOOL_PATH, args, &out), 0, "%s", out);
    free(out);
    snprintf(args, sizeof args, "'%s' --prompt alpha --vocab '%s/vocab.txt'", classifier, run);
    out = generate(args, 1);
    cr_expect(strstr(out, "not a language model"), "%s", out);
    free(out);
    out = generate("--prompt alpha", 2);
    cr_expect(strstr(out, "which checkpoint"), "%s", out);
    free(out);
    test_tmpdir_remove(dir);
}
