#version 450
#extension GL_GOOGLE_include_directive : require
// Fills a buffer from a Philox stream (seed, stream), element i taking index
// first_index + i, so a slice of a stream can be filled on its own:
//   dist 0: out[i] = a + b * normal          (mean a, standard deviation b)
//   dist 1: out[i] = a + (b - a) * uniform   (uniform on [a, b))
//   dist 2: out[i] = a + b * truncated normal (standard normal cut at +-2)
// random_normal4: dist 0 where first_index is a multiple of 4, 4 consecutive elements at
// a time from one Philox block (philox_normal4: bit for bit philox_normal's values), and
// no other distribution's code on the path (lavapipe runs every branch under a mask:
// each element paid for three blocks).
// random_normal16 (CPU devices): the same where n is a multiple of 16, four blocks at a time
// (philox_normal4_x4, whose arithmetic interleaves) stored as vec4s (on llvmpipe each store
// is a loop over the lanes, per float or per vec4 alike).
//! variant random_normal4 -DNORMAL4=1
//! variant random_normal16 -DNORMAL16=1
layout(local_size_x_id = 0) in;
#include "philox.glsl"

#ifdef NORMAL16
layout(std430, set = 0, binding = 0) writeonly buffer Out { vec4 out_vec4s[]; };
#else
layout(std430, set = 0, binding = 0) writeonly buffer Out { float out_values[]; };
#endif

layout(push_constant) uniform Push {
    uint n;
    uint dist;
    uvec2 seed;
    uvec2 stream;
    uint first_index;
    float a;
    float b;
    uint per_invocation;  // elements per invocation, consecutive (CPU devices: invocations cost)
} pc;

#if defined(NORMAL16)
void main()
{
    uint g = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    for (uint k = 0u; k < pc.per_invocation; k++) {
        uint i = (g * pc.per_invocation + k) * 16u;
        if (i >= pc.n) return;
        mat4 v = philox_normal4_x4(pc.seed, pc.stream, (pc.first_index + i) / 4u + uvec4(0u, 1u, 2u, 3u));
        for (uint c = 0u; c < 4u; c++) {
            precise vec4 o = pc.a + pc.b * v[c];
            out_vec4s[i / 4u + c] = o;
        }
    }
}
#elif defined(NORMAL4)
void main()
{
    uint g = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    for (uint k = 0u; k < pc.per_invocation; k++) {
        uint i = (g * pc.per_invocation + k) * 4u;
        if (i >= pc.n) return;
        precise vec4 v = pc.a + pc.b * philox_normal4(pc.seed, pc.stream, pc.first_index + i);
        for (uint c = 0u; c < 4u; c++)
            if (i + c < pc.n) out_values[i + c] = v[c];
    }
}
#else
void main()
{
    uint g = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    for (uint k = 0u; k < pc.per_invocation; k++) {
        uint i = g * pc.per_invocation + k;
        if (i >= pc.n) return;
        uint index = pc.first_index + i;
        precise float v;
        if (pc.dist == 0u) v = pc.a + pc.b * philox_normal(pc.seed, pc.stream, index);
        else if (pc.dist == 1u) v = pc.a + (pc.b - pc.a) * philox_uniform(pc.seed, pc.stream, index);
        else v = pc.a + pc.b * philox_truncated_normal(pc.seed, pc.stream, index);
        out_values[i] = v;
    }
}
#endif
