/* GEMM launcher: checks the description, picks a variant and its tile shape for the
 * device, folds the tile grid into the device's workgroup-count limits, and records one
 * dispatch per chunk of the batch. See gemm.h for the contract. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/context.h"
#include "core/error.h"
#include "ops/gemm.h"

/* Push constants of shaders/gemm.comp, in order. */
typedef struct gemm_push {
    uint32_t m, n, k;
    uint32_t lda, ldb, ldc;
    uint32_t stride_a, stride_b, stride_c;
    uint32_t tiles_n, tiles_total, batch_base, flags;
    float alpha, beta;
} gemm_push;

/* Tile shape of one variant on one device. */
typedef struct gemm_config {
    const char *shader;
    uint32_t spec[14];
    uint32_t spec_count;
    uint32_t tile_m, tile_n;     /* C tile of one workgroup */
    uint32_t shared_bytes;
    int vec4_flags;              /* push flags bits 3, 4: lda, ldb (and strides) multiples of 4 */
} gemm_config;

const char *enn_gemm_variant_name(enn_gemm_variant v)
{
    switch (v) {
    case ENN_GEMM_AUTO: return "auto";
    case ENN_GEMM_REG: return "reg";
    case ENN_GEMM_TILED: return "tiled";
    case ENN_GEMM_F16: return "f16";
    case ENN_GEMM_COOPMAT: return "coopmat";
    case ENN_GEMM_TEXEL: return "texel";
    default: return "?";
    }
}

/* The device's fp16 x fp16 -> fp32 cooperative-matrix shape, preferring 16x16x16. */
static const enn_coopmat_shape *coopmat_shape(const enn_capabilities *caps)
{
    const enn_coopmat_shape *best = NULL;
    for (uint32_t i = 0; i < caps->coopmat_shape_count; i++) {
        const enn_coopmat_shape *s = &caps->coopmat_shapes[i];
        if (s->a_type != ENN_F16 || s->b_type != ENN_F16 || s->c_type != ENN_F32 || s->result_type != ENN_F32)
            continue;
        if (s->m == 16 && s->n == 16 && s->k == 16) return s;
        if (!best) best = s;
    }
    return best;
}

/* subgroupBroadcast in compute shaders (not in the capabilities record). */
static int subgroup_ballot(const enn_context *ctx)
{
    VkPhysicalDeviceSubgroupProperties sp = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES};
    VkPhysicalDeviceProperties2 p = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, .pNext = &sp};
    vkGetPhysicalDeviceProperties2(ctx->physical_device, &p);
    return (sp.supportedStages & VK_SHADER_STAGE_COMPUTE_BIT) && (sp.supportedOperations & VK_SUBGROUP_FEATURE_BALLOT_BIT);
}

/* Bytes of one stage of gemm_coopmat.glsl: the fp16 A and B tiles as stored, rows padded
 * by 8 halves; the larger of the transposed and plain layouts. */
static uint32_t coopmat_stage_bytes(uint32_t bm, uint32_t bn, uint32_t bk)
{
    const uint32_t pad = 8; /* as PAD in the shader */
    uint32_t a_plain = bm * (bk + pad), a_trans = bk * (bm + pad);
    uint32_t b_plain = bk * (bn + pad), b_trans = bn * (bk + pad);
    return 2 * ((a_plain > a_trans ? a_plain : a_trans) + (b_plain > b_trans ? b_plain : b_trans));
}

/* gemm_coopmat with sg_m x sg_n subgroups of tiles_m x tiles_n accumulators and steps of bk
 * (t = {sg_m, sg_n, tiles_m, tiles_n, bk}); 0 when the device cannot run that shape. */
static int coopmat_config(const enn_capabilities *caps, const enn_coopmat_shape *shape, const uint32_t t[5],
                          gemm_config *cfg)
{
    uint32_t sg = caps->subgroup_size, sg_m = t[0], sg_n = t[1], tiles_m = t[2], tiles_n = t[3], bk = t[4];
    /* Staged rows are whole 16-byte chunks and every step a whole number of products. */
    if (bk % shape->k || bk % 8 || shape->m % 8 || shape->n % 8) return 0;
    /* The accumulator grid is compiled in: one shader variant per TM x TN (gemm.comp). */
    static const char *const names[5][5] = {[2] = {[2] = "gemm_coopmat_t22", [4] = "gemm_coopmat_t24"},
                                            [4] = {[2] = "gemm_coopmat_t42", [4] = "gemm_coopmat_t44"}};
    if (tiles_m > 4 || tiles_n > 4 || !names[tiles_m][tiles_n]) return 0;
    uint64_t wide_threads = (uint64_t)sg * sg_m * sg_n;
    if (wide_threads > caps->max_workgroup_invocations || wide_threads > caps->max_workgroup_size[0]) return 0;
    uint32_t threads = (uint32_t)wide_threads;
    cfg->shader = names[tiles_m][tiles_n];
    uint32_t s[] = {threads, 1, 1, 0, 0, shape->m, shape->n, shape->k, sg, sg_m, sg_n, bk};
    memcpy(cfg->spec, s, sizeof s);
    cfg->spec_count = 12;
    cfg->tile_m = sg_m * tiles_m * shape->m;
    cfg->tile_n = sg_n * tiles_n * shape->n;
    /* Each invocation holds at most 4 16-byte chunks of each tile (named registers in
     * the shader); with either layout a tile has tile_m * bk / 8 (or tile_n * bk / 8). */
    if ((uint64_t)cfg->tile_m * bk / 8 > 4 * threads || (uint64_t)cfg->tile_n * bk / 8 > 4 * threads) return 0;
    /* Two stages; the epilogue's per-subgroup fp32 scratch reuses them and must fit too. */
    cfg->shared_bytes = 2 * coopmat_stage_bytes(cfg->tile_m, cfg->tile_n, bk);
    uint32_t scratch = sg_m * sg_n * shape->m * shape->n * 4;
    return scratch <= cfg->shared_bytes && cfg->shared_bytes <= caps->max_shared_memory;
}

/* gemm_tiled_<rm><rn> (gemm_tiled.glsl) on 16 x 16 invocations with steps of bk
 * (t = {rm, rn, bk}); 0 when the device cannot run that shape. */
static int tiled_shape_config(const enn_capabilities *caps, const uint32_t t[3], gemm_config *cfg)
{
    const uint32_t w = 16, threads = w * w;
    uint32_t rm = t[0], rn = t[1], bk = t[2];
    if ((rm != 4 && rm != 8) || (rn != 4 && rn != 8) || !bk || bk % 4) return 0;
    if (caps->max_workgroup_invocations < threads || caps->max_workgroup_size[0] < w || caps->max_workgroup_size[1] < w)
        return 0;
    /* Each invocation holds at most 4 chunks of 4 floats of each tile (named registers). */
    if ((uint64_t)w * rm * bk / 4 > 4 * threads || (uint64_t)w * rn * bk / 4 > 4 * threads) return 0;
    static const char *const names[9][9] = {[4] = {[4] = "gemm_tiled_44", [8] = "gemm_tiled_48"},
                                            [8] = {[4] = "gemm_tiled_84", [8] = "gemm_tiled_88"}};
    memset(cfg, 0, sizeof *cfg);
    cfg->shader = names[rm][rn];
    uint32_t s[] = {w, w, 1, 0, 0, 0, 0, bk};   /* ids 5, 6 unused */
    memcpy(cfg->spec, s, sizeof s);
    cfg->spec_count = 8;
    cfg->tile_m = w * rm;
    cfg->tile_n = w * rn;
    cfg->vec4_flags = 1;
    cfg->shared_bytes = 2 * bk * (cfg->tile_m + cfg->tile_n) * 4;   /* two stages */
    return cfg->shared_bytes <= caps->max_shared_memory;
}

/* The fp32 tiled kernel for this device: the first shape of the list that it can run (1),
 * none (0: the caller takes the earlier kernel), or -1 when ENN_GEMM_TILES asks for a shape
 * the device cannot run. ENN_GEMM_TILES=rm,rn,bk replaces the list (tuning runs; rm, rn 4
 * or 8, bk a multiple of 4); ENN_GEMM_TILES=loop picks the earlier kernel.
 * On an H100 (BENCHMARKS.md, TFLOP/s at 4096^3 / LM logits 4096 x 188590 x 128 / LM dW
 * 128 x 188590 x 4096 with A transposed): 8 x 4 with bk 16 (128 x 64 tiles, 16 KiB of
 * shared memory) 33.8 / 27.3 / 21.9; 8 x 8 with bk 8 29.2 / 24.1 / 30.2; the earlier
 * kernel 18.7 / 18.6 / 4.3. The list is ordered by the first two; the 8 x 8 block is next. */
static int tiled_config(const enn_context *ctx, gemm_config *cfg)
{
    const enn_capabilities *caps = &ctx->caps;
    static const uint32_t shapes[][3] = {{8, 4, 16}, {8, 8, 8}, {4, 4, 16}};
    uint32_t list[sizeof shapes / sizeof shapes[0]][3], count = sizeof shapes / sizeof shapes[0];
    memcpy(list, shapes, sizeof shapes);
    const char *tune = ctx->env.gemm_tiles;
    if (tune[0]) {
        if (!strcasecmp(tune, "loop")) return 0;
        if (sscanf(tune, "%u,%u,%u", &list[0][0], &list[0][1], &list[0][2]) != 3) return -1;
        return tiled_shape_config(caps, list[0], cfg) ? 1 : -1;
    }
    for (uint32_t i = 0; i < count; i++)
        if (tiled_shape_config(caps, list[i], cfg)) return 1;
    return 0;
}

/* Fills the tile shape of variant v for this device; 0 when it cannot run there. The
 * transposes and vec4 flags (spec ids 3..6) are filled in per call by the launcher. */
static int make_config(const enn_context *ctx, enn_gemm_variant v, gemm_config *cfg)
{
    const enn_capabilities *caps = &ctx->caps;
    memset(cfg, 0, sizeof *cfg);
    switch (v) {
    case ENN_GEMM_REG:
    case ENN_GEMM_TEXEL: {
        /* reg: one subgroup per workgroup, whose lanes 0..7 share the A block by
         * broadcasts (see the shader), so subgroups of at least 8. texel: no subgroup
         * operations; one subgroup per workgroup where subgroups have 8 lanes or more,
         * else 8 invocations. */
        uint32_t sg = caps->subgroup_size, local = sg;
        if (v == ENN_GEMM_REG && (sg < 8 || !subgroup_ballot(ctx))) return 0;
        if (v == ENN_GEMM_TEXEL && (!caps->texel_buffer_f32 || ctx->env.disable_gemm_texel)) return 0;
        if (local < 8) local = 8;
        if (local > caps->max_workgroup_size[0] || local > caps->max_workgroup_invocations) return 0;
        cfg->shader = v == ENN_GEMM_REG ? "gemm" : "gemm_texel";
        uint32_t s[] = {local, 1, 1, 0, 0, 0, 0, 0, 1};
        memcpy(cfg->spec, s, sizeof s);
        cfg->spec_count = v == ENN_GEMM_TEXEL ? 9 : 7;  /* the texel variant also has VEC_C, K_TAIL */
        uint32_t rb = v == ENN_GEMM_TEXEL ? 2 : 1, cg = 2;  /* must match RB, CG in the shader */
        cfg->tile_m = 8 * rb;
        cfg->tile_n = local * 4 * cg;
        return 1;
    }
    case ENN_GEMM_TILED:
    case ENN_GEMM_F16: {
        if (v == ENN_GEMM_TILED) {
            /* else the earlier kernel: devices below 16 x 16 invocations, ENN_GEMM_TILES=loop */
            int r = tiled_config(ctx, cfg);
            if (r) return r > 0;
        }
        if (v == ENN_GEMM_F16 && !(ctx->enabled.storage_16bit && caps->storage_16bit)) return 0;
        /* 16 x 16 invocations with 4 x 4 outputs each (64 x 64 tiles), or 8 x 8 where
         * the device caps a workgroup below 256 invocations. */
        uint32_t w = caps->max_workgroup_invocations >= 256 && caps->max_workgroup_size[0] >= 16 &&
                     caps->max_workgroup_size[1] >= 16 ? 16 : 8;
        uint32_t tm = 4, tn = 4, bk = 16;
        memset(cfg, 0, sizeof *cfg);
        cfg->shader = v == ENN_GEMM_F16 ? "gemm_f16" : "gemm_tiled";
        uint32_t s[] = {w, w, 1, 0, 0, tm, tn, bk};
        memcpy(cfg->spec, s, sizeof s);
        cfg->spec_count = 8;
        cfg->tile_m = w * tm;
        cfg->tile_n = w * tn;
        cfg->shared_bytes = bk * (cfg->tile_m + cfg->tile_n) * 4;
        return cfg->shared_bytes <= caps->max_shared_memory;
    }
    case ENN_GEMM_COOPMAT: {
        /* The shader also declares float16 arithmetic (fp16 tiles in shared memory). */
        if (!caps->cooperative_matrix || !ctx->enabled.coopmat_nv || !ctx->enabled.storage_16bit ||
            !ctx->enabled.fp16_arithmetic)
            return 0;
        const enn_coopmat_shape *shape = coopmat_shape(caps);
        if (!shape || !caps->subgroup_size) return 0;
        /* Tile shapes {sg_m, sg_n, tiles_m, tiles_n, bk}, best first: the first whose
         * workgroup and shared memory the device allows. On an H100 (BENCHMARKS.md) 2 x 4
         * subgroups of 4 x 2 accumulators (128 x 128 tiles, 256 invocations, 40 KiB of
         * shared memory) measured best at 4096^3: 149 TFLOP/s against 108 for 2 x 2
         * subgroups of 4 x 4 and 90 for 64 x 64 tiles. ENN_GEMM_COOPMAT_TILES=sg_m,sg_n,
         * tiles_m,tiles_n,bk replaces the list, for tuning runs; tiles_m and tiles_n must
         * be 2 or 4 (the compiled variants). */
        static const uint32_t shapes[][5] = {{2, 4, 4, 2, 32}, {2, 2, 4, 4, 32}, {2, 2, 2, 2, 32}, {1, 1, 2, 2, 32}};
        uint32_t list[sizeof shapes / sizeof shapes[0]][5], count = sizeof shapes / sizeof shapes[0];
        memcpy(list, shapes, sizeof shapes);
        const char *tune = ctx->env.gemm_coopmat_tiles;
        if (tune[0]) {
            uint32_t *t = list[0];
            if (sscanf(tune, "%u,%u,%u,%u,%u", &t[0], &t[1], &t[2], &t[3], &t[4]) != 5 || !t[0] || !t[1] || !t[2] ||
                !t[3] || !t[4])
                return 0;
            count = 1;
        }
        for (uint32_t i = 0; i < count; i++)
            if (coopmat_config(caps, shape, list[i], cfg)) return 1;
        return 0;
    }
    default: return 0;
    }
}

int enn_gemm_variant_supported(enn_context *ctx, enn_gemm_variant v, enn_scalar_type ab_type)
{
    gemm_config cfg;
    if (!ctx || !make_config(ctx, v, &cfg)) return 0;
    int wants_f16 = v == ENN_GEMM_F16 || v == ENN_GEMM_COOPMAT;
    return wants_f16 == (ab_type == ENN_F16);
}

static enn_gemm_variant variant_from_env(const enn_context *ctx)
{
    const char *e = ctx->env.gemm_variant;
    if (!e[0] || !strcasecmp(e, "auto")) return ENN_GEMM_AUTO;
    for (int v = ENN_GEMM_REG; v < ENN_GEMM_VARIANT_COUNT; v++)
        if (!strcasecmp(e, enn_gemm_variant_name((enn_gemm_variant)v))) return (enn_gemm_variant)v;
    return ENN_GEMM_VARIANT_COUNT; /* unknown: reported by the caller */
}

/* Elements one operand spans: (rows - 1) * ld + cols, plus the batch. */
static uint64_t span(uint32_t rows, uint32_t cols, uint32_t ld, uint32_t batch, uint64_t stride)
{
    return (uint64_t)(rows - 1) * ld + cols + (uint64_t)(batch - 1) * stride;
}

/* The stored shapes and leading dimensions of A and B (see gemm.h). */
typedef struct gemm_layout {
    uint32_t rows_a, cols_a, rows_b, cols_b, lda, ldb, ldc, batch;
    uint64_t span_a, span_b;  /* elements */
    int vec_a, vec_b;         /* vec4 loads allowed (VEC_A, VEC_B in the shader) */
} gemm_layout;

static gemm_layout layout_of(const enn_gemm_desc *d)
{
    gemm_layout l;
    l.batch = d->batch ? d->batch : 1;
    l.rows_a = d->trans_a ? d->k : d->m;
    l.cols_a = d->trans_a ? d->m : d->k;
    l.rows_b = d->trans_b ? d->n : d->k;
    l.cols_b = d->trans_b ? d->k : d->n;
    l.lda = d->lda ? d->lda : l.cols_a;
    l.ldb = d->ldb ? d->ldb : l.cols_b;
    l.ldc = d->ldc ? d->ldc : d->n;
    l.span_a = span(l.rows_a, l.cols_a, l.lda, l.batch, d->stride_a);
    l.span_b = span(l.rows_b, l.cols_b, l.ldb, l.batch, d->stride_b);
    /* vec4 loads need every vec4 to start at a multiple of 4 elements, and the ones
     * along M (transposed A) or N (plain B) to end inside the matrix. */
    l.vec_a = l.lda % 4 == 0 && (l.batch == 1 || d->stride_a % 4 == 0) && (!d->trans_a || d->m % 4 == 0);
    l.vec_b = l.ldb % 4 == 0 && (l.batch == 1 || d->stride_b % 4 == 0) && (d->trans_b || d->n % 4 == 0);
    return l;
}

/* The texel variant views A and B as texel buffers of 4 floats per texel, and loads
 * only vec4s: both layouts must allow them (vec_a, vec_b; its scalar fallback would
 * compile ~10x slower on lavapipe than the whole vec4 kernel). Each view must hold at
 * most caps.max_texel_buffer_elements texels and start at a multiple of
 * caps.min_texel_buffer_offset_alignment. */
static int texel_fits(const enn_context *ctx, const enn_gemm_desc *d)
{
    gemm_layout l = layout_of(d);
    uint64_t texels_a = (l.span_a + 3) / 4, texels_b = (l.span_b + 3) / 4;
    uint32_t align = ctx->caps.min_texel_buffer_offset_alignment ? ctx->caps.min_texel_buffer_offset_alignment : 1;
    return l.vec_a && l.vec_b && texels_a <= ctx->caps.max_texel_buffer_elements &&
           texels_b <= ctx->caps.max_texel_buffer_elements &&
           (!d->a.buf || (d->a.buf->offset + d->a.offset) % align == 0) &&
           (!d->b.buf || (d->b.buf->offset + d->b.offset) % align == 0);
}

/* n comma-separated whole numbers in 1..max, nothing else: 1, or 0. */
static int parse_tuning(const char *text, uint32_t n, uint32_t max, uint32_t *out)
{
    const char *p = text;
    for (uint32_t i = 0; i < n; i++) {
        if (*p < '0' || *p > '9') return 0;
        char *end;
        unsigned long v = strtoul(p, &end, 10);
        if (v < 1 || v > max || *end != (i + 1 < n ? ',' : '\0')) return 0;
        out[i] = (uint32_t)v;
        p = end + 1;
    }
    return 1;
}

/* ENN_GEMM_TILES and ENN_GEMM_COOPMAT_TILES are tuning requests: one that cannot be read,
 * or that names a tile this device cannot run, is an error naming the variable, not a
 * quiet fallback to another kernel. */
static enn_status check_tuning(const enn_context *ctx, enn_gemm_variant forced)
{
    gemm_config cfg;
    const char *t = ctx->env.gemm_tiles;
    if (t[0] && strcasecmp(t, "loop")) {
        uint32_t v[3];
        if (!parse_tuning(t, 3, 64, v))
            return enn_error(ENN_ERROR_INVALID_ARGUMENT, "ENN_GEMM_TILES=%s: want loop, or rm,rn,bk with rm and rn 4 or "
                             "8 and bk a multiple of 4 up to 64", t);
        if (ctx->caps.device_type != ENN_DEVICE_CPU || forced == ENN_GEMM_TILED || variant_from_env(ctx) == ENN_GEMM_TILED)
            if (!tiled_shape_config(&ctx->caps, v, &cfg))
                return enn_error(ENN_ERROR_UNSUPPORTED, "ENN_GEMM_TILES=%s: %s cannot run that tile (rm and rn 4 or 8, "
                                 "bk a multiple of 4; 16 x 16 invocations; %u bytes of shared memory)", t,
                                 ctx->caps.device_name, ctx->caps.max_shared_memory);
    }
    t = ctx->env.gemm_coopmat_tiles;
    if (t[0]) {
        uint32_t v[5];
        if (!parse_tuning(t, 5, 128, v))
            return enn_error(ENN_ERROR_INVALID_ARGUMENT, "ENN_GEMM_COOPMAT_TILES=%s: want sg_m,sg_n,tiles_m,tiles_n,bk, "
                             "whole numbers from 1 to 128 (tiles_m and tiles_n 2 or 4)", t);
        const enn_coopmat_shape *shape = coopmat_shape(&ctx->caps);
        if (ctx->caps.cooperative_matrix && ctx->enabled.coopmat_nv && shape && !coopmat_config(&ctx->caps, shape, v, &cfg))
            return enn_error(ENN_ERROR_UNSUPPORTED, "ENN_GEMM_COOPMAT_TILES=%s: %s cannot run that tile", t,
                             ctx->caps.device_name);
    }
    return ENN_OK;
}

enn_status enn_gemm_pick_variant(enn_context *ctx, const enn_gemm_desc *d, enn_gemm_variant *out)
{
    ENN_TRY(check_tuning(ctx, d->variant));
    enn_gemm_variant v = d->variant;
    const char *why = "desc.variant";
    if (v == ENN_GEMM_AUTO) {
        v = variant_from_env(ctx);
        why = "ENN_GEMM_VARIANT";
        if (v == ENN_GEMM_VARIANT_COUNT)
            return enn_error(ENN_ERROR_INVALID_ARGUMENT, "ENN_GEMM_VARIANT=%s: want auto, reg, texel, tiled, f16 or coopmat",
                             ctx->env.gemm_variant);
    }
    if (v != ENN_GEMM_AUTO) {
        if ((unsigned)v >= ENN_GEMM_VARIANT_COUNT)
            return enn_error(ENN_ERROR_INVALID_ARGUMENT, "gemm: variant %d is not one", (int)v);
        int wants_f16 = v == ENN_GEMM_F16 || v == ENN_GEMM_COOPMAT;
        if (wants_f16 != (d->ab_type == ENN_F16))
            return enn_error(ENN_ERROR_UNSUPPORTED, "gemm: %s forces the %s variant, which takes %s operands; these "
                             "are %s", why, enn_gemm_variant_name(v), wants_f16 ? "fp16" : "fp32",
                             d->ab_type == ENN_F16 ? "fp16" : "fp32");
        if (!enn_gemm_variant_supported(ctx, v, d->ab_type))
            return enn_error(ENN_ERROR_UNSUPPORTED, "gemm: %s forces the %s variant, which %s cannot run", why,
                             enn_gemm_variant_name(v), ctx->caps.device_name);
        if (v == ENN_GEMM_TEXEL && !texel_fits(ctx, d))
            return enn_error(ENN_ERROR_UNSUPPORTED, "gemm: %s forces the texel variant, which needs vec4 layouts "
                             "(lda, ldb, strides multiples of 4; M too with trans_a, N without trans_b), views that "
                             "start at multiples of %u bytes and at most %u vec4s per operand (A: %llu elements, "
                             "B: %llu, M x N x K = %u x %u x %u, lda %u, ldb %u)",
                             why, ctx->caps.min_texel_buffer_offset_alignment, ctx->caps.max_texel_buffer_elements,
                             (unsigned long long)layout_of(d).span_a, (unsigned long long)layout_of(d).span_b,
                             d->m, d->n, d->k, layout_of(d).lda, layout_of(d).ldb);
        *out = v;
        return ENN_OK;
    }
    if (d->ab_type == ENN_F16) {
        if (enn_gemm_variant_supported(ctx, ENN_GEMM_COOPMAT, ENN_F16)) *out = ENN_GEMM_COOPMAT;
        else if (enn_gemm_variant_supported(ctx, ENN_GEMM_F16, ENN_F16)) *out = ENN_GEMM_F16;
        else
            return enn_error(ENN_ERROR_UNSUPPORTED, "gemm: %s has no 16-bit storage (or ENN_DISABLE_FP16 is set); "
                             "fp16 operands need it", ctx->caps.device_name);
        return ENN_OK;
    }
    /* CPU devices run shared memory as a loop over lanes: register blocking wins there,
     * with A and B read through texel buffers (gathers) where they fit in one. */
    if (ctx->caps.device_type != ENN_DEVICE_CPU && enn_gemm_variant_supported(ctx, ENN_GEMM_TILED, ENN_F32))
        *out = ENN_GEMM_TILED;
    else if (ctx->caps.device_type == ENN_DEVICE_CPU && enn_gemm_variant_supported(ctx, ENN_GEMM_TEXEL, ENN_F32) &&
             texel_fits(ctx, d))
        *out = ENN_GEMM_TEXEL;
    else if (enn_gemm_variant_supported(ctx, ENN_GEMM_REG, ENN_F32))
        *out = ENN_GEMM_REG;
    else if (enn_gemm_variant_supported(ctx, ENN_GEMM_TILED, ENN_F32))
        *out = ENN_GEMM_TILED;  /* subgroups below 8 lanes (llvmpipe with 128-bit vectors) */
    else
        return enn_error(ENN_ERROR_UNSUPPORTED, "gemm: %s runs none of the fp32 kernels (subgroup size %u, "
                         "workgroups up to %u invocations, %u bytes of shared memory)", ctx->caps.device_name,
                         ctx->caps.subgroup_size, ctx->caps.max_workgroup_invocations, ctx->caps.max_shared_memory);
    return ENN_OK;
}

/* The epilogue compiled into the CPU devices' kernels (EPILOGUE, spec id 12 of gemm.comp):
 * bit 0 bias, bit 1 reads C (beta != 0), bits 2-3 the activation; EPI_RUNTIME (16) reads
 * them from the push constants. llvmpipe runs every branch under lane masks, so an
 * option left to run time costs every element of C whether used or not (see the
 * shader); compiled in, each combination is its own pipeline. GPUs keep the run-time
 * flags (uniform branches, free there). ENN_DISABLE_GEMM_EPILOGUE_SPEC=1: run-time flags
 * everywhere. */
static uint32_t epilogue_spec(const enn_context *ctx, const enn_gemm_desc *d)
{
    const uint32_t runtime = 16;
    if (ctx->caps.device_type != ENN_DEVICE_CPU || ctx->env.disable_gemm_epilogue_spec) return runtime;
    return (d->bias.buf ? 1u : 0u) | (d->beta != 0.0f ? 2u : 0u) | (uint32_t)d->act << 2;
}

enn_status enn_gemm(enn_recorder *rec, const enn_gemm_desc *d)
{
    if (!rec || !d) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "enn_gemm: NULL argument");
    enn_context *ctx = enn_recorder_context(rec);
    if (!d->a.buf || !d->b.buf || !d->c.buf) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "enn_gemm: A, B or C is NULL");
    if (!d->m || !d->n || !d->k)
        return enn_error(ENN_ERROR_SHAPE, "enn_gemm: M x N x K = %u x %u x %u; each must be at least 1", d->m, d->n, d->k);
    if (d->ab_type != ENN_F32 && d->ab_type != ENN_F16)
        return enn_error(ENN_ERROR_INVALID_ARGUMENT, "enn_gemm: A and B must be ENN_F32 or ENN_F16");
    if ((unsigned)d->act > ENN_ACT_SIGMOID) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "enn_gemm: activation %d", d->act);
    /* Stored shapes: A is rows_a x cols_a with lda >= cols_a, and so on. */
    gemm_layout l = layout_of(d);
    uint32_t batch = l.batch, cols_a = l.cols_a, cols_b = l.cols_b, lda = l.lda, ldb = l.ldb, ldc = l.ldc;
    if (lda < cols_a || ldb < cols_b || ldc < d->n)
        return enn_error(ENN_ERROR_SHAPE, "enn_gemm: lda %u, ldb %u, ldc %u below the row lengths %u, %u, %u",
                         lda, ldb, ldc, cols_a, cols_b, d->n);
    uint64_t span_a = l.span_a, span_b = l.span_b;
    uint64_t span_c = span(d->m, d->n, ldc, batch, d->stride_c);
    if (batch > 1 && d->stride_c && d->stride_c < (uint64_t)(d->m - 1) * ldc + d->n)
        return enn_error(ENN_ERROR_SHAPE, "enn_gemm: stride_c %llu makes batch entries of C overlap (M x N = %u x %u, ldc %u)",
                         (unsigned long long)d->stride_c, d->m, d->n, ldc);
    if (batch > 1 && !d->stride_c)
        return enn_error(ENN_ERROR_SHAPE, "enn_gemm: stride_c is 0 with a batch of %u: every entry would write the same C", batch);
    /* The shader indexes with 32-bit element offsets. */
    if (span_a > UINT32_MAX || span_b > UINT32_MAX || span_c > UINT32_MAX || d->stride_a > UINT32_MAX ||
        d->stride_b > UINT32_MAX || d->stride_c > UINT32_MAX)
        return enn_error(ENN_ERROR_OUT_OF_RANGE, "enn_gemm: an operand spans more than 2^32 elements");

    enn_gemm_variant v;
    ENN_TRY(enn_gemm_pick_variant(ctx, d, &v));
    gemm_config cfg;
    if (!make_config(ctx, v, &cfg)) return enn_error(ENN_ERROR_INTERNAL, "enn_gemm: no tile shape for %s", enn_gemm_variant_name(v));
    cfg.spec[3] = d->trans_a ? 1 : 0;
    cfg.spec[4] = d->trans_b ? 1 : 0;
    /* The texel variant's views: a vec4 per texel where the shader loads vec4s. */
    VkFormat formats[4] = {VK_FORMAT_UNDEFINED, VK_FORMAT_UNDEFINED, VK_FORMAT_UNDEFINED, VK_FORMAT_UNDEFINED};
    if (v == ENN_GEMM_REG || v == ENN_GEMM_TEXEL) {
        cfg.spec[5] = (uint32_t)l.vec_a;
        cfg.spec[6] = (uint32_t)l.vec_b;
        cfg.spec[12] = epilogue_spec(ctx, d);   /* ids 7, 8: texel only; 9-11 unused */
        cfg.spec_count = 13;
    }
    if (v == ENN_GEMM_TEXEL) {
        /* 16-row tiles for products of 2^24 multiply-adds or more: on lavapipe they run
         * the ENN's hoisted GEMMs (3584 x 384 x 128 and its transposes) twice as fast as
         * 8-row tiles (paper-mnist: 135 -> 70 ms/step) and 512^3 10-20% faster, but take
         * about twice as long to compile (~1.5 s for the three transpose cases), which
         * small products never win back. */
        uint64_t macs = (uint64_t)d->m * d->n * d->k;
        const char *block = d->m < 16 || macs < ((uint64_t)1 << 24) ? "8"
                            : macs < ((uint64_t)1 << 27) || ctx->env.disable_gemm_texel_wide ? "16" : "wide";
        /* 16 x 16 per lane in row order ("wide") from 2^27 multiply-adds: on lavapipe the
         * language model's head GEMMs (2432 x 10000 x 128, 2432 x 128 x 10000 with B
         * transposed, 128 x 10000 x 2432 with A transposed) took 107-131 ms against
         * 141-167 with 16 x 8 in step order, the ENN's (4096 x 384 x 128 and transposes)
         * 7.6-7.9 against 10.2-12.7 (best of 3-5 alternated runs each), but each layout
         * takes ~3.6 s to compile against ~1.4 (and ~0.5 for 8 x 8).
         * ENN_DISABLE_GEMM_TEXEL_WIDE=1 goes back to the 16 x 8 step-order kernel;
         * ENN_GEMM_TEXEL_TILE=8|16|wide forces a block (tests, tuning). */
        const char *tile = ctx->env.gemm_texel_tile;
        if (tile[0]) block = tile;
        uint32_t local = cfg.spec[0];
        if (!strcmp(block, "8")) {
            cfg.shader = "gemm_texel_8";
            cfg.tile_m = 8;
        } else if (!strcmp(block, "wide")) {
            cfg.shader = "gemm_texel_wide";
            cfg.tile_n = 16 * local;   /* CG = 4 in the shader */
        } else if (strcmp(block, "16")) {
            return enn_error(ENN_ERROR_INVALID_ARGUMENT, "ENN_GEMM_TEXEL_TILE=%s: want 8, 16 or wide", tile);
        }
        cfg.spec[8] = d->k % 4 != 0;   /* K_TAIL */
        formats[0] = formats[1] = VK_FORMAT_R32G32B32A32_SFLOAT;
        /* vec4 stores of C (and loads of the bias) */
        cfg.spec[7] = ldc % 4 == 0 && (batch == 1 || d->stride_c % 4 == 0) && d->n % 4 == 0;
    }
    const enn_pipeline *pipe;
    enn_pipeline_desc pd = {.shader = cfg.shader, .num_buffers = 4, .push_size = sizeof(gemm_push),
                            .spec = cfg.spec, .spec_count = cfg.spec_count,
                            .texel_formats = v == ENN_GEMM_TEXEL ? formats : NULL};
    ENN_TRY(enn_pipeline_get(ctx, &pd, &pipe));

    uint32_t tiles_m = (d->m + cfg.tile_m - 1) / cfg.tile_m, tiles_n = (d->n + cfg.tile_n - 1) / cfg.tile_n;
    uint64_t total = (uint64_t)tiles_m * tiles_n;
    uint32_t gx = total < ctx->caps.max_workgroup_count[0] ? (uint32_t)total : ctx->caps.max_workgroup_count[0];
    uint64_t gy = (total + gx - 1) / gx;
    if (gy > ctx->caps.max_workgroup_count[1])
        return enn_error(ENN_ERROR_OUT_OF_RANGE, "enn_gemm: %llu tiles exceed the device's workgroup grid",
                         (unsigned long long)total);

    size_t ab_size = d->ab_type == ENN_F16 ? 2 : 4;
    enn_binding bind[4] = {
        enn_bind(d->a, span_a * ab_size, ENN_ACCESS_READ),
        enn_bind(d->b, span_b * ab_size, ENN_ACCESS_READ),
        enn_bind(d->c, span_c * 4, d->beta != 0.0f ? ENN_ACCESS_READ_WRITE : ENN_ACCESS_WRITE),
        /* Without a bias the shader never reads binding 3; A stands in for it. */
        d->bias.buf ? enn_bind(d->bias, (VkDeviceSize)d->n * 4, ENN_ACCESS_READ) : enn_bind(d->a, span_a * ab_size, ENN_ACCESS_READ),
    };
    gemm_push push = {d->m, d->n, d->k, lda, ldb, ldc, (uint32_t)d->stride_a, (uint32_t)d->stride_b,
                      (uint32_t)d->stride_c, tiles_n, (uint32_t)total, 0,
                      (d->bias.buf ? 1u : 0u) | ((uint32_t)d->act << 1), d->alpha, d->beta};
    if (cfg.vec4_flags) { /* bits 3, 4: 16-byte loads of A, B (gemm_tiled.glsl checks each against the matrix) */
        push.flags |= (lda % 4 == 0 && (batch == 1 || d->stride_a % 4 == 0)) ? 8u : 0u;
        push.flags |= (ldb % 4 == 0 && (batch == 1 || d->stride_b % 4 == 0)) ? 16u : 0u;
    }
    const char *name = d->name ? d->name : cfg.shader;
    uint32_t max_z = ctx->caps.max_workgroup_count[2];
    for (uint32_t b0 = 0; b0 < batch; b0 += max_z) {
        push.batch_base = b0;
        uint32_t gz = batch - b0 < max_z ? batch - b0 : max_z;
        ENN_TRY(enn_record_dispatch(rec, pipe, bind, 4, &push, gx, (uint32_t)gy, gz, name));
    }
    return ENN_OK;
}

/* ---------------------------------------------------------------- linear layer */

enn_status enn_linear_forward(enn_recorder *rec, enn_view y, enn_view x, enn_view w, enn_view bias,
                              uint32_t m, uint32_t k, uint32_t n, enn_activation act)
{
    enn_gemm_desc d = enn_gemm_desc_packed("linear_forward", y, x, 0, w, 0, m, n, k, 0.0f, bias, act);
    return enn_gemm(rec, &d);
}

enn_status enn_column_sums(enn_recorder *rec, enn_view out, enn_view in, uint32_t rows, uint32_t cols,
                           uint32_t ld, float beta)
{
    if (!rec || !out.buf || !in.buf) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "enn_column_sums: NULL argument");
    if (!rows || !cols || ld < cols)
        return enn_error(ENN_ERROR_SHAPE, "enn_column_sums: %u x %u with ld %u", rows, cols, ld);
    enn_context *ctx = enn_recorder_context(rec);
    const uint32_t local = 64, spec[1] = {local};
    const enn_pipeline *pipe;
    enn_pipeline_desc pd = {.shader = "column_sums", .num_buffers = 2, .push_size = 16, .spec = spec, .spec_count = 1};
    ENN_TRY(enn_pipeline_get(ctx, &pd, &pipe));
    struct { uint32_t rows, cols, ld; float beta; } push = {rows, cols, ld, beta};
    enn_binding b[2] = {enn_bind(in, ((VkDeviceSize)(rows - 1) * ld + cols) * 4, ENN_ACCESS_READ),
                        enn_bind(out, (VkDeviceSize)cols * 4, beta != 0.0f ? ENN_ACCESS_READ_WRITE : ENN_ACCESS_WRITE)};
    uint32_t groups = (cols + local - 1) / local;
    uint32_t gx = groups < ctx->caps.max_workgroup_count[0] ? groups : ctx->caps.max_workgroup_count[0];
    return enn_record_dispatch(rec, pipe, b, 2, &push, gx, (groups + gx - 1) / gx, 1, "column_sums");
}

enn_status enn_linear_backward(enn_recorder *rec, enn_view dx, enn_view dw, enn_view dbias, enn_view dy,
                               enn_view x, enn_view w, uint32_t m, uint32_t k, uint32_t n, int accumulate)
{
    float beta = accumulate ? 1.0f : 0.0f;
    if (dx.buf) { /* dx[M x K] = dy[M x N] w[K x N]^T */
        enn_gemm_desc d = enn_gemm_desc_packed("linear_backward_dx", dx, dy, 0, w, 1, m, k, n, beta,
                                               (enn_view){0}, ENN_ACT_NONE);
        ENN_TRY(enn_gemm(rec, &d));
    }
    if (dw.buf) { /* dw[K x N] = x[M x K]^T dy[M x N] */
        enn_gemm_desc d = enn_gemm_desc_packed("linear_backward_dw", dw, x, 1, dy, 0, k, n, m, beta,
                                               (enn_view){0}, ENN_ACT_NONE);
        ENN_TRY(enn_gemm(rec, &d));
    }
    if (dbias.buf) ENN_TRY(enn_column_sums(rec, dbias, dy, m, n, n, beta));
    return ENN_OK;
}
