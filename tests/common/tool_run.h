/* Runs the built `enn` command from a test and captures what it prints. */
#ifndef ENN_TEST_TOOL_RUN_H
#define ENN_TEST_TOOL_RUN_H

/* Runs `<launcher> <tool> <args>` (launcher may be "", or e.g. "mpirun -np 2") on the
 * test device with the validation layer on; returns the exit status (-1 when killed) and
 * the output, stdout and stderr together, which the caller frees. */
int test_run_tool(const char *launcher, const char *tool, const char *args, char **output);

#endif
