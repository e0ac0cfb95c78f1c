/* `enn train` with each batch cut into shares (tools/enn/parallel.c), on lavapipe with
 * the validation layer on in every process:
 *   - gradient accumulation (--accumulate K: micro-batches in turn, one update) and data
 *     parallelism (mpirun: two and three processes, each on its share of every batch with
 *     the gradients averaged), alone and together, end where one process on the whole
 *     batches ends: an LSTM without dropout (its samples do not interact and it draws
 *     nothing), every parameter of the best checkpoint to 1e-5 (what fp32 summation order
 *     leaves after ~25 updates is ~5e-7; half batches trained alone, without the sum, end
 *     ~1e-2 away); shares of unequal size, and a last batch smaller than the shares' count;
 *   - the processes validate and test on a part each and sum the tallies (the report
 *     counts the whole test set);
 *   - an ENN (shared trace, noise, dropout) trains under mpirun and process 0 alone prints
 *     and writes; a time limit stops every process together and the state is saved;
 *   - a two-process ENN run stopped after its first epoch and resumed ends byte for byte
 *     where the uninterrupted run ends: every process takes its own pass count back (the
 *     noise and dropout it draws), not process 0's, which evaluated more (trace statistics);
 *   - process 0 refusing the run directory (another enn train writes it, it holds a run,
 *     it holds none to resume) ends every process in order, with one message.
 * The MPI cases are skipped when mpirun is missing or the tool was built without MPI, all
 * of them when Fashion-MNIST is missing. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "io/safetensors.h"
#include "tool_run.h"

#define FASHION "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"
#define MPIRUN TEST_MPIRUN

static void require_data(void)
{
    if (access(FASHION, R_OK)) cr_skip_test("Fashion-MNIST is not installed (apt install dataset-fashion-mnist)");
}

static void require_mpi(void)
{
    require_data();
    test_require_mpirun();
}

static void temp_dir(char *buf, size_t size)
{
    snprintf(buf, size, "/tmp/enn-mpi-test-XXXXXX");
    cr_assert(mkdtemp(buf), "mkdtemp");
}

static char *train(const char *launcher, const char *args, const char *dir)
{
    char all[1024], *out;
    snprintf(all, sizeof all, "train %s --out %s", args, dir);
    int rc = test_run_tool(launcher, ENN_TOOL_PATH, all, &out);
    if (rc != 0 && strstr(out, "built without MPI")) cr_skip_test("enn was built without MPI");
    cr_assert_eq(rc, 0, "%s enn %s exited with %d:\n%s", launcher, all, rc, out);
    return out;
}

static size_t count_of(const char *text, const char *needle)
{
    size_t n = 0;
    for (const char *p = strstr(text, needle); p; p = strstr(p + 1, needle)) n++;
    return n;
}

/* Largest difference between the parameters (not the Adam moments) of two checkpoints. */
static double parameter_difference(const char *dir_a, const char *dir_b)
{
    char pa[128], pb[128];
    snprintf(pa, sizeof pa, "%s/best.safetensors", dir_a);
    snprintf(pb, sizeof pb, "%s/best.safetensors", dir_b);
    enn_safetensors *a, *b;
    ENN_ASSERT_OK(enn_safetensors_read(pa, &a));
    ENN_ASSERT_OK(enn_safetensors_read(pb, &b));
    double worst = 0;
    uint32_t compared = 0;
    for (uint32_t i = 0; i < enn_safetensors_count(a); i++) {
        const enn_st_tensor *ta = enn_safetensors_at(a, i);
        if (!strncmp(ta->name, "adam.", 5) || ta->dtype != ENN_ST_F32) continue;
        const enn_st_tensor *tb = enn_safetensors_find(b, ta->name);
        cr_assert(tb && enn_st_elements(tb) == enn_st_elements(ta), "%s: missing or reshaped", ta->name);
        const float *x = ta->data, *y = tb->data;
        for (uint64_t k = 0; k < enn_st_elements(ta); k++) worst = fmax(worst, fabs((double)x[k] - y[k]));
        compared++;
    }
    cr_assert_gt(compared, 3, "no parameters compared");
    enn_safetensors_free(a);
    enn_safetensors_free(b);
    return worst;
}

/* 901 training samples: 90 held out, 811 = 25 x 32 + 11 (a last batch of 11). */
#define LSTM_ARGS                                                                                                     \
    "--data fashion-mnist --train-samples 901 --test-samples 100 --epochs 1 --model lstm --units 16,8 "             \
    "--dropout 0 --batch 32 --lr 0.01 --plain --no-plots --no-report --seed 3"

/* The reference: one process on the whole batches, made once per test process. */
static const char *whole_batches(void)
{
    static char dir[64];
    if (!dir[0]) {
        temp_dir(dir, sizeof dir);
        free(train("", LSTM_ARGS, dir));
    }
    return dir;
}

Test(train_parallel, accumulated_micro_batches_train_as_the_whole_batch, .timeout = 600)
{
    require_data();
    char three[64], half[64];
    temp_dir(three, sizeof three);
    char *out = train("", LSTM_ARGS " --accumulate 3", three);
    cr_expect(strstr(out, "gradient accumulation: 3 micro-batches of up to 11 samples") != NULL, "%s", out);
    free(out);
    double d = parameter_difference(whole_batches(), three);
    cr_expect_lt(d, 1e-5, "three micro-batches end %g from the whole batch", d);
    /* And it is the sum that makes it so: half batches, each its own update, end elsewhere. */
    temp_dir(half, sizeof half);
    free(train("", LSTM_ARGS " --batch 16", half));
    double dh = parameter_difference(whole_batches(), half);
    cr_expect_gt(dh, 1e-3, "half batches end only %g away: the comparison cannot tell", dh);
    /* More micro-batches than samples cannot be. */
    char *err;
    char args[1024];
    snprintf(args, sizeof args, "train %s --accumulate 64 --out %s", LSTM_ARGS, half);
    cr_expect_eq(test_run_tool("", ENN_TOOL_PATH, args, &err), 2);
    cr_expect(strstr(err, "--accumulate 64") != NULL, "%s", err);
    free(err);
    /* Nor a stateful model's state handed from one micro-batch to the next one's samples
     * (into a directory that holds no run: that refusal would come first). */
    char fresh[64];
    temp_dir(fresh, sizeof fresh);
    snprintf(args, sizeof args, "train %s --accumulate 2 --stateful --out %s", LSTM_ARGS, fresh);
    cr_expect_eq(test_run_tool("", ENN_TOOL_PATH, args, &err), 2);
    cr_expect(strstr(err, "--stateful") != NULL, "%s", err);
    free(err);
}

Test(train_parallel, processes_train_as_one_on_the_whole_batch, .timeout = 600)
{
    require_mpi();
    char two[64], three[64], both[64];
    temp_dir(two, sizeof two);
    temp_dir(three, sizeof three);
    temp_dir(both, sizeof both);
    char *out2 = train(MPIRUN(2), LSTM_ARGS, two);
    cr_expect_eq(count_of(out2, "data parallel: 2 processes"), 1, "process 0 alone prints:\n%s", out2);
    cr_expect_eq(count_of(out2, "\ntest accuracy "), 1, "one test report:\n%s", out2);
    /* The processes test a part each: the report counts the whole set. */
    cr_expect(strstr(out2, "\ntest: 100 samples") != NULL, "the test tallies were not summed:\n%s", out2);
    free(out2);
    free(train(MPIRUN(3), LSTM_ARGS, three));
    free(train(MPIRUN(2), LSTM_ARGS " --accumulate 2", both));
    double d2 = parameter_difference(whole_batches(), two), d3 = parameter_difference(whole_batches(), three),
           d22 = parameter_difference(whole_batches(), both);
    cr_expect_lt(d2, 1e-5, "two processes end %g from one process", d2);
    cr_expect_lt(d3, 1e-5, "three processes end %g from one process", d3);
    cr_expect_lt(d22, 1e-5, "two processes of two micro-batches each end %g from one process", d22);
}

Test(train_parallel, enn_processes_train_and_stop_together, .timeout = 600)
{
    require_mpi();
    char dir[64];
    temp_dir(dir, sizeof dir);
    char *out = train(MPIRUN(2),
                      "--data fashion-mnist --train-samples 1500 --test-samples 300 --epochs 1 --hidden 32 --slots 16 "
                      "--batch 32 --lr 0.005 --plain --no-report",
                      dir);
    const char *line = strstr(out, "\ntest accuracy ");
    cr_assert(line, "no test accuracy:\n%s", out);
    /* Chance is 0.1; one process reaches ~0.6 with these settings. */
    cr_expect_gt(atof(line + strlen("\ntest accuracy ")), 0.4, "%s", out);
    cr_expect_eq(count_of(out, "\nepoch 1/1: loss"), 1, "one epoch line, process 0's:\n%s", out);
    free(out);
    char path[128];
    snprintf(path, sizeof path, "%s/plots/trace_heatmap.png", dir);
    cr_expect_eq(access(path, R_OK), 0, "no trace monitor picture at %s", path);
    /* A time limit that falls inside the first epoch: every process stops after the same
     * batch (else one would wait for the others forever) and process 0 saves. */
    char limited[64];
    temp_dir(limited, sizeof limited);
    out = train(MPIRUN(2),
                "--data fashion-mnist --train-samples 20000 --test-samples 100 --epochs 5 --hidden 16 --slots 8 "
                "--batch 32 --max-time 3 --plain --no-report --no-plots",
                limited);
    cr_expect(strstr(out, "time limit reached") != NULL, "%s", out);
    snprintf(path, sizeof path, "%s/last.safetensors", limited);
    cr_expect_eq(access(path, R_OK), 0, "no %s:\n%s", path, out);
    free(out);
}

Test(train_parallel, enn_processes_resume_as_if_uninterrupted, .timeout = 600)
{
    require_mpi();
    const char *args = "--data fashion-mnist --train-samples 600 --test-samples 100 --hidden 16 --slots 8 --batch 32 "
                       "--plain --no-report --no-plots";
    char whole[64], cut[64], all[512];
    temp_dir(whole, sizeof whole);
    temp_dir(cut, sizeof cut);
    snprintf(all, sizeof all, "%s --epochs 2", args);
    free(train(MPIRUN(2), all, whole));
    snprintf(all, sizeof all, "%s --epochs 1", args);
    free(train(MPIRUN(2), all, cut));
    snprintf(all, sizeof all, "%s --epochs 2 --resume", args);
    char *out = train(MPIRUN(2), all, cut);
    cr_expect(strstr(out, "resumed ") != NULL, "%s", out);
    free(out);
    cr_expect(test_same_checkpoint(whole, cut, "last.safetensors"), "the resumed run ends elsewhere than the uninterrupted one");
}

/* mpirun enn train `args` into dir: refused by process 0 saying `want` once, and every
 * process ends in order (no MPI_Abort: a refusal is not a crash), having trained nothing. */
static void expect_refused(const char *args, const char *dir, const char *want)
{
    char all[1024], *out;
    snprintf(all, sizeof all, "train %s --out %s", args, dir);
    int rc = test_run_tool("timeout 120 env " MPIRUN(2), ENN_TOOL_PATH, all, &out);
    if (strstr(out, "built without MPI")) cr_skip_test("enn was built without MPI");
    cr_expect(rc != 0 && rc != 124, "mpirun enn %s exited with %d:\n%s", all, rc, out);
    cr_expect_eq(count_of(out, want), 1, "not \"%s\" once:\n%s", want, out);
    cr_expect(!strstr(out, "MPI_ABORT") && !strstr(out, "data: "), "%s", out);
    free(out);
}

Test(train_parallel, processes_end_together_when_the_directory_is_refused, .timeout = 600)
{
    require_mpi();
    const char *args = "--data fashion-mnist --train-samples 600 --test-samples 100 --hidden 16 --slots 8 --batch 32 "
                       "--epochs 1 --plain --no-report --no-plots";
    char dir[64], want[160], path[128], resume[512];
    temp_dir(dir, sizeof dir);
    int lock = test_hold_run_lock(dir, "pid 4321 on the-test\n");
    snprintf(want, sizeof want, "%s is being written by another enn train (pid 4321 on the-test)", dir);
    expect_refused(args, dir, want);
    close(lock);
    snprintf(resume, sizeof resume, "%s --resume", args);
    expect_refused(resume, dir, "no run to go on with");
    /* (Process 0 looks for the files' names only.) */
    snprintf(path, sizeof path, "%s/best.safetensors", dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fclose(f);
    expect_refused(args, dir, "holds a run");
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}
