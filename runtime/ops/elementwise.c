/* Launchers for shaders/elementwise.comp and shaders/concat.comp. */
#include "ops/elementwise.h"

#include "ops/launch.h"

#define LOCAL 256

typedef struct elementwise_push {
    uint32_t n, op;
    float alpha, beta;
} elementwise_push;

typedef struct concat_push {
    uint32_t rows, cols, src_stride, src_col, dst_stride, dst_col;
    float alpha, beta;
} concat_push;

/* Records one elementwise kernel over n floats, split into pieces a binding can hold
 * (pieces start at multiples of ENN_VIEW_ALIGN bytes). in[] are read, y read-written. */
static enn_status elementwise(enn_recorder *rec, const char *name, int binary, uint32_t op, uint64_t n,
                              float alpha, const enn_view *in, float beta, enn_view y)
{
    enn_context *ctx = enn_recorder_context(rec);
    uint32_t inputs = binary ? 2 : 1;
    if (n == 0) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "%s: n is 0", name);
    for (uint32_t i = 0; i < inputs; i++) ENN_TRY(enn_ops_check_view(name, i ? "b" : (binary ? "a" : "x"), in[i], n * 4));
    ENN_TRY(enn_ops_check_view(name, "y", y, n * 4));
    uint32_t local = enn_ops_local_size(ctx, LOCAL, 0);
    /* CPU devices: op and the read of y compiled in, 4 elements per invocation where n
     * allows (pieces start at multiples of ENN_VIEW_ALIGN bytes, so every piece then
     * holds whole vec4s). GPUs: one pipeline, op and beta from the push constants. */
    int cpu = ctx->caps.device_type == ENN_DEVICE_CPU;
    uint32_t vec = cpu && n % 4 == 0 ? 4 : 1;
    const uint32_t spec[4] = {local, op, beta != 0.0f, vec == 4};
    const enn_pipeline *pipe;
    enn_pipeline_desc pd = {.shader = binary ? "elementwise_binary" : "elementwise", .num_buffers = inputs + 1,
                            .push_size = sizeof(elementwise_push), .spec = spec, .spec_count = cpu ? 4 : 1};
    ENN_TRY(enn_pipeline_get(ctx, &pd, &pipe));
    uint64_t piece = ctx->caps.max_storage_buffer_range / ENN_VIEW_ALIGN * (ENN_VIEW_ALIGN / 4);
    if (piece > 0x7fffffffu) piece = 0x40000000u;
    for (uint64_t start = 0; start < n; start += piece) {
        uint64_t count = n - start < piece ? n - start : piece;
        enn_binding b[3];
        for (uint32_t i = 0; i < inputs; i++)
            b[i] = enn_bind(enn_view_at(in[i].buf, in[i].offset + start * 4), count * 4, ENN_ACCESS_READ);
        b[inputs] = enn_bind(enn_view_at(y.buf, y.offset + start * 4), count * 4,
                             beta == 0.0f ? ENN_ACCESS_WRITE : ENN_ACCESS_READ_WRITE);
        elementwise_push push = {(uint32_t)count, op, alpha, beta};
        uint32_t gx, gy;
        uint64_t invocations = count / vec;
        ENN_TRY(enn_ops_grid_groups(ctx, (invocations + local - 1) / local, name, &gx, &gy));
        ENN_TRY(enn_record_dispatch(rec, pipe, b, inputs + 1, &push, gx, gy, 1, name));
    }
    return ENN_OK;
}

enn_status enn_axpby(enn_recorder *rec, uint64_t n, float alpha, enn_view x, float beta, enn_view y)
{
    return elementwise(rec, "axpby", 0, ENN_ACT_IDENTITY, n, alpha, &x, beta, y);
}

enn_status enn_scale(enn_recorder *rec, uint64_t n, float alpha, enn_view x, enn_view y)
{
    return elementwise(rec, "scale", 0, ENN_ACT_IDENTITY, n, alpha, &x, 0.0f, y);
}

enn_status enn_add(enn_recorder *rec, uint64_t n, enn_view a, enn_view b, enn_view y)
{
    const enn_view in[2] = {a, b};
    return elementwise(rec, "add", 1, 0, n, 1.0f, in, 0.0f, y);
}

enn_status enn_mul(enn_recorder *rec, uint64_t n, enn_view a, enn_view b, enn_view y)
{
    const enn_view in[2] = {a, b};
    return elementwise(rec, "mul", 1, 1, n, 1.0f, in, 0.0f, y);
}

static const char *activation_name(enn_activation act, int backward)
{
    static const char *fwd[] = {"identity_forward", "relu_forward", "tanh_forward", "sigmoid_forward"};
    static const char *bwd[] = {"identity_backward", "relu_backward", "tanh_backward", "sigmoid_backward"};
    return backward ? bwd[act] : fwd[act];
}

enn_status enn_activation_forward(enn_recorder *rec, enn_activation act, uint64_t n, enn_view x, enn_view y)
{
    if ((unsigned)act > ENN_ACT_SIGMOID) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "activation %d unknown", act);
    return elementwise(rec, activation_name(act, 0), 0, act, n, 1.0f, &x, 0.0f, y);
}

enn_status enn_activation_backward(enn_recorder *rec, enn_activation act, uint64_t n, enn_view y, enn_view dy,
                                   float beta, enn_view dx)
{
    if ((unsigned)act > ENN_ACT_SIGMOID) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "activation %d unknown", act);
    if (act == ENN_ACT_IDENTITY) return elementwise(rec, "identity_backward", 0, 0, n, 1.0f, &dy, beta, dx);
    /* binary ops 2, 3, 4: dy * relu'(y), dy * (1 - y^2), dy * y (1 - y) */
    const enn_view in[2] = {dy, y};
    return elementwise(rec, activation_name(act, 1), 1, (uint32_t)act + 1, n, 1.0f, in, beta, dx);
}

enn_status enn_copy_columns(enn_recorder *rec, uint32_t rows, uint32_t cols, enn_view src, uint32_t src_stride,
                            uint32_t src_col, float alpha, enn_view dst, uint32_t dst_stride, uint32_t dst_col,
                            float beta)
{
    enn_context *ctx = enn_recorder_context(rec);
    if (!rows || !cols) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "copy_columns: %u x %u block", rows, cols);
    if (src_col + (uint64_t)cols > src_stride || dst_col + (uint64_t)cols > dst_stride)
        return enn_error(ENN_ERROR_SHAPE, "copy_columns: columns [%u, +%u) of %u-wide source or [%u, +%u) of %u-wide destination",
                         src_col, cols, src_stride, dst_col, cols, dst_stride);
    if ((uint64_t)rows * cols > 0xffffffffu || (uint64_t)rows * src_stride > 0xffffffffu ||
        (uint64_t)rows * dst_stride > 0xffffffffu)
        return enn_error(ENN_ERROR_UNSUPPORTED, "copy_columns: %u rows of %u/%u floats is past 32-bit indexing", rows,
                         src_stride, dst_stride);
    uint64_t src_bytes = ((uint64_t)(rows - 1) * src_stride + src_col + cols) * 4;
    uint64_t dst_bytes = ((uint64_t)(rows - 1) * dst_stride + dst_col + cols) * 4;
    ENN_TRY(enn_ops_check_view("copy_columns", "src", src, src_bytes));
    ENN_TRY(enn_ops_check_view("copy_columns", "dst", dst, dst_bytes));
    uint32_t local = enn_ops_local_size(ctx, LOCAL, 0);
    const enn_pipeline *pipe;
    ENN_TRY(enn_ops_pipeline_local(ctx, "concat", 2, sizeof(concat_push), local, 0, &pipe));
    enn_binding b[2] = {enn_bind(src, src_bytes, ENN_ACCESS_READ),
                        enn_bind(dst, dst_bytes, beta == 0.0f ? ENN_ACCESS_WRITE : ENN_ACCESS_READ_WRITE)};
    concat_push push = {rows, cols, src_stride, src_col, dst_stride, dst_col, alpha, beta};
    uint32_t gx, gy;
    ENN_TRY(enn_ops_grid_groups(ctx, ((uint64_t)rows * cols + local - 1) / local, "copy_columns", &gx, &gy));
    return enn_record_dispatch(rec, pipe, b, 2, &push, gx, gy, 1, "copy_columns");
}

static enn_status total_columns(const char *op, uint32_t parts, const uint32_t *cols, uint32_t *total)
{
    uint64_t sum = 0;
    if (!parts || !cols) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "%s: no parts", op);
    for (uint32_t i = 0; i < parts; i++) sum += cols[i];
    if (sum > 0xffffffffu) return enn_error(ENN_ERROR_SHAPE, "%s: %llu columns", op, (unsigned long long)sum);
    *total = (uint32_t)sum;
    return ENN_OK;
}

enn_status enn_concat_forward(enn_recorder *rec, uint32_t rows, uint32_t parts, const uint32_t *cols,
                              const enn_view *in, enn_view out)
{
    uint32_t total, at = 0;
    ENN_TRY(total_columns("concat_forward", parts, cols, &total));
    for (uint32_t i = 0; i < parts; at += cols[i], i++)
        ENN_TRY(enn_copy_columns(rec, rows, cols[i], in[i], cols[i], 0, 1.0f, out, total, at, 0.0f));
    return ENN_OK;
}

enn_status enn_concat_backward(enn_recorder *rec, uint32_t rows, uint32_t parts, const uint32_t *cols,
                               enn_view dout, float beta, const enn_view *din)
{
    uint32_t total, at = 0;
    ENN_TRY(total_columns("concat_backward", parts, cols, &total));
    for (uint32_t i = 0; i < parts; at += cols[i], i++)
        ENN_TRY(enn_copy_columns(rec, rows, cols[i], dout, total, at, 1.0f, din[i], cols[i], 0, beta));
    return ENN_OK;
}
