#version 450
// Elementwise kernels over flat float arrays, one op per dispatch (chosen by push
// constant so one pipeline serves them all):
//   y[i] = alpha * x[i] + beta * y[i]          op 0 (axpby; beta = 0 writes y without reading)
layout(local_size_x_id = 0) in;

layout(std430, set = 0, binding = 0) readonly buffer X { float x[]; };
layout(std430, set = 0, binding = 1) buffer Y { float y[]; };

layout(push_constant) uniform Push {
    uint n;
    uint op;
    float alpha;
    float beta;
} pc;

void main()
{
    // A 2-D grid lets n exceed 65535 workgroups in x.
    uint i = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    if (i >= pc.n) return;
    if (pc.op == 0u) y[i] = pc.beta == 0.0 ? pc.alpha * x[i] : pc.alpha * x[i] + pc.beta * y[i];
}
