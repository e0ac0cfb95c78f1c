#version 450
// Embedding lookup and its backward, deterministic without atomics.
//
//   embedding                 out[r, c] = table[ids[r], c]   (0 for an id >= vocab)
//   embedding_links           for each position i: next[i] = the next position j > i with
//                             the same id (NONE if none), and bit 31 set when i is the
//                             first position of its id. O(rows^2) comparisons, tiled
//                             through shared memory: rows = B*T is a few thousand.
//   embedding_backward        one invocation per (first position of an id, column): walks
//                             the id's positions in increasing order, summing d out, and
//                             adds the sum to d table[id, c]. Every table entry has one
//                             writer and a fixed summation order, so results are bitwise
//                             repeatable, and rows never written keep their values.
//! variant embedding_links -DLINKS=1
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

#elif BACKWARD
layout(std430, set = 0, binding = 0) readonly buffer Ids { uint ids[]; };
layout(std430, set = 0, binding = 1) readonly buffer Links { uint links[]; };
layout(std430, set = 0, binding = 2) readonly buffer DOut { float dout[]; };
layout(std430, set = 0, binding = 3) buffer DTable { float dtable[]; };

layout(push_constant) uniform Push { uint rows; uint dim; uint vocab; } pc;

void main()
{
    uint g = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    if (g >= pc.rows * pc.dim) return;
    uint i = g / pc.dim, c = g % pc.dim;
    uint link = links[i];
    uint id = ids[i];
    if ((link & HEAD) == 0u || id >= pc.vocab) return;
    float sum = 0.0;
    for (uint j = i; j != NONE; j = links[j] & NONE) sum += dout[j * pc.dim + c];
    dtable[id * pc.dim + c] += sum;
}

#else
layout(std430, set = 0, binding = 0) readonly buffer Table { float table[]; };
layout(std430, set = 0, binding = 1) readonly buffer Ids { uint ids[]; };
layout(std430, set = 0, binding = 2) writeonly buffer Out { float outv[]; };

layout(push_constant) uniform Push { uint rows; uint dim; uint vocab; } pc;

void main()
{
    uint g = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    if (g >= pc.rows * pc.dim) return;
    uint r = g / pc.dim, c = g % pc.dim;
    uint id = ids[r];
    outv[g] = id < pc.vocab ? table[id * pc.dim + c] : 0.0;
}
#endif
