#version 450
// Concatenation and split along the feature (last) axis, as a strided copy of a
// [rows, cols] block between two row-major matrices:
//   dst[r, dst_col + c] = alpha * src[r, src_col + c] + beta * dst[r, dst_col + c]
// (beta = 0 writes without reading). Concat copies each part into its column range of
// the output; split (concat's backward) copies each column range back out.
// Strides and columns count floats.
layout(local_size_x_id = 0) in;

layout(std430, set = 0, binding = 0) readonly buffer Src { float src[]; };
layout(std430, set = 0, binding = 1) buffer Dst { float dst[]; };

layout(push_constant) uniform Push {
    uint rows;
    uint cols;
    uint src_stride;
    uint src_col;
    uint dst_stride;
    uint dst_col;
    float alpha;
    float beta;
} pc;

void main()
{
    uint i = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    if (i >= pc.rows * pc.cols) return;
    uint r = i / pc.cols, c = i % pc.cols;
    float v = pc.alpha * src[r * pc.src_stride + pc.src_col + c];
    uint d = r * pc.dst_stride + pc.dst_col + c;
    dst[d] = pc.beta == 0.0 ? v : v + pc.beta * dst[d];
}
