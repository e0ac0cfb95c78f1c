/* The trace monitor of the `enn` tool: its statistics against hand-worked and directly
 * computed values, and the pictures of `enn trace-demo` decoded by libpng (not cairo,
 * which drew them) at the size plots.h promises, and not blank. */
#include <criterion/criterion.h>
#include <math.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "plots.h"
#include "trace_stats.h"

/* Statistics are sums in double over at most a few thousand floats: 1e-12 relative is
 * far above their rounding and far below any real mistake. */
#define STAT_TOL 1e-12

static void expect_close(double got, double want, const char *what)
{
    cr_expect(fabs(got - want) <= STAT_TOL * fmax(1.0, fabs(want)), "%s = %.17g, expected %.17g", what, got, want);
}

Test(trace_stats, hand_worked_cases)
{
    /* alternating +-1: mean |H| 1, std 1 (mean 0), nothing below 0.01 */
    const float alt[] = {1, -1, 1, -1};
    trace_stats s = trace_stats_compute(alt, 4);
    expect_close(s.mean_abs, 1.0, "mean_abs");
    expect_close(s.std, 1.0, "std");
    expect_close(s.max, 1.0, "max");
    expect_close(s.min, -1.0, "min");
    expect_close(s.sparsity, 0.0, "sparsity");

    /* a constant: std exactly 0, every entry below the threshold */
    const float flat[] = {0.003f, 0.003f, 0.003f};
    s = trace_stats_compute(flat, 3);
    cr_expect_eq(s.std, 0.0, "std of a constant = %g", s.std);
    expect_close(s.sparsity, 1.0, "sparsity");
    expect_close(s.max, (double)0.003f, "max");

    /* {2, 0, -4, 0.005, -0.005, 0.01f}: mean |H| = (2 + 4 + 0.005 + 0.005 + 0.01f) / 6;
     * max 2, min -4; sparse: 0, 0.005, -0.005 (0.01f itself is not below 0.01f) = 3/6. */
    const float mix[] = {2.0f, 0.0f, -4.0f, 0.005f, -0.005f, 0.01f};
    s = trace_stats_compute(mix, 6);
    double sum_abs = 2.0 + 4.0 + (double)0.005f * 2 + (double)0.01f;
    expect_close(s.mean_abs, sum_abs / 6, "mean_abs");
    expect_close(s.max, 2.0, "max");
    expect_close(s.min, -4.0, "min");
    expect_close(s.sparsity, 0.5, "sparsity");
    /* mean = (-2 + 0.01f) / 6; population variance = E[x^2] - mean^2 */
    double mean = (-2.0 + (double)0.01f) / 6, sq = 4.0 + 16.0 + 2 * (double)0.005f * (double)0.005f +
                                                     (double)0.01f * (double)0.01f;
    expect_close(s.std, sqrt(sq / 6 - mean * mean), "std");

    s = trace_stats_compute(NULL, 0);
    cr_expect(s.mean_abs == 0 && s.std == 0 && s.sparsity == 0, "empty input gives zeros");
}

Test(trace_stats, random_array_against_one_pass_sums)
{
    enum { N = 16 * 32 };
    float H[N];
    uint64_t rng = 42;
    for (int i = 0; i < N; i++) H[i] = (float)test_rand_uniform(&rng, -0.05, 0.05);
    /* the reference: one pass of long double sums (the code under test takes two passes) */
    long double s1 = 0, s2 = 0, sa = 0;
    double mx = -INFINITY, mn = INFINITY;
    int small = 0;
    for (int i = 0; i < N; i++) {
        s1 += H[i];
        s2 += (long double)H[i] * H[i];
        sa += fabsl((long double)H[i]);
        mx = fmax(mx, H[i]);
        mn = fmin(mn, H[i]);
        small += H[i] > -0.01f && H[i] < 0.01f;
    }
    trace_stats s = trace_stats_compute(H, N);
    double mean = (double)(s1 / N);
    expect_close(s.mean_abs, (double)(sa / N), "mean_abs");
    /* E[x^2] - mean^2 cancels little here (mean ~ 0): 1e-9 relative covers it */
    cr_expect(fabs(s.std - sqrt((double)(s2 / N) - mean * mean)) <= 1e-9 * s.std, "std %.17g", s.std);
    expect_close(s.max, mx, "max");
    expect_close(s.min, mn, "min");
    expect_close(s.sparsity, (double)small / N, "sparsity");
    cr_expect(small > 0 && small < N, "the case has both sparse and dense entries (%d of %d)", small, N);
}

/* Decodes a PNG with libpng into RGB and checks its size and that it shows something:
 * several distinct colours and a fair share of non-white pixels. */
static void check_png(const char *dir, const char *name)
{
    char path[512];
    cr_assert_lt(snprintf(path, sizeof path, "%s/%s", dir, name), (int)sizeof path);
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    cr_assert(png_image_begin_read_from_file(&img, path), "%s: %s", path, img.message);
    img.format = PNG_FORMAT_RGB;
    cr_expect_eq(img.width, PLOT_WIDTH, "%s is %u wide, expected %d", name, img.width, PLOT_WIDTH);
    cr_expect_eq(img.height, PLOT_HEIGHT, "%s is %u high, expected %d", name, img.height, PLOT_HEIGHT);
    size_t bytes = PNG_IMAGE_SIZE(img);
    png_bytep px = malloc(bytes);
    cr_assert_not_null(px);
    cr_assert(png_image_finish_read(&img, NULL, px, 0, NULL), "%s: %s", path, img.message);

    /* distinct colours: a bitmap over 2^24 RGB values */
    uint8_t *seen = calloc(1u << 21, 1);
    cr_assert_not_null(seen);
    size_t pixels = (size_t)img.width * img.height, distinct = 0, non_white = 0;
    for (size_t i = 0; i < pixels; i++) {
        uint32_t rgb = (uint32_t)px[3 * i] << 16 | (uint32_t)px[3 * i + 1] << 8 | px[3 * i + 2];
        if (!(seen[rgb >> 3] & (1u << (rgb & 7)))) {
            seen[rgb >> 3] |= (uint8_t)(1u << (rgb & 7));
            distinct++;
        }
        non_white += rgb != 0xffffffu;
    }
    /* Text, anti-aliased lines and colour maps give hundreds of colours; a blank or
     * one-colour picture gives one or two. */
    cr_expect_geq(distinct, 32, "%s has only %zu distinct colours", name, distinct);
    cr_expect_geq(non_white, pixels / 50, "%s is almost blank (%zu non-white pixels)", name, non_white);
    free(seen);
    free(px);
}

static void remove_dir(const char *dir)
{
    static const char *files[] = {"trace_heatmap.png", "trace_initial.png", "trace_difference.png", "trace_stats.png",
                                  "attention.png", "training_curves.png", "trace_stats.csv", "log.txt"};
    char path[512];
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        if (snprintf(path, sizeof path, "%s/%s", dir, files[i]) < (int)sizeof path) unlink(path);
    }
    rmdir(dir);
}

Test(trace_monitor, demo_writes_readable_pictures, .timeout = 600)
{
    char dir[] = "/tmp/enn-trace-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    /* the demo runs on the test device with the validation layer on, and fails on any message */
    setenv("ENN_DEVICE", test_device(), 1);
    setenv("ENN_VALIDATION", "1", 1);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "'%s' trace-demo --out '%s/out' --epochs 3 > '%s/log.txt' 2>&1", ENN_TOOL_PATH, dir, dir);
    int rc = system(cmd);
    char out[512], log_path[512];
    cr_assert_lt(snprintf(out, sizeof out, "%s/out", dir), (int)sizeof out);
    cr_assert_lt(snprintf(log_path, sizeof log_path, "%s/log.txt", dir), (int)sizeof log_path);
    if (rc != 0) {
        FILE *f = fopen(log_path, "r");
        char line[512];
        while (f && fgets(line, sizeof line, f)) fputs(line, stderr);
        if (f) fclose(f);
    }
    cr_assert_eq(rc, 0, "%s exited with %d", cmd, rc);

    const char *pngs[] = {"trace_heatmap.png", "trace_initial.png", "trace_difference.png",
                          "trace_stats.png", "attention.png", "training_curves.png"};
    for (size_t i = 0; i < sizeof pngs / sizeof *pngs; i++) check_png(out, pngs[i]);

    /* the log has one statistics line per epoch; the CSV the same epochs with numbers
     * that hang together */
    FILE *f = fopen(log_path, "r");
    cr_assert_not_null(f);
    char line[512];
    int stat_lines = 0;
    while (fgets(line, sizeof line, f))
        if (strstr(line, " trace: mean|H| ") && strstr(line, "sparsity")) stat_lines++;
    fclose(f);
    cr_expect_eq(stat_lines, 3, "log has %d trace statistics lines, expected 3", stat_lines);

    char csv[512];
    cr_assert_lt(snprintf(csv, sizeof csv, "%s/trace_stats.csv", out), (int)sizeof csv);
    f = fopen(csv, "r");
    cr_assert_not_null(f);
    cr_assert_not_null(fgets(line, sizeof line, f));
    cr_expect(!strncmp(line, "epoch,mean_abs,max,min,std,sparsity,", 36), "header: %s", line);
    int rows = 0;
    while (fgets(line, sizeof line, f)) {
        double e, mean_abs, mx, mn, sd, sp;
        cr_assert_eq(sscanf(line, "%lf,%lf,%lf,%lf,%lf,%lf", &e, &mean_abs, &mx, &mn, &sd, &sp), 6, "row: %s", line);
        rows++;
        cr_expect_eq(e, rows, "row %d is epoch %g", rows, e);
        cr_expect(mn <= mx && mean_abs >= 0 && mean_abs <= fmax(fabs(mn), fabs(mx)) && sd >= 0 && sp >= 0 && sp <= 1,
                  "inconsistent statistics: %s", line);
        cr_expect(mean_abs > 0, "the trace is empty after epoch %d", rows);
    }
    fclose(f);
    cr_expect_eq(rows, 3, "CSV has %d epochs, expected 3", rows);
    remove_dir(out);
    remove_dir(dir);
}
