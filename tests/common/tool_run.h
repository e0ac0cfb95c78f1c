/* Runs the built `enn` command from a test and captures what it prints. */
#ifndef ENN_TEST_TOOL_RUN_H
#define ENN_TEST_TOOL_RUN_H

/* Runs `<launcher> <tool> <args>` (launcher may be "", or e.g. "mpirun -np 2") on the
 * test device with the validation layer on; returns the exit status (-1 when killed) and
 * the output, stdout and stderr together, which the caller frees. */
int test_run_tool(const char *launcher, const char *tool, const char *args, char **output);
/* `np` processes under mpirun: Open MPI refuses root without the two variables;
 * --oversubscribe: more processes than cores. */
#define TEST_MPIRUN(np) "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 mpirun --oversubscribe -np " #np
/* Skips the test when mpirun is missing, or cannot start two processes on this machine
 * (no shared memory, a sandbox, a launcher that hangs: nothing to do with enn). */
void test_require_mpirun(void);
/* Runs the shell command `cmd` as it is; returns its exit status (-1 when killed) and
 * what it printed to stdout, which the caller frees. */
int test_run_shell(const char *cmd, char **output);

/* Holds <dir>'s run lock as a running `enn train` does (an exclusive flock on
 * <dir>/.enn-train.lock, tools/enn/run_lock.h), the file naming `holder`; returns the
 * descriptor, whose close lets go. */
int test_hold_run_lock(const char *dir, const char *holder);

/* 1 when <dir_a>/<name> and <dir_b>/<name> hold the same bytes (both must exist). */
int test_same_file(const char *dir_a, const char *dir_b, const char *name);
/* 1 when two checkpoints hold the same tensors, bit for bit, and the same metadata; of
 * `enn train`'s loop state in it, all but the seconds spent and the logs' sizes. */
int test_same_checkpoint(const char *dir_a, const char *dir_b, const char *name);
/* The metadata keys libenn writes into a checkpoint (enn.h, above enn_model_save), NULL-ended. */
extern const char *const test_checkpoint_keys[];

#endif
