#version 450
// Attention pooling over time (the classifier's default head):
//   s[t,b]   = tanh(sum_k hs[t,b,k] w[k] + bias)
//   p[t,b]   = softmax over t of s[.,b]
//   ctx[b,k] = sum_t p[t,b] hs[t,b,k]
// The base kernel (GPUs): one workgroup per sample b. PASS 0 is the forward (writes s, p, ctx). PASS 1 is the
// backward for one sample (dhs, and this sample's partial dw[b,k], dbias[b]); PASS 2 sums
// the partials over the batch into the parameter gradients (accumulating).
//
// _samples variants (CPU devices): one invocation per sample doing the whole sample, no
// shared memory and no barriers. lavapipe runs a workgroup's tree reduction as loops over
// its lanes with a barrier each step; for T = 28 scores of h = 128 those cost far more
// than the dot products. The scores go straight to s and p; the backward keeps the first
// KEEP_T dot products dctx . hs[t] in a private array and computes later ones twice (no
// scratch buffer of T floats). Every sum runs in a fixed order and pass 2 is shared (the
// batch sum of dw in order of b), so results stay deterministic.
//   attention_pooling_samples4  h a multiple of 4: hs, w, dctx, dhs read as vec4 (lavapipe
//                               loads each lane's address on its own, so a vec4 costs
//                               about what a float does)
//   attention_pooling_samples   any h, one float at a time
//
//! variant attention_pooling_samples -DSAMPLES=1
//! variant attention_pooling_samples4 -DSAMPLES=1 -DVEC4=1
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

uint at(uint t, uint b, uint k) { return (t * pc.B + b) * pc.H + k; }

#ifdef SAMPLES
#ifdef VEC4
layout(std430, set = 0, binding = 0) readonly buffer HSV { vec4 hsv[]; };
layout(std430, set = 0, binding = 1) readonly buffer WV { vec4 wv[]; };
layout(std430, set = 0, binding = 4) buffer CTXV { vec4 ctxv[]; };
layout(std430, set = 0, binding = 5) buffer DHSV { vec4 dhsv[]; };
#define VEC vec4
const uint N = 4u;
float total(vec4 v) { return (v.x + v.y) + (v.z + v.w); }
// part[q .. q+3] = (first ? 0 : part[q .. q+3]) + a v
void add_part(uint q, float a, vec4 v, bool first)
{
    for (uint i = 0; i < 4u; i++) part[q + i] = first ? a * v[i] : part[q + i] + a * v[i];
}
#else
#define hsv hs
#define wv w
#define ctxv ctx
#define dhsv dhs
#define VEC float
const uint N = 1u;
float total(float v) { return v; }
void add_part(uint q, float a, float v, bool first) { part[q] = first ? a * v : part[q] + a * v; }
#endif
const uint KEEP_T = 64u;

// Indices of hsv, wv, ctxv, dhsv count VECs of N floats: row (t, b) of hs is at at(t, b, 0) / N.
void forward(uint b)
{
    uint hn = pc.H / N, c0 = b * hn;
    float bias = w[pc.H];
    float m = -1e30;
    for (uint t = 0; t < pc.T; t++) {
        uint o = at(t, b, 0) / N;
        VEC d = VEC(0.0);
        for (uint k = 0; k < hn; k++) d += hsv[o + k] * wv[k];
        float st = tanh(total(d) + bias);
        s_buf[t * pc.B + b] = st;
        m = max(m, st);
    }
    float z = 0.0;
    for (uint t = 0; t < pc.T; t++) z += exp(s_buf[t * pc.B + b] - m);
    // ctx = sum_t p[t] hs[t]: rows of hs read in order, ctx[b] built up in place.
    for (uint t = 0; t < pc.T; t++) {
        float pt = exp(s_buf[t * pc.B + b] - m) / z;
        p_buf[t * pc.B + b] = pt;
        uint o = at(t, b, 0) / N;
        if (t == 0u)
            for (uint k = 0; k < hn; k++) ctxv[c0 + k] = pt * hsv[o + k];
        else
            for (uint k = 0; k < hn; k++) ctxv[c0 + k] += pt * hsv[o + k];
    }
}

// dp[t] = dctx . hs[t]
float dp_at(uint t, uint b)
{
    uint hn = pc.H / N, o = at(t, b, 0) / N, c0 = b * hn;
    VEC d = VEC(0.0);
    for (uint k = 0; k < hn; k++) d += ctxv[c0 + k] * hsv[o + k];
    return total(d);
}

void backward(uint b)
{
    uint hn = pc.H / N, c0 = b * hn, q0 = b * (pc.H + 1);
    float kept[KEEP_T];
    float pdp = 0.0;
    for (uint t = 0; t < pc.T; t++) {
        float d = dp_at(t, b);
        if (t < KEEP_T) kept[t] = d;
        pdp += p_buf[t * pc.B + b] * d;
    }
    // dpre[t] = p (dp - pdp) (1 - s^2); dhs, and this sample's dw built up over t in its
    // partial row.
    float db = 0.0;
    for (uint t = 0; t < pc.T; t++) {
        float pt = p_buf[t * pc.B + b], st = s_buf[t * pc.B + b];
        float d = t < KEEP_T ? kept[t] : dp_at(t, b);
        float dpre = pt * (d - pdp) * (1.0 - st * st);
        db += dpre;
        uint o = at(t, b, 0) / N;
        for (uint k = 0; k < hn; k++) {
            VEC g = pt * ctxv[c0 + k] + dpre * wv[k];
            dhsv[o + k] = pc.accumulate_dhs != 0u ? dhsv[o + k] + g : g;
            add_part(q0 + k * N, dpre, hsv[o + k], t == 0u);
        }
    }
    part[q0 + pc.H] = db;
}

// Samples spread over a 2-D grid when B passes the workgroup count limit.
uint sample_index()
{
    return gl_GlobalInvocationID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
}
#else
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

uint sample_index() { return gl_WorkGroupID.x; }
#endif

void main()
{
    if (pc.pass_id < 2u) {
        uint b = sample_index();
        if (b >= pc.B) return;
        if (pc.pass_id == 0u) forward(b);
        else backward(b);
    } else {
        // One invocation per parameter (h weights and the bias), summing over the batch.
        uint k = gl_GlobalInvocationID.x;
        if (k > pc.H) return;
        float acc = 0.0;
        for (uint b = 0; b < pc.B; b++) acc += part[b * (pc.H + 1) + k];
        dw[k] += acc;
    }
}
