#version 450
// Sums, each in a fixed order (shared-memory trees), so results are bitwise repeatable.
//
//   reduce (rows)     out[c] = alpha * sum_r x[r, c] + beta * out[c]    x [rows, cols]
//                     A workgroup owns local_size_x columns; its local_size_y lanes
//                     stride over the rows, then a tree adds the lanes.
//   reduce_rows_texel the same sums on CPU devices: x as vec4 texels, which llvmpipe
//                     gathers (a storage load is a loop over the lanes there); one
//                     invocation per 4 columns, over every row (4 interleaved partial
//                     sums, added in a fixed order).
//   reduce_cols       out[row0 + r] = alpha * sum_c x[r, c] + beta * out[row0 + r]
//                     One workgroup per row, strided over the columns.
//   reduce_sumsq_partial   sum of squares of each chunk of a parameter table (or of one
//                     flat range when tensor_count is 0): partials[chunk]. Chunks
//                     [chunk_base, total_chunks) in one dispatch, x bound from float
//                     elem_base on (a window, when x is larger than one binding may be).
//   reduce_sumsq_partial_texel  the same on CPU devices, where every tensor starts on a
//                     vec4: x read as RGBA32F texels, 4 floats per step into 4 running
//                     sums, then the chunk's last 1-3 floats; a workgroup of 8 (the
//                     tree's shared-memory accesses are loops over the lanes there).
//   reduce_sumsq_final     per tensor: out[k] = sum of its chunks' partials (sqrt'ed
//                     when take_sqrt), one workgroup per tensor.
// elem_offset: where the matrix starts inside its binding (rows are bound a chunk at a
// time when the matrix is larger than one binding may be).
//! variant reduce_cols -DCOLS=1
//! variant reduce_rows_texel -DROWS_TEXEL=1
//! variant reduce_sumsq_partial -DSUMSQ_PARTIAL=1
//! variant reduce_sumsq_partial_texel -DSUMSQ_PARTIAL=1 -DTEXEL=1
//! variant reduce_sumsq_final -DSUMSQ_FINAL=1
#extension GL_GOOGLE_include_directive : require
layout(local_size_x_id = 0, local_size_y_id = 1) in;

#if SUMSQ_PARTIAL || SUMSQ_FINAL
layout(std430, set = 0, binding = 0) readonly buffer Table { uint table[]; };
#include "param_table.glsl"

layout(push_constant) uniform Push {
    uint chunk_elems;
    uint tensor_count;   // 0: one flat range of flat_count floats, no table
    uint total_chunks;
    uint flat_count;
    uint take_sqrt;
    uint chunk_base;     // partial: the first chunk of this dispatch
    uint elem_base;      // partial: the float of the flat buffer that x's binding starts at
} pc;

shared float s_sum[gl_WorkGroupSize.x];
#endif

#if SUMSQ_PARTIAL
#if TEXEL
layout(set = 0, binding = 1) uniform samplerBuffer tex_x;
#else
layout(std430, set = 0, binding = 1) readonly buffer X { float x[]; };
#endif
layout(std430, set = 0, binding = 2) writeonly buffer Partials { float partials[]; };

void main()
{
    uint t = gl_LocalInvocationID.x;
    uint w = pc.chunk_base + gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
    if (w >= pc.total_chunks) return;
    uint offset = 0u, count = pc.flat_count, first = 0u;
    if (pc.tensor_count > 0u) {
        uint k = table_tensor_of_chunk(w, pc.tensor_count);
        offset = table[4u * k];
        count = table[4u * k + 1u];
        first = table[4u * k + 2u];
    }
    uint begin = (w - first) * pc.chunk_elems;
    uint end = min(count, begin + pc.chunk_elems);
    float s = 0.0;
#if TEXEL
    // offset, elem_base and chunk_elems are multiples of 4: texel q holds floats 4q..4q+3.
    uint base = offset - pc.elem_base, vec_end = begin + (end - begin) / 4u * 4u;
    vec4 s4 = vec4(0.0);  // 4 running sums: each adds a quarter of the lane's squares
    for (uint i = begin + 4u * t; i < vec_end; i += 4u * gl_WorkGroupSize.x) {
        vec4 v = texelFetch(tex_x, int((base + i) / 4u));
        s4 += v * v;
    }
    s = (s4.x + s4.y) + (s4.z + s4.w);
    for (uint i = vec_end + t; i < end; i += gl_WorkGroupSize.x) {
        float v = texelFetch(tex_x, int((base + i) / 4u))[(base + i) % 4u];
        s += v * v;
    }
#else
    for (uint i = begin + t; i < end; i += gl_WorkGroupSize.x) {
        float v = x[offset + i - pc.elem_base];
        s += v * v;
    }
#endif
    s_sum[t] = s;
    barrier();
    for (uint stride = gl_WorkGroupSize.x / 2u; stride > 0u; stride /= 2u) {
        if (t < stride) s_sum[t] += s_sum[t + stride];
        barrier();
    }
    if (t == 0u) partials[w] = s_sum[0];
}

#elif SUMSQ_FINAL
layout(std430, set = 0, binding = 1) readonly buffer Partials { float partials[]; };
layout(std430, set = 0, binding = 2) writeonly buffer Out { float outv[]; };

void main()
{
    uint t = gl_LocalInvocationID.x;
    uint k = gl_WorkGroupID.x;
    uint first = 0u, chunks = pc.total_chunks;
    if (pc.tensor_count > 0u) {
        first = table[4u * k + 2u];
        chunks = (table[4u * k + 1u] + pc.chunk_elems - 1u) / pc.chunk_elems;
    }
    float s = 0.0;
    for (uint i = t; i < chunks; i += gl_WorkGroupSize.x) s += partials[first + i];
    s_sum[t] = s;
    barrier();
    for (uint stride = gl_WorkGroupSize.x / 2u; stride > 0u; stride /= 2u) {
        if (t < stride) s_sum[t] += s_sum[t + stride];
        barrier();
    }
    if (t == 0u) outv[k] = pc.take_sqrt != 0u ? sqrt(s_sum[0]) : s_sum[0];
}

#elif ROWS_TEXEL
layout(set = 0, binding = 0) uniform samplerBuffer tex_x;   // vec4s; elem_offset % 4 == 0
layout(std430, set = 0, binding = 1) buffer Out { float outv[]; };

layout(push_constant) uniform Push {
    uint rows;          // in this chunk
    uint cols;          // a multiple of 4
    uint elem_offset;
    uint pad;
    float alpha;
    float beta;
} pc;

void main()
{
    uint g = gl_GlobalInvocationID.x, groups = pc.cols / 4u;
    if (g >= groups) return;
    uint at = pc.elem_offset / 4u + g;
    vec4 s0 = vec4(0.0), s1 = vec4(0.0), s2 = vec4(0.0), s3 = vec4(0.0);
    uint r = 0u;
    for (; r + 4u <= pc.rows; r += 4u) {
        s0 += texelFetch(tex_x, int(at + r * groups));
        s1 += texelFetch(tex_x, int(at + (r + 1u) * groups));
        s2 += texelFetch(tex_x, int(at + (r + 2u) * groups));
        s3 += texelFetch(tex_x, int(at + (r + 3u) * groups));
    }
    for (; r < pc.rows; r++) s0 += texelFetch(tex_x, int(at + r * groups));
    vec4 s = (s0 + s1) + (s2 + s3);
    for (uint i = 0u; i < 4u; i++) {
        uint c = 4u * g + i;
        outv[c] = pc.beta == 0.0 ? pc.alpha * s[i] : pc.alpha * s[i] + pc.beta * outv[c];
    }
}

#elif COLS
layout(std430, set = 0, binding = 0) readonly buffer X { float x[]; };
layout(std430, set = 0, binding = 1) buffer Out { float outv[]; };

layout(push_constant) uniform Push {
    uint rows;          // in this chunk
    uint cols;
    uint elem_offset;
    uint row0;
    float alpha;
    float beta;
} pc;

shared float s_sum[gl_WorkGroupSize.x];

void main()
{
    uint t = gl_LocalInvocationID.x;
    uint r = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
    if (r >= pc.rows) return;  // uniform across the workgroup
    uint base = pc.elem_offset + r * pc.cols;
    float s = 0.0;
    for (uint c = t; c < pc.cols; c += gl_WorkGroupSize.x) s += x[base + c];
    s_sum[t] = s;
    barrier();
    for (uint stride = gl_WorkGroupSize.x / 2u; stride > 0u; stride /= 2u) {
        if (t < stride) s_sum[t] += s_sum[t + stride];
        barrier();
    }
    if (t == 0u) {
        uint o = pc.row0 + r;
        outv[o] = pc.beta == 0.0 ? pc.alpha * s_sum[0] : pc.alpha * s_sum[0] + pc.beta * outv[o];
    }
}

#else
layout(std430, set = 0, binding = 0) readonly buffer X { float x[]; };
layout(std430, set = 0, binding = 1) buffer Out { float outv[]; };

layout(push_constant) uniform Push {
    uint rows;          // in this chunk
    uint cols;
    uint elem_offset;
    uint pad;
    float alpha;
    float beta;
} pc;

shared float s_sum[gl_WorkGroupSize.y][gl_WorkGroupSize.x];

void main()
{
    uint cx = gl_LocalInvocationID.x, ry = gl_LocalInvocationID.y;
    uint c = gl_WorkGroupID.x * gl_WorkGroupSize.x + cx;
    float s = 0.0;
    if (c < pc.cols)
        for (uint r = ry; r < pc.rows; r += gl_WorkGroupSize.y) s += x[pc.elem_offset + r * pc.cols + c];
    s_sum[ry][cx] = s;
    barrier();
    for (uint stride = gl_WorkGroupSize.y / 2u; stride > 0u; stride /= 2u) {
        if (ry < stride) s_sum[ry][cx] += s_sum[ry + stride][cx];
        barrier();
    }
    if (ry == 0u && c < pc.cols)
        outv[c] = pc.beta == 0.0 ? pc.alpha * s_sum[0][cx] : pc.alpha * s_sum[0][cx] + pc.beta * outv[c];
}
#endif
