/* The recorder: many dispatches in one command buffer, with exactly the barriers that
 * their buffer accesses need, split into several submissions when the work per
 * submission would pass the context's cap, and optional per-dispatch GPU timestamps.
 *
 *   enn_recorder_begin(rec);
 *   enn_record_dispatch(rec, pipe, bindings, n, &push, gx, gy, gz, "gemm");  ...
 *   enn_recorder_run(rec);          // submit and wait; or submit now, wait later
 */
#ifndef ENN_CORE_RECORDER_H
#define ENN_CORE_RECORDER_H

#include <vulkan/vulkan.h>
#include "core/memory.h"
#include "core/pipelines.h"
#include "enn.h"

typedef enum enn_access {
    ENN_ACCESS_READ = 1,
    ENN_ACCESS_WRITE = 2,
    ENN_ACCESS_READ_WRITE = 3,
} enn_access;

/* A range of a buffer that a dispatch binds; size 0 means "to the end of the buffer". */
typedef struct enn_binding {
    const enn_buffer *buffer;
    VkDeviceSize offset, size;
    enn_access access;
} enn_binding;

#define ENN_IN(b) ((enn_binding){(b), 0, 0, ENN_ACCESS_READ})
#define ENN_OUT(b) ((enn_binding){(b), 0, 0, ENN_ACCESS_WRITE})
#define ENN_INOUT(b) ((enn_binding){(b), 0, 0, ENN_ACCESS_READ_WRITE})

typedef struct enn_recorder enn_recorder;

typedef struct enn_recorder_stats {
    uint32_t dispatches;      /* in the current or last recording */
    uint32_t transfers;       /* fills and copies */
    uint32_t barriers;        /* dependency barriers inserted between commands */
    uint32_t submits;         /* queue submissions (segments) */
    uint32_t staging_areas;   /* host-visible staging areas allocated (outgrown ones replaced) */
    double record_ms;         /* host time from enn_recorder_begin to the last submission: the
                                 device waits that long for a recording submitted in one piece */
} enn_recorder_stats;

typedef struct enn_timing {
    char name[64];
    double gpu_ms;            /* summed over every dispatch of that name */
    uint32_t count;
} enn_timing;

enn_status enn_recorder_create(enn_context *ctx, enn_recorder **out);
void enn_recorder_destroy(enn_recorder *rec);
/* What every live recorder of the context holds on the device (command pools, fences,
 * descriptor and query pools, views, staging areas): for enn_context_destroy, so that a
 * context destroyed before its models and streams leaves an adopted device clean. The
 * recorders are then only host memory, which their owners can no longer free. */
void enn_recorders_release(enn_context *ctx);
/* Timestamps around every dispatch from the next begin on (when the device has them). */
void enn_recorder_set_timestamps(enn_recorder *rec, int on);

/* Starts a new recording; waits for the recorder's previous submissions first. */
enn_status enn_recorder_begin(enn_recorder *rec);
enn_status enn_record_dispatch(enn_recorder *rec, const enn_pipeline *pipe, const enn_binding *bindings,
                               uint32_t binding_count, const void *push, uint32_t gx, uint32_t gy,
                               uint32_t gz, const char *name);
/* vkCmdFillBuffer: offset and size multiples of 4. */
enn_status enn_record_fill(enn_recorder *rec, const enn_buffer *buf, VkDeviceSize offset, VkDeviceSize size,
                           uint32_t value);
enn_status enn_record_copy(enn_recorder *rec, const enn_buffer *src, VkDeviceSize src_offset,
                           const enn_buffer *dst, VkDeviceSize dst_offset, VkDeviceSize size);
/* Host data into a device buffer as part of this recording, so that a step's inputs
 * cost no submission of their own: copied straight into a mapped buffer (unified memory),
 * else through the recorder's host-visible staging area and a transfer command. */
enn_status enn_record_upload(enn_recorder *rec, const enn_buffer *dst, VkDeviceSize offset, const void *src,
                             VkDeviceSize bytes);
/* The opposite: *host receives the address where `bytes` of src will be readable after
 * enn_recorder_wait (until the next enn_recorder_begin), with no wait of its own. */
enn_status enn_record_readback(enn_recorder *rec, const enn_buffer *src, VkDeviceSize offset, VkDeviceSize bytes,
                               const void **host);
/* Submits what has been recorded, without waiting. */
enn_status enn_recorder_submit(enn_recorder *rec);
/* Waits for every submission of this recording and gathers the timestamps. */
enn_status enn_recorder_wait(enn_recorder *rec);
/* Drops what has been recorded and not submitted (after a failure while recording);
 * the next enn_recorder_begin starts afresh. */
void enn_recorder_abort(enn_recorder *rec);
/* Submit and wait. */
enn_status enn_recorder_run(enn_recorder *rec);

/* External mode, for a program that owns the submission (enn_stream_record): the
 * recorder records into the caller's command buffer, which must be in the recording
 * state, and never begins, ends, splits or submits it. The recorded commands open with
 * a barrier that waits for every earlier command on the queue (any stage, any memory
 * write) and close with one that makes their writes visible to every later command and
 * to the host, so the caller needs no barrier of its own on the same queue. Without push
 * descriptors the descriptor sets come from one of ENN_EXTERNAL_SLOTS pools, each with
 * an event the recording sets when it has run: begin takes a slot whose recording has
 * run (or that has none) and refuses when all still wait to run; the recording is then
 * limited to the per-submission cap of dispatches. No timestamps. `what` names the
 * caller in messages. */
#define ENN_EXTERNAL_SLOTS 3
enn_status enn_recorder_begin_external(enn_recorder *rec, VkCommandBuffer cmd, const char *what);
/* Closes the recording; `keep` 0 when the caller will drop it (a failed recording),
 * which frees its slot at once, as it will never run. */
enn_status enn_recorder_end_external(enn_recorder *rec, int keep);
/* Forgets every external recording that has not been seen to run (the caller has
 * dropped them, or waited for them): their slots are free again. */
void enn_recorder_forget_external(enn_recorder *rec);

/* The context the recorder records for (ops use it to fetch pipelines). */
enn_context *enn_recorder_context(const enn_recorder *rec);

/* A binding for a shader buffer that a dispatch does not use: 256 bytes of a
 * recorder-owned buffer, declared read-write. A shader binding not declared readonly
 * counts as written for the validation layer's synchronisation checks, so a placeholder
 * that pointed at real data would look like a write to it. */
enn_status enn_record_unused_binding(enn_recorder *rec, enn_binding *out);

enn_recorder_stats enn_recorder_get_stats(const enn_recorder *rec);
/* GPU time per dispatch name, after enn_recorder_wait (empty without timestamps). */
uint32_t enn_recorder_timings(const enn_recorder *rec, const enn_timing **out);

#endif
