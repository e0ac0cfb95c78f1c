#version 450
// out[n] = beta * out[n] + sum_m in[m * ld + n]: the bias gradient of a linear layer
// (sum of dY over rows). One invocation per column, so neighbouring invocations read
// neighbouring words of each row; rows are few enough in this library's uses that the
// serial loop is not the bottleneck.
layout(local_size_x_id = 0) in;

layout(std430, set = 0, binding = 0) readonly buffer In { float x[]; };
layout(std430, set = 0, binding = 1) buffer Out { float y[]; };

layout(push_constant) uniform Push {
    uint rows, cols, ld;
    float beta;
} pc;

void main()
{
    uint n = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    if (n >= pc.cols) return;
    float s = 0.0;
    for (uint m = 0u; m < pc.rows; m++) s += x[m * pc.ld + n];
    y[n] = pc.beta == 0.0 ? s : pc.beta * y[n] + s;
}
