#version 450
// Adam / AdamW over a flat parameter buffer described by a parameter table, with the
// gradient clipped on the fly (the gradient buffer is not modified). One workgroup per
// chunk of the table, as in reduce_sumsq_partial: chunks [chunk_base, total_chunks) in one
// dispatch, the four flat buffers bound from float elem_base on (a window, when they are
// larger than one binding may be).
//
// Keras's formula (tf.keras optimizer_v2 and Keras 3 agree), with t the 1-based step:
//   alpha = lr * sqrt(1 - beta2^t) / (1 - beta1^t)            (computed on the host)
//   p    -= lr * weight_decay * p                              (AdamW, decoupled; before the step)
//   m    += (g - m) * (1 - beta1)
//   v    += (g*g - v) * (1 - beta2)
//   p    -= alpha * m / (sqrt(v) + epsilon)                    (epsilon outside the sqrt,
//                                                               "epsilon hat", Keras default 1e-7)
// Clipping (sumsq[k] = the squared norm of tensor k's gradient, from reduce_sumsq_*):
//   mode 1, per tensor (Keras clipnorm):        g *= c / max(||g_k||, c)
//   mode 2, global (Keras global_clipnorm):     g *= c / max(sqrt(sum_k ||g_k||^2), c)
//
// adam_vec4 (CPU devices, every tensor offset a multiple of 4): four floats per step of
// an invocation, read as RGBA32F texels (bindings 6-9 view the same ranges as 2-5; each
// element is read, then written, by one invocation only) and written as vec4s. On
// llvmpipe every storage-buffer access is a loop over the SIMD lanes, so a vec4 store
// costs about what a float's does, and a texel fetch is a gather. The chunk's last 1-3
// floats go one by one.
//! variant adam_vec4 -DVEC4=1
#extension GL_GOOGLE_include_directive : require
layout(local_size_x_id = 0) in;

layout(std430, set = 0, binding = 0) readonly buffer Table { uint table[]; };
#include "param_table.glsl"
layout(std430, set = 0, binding = 1) readonly buffer SumSq { float sumsq[]; };
layout(std430, set = 0, binding = 2) buffer Params { float params[]; };
layout(std430, set = 0, binding = 3) readonly buffer Grads { float grads[]; };
layout(std430, set = 0, binding = 4) buffer M { float m1[]; };
layout(std430, set = 0, binding = 5) buffer V { float v2[]; };
#if VEC4
layout(set = 0, binding = 6) uniform samplerBuffer tex_p;
layout(set = 0, binding = 7) uniform samplerBuffer tex_g;
layout(set = 0, binding = 8) uniform samplerBuffer tex_m;
layout(set = 0, binding = 9) uniform samplerBuffer tex_v;
layout(std430, set = 0, binding = 2) writeonly buffer Params4 { vec4 params4[]; };
layout(std430, set = 0, binding = 4) writeonly buffer M4 { vec4 m4[]; };
layout(std430, set = 0, binding = 5) writeonly buffer V4 { vec4 v4[]; };
#endif

layout(push_constant) uniform Push {
    uint chunk_elems;
    uint tensor_count;
    uint total_chunks;  // the end of this dispatch's chunks
    uint clip_mode;     // 0 none, 1 per tensor, 2 global
    float clipnorm;
    float alpha;        // bias-corrected step size
    float beta1;
    float beta2;
    float epsilon;
    float decay;        // lr * weight_decay (0: plain Adam)
    uint chunk_base;    // the first chunk of this dispatch
    uint elem_base;     // the float of the flat buffers that their bindings start at
} pc;

const uint FLAG_DECAY = 1u;

// One step of p, m, v (floats or vec4s) with the clipped gradient g, in place.
#define ADAM_STEP(p, g, m, v)                            \
    if (decay != 0.0) p -= p * decay;                    \
    m += (g - m) * (1.0 - pc.beta1);                     \
    v += (g * g - v) * (1.0 - pc.beta2);                 \
    p -= pc.alpha * m / (sqrt(v) + pc.epsilon);

// The float at `at` of the storage buffers.
#define UPDATE_FLOAT {                                                                   \
        float g = grads[at] * scale, p = params[at], m = m1[at], v = v2[at];             \
        ADAM_STEP(p, g, m, v)                                                            \
        m1[at] = m;                                                                      \
        v2[at] = v;                                                                      \
        params[at] = p; }

void main()
{
    uint t = gl_LocalInvocationID.x;
    uint w = pc.chunk_base + gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
    if (w >= pc.total_chunks) return;
    uint k = table_tensor_of_chunk(w, pc.tensor_count);
    uint offset = table[4u * k], count = table[4u * k + 1u], first = table[4u * k + 2u];
    uint flags = table[4u * k + 3u];

    float scale = 1.0;
    if (pc.clip_mode != 0u) {
        float ss = 0.0;
        if (pc.clip_mode == 1u) ss = sumsq[k];
        else for (uint j = 0u; j < pc.tensor_count; j++) ss += sumsq[j];
        float norm = sqrt(ss);
        scale = pc.clipnorm / max(norm, pc.clipnorm);
    }
    float decay = (flags & FLAG_DECAY) != 0u ? pc.decay : 0.0;

    uint begin = (w - first) * pc.chunk_elems;
    uint end = min(count, begin + pc.chunk_elems);
#if VEC4
    // offset, elem_base and chunk_elems are multiples of 4: vec4 q holds floats 4q..4q+3.
    uint base = offset - pc.elem_base, vec_end = begin + (end - begin) / 4u * 4u;
    for (uint i = begin + 4u * t; i < vec_end; i += 4u * gl_WorkGroupSize.x) {
        uint at = (base + i) / 4u;
        vec4 g = texelFetch(tex_g, int(at)) * scale, p = texelFetch(tex_p, int(at));
        vec4 m = texelFetch(tex_m, int(at)), v = texelFetch(tex_v, int(at));
        ADAM_STEP(p, g, m, v)
        m4[at] = m;
        v4[at] = v;
        params4[at] = p;
    }
    for (uint i = vec_end + t; i < end; i += gl_WorkGroupSize.x) {
        uint at = base + i;
        UPDATE_FLOAT
    }
#else
    for (uint i = begin + t; i < end; i += gl_WorkGroupSize.x) {
        uint at = offset + i - pc.elem_base;
        UPDATE_FLOAT
    }
#endif
}
