/* A model configuration as JSON, the form a checkpoint stores it in (metadata "config").
 * Every field of enn_model_config has a readable key; enumerations are words
 * ("classifier", "per_sample", ...). Reading is strict: a missing or unknown key, a wrong
 * type or an unknown word is ENN_ERROR_FORMAT with a message naming the key. */
#ifndef ENN_MODELS_CONFIG_JSON_H
#define ENN_MODELS_CONFIG_JSON_H

#include "enn.h"

/* The "version" key of the JSON: bumped when a key changes meaning or is removed. */
#define ENN_CONFIG_JSON_VERSION 1

/* The words of each enumeration, indexed by its value (NULL-terminated lists). The
 * command line uses the same words (with '-' accepted for '_'). */
extern const char *const enn_model_kind_names[];
extern const char *const enn_head_names[];
extern const char *const enn_pooling_names[];
extern const char *const enn_trace_mode_names[];
extern const char *const enn_trace_gradient_names[];
extern const char *const enn_lm_input_names[];
extern const char *const enn_clip_names[];
/* The index of `word` in `names` (comparing '-' and '_' alike), or -1. */
int enn_enum_parse(const char *const *names, const char *word);

#endif
