/* The fused backward of the memory step (enn_memory_step_backward) on its own: the fused
 * forward over T steps, then the backward over the reverse scan exactly as
 * enn_cell_backward drives it (two carry buffers, dM summed over the steps, per-sample
 * dM_samples summed by the caller, dH_0 from step 0), against central differences of the
 * double reference composition (ref_effective_memory, ref_cosine_attention,
 * ref_hebbian_trace) of
 *   exact trace gradient:  L = sum_t wm_t . m_t + wH . H_T
 *   stopped (ENN-SPEC: "every step then treats H as a constant input"):
 *                          L = sum_t wm_t . m_t with each H_t held at its forward value.
 * wm_t is the op's dm; the carry into the last step is g_T-1 = [pre_T-1 inside the clip]
 * * wH (the op's contract; the model passes zero, a special case). Checked: dz_t of every
 * step, dM (shared trace) or each sample's dM_samples[b] against the gradient of that
 * sample's part of L (per-sample trace), dH_0, and each step's workspace: ds = dL/dcos_t
 * (a finite difference in a shift of the cosines), q = ds * cos_t, the signed 1/|z_b|.
 * dz, dM and dM_samples start nonzero: the op adds to them.
 *
 * Kernel paths: on lavapipe (a CPU device) h % 4 == 0 runs the vec4 texel kernels (rows
 * kernel: 8 invocations each taking 8 slots or 4 vectors; slot kernel: 4 vectors each),
 * with the texel buffers off the vec4 storage-buffer kernels, h % 4 != 0 the scalar ones;
 * posing as a discrete GPU runs the 256-wide row kernels and the batch-split slot kernel.
 * B = 9 rows and N = 10 slots leave partial 8-row / 8-slot tiles, h = 36 (9 vectors) a
 * partial 4-vector block; N = 70 and h = 132 (33 vectors) go round the blocked loops a
 * second time (and N = 70 the GPU row kernel's slot loop). This suite switches layouts
 * itself (it is not one of the _gpu_plan suites). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/context.h"
#include "harness.h"
#include "ops/cosine_attention.h"
#include "ops/memory_step.h"
#include "ops/philox.h"
#include "ops_testutil.h"
#include "ref_cosine_attention.h"
#include "ref_effective_memory.h"
#include "ref_hebbian_trace.h"

enum { TMAX = 4 };
static const double ALPHA = 0.5, TAU_E = 0.75, ETA = 0.3, CLIP = 0.1, SIGMA = 0.004;
#define NOISE_SEED 42u
#define NOISE_STREAM(t) ((7ull << 20) + (t))
/* Central differences in double with step 1e-5: truncation ~1e-10 and rounding
 * ~1e-16 |L| / 1e-5 ~ 1e-10 (|L| ~ 10), far below the fp32 tolerance (a step of 1e-6
 * left 1e-8 of rounding, 5e-6 of the smallest gradients' scale). */
#define FD_STEP 1e-5
/* A step of 1e-5 moves any trace value pre_t by < 1e-5 (d pre / d H_0 <= 1 - eta, and
 * eta a z / B per unit of z, M or a cosine), and the device's fp32 forward differs from
 * the double one by < 1e-6: a margin of 2e-5 between every pre_t and the clip bounds
 * keeps every clip decision the same. */
#define CLIP_MARGIN 2e-5

typedef struct config {
    uint32_t T, B, N, h;
    int ps, exact;
    enn_noise_mode noise;
    uint32_t sample;   /* coordinates checked per tensor at most (a fixed spread) */
    uint64_t seed;     /* of the data */
} config;

typedef struct problem {
    config c;
    size_t nH;
    double *M, *H0, *z[TMAX], *wm[TMAX], *wH, *xi[TMAX];
    double *H[TMAX + 1], *pre[TMAX], *cos[TMAX]; /* the unperturbed forward's */
    double *E, *Hc, *Hn, *a, *m;                 /* scratch */
} problem;

/* L, and with a per-sample trace each sample's part of it in Lb[B] (may be NULL); shift
 * [B,N] (may be NULL) is added to step shift_t's cosines. nominal: also keeps the traces,
 * the unclipped updates and the cosines (the stopped gradient's constants come from it). */
static double loss(problem *p, uint32_t shift_t, const double *shift, double *Lb, int nominal)
{
    const config *c = &p->c;
    size_t nh = (size_t)c->N * c->h;
    double L = 0;
    if (Lb) memset(Lb, 0, c->B * sizeof *Lb);
    memcpy(p->Hc, p->H0, p->nH * sizeof *p->Hc);
    for (uint32_t t = 0; t < c->T; t++) {
        int recur = c->exact || nominal;
        const double *Ht = recur ? p->Hc : p->H[t];
        if (nominal) memcpy(p->H[t], p->Hc, p->nH * sizeof *p->Hc);
        ref_effective_memory_forward(c->ps ? c->B : 1, nh, p->M, Ht, ALPHA, p->E);
        ref_cosine_attention_forward_shifted(c->B, c->N, c->h, c->ps, p->z[t], p->E, TAU_E, t == shift_t ? shift : NULL,
                                             p->a, p->m, nominal ? p->cos[t] : NULL);
        for (uint32_t b = 0; b < c->B; b++)
            for (uint32_t j = 0; j < c->h; j++) {
                double v = p->wm[t][(size_t)b * c->h + j] * p->m[(size_t)b * c->h + j];
                L += v;
                if (Lb) Lb[b] += v;
            }
        if (!recur) continue;
        ref_hebbian_trace_forward(c->B, c->N, c->h, c->ps, p->Hc, p->a, p->z[t], p->xi[t], ETA, CLIP, p->Hn,
                                  nominal ? p->pre[t] : NULL);
        double *tmp = p->Hc;
        p->Hc = p->Hn, p->Hn = tmp;
    }
    if (nominal) memcpy(p->H[c->T], p->Hc, p->nH * sizeof *p->Hc);
    if (c->exact)
        for (size_t i = 0; i < p->nH; i++) {
            L += p->wH[i] * p->Hc[i];
            if (Lb) Lb[i / nh] += p->wH[i] * p->Hc[i];
        }
    return L;
}

static double *dvec(uint64_t *st, size_t n, double lo, double hi)
{
    double *x = malloc((n ? n : 1) * sizeof *x);
    for (size_t i = 0; i < n; i++) x[i] = (float)test_rand_uniform(st, lo, hi); /* representable in fp32 */
    return x;
}

static double *dalloc(size_t n) { return calloc(n ? n : 1, sizeof(double)); }

static enn_buffer *dbuf(enn_context *ctx, const double *x, size_t n)
{
    float *f = malloc((n ? n : 1) * sizeof *f);
    for (size_t i = 0; i < n; i++) f[i] = x ? (float)x[i] : 0.0f;
    enn_buffer *b = tu_buffer(ctx, f, n);
    free(f);
    return b;
}

/* The k-th of `count` coordinates checked in an n-element tensor: all of them in order,
 * or a spread by a stride prime to n (fixed, reaching every region and residue of h). */
#define STRIDE 7919u
static size_t coord(size_t k, size_t n, size_t count) { return count == n ? k : (k * STRIDE + 5) % n; }
static size_t coord_count(const config *c, size_t n) { return c->sample < n ? c->sample : n; }

/* The largest |got - want| over the largest |want|: the error relative to the tensor's
 * scale (fp32 sums are accurate to that, not element by element). */
typedef struct err { double abs, scale; } err;
static void err_add(err *e, double got, double want)
{
    double d = fabs(got - want);
    e->abs = isnan(d) ? INFINITY : fmax(e->abs, d);
    e->scale = fmax(e->scale, fabs(want));
}
static double err_rel(err e) { return e.abs / fmax(e.scale, 1e-30); }

/* The central difference of L (or of each sample's part, into fd_b[B]) in *x. */
static double central(problem *p, double *x, uint32_t shift_t, const double *shift, double *fd_b)
{
    uint32_t B = p->c.B;
    double keep = *x, Lp[64], Lm[64];
    cr_assert_leq(B, 64u);
    *x = keep + FD_STEP;
    double lp = loss(p, shift_t, shift, fd_b ? Lp : NULL, 0);
    *x = keep - FD_STEP;
    double lm = loss(p, shift_t, shift, fd_b ? Lm : NULL, 0);
    *x = keep;
    if (fd_b)
        for (uint32_t b = 0; b < B; b++) fd_b[b] = (Lp[b] - Lm[b]) / (2 * FD_STEP);
    return (lp - lm) / (2 * FD_STEP);
}

/* fp32 through T <= 4 steps of sums of length <= 70 (slots, batch) or 132 (h): a few
 * 1e-7 of each tensor's largest gradient (measured <= 7e-7, logged); 5e-6 leaves a
 * factor 7 for other summation orders, while one block of a kernel off by 1% errs by
 * ~1e-3. */
#define TOL 5e-6

static enn_hebbian_params hebbian(const config *c, uint32_t t, enn_buffer *const *bxi)
{
    enn_hebbian_params hp = {.eta = (float)ETA, .clip = (float)CLIP};
    if (c->noise == ENN_NOISE_PHILOX)
        hp.noise = (enn_trace_noise){.mode = ENN_NOISE_PHILOX, .sigma = (float)SIGMA, .seed = NOISE_SEED,
                                     .stream = NOISE_STREAM(t)};
    else if (c->noise == ENN_NOISE_BUFFER)
        hp.noise = (enn_trace_noise){.mode = ENN_NOISE_BUFFER, .xi = enn_view_of(bxi[t])};
    return hp;
}

static void run_case(enn_context *ctx, config c)
{
    const uint32_t T = c.T, B = c.B, N = c.N, h = c.h;
    cr_assert(T >= 2 && T <= TMAX);
    const size_t nz = (size_t)B * h, na = (size_t)B * N, nm = (size_t)N * h, nH = nm * (c.ps ? B : 1);
    const size_t nws = 2 * na + B;
    cr_assert(nz % STRIDE && na % STRIDE && nm % STRIDE && nH % STRIDE);
    problem p = {.c = c, .nH = nH};
    for (uint32_t t = 0; t < T; t++) p.pre[t] = dalloc(nH), p.cos[t] = dalloc(na);
    for (uint32_t t = 0; t <= T; t++) p.H[t] = dalloc(nH);
    p.E = dalloc(nH), p.Hc = dalloc(nH), p.Hn = dalloc(nH), p.a = dalloc(na), p.m = dalloc(nz);
    /* The data: |z| up to 2 drives the outer products past the clip in every step (the
     * cosines do not see the scale). With an exact trace gradient the first seed of a fixed
     * sequence whose unclipped trace values all keep CLIP_MARGIN from the bounds (and that
     * clips in every step but the last) is taken: deterministic, and no clip decision
     * differs between the device, the reference and any finite difference. */
    uint64_t st = 0;
    double *dz0[TMAX] = {0}, *dM0 = NULL, margin = 0;
    int clipped[TMAX] = {0}, tries = 0;
    for (;; tries++) {
        cr_assert_lt(tries, 50, "no seed in 50 keeps the trace %g from the clip bounds (last: %g) and clips in every "
                     "step (last: %d %d %d)", CLIP_MARGIN, margin, clipped[0], clipped[1], clipped[2]);
        free(p.M), free(p.H0), free(p.wH), free(dM0);
        for (uint32_t t = 0; t < T; t++) free(p.z[t]), free(p.wm[t]), free(p.xi[t]), free(dz0[t]);
        st = c.seed + 1000 * (uint64_t)tries;
        p.M = dvec(&st, nm, -0.4, 0.4);
        p.H0 = dvec(&st, nH, -0.15, 0.15);
        p.wH = dvec(&st, nH, -1, 1);
        for (uint32_t t = 0; t < T; t++) {
            /* Rows of z share a part, so that the shared trace's batch mean does not average
             * out, scaled with N (a ~ 1/N) so that a z reaches the clip. */
            double *common = dvec(&st, h, -1.5, 1.5), scale = N / 10.0;
            p.z[t] = dvec(&st, nz, -1, 1);
            for (size_t i = 0; i < nz; i++) p.z[t][i] = (float)((p.z[t][i] + common[i % h]) * scale);
            free(common);
            p.wm[t] = dvec(&st, nz, -1, 1);
            p.xi[t] = NULL;
            if (c.noise == ENN_NOISE_BUFFER) p.xi[t] = dvec(&st, nH, -0.01, 0.01);
            if (c.noise == ENN_NOISE_PHILOX) {
                p.xi[t] = dalloc(nH);
                for (size_t i = 0; i < nH; i++)
                    p.xi[t][i] = (float)SIGMA * (double)enn_philox_normal(NOISE_SEED, NOISE_STREAM(t), (uint32_t)i);
            }
        }
        /* The op adds to dz, dM and dM_samples: they start at these, small enough (the
         * gradients are 1e-3 .. 1) that the fp32 rounding of the sums stays below the
         * tolerance, large enough that a kernel that overwrote them would fail. */
        dM0 = dvec(&st, c.ps ? nH : nm, -1e-3, 1e-3);
        for (uint32_t t = 0; t < T; t++) dz0[t] = dvec(&st, nz, -1e-3, 1e-3);
        loss(&p, T, NULL, NULL, 1);
        margin = INFINITY;
        int every = 1;
        for (uint32_t t = 0; t < T; t++) {
            clipped[t] = 0;
            for (size_t i = 0; i < nH; i++) {
                margin = fmin(margin, fabs(fabs(p.pre[t][i]) - CLIP));
                clipped[t] += fabs(p.pre[t][i]) > CLIP;
            }
            every &= t + 1 == T || clipped[t] > 0;
        }
        if (!c.exact || (margin > CLIP_MARGIN && every)) break;
    }

    /* The device: the fused forward over T steps, then the reverse scan. */
    enn_recorder *rec;
    ENN_ASSERT_OK(enn_recorder_create(ctx, &rec));
    enn_memory_shape s = {B, N, h, c.ps};
    enn_buffer *bM = dbuf(ctx, p.M, nm), *bH[TMAX + 1], *bz[TMAX], *ba[TMAX], *bm[TMAX], *bwm[TMAX], *bdz[TMAX],
               *bws[TMAX], *bxi[TMAX] = {0}, *bg[2], *bdM = dbuf(ctx, dM0, c.ps ? nH : nm);
    /* Per-sample trace: the running sum alternates between bdM and bdM2. */
    enn_buffer *bdM2 = c.ps ? dbuf(ctx, NULL, nH) : NULL, *dM_bufs[2] = {bdM, bdM2};
    bH[0] = dbuf(ctx, p.H0, nH);
    for (uint32_t t = 0; t < T; t++) {
        bH[t + 1] = dbuf(ctx, NULL, nH);
        bz[t] = dbuf(ctx, p.z[t], nz);
        ba[t] = dbuf(ctx, NULL, na);
        bm[t] = dbuf(ctx, NULL, nz);
        bwm[t] = dbuf(ctx, p.wm[t], nz);
        bdz[t] = dbuf(ctx, dz0[t], nz);
        if (c.noise == ENN_NOISE_BUFFER) bxi[t] = dbuf(ctx, p.xi[t], nH);
        cr_assert_eq(enn_cosine_attention_workspace_bytes(s), nws * 4);
        bws[t] = dbuf(ctx, NULL, nws); /* one per step, to check each step's */
    }
    /* The carry into the last step: g_T-1 = [pre_T-1 inside the clip] * wH. */
    double *g_last = dalloc(nH);
    for (size_t i = 0; i < nH; i++) g_last[i] = fabs(p.pre[T - 1][i]) <= CLIP ? p.wH[i] : 0;
    bg[0] = dbuf(ctx, g_last, nH);
    bg[1] = dbuf(ctx, NULL, nH);

    ENN_ASSERT_OK(enn_recorder_begin(rec));
    for (uint32_t t = 0; t < T; t++) {
        enn_hebbian_params hp = hebbian(&c, t, bxi);
        ENN_ASSERT_OK(enn_memory_step_forward(rec, s, enn_view_of(ba[t]), enn_view_of(bm[t]), enn_view_of(bH[t + 1]),
                                              enn_view_of(bz[t]), enn_view_of(bM), enn_view_of(bH[t]), (float)ALPHA,
                                              (float)TAU_E, &hp));
    }
    int cur = 0, dcur = 0;
    for (uint32_t t = T; t-- > 0;) {
        enn_memory_backward_step b = {
            .z = enn_view_of(bz[t]), .a = enn_view_of(ba[t]), .H = enn_view_of(bH[t]), .dm = enn_view_of(bwm[t]),
            .M = enn_view_of(bM), .dz = enn_view_of(bdz[t]), .workspace = enn_view_of(bws[t]),
            .prev_hebbian = {.eta = (float)ETA, .clip = (float)CLIP}};
        if (c.ps) {
            b.dM_samples = enn_view_of(dM_bufs[dcur]);
            b.dM_samples_next = enn_view_of(dM_bufs[1 - dcur]);
            dcur = 1 - dcur;
        } else {
            b.dM = enn_view_of(bdM);
        }
        if (c.exact) {
            b.g = enn_view_of(bg[cur]);
            b.g_prev = enn_view_of(bg[1 - cur]);
            if (t > 0) {
                b.prev_z = enn_view_of(bz[t - 1]);
                b.prev_a = enn_view_of(ba[t - 1]);
                b.prev_H = enn_view_of(bH[t - 1]);
                b.prev_hebbian = hebbian(&c, t - 1, bxi);
            }
            cur = 1 - cur;
        }
        ENN_ASSERT_OK(enn_memory_step_backward(rec, s, &b, (float)ALPHA, (float)TAU_E));
    }
    ENN_ASSERT_OK(enn_recorder_run(rec));
    float *gdz[TMAX], *gws[TMAX], *gdM = tu_download(ctx, dM_bufs[dcur], c.ps ? nH : nm), *gdH0 = tu_download(ctx, bg[cur], nH);
    for (uint32_t t = 0; t < T; t++) gdz[t] = tu_download(ctx, bdz[t], nz), gws[t] = tu_download(ctx, bws[t], nws);

    /* dz_t: every step. */
    double e_dz = 0;
    for (uint32_t t = 0; t < T; t++) {
        err e = {0};
        for (size_t k = 0, n = coord_count(&c, nz); k < n; k++) {
            size_t i = coord(k, nz, n);
            err_add(&e, (double)gdz[t][i] - dz0[t][i], central(&p, &p.z[t][i], T, NULL, NULL));
        }
        e_dz = fmax(e_dz, err_rel(e));
    }
    /* dM, or each sample's dM_samples[b] against its part of L. */
    err eM = {0};
    double fd_b[64];
    for (size_t k = 0, n = coord_count(&c, nm); k < n; k++) {
        size_t i = coord(k, nm, n);
        double fd = central(&p, &p.M[i], T, NULL, c.ps ? fd_b : NULL);
        if (!c.ps) err_add(&eM, (double)gdM[i] - dM0[i], fd);
        for (uint32_t b = 0; c.ps && b < B; b++) err_add(&eM, (double)gdM[b * nm + i] - dM0[b * nm + i], fd_b[b]);
    }
    /* dH_0 (exact trace gradient only: stopped, H_0 gets none). */
    err eH = {0};
    for (size_t k = 0, n = coord_count(&c, nH); c.exact && k < n; k++) {
        size_t i = coord(k, nH, n);
        err_add(&eH, gdH0[i], central(&p, &p.H0[i], T, NULL, NULL));
    }
    /* The workspace of each step: ds_t = dL/dcos_t, q = ds * cos_t, signed 1/|z_b|. */
    double e_ds = 0, e_q = 0, e_rz = 0, *shift = dalloc(na);
    for (uint32_t t = 0; t < T; t++) {
        err eds = {0}, eq = {0}, erz = {0};
        for (size_t k = 0, n = coord_count(&c, na); k < n; k++) {
            size_t i = coord(k, na, n);
            double fd = central(&p, &shift[i], t, shift, NULL);
            err_add(&eds, gws[t][i], fd);
            err_add(&eq, gws[t][na + i], fd * p.cos[t][i]);
        }
        for (uint32_t b = 0; b < B; b++) {
            double zz = 0;
            for (uint32_t j = 0; j < h; j++) zz += p.z[t][(size_t)b * h + j] * p.z[t][(size_t)b * h + j];
            err_add(&erz, gws[t][2 * na + b], 1 / sqrt(zz));
        }
        e_ds = fmax(e_ds, err_rel(eds)), e_q = fmax(e_q, err_rel(eq)), e_rz = fmax(e_rz, err_rel(erz));
    }
    const char *noise = c.noise == ENN_NOISE_OFF ? "off" : c.noise == ENN_NOISE_PHILOX ? "philox" : "buffer";
    cr_log_info("T=%u B=%u N=%u h=%u %s %s noise %s (seed try %d, margin %.2g, clipped %d %d %d): dz %.2g dM %.2g "
                "dH0 %.2g ds %.2g q %.2g 1/|z| %.2g",
                T, B, N, h, c.ps ? "per-sample" : "shared", c.exact ? "exact" : "stop", noise, tries, margin,
                clipped[0], clipped[1], clipped[2], e_dz,
                err_rel(eM), err_rel(eH), e_ds, e_q, e_rz);
    const double errs[6] = {e_dz, err_rel(eM), err_rel(eH), e_ds, e_q, e_rz};
    const char *const names[6] = {"dz", c.ps ? "dM_samples" : "dM", "dH_0", "ds", "q", "1/|z|"};
    for (int k = 0; k < 6; k++)
        cr_assert_lt(errs[k], TOL, "T=%u B=%u N=%u h=%u %s %s noise %s: %s off by %g", T, B, N, h,
                     c.ps ? "per-sample" : "shared", c.exact ? "exact" : "stop", noise, names[k], errs[k]);

    free(shift), free(g_last), free(gdM), free(gdH0), free(dM0);
    for (uint32_t t = 0; t < T; t++) {
        free(gdz[t]), free(gws[t]), free(dz0[t]), free(p.z[t]), free(p.wm[t]), free(p.xi[t]), free(p.pre[t]);
        free(p.cos[t]);
        enn_buffer *bs[] = {bH[t + 1], bz[t], ba[t], bm[t], bwm[t], bdz[t], bws[t]};
        for (size_t i = 0; i < sizeof bs / sizeof *bs; i++) enn_buffer_destroy(ctx, bs[i]);
        if (bxi[t]) enn_buffer_destroy(ctx, bxi[t]);
    }
    for (uint32_t t = 0; t <= T; t++) free(p.H[t]);
    free(p.M), free(p.H0), free(p.wH), free(p.E), free(p.Hc), free(p.Hn), free(p.a), free(p.m);
    enn_buffer *rest[] = {bM, bH[0], bg[0], bg[1], bdM, bdM2};
    for (size_t i = 0; i < sizeof rest / sizeof *rest; i++) enn_buffer_destroy(ctx, rest[i]);
    enn_recorder_destroy(rec);
}

/* The kernels each layout runs. */
typedef enum layout { CPU_TEXEL, CPU_STORAGE, GPU } layout;

static void run_cases(layout lay, const config *cases, size_t count)
{
    enn_context *ctx = test_context();
    enn_capabilities real = ctx->caps;
    if (lay == CPU_TEXEL || lay == CPU_STORAGE)
        cr_assert_eq(real.device_type, ENN_DEVICE_CPU, "the CPU kernels are tested on a CPU device (lavapipe)");
    if (lay == CPU_STORAGE) ctx->caps.texel_buffer_f32 = 0;
    if (lay == GPU) ctx->caps.device_type = ENN_DEVICE_DISCRETE_GPU;
    for (size_t k = 0; k < count; k++) run_case(ctx, cases[k]);
    ctx->caps = real;
    test_context_finish(ctx);
}

#define RUN(lay, ...)                                                  \
    do {                                                               \
        const config cases_[] = {__VA_ARGS__};                         \
        run_cases(lay, cases_, sizeof cases_ / sizeof cases_[0]);      \
    } while (0)

/* {T, B, N, h, per_sample, exact, noise, sample, seed} */
Test(memory_step_backward, shared_vec4)
{
    RUN(CPU_TEXEL, {4, 9, 10, 36, 0, 1, ENN_NOISE_PHILOX, 256, 11}, {3, 9, 10, 36, 0, 0, ENN_NOISE_OFF, 256, 12},
        {3, 9, 10, 36, 0, 1, ENN_NOISE_BUFFER, 256, 13});
}

Test(memory_step_backward, per_sample_vec4)
{
    RUN(CPU_TEXEL, {4, 9, 10, 36, 1, 1, ENN_NOISE_OFF, 256, 21}, {3, 9, 10, 36, 1, 0, ENN_NOISE_PHILOX, 256, 22},
        {3, 9, 10, 36, 1, 1, ENN_NOISE_PHILOX, 256, 23}, {3, 9, 10, 36, 1, 1, ENN_NOISE_BUFFER, 256, 24});
}

Test(memory_step_backward, scalar)
{
    RUN(CPU_TEXEL, {4, 9, 10, 37, 0, 1, ENN_NOISE_OFF, 256, 31}, {4, 9, 10, 37, 1, 1, ENN_NOISE_PHILOX, 256, 32},
        {3, 9, 10, 37, 0, 0, ENN_NOISE_PHILOX, 256, 33});
}

Test(memory_step_backward, vec4_storage_buffers)
{
    RUN(CPU_STORAGE, {4, 9, 10, 36, 0, 1, ENN_NOISE_BUFFER, 256, 41}, {3, 9, 10, 36, 1, 1, ENN_NOISE_PHILOX, 256, 42});
}

/* N = 70 > 64 slots (8 invocations x 8) and h = 132 (33 > 32 vectors: 8 invocations x
 * 4): the blocked loops go round twice; coordinates are sampled (a fixed spread of 96 per
 * tensor). The per-sample case also takes the clip-bound carry's own pass over a partial
 * block of vectors. */
Test(memory_step_backward, wrapping_loops)
{
    RUN(CPU_TEXEL, {3, 9, 70, 36, 0, 1, ENN_NOISE_PHILOX, 96, 51}, {3, 9, 10, 132, 0, 1, ENN_NOISE_OFF, 96, 52},
        {3, 9, 10, 132, 0, 0, ENN_NOISE_PHILOX, 96, 53}, {3, 3, 10, 132, 1, 1, ENN_NOISE_PHILOX, 96, 54});
}

Test(memory_step_backward, gpu_layout)
{
    RUN(GPU, {4, 9, 10, 36, 0, 1, ENN_NOISE_PHILOX, 256, 61}, {3, 9, 10, 36, 1, 1, ENN_NOISE_OFF, 256, 62},
        {4, 9, 10, 37, 0, 1, ENN_NOISE_OFF, 256, 63}, {3, 9, 10, 37, 1, 0, ENN_NOISE_PHILOX, 256, 64},
        {3, 9, 10, 36, 0, 0, ENN_NOISE_BUFFER, 256, 65}, {3, 9, 70, 36, 0, 1, ENN_NOISE_PHILOX, 96, 66});
}
