#version 450
#extension GL_GOOGLE_include_directive : require
// Inverted dropout with a counter-based mask: element i is kept when its Philox word
// (seed, stream, index i) is >= threshold (P(keep) = 1 - p), or when the caller's mask
// says so (mask[i] != 0). The backward pass is the same kernel on the gradient.
//   op 0: y = keep ? x * scale : 0       (+ beta * y)      scale = 1/(1 - p)
//   op 1: y = keep ? 1 : 0               (the mask itself, for inspection)
layout(local_size_x_id = 0) in;
#include "philox.glsl"

layout(std430, set = 0, binding = 0) readonly buffer X { float x[]; };
layout(std430, set = 0, binding = 1) readonly buffer Mask { float mask[]; };
layout(std430, set = 0, binding = 2) buffer Y { float y[]; };

layout(push_constant) uniform Push {
    uint n;
    uint op;
    uint use_mask;      // 1: keep = mask[i] != 0; 0: Philox
    uint threshold;
    uvec2 seed;
    uvec2 stream;
    float scale;
    float beta;
} pc;

void main()
{
    uint i = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    if (i >= pc.n) return;
    bool keep = pc.use_mask != 0u ? mask[i] != 0.0 : philox_keep(pc.seed, pc.stream, i, pc.threshold);
    if (pc.op == 1u) {
        y[i] = keep ? 1.0 : 0.0;
        return;
    }
    float v = keep ? x[i] * pc.scale : 0.0;
    y[i] = pc.beta != 0.0 ? v + pc.beta * y[i] : v;
}
