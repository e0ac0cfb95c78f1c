/* Compute pipelines, created on first use from the embedded SPIR-V and kept per context.
 *
 * Every kernel has the same shape of interface: buffers at set 0, bindings
 * 0..num_buffers-1 (storage buffers, or uniform or storage texel buffers where
 * texel_formats and storage_texel_mask say so), and at most 128 bytes of push constants. Specialization constants
 * are uint32 values with ids 0..spec_count-1; by convention ids 0, 1, 2 are the
 * workgroup size (local_size_x_id = 0, ...). */
#ifndef ENN_CORE_PIPELINES_H
#define ENN_CORE_PIPELINES_H

#include <vulkan/vulkan.h>
#include "enn.h"

#define ENN_MAX_BINDINGS 16
#define ENN_MAX_SPEC 24
#define ENN_MAX_PUSH 128

typedef struct enn_pipeline {
    char shader[64];
    uint32_t spec[ENN_MAX_SPEC];
    uint32_t spec_count;
    uint32_t num_buffers;
    uint32_t push_size;
    uint32_t required_subgroup_size; /* 0: the driver's choice */
    VkFormat texel_formats[ENN_MAX_BINDINGS]; /* VK_FORMAT_UNDEFINED: a storage buffer */
    uint32_t storage_texel_mask;     /* bit i: binding i is a storage texel buffer */
    VkDescriptorSetLayout set_layout;
    VkPipelineLayout layout;
    VkPipeline pipeline;
    int push_descriptors;            /* the set layout is a push-descriptor layout */
} enn_pipeline;

typedef struct enn_pipeline_desc {
    const char *shader;              /* module name: file name without .comp, or a variant */
    uint32_t num_buffers;
    uint32_t push_size;
    const uint32_t *spec;
    uint32_t spec_count;
    uint32_t required_subgroup_size; /* needs subgroup size control; 0 for none */
    /* NULL: every binding is a storage buffer. Else one format per binding: binding i
     * is a uniform texel buffer (samplerBuffer) with views of format texel_formats[i],
     * or a storage buffer where that is VK_FORMAT_UNDEFINED. The recorder creates the
     * views (enn_record_dispatch). */
    const VkFormat *texel_formats;
    /* Bit i set: binding i is a storage texel buffer (imageBuffer, read and written) of
     * format texel_formats[i] instead of a uniform texel buffer. */
    uint32_t storage_texel_mask;
} enn_pipeline_desc;

/* The descriptor type of binding i of p. */
VkDescriptorType enn_pipeline_descriptor_type(const enn_pipeline *p, uint32_t i);

/* The pipeline for this description, created and cached on first request. The pointer
 * stays valid for the context's life. */
enn_status enn_pipeline_get(enn_context *ctx, const enn_pipeline_desc *desc, const enn_pipeline **out);

/* Statistics: pipelines created, and the host time spent creating them. */
typedef struct enn_pipeline_stats {
    uint32_t created;
    double create_ms;
    int cache_loaded;                /* the on-disk cache was valid and used */
    char cache_path[512];
} enn_pipeline_stats;
void enn_pipeline_get_stats(const enn_context *ctx, enn_pipeline_stats *out);
/* Writes the pipeline cache now (also done by enn_context_destroy). */
enn_status enn_pipeline_cache_save(enn_context *ctx);

#endif
