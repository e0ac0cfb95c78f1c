/* How ops name their operands: a view is a buffer and a byte offset into it, so one flat
 * parameter (or gradient, or activation) buffer can hold many tensors. Offsets must be
 * multiples of ENN_VIEW_ALIGN (the largest storage-buffer offset alignment any device
 * asks for); tensor layouts round each tensor's start up to it. */
#ifndef ENN_OPS_VIEW_H
#define ENN_OPS_VIEW_H

#include "core/recorder.h"

#define ENN_VIEW_ALIGN 256

typedef struct enn_view {
    const enn_buffer *buf;
    VkDeviceSize offset; /* bytes */
} enn_view;

static inline enn_view enn_view_of(const enn_buffer *buf) { return (enn_view){buf, 0}; }
static inline enn_view enn_view_at(const enn_buffer *buf, VkDeviceSize offset) { return (enn_view){buf, offset}; }

/* The binding of `bytes` bytes of a view, for a kernel that reads, writes or both. */
static inline enn_binding enn_bind(enn_view v, VkDeviceSize bytes, enn_access access)
{
    return (enn_binding){v.buf, v.offset, bytes, access};
}

/* Rounds a byte count up to ENN_VIEW_ALIGN. */
static inline VkDeviceSize enn_view_round(VkDeviceSize bytes)
{
    return (bytes + ENN_VIEW_ALIGN - 1) / ENN_VIEW_ALIGN * ENN_VIEW_ALIGN;
}

#endif
