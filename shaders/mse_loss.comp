#version 450
// Mean squared error over all elements, and its gradient, in one workgroup:
//   loss = scale * sum_i (pred[i] - target[i])^2 / n     (Keras's mse: mean over outputs,
//   dpred[i] = scale * 2 (pred[i] - target[i]) / n         then over the batch = one mean)
// scale lets a caller average several calls (one per time step) into one mean.
layout(local_size_x_id = 0) in;

layout(std430, set = 0, binding = 0) readonly buffer Pred { float pred[]; };
layout(std430, set = 0, binding = 1) readonly buffer Target { float target[]; };
layout(std430, set = 0, binding = 2) writeonly buffer DPred { float dpred[]; };
layout(std430, set = 0, binding = 3) writeonly buffer Loss { float loss[]; };

layout(push_constant) uniform Push { uint n; float scale; } pc;

shared float red[gl_WorkGroupSize.x];

void main()
{
    uint lid = gl_LocalInvocationID.x;
    float inv_n = pc.scale / float(pc.n);
    float acc = 0.0;
    for (uint i = lid; i < pc.n; i += gl_WorkGroupSize.x) {
        float d = pred[i] - target[i];
        acc += d * d;
        dpred[i] = 2.0 * d * inv_n;
    }
    red[lid] = acc;
    barrier();
    for (uint s = gl_WorkGroupSize.x / 2; s > 0; s >>= 1) {
        if (lid < s) red[lid] += red[lid + s];
        barrier();
    }
    if (lid == 0) loss[0] = red[0] * inv_n;
}
