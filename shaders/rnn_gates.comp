#version 450
// The per-step gate nonlinearities of the LSTM and GRU baselines (Keras semantics), fused
// into one dispatch per step and direction. The matrix products (x W for all steps,
// h_{t-1} U inside the loop) are GEMMs; these kernels do everything elementwise that
// lies between them. One invocation per (row b < rows, unit j < units); gate blocks are
// packed along the row as Keras packs them: LSTM [i | f | c | o], GRU [z | r | h].
//
// rnn_gates (LSTM forward; bindings pre, c_prev, c, h):
//   pre [rows, 4u] = x W + b + h_{t-1} U, replaced by the gate activations (i, f, g, o)
//   i = sigmoid, f = sigmoid, g = tanh, o = sigmoid of their blocks
//   c = f c_prev + i g           h = o tanh(c)
// rnn_gates_lstm_backward (bindings act, c_prev, c, dh, dc, dpre):
//   dc [rows, u] holds dL/dc_t from the later steps on entry and dL/dc_{t-1} on exit
//   dc_t += dh o (1 - tanh(c)^2);  dpre = (dc g i(1-i), dc c_prev f(1-f), dc i (1-g^2),
//   dh tanh(c) o(1-o));  dc_{t-1} = dc_t f
// rnn_gates_gru_forward (reset_after; bindings xw, hu, h_prev, h):
//   xw [rows, 3u] = x W + b_input, replaced by (z, r, hh);  hu [rows, 3u] = h_{t-1} U + b_rec
//   z = sigmoid(xw_z + hu_z)   r = sigmoid(xw_r + hu_r)   hh = tanh(xw_h + r hu_h)
//   h = z h_prev + (1 - z) hh
// rnn_gates_gru_backward (bindings act, hu, h_prev, dh, dh_prev, dxw, dhu):
//   a = dh (1 - z) (1 - hh^2)  (the gradient of hh's pre-activation)
//   dxw = (dz', dr', a), dhu = (dz', dr', a r) with dz' = dh (h_prev - hh) z(1-z),
//   dr' = a hu_h r(1-r);  dh_prev += dh z  (the GEMM with U^T adds the rest)
//! variant rnn_gates_lstm_backward -DLSTM_BACKWARD=1
//! variant rnn_gates_gru_forward -DGRU_FORWARD=1
//! variant rnn_gates_gru_backward -DGRU_BACKWARD=1
layout(local_size_x_id = 0) in;

layout(push_constant) uniform Push {
    uint rows;
    uint units;
} pc;

#if LSTM_BACKWARD
layout(std430, set = 0, binding = 0) readonly buffer Act { float act[]; };
layout(std430, set = 0, binding = 1) readonly buffer CPrev { float c_prev[]; };
layout(std430, set = 0, binding = 2) readonly buffer C { float c[]; };
layout(std430, set = 0, binding = 3) readonly buffer DH { float dh[]; };
layout(std430, set = 0, binding = 4) buffer DC { float dc[]; };
layout(std430, set = 0, binding = 5) writeonly buffer DPre { float dpre[]; };
#elif GRU_FORWARD
layout(std430, set = 0, binding = 0) buffer XW { float xw[]; };
layout(std430, set = 0, binding = 1) readonly buffer HU { float hu[]; };
layout(std430, set = 0, binding = 2) readonly buffer HPrev { float h_prev[]; };
layout(std430, set = 0, binding = 3) writeonly buffer H { float h[]; };
#elif GRU_BACKWARD
layout(std430, set = 0, binding = 0) readonly buffer Act { float act[]; };
layout(std430, set = 0, binding = 1) readonly buffer HU { float hu[]; };
layout(std430, set = 0, binding = 2) readonly buffer HPrev { float h_prev[]; };
layout(std430, set = 0, binding = 3) readonly buffer DH { float dh[]; };
layout(std430, set = 0, binding = 4) buffer DHPrev { float dh_prev[]; };
layout(std430, set = 0, binding = 5) writeonly buffer DXW { float dxw[]; };
layout(std430, set = 0, binding = 6) writeonly buffer DHU { float dhu[]; };
#else
layout(std430, set = 0, binding = 0) buffer Pre { float pre[]; };
layout(std430, set = 0, binding = 1) readonly buffer CPrev { float c_prev[]; };
layout(std430, set = 0, binding = 2) writeonly buffer C { float c[]; };
layout(std430, set = 0, binding = 3) writeonly buffer H { float h[]; };
#endif

// tanh without overflow for large |x| and without the cancellation of 1 - exp(-2|x|)
// near 0 (the odd Taylor series to x^7 is exact to float precision for |x| < 0.1).
float stable_tanh(float v)
{
    float s = abs(v);
    float t;
    if (s < 0.1) {
        float s2 = s * s;
        t = s * (1.0 + s2 * (-1.0 / 3.0 + s2 * (2.0 / 15.0 + s2 * (-17.0 / 315.0))));
    } else {
        float e = exp(-2.0 * s);
        t = (1.0 - e) / (1.0 + e);
    }
    return v < 0.0 ? -t : t;
}

// exp of a non-positive number only, so it never overflows.
float stable_sigmoid(float v)
{
    if (v >= 0.0) return 1.0 / (1.0 + exp(-v));
    float e = exp(v);
    return e / (1.0 + e);
}

void main()
{
    uint idx = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    uint u = pc.units;
    if (idx >= pc.rows * u) return;
    uint b = idx / u, j = idx % u;
#if LSTM_BACKWARD
    uint g0 = b * 4u * u + j;
    float i = act[g0], f = act[g0 + u], g = act[g0 + 2u * u], o = act[g0 + 3u * u];
    float tc = stable_tanh(c[idx]);
    float dhv = dh[idx];
    float dct = dc[idx] + dhv * o * ((1.0 - tc) * (1.0 + tc));
    dpre[g0] = dct * g * i * (1.0 - i);
    dpre[g0 + u] = dct * c_prev[idx] * f * (1.0 - f);
    dpre[g0 + 2u * u] = dct * i * ((1.0 - g) * (1.0 + g));
    dpre[g0 + 3u * u] = dhv * tc * o * (1.0 - o);
    dc[idx] = dct * f;
#elif GRU_FORWARD
    uint g0 = b * 3u * u + j;
    float z = stable_sigmoid(xw[g0] + hu[g0]);
    float r = stable_sigmoid(xw[g0 + u] + hu[g0 + u]);
    float hh = stable_tanh(xw[g0 + 2u * u] + r * hu[g0 + 2u * u]);
    h[idx] = z * h_prev[idx] + (1.0 - z) * hh;
    xw[g0] = z;
    xw[g0 + u] = r;
    xw[g0 + 2u * u] = hh;
#elif GRU_BACKWARD
    uint g0 = b * 3u * u + j;
    float z = act[g0], r = act[g0 + u], hh = act[g0 + 2u * u];
    float dhv = dh[idx];
    float a = dhv * (1.0 - z) * ((1.0 - hh) * (1.0 + hh));
    float dz = dhv * (h_prev[idx] - hh) * z * (1.0 - z);
    float dr = a * hu[g0 + 2u * u] * r * (1.0 - r);
    dxw[g0] = dz;
    dxw[g0 + u] = dr;
    dxw[g0 + 2u * u] = a;
    dhu[g0] = dz;
    dhu[g0 + u] = dr;
    dhu[g0 + 2u * u] = a * r;
    dh_prev[idx] += dhv * z;
#else
    uint g0 = b * 4u * u + j;
    float i = stable_sigmoid(pre[g0]);
    float f = stable_sigmoid(pre[g0 + u]);
    float g = stable_tanh(pre[g0 + 2u * u]);
    float o = stable_sigmoid(pre[g0 + 3u * u]);
    float cv = f * c_prev[idx] + i * g;
    c[idx] = cv;
    h[idx] = o * stable_tanh(cv);
    pre[g0] = i;
    pre[g0 + u] = f;
    pre[g0 + 2u * u] = g;
    pre[g0 + 3u * u] = o;
#endif
}
