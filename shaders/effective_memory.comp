#version 450
// The ENN's effective memory E = M + alpha H (ENN-SPEC), M [N,h] a parameter, H the
// trace: [N,h] shared, or [B,N,h] per sample (copies = B, else 1).
//   op 0 (forward):  E[c,n,j] = M[n,j] + alpha H[c,n,j]
//   op 1 (backward): dM[n,j] = sum_c dE[c,n,j] (+ beta_dM dM),
//                    dH[c,n,j] = alpha dE[c,n,j] (+ beta_dH dH)
// One invocation per element of M; the copies are summed in order (deterministic).
layout(local_size_x_id = 0) in;

layout(std430, set = 0, binding = 0) readonly buffer In0 { float in0[]; };   // M | dE
layout(std430, set = 0, binding = 1) readonly buffer In1 { float in1[]; };   // H | (unused)
layout(std430, set = 0, binding = 2) buffer Out0 { float out0[]; };          // E | dM
layout(std430, set = 0, binding = 3) buffer Out1 { float out1[]; };          // (unused) | dH

layout(push_constant) uniform Push {
    uint nh;           // N*h
    uint copies;
    uint op;
    float alpha;
    float beta_dM;
    float beta_dH;
} pc;

void main()
{
    uint i = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    if (i >= pc.nh) return;
    if (pc.op == 0u) {
        float m = in0[i];
        for (uint c = 0u; c < pc.copies; c++) out0[c * pc.nh + i] = m + pc.alpha * in1[c * pc.nh + i];
        return;
    }
    float s = 0.0;
    for (uint c = 0u; c < pc.copies; c++) {
        uint k = c * pc.nh + i;
        float d = in0[k];
        s += d;
        float v = pc.alpha * d;
        out1[k] = pc.beta_dH != 0.0 ? v + pc.beta_dH * out1[k] : v;
    }
    out0[i] = pc.beta_dM != 0.0 ? s + pc.beta_dM * out0[i] : s;
}
