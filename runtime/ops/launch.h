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

#endif
