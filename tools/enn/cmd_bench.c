/* enn bench ops: per kernel and shape, the device's throughput from timestamp queries
 * and from the host clock, beside a CPU baseline measured in the same run.
 *
 * Kernel families are rows of `families` below: each gets the context, the options and
 * a row printer, and measures its own shapes. To add one, write a bench_<family>
 * function and a line in the table. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"
#include "cli_values.h"
#include "commands.h"
#include "core/context.h"
#include "core/error.h"
#include "core/recorder.h"
#include "enn.h"
#include "ops/gemm.h"

#ifdef ENN_HAVE_OPENBLAS
#include <cblas.h>
/* OpenBLAS's own thread control (declared here: not every cblas.h has them). */
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);
#endif

#define KERNEL_W 14
#define SHAPE_W 20

static void print_header(void)
{
    printf("%-*s %-*s %-8s %10s %10s %13s %13s %10s %13s %8s  %s\n", KERNEL_W, "kernel", SHAPE_W, "shape", "variant",
           "gpu ms", "host ms", "gpu rate", "host rate", "cpu ms", "cpu rate", "dev/cpu", "check (max rel err)");
}

void bench_print_row(const bench_row *r)
{
    char ratio[16] = "-";
    if (r->cpu_rate > 0 && r->gpu_rate + r->host_rate > 0)
        snprintf(ratio, sizeof ratio, "%.2fx", (r->gpu_rate > 0 ? r->gpu_rate : r->host_rate) / r->cpu_rate);
    printf("%-*s %-*s %-8s %10.3f %10.3f %8.3g %-4s %8.3g %-4s %10.3f %8.3g %-4s %8s  %s\n", KERNEL_W, r->kernel, SHAPE_W,
           r->shape, r->variant, r->gpu_ms, r->host_ms, r->gpu_rate, r->unit, r->host_rate, r->unit, r->cpu_ms,
           r->cpu_rate, r->unit, ratio, r->check[0] ? r->check : "-");
    fflush(stdout);
}

double bench_now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

double bench_rel_error(const float *x, const float *ref, size_t n)
{
    double err = 0, scale = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)x[i] - ref[i]);
        if (!(d <= err)) err = d;   /* NaN sticks */
        if (fabs(ref[i]) > scale) scale = fabs(ref[i]);
    }
    return err / (scale > 0 ? scale : 1);
}

/* ---------------------------------------------------------------- GEMM */

/* IEEE half, round to nearest even (the fp16 variants read halves). */
static uint16_t to_half(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000u, man = x & 0x7fffffu;
    int e = (int)((x >> 23) & 0xffu) - 112;
    if (e >= 31) return (uint16_t)(sign | 0x7c00u);
    if (e <= 0) return (uint16_t)sign; /* the benchmark's data has no tiny values */
    uint32_t h = ((uint32_t)e << 10) | (man >> 13), rem = man & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1))) h++;
    return (uint16_t)(sign | h);
}

/* The CPU baseline: cblas_sgemm of op(A) (M x K) times op(B) (K x N) with the chosen
 * thread count and beta over C, GFLOP/s (0 without OpenBLAS). A, B and C are packed. */
static double cpu_sgemm_rate(uint32_t m, uint32_t n, uint32_t k, int ta, int tb, const float *a, const float *b,
                             float beta, float *c, double target_s)
{
#ifdef ENN_HAVE_OPENBLAS
    enum CBLAS_TRANSPOSE opa = ta ? CblasTrans : CblasNoTrans, opb = tb ? CblasTrans : CblasNoTrans;
    uint32_t lda = ta ? m : k, ldb = tb ? k : n;
    cblas_sgemm(CblasRowMajor, opa, opb, m, n, k, 1.0f, a, lda, b, ldb, beta, c, n); /* warm */
    int reps = 0;
    double t0 = bench_now_s(), t;
    do {
        cblas_sgemm(CblasRowMajor, opa, opb, m, n, k, 1.0f, a, lda, b, ldb, beta, c, n);
        reps++;
    } while ((t = bench_now_s() - t0) < target_s);
    return 2.0 * m * n * k * reps / t * 1e-9;
#else
    (void)m; (void)n; (void)k; (void)ta; (void)tb; (void)a; (void)b; (void)beta; (void)c; (void)target_s;
    return 0;
#endif
}

/* Times `reps` back-to-back products (each waits for the previous: they write one C). */
static enn_status time_gemm(enn_context *ctx, enn_recorder *rec, const enn_gemm_desc *d, uint32_t reps,
                            double *gpu_ms, double *host_ms)
{
    ENN_TRY(enn_recorder_begin(rec));
    for (uint32_t r = 0; r < reps; r++) ENN_TRY(enn_gemm(rec, d));
    double t0 = bench_now_s();
    ENN_TRY(enn_recorder_run(rec));
    *host_ms = (bench_now_s() - t0) * 1e3 / reps;
    const enn_timing *tm;
    uint32_t n = enn_recorder_timings(rec, &tm);
    *gpu_ms = 0;
    for (uint32_t i = 0; i < n; i++)
        if (!strcmp(tm[i].name, "bench_gemm") && tm[i].count) *gpu_ms = tm[i].gpu_ms / tm[i].count;
    (void)ctx;
    return ENN_OK;
}

/* --gemm M,N,K[,ta,tb[,EPI]]: fp32 products of given shapes (the LM head's, say), with an
 * epilogue (bias, beta = 0.5 over a C of random values, an activation), every fp32
 * variant with --all-variants, else the device's choice. The first run is checked on 64
 * sampled elements of C against a double-precision dot product (a full CPU product
 * would dominate) through the same epilogue. The CPU baseline is OpenBLAS on the same
 * shape, transposes and beta. */
static int bench_gemm_shapes(enn_context *ctx, const bench_options *o)
{
    int rc = 1;
    for (uint32_t si = 0; si < o->gemm_count; si++) {
        const uint32_t *g = o->gemm_shapes[si];
        uint32_t M = g[0], N = g[1], K = g[2], ta = g[3], tb = g[4], epi = o->gemm_epilogue[si];
        size_t na = (size_t)M * K, nb = (size_t)K * N, nc = (size_t)M * N;
        float *a = malloc(na * 4), *b = malloc(nb * 4), *c0 = malloc(nc * 4), *bias = malloc((size_t)N * 4);
        enn_recorder *rec = NULL;
        enn_buffer *ba = NULL, *bb = NULL, *bc = NULL, *bbias = NULL;
        int ok = 0;
        if (!a || !b || !c0 || !bias) { fprintf(stderr, "enn bench: out of host memory\n"); goto next; }
        uint64_t seed = 777 + si;
        for (size_t i = 0; i < na + nb + nc + N; i++) {
            seed = seed * 6364136223846793005ull + 1442695040888963407ull;
            float x = (float)((seed >> 40) & 0xffff) / 65536.0f - 0.5f;
            if (i < na) a[i] = x;
            else if (i < na + nb) b[i - na] = x;
            else if (i < na + nb + nc) c0[i - na - nb] = x;
            else bias[i - na - nb - nc] = x;
        }
        if (enn_recorder_create(ctx, &rec) || enn_buffer_create(ctx, na * 4, &ba) || enn_buffer_create(ctx, nb * 4, &bb) ||
            enn_buffer_create(ctx, nc * 4, &bc) || enn_buffer_create(ctx, (size_t)N * 4, &bbias) ||
            enn_buffer_upload(ctx, ba, 0, a, na * 4) || enn_buffer_upload(ctx, bb, 0, b, nb * 4) ||
            enn_buffer_upload(ctx, bbias, 0, bias, (size_t)N * 4))
            goto next;
        enn_recorder_set_timestamps(rec, 1);
        /* OpenBLAS on the same shape, transposes and beta (its product has no bias or
         * activation: those are the device's extra work), into a copy of C. */
        float *c_cpu = malloc(nc * 4);
        if (!c_cpu) { fprintf(stderr, "enn bench: out of host memory\n"); goto next; }
        memcpy(c_cpu, c0, nc * 4);
        double cpu = cpu_sgemm_rate(M, N, K, (int)ta, (int)tb, a, b, epi & 2 ? 0.5f : 0.0f, c_cpu, o->target_s);
        free(c_cpu);
        /* The device's own choice for this shape (texel needs vec4 layouts, say). */
        enn_gemm_desc probe = ENN_GEMM_DESC_INIT;
        probe.a = enn_view_of(ba); probe.b = enn_view_of(bb); probe.c = enn_view_of(bc);
        probe.m = M; probe.n = N; probe.k = K; probe.trans_a = (int)ta; probe.trans_b = (int)tb;
        enn_gemm_variant v32;
        if (enn_gemm_pick_variant(ctx, &probe, &v32)) goto next;
        char epi_name[40] = "";
        static const char *const act_names[] = {"", " relu", " tanh", " sigmoid"};
        snprintf(epi_name, sizeof epi_name, "%s%s%s", epi & 1 ? " bias" : "", epi & 2 ? " beta" : "", act_names[epi >> 2 & 3]);
        for (int v = ENN_GEMM_REG; v < ENN_GEMM_VARIANT_COUNT; v++) {
            if (!enn_gemm_variant_supported(ctx, (enn_gemm_variant)v, ENN_F32)) continue;
            if (!o->all_variants && v != (int)v32) continue;
            enn_gemm_desc d = ENN_GEMM_DESC_INIT;
            d.a = enn_view_of(ba); d.b = enn_view_of(bb); d.c = enn_view_of(bc);
            d.m = M; d.n = N; d.k = K; d.trans_a = (int)ta; d.trans_b = (int)tb;
            if (epi & 1) d.bias = enn_view_of(bbias);
            d.beta = epi & 2 ? 0.5f : 0.0f;
            d.act = (enn_activation)(epi >> 2 & 3);
            d.variant = (enn_gemm_variant)v;
            d.name = "bench_gemm";
            enn_gemm_variant fits;
            if (o->all_variants && v != (int)v32 && enn_gemm_pick_variant(ctx, &d, &fits) != ENN_OK) {
                printf("%-*s %ux%ux%u: the %s variant cannot take this layout\n", KERNEL_W, "gemm", M, N, K,
                       enn_gemm_variant_name((enn_gemm_variant)v));
                continue;
            }
            double gpu_ms, host_ms, flop = 2.0 * M * N * K;
            if (enn_buffer_upload(ctx, bc, 0, c0, nc * 4)) goto next;
            if (time_gemm(ctx, rec, &d, 1, &gpu_ms, &host_ms)) goto next;
            double err = 0, scale = 0;
            uint64_t r = 99;
            for (int t = 0; t < 64; t++) {
                r = r * 6364136223846793005ull + 1442695040888963407ull;
                uint32_t m = (uint32_t)((r >> 33) % M), n = (uint32_t)((r >> 7) % N);
                if (t == 0) { m = M - 1; n = N - 1; }   /* the last tile's edge */
                double ref = 0;
                for (uint32_t k = 0; k < K; k++)
                    ref += (double)a[ta ? (size_t)k * M + m : (size_t)m * K + k] * b[tb ? (size_t)n * K + k : (size_t)k * N + n];
                if (epi & 2) ref += 0.5 * c0[(size_t)m * N + n];
                if (epi & 1) ref += bias[n];
                if (fabs(ref) > scale) scale = fabs(ref);   /* before the activation: its scale */
                switch (epi >> 2 & 3) {
                case 1: ref = ref > 0 ? ref : 0; break;
                case 2: ref = tanh(ref); break;
                case 3: ref = 1 / (1 + exp(-ref)); break;
                }
                float got;
                if (enn_buffer_download(ctx, bc, ((size_t)m * N + n) * 4, &got, 4)) goto next;
                if (!(fabs(got - ref) <= err)) err = fabs(got - ref);
            }
            err /= scale > 0 ? scale : 1;
            uint32_t reps = (uint32_t)fmin(fmax(o->target_s / (host_ms * 1e-3), 1), 200);
            if (time_gemm(ctx, rec, &d, reps, &gpu_ms, &host_ms)) goto next;
            bench_row row = {.kernel = "gemm", .variant = enn_gemm_variant_name((enn_gemm_variant)v), .gpu_ms = gpu_ms,
                             .host_ms = host_ms, .gpu_rate = gpu_ms > 0 ? flop / (gpu_ms * 1e-3) * 1e-9 : 0,
                             .host_rate = flop / (host_ms * 1e-3) * 1e-9, .cpu_ms = cpu > 0 ? flop / cpu * 1e-6 : 0,
                             .cpu_rate = cpu, .unit = "GF/s"};
            snprintf(row.shape, sizeof row.shape, "%ux%ux%u%s%s%s", M, N, K, ta ? " ta" : "", tb ? " tb" : "", epi_name);
            snprintf(row.check, sizeof row.check, "%s %.1e", err <= 1e-4 ? "ok" : "BAD", err);
            bench_print_row(&row);
            if (!(err <= 1e-4)) goto next;   /* fp32 sums of K products of values in [-0.5, 0.5] */
        }
        ok = 1;
    next:
        if (!ok) fprintf(stderr, "enn bench: gemm %ux%ux%u: %s\n", M, N, K, enn_last_error());
        enn_buffer_destroy(ctx, ba);
        enn_buffer_destroy(ctx, bb);
        enn_buffer_destroy(ctx, bc);
        enn_buffer_destroy(ctx, bbias);
        enn_recorder_destroy(rec);
        free(a); free(b); free(c0); free(bias);
        if (!ok) return rc;
    }
    return 0;
}

int bench_gemm(enn_context *ctx, const bench_options *o)
{
    if (o->gemm_count) return bench_gemm_shapes(ctx, o);
    enn_recorder *rec = NULL;
    enn_buffer *ba = NULL, *bb = NULL, *bc = NULL, *ha = NULL, *hb = NULL;
    float *a = NULL, *b = NULL, *c = NULL, *dc = NULL;
    int bad = 0;
    uint16_t *h = NULL;
    int rc = 1;
    uint32_t max = o->max_size;
    /* lavapipe and other CPU devices take seconds per 4096^3: stop at 1024 unless asked. */
    if (!o->max_size_given && ctx->caps.device_type == ENN_DEVICE_CPU && max > 1024) max = 1024;
    size_t max_elems = (size_t)max * max;
    a = malloc(max_elems * 4); b = malloc(max_elems * 4); c = malloc(max_elems * 4); h = malloc(max_elems * 2);
    dc = malloc(max_elems * 4);
    if (!a || !b || !c || !h || !dc) { fprintf(stderr, "enn bench: out of host memory\n"); goto done; }
    uint64_t seed = 12345;
    for (size_t i = 0; i < max_elems; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        a[i] = (float)((seed >> 40) & 0xffff) / 65536.0f - 0.5f;
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        b[i] = (float)((seed >> 40) & 0xffff) / 65536.0f - 0.5f;
    }
    if (enn_recorder_create(ctx, &rec) || enn_buffer_create(ctx, max_elems * 4, &ba) ||
        enn_buffer_create(ctx, max_elems * 4, &bb) || enn_buffer_create(ctx, max_elems * 4, &bc))
        goto fail;
    enn_recorder_set_timestamps(rec, 1);

    /* The variants to measure: the device's choice for fp32 and for fp16 operands, or all. */
    enn_gemm_variant variants[ENN_GEMM_VARIANT_COUNT];
    uint32_t nv = 0;
    enn_gemm_desc probe = ENN_GEMM_DESC_INIT;
    enn_gemm_variant v32, v16 = ENN_GEMM_AUTO;
    if (enn_gemm_pick_variant(ctx, &probe, &v32)) goto fail;
    probe.ab_type = ENN_F16;
    if (enn_gemm_pick_variant(ctx, &probe, &v16) != ENN_OK) v16 = ENN_GEMM_AUTO;
    for (int v = ENN_GEMM_REG; v < ENN_GEMM_VARIANT_COUNT; v++) {
        enn_scalar_type t = v == ENN_GEMM_F16 || v == ENN_GEMM_COOPMAT ? ENN_F16 : ENN_F32;
        if (!enn_gemm_variant_supported(ctx, (enn_gemm_variant)v, t)) continue;
        if (o->all_variants || v == (int)v32 || v == (int)v16) variants[nv++] = (enn_gemm_variant)v;
    }
    int have_f16 = 0;
    for (uint32_t i = 0; i < nv; i++) have_f16 |= variants[i] == ENN_GEMM_F16 || variants[i] == ENN_GEMM_COOPMAT;
    if (have_f16 && (enn_buffer_create(ctx, max_elems * 2, &ha) || enn_buffer_create(ctx, max_elems * 2, &hb)))
        goto fail;

    if (o->quick) max = o->min_size;
    for (uint32_t n = o->min_size; n <= max; n *= 2) {
        size_t bytes = (size_t)n * n * 4;
        if (enn_buffer_upload(ctx, ba, 0, a, bytes) || enn_buffer_upload(ctx, bb, 0, b, bytes)) goto fail;
        if (have_f16) {
            for (size_t i = 0; i < (size_t)n * n; i++) h[i] = to_half(a[i]);
            if (enn_buffer_upload(ctx, ha, 0, h, bytes / 2)) goto fail;
            for (size_t i = 0; i < (size_t)n * n; i++) h[i] = to_half(b[i]);
            if (enn_buffer_upload(ctx, hb, 0, h, bytes / 2)) goto fail;
        }
        double flop = 2.0 * n * n * n;
        double cpu = cpu_sgemm_rate(n, n, n, 0, 0, a, b, 0.0f, c, o->target_s);
        for (uint32_t vi = 0; vi < nv; vi++) {
            enn_gemm_variant v = variants[vi];
            int f16 = v == ENN_GEMM_F16 || v == ENN_GEMM_COOPMAT;
            enn_gemm_desc d = ENN_GEMM_DESC_INIT;
            d.a = enn_view_of(f16 ? ha : ba);
            d.b = enn_view_of(f16 ? hb : bb);
            d.c = enn_view_of(bc);
            d.m = d.n = d.k = n;
            d.ab_type = f16 ? ENN_F16 : ENN_F32;
            d.variant = v;
            d.name = "bench_gemm";
            double gpu_ms, host_ms;
            /* One run to compile and warm up, then enough runs to fill target_s. */
            if (time_gemm(ctx, rec, &d, 1, &gpu_ms, &host_ms)) goto fail;
            uint32_t reps = (uint32_t)fmin(fmax(o->target_s / (host_ms * 1e-3), 1), 200);
            if (time_gemm(ctx, rec, &d, reps, &gpu_ms, &host_ms)) goto fail;
            bench_row r = {.kernel = "gemm", .variant = enn_gemm_variant_name(v), .gpu_ms = gpu_ms, .host_ms = host_ms,
                           .gpu_rate = gpu_ms > 0 ? flop / (gpu_ms * 1e-3) * 1e-9 : 0,
                           .host_rate = flop / (host_ms * 1e-3) * 1e-9, .cpu_ms = cpu > 0 ? flop / cpu * 1e-6 : 0,
                           .cpu_rate = cpu, .unit = "GF/s"};
            snprintf(r.shape, sizeof r.shape, "%ux%ux%u%s", n, n, n, f16 ? " f16" : "");
            if (cpu > 0) {
                /* against OpenBLAS's product (in c): fp32 sums in another order; fp16
                 * operands round each input to 11 bits first */
                if (enn_buffer_download(ctx, bc, 0, dc, bytes)) goto fail;
                double e = bench_rel_error(dc, c, (size_t)n * n), tol = f16 ? 1e-2 : 1e-3;
                snprintf(r.check, sizeof r.check, "%s %.1e", e <= tol ? "ok" : "BAD", e);
                if (!(e <= tol)) {
                    fprintf(stderr, "enn bench: gemm %s: the device's product differs from OpenBLAS's\n", r.shape);
                    bad = 1;
                }
            }
            bench_print_row(&r);
        }
    }
    rc = bad;
    goto done;
fail:
    fprintf(stderr, "enn bench: %s\n", enn_last_error());
done:
    enn_buffer_destroy(ctx, ba);
    enn_buffer_destroy(ctx, bb);
    enn_buffer_destroy(ctx, bc);
    enn_buffer_destroy(ctx, ha);
    enn_buffer_destroy(ctx, hb);
    enn_recorder_destroy(rec);
    free(a); free(b); free(c); free(h); free(dc);
    return rc;
}

/* ---------------------------------------------------------------- the table */

static const struct {
    const char *name;
    int (*run)(enn_context *ctx, const bench_options *o);
} families[] = {
    {"gemm", bench_gemm},
    {"cosine_attention", bench_cosine_attention},
    {"hebbian_trace", bench_hebbian_trace},
    {"memory_step", bench_memory_step},
    {"effective_memory", bench_effective_memory},
    {"layer_norm", bench_layer_norm},
    {"recurrence", bench_recurrence},
    {"softmax_xent", bench_xent},
    {"embedding", bench_embedding},
    {"elementwise", bench_elementwise},
    {"sum_rows", bench_sum_rows},
    {"l2_norm", bench_l2_norm},
    {"dropout", bench_dropout},
    {"adam", bench_adam},
    {"pooling", bench_pooling},
};

static void usage(void)
{
    printf("usage: enn bench ops [options]\n"
           "       enn bench train [options]   (training steps per model: enn bench train --help)\n\n"
           "Per kernel and shape: milliseconds per run and rate from GPU timestamp queries and\n"
           "from the host clock (submit to fence, per run), and a CPU baseline measured in the\n"
           "same run with the ratio device / CPU (from the gpu rate, else the host rate): GEMM\n"
           "against OpenBLAS cblas_sgemm with --threads, every other kernel against a plain\n"
           "single-threaded C loop in float computing the same thing. Rates are GFLOP/s (GEMM\n"
           "and the memory path) or GB/s (inputs read once + outputs written once). The gpu\n"
           "time sums the run's dispatches. Each row's device result is checked once against\n"
           "the CPU's (check column: max error over max |ref|); a mismatch fails the command.\n\n"
           "options:\n"
           "  --only FAMILY   one kernel family (");
    for (size_t i = 0; i < sizeof families / sizeof families[0]; i++) printf("%s%s", i ? ", " : "", families[i].name);
    printf(")\n"
           "  --quick         only each family's smallest shape, the GEMM at --min (a smoke test)\n"
           "  --min N         GEMM: smallest square size (default 128)\n"
           "  --max N         GEMM: largest square size (default 4096; 1024 on CPU devices)\n"
           "  --threads T     GEMM's CPU baseline threads (default: OpenBLAS's own default)\n"
           "  --all-variants  every variant the device runs, not only the automatic choices\n"
           "  --time S        seconds per measurement (default 0.3)\n"
           "  --gemm M,N,K[,ta,tb[,EPI]]  GEMM: this shape instead of squares (up to 8 times); EPI\n"
           "                  an epilogue, words joined by '+': bias, beta (0.5), relu, tanh, sigmoid;\n"
           "                  OpenBLAS runs the same shape, transposes and beta (not bias or activation)\n"
           "The device is ENN_DEVICE's or the best one; ENN_DISABLE_* switches apply.\n");
}

/* The epilogue after --gemm's fifth field: words joined by '+' (bias, beta, relu, tanh,
 * sigmoid) into gemm_epilogue's bits; 0 when there is none, -1 for an unknown word. */
static int parse_epilogue(const char *val, uint32_t *out)
{
    *out = 0;
    for (int commas = 0; *val && commas < 5; val++) commas += *val == ',';
    static const char *const words[] = {"bias", "beta", "relu", "tanh", "sigmoid"};
    static const uint32_t bits[] = {1, 2, 1 << 2, 2 << 2, 3 << 2};
    while (*val) {
        size_t len = strcspn(val, "+");
        size_t w = 0;
        while (w < 5 && (strlen(words[w]) != len || strncmp(val, words[w], len))) w++;
        if (w == 5 || (w >= 2 && (*out & (3u << 2)))) return -1;   /* one activation at most */
        *out |= bits[w];
        val += len + (val[len] == '+');
    }
    return 0;
}

/* --gemm M,N,K[,ta,tb[,EPILOGUE]]: sizes 1..65536 whose A, B and C fit in 8 GiB of host
 * memory (the OpenBLAS side holds them too), transposes 0 or 1. Returns 0, or -1 after
 * printing the problem. */
static int parse_gemm_shape(const char *val, uint32_t g[5], uint32_t *epilogue)
{
    char buf[128];
    if (strlen(val) >= sizeof buf) return enn_cli_bad("--gemm", val, "M,N,K or M,N,K,ta,tb[,EPILOGUE]");
    memcpy(buf, val, strlen(val) + 1);
    char *fields[7], *save = NULL;
    int n = 0;
    for (char *t = strtok_r(buf, ",", &save); t && n < 7; t = strtok_r(NULL, ",", &save)) fields[n++] = t;
    int ok = (n == 3 || n == 5 || n == 6) && !strstr(val, ",,") && val[strlen(val) - 1] != ',';
    for (int k = 0; ok && k < n && k < 5; k++) {
        uint64_t v;
        ok = enn_cli_is_u64(fields[k], &v) && (k < 3 ? v >= 1 && v <= 65536 : v <= 1);
        if (ok) g[k] = (uint32_t)v;
    }
    if (n == 3) g[3] = g[4] = 0;
    *epilogue = 0;
    if (ok && n == 6) ok = parse_epilogue(val, epilogue) == 0;
    if (!ok) return enn_cli_bad("--gemm", val, "M,N,K (each 1..65536) or M,N,K,ta,tb (0 or 1)[,EPILOGUE]");
    double bytes = 4.0 * ((double)g[0] * g[2] + (double)g[2] * g[1] + (double)g[0] * g[1]);
    if (bytes > 8.0 * (1 << 30)) {
        fprintf(stderr, "enn bench: --gemm %s needs %.1f GiB of host memory for A, B and C (at most 8)\n", val,
                bytes / (1 << 30));
        return -1;
    }
    return 0;
}

int cmd_bench(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "train")) return cmd_bench_train(argc - 1, argv + 1);
    if (argc < 2 || strcmp(argv[1], "ops")) {
        if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) { usage(); return 0; }
        fprintf(stderr, "enn bench: expected `enn bench ops` or `enn bench train` (see --help)\n");
        return 2;
    }
    bench_options o = {.min_size = 128, .max_size = 4096, .target_s = 0.3};
    for (int i = 2; i < argc; i++) {
        const char *arg = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) { usage(); return 0; }
        else if (!strcmp(arg, "--all-variants")) o.all_variants = 1;
        else if (!strcmp(arg, "--quick")) o.quick = 1;
        else if (val && !strcmp(arg, "--only")) { o.filter = val; i++; }
        else if (val && !strcmp(arg, "--min")) {
            if (enn_cli_u32(arg, val, 1, 16384, &o.min_size)) return 2;
            i++;
        } else if (val && !strcmp(arg, "--max")) {
            /* A, B and C of max^3 in host memory too: 16384 is 3 GiB of them. */
            if (enn_cli_u32(arg, val, 1, 16384, &o.max_size)) return 2;
            o.max_size_given = 1;
            i++;
        } else if (val && !strcmp(arg, "--threads")) {
            uint32_t t;
            if (enn_cli_u32(arg, val, 0, 4096, &t)) return 2;
            o.threads = (int)t;
            i++;
        } else if (val && !strcmp(arg, "--gemm")) {
            if (o.gemm_count == 8) {
                fprintf(stderr, "enn bench: at most 8 --gemm shapes\n");
                return 2;
            }
            if (parse_gemm_shape(val, o.gemm_shapes[o.gemm_count], &o.gemm_epilogue[o.gemm_count])) return 2;
            o.gemm_count++;
            i++;
        } else if (val && !strcmp(arg, "--time")) {
            if (enn_cli_double(arg, val, 1e-3, 3600, &o.target_s)) return 2;
            i++;
        } else {
            fprintf(stderr, "enn bench: unknown option '%s'%s\n", arg, val ? "" : " (or a flag without its value)");
            return 2;
        }
    }
    if (!o.min_size || o.min_size > o.max_size || o.target_s <= 0) {
        fprintf(stderr, "enn bench: need 0 < --min <= --max and --time > 0\n");
        return 2;
    }
#ifdef ENN_HAVE_OPENBLAS
    if (o.threads > 0) openblas_set_num_threads(o.threads);
    int threads = openblas_get_num_threads();
#else
    int threads = 0;
#endif
    enn_context *ctx = NULL;
    if (enn_context_create(NULL, &ctx) != ENN_OK) {
        fprintf(stderr, "enn bench: %s\n", enn_last_error());
        return 1;
    }
    printf("device: %s (%s)%s\n", ctx->caps.device_name, ctx->caps.driver_info,
           ctx->enabled.timestamps ? "" : "; no timestamp queries: gpu columns are 0");
#ifdef ENN_HAVE_OPENBLAS
    printf("cpu baseline: GEMM OpenBLAS, %d thread%s; others a C loop, 1 thread\n", threads, threads == 1 ? "" : "s");
#else
    printf("cpu baseline: GEMM none (built without OpenBLAS); others a C loop, 1 thread\n");
#endif
    print_header();
    int rc = 0, ran = 0;
    for (size_t i = 0; i < sizeof families / sizeof families[0]; i++) {
        if (o.filter && strcmp(o.filter, families[i].name)) continue;
        ran = 1;
        if (families[i].run(ctx, &o)) rc = 1;
    }
    if (!ran) { fprintf(stderr, "enn bench: no kernel family '%s'\n", o.filter); rc = 2; }
    const char *first = NULL;
    uint32_t messages = enn_context_validation_messages(ctx, &first);
    if (messages) {   /* with ENN_VALIDATION=1 (the ctest does), any message fails the run */
        fprintf(stderr, "enn bench: %u validation message%s, the first: %s\n", messages, messages == 1 ? "" : "s",
                first ? first : "?");
        rc = 1;
    }
    enn_context_destroy(ctx);
    return rc;
}
