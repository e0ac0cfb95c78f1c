/* See small_config.h. */
#include "small_config.h"

enn_model_config test_small_classifier(uint32_t features, uint32_t T, uint32_t batch, uint32_t classes,
                                       uint32_t hidden, uint32_t slots)
{
    enn_model_config c;
    enn_model_config_init(&c, ENN_HEAD_CLASSIFIER);
    c.input_features = features;
    c.max_seq_len = T;
    c.max_batch = batch;
    c.outputs = classes;
    c.cell.hidden = hidden;
    c.cell.memory_slots = slots;
    return c;
}
