/* Launchers of shaders/layer_norm.comp. */
#include "ops/layer_norm.h"
#include "ops/launch.h"

#include <stdio.h>

#define LAYER_NORM_LOCAL 64

typedef struct layer_norm_push {
    uint32_t rows, cols;
    float eps, beta_dx, beta_params;
} layer_norm_push;

#define RGBA VK_FORMAT_R32G32B32A32_SFLOAT
#define R32 VK_FORMAT_R32_SFLOAT

/* The _texel variants (CPU devices, shaders/layer_norm.comp): whole vec4 rows, RGBA32F
 * uniform texel buffers (not with ENN_DISABLE_TEXEL_BUFFERS), every texel view starting
 * where the device allows, and the matrix within the device's texel count. */
static int texel_fit(const enn_context *ctx, uint32_t rows, uint32_t cols, const enn_view *views, int count)
{
    uint64_t texels = (uint64_t)rows * cols / 4;
    return ctx->caps.device_type == ENN_DEVICE_CPU && cols % 4 == 0 &&
           enn_ops_texel_views_fit(ctx, views, count, texels > rows ? texels : rows);
}

/* The forward or backward_input kernel for this device and its grid: on CPU devices the
 * _rows variant (one row per invocation, ROW_LOCAL per workgroup; _rows_texel where
 * `texel` gives the texel formats of the bindings), elsewhere one workgroup of
 * LAYER_NORM_LOCAL per row. */
#define ROW_LOCAL 8
static enn_status row_kernel(enn_recorder *rec, const char *shader, uint32_t rows, const VkFormat *texel,
                             const enn_pipeline **p, uint32_t *gx, uint32_t *gy)
{
    enn_context *ctx = enn_recorder_context(rec);
    if (ctx->caps.device_type == ENN_DEVICE_CPU) {
        char name[64];
        snprintf(name, sizeof name, "%s_rows%s", shader, texel ? "_texel" : "");
        uint32_t local = enn_ops_local_size(ctx, ROW_LOCAL, 0);
        const uint32_t spec[1] = {local};
        enn_pipeline_desc d = {.shader = name, .num_buffers = 6, .push_size = sizeof(layer_norm_push), .spec = spec,
                               .spec_count = 1, .texel_formats = texel};
        ENN_TRY(enn_pipeline_get(ctx, &d, p));
        return enn_ops_grid_groups(ctx, ((uint64_t)rows + local - 1) / local, shader, gx, gy);
    }
    const uint32_t spec[1] = {LAYER_NORM_LOCAL};
    ENN_TRY(enn_ops_pipeline(rec, shader, 6, sizeof(layer_norm_push), spec, 1, p));
    *gx = enn_ops_row_groups(rec, rows);
    *gy = 1;
    return ENN_OK;
}

static enn_status check_shape(const char *op, uint32_t rows, uint32_t cols)
{
    if (rows == 0 || cols == 0) return enn_error(ENN_ERROR_SHAPE, "%s: empty shape %u x %u", op, rows, cols);
    if ((uint64_t)rows * cols > 0xffffffffull)
        return enn_error(ENN_ERROR_SHAPE, "%s: %u x %u passes 2^32 elements", op, rows, cols);
    return ENN_OK;
}

enn_status enn_layer_norm_forward(enn_recorder *rec, enn_view y, enn_view mean, enn_view rstd, enn_view x,
                                  enn_view gain, enn_view bias, uint32_t rows, uint32_t cols, float eps)
{
    const char *op = "layer_norm_forward";
    ENN_TRY(check_shape(op, rows, cols));
    if (!(eps >= 0.0f)) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "%s: eps = %g", op, eps);
    uint64_t bx = (uint64_t)rows * cols * 4, bc = (uint64_t)cols * 4, br = (uint64_t)rows * 4;
    ENN_TRY(enn_ops_check_view(op, "y", y, bx));
    ENN_TRY(enn_ops_check_view(op, "mean", mean, br));
    ENN_TRY(enn_ops_check_view(op, "rstd", rstd, br));
    ENN_TRY(enn_ops_check_view(op, "x", x, bx));
    ENN_TRY(enn_ops_check_view(op, "gain", gain, bc));
    ENN_TRY(enn_ops_check_view(op, "bias", bias, bc));
    const enn_pipeline *p;
    uint32_t gx, gy;
    static const VkFormat texel[6] = {RGBA, RGBA, RGBA};
    const enn_view inputs[3] = {x, gain, bias};
    ENN_TRY(row_kernel(rec, "layer_norm", rows,
                       texel_fit(enn_recorder_context(rec), rows, cols, inputs, 3) ? texel : NULL, &p, &gx, &gy));
    layer_norm_push push = {rows, cols, eps, 0, 0};
    enn_binding b[6] = {enn_bind(x, bx, ENN_ACCESS_READ),    enn_bind(gain, bc, ENN_ACCESS_READ),
                        enn_bind(bias, bc, ENN_ACCESS_READ), enn_bind(y, bx, ENN_ACCESS_WRITE),
                        enn_bind(mean, br, ENN_ACCESS_WRITE), enn_bind(rstd, br, ENN_ACCESS_WRITE)};
    return enn_record_dispatch(rec, p, b, 6, &push, gx, gy, 1, op);
}

enn_status enn_layer_norm_backward(enn_recorder *rec, enn_view dx, enn_view dgain, enn_view dbias, enn_view dy,
                                   enn_view x, enn_view gain, enn_view mean, enn_view rstd, uint32_t rows,
                                   uint32_t cols, float beta_dx, float beta_params)
{
    const char *op = "layer_norm_backward";
    ENN_TRY(check_shape(op, rows, cols));
    uint64_t bx = (uint64_t)rows * cols * 4, bc = (uint64_t)cols * 4, br = (uint64_t)rows * 4;
    int params = dgain.buf && dbias.buf;
    ENN_TRY(enn_ops_check_view(op, "dx", dx, bx));
    ENN_TRY(enn_ops_check_view(op, "dy", dy, bx));
    ENN_TRY(enn_ops_check_view(op, "x", x, bx));
    ENN_TRY(enn_ops_check_view(op, "gain", gain, bc));
    ENN_TRY(enn_ops_check_view(op, "mean", mean, br));
    ENN_TRY(enn_ops_check_view(op, "rstd", rstd, br));
    if (params) {
        ENN_TRY(enn_ops_check_view(op, "dgain", dgain, bc));
        ENN_TRY(enn_ops_check_view(op, "dbias", dbias, bc));
    }
    const enn_pipeline *pi;
    uint32_t gx, gy;
    static const VkFormat texel[6] = {RGBA, RGBA, RGBA, R32, R32};
    const enn_view inputs[5] = {x, gain, dy, mean, rstd};
    ENN_TRY(row_kernel(rec, "layer_norm_backward_input", rows,
                       texel_fit(enn_recorder_context(rec), rows, cols, inputs, 5) ? texel : NULL, &pi, &gx, &gy));
    layer_norm_push push = {rows, cols, 0, beta_dx, beta_params};
    enn_binding bi[6] = {enn_bind(x, bx, ENN_ACCESS_READ),    enn_bind(gain, bc, ENN_ACCESS_READ),
                         enn_bind(dy, bx, ENN_ACCESS_READ),   enn_bind(mean, br, ENN_ACCESS_READ),
                         enn_bind(rstd, br, ENN_ACCESS_READ),
                         enn_bind(dx, bx, beta_dx != 0.0f ? ENN_ACCESS_READ_WRITE : ENN_ACCESS_WRITE)};
    ENN_TRY(enn_record_dispatch(rec, pi, bi, 6, &push, gx, gy, 1, "layer_norm_backward_input"));
    if (!params) return ENN_OK;
    return enn_layer_norm_backward_params(rec, dgain, dbias, dy, x, mean, rstd, rows, cols, beta_params);
}

enn_status enn_layer_norm_backward_params(enn_recorder *rec, enn_view dgain, enn_view dbias, enn_view dy, enn_view x,
                                          enn_view mean, enn_view rstd, uint32_t rows, uint32_t cols, float beta)
{
    const char *op = "layer_norm_backward_params";
    ENN_TRY(check_shape(op, rows, cols));
    uint64_t bx = (uint64_t)rows * cols * 4, bc = (uint64_t)cols * 4, br = (uint64_t)rows * 4;
    ENN_TRY(enn_ops_check_view(op, "dy", dy, bx));
    ENN_TRY(enn_ops_check_view(op, "x", x, bx));
    ENN_TRY(enn_ops_check_view(op, "mean", mean, br));
    ENN_TRY(enn_ops_check_view(op, "rstd", rstd, br));
    ENN_TRY(enn_ops_check_view(op, "dgain", dgain, bc));
    ENN_TRY(enn_ops_check_view(op, "dbias", dbias, bc));
    /* GPUs: 16 columns x 16 parts of the rows per 256-wide workgroup; CPU devices: one
     * invocation per column (their lanes are loops anyway), or with texels one per 4
     * columns, ROW_LOCAL per workgroup. */
    enn_context *ctx = enn_recorder_context(rec);
    static const VkFormat texel[6] = {RGBA, RGBA, R32, R32};
    const enn_view inputs[4] = {x, dy, mean, rstd};
    const enn_pipeline *pp;
    uint32_t gx = 1, gy = 1;
    if (texel_fit(ctx, rows, cols, inputs, 4)) {
        const uint32_t spec[1] = {ROW_LOCAL};
        enn_pipeline_desc d = {.shader = "layer_norm_backward_params_texel", .num_buffers = 6,
                               .push_size = sizeof(layer_norm_push), .spec = spec, .spec_count = 1,
                               .texel_formats = texel};
        ENN_TRY(enn_pipeline_get(ctx, &d, &pp));
        gx = (cols / 4 + ROW_LOCAL - 1) / ROW_LOCAL;
    } else {
        uint32_t local = LAYER_NORM_LOCAL, parts = 1;
        if (ctx->caps.device_type != ENN_DEVICE_CPU && enn_ops_local_size(ctx, 256, 0) == 256) local = 256, parts = 16;
        const uint32_t spec[4] = {local, 1, 1, parts};
        ENN_TRY(enn_ops_pipeline(rec, "layer_norm_backward_params", 6, sizeof(layer_norm_push), spec, 4, &pp));
        ENN_TRY(enn_ops_grid(rec, cols, local / parts, &gx, &gy));
        if (gy != 1) return enn_error(ENN_ERROR_SHAPE, "%s: %u columns are too many for one grid row", op, cols);
    }
    layer_norm_push push = {rows, cols, 0, 0, beta};
    enn_access pa = beta != 0.0f ? ENN_ACCESS_READ_WRITE : ENN_ACCESS_WRITE;
    enn_binding bp[6] = {enn_bind(x, bx, ENN_ACCESS_READ),     enn_bind(dy, bx, ENN_ACCESS_READ),
                         enn_bind(mean, br, ENN_ACCESS_READ),  enn_bind(rstd, br, ENN_ACCESS_READ),
                         enn_bind(dgain, bc, pa), enn_bind(dbias, bc, pa)};
    return enn_record_dispatch(rec, pp, bp, 6, &push, gx, 1, 1, op);
}
