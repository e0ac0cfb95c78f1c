/* The case runner of `enn bench ops` (see bench_ops_case.h). */
#include "bench_ops_case.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/error.h"

void add_check(bench_case *c, const enn_buffer *buf, const float *ref, size_t n, double tol)
{
    c->checks[c->nchecks++] = (bench_check){buf, ref, n, tol};
}

static enn_status time_device(enn_recorder *rec, const bench_case *c, uint32_t reps, double *gpu_ms, double *host_ms)
{
    ENN_TRY(enn_recorder_begin(rec));
    for (uint32_t r = 0; r < reps; r++) ENN_TRY(c->record(rec, c->st));
    double t0 = bench_now_s();
    ENN_TRY(enn_recorder_run(rec));
    *host_ms = (bench_now_s() - t0) * 1e3 / reps;
    const enn_timing *tm;
    uint32_t n = enn_recorder_timings(rec, &tm);
    double sum = 0;
    for (uint32_t i = 0; i < n; i++) sum += tm[i].gpu_ms;
    *gpu_ms = sum / reps;
    return ENN_OK;
}

int run_case(enn_context *ctx, enn_recorder *rec, const bench_options *o, const bench_case *c)
{
    double gpu_ms, host_ms;
    int bad = 0;
    double worst = 0;
    if (time_device(rec, c, 1, &gpu_ms, &host_ms)) goto fail;
    c->cpu(c->st);
    for (int i = 0; i < c->nchecks; i++) {
        const bench_check *k = &c->checks[i];
        float *dev = malloc(k->n * sizeof *dev);
        if (!dev) { fprintf(stderr, "enn bench: out of host memory\n"); return 1; }
        if (enn_buffer_download(ctx, k->buf, 0, dev, k->n * sizeof *dev)) { free(dev); goto fail; }
        double e = bench_rel_error(dev, k->ref, k->n);
        free(dev);
        if (!(e <= (k->tol > 0 ? k->tol : DEFAULT_TOL))) bad = 1;   /* NaN fails too */
        if (!(e <= worst)) worst = e;
    }
    uint32_t reps = (uint32_t)fmin(fmax(o->target_s / (host_ms * 1e-3), 1), 500);
    if (time_device(rec, c, reps, &gpu_ms, &host_ms)) goto fail;
    int cpu_reps = 0;
    double t0 = bench_now_s(), t;
    do {
        c->cpu(c->st);
        cpu_reps++;
    } while ((t = bench_now_s() - t0) < o->target_s);
    double work = c->flops > 0 ? c->flops : c->bytes, cpu_ms = t * 1e3 / cpu_reps;
    bench_row r = {.kernel = c->kernel, .variant = "-", .gpu_ms = gpu_ms, .host_ms = host_ms,
                   .gpu_rate = gpu_ms > 0 ? work / (gpu_ms * 1e-3) * 1e-9 : 0,
                   .host_rate = work / (host_ms * 1e-3) * 1e-9, .cpu_ms = cpu_ms,
                   .cpu_rate = work / (cpu_ms * 1e-3) * 1e-9, .unit = c->flops > 0 ? "GF/s" : "GB/s"};
    snprintf(r.shape, sizeof r.shape, "%s", c->shape);
    snprintf(r.check, sizeof r.check, "%s %.1e", bad ? "BAD" : "ok", worst);
    bench_print_row(&r);
    if (bad) fprintf(stderr, "enn bench: %s %s: the device's result differs from the CPU loop's (error %.3g)\n",
                     c->kernel, c->shape, worst);
    return bad;
fail:
    fprintf(stderr, "enn bench: %s %s: %s\n", c->kernel, c->shape, enn_last_error());
    return 1;
}

void *host_alloc(arena *a, size_t bytes)
{
    void *p = a->nhost < 48 ? calloc(1, bytes ? bytes : 1) : NULL;
    if (!p) { a->failed = 1; return NULL; }
    return a->host[a->nhost++] = p;
}

float *host_rand(arena *a, size_t n, float lo, float hi)
{
    float *x = host_alloc(a, n * sizeof *x);
    for (size_t i = 0; x && i < n; i++) {
        a->seed = a->seed * 6364136223846793005ull + 1442695040888963407ull;
        x[i] = lo + (hi - lo) * (float)((a->seed >> 40) & 0xffffff) / 16777216.0f;
    }
    return x;
}

uint32_t *host_ids(arena *a, size_t n, uint32_t below)
{
    uint32_t *x = host_alloc(a, n * sizeof *x);
    for (size_t i = 0; x && i < n; i++) {
        a->seed = a->seed * 6364136223846793005ull + 1442695040888963407ull;
        x[i] = (uint32_t)((a->seed >> 32) % below);
    }
    return x;
}

enn_buffer *dev_buf(arena *a, const void *data, size_t bytes)
{
    enn_buffer *b = NULL;
    if (a->failed || a->ndev == 32 || enn_buffer_create(a->ctx, bytes, &b)) { a->failed = 1; return NULL; }
    a->dev[a->ndev++] = b;
    void *zeros = data ? NULL : calloc(1, bytes);
    if ((!data && !zeros) || enn_buffer_upload(a->ctx, b, 0, data ? data : zeros, bytes)) a->failed = 1;
    free(zeros);
    return b;
}

void arena_free(arena *a)
{
    for (int i = 0; i < a->ndev; i++) enn_buffer_destroy(a->ctx, a->dev[i]);
    for (int i = 0; i < a->nhost; i++) free(a->host[i]);
    a->ndev = a->nhost = a->failed = 0;
}

int arena_ok(arena *a)
{
    if (!a->failed) return 1;
    fprintf(stderr, "enn bench: setting up buffers failed: %s\n", enn_last_error());
    return 0;
}

int is_cpu_device(const enn_context *ctx) { return ctx->caps.device_type == ENN_DEVICE_CPU; }

int for_shapes(enn_context *ctx, const bench_options *o, size_t count, shape_fn one)
{
    enn_recorder *rec = NULL;
    if (enn_recorder_create(ctx, &rec)) { fprintf(stderr, "enn bench: %s\n", enn_last_error()); return 1; }
    enn_recorder_set_timestamps(rec, 1);
    arena ar = {.ctx = ctx, .seed = 9};
    int rc = 0;
    if (o->quick) count = 1;
    for (size_t i = 0; i < count && !rc; i++) {
        rc = one(ctx, rec, o, &ar, i);
        arena_free(&ar);
    }
    enn_recorder_destroy(rec);
    return rc;
}
