/* Model configurations and the parameter layout each one implies. */
#ifndef ENN_MODELS_CONFIG_H
#define ENN_MODELS_CONFIG_H

#include "enn.h"
#include "models/layout.h"

/* The flat parameter layout of a (checked) configuration, in a fixed order: embedding
 * table, recurrent part, pooling, output layer. */
enn_status enn_model_layout(const enn_model_config *config, enn_layout *layout);

#endif
