/* Model configurations and the parameter layout each one implies. */
#ifndef ENN_MODELS_CONFIG_H
#define ENN_MODELS_CONFIG_H

#include "enn.h"
#include "models/layout.h"

/* A caller's configuration read into libenn's own struct (enn.h, "structs that grow"):
 * what every public function taking an enn_model_config reads. NULL is an error. */
enn_status enn_model_config_read(const enn_model_config *caller, enn_model_config *local);

/* The flat parameter layout of a configuration libenn has read (checked here), in a
 * fixed order: embedding table, recurrent part, pooling, output layer. */
enn_status enn_model_layout(const enn_model_config *config, enn_layout *layout);

#endif
