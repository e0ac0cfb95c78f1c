/* Subcommands of `enn`: each takes its own argv (argv[0] is the command name) and
 * returns the process exit code. */
#ifndef ENN_TOOLS_COMMANDS_H
#define ENN_TOOLS_COMMANDS_H

int cmd_devices(int argc, char **argv);
int cmd_smoke(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_init(int argc, char **argv);
int cmd_grad(int argc, char **argv);
int cmd_trace_demo(int argc, char **argv);
/* `enn bench train` (bench_train.c); argv[0] is "train". */
int cmd_bench_train(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_generate(int argc, char **argv);

#endif
