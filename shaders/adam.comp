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
#extension GL_GOOGLE_include_directive : require
layout(local_size_x_id = 0) in;

layout(std430, set = 0, binding = 0) readonly buffer Table { uint table[]; };
#include "param_table.glsl"
layout(std430, set = 0, binding = 1) readonly buffer SumSq { float sumsq[]; };
layout(std430, set = 0, binding = 2) buffer Params { float params[]; };
layout(std430, set = 0, binding = 3) readonly buffer Grads { float grads[]; };
layout(std430, set = 0, binding = 4) buffer M { float m1[]; };
layout(std430, set = 0, binding = 5) buffer V { float v2[]; };

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
    for (uint i = begin + t; i < end; i += gl_WorkGroupSize.x) {
        uint at = offset + i - pc.elem_base;
        float g = grads[at] * scale;
        float p = params[at];
        if (decay != 0.0) p -= p * decay;
        float m = m1[at], v = v2[at];
        m += (g - m) * (1.0 - pc.beta1);
        v += (g * g - v) * (1.0 - pc.beta2);
        p -= pc.alpha * m / (sqrt(v) + pc.epsilon);
        m1[at] = m;
        v2[at] = v;
        params[at] = p;
    }
}
