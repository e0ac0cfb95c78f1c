#version 450
// Attention pooling, one time step at a time (streaming inference). The pooled context
// over steps 1..t is  ctx = sum_s exp(score_s) h_s / sum_s exp(score_s)  with
// score_s = tanh(h_s w + bias), which is softmax-over-time pooling without the max
// shift: tanh keeps every score in [-1, 1], so exp() can neither overflow nor underflow
// and a running sum and a running weighted sum are all the state that is needed.
//   h    [B,H]  this step's hidden state        w [H], bias [1] (pool.w, pool.b)
//   sum  [B]    running sum of exp(score)       acc [B,H] running weighted sum
//   ctx  [B,H]  acc / sum after this step
// One workgroup per sample (rows strided by the grid).
layout(local_size_x_id = 0) in;

layout(std430, set = 0, binding = 0) readonly buffer Hs { float h[]; };
layout(std430, set = 0, binding = 1) readonly buffer W { float w[]; };
layout(std430, set = 0, binding = 2) readonly buffer Bias { float bias[]; };
layout(std430, set = 0, binding = 3) buffer Sum { float sum_buf[]; };
layout(std430, set = 0, binding = 4) buffer Acc { float acc[]; };
layout(std430, set = 0, binding = 5) writeonly buffer Ctx { float ctx[]; };

layout(push_constant) uniform Push {
    uint B, H;
} pc;

shared float red[gl_WorkGroupSize.x];

float workgroup_sum(float v)
{
    red[gl_LocalInvocationID.x] = v;
    barrier();
    for (uint s = gl_WorkGroupSize.x / 2; s > 0; s >>= 1) {
        if (gl_LocalInvocationID.x < s) red[gl_LocalInvocationID.x] += red[gl_LocalInvocationID.x + s];
        barrier();
    }
    float r = red[0];
    barrier();
    return r;
}

void main()
{
    uint lid = gl_LocalInvocationID.x, wg = gl_WorkGroupSize.x;
    for (uint b = gl_WorkGroupID.x; b < pc.B; b += gl_NumWorkGroups.x) {
        float d = 0.0;
        for (uint k = lid; k < pc.H; k += wg) d += h[b * pc.H + k] * w[k];
        d = workgroup_sum(d);
        float e = exp(tanh(d + bias[0]));
        // Every invocation read sum_buf[b] before invocation 0 writes it (the barrier
        // inside workgroup_sum orders the reads before the write).
        float total = sum_buf[b] + e;
        barrier();
        if (lid == 0) sum_buf[b] = total;
        for (uint k = lid; k < pc.H; k += wg) {
            float a = acc[b * pc.H + k] + e * h[b * pc.H + k];
            acc[b * pc.H + k] = a;
            ctx[b * pc.H + k] = a / total;
        }
    }
}
