#version 450
#extension GL_GOOGLE_include_directive : require
// Layer normalisation over the last axis of x [rows, cols], with gain and bias [cols]:
//   mean = sum(x)/C   var = sum((x - mean)^2)/C (biased)   rstd = 1/sqrt(var + eps)
//   y = (x - mean) rstd gain + bias
// Variants:
//   layer_norm                  forward, one workgroup per row (two passes over the row
//                               for the variance: no cancellation of E[x^2] - mean^2);
//                               saves mean and rstd [rows] for the backward pass
//   layer_norm_backward_input   dx = rstd (dyg - mean(dyg) - xhat mean(dyg xhat)),
//                               dyg = dy gain; one workgroup per row
//   layer_norm_backward_params  dgain = sum_rows dy xhat, dbias = sum_rows dy; PARTS
//                               invocations per column split the rows (GPUs: the ENN
//                               sums T * B rows), their sums added in a fixed order
//
//   _rows variants (CPU devices) of the forward and backward_input: one invocation per
//                               row, no shared memory and no barriers (lavapipe runs a
//                               workgroup's tree reductions as loops over its lanes,
//                               which cost more than the row itself at h = 128)
//   _texel variants (CPU devices, cols % 4 == 0): the inputs as texels (vec4 rows,
//                               float mean and rstd) and vec4 outputs; lavapipe gathers
//                               texels, where each storage load is a loop over the lanes.
//                               backward_params_texel: one invocation per 4 columns.
//
//! variant layer_norm_rows -DROWS=1
//! variant layer_norm_backward_input -DBACKWARD_INPUT=1
//! variant layer_norm_backward_input_rows -DBACKWARD_INPUT=1 -DROWS=1
//! variant layer_norm_backward_params -DBACKWARD_PARAMS=1
//! variant layer_norm_rows_texel -DROWS=1 -DTEXEL=1
//! variant layer_norm_backward_input_rows_texel -DBACKWARD_INPUT=1 -DROWS=1 -DTEXEL=1
//! variant layer_norm_backward_params_texel -DBACKWARD_PARAMS=1 -DTEXEL=1
layout(local_size_x_id = 0) in;

layout(push_constant) uniform Push {
    uint rows, cols;
    float eps;
    float beta_dx;      // dx = new + beta_dx * dx (0 or 1)
    float beta_params;  // dgain, dbias likewise: 1 accumulates over time steps
} pc;

const uint WG = gl_WorkGroupSize.x;

#if !defined(BACKWARD_PARAMS) && !defined(ROWS)
#include "reduce.glsl"
#endif

#ifdef ROWS
// The row's sum, from this invocation alone.
#define ROW_SUM(v) (v)
#define FIRST_ROW (gl_GlobalInvocationID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x * WG)
#define ROW_STEP (gl_NumWorkGroups.x * gl_NumWorkGroups.y * WG)
#define LANE 0u
#define LANES 1u
#else
#define ROW_SUM(v) workgroup_sum(v)
#define FIRST_ROW gl_WorkGroupID.x
#define ROW_STEP gl_NumWorkGroups.x
#define LANE gl_LocalInvocationID.x
#define LANES WG
#endif

#if defined(TEXEL) && !defined(BACKWARD_INPUT) && !defined(BACKWARD_PARAMS)
layout(set = 0, binding = 0) uniform samplerBuffer tex_x;
layout(set = 0, binding = 1) uniform samplerBuffer tex_gain;
layout(set = 0, binding = 2) uniform samplerBuffer tex_bias;
layout(std430, set = 0, binding = 3) writeonly buffer Y { vec4 y[]; };
layout(std430, set = 0, binding = 4) writeonly buffer Mean { float mean_out[]; };
layout(std430, set = 0, binding = 5) writeonly buffer Rstd { float rstd_out[]; };

void main()
{
    uint C4 = pc.cols / 4u;
    float inv_c = 1.0 / float(pc.cols);
    for (uint r = FIRST_ROW; r < pc.rows; r += ROW_STEP) {
        int o = int(r * C4);
        vec4 s = vec4(0.0);
        for (uint c = 0u; c < C4; c++) s += texelFetch(tex_x, o + int(c));
        float mean = dot(s, vec4(1.0)) * inv_c;
        vec4 v = vec4(0.0);
        for (uint c = 0u; c < C4; c++) {
            vec4 d = texelFetch(tex_x, o + int(c)) - mean;
            v += d * d;
        }
        float rstd = inversesqrt(dot(v, vec4(1.0)) * inv_c + pc.eps);
        for (uint c = 0u; c < C4; c++)
            y[o + int(c)] = (texelFetch(tex_x, o + int(c)) - mean) * rstd * texelFetch(tex_gain, int(c)) +
                            texelFetch(tex_bias, int(c));
        mean_out[r] = mean;
        rstd_out[r] = rstd;
    }
}
#elif !defined(BACKWARD_INPUT) && !defined(BACKWARD_PARAMS)
layout(std430, set = 0, binding = 0) readonly buffer X { float x[]; };
layout(std430, set = 0, binding = 1) readonly buffer Gain { float gain[]; };
layout(std430, set = 0, binding = 2) readonly buffer Bias { float bias[]; };
layout(std430, set = 0, binding = 3) writeonly buffer Y { float y[]; };
layout(std430, set = 0, binding = 4) writeonly buffer Mean { float mean_out[]; };
layout(std430, set = 0, binding = 5) writeonly buffer Rstd { float rstd_out[]; };

void main()
{
    uint t = LANE, C = pc.cols;
    float inv_c = 1.0 / float(C);
    for (uint r = FIRST_ROW; r < pc.rows; r += ROW_STEP) {
        uint o = r * C;
        float s = 0.0;
        for (uint c = t; c < C; c += LANES) s += x[o + c];
        float mean = ROW_SUM(s) * inv_c;
        float v = 0.0;
        for (uint c = t; c < C; c += LANES) {
            float d = x[o + c] - mean;
            v += d * d;
        }
        float rstd = inversesqrt(ROW_SUM(v) * inv_c + pc.eps);
        for (uint c = t; c < C; c += LANES) y[o + c] = (x[o + c] - mean) * rstd * gain[c] + bias[c];
        if (t == 0u) {
            mean_out[r] = mean;
            rstd_out[r] = rstd;
        }
    }
}
#endif

#if defined(BACKWARD_INPUT) && defined(TEXEL)
layout(set = 0, binding = 0) uniform samplerBuffer tex_x;
layout(set = 0, binding = 1) uniform samplerBuffer tex_gain;
layout(set = 0, binding = 2) uniform samplerBuffer tex_dy;
layout(set = 0, binding = 3) uniform samplerBuffer tex_mean;
layout(set = 0, binding = 4) uniform samplerBuffer tex_rstd;
layout(std430, set = 0, binding = 5) buffer DX { vec4 dx[]; };

void main()
{
    uint C4 = pc.cols / 4u;
    float inv_c = 1.0 / float(pc.cols);
    for (uint r = FIRST_ROW; r < pc.rows; r += ROW_STEP) {
        int o = int(r * C4);
        float mean = texelFetch(tex_mean, int(r)).x, rstd = texelFetch(tex_rstd, int(r)).x;
        vec4 s1 = vec4(0.0), s2 = vec4(0.0);
        for (uint c = 0u; c < C4; c++) {
            vec4 dyg = texelFetch(tex_dy, o + int(c)) * texelFetch(tex_gain, int(c));
            s1 += dyg;
            s2 += dyg * (texelFetch(tex_x, o + int(c)) - mean) * rstd;
        }
        float c1 = dot(s1, vec4(1.0)) * inv_c;
        float c2 = dot(s2, vec4(1.0)) * inv_c;
        for (uint c = 0u; c < C4; c++) {
            vec4 xhat = (texelFetch(tex_x, o + int(c)) - mean) * rstd;
            vec4 v = rstd * (texelFetch(tex_dy, o + int(c)) * texelFetch(tex_gain, int(c)) - c1 - xhat * c2);
            dx[o + int(c)] = pc.beta_dx != 0.0 ? v + pc.beta_dx * dx[o + int(c)] : v;
        }
    }
}
#elif defined(BACKWARD_INPUT)
layout(std430, set = 0, binding = 0) readonly buffer X { float x[]; };
layout(std430, set = 0, binding = 1) readonly buffer Gain { float gain[]; };
layout(std430, set = 0, binding = 2) readonly buffer DY { float dy[]; };
layout(std430, set = 0, binding = 3) readonly buffer Mean { float mean_in[]; };
layout(std430, set = 0, binding = 4) readonly buffer Rstd { float rstd_in[]; };
layout(std430, set = 0, binding = 5) buffer DX { float dx[]; };

void main()
{
    uint t = LANE, C = pc.cols;
    float inv_c = 1.0 / float(C);
    for (uint r = FIRST_ROW; r < pc.rows; r += ROW_STEP) {
        uint o = r * C;
        float mean = mean_in[r], rstd = rstd_in[r];
        float s1 = 0.0, s2 = 0.0;
        for (uint c = t; c < C; c += LANES) {
            float dyg = dy[o + c] * gain[c];
            s1 += dyg;
            s2 += dyg * (x[o + c] - mean) * rstd;
        }
        float c1 = ROW_SUM(s1) * inv_c;
        float c2 = ROW_SUM(s2) * inv_c;
        for (uint c = t; c < C; c += LANES) {
            float xhat = (x[o + c] - mean) * rstd;
            float v = rstd * (dy[o + c] * gain[c] - c1 - xhat * c2);
            dx[o + c] = pc.beta_dx != 0.0 ? v + pc.beta_dx * dx[o + c] : v;
        }
    }
}
#endif

#if defined(BACKWARD_PARAMS) && defined(TEXEL)
layout(set = 0, binding = 0) uniform samplerBuffer tex_x;
layout(set = 0, binding = 1) uniform samplerBuffer tex_dy;
layout(set = 0, binding = 2) uniform samplerBuffer tex_mean;
layout(set = 0, binding = 3) uniform samplerBuffer tex_rstd;
layout(std430, set = 0, binding = 4) buffer DGain { float dgain[]; };
layout(std430, set = 0, binding = 5) buffer DBias { float dbias[]; };

void main()
{
    uint g = gl_GlobalInvocationID.x, C4 = pc.cols / 4u;
    if (g >= C4) return;
    vec4 sg = vec4(0.0), sb = vec4(0.0);
    for (uint r = 0u; r < pc.rows; r++) {
        int i = int(r * C4 + g);
        vec4 d = texelFetch(tex_dy, i);
        sg += d * (texelFetch(tex_x, i) - texelFetch(tex_mean, int(r)).x) * texelFetch(tex_rstd, int(r)).x;
        sb += d;
    }
    for (uint k = 0u; k < 4u; k++) {
        uint c = 4u * g + k;
        dgain[c] = pc.beta_params != 0.0 ? sg[k] + pc.beta_params * dgain[c] : sg[k];
        dbias[c] = pc.beta_params != 0.0 ? sb[k] + pc.beta_params * dbias[c] : sb[k];
    }
}
#elif defined(BACKWARD_PARAMS)
layout(std430, set = 0, binding = 0) readonly buffer X { float x[]; };
layout(std430, set = 0, binding = 1) readonly buffer DY { float dy[]; };
layout(std430, set = 0, binding = 2) readonly buffer Mean { float mean_in[]; };
layout(std430, set = 0, binding = 3) readonly buffer Rstd { float rstd_in[]; };
layout(std430, set = 0, binding = 4) buffer DGain { float dgain[]; };
layout(std430, set = 0, binding = 5) buffer DBias { float dbias[]; };

layout(constant_id = 3) const uint PARTS = 1;
const uint CT = WG / PARTS;   // columns per workgroup
shared vec2 sh_part[PARTS > 1u ? WG : 1u];

void main()
{
    uint t = gl_LocalInvocationID.x, part = t / CT, C = pc.cols;
    uint c = gl_WorkGroupID.x * CT + t % CT;
    float sg = 0.0, sb = 0.0;
    if (c < C)
        for (uint r = part; r < pc.rows; r += PARTS) {
            float d = dy[r * C + c];
            sg += d * (x[r * C + c] - mean_in[r]) * rstd_in[r];
            sb += d;
        }
    if (PARTS > 1u) {
        sh_part[t] = vec2(sg, sb);
        barrier();
        if (part == 0u)
            for (uint q = 1u; q < PARTS; q++) {
                sg += sh_part[t + q * CT].x;
                sb += sh_part[t + q * CT].y;
            }
    }
    if (part != 0u || c >= C) return;
    dgain[c] = pc.beta_params != 0.0 ? sg + pc.beta_params * dgain[c] : sg;
    dbias[c] = pc.beta_params != 0.0 ? sb + pc.beta_params * dbias[c] : sb;
}
#endif
