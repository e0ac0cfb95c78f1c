/* Counter-based random numbers: Philox4x32-10 (Salmon et al., SC'11), the same
 * arithmetic as shaders/philox.glsl, so host code and tests reproduce a device's
 * streams bit for bit.
 *
 * A number is addressed by (seed, stream, index): the key is the 64-bit seed, the
 * counter is {index / 4, 0, stream low, stream high}, and element `index` takes word
 * index % 4 of that block. (Counter word 1 numbers the retries of the truncated normal.) Noise for step t of element i is therefore the same however
 * the work is split into dispatches.
 *
 * Normals use Box-Muller on the word pair {0,1} or {2,3} of the block (cosine for the
 * even index, sine for the odd). The logarithm, square root, sine and cosine are
 * evaluated with additions and multiplications only (no fused multiply-add, no library
 * call), which IEEE-754 rounds exactly the same everywhere; so a normal is the same float
 * on the host and on every device that rounds fp32 correctly and does not flush normal
 * numbers (all intermediates stay far from the subnormal range). */
#ifndef ENN_OPS_PHILOX_H
#define ENN_OPS_PHILOX_H

#include <stdint.h>

/* One Philox4x32-10 block: out = philox(counter, key). */
void enn_philox4x32_10(const uint32_t counter[4], const uint32_t key[2], uint32_t out[4]);

/* The raw 32-bit word of element `index` of stream `stream`. */
uint32_t enn_philox_u32(uint64_t seed, uint64_t stream, uint32_t index);
/* Uniform on [0, 1): the top 24 bits of the word, times 2^-24 (exact). */
float enn_philox_uniform(uint64_t seed, uint64_t stream, uint32_t index);
/* Standard normal, Box-Muller as described above. */
float enn_philox_normal(uint64_t seed, uint64_t stream, uint32_t index);

/* Standard normal truncated to [-2, 2] (rejection; retry k uses counter word 1 = k).
 * Its standard deviation is 0.87962566; Keras's truncated-normal initialisers divide the
 * requested std by that constant first. */
float enn_philox_truncated_normal(uint64_t seed, uint64_t stream, uint32_t index);

/* Box-Muller on two raw words (exposed for tests): the cosine (which = 0) or sine
 * (which = 1) branch. */
float enn_box_muller(uint32_t w0, uint32_t w1, int which);

/* Dropout: element `index` is kept when its word is >= threshold, with
 * threshold = round(p * 2^32) (p in [0, 1)), so P(keep) = 1 - threshold / 2^32. */
uint32_t enn_dropout_threshold(float p);
static inline int enn_philox_keep(uint64_t seed, uint64_t stream, uint32_t index, uint32_t threshold)
{
    return enn_philox_u32(seed, stream, index) >= threshold;
}

#endif
