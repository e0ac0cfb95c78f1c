#version 450
// Attention pooling over time (the classifier's default head):
//   s[t,b]   = tanh(sum_k hs[t,b,k] w[k] + bias)
//   p[t,b]   = softmax over t of s[.,b]
//   ctx[b,k] = sum_t p[t,b] hs[t,b,k]
// One workgroup per sample b. PASS 0 is the forward (writes s, p, ctx). PASS 1 is the
// backward for one sample (dhs, and this sample's partial dw[b,k], dbias[b]); PASS 2 sums
// the partials over the batch into the parameter gradients (accumulating).
layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint MAX_T = 1024; // shared scratch for one column of scores

layout(std430, set = 0, binding = 0) readonly buffer HS { float hs[]; };     // [T,B,h]
layout(std430, set = 0, binding = 1) readonly buffer W { float w[]; };       // [h] then bias at [h]
layout(std430, set = 0, binding = 2) buffer S { float s_buf[]; };            // [T,B]
layout(std430, set = 0, binding = 3) buffer P { float p_buf[]; };            // [T,B]
layout(std430, set = 0, binding = 4) buffer CTX { float ctx[]; };            // [B,h]  (backward: dctx)
layout(std430, set = 0, binding = 5) buffer DHS { float dhs[]; };            // [T,B,h] (backward only)
layout(std430, set = 0, binding = 6) buffer PART { float part[]; };          // [B,h+1] partial dw, dbias
layout(std430, set = 0, binding = 7) buffer DW { float dw[]; };              // [h+1] dw then dbias

layout(push_constant) uniform Push {
    uint T, B, H;
    uint pass_id;
    uint accumulate_dhs; // backward: 1 adds into dhs, 0 overwrites it
} pc;

shared float red[gl_WorkGroupSize.x];
shared float col[MAX_T];

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

float workgroup_max(float v)
{
    red[gl_LocalInvocationID.x] = v;
    barrier();
    for (uint s = gl_WorkGroupSize.x / 2; s > 0; s >>= 1) {
        if (gl_LocalInvocationID.x < s) red[gl_LocalInvocationID.x] = max(red[gl_LocalInvocationID.x], red[gl_LocalInvocationID.x + s]);
        barrier();
    }
    float r = red[0];
    barrier();
    return r;
}

uint at(uint t, uint b, uint k) { return (t * pc.B + b) * pc.H + k; }

void forward(uint b)
{
    uint lid = gl_LocalInvocationID.x, wg = gl_WorkGroupSize.x;
    float bias = w[pc.H];
    // Scores: one t at a time, the dot product split across the workgroup.
    for (uint t = 0; t < pc.T; t++) {
        float d = 0.0;
        for (uint k = lid; k < pc.H; k += wg) d += hs[at(t, b, k)] * w[k];
        d = workgroup_sum(d);
        if (lid == 0) col[t] = tanh(d + bias);
    }
    barrier();
    float m = -1e30;
    for (uint t = lid; t < pc.T; t += wg) m = max(m, col[t]);
    m = workgroup_max(m);
    float z = 0.0;
    for (uint t = lid; t < pc.T; t += wg) z += exp(col[t] - m);
    z = workgroup_sum(z);
    for (uint t = lid; t < pc.T; t += wg) {
        s_buf[t * pc.B + b] = col[t];
        p_buf[t * pc.B + b] = exp(col[t] - m) / z;
    }
    barrier();
    for (uint k = lid; k < pc.H; k += wg) {
        float c = 0.0;
        for (uint t = 0; t < pc.T; t++) c += exp(col[t] - m) / z * hs[at(t, b, k)];
        ctx[b * pc.H + k] = c;
    }
}

void backward(uint b)
{
    uint lid = gl_LocalInvocationID.x, wg = gl_WorkGroupSize.x;
    // dp[t] = dctx . hs[t]
    for (uint t = 0; t < pc.T; t++) {
        float d = 0.0;
        for (uint k = lid; k < pc.H; k += wg) d += ctx[b * pc.H + k] * hs[at(t, b, k)];
        d = workgroup_sum(d);
        if (lid == 0) col[t] = d;
    }
    barrier();
    float pdp = 0.0;
    for (uint t = lid; t < pc.T; t += wg) pdp += p_buf[t * pc.B + b] * col[t];
    pdp = workgroup_sum(pdp);
    // dpre[t] = p (dp - sum p dp) (1 - s^2), kept in col.
    for (uint t = lid; t < pc.T; t += wg) {
        float s = s_buf[t * pc.B + b];
        col[t] = p_buf[t * pc.B + b] * (col[t] - pdp) * (1.0 - s * s);
    }
    barrier();
    float db = 0.0;
    for (uint t = lid; t < pc.T; t += wg) db += col[t];
    db = workgroup_sum(db);
    for (uint k = lid; k < pc.H; k += wg) {
        float dwk = 0.0;
        for (uint t = 0; t < pc.T; t++) {
            uint i = at(t, b, k);
            float g = p_buf[t * pc.B + b] * ctx[b * pc.H + k] + col[t] * w[k];
            dhs[i] = pc.accumulate_dhs != 0u ? dhs[i] + g : g;
            dwk += col[t] * hs[i];
        }
        part[b * (pc.H + 1) + k] = dwk;
    }
    if (lid == 0) part[b * (pc.H + 1) + pc.H] = db;
}

void main()
{
    if (pc.pass_id == 0u) forward(gl_WorkGroupID.x);
    else if (pc.pass_id == 1u) backward(gl_WorkGroupID.x);
    else {
        // One invocation per parameter (h weights and the bias), summing over the batch.
        uint k = gl_GlobalInvocationID.x;
        if (k > pc.H) return;
        float acc = 0.0;
        for (uint b = 0; b < pc.B; b++) acc += part[b * (pc.H + 1) + k];
        dw[k] += acc;
    }
}
