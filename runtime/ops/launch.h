/* Small helpers shared by the op launchers of this family: pipeline lookup with a
 * workgroup size, and grids for element counts past 65535 workgroups. */
#ifndef ENN_OPS_LAUNCH_H
#define ENN_OPS_LAUNCH_H

#include "core/context.h"
#include "core/error.h"
#include "core/pipelines.h"
#include "ops/view.h"

/* The pipeline of `shader` with spec constants {local_size, extra...}. */
static inline enn_status enn_ops_pipeline(enn_recorder *rec, const char *shader, uint32_t num_buffers,
                                          uint32_t push_size, const uint32_t *spec, uint32_t spec_count,
                                          const enn_pipeline **out)
{
    enn_pipeline_desc d = {.shader = shader, .num_buffers = num_buffers, .push_size = push_size, .spec = spec,
                           .spec_count = spec_count};
    return enn_pipeline_get(enn_recorder_context(rec), &d, out);
}

/* A 2-D grid of `local`-wide workgroups covering n invocations; kernels index with
 * i = gid.x + gid.y * numWorkGroups.x * local and return when i >= n. */
static inline enn_status enn_ops_grid(enn_recorder *rec, uint64_t n, uint32_t local, uint32_t *gx, uint32_t *gy)
{
    const enn_context *ctx = enn_recorder_context(rec);
    uint64_t groups = (n + local - 1) / local;
    uint64_t maxx = ctx->caps.max_workgroup_count[0] < 65535u ? ctx->caps.max_workgroup_count[0] : 65535u;
    if (groups == 0) groups = 1;
    uint64_t x = groups < maxx ? groups : maxx;
    uint64_t y = (groups + x - 1) / x;
    if (y > ctx->caps.max_workgroup_count[1] || n > 0xffffffffull)
        return enn_error(ENN_ERROR_SHAPE, "%llu elements need more workgroups than the device allows",
                         (unsigned long long)n);
    *gx = (uint32_t)x;
    *gy = (uint32_t)y;
    return ENN_OK;
}

/* Row kernels loop over rows with a stride of the grid, so the grid is capped. */
static inline uint32_t enn_ops_row_groups(enn_recorder *rec, uint32_t rows)
{
    const enn_context *ctx = enn_recorder_context(rec);
    uint32_t maxx = ctx->caps.max_workgroup_count[0] < 65535u ? ctx->caps.max_workgroup_count[0] : 65535u;
    return rows == 0 ? 1 : rows < maxx ? rows : maxx;
}

static inline enn_status enn_ops_check_view(const char *op, const char *name, enn_view v, uint64_t bytes)
{
    if (!v.buf) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "%s: %s is NULL", op, name);
    if (v.offset % ENN_VIEW_ALIGN)
        return enn_error(ENN_ERROR_INVALID_ARGUMENT, "%s: %s offset %llu is not a multiple of %d", op, name,
                         (unsigned long long)v.offset, ENN_VIEW_ALIGN);
    if (v.offset > v.buf->size || bytes > v.buf->size - v.offset)
        return enn_error(ENN_ERROR_OUT_OF_RANGE, "%s: %s needs %llu bytes at offset %llu of a %llu-byte buffer", op,
                         name, (unsigned long long)bytes, (unsigned long long)v.offset,
                         (unsigned long long)v.buf->size);
    return ENN_OK;
}

/* 64-bit values travel in push constants as two words, low first. */
static inline void enn_ops_split64(uint64_t v, uint32_t out[2])
{
    out[0] = (uint32_t)v;
    out[1] = (uint32_t)(v >> 32);
}

/* ---- helpers of the generic training kernels (elementwise, reduce, softmax cross-entropy,
 * embedding, adam): workgroup sizes read from the device's limits, grids counted in
 * workgroups, and matrices bound a chunk of rows at a time when they are larger than one
 * binding may be (maxStorageBufferRange is 128 MiB on lavapipe; a [4096, 188590] logits
 * matrix is 3 GB). */

/* The largest power of two <= want that the device allows as a 1-D workgroup and whose
 * shared arrays of `shared_bytes_per_invocation` bytes per invocation fit in shared
 * memory. Tree reductions need the power of two. */
static inline uint32_t enn_ops_local_size(const enn_context *ctx, uint32_t want, uint32_t shared_bytes_per_invocation)
{
    uint32_t limit = ctx->caps.max_workgroup_invocations;
    if (ctx->caps.max_workgroup_size[0] < limit) limit = ctx->caps.max_workgroup_size[0];
    if (want < limit) limit = want;
    if (shared_bytes_per_invocation && ctx->caps.max_shared_memory / shared_bytes_per_invocation < limit)
        limit = ctx->caps.max_shared_memory / shared_bytes_per_invocation;
    uint32_t size = 1;
    while (size * 2 <= limit) size *= 2;
    return size;
}

/* A grid of `groups` workgroups as gx * gy (the kernel folds it back as
 * x + y * gl_NumWorkGroups.x and ignores the excess). */
static inline enn_status enn_ops_grid_groups(const enn_context *ctx, uint64_t groups, const char *what, uint32_t *gx,
                                             uint32_t *gy)
{
    uint64_t max_x = ctx->caps.max_workgroup_count[0];
    *gx = *gy = 1;
    if (groups == 0) groups = 1;
    if (groups <= max_x) {
        *gx = (uint32_t)groups;
        return ENN_OK;
    }
    uint64_t y = (groups + max_x - 1) / max_x;
    if (y > ctx->caps.max_workgroup_count[1])
        return enn_error(ENN_ERROR_UNSUPPORTED, "%s: %llu workgroups is more than the device can launch", what,
                         (unsigned long long)groups);
    *gx = (uint32_t)((groups + y - 1) / y);
    *gy = (uint32_t)y;
    return ENN_OK;
}

/* A pipeline with a 1-D workgroup of local_x invocations (spec constant 0), or 2-D
 * (spec constants 0, 1) when local_y is not 0. */
static inline enn_status enn_ops_pipeline_local(enn_context *ctx, const char *shader, uint32_t buffers,
                                                uint32_t push_size, uint32_t local_x, uint32_t local_y,
                                                const enn_pipeline **out)
{
    const uint32_t spec[2] = {local_x, local_y ? local_y : 1};
    enn_pipeline_desc d = {.shader = shader, .num_buffers = buffers, .push_size = push_size, .spec = spec,
                           .spec_count = local_y ? 2 : 1};
    return enn_pipeline_get(ctx, &d, out);
}

/* Most rows of `row_bytes` each that one binding may cover, starting anywhere (the
 * binding starts up to ENN_VIEW_ALIGN - 4 bytes before the first row), capped by
 * `cap` (0: no cap). 0 when a single row is too large to bind. */
static inline uint32_t enn_ops_rows_per_binding(const enn_context *ctx, uint64_t row_bytes, uint32_t cap)
{
    uint64_t range = ctx->caps.max_storage_buffer_range;
    if (range < ENN_VIEW_ALIGN + row_bytes) return 0;
    uint64_t rows = (range - ENN_VIEW_ALIGN) / row_bytes;
    if (rows > 0xffffffffu) rows = 0xffffffffu;
    if (cap && rows > cap) rows = cap;
    return (uint32_t)rows;
}

/* The binding of rows [row0, row0 + rows) of a row-major matrix at view v, and the
 * element offset of row row0 inside it. */
/* 1 when the device has uniform texel buffers (not ENN_DISABLE_TEXEL_BUFFERS), each of
 * the count views starts where a texel view may, and `largest_texels` fits the device's
 * texel count: what a CPU kernel's texel variant needs of its inputs. */
static inline int enn_ops_texel_views_fit(const enn_context *ctx, const enn_view *views, int count,
                                          uint64_t largest_texels)
{
    const enn_capabilities *c = &ctx->caps;
    uint32_t align = c->min_texel_buffer_offset_alignment ? c->min_texel_buffer_offset_alignment : 1;
    if (!c->texel_buffer_f32 || largest_texels > c->max_texel_buffer_elements) return 0;
    for (int i = 0; i < count; i++)
        if ((views[i].buf->offset + views[i].offset) % align) return 0;
    return 1;
}

/* 1 when the device has uniform texel buffers of R32G32B32A32_UINT (the CPU kernels'
 * labels and token ids; a format every Vulkan device supports there, checked all the
 * same when the context is made) and texel buffers are not switched off
 * (ENN_DISABLE_TEXEL_BUFFERS). */
static inline int enn_ops_uint_texels(const enn_context *ctx) { return ctx->texel_buffer_u32; }

/* Whether `count` 4-byte words at v (labels, lse, ids) can be viewed as texels of 4
 * words: the view is rounded up to whole texels, which must stay inside the buffer's
 * reservation, and must start where a texel view may. */
static inline int enn_ops_word_texels_fit(const enn_context *ctx, enn_view v, uint32_t count)
{
    uint64_t texels = ((uint64_t)count + 3) / 4;
    uint32_t align = ctx->caps.min_texel_buffer_offset_alignment ? ctx->caps.min_texel_buffer_offset_alignment : 1;
    return v.offset + texels * 16 <= v.buf->reserved && texels <= ctx->caps.max_texel_buffer_elements &&
           (v.buf->offset + v.offset) % align == 0;
}

static inline enn_binding enn_ops_bind_rows(enn_view v, uint64_t row_bytes, uint64_t row0, uint64_t rows,
                                            enn_access access, uint32_t *elem_offset)
{
    VkDeviceSize start = v.offset + row0 * row_bytes;
    VkDeviceSize aligned = start / ENN_VIEW_ALIGN * ENN_VIEW_ALIGN;
    *elem_offset = (uint32_t)((start - aligned) / 4);
    return (enn_binding){v.buf, aligned, start - aligned + rows * row_bytes, access};
}

#endif
