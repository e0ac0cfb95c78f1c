/* The SPIR-V modules compiled from the .comp files in shaders/ and embedded at build time. */
#ifndef ENN_CORE_SHADER_TABLE_H
#define ENN_CORE_SHADER_TABLE_H

#include <stddef.h>
#include <stdint.h>

typedef struct enn_shader_module {
    const char *name;        /* file name without .comp, or the variant's name */
    const uint32_t *words;
    const size_t *word_count;
} enn_shader_module;

extern const enn_shader_module enn_shader_modules[];
extern const size_t enn_shader_module_count;

/* NULL when no module has that name. */
const enn_shader_module *enn_shader_find(const char *name);

#endif
