/* enn: the command-line front end of libenn. Each subcommand lives in its own file. */
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "enn.h"

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *help;
} commands[] = {
    {"devices", cmd_devices, "list Vulkan devices, their capabilities, and which one is chosen"},
    {"smoke", cmd_smoke, "run a few dispatches on the chosen device and check the result"},
    {"bench", cmd_bench, "`enn bench ops`: kernel throughput beside a CPU baseline; `enn bench train`: training steps"},
    {"init", cmd_init, "write a freshly initialised model of any configuration to a checkpoint"},
    {"grad", cmd_grad, "loss, outputs and every gradient of one batch, for checking against another implementation"},
    {"trace-demo", cmd_trace_demo, "train a small ENN a few epochs and draw the trace monitor's pictures"},
    {"train", cmd_train, "train a model on a data set (the paper's protocol) and print test metrics"},
    {"eval", cmd_eval, "evaluate a checkpoint: loss, accuracy, perplexity, confusion matrix, F1"},
    {"generate", cmd_generate, "continue a text with a trained language model"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: enn <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-11s %s\n", commands[i].name, commands[i].help);
    fprintf(f, "\n`enn <command> --help` describes a command's options.\n"
               "Environment: ENN_DEVICE (index or name substring), ENN_VALIDATION=1, ENN_CACHE_DIR,\n"
               "ENN_GEMM_VARIANT (reg|texel|tiled|f16|coopmat), ENN_PLAN_AS_GPU=1, ENN_FORCE_STAGING,\n"
               "ENN_MAX_DISPATCHES_PER_SUBMIT; optional paths off: ENN_DISABLE_FP16, ENN_DISABLE_COOPMAT,\n"
               "ENN_DISABLE_PUSH_DESCRIPTORS, ENN_DISABLE_SUBGROUP_SIZE_CONTROL, ENN_DISABLE_TIMESTAMPS,\n"
               "ENN_DISABLE_TEXEL_BUFFERS, ENN_DISABLE_GEMM_TEXEL, ENN_DISABLE_GEMM_TEXEL_WIDE,\n"
               "ENN_DISABLE_GEMM_EPILOGUE_SPEC, ENN_DISABLE_RNN_RECURRENCE, ENN_DISABLE_SPLIT_K,\n"
               "ENN_DISABLE_NOISE_BLOCKS, ENN_DISABLE_PACKED_SLOTS, ENN_DISABLE_INT64.\n"
               "They are read when a context is made. README.md, \"Environment switches\", says what\n"
               "each does.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("enn %s\n", enn_version());
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "enn: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
