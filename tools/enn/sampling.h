/* The next word of `enn generate` from a language model's logits: greedy (temperature
 * 0), or drawn from softmax(logits / temperature) restricted to the k likeliest words
 * (top-k) and then to the fewest likeliest words whose probabilities, renormalised over
 * those k, sum to at least p (top-p, nucleus sampling). Pure host logic, unit-tested in
 * tests/test_tool_sampling.c. */
#ifndef ENN_TOOLS_SAMPLING_H
#define ENN_TOOLS_SAMPLING_H

#include <stdint.h>

typedef struct sampling {
    float temperature;   /* 0: the likeliest word */
    uint32_t top_k;      /* 0: no limit */
    float top_p;         /* in (0, 1]; 1: no limit */
} sampling;

/* One candidate: scratch for sampling_choose. */
typedef struct sampling_candidate {
    float logit;
    uint32_t id;
} sampling_candidate;

/* The chosen id among first .. V-1 (ids below `first`, e.g. <pad>, are never chosen;
 * first < V), given u uniform in [0, 1): the inverse of the cumulative distribution of
 * the kept words, likeliest first, at u. Ties go to the lower id. `scratch` holds V
 * entries. */
uint32_t sampling_choose(const float *logits, uint32_t V, uint32_t first, const sampling *s, double u,
                         sampling_candidate *scratch);

#endif
