/* GEMM (runtime/ops/gemm.h) against a double-precision C reference (tests/common/ref_gemm.c),
 * for every variant the test device runs, each forced in turn.
 *
 * Tolerance. Every element is compared as
 *     |gpu - ref| <= (K + 4) * 2^-24 * S + t_act
 * where S = |alpha| sum_k |a_mk b_kn| + |beta c| + |bias| (from the reference). (K + 4) u S
 * bounds the rounding error of any order of fp32 multiply-adds over K terms plus the
 * epilogue's few operations (the classical gamma_n bound), so the test cannot fail on a
 * correct kernel whatever its summation order, and is still ~1e-6 relative for K ~ 30: a
 * wrong index or a lost term is off by O(1). ReLU and tanh have slope <= 1 and sigmoid
 * <= 1/4, so they do not amplify that error; t_act = 1e-5 covers the device's own
 * tanh/exp (Vulkan allows a few ULP plus 2|x| ULP for exp), 0 otherwise.
 * fp16 variants are compared against the reference on fp16-rounded A and B: products of
 * two halves are exact in fp32, so the same bound holds (with u doubled for cooperative
 * matrices, whose accumulation may truncate).
 *
 * Coverage on lavapipe has to stay small: a 4096^3 product is ~10 s per variant there, so
 * the 1..4096 range of each dimension is covered by skinny shapes (4096 x 3 x 5,
 * 3 x 4096 x 4096, ...) and by the non-multiples-of-every-tile shapes below. The C
 * buffer is padded (ldc > N) and filled with a sentinel, which must survive: no kernel
 * writes outside its M x N block. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/context.h"
#include "core/recorder.h"
#include "harness.h"
#include "ops/gemm.h"
#include "ref_gemm.h"

typedef struct gemm_case {
    uint32_t m, n, k;
    int trans_a, trans_b;
    uint32_t pad_a, pad_b, pad_c;   /* leading dimension = row length + pad */
    uint32_t batch;
    int share_b;                    /* stride_b = 0: one B for the whole batch */
    float alpha, beta;
    int bias;
    enn_activation act;
} gemm_case;

static const float SENTINEL = -12345.0f;

/* Runs one case with variant v and checks every element of C (and the padding); 0 when
 * v is the texel variant and the layout is not one it takes (the launcher must then
 * refuse it with ENN_ERROR_UNSUPPORTED), else 1. */
static int check_case(enn_context *ctx, enn_recorder *rec, enn_gemm_variant v, const gemm_case *gc, uint64_t seed)
{
    int f16 = v == ENN_GEMM_F16 || v == ENN_GEMM_COOPMAT;
    uint32_t batch = gc->batch ? gc->batch : 1;
    uint32_t rows_a = gc->trans_a ? gc->k : gc->m, cols_a = gc->trans_a ? gc->m : gc->k;
    uint32_t rows_b = gc->trans_b ? gc->n : gc->k, cols_b = gc->trans_b ? gc->k : gc->n;
    uint32_t lda = cols_a + gc->pad_a, ldb = cols_b + gc->pad_b, ldc = gc->n + gc->pad_c;
    uint64_t stride_a = (uint64_t)rows_a * lda + (batch > 1 ? 4 : 0);  /* gaps between entries */
    uint64_t stride_b = gc->share_b ? 0 : (uint64_t)rows_b * ldb;
    uint64_t stride_c = (uint64_t)gc->m * ldc;
    uint64_t na = stride_a * batch, nb = gc->share_b ? (uint64_t)rows_b * ldb : stride_b * batch, nc = stride_c * batch;

    float *a = malloc(na * 4), *b = malloc(nb * 4), *c = malloc(nc * 4), *bias = malloc(gc->n * 4);
    uint16_t *a16 = malloc(na * 2), *b16 = malloc(nb * 2);
    double *ref = malloc(nc * 8), *scale = malloc(nc * 8);
    cr_assert(a && b && c && bias && a16 && b16 && ref && scale);
    for (uint64_t i = 0; i < na; i++) a[i] = (float)test_rand_uniform(&seed, -1, 1);
    for (uint64_t i = 0; i < nb; i++) b[i] = (float)test_rand_uniform(&seed, -1, 1);
    for (uint64_t i = 0; i < nc; i++) c[i] = (float)test_rand_uniform(&seed, -1, 1);
    for (uint32_t i = 0; i < gc->n; i++) bias[i] = (float)test_rand_uniform(&seed, -1, 1);
    /* The padding of C is a sentinel that the kernel must leave alone. */
    for (uint64_t i = 0; i < nc; i++)
        if ((i % stride_c) % ldc >= gc->n) c[i] = SENTINEL;
    if (f16) { /* the reference sees exactly the halves the device reads */
        for (uint64_t i = 0; i < na; i++) a[i] = ref_f16_to_f32(a16[i] = ref_f32_to_f16(a[i]));
        for (uint64_t i = 0; i < nb; i++) b[i] = ref_f16_to_f32(b16[i] = ref_f32_to_f16(b[i]));
    }
    ref_gemm_args g = {a, b, c, gc->bias ? bias : NULL, gc->m, gc->n, gc->k, gc->trans_a, gc->trans_b,
                       lda, ldb, ldc, batch, stride_a, stride_b, stride_c, gc->alpha, gc->beta, gc->act};
    ref_gemm(&g, ref, scale);

    size_t es = f16 ? 2 : 4;
    enn_buffer *ba, *bb, *bc, *bbias;
    /* A sits 256 bytes into its buffer: views with offsets must work. */
    ENN_ASSERT_OK(enn_buffer_create(ctx, 256 + na * es, &ba));
    ENN_ASSERT_OK(enn_buffer_create(ctx, nb * es, &bb));
    ENN_ASSERT_OK(enn_buffer_create(ctx, nc * 4, &bc));
    ENN_ASSERT_OK(enn_buffer_create(ctx, gc->n * 4, &bbias));
    ENN_ASSERT_OK(enn_buffer_upload(ctx, ba, 256, f16 ? (void *)a16 : (void *)a, na * es));
    ENN_ASSERT_OK(enn_buffer_upload(ctx, bb, 0, f16 ? (void *)b16 : (void *)b, nb * es));
    ENN_ASSERT_OK(enn_buffer_upload(ctx, bc, 0, c, nc * 4));
    ENN_ASSERT_OK(enn_buffer_upload(ctx, bbias, 0, bias, gc->n * 4));

    enn_gemm_desc d = ENN_GEMM_DESC_INIT;
    d.a = enn_view_at(ba, 256);
    d.b = enn_view_of(bb);
    d.c = enn_view_of(bc);
    if (gc->bias) d.bias = enn_view_of(bbias);
    d.m = gc->m; d.n = gc->n; d.k = gc->k;
    d.trans_a = gc->trans_a; d.trans_b = gc->trans_b;
    d.lda = lda; d.ldb = ldb; d.ldc = ldc;
    d.batch = batch;
    d.stride_a = stride_a; d.stride_b = stride_b; d.stride_c = stride_c;
    d.alpha = gc->alpha; d.beta = gc->beta;
    d.act = gc->act;
    d.ab_type = f16 ? ENN_F16 : ENN_F32;
    d.variant = v;
    int ran = 1;
    enn_gemm_variant picked;
    enn_status st = enn_gemm_pick_variant(ctx, &d, &picked);
    if (v == ENN_GEMM_TEXEL && st != ENN_OK) {
        cr_assert_eq(st, ENN_ERROR_UNSUPPORTED, "texel %ux%ux%u: %s", gc->m, gc->n, gc->k, enn_last_error());
        ran = 0;
        goto done;
    }
    ENN_ASSERT_OK(enn_recorder_begin(rec));
    ENN_ASSERT_OK(enn_gemm(rec, &d));
    ENN_ASSERT_OK(enn_recorder_run(rec));
    ENN_ASSERT_OK(enn_buffer_download(ctx, bc, 0, c, nc * 4));

    /* Tensor cores do not promise round-to-nearest in their fp32 accumulation (they may
     * truncate when aligning addends): twice the unit roundoff covers truncation. */
    const double u = ldexp(1.0, v == ENN_GEMM_COOPMAT ? -23 : -24);
    double t_act = gc->act == ENN_ACT_TANH || gc->act == ENN_ACT_SIGMOID ? 1e-5 : 0.0;
    for (uint64_t i = 0; i < nc; i++) {
        uint64_t col = (i % stride_c) % ldc, row = (i % stride_c) / ldc, bt = i / stride_c;
        if (col >= gc->n) {
            cr_assert_eq(c[i], SENTINEL, "%s %ux%ux%u: padding of C at batch %llu row %llu col %llu was written",
                         enn_gemm_variant_name(v), gc->m, gc->n, gc->k, (unsigned long long)bt,
                         (unsigned long long)row, (unsigned long long)col);
            continue;
        }
        double tol = (gc->k + 4) * u * scale[i] + t_act;
        cr_assert(fabs(c[i] - ref[i]) <= tol,
                  "%s M=%u N=%u K=%u ta=%d tb=%d batch=%u beta=%g bias=%d act=%d: C[%llu][%llu][%llu] = %.9g, "
                  "reference %.9g (tolerance %.3g)",
                  enn_gemm_variant_name(v), gc->m, gc->n, gc->k, gc->trans_a, gc->trans_b, batch, gc->beta,
                  gc->bias, gc->act, (unsigned long long)bt, (unsigned long long)row, (unsigned long long)col,
                  c[i], ref[i], tol);
    }
done:
    enn_buffer_destroy(ctx, ba);
    enn_buffer_destroy(ctx, bb);
    enn_buffer_destroy(ctx, bc);
    enn_buffer_destroy(ctx, bbias);
    free(a); free(b); free(c); free(bias); free(a16); free(b16); free(ref); free(scale);
    return ran;
}

/* A context and a recorder for a test of variant v; the test is skipped where the device
 * cannot run v. */
static enn_context *variant_context(enn_gemm_variant v, enn_recorder **rec)
{
    enn_context *ctx = test_context();
    if (!enn_gemm_variant_supported(ctx, v, v == ENN_GEMM_F16 || v == ENN_GEMM_COOPMAT ? ENN_F16 : ENN_F32)) {
        test_context_finish(ctx);
        cr_skip_test("%s cannot run the %s GEMM variant", test_device(), enn_gemm_variant_name(v));
    }
    ENN_ASSERT_OK(enn_recorder_create(ctx, rec));
    return ctx;
}

static void test_finish(enn_context *ctx, enn_recorder *rec)
{
    enn_recorder_destroy(rec);
    test_context_finish(ctx);
}

/* Sizes that are 1, primes, and just off every tile size (4, 8, 16, 32, 64, 128). */
static const uint32_t odd_shapes[][3] = {
    {1, 1, 1}, {1, 7, 3}, {5, 1, 9}, {2, 3, 4}, {13, 17, 19}, {31, 37, 41}, {4, 8, 4},
    {64, 64, 64}, {65, 63, 67}, {127, 129, 33}, {33, 130, 17}, {100, 3, 257},
};
/* Shapes of the ENN (a batch of 128 over 28 steps, d = 28, h = 128 or 384). */
static const uint32_t paper_shapes[][3] = {
    {128 * 28, 128, 28}, {128, 384, 384}, {128, 1152, 384}, {128 * 28, 384, 28},
};

/* Every shape, all four transposes, with beta, bias and each activation in turn. */
static void shapes_for(enn_gemm_variant v, const uint32_t (*shapes)[3], size_t count, int all_transposes,
                       int pad_to_vec4)
{
    enn_recorder *rec;
    enn_context *ctx = variant_context(v, &rec);
    uint32_t i = 0, ran = 0;
    for (size_t s = 0; s < count; s++)
        for (int t = 0; t < 4; t++, i++) {
            if (!all_transposes && t != (int)(s % 4)) continue;
            gemm_case gc = {shapes[s][0], shapes[s][1], shapes[s][2], t & 1, t >> 1, 0, 0, i % 3,
                            1, 0, i % 5 == 0 ? 1.0f : 0.75f, i % 2 ? 0.5f : 0.0f, i % 3 != 0,
                            (enn_activation)(i % 4)};
            if (pad_to_vec4) { /* leading dimensions padded to multiples of 4 */
                uint32_t cols_a = gc.trans_a ? gc.m : gc.k, cols_b = gc.trans_b ? gc.k : gc.n;
                gc.pad_a = (4 - cols_a % 4) % 4;
                gc.pad_b = (4 - cols_b % 4) % 4;
            }
            ran += (uint32_t)check_case(ctx, rec, v, &gc, 1000 + i);
        }
    cr_assert(ran > 0, "%s: no case ran", enn_gemm_variant_name(v));
    test_finish(ctx, rec);
}

#define VARIANT_SUITE(tag, variant)                                                                \
    Test(gemm, tag##_odd_shapes) { shapes_for(variant, odd_shapes, sizeof odd_shapes / sizeof odd_shapes[0], 1, 0); } \
    Test(gemm, tag##_paper_shapes) { shapes_for(variant, paper_shapes, sizeof paper_shapes / sizeof paper_shapes[0], 0, 0); }

VARIANT_SUITE(reg, ENN_GEMM_REG)
VARIANT_SUITE(tiled, ENN_GEMM_TILED)
VARIANT_SUITE(f16, ENN_GEMM_F16)
VARIANT_SUITE(coopmat, ENN_GEMM_COOPMAT)
VARIANT_SUITE(texel, ENN_GEMM_TEXEL)

/* The texel variant takes vec4 layouts only (most odd shapes above are refused): M and N
 * multiples of 4, any K (its last step masks what its vec4s read past K), leading
 * dimensions padded to multiples of 4, all four transposes. The last shape is large
 * enough for its 16-row tiles (the others run the 8-row kernel). */
static const uint32_t vec4_shapes[][3] = {
    {4, 4, 1}, {12, 20, 7}, {36, 44, 41}, {68, 60, 66}, {128, 132, 33}, {4, 128, 257}, {132, 8, 3}, {16, 16, 16},
    {260, 256, 259},
};
Test(gemm, texel_vec4_shapes) { shapes_for(ENN_GEMM_TEXEL, vec4_shapes, sizeof vec4_shapes / sizeof vec4_shapes[0], 1, 1); }

/* Strided batches with padded leading dimensions (so vec4 paths fall back where the
 * strides are not multiples of 4), and a B shared by the whole batch. */
static void batched_for(enn_gemm_variant v)
{
    enn_recorder *rec;
    enn_context *ctx = variant_context(v, &rec);
    const gemm_case cases[] = {
        {7, 9, 11, 0, 0, 1, 3, 2, 3, 0, 1.0f, 0.0f, 0, ENN_ACT_NONE},
        {16, 12, 8, 1, 0, 4, 0, 4, 5, 0, 1.0f, 1.0f, 1, ENN_ACT_RELU},
        {20, 36, 28, 0, 1, 0, 4, 1, 4, 1, 0.5f, 0.25f, 1, ENN_ACT_TANH},
        {33, 5, 64, 1, 1, 2, 1, 0, 2, 1, 1.0f, 0.0f, 1, ENN_ACT_SIGMOID},
        {28, 128, 28, 0, 0, 0, 0, 0, 6, 1, 1.0f, 0.0f, 1, ENN_ACT_NONE},
    };
    uint32_t ran = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) ran += (uint32_t)check_case(ctx, rec, v, &cases[i], 77 + i);
    cr_assert(ran > 0, "%s: no batched case ran", enn_gemm_variant_name(v));
    test_finish(ctx, rec);
}

Test(gemm, reg_batched) { batched_for(ENN_GEMM_REG); }
Test(gemm, tiled_batched) { batched_for(ENN_GEMM_TILED); }
Test(gemm, f16_batched) { batched_for(ENN_GEMM_F16); }
Test(gemm, coopmat_batched) { batched_for(ENN_GEMM_COOPMAT); }
Test(gemm, texel_batched) { batched_for(ENN_GEMM_TEXEL); }

/* The texel variant's 16 x 16-per-lane row-order block (gemm_texel_wide: large products
 * only, so forced here through ENN_GEMM_TEXEL_TILE): partial tiles in M, N (against its
 * 128-column tiles) and K, all four transposes, K past a multiple of 4 and not (the
 * K_TAIL specialisation), vec4 stores of C and scalar ones (ldc padded by 1). Few cases:
 * each layout is a pipeline, and this block takes seconds to compile on lavapipe. */
Test(gemm, texel_block_wide)
{
    enn_recorder *rec;
    setenv("ENN_GEMM_TEXEL_TILE", "wide", 1);   /* read when the context is created */
    enn_context *ctx = variant_context(ENN_GEMM_TEXEL, &rec);
    unsetenv("ENN_GEMM_TEXEL_TILE");
    const gemm_case cases[] = {
        {36, 132, 41, 0, 0, 3, 0, 0, 1, 0, 1.0f, 0.5f, 1, ENN_ACT_TANH},
        {20, 136, 37, 1, 0, 0, 0, 1, 1, 0, 0.75f, 0.0f, 1, ENN_ACT_RELU},
        {52, 132, 7, 0, 1, 1, 1, 0, 1, 0, 1.0f, 1.0f, 0, ENN_ACT_NONE},
        {12, 260, 43, 1, 1, 0, 1, 1, 1, 0, 1.0f, 0.0f, 1, ENN_ACT_SIGMOID},
        {36, 140, 64, 1, 0, 4, 0, 0, 1, 0, 1.0f, 0.0f, 0, ENN_ACT_NONE},
    };
    uint32_t ran = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) ran += (uint32_t)check_case(ctx, rec, ENN_GEMM_TEXEL, &cases[i], 900 + i);
    cr_assert_eq(ran, sizeof cases / sizeof cases[0], "a vec4 layout was refused by the texel variant");
    test_finish(ctx, rec);
}

/* A texel block that is not compiled is refused, not replaced. */
Test(gemm, texel_block_refused)
{
    enn_recorder *rec;
    setenv("ENN_GEMM_TEXEL_TILE", "32", 1);
    enn_context *ctx = variant_context(ENN_GEMM_TEXEL, &rec);
    unsetenv("ENN_GEMM_TEXEL_TILE");
    enn_buffer *buf;
    ENN_ASSERT_OK(enn_buffer_create(ctx, 4096, &buf));
    enn_gemm_desc d = ENN_GEMM_DESC_INIT;
    d.a = d.b = d.c = enn_view_of(buf);
    d.m = d.n = d.k = 8;
    d.variant = ENN_GEMM_TEXEL;
    ENN_ASSERT_OK(enn_recorder_begin(rec));
    cr_assert_eq(enn_gemm(rec, &d), ENN_ERROR_INVALID_ARGUMENT);
    cr_assert(strstr(enn_last_error(), "ENN_GEMM_TEXEL_TILE=32"), "%s", enn_last_error());
    enn_recorder_destroy(rec);
    enn_buffer_destroy(ctx, buf);
    test_context_finish(ctx);
}

/* CPU devices compile the epilogue into the texel (and reg) kernels: each combination of
 * bias, C read (beta != 0) and activation is its own pipeline (gemm.c: epilogue_spec).
 * All 16 on the 8-row block with partial tiles in M, N and K, alternating vec4 and
 * scalar stores of C (ldc padded) and the transposes; texel_block_wide covers each
 * option on the wide block. Then the run-time flags (ENN_DISABLE_GEMM_EPILOGUE_SPEC=1),
 * whose pipeline GPUs and that switch use. */
static void texel_epilogues(int runtime_flags)
{
    enn_recorder *rec;
    setenv("ENN_GEMM_TEXEL_TILE", "8", 1);
    if (runtime_flags) setenv("ENN_DISABLE_GEMM_EPILOGUE_SPEC", "1", 1);
    enn_context *ctx = variant_context(ENN_GEMM_TEXEL, &rec);
    unsetenv("ENN_GEMM_TEXEL_TILE");
    unsetenv("ENN_DISABLE_GEMM_EPILOGUE_SPEC");
    uint32_t ran = 0, count = runtime_flags ? 4 : 16;
    for (uint32_t e = 0; e < count; e++) {
        uint32_t combo = runtime_flags ? 3 + 3 * e : e;   /* bit 0 bias, bit 1 beta, bits 2-3 activation */
        gemm_case gc = {20, 76, 9 + e % 4, (int)(e / 2 % 2), (int)(e / 4 % 2), 0, 0, e % 2, 1, 0,
                        e % 3 ? 1.0f : 0.75f, combo & 2 ? 0.5f : 0.0f, (int)(combo & 1), (enn_activation)(combo >> 2)};
        gc.pad_a = gc.trans_a ? 0 : (4 - gc.k % 4) % 4;   /* vec4 layouts: leading dimensions multiples of 4 */
        gc.pad_b = gc.trans_b ? (4 - gc.k % 4) % 4 : 0;
        ran += (uint32_t)check_case(ctx, rec, ENN_GEMM_TEXEL, &gc, 300 + e);
    }
    cr_assert_eq(ran, count, "a vec4 layout was refused by the texel variant");
    test_finish(ctx, rec);
}

Test(gemm, texel_epilogue_combinations) { texel_epilogues(0); }
Test(gemm, texel_epilogue_runtime_flags) { texel_epilogues(1); }

/* Each register block of the tiled kernel (gemm_tiled.glsl: compiled variants 8x8, 8x4,
 * 4x8, 4x4, steps of 4 to 16), and the earlier kernel, forced through ENN_GEMM_TILES: the
 * batched cases (all transposes, ld padding, shared B, beta, bias, activations) and one
 * shape with a partial tile in M, N and K at once, aligned (16-byte loads) and not. */
static void tiled_block(const char *tiles)
{
    setenv("ENN_GEMM_TILES", tiles, 1);
    batched_for(ENN_GEMM_TILED);
    enn_context *ctx = test_context();
    enn_recorder *rec;
    ENN_ASSERT_OK(enn_recorder_create(ctx, &rec));
    const gemm_case cases[] = {
        {136, 140, 36, 0, 0, 0, 0, 4, 1, 0, 1.0f, 0.5f, 1, ENN_ACT_TANH},
        {140, 136, 20, 1, 1, 0, 0, 0, 1, 0, 1.0f, 0.0f, 0, ENN_ACT_NONE},
        {131, 133, 37, 1, 0, 3, 1, 1, 1, 0, 0.5f, 0.0f, 1, ENN_ACT_RELU},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) check_case(ctx, rec, ENN_GEMM_TILED, &cases[i], 300 + i);
    test_finish(ctx, rec);
}
Test(gemm, tiled_block_8x8_bk16) { tiled_block("8,8,16"); }
Test(gemm, tiled_block_8x4_bk8) { tiled_block("8,4,8"); }
Test(gemm, tiled_block_4x8_bk4) { tiled_block("4,8,4"); }
Test(gemm, tiled_block_4x4_bk16) { tiled_block("4,4,16"); }
Test(gemm, tiled_block_loop) { tiled_block("loop"); }

/* What enn_gemm_pick_variant says of a forced tiled GEMM on a context created with
 * name=value (the variables are read when a context is created); its message in message. */
static enn_status pick_tiled_with(const char *name, const char *value, char *message, size_t size)
{
    setenv(name, value, 1);
    enn_context *ctx = test_context();
    unsetenv(name);
    enn_gemm_desc d = ENN_GEMM_DESC_INIT;
    d.variant = ENN_GEMM_TILED;
    enn_gemm_variant v;
    enn_status s = enn_gemm_pick_variant(ctx, &d, &v);
    snprintf(message, size, "%s", s == ENN_OK ? "" : enn_last_error());
    test_context_finish(ctx);
    return s;
}

/* A register block that is not compiled, or a malformed setting, is refused, not replaced. */
Test(gemm, tiled_block_refused)
{
    char msg[1024];
    cr_assert_eq(pick_tiled_with("ENN_GEMM_TILES", "6,8,8", msg, sizeof msg), ENN_ERROR_UNSUPPORTED);
    cr_assert(strstr(msg, "ENN_GEMM_TILES=6,8,8"), "%s", msg);
    cr_assert_eq(pick_tiled_with("ENN_GEMM_TILES", "8,8,6", msg, sizeof msg), ENN_ERROR_UNSUPPORTED);
    /* Unreadable, trailing junk, or a step so large its shared-memory size wrapped 32 bits. */
    const char *const malformed[] = {"8,8", "abc", "8,4,16x", "8,4,1073741824", "8,4,-16"};
    for (size_t i = 0; i < sizeof malformed / sizeof *malformed; i++) {
        cr_assert_eq(pick_tiled_with("ENN_GEMM_TILES", malformed[i], msg, sizeof msg), ENN_ERROR_INVALID_ARGUMENT,
                     "%s", malformed[i]);
        cr_assert(strstr(msg, "ENN_GEMM_TILES="), "%s", msg);
    }
    cr_assert_eq(pick_tiled_with("ENN_GEMM_COOPMAT_TILES", "2,4,4,2", msg, sizeof msg), ENN_ERROR_INVALID_ARGUMENT);
    cr_assert(strstr(msg, "ENN_GEMM_COOPMAT_TILES=2,4,4,2"), "%s", msg);
}

/* Shapes that are whole tiles of every variant, with 16-byte aligned rows: the fast paths
 * (coopmat: 16-byte staging loads, accumulators stored straight to C with alpha and beta
 * applied on the matrices) in all four transposes, beside a padded C whose sentinel
 * must survive. */
static void interior_for(enn_gemm_variant v)
{
    enn_recorder *rec;
    enn_context *ctx = variant_context(v, &rec);
    for (int t = 0; t < 4; t++) {
        gemm_case gc = {256, 256, 96, t & 1, t >> 1, 8, 8, 4, 1, 0, 0.75f, t % 2 ? 0.5f : 0.0f, 0, ENN_ACT_NONE};
        check_case(ctx, rec, v, &gc, 900 + t);
    }
    test_finish(ctx, rec);
}

Test(gemm, reg_interior_tiles) { interior_for(ENN_GEMM_REG); }
Test(gemm, tiled_interior_tiles) { interior_for(ENN_GEMM_TILED); }
Test(gemm, f16_interior_tiles) { interior_for(ENN_GEMM_F16); }
Test(gemm, coopmat_interior_tiles) { interior_for(ENN_GEMM_COOPMAT); }

/* Each dimension at 4096, the others small (a full 4096^3 is a benchmark, not a CI test
 * on lavapipe). The tiled variant is run too, at the sizes its 64-wide tiles waste least. */
static void large_for(enn_gemm_variant v, int with_long_k)
{
    enn_recorder *rec;
    enn_context *ctx = variant_context(v, &rec);
    const gemm_case cases[] = {
        {4096, 3, 5, 0, 0, 0, 0, 0, 1, 0, 1.0f, 0.0f, 1, ENN_ACT_NONE},
        {4096, 1024, 2, 1, 0, 0, 0, 0, 1, 0, 1.0f, 0.5f, 0, ENN_ACT_RELU},
        {3, 4096, 4096, 0, 0, 0, 0, 0, 1, 0, 1.0f, 0.0f, 0, ENN_ACT_NONE},
        {5, 7, 4096, 1, 1, 0, 0, 0, 1, 0, 1.0f, 0.0f, 0, ENN_ACT_NONE},
    };
    /* 3 x 4096 x 4096 wastes 61 of the tiled variants' 64 tile rows: reg only. */
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (with_long_k || cases[i].m > 3) check_case(ctx, rec, v, &cases[i], 500 + i);
    test_finish(ctx, rec);
}

Test(gemm, reg_large_dims) { large_for(ENN_GEMM_REG, 1); }
Test(gemm, tiled_large_dims) { large_for(ENN_GEMM_TILED, 0); }
Test(gemm, f16_large_dims) { large_for(ENN_GEMM_F16, 0); }
Test(gemm, coopmat_large_dims) { large_for(ENN_GEMM_COOPMAT, 1); }
Test(gemm, texel_large_dims) { large_for(ENN_GEMM_TEXEL, 1); }

/* fp16 operands, through the automatic choice: coopmat where the device has it, the
 * fp16-storage tiled variant otherwise; a shape that is a multiple of no tile. */
Test(gemm, f16_operands_auto)
{
    enn_context *ctx = test_context();
    if (!ctx->caps.storage_16bit) {
        test_context_finish(ctx);
        cr_skip_test("%s has no 16-bit storage", test_device());
    }
    enn_recorder *rec;
    ENN_ASSERT_OK(enn_recorder_create(ctx, &rec));
    enn_gemm_desc probe = ENN_GEMM_DESC_INIT;
    probe.ab_type = ENN_F16;
    enn_gemm_variant v;
    ENN_ASSERT_OK(enn_gemm_pick_variant(ctx, &probe, &v));
    cr_assert_eq(v, ctx->caps.cooperative_matrix ? ENN_GEMM_COOPMAT : ENN_GEMM_F16, "picked %s", enn_gemm_variant_name(v));
    gemm_case gc = {77, 150, 300, 0, 1, 0, 0, 3, 1, 0, 1.0f, 0.5f, 1, ENN_ACT_TANH};
    check_case(ctx, rec, v, &gc, 4242);
    test_finish(ctx, rec);
}

/* The automatic choice follows the device type, and forcing what cannot run is an error. */
Test(gemm, variant_selection)
{
    enn_context *ctx = test_context();
    enn_gemm_desc d = ENN_GEMM_DESC_INIT;
    enn_gemm_variant v;
    ENN_ASSERT_OK(enn_gemm_pick_variant(ctx, &d, &v));
    int texel = enn_gemm_variant_supported(ctx, ENN_GEMM_TEXEL, ENN_F32);
    /* The storage-buffer fallback on CPU devices: the register-blocked kernel, or the
     * tiled one where subgroups have fewer than 8 lanes (LP_NATIVE_VECTOR_WIDTH=128). */
    enn_gemm_variant fallback = enn_gemm_variant_supported(ctx, ENN_GEMM_REG, ENN_F32) ? ENN_GEMM_REG : ENN_GEMM_TILED;
    if (ctx->caps.device_type == ENN_DEVICE_CPU)
        cr_assert_eq(v, texel ? ENN_GEMM_TEXEL : fallback, "CPU device picked %s", enn_gemm_variant_name(v));
    else cr_assert_eq(v, ENN_GEMM_TILED, "GPU picked %s", enn_gemm_variant_name(v));
    if (ctx->caps.device_type == ENN_DEVICE_CPU && texel) {
        /* An A of more texels than a texel buffer holds (K odd: one float per texel)
         * falls back to the storage-buffer kernel, and cannot be forced onto texels. */
        enn_gemm_desc big = ENN_GEMM_DESC_INIT;
        big.k = 4097;
        big.n = 8;
        big.m = (uint32_t)(ctx->caps.max_texel_buffer_elements / big.k + 1);
        ENN_ASSERT_OK(enn_gemm_pick_variant(ctx, &big, &v));
        cr_assert_eq(v, fallback, "%u x %u A picked %s", big.m, big.k, enn_gemm_variant_name(v));
        big.variant = ENN_GEMM_TEXEL;
        cr_assert_eq(enn_gemm_pick_variant(ctx, &big, &v), ENN_ERROR_UNSUPPORTED);
        /* ENN_DISABLE_GEMM_TEXEL switches it off (in contexts created while it is set). */
        setenv("ENN_DISABLE_GEMM_TEXEL", "1", 1);
        enn_context *plain = test_context();
        unsetenv("ENN_DISABLE_GEMM_TEXEL");
        cr_assert(!enn_gemm_variant_supported(plain, ENN_GEMM_TEXEL, ENN_F32));
        ENN_ASSERT_OK(enn_gemm_pick_variant(plain, &d, &v));
        cr_assert_eq(v, fallback, "with ENN_DISABLE_GEMM_TEXEL picked %s", enn_gemm_variant_name(v));
        test_context_finish(plain);
    }
    d.variant = ENN_GEMM_F16; /* fp32 operands in an fp16 kernel */
    cr_assert_eq(enn_gemm_pick_variant(ctx, &d, &v), ENN_ERROR_UNSUPPORTED);
    if (!ctx->caps.cooperative_matrix) {
        d.variant = ENN_GEMM_COOPMAT;
        d.ab_type = ENN_F16;
        cr_assert_eq(enn_gemm_pick_variant(ctx, &d, &v), ENN_ERROR_UNSUPPORTED);
    }
    test_context_finish(ctx);
    setenv("ENN_GEMM_VARIANT", "tiled", 1);
    ctx = test_context();
    d = (enn_gemm_desc)ENN_GEMM_DESC_INIT;
    ENN_ASSERT_OK(enn_gemm_pick_variant(ctx, &d, &v));
    cr_assert_eq(v, ENN_GEMM_TILED);
    test_context_finish(ctx);
    setenv("ENN_GEMM_VARIANT", "fastest", 1);
    ctx = test_context();
    unsetenv("ENN_GEMM_VARIANT");
    cr_assert_eq(enn_gemm_pick_variant(ctx, &d, &v), ENN_ERROR_INVALID_ARGUMENT);
    cr_assert(strstr(enn_last_error(), "ENN_GEMM_VARIANT=fastest") != NULL, "message: %s", enn_last_error());
    test_context_finish(ctx);
}

/* The variables are read when a context is created: one set later changes nothing in
 * the contexts that exist (no getenv racing with the host's setenv, no kernel choice
 * changing in mid-life) and applies to those created after. */
Test(gemm, environment_read_at_context_creation)
{
    unsetenv("ENN_GEMM_VARIANT");
    unsetenv("ENN_GEMM_TILES");
    enn_context *before = test_context();
    enn_gemm_desc d = ENN_GEMM_DESC_INIT;
    enn_gemm_variant v, v_before;
    ENN_ASSERT_OK(enn_gemm_pick_variant(before, &d, &v_before));
    setenv("ENN_GEMM_VARIANT", "fastest", 1);
    enn_context *after = test_context();
    ENN_ASSERT_OK(enn_gemm_pick_variant(before, &d, &v));
    cr_assert_eq(v, v_before, "an existing context now picks %s", enn_gemm_variant_name(v));
    cr_assert_eq(enn_gemm_pick_variant(after, &d, &v), ENN_ERROR_INVALID_ARGUMENT);
    cr_assert(strstr(enn_last_error(), "ENN_GEMM_VARIANT=fastest"), "%s", enn_last_error());
    /* Unset again: the newer context keeps what it read. */
    unsetenv("ENN_GEMM_VARIANT");
    cr_assert_eq(enn_gemm_pick_variant(after, &d, &v), ENN_ERROR_INVALID_ARGUMENT);
    /* A value longer than any valid one is kept as too long, and still refused by name. */
    char tiles[300];
    memset(tiles, '8', sizeof tiles - 1);
    tiles[sizeof tiles - 1] = '\0';
    setenv("ENN_GEMM_TILES", tiles, 1);
    enn_context *long_value = test_context();
    unsetenv("ENN_GEMM_TILES");
    ENN_ASSERT_OK(enn_gemm_pick_variant(before, &d, &v));
    cr_assert_eq(enn_gemm_pick_variant(long_value, &d, &v), ENN_ERROR_INVALID_ARGUMENT);
    cr_assert(strstr(enn_last_error(), "ENN_GEMM_TILES=(too long: 299 characters)"), "%s", enn_last_error());
    test_context_finish(long_value);
    test_context_finish(after);
    test_context_finish(before);
}

/* Bad descriptions are refused with a message, before anything is recorded. */
Test(gemm, argument_errors)
{
    enn_context *ctx = test_context();
    enn_recorder *rec;
    enn_buffer *buf;
    ENN_ASSERT_OK(enn_recorder_create(ctx, &rec));
    ENN_ASSERT_OK(enn_buffer_create(ctx, 4096, &buf));
    ENN_ASSERT_OK(enn_recorder_begin(rec));
    enn_gemm_desc d = ENN_GEMM_DESC_INIT;
    d.a = d.b = d.c = enn_view_of(buf);
    d.m = 4; d.n = 4; d.k = 0;
    cr_assert_eq(enn_gemm(rec, &d), ENN_ERROR_SHAPE);
    d.k = 4; d.lda = 3;
    cr_assert_eq(enn_gemm(rec, &d), ENN_ERROR_SHAPE);
    cr_assert(strstr(enn_last_error(), "lda 3") != NULL, "message: %s", enn_last_error());
    d.lda = 0; d.m = 64; d.n = 64; d.k = 64; /* 16 KiB operands in a 4 KiB buffer */
    cr_assert_eq(enn_gemm(rec, &d), ENN_ERROR_OUT_OF_RANGE);
    d.m = d.n = d.k = 4; d.batch = 2; d.stride_c = 0;
    cr_assert_eq(enn_gemm(rec, &d), ENN_ERROR_SHAPE);
    ENN_ASSERT_OK(enn_recorder_run(rec));
    cr_assert_eq(enn_recorder_get_stats(rec).dispatches, 0);
    enn_buffer_destroy(ctx, buf);
    test_finish(ctx, rec);
}

/* ---------------------------------------------------------------- linear layer backward
 * y = x w + bias, loss L = sum(g * y) for a fixed random g, so dL/dy = g. The device's
 * dx, dw, dbias (from dy = g) are compared with central finite differences of L computed
 * by the double reference forward. L is linear in each input, so the difference quotient
 * is exact up to double rounding (~1e-12 here); the tolerance is then the fp32 bound of
 * the device's own sums, (terms + 4) * 2^-24 * sum |products|, plus 1e-9 for the FD. With
 * `accumulate`, the gradients start at random values that must be kept and added to. */
static double linear_loss(const float *x, const float *w, const float *bias, const double *g, uint32_t m,
                          uint32_t k, uint32_t n)
{
    double *y = malloc((size_t)m * n * sizeof *y);
    ref_gemm_args a = {x, w, NULL, bias, m, n, k, 0, 0, k, n, n, 1, 0, 0, 0, 1.0, 0.0, 0};
    ref_gemm(&a, y, NULL);
    double l = 0;
    for (size_t i = 0; i < (size_t)m * n; i++) l += g[i] * y[i];
    free(y);
    return l;
}

/* Central difference of the loss in element i of v (a float array the loss reads). */
static double fd(float *v, size_t i, const float *x, const float *w, const float *bias, const double *g,
                 uint32_t m, uint32_t k, uint32_t n)
{
    const float h = 0.0625f; /* exact in binary: v +- h is exact for |v| < 1 */
    float keep = v[i];
    v[i] = keep + h;
    double up = linear_loss(x, w, bias, g, m, k, n);
    v[i] = keep - h;
    double down = linear_loss(x, w, bias, g, m, k, n);
    v[i] = keep;
    return (up - down) / (2.0 * h);
}

static void linear_backward_case(int accumulate)
{
    enn_context *ctx = test_context();
    enn_recorder *rec;
    ENN_ASSERT_OK(enn_recorder_create(ctx, &rec));
    const uint32_t m = 9, k = 7, n = 13;
    uint64_t seed = 99 + accumulate;
    float x[9 * 7], w[7 * 13], bias[13], dy[9 * 13], dx[9 * 7], dw[7 * 13], db[13];
    float dx0[9 * 7], dw0[7 * 13], db0[13];
    double g[9 * 13];
    for (size_t i = 0; i < m * k; i++) x[i] = (float)test_rand_uniform(&seed, -1, 1);
    for (size_t i = 0; i < k * n; i++) w[i] = (float)test_rand_uniform(&seed, -1, 1);
    for (size_t i = 0; i < n; i++) bias[i] = (float)test_rand_uniform(&seed, -1, 1);
    for (size_t i = 0; i < m * n; i++) g[i] = dy[i] = (float)test_rand_uniform(&seed, -1, 1);
    for (size_t i = 0; i < m * k; i++) dx0[i] = accumulate ? (float)test_rand_uniform(&seed, -1, 1) : 0.0f;
    for (size_t i = 0; i < k * n; i++) dw0[i] = accumulate ? (float)test_rand_uniform(&seed, -1, 1) : 0.0f;
    for (size_t i = 0; i < n; i++) db0[i] = accumulate ? (float)test_rand_uniform(&seed, -1, 1) : 0.0f;

    /* One buffer, tensors at 256-byte offsets, as a model's flat parameter buffer would be. */
    enum { X, W, B, DY, DX, DW, DB, COUNT };
    const size_t sizes[COUNT] = {m * k, k * n, n, m * n, m * k, k * n, n};
    const float *init[COUNT] = {x, w, bias, dy, dx0, dw0, db0};
    VkDeviceSize off[COUNT], total = 0;
    for (int i = 0; i < COUNT; i++) { off[i] = total; total += enn_view_round(sizes[i] * 4); }
    enn_buffer *buf;
    ENN_ASSERT_OK(enn_buffer_create(ctx, total, &buf));
    for (int i = 0; i < COUNT; i++) ENN_ASSERT_OK(enn_buffer_upload(ctx, buf, off[i], init[i], sizes[i] * 4));
    ENN_ASSERT_OK(enn_recorder_begin(rec));
    ENN_ASSERT_OK(enn_linear_backward(rec, enn_view_at(buf, off[DX]), enn_view_at(buf, off[DW]),
                                      enn_view_at(buf, off[DB]), enn_view_at(buf, off[DY]), enn_view_at(buf, off[X]),
                                      enn_view_at(buf, off[W]), m, k, n, accumulate));
    ENN_ASSERT_OK(enn_recorder_run(rec));
    ENN_ASSERT_OK(enn_buffer_download(ctx, buf, off[DX], dx, sizeof dx));
    ENN_ASSERT_OK(enn_buffer_download(ctx, buf, off[DW], dw, sizeof dw));
    ENN_ASSERT_OK(enn_buffer_download(ctx, buf, off[DB], db, sizeof db));

    const double u = ldexp(1.0, -24);
    for (uint32_t i = 0; i < m; i++)
        for (uint32_t p = 0; p < k; p++) {
            double s = fabs(dx0[i * k + p]);
            for (uint32_t j = 0; j < n; j++) s += fabs(dy[i * n + j] * w[p * n + j]);
            double want = dx0[i * k + p] + fd(x, i * k + p, x, w, bias, g, m, k, n);
            cr_assert(fabs(dx[i * k + p] - want) <= (n + 4) * u * s + 1e-9, "dx[%u][%u] = %.9g, finite difference %.9g",
                      i, p, dx[i * k + p], want);
        }
    for (uint32_t p = 0; p < k; p++)
        for (uint32_t j = 0; j < n; j++) {
            double s = fabs(dw0[p * n + j]);
            for (uint32_t i = 0; i < m; i++) s += fabs(x[i * k + p] * dy[i * n + j]);
            double want = dw0[p * n + j] + fd(w, p * n + j, x, w, bias, g, m, k, n);
            cr_assert(fabs(dw[p * n + j] - want) <= (m + 4) * u * s + 1e-9, "dw[%u][%u] = %.9g, finite difference %.9g",
                      p, j, dw[p * n + j], want);
        }
    for (uint32_t j = 0; j < n; j++) {
        double s = fabs(db0[j]);
        for (uint32_t i = 0; i < m; i++) s += fabs(dy[i * n + j]);
        double want = db0[j] + fd(bias, j, x, w, bias, g, m, k, n);
        cr_assert(fabs(db[j] - want) <= (m + 4) * u * s + 1e-9, "dbias[%u] = %.9g, finite difference %.9g", j, db[j], want);
    }
    enn_buffer_destroy(ctx, buf);
    test_finish(ctx, rec);
}

Test(gemm, linear_backward_finite_differences) { linear_backward_case(0); }
Test(gemm, linear_backward_accumulates) { linear_backward_case(1); }

/* The forward wrapper is the GEMM with its epilogue: checked against the reference. */
Test(gemm, linear_forward_relu)
{
    enn_context *ctx = test_context();
    enn_recorder *rec;
    ENN_ASSERT_OK(enn_recorder_create(ctx, &rec));
    const uint32_t m = 10, k = 28, n = 12;
    uint64_t seed = 5;
    float x[10 * 28], w[28 * 12], bias[12], y[10 * 12];
    double ref[10 * 12], scale[10 * 12];
    for (size_t i = 0; i < m * k; i++) x[i] = (float)test_rand_uniform(&seed, -1, 1);
    for (size_t i = 0; i < k * n; i++) w[i] = (float)test_rand_uniform(&seed, -1, 1);
    for (size_t i = 0; i < n; i++) bias[i] = (float)test_rand_uniform(&seed, -1, 1);
    enn_buffer *bx, *bw, *bb, *by;
    ENN_ASSERT_OK(enn_buffer_create(ctx, sizeof x, &bx));
    ENN_ASSERT_OK(enn_buffer_create(ctx, sizeof w, &bw));
    ENN_ASSERT_OK(enn_buffer_create(ctx, sizeof bias, &bb));
    ENN_ASSERT_OK(enn_buffer_create(ctx, sizeof y, &by));
    ENN_ASSERT_OK(enn_buffer_upload(ctx, bx, 0, x, sizeof x));
    ENN_ASSERT_OK(enn_buffer_upload(ctx, bw, 0, w, sizeof w));
    ENN_ASSERT_OK(enn_buffer_upload(ctx, bb, 0, bias, sizeof bias));
    ENN_ASSERT_OK(enn_recorder_begin(rec));
    ENN_ASSERT_OK(enn_linear_forward(rec, enn_view_of(by), enn_view_of(bx), enn_view_of(bw), enn_view_of(bb), m, k, n,
                                     ENN_ACT_RELU));
    ENN_ASSERT_OK(enn_recorder_run(rec));
    ENN_ASSERT_OK(enn_buffer_download(ctx, by, 0, y, sizeof y));
    ref_gemm_args a = {x, w, NULL, bias, m, n, k, 0, 0, k, n, n, 1, 0, 0, 0, 1.0, 0.0, ENN_ACT_RELU};
    ref_gemm(&a, ref, scale);
    for (size_t i = 0; i < m * n; i++)
        cr_assert(fabs(y[i] - ref[i]) <= (k + 4) * ldexp(1.0, -24) * scale[i], "y[%zu] = %.9g, reference %.9g", i, y[i], ref[i]);
    enn_buffer_destroy(ctx, bx);
    enn_buffer_destroy(ctx, bw);
    enn_buffer_destroy(ctx, bb);
    enn_buffer_destroy(ctx, by);
    test_finish(ctx, rec);
}

/* More tiles than one grid dimension allows: the launcher folds the tile grid into x and
 * y. One row of 64 * maxX + 3 columns needs maxX + 1 tiles of the register-blocked
 * variant's 64-column tiles (subgroup size 8, as on lavapipe; wider tiles fold less). */
Test(gemm, folded_grid)
{
    enn_context *ctx = test_context();
    uint32_t max_x = ctx->caps.max_workgroup_count[0];
    if (max_x > 65535 || !enn_gemm_variant_supported(ctx, ENN_GEMM_REG, ENN_F32)) {
        test_context_finish(ctx);
        cr_skip_test("a grid of %u workgroups in x would need a huge matrix to overflow", max_x);
    }
    enn_recorder *rec;
    ENN_ASSERT_OK(enn_recorder_create(ctx, &rec));
    gemm_case gc = {2, 64 * max_x + 3, 3, 0, 1, 0, 0, 0, 1, 0, 1.0f, 0.0f, 1, ENN_ACT_NONE};
    check_case(ctx, rec, ENN_GEMM_REG, &gc, 31337);
    test_finish(ctx, rec);
}
