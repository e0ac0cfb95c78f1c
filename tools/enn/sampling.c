/* See sampling.h. */
#include "sampling.h"

#include <math.h>
#include <stdlib.h>

/* Likeliest first; ties by id, so that a draw depends on nothing but the logits. */
static int by_logit(const void *pa, const void *pb)
{
    const sampling_candidate *a = pa, *b = pb;
    if (a->logit != b->logit) return a->logit > b->logit ? -1 : 1;
    return a->id < b->id ? -1 : a->id > b->id;
}

uint32_t sampling_choose(const float *logits, uint32_t V, uint32_t first, const sampling *s, double u,
                         sampling_candidate *scratch)
{
    uint32_t best = first;
    for (uint32_t v = first + 1; v < V; v++)
        if (logits[v] > logits[best]) best = v;
    uint32_t n = V - first;
    if (s->temperature == 0.0f || n == 1) return best;
    for (uint32_t v = first; v < V; v++) scratch[v - first] = (sampling_candidate){logits[v], v};
    /* Likeliest first, for the limits and so that u maps to words in one order whatever
     * the limits (O(V log V): ~30 ms for the paper's 188,590 words). */
    qsort(scratch, n, sizeof *scratch, by_logit);
    int top_p = s->top_p > 0.0f && s->top_p < 1.0f;
    uint32_t k = s->top_k && s->top_k < n ? s->top_k : n;
    /* Weights relative to the likeliest word (no overflow at any temperature). */
    double total = 0;
    for (uint32_t i = 0; i < k; i++) total += exp(((double)scratch[i].logit - logits[best]) / s->temperature);
    if (top_p) {
        double kept = 0;
        uint32_t i = 0;
        while (i < k) {
            kept += exp(((double)scratch[i].logit - logits[best]) / s->temperature);
            i++;
            if (kept >= s->top_p * total) break;
        }
        k = i;
        total = kept;
    }
    double left = u * total;
    for (uint32_t i = 0; i < k; i++) {
        left -= exp(((double)scratch[i].logit - logits[best]) / s->temperature);
        if (left < 0) return scratch[i].id;
    }
    return scratch[k - 1].id;
}
