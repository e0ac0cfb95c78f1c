/* enn bench ops: the memory path (cosine attention, Hebbian trace, the fused memory step,
 * effective memory), at the paper's step (B=128, N=64, h=128) and a smaller one. */
#include <stdio.h>
#include <string.h>

#include "bench.h"
#include "bench_cpu.h"
#include "bench_ops_case.h"
#include "core/error.h"
#include "ops/cosine_attention.h"
#include "ops/effective_memory.h"
#include "ops/hebbian_trace.h"
#include "ops/memory_step.h"

typedef struct mem_state {
    enn_memory_shape s;
    float tau_e, alpha;
    enn_hebbian_params hp;
    /* host inputs */
    float *z, *M, *H, *E, *a_in, *dm, *dHn;
    /* CPU outputs and scratch */
    float *a, *m, *dz, *dE, *Hn, *dH, *da, *dz2, *E2, *dM, *dH2, *scratch;
    /* device */
    enn_buffer *bz, *bM, *bH, *bE, *ba_in, *bdm, *bdHn, *ba, *bm, *bdz, *bdE, *bws, *bHn, *bdH, *bda, *bdz2,
        *bws2, *bE2, *bdM, *bdH2;
} mem_state;

static int mem_setup(arena *ar, mem_state *st, uint32_t B, uint32_t N, uint32_t h, int per_sample)
{
    memset(st, 0, sizeof *st);
    st->s = (enn_memory_shape){B, N, h, per_sample};
    st->tau_e = 0.5f;
    st->alpha = 0.1f;
    st->hp = (enn_hebbian_params){.eta = 0.05f, .clip = 0.1f};
    size_t Bh = (size_t)B * h, BN = (size_t)B * N, Nh = (size_t)N * h, Th = (per_sample ? B : 1) * Nh;
    st->z = host_rand(ar, Bh, -1, 1);
    st->M = host_rand(ar, Nh, -0.5f, 0.5f);
    /* |H| <= 0.05 keeps the trace's pre-clip values away from +-clip, so the backward's
     * mask cannot flip between device and CPU on a rounding difference */
    st->H = host_rand(ar, Th, -0.05f, 0.05f);
    st->E = host_alloc(ar, Th * 4);
    st->a_in = host_alloc(ar, BN * 4);
    st->dm = host_rand(ar, Bh, -1, 1);
    st->dHn = host_rand(ar, Th, -1, 1);
    st->a = host_alloc(ar, BN * 4); st->m = host_alloc(ar, Bh * 4);
    st->dz = host_alloc(ar, Bh * 4); st->dE = host_alloc(ar, Nh * 4);
    st->Hn = host_alloc(ar, Th * 4); st->dH = host_alloc(ar, Th * 4);
    st->da = host_alloc(ar, BN * 4); st->dz2 = host_alloc(ar, Bh * 4);
    st->E2 = host_alloc(ar, Th * 4); st->dM = host_alloc(ar, Nh * 4); st->dH2 = host_alloc(ar, Th * 4);
    st->scratch = host_alloc(ar, (2 * Nh + 2 * N + 2 * h) * 4);
    if (ar->failed) return arena_ok(ar);
    cpu_effective_memory_forward(per_sample ? B : 1, Nh, st->M, st->H, st->alpha, st->E);
    if (!per_sample) cpu_cosine_attention_forward(B, N, h, st->z, st->E, st->tau_e, st->a_in, st->m);
    st->bz = dev_buf(ar, st->z, Bh * 4); st->bM = dev_buf(ar, st->M, Nh * 4); st->bH = dev_buf(ar, st->H, Th * 4);
    st->bE = dev_buf(ar, st->E, Th * 4); st->ba_in = dev_buf(ar, st->a_in, BN * 4);
    st->bdm = dev_buf(ar, st->dm, Bh * 4); st->bdHn = dev_buf(ar, st->dHn, Th * 4);
    st->ba = dev_buf(ar, NULL, BN * 4); st->bm = dev_buf(ar, NULL, Bh * 4);
    st->bdz = dev_buf(ar, NULL, Bh * 4); st->bdE = dev_buf(ar, NULL, Th * 4);
    st->bws = dev_buf(ar, NULL, enn_cosine_attention_workspace_bytes(st->s));
    st->bHn = dev_buf(ar, NULL, Th * 4); st->bdH = dev_buf(ar, NULL, Th * 4);
    st->bda = dev_buf(ar, NULL, BN * 4); st->bdz2 = dev_buf(ar, NULL, Bh * 4);
    st->bws2 = dev_buf(ar, NULL, enn_hebbian_trace_workspace_bytes(st->s));
    st->bE2 = dev_buf(ar, NULL, Th * 4); st->bdM = dev_buf(ar, NULL, Nh * 4); st->bdH2 = dev_buf(ar, NULL, Th * 4);
    return arena_ok(ar);
}


static enn_status rec_cos_fwd(enn_recorder *rec, void *p)
{
    mem_state *st = p;
    return enn_cosine_attention_forward(rec, st->s, V(st->ba), V(st->bm), V(st->bz), V(st->bE), st->tau_e);
}
static void cpu_cos_fwd(void *p)
{
    mem_state *st = p;
    cpu_cosine_attention_forward(st->s.B, st->s.N, st->s.h, st->z, st->E, st->tau_e, st->a, st->m);
}
static enn_status rec_cos_bwd(enn_recorder *rec, void *p)
{
    mem_state *st = p;
    enn_view none = {0};
    return enn_cosine_attention_backward(rec, st->s, V(st->bdz), V(st->bdE), V(st->bws), V(st->bdm), none, V(st->bz),
                                         V(st->bE), V(st->ba_in), st->tau_e, 0, 0);
}
static void cpu_cos_bwd(void *p)
{
    mem_state *st = p;
    cpu_cosine_attention_backward(st->s.B, st->s.N, st->s.h, st->z, st->E, st->tau_e, st->dm, st->dz, st->dE,
                                  st->scratch);
}
static enn_status rec_hebb_fwd(enn_recorder *rec, void *p)
{
    mem_state *st = p;
    return enn_hebbian_trace_forward(rec, st->s, V(st->bHn), V(st->bH), V(st->ba_in), V(st->bz), &st->hp);
}
static void cpu_hebb_fwd(void *p)
{
    mem_state *st = p;
    cpu_hebbian_trace_forward(st->s.B, st->s.N, st->s.h, st->H, st->a_in, st->z, st->hp.eta, st->hp.clip, st->Hn);
}
static enn_status rec_hebb_bwd(enn_recorder *rec, void *p)
{
    mem_state *st = p;
    return enn_hebbian_trace_backward(rec, st->s, V(st->bdH), V(st->bda), V(st->bdz2), V(st->bws2), V(st->bdHn),
                                      V(st->bH), V(st->ba_in), V(st->bz), &st->hp, 0, 0, 0);
}
static void cpu_hebb_bwd(void *p)
{
    mem_state *st = p;
    cpu_hebbian_trace_backward(st->s.B, st->s.N, st->s.h, st->H, st->a_in, st->z, st->hp.eta, st->hp.clip, st->dHn,
                               st->dH, st->da, st->dz2, st->scratch);
}
static enn_status rec_mem_step(enn_recorder *rec, void *p)
{
    mem_state *st = p;
    return enn_memory_step_forward(rec, st->s, V(st->ba), V(st->bm), V(st->bHn), V(st->bz), V(st->bM), V(st->bH),
                                   st->alpha, st->tau_e, &st->hp);
}
static void cpu_mem_step(void *p)
{
    mem_state *st = p;
    uint32_t B = st->s.B, N = st->s.N, h = st->s.h;
    cpu_effective_memory_forward(1, (size_t)N * h, st->M, st->H, st->alpha, st->E2);
    cpu_cosine_attention_forward(B, N, h, st->z, st->E2, st->tau_e, st->a, st->m);
    cpu_hebbian_trace_forward(B, N, h, st->H, st->a, st->z, st->hp.eta, st->hp.clip, st->Hn);
}
static enn_status rec_eff_fwd(enn_recorder *rec, void *p)
{
    mem_state *st = p;
    return enn_effective_memory_forward(rec, st->s, V(st->bE2), V(st->bM), V(st->bH), st->alpha);
}
static void cpu_eff_fwd(void *p)
{
    mem_state *st = p;
    cpu_effective_memory_forward(st->s.per_sample ? st->s.B : 1, (size_t)st->s.N * st->s.h, st->M, st->H, st->alpha,
                                 st->E2);
}
static enn_status rec_eff_bwd(enn_recorder *rec, void *p)
{
    mem_state *st = p;   /* dE: the random dH_new, shaped like H */
    return enn_effective_memory_backward(rec, st->s, V(st->bdM), V(st->bdH2), V(st->bdHn), st->alpha, 0, 0);
}
static void cpu_eff_bwd(void *p)
{
    mem_state *st = p;
    cpu_effective_memory_backward(st->s.per_sample ? st->s.B : 1, (size_t)st->s.N * st->s.h, st->dHn, st->alpha,
                                  st->dM, st->dH2);
}

typedef struct mem_shape { uint32_t B, N, h; } mem_shape;
/* the paper's step (B=128, N=64, h=128) and a smaller one */
static const mem_shape mem_shapes[] = {{16, 16, 32}, {128, 64, 128}};

/* family: which of the memory path's kernels (1 cosine attention, 2 Hebbian, 3 fused step) */
static int bench_memory_family(enn_context *ctx, const bench_options *o, int family)
{
    enn_recorder *rec = NULL;
    if (enn_recorder_create(ctx, &rec)) { fprintf(stderr, "enn bench: %s\n", enn_last_error()); return 1; }
    enn_recorder_set_timestamps(rec, 1);
    arena ar = {.ctx = ctx, .seed = 7};
    int rc = 0;
    size_t count = o->quick ? 1 : sizeof mem_shapes / sizeof mem_shapes[0];
    for (size_t i = 0; i < count && !rc; i++) {
        uint32_t B = mem_shapes[i].B, N = mem_shapes[i].N, h = mem_shapes[i].h;
        mem_state st;
        if (!mem_setup(&ar, &st, B, N, h, 0)) { rc = 1; break; }
        double BNh = (double)B * N * h, Bh = (double)B * h, BN = (double)B * N, Nh = (double)N * h;
        bench_case c = {.st = &st};
        snprintf(c.shape, sizeof c.shape, "B%u N%u h%u", B, N, h);
        if (family == 1) {
            /* flops: similarities 2BNh + retrieval 2BNh (the norms are lower order) */
            bench_case f = c;
            f.kernel = "cos_attn_fwd", f.flops = 4 * BNh, f.record = rec_cos_fwd, f.cpu = cpu_cos_fwd;
            add_check(&f, st.ba, st.a, (size_t)BN, 0);
            add_check(&f, st.bm, st.m, (size_t)Bh, 0);
            rc |= run_case(ctx, rec, o, &f);
            /* flops: recomputed similarities 2BNh, da 2BNh, dE via m 2BNh, dz and dE via the
             * similarities 4BNh */
            bench_case b = c;
            b.kernel = "cos_attn_bwd", b.flops = 10 * BNh, b.record = rec_cos_bwd, b.cpu = cpu_cos_bwd;
            add_check(&b, st.bdz, st.dz, (size_t)Bh, 0);
            add_check(&b, st.bdE, st.dE, (size_t)Nh, 0);
            rc |= run_case(ctx, rec, o, &b);
        } else if (family == 2) {
            /* flops: the batch's outer products 2BNh */
            bench_case f = c;
            f.kernel = "hebbian_fwd", f.flops = 2 * BNh, f.record = rec_hebb_fwd, f.cpu = cpu_hebb_fwd;
            add_check(&f, st.bHn, st.Hn, (size_t)Nh, 0);
            rc |= run_case(ctx, rec, o, &f);
            /* flops: recomputed outer products 2BNh, da 2BNh, dz 2BNh */
            bench_case b = c;
            b.kernel = "hebbian_bwd", b.flops = 6 * BNh, b.record = rec_hebb_bwd, b.cpu = cpu_hebb_bwd;
            add_check(&b, st.bdH, st.dH, (size_t)Nh, 0);
            add_check(&b, st.bda, st.da, (size_t)BN, 0);
            add_check(&b, st.bdz2, st.dz2, (size_t)Bh, 0);
            rc |= run_case(ctx, rec, o, &b);
        } else {
            /* flops: attention 4BNh + the trace's outer products 2BNh */
            bench_case f = c;
            f.kernel = "memory_step", f.flops = 6 * BNh, f.record = rec_mem_step, f.cpu = cpu_mem_step;
            add_check(&f, st.ba, st.a, (size_t)BN, 0);
            add_check(&f, st.bm, st.m, (size_t)Bh, 0);
            add_check(&f, st.bHn, st.Hn, (size_t)Nh, 0);
            rc |= run_case(ctx, rec, o, &f);
        }
        arena_free(&ar);
    }
    enn_recorder_destroy(rec);
    return rc;
}

int bench_cosine_attention(enn_context *ctx, const bench_options *o) { return bench_memory_family(ctx, o, 1); }
int bench_hebbian_trace(enn_context *ctx, const bench_options *o) { return bench_memory_family(ctx, o, 2); }
int bench_memory_step(enn_context *ctx, const bench_options *o) { return bench_memory_family(ctx, o, 3); }

int bench_effective_memory(enn_context *ctx, const bench_options *o)
{
    enn_recorder *rec = NULL;
    if (enn_recorder_create(ctx, &rec)) { fprintf(stderr, "enn bench: %s\n", enn_last_error()); return 1; }
    enn_recorder_set_timestamps(rec, 1);
    arena ar = {.ctx = ctx, .seed = 8};
    int rc = 0;
    /* shared trace (E is [N,h]) and per-sample (E is [B,N,h], the op's real traffic) */
    static const struct { uint32_t B, N, h; int ps; } shapes[] = {{16, 16, 32, 1}, {128, 64, 128, 0}, {128, 64, 128, 1}};
    size_t count = o->quick ? 1 : sizeof shapes / sizeof shapes[0];
    for (size_t i = 0; i < count && !rc; i++) {
        mem_state st;
        if (!mem_setup(&ar, &st, shapes[i].B, shapes[i].N, shapes[i].h, shapes[i].ps)) { rc = 1; break; }
        double Nh = (double)shapes[i].N * shapes[i].h, copies = shapes[i].ps ? shapes[i].B : 1;
        bench_case c = {.st = &st};
        if (shapes[i].ps) snprintf(c.shape, sizeof c.shape, "B%u N%u h%u ps", shapes[i].B, shapes[i].N, shapes[i].h);
        else snprintf(c.shape, sizeof c.shape, "N%u h%u", shapes[i].N, shapes[i].h);
        /* bytes: M read, H read, E written */
        bench_case f = c;
        f.kernel = "eff_mem_fwd", f.bytes = 4 * (Nh + 2 * copies * Nh), f.record = rec_eff_fwd, f.cpu = cpu_eff_fwd;
        add_check(&f, st.bE2, st.E2, (size_t)(copies * Nh), 0);
        rc |= run_case(ctx, rec, o, &f);
        /* bytes: dE read, dH written, dM written */
        bench_case b = c;
        b.kernel = "eff_mem_bwd", b.bytes = 4 * (2 * copies * Nh + Nh), b.record = rec_eff_bwd, b.cpu = cpu_eff_bwd;
        add_check(&b, st.bdM, st.dM, (size_t)Nh, 0);
        add_check(&b, st.bdH2, st.dH2, (size_t)(copies * Nh), 0);
        rc |= run_case(ctx, rec, o, &b);
        arena_free(&ar);
    }
    enn_recorder_destroy(rec);
    return rc;
}
