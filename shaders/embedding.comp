#version 450
// Embedding lookup and its backward, deterministic without atomics.
//
//   embedding                 out[r, c] = table[ids[r], c]   (0 for an id >= vocab)
//   embedding_links           for each position i: next[i] = the next position j > i with
//                             the same id (NONE if none), and bit 31 set when i is the
//                             first position of its id. O(rows^2) comparisons, tiled
//                             through shared memory: rows = B*T is a few thousand.
//   embedding_links_texel     the same for CPU devices (lavapipe), where a shared-memory
//                             load is a loop over the SIMD lanes: ids read 4 at a time as
//                             RGBA32UI texels (one gather), each invocation owns 8 rows, and
//                             each step is branch-free min/select arithmetic (llvmpipe runs
//                             both sides of every branch).
//   embedding_backward        one invocation per (first position of an id, column): walks
//                             the id's positions in increasing order, summing d out, and
//                             adds the sum to d table[id, c]. Every table entry has one
//                             writer and a fixed summation order, so results are bitwise
//                             repeatable, and rows never written keep their values.
//! variant embedding_links -DLINKS=1
//! variant embedding_links_texel -DLINKS_TEXEL=1
//! variant embedding_backward -DBACKWARD=1
layout(local_size_x_id = 0) in;

const uint HEAD = 0x80000000u;
const uint NONE = 0x7fffffffu;

#if LINKS
layout(std430, set = 0, binding = 0) readonly buffer Ids { uint ids[]; };
layout(std430, set = 0, binding = 1) writeonly buffer Links { uint links[]; };

layout(push_constant) uniform Push { uint rows; } pc;

shared uint s_ids[gl_WorkGroupSize.x];

void main()
{
    uint t = gl_LocalInvocationID.x;
    uint i = gl_GlobalInvocationID.x;
    uint mine = i < pc.rows ? ids[i] : 0u;
    uint next = NONE;
    bool head = true;
    for (uint tile = 0u; tile < pc.rows; tile += gl_WorkGroupSize.x) {
        s_ids[t] = tile + t < pc.rows ? ids[tile + t] : 0u;
        barrier();
        uint n = min(gl_WorkGroupSize.x, pc.rows - tile);
        for (uint k = 0u; k < n; k++) {
            uint j = tile + k;
            if (s_ids[k] == mine) {
                if (j < i) head = false;
                else if (j > i && next == NONE) next = j;
            }
        }
        barrier();
    }
    if (i < pc.rows) links[i] = next | (head ? HEAD : 0u);
}

#elif LINKS_TEXEL
layout(set = 0, binding = 0) uniform usamplerBuffer tex_ids;  // 4 ids per texel
layout(std430, set = 0, binding = 1) writeonly buffer Links { uint links[]; };

layout(push_constant) uniform Push { uint rows; } pc;

uint id_at(uint j) { return texelFetch(tex_ids, int(j >> 2))[j & 3u]; }

// Rows i (lo: 4 rows, hi: 4 more) against the id x at position j: first = the first
// position holding each row's id, next = the first one after the row.
#define STEP(x, j) {                                                                        \
    uvec4 jv = uvec4(j), xv = uvec4(x);                                                   \
    uvec4 c_lo = mix(none, jv, equal(mine_lo, xv)), c_hi = mix(none, jv, equal(mine_hi, xv)); \
    first_lo = min(first_lo, c_lo);                                                        \
    first_hi = min(first_hi, c_hi);                                                        \
    next_lo = min(next_lo, mix(none, c_lo, greaterThan(c_lo, i_lo)));                     \
    next_hi = min(next_hi, mix(none, c_hi, greaterThan(c_hi, i_hi))); }

void main()
{
    // This invocation's rows: 8 of them, gl_WorkGroupSize.x apart.
    uint w = gl_WorkGroupSize.x, i0 = gl_WorkGroupID.x * 8u * w + gl_LocalInvocationID.x;
    uvec4 i_lo = uvec4(i0) + uvec4(0u, 1u, 2u, 3u) * w, i_hi = i_lo + 4u * w;
    uint last = pc.rows - 1u;
    uvec4 mine_lo = uvec4(id_at(min(i_lo.x, last)), id_at(min(i_lo.y, last)), id_at(min(i_lo.z, last)),
                          id_at(min(i_lo.w, last)));
    uvec4 mine_hi = uvec4(id_at(min(i_hi.x, last)), id_at(min(i_hi.y, last)), id_at(min(i_hi.z, last)),
                          id_at(min(i_hi.w, last)));
    uvec4 none = uvec4(NONE), first_lo = none, first_hi = none, next_lo = none, next_hi = none;
    uint full = pc.rows / 4u;
    for (uint t = 0u; t < full; t++) {
        uvec4 x = texelFetch(tex_ids, int(t));
        uint j = 4u * t;
        STEP(x.x, j) STEP(x.y, j + 1u) STEP(x.z, j + 2u) STEP(x.w, j + 3u)
    }
    for (uint j = 4u * full; j < pc.rows; j++) STEP(id_at(j), j)
    uvec4 head_lo = mix(uvec4(0u), uvec4(HEAD), equal(first_lo, i_lo));
    uvec4 head_hi = mix(uvec4(0u), uvec4(HEAD), equal(first_hi, i_hi));
    for (uint q = 0u; q < 4u; q++) {
        if (i_lo[q] < pc.rows) links[i_lo[q]] = next_lo[q] | head_lo[q];
        if (i_hi[q] < pc.rows) links[i_hi[q]] = next_hi[q] | head_hi[q];
    }
}

#else
// Lookup and backward: with VEC4 (CPU devices, dim % 4 == 0) an invocation takes 4
// columns, a vec4 per storage access: each access is a loop over the SIMD lanes on
// llvmpipe, whatever its width.
layout(constant_id = 1) const uint VEC4 = 0u;

layout(push_constant) uniform Push { uint rows; uint dim; uint vocab; } pc;

#if BACKWARD
layout(std430, set = 0, binding = 0) readonly buffer Ids { uint ids[]; };
layout(std430, set = 0, binding = 1) readonly buffer Links { uint links[]; };
layout(std430, set = 0, binding = 2) readonly buffer DOut { float dout[]; };
layout(std430, set = 0, binding = 3) buffer DTable { float dtable[]; };
layout(std430, set = 0, binding = 2) readonly buffer DOut4 { vec4 dout4[]; };
layout(std430, set = 0, binding = 3) buffer DTable4 { vec4 dtable4[]; };

void main()
{
    uint g = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    uint w = VEC4 != 0u ? pc.dim / 4u : pc.dim;   // elements (floats or vec4s) per row
    if (g >= pc.rows * w) return;
    uint i = g / w, c = g % w;
    uint link = links[i];
    uint id = ids[i];
    if ((link & HEAD) == 0u || id >= pc.vocab) return;
    if (VEC4 != 0u) {
        vec4 sum = vec4(0.0);
        for (uint j = i; j != NONE; j = links[j] & NONE) sum += dout4[j * w + c];
        dtable4[id * w + c] += sum;
    } else {
        float sum = 0.0;
        for (uint j = i; j != NONE; j = links[j] & NONE) sum += dout[j * w + c];
        dtable[id * w + c] += sum;
    }
}

#else
layout(std430, set = 0, binding = 0) readonly buffer Table { float table[]; };
layout(std430, set = 0, binding = 1) readonly buffer Ids { uint ids[]; };
layout(std430, set = 0, binding = 2) writeonly buffer Out { float outv[]; };
layout(std430, set = 0, binding = 0) readonly buffer Table4 { vec4 table4[]; };
layout(std430, set = 0, binding = 2) writeonly buffer Out4 { vec4 outv4[]; };

void main()
{
    uint g = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    uint w = VEC4 != 0u ? pc.dim / 4u : pc.dim;
    if (g >= pc.rows * w) return;
    uint r = g / w, c = g % w;
    uint id = ids[r];
    // Ids past the vocabulary read nothing (branches, not selects: no load may run there).
    if (VEC4 != 0u) {
        vec4 v = vec4(0.0);
        if (id < pc.vocab) v = table4[id * w + c];
        outv4[g] = v;
    } else {
        float v = 0.0;
        if (id < pc.vocab) v = table[id * w + c];
        outv[g] = v;
    }
}
#endif
#endif
