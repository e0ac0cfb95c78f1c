#version 450
// Softmax cross-entropy over rows of logits [rows, V] with integer labels, fused: no
// probability matrix is ever stored. Three kernels, one per build of this file:
//
//   softmax_cross_entropy            (rows) one workgroup per row: a strided pass over V
//       keeps a running max and a rescaled sum of exponentials (online softmax), then a
//       shared-memory tree combines the threads' (max, sum, argmax). Writes per row
//       loss = (max - x[label]) + log(sum), lse = max + log(sum), pred = argmax
//       (lowest index on ties). Ignored rows (label == ignore) get loss 0.
//   softmax_cross_entropy_stats      (one workgroup) sums the losses of the counted rows
//       in a fixed order and writes {mean, sum, count, correct, invalid}. A row counts
//       when its label is < V and not the ignore index; a label >= V that is not the
//       ignore index is "invalid" (treated as ignored, and counted so the host can tell).
//   softmax_cross_entropy_backward   d logits[r, v] = scale * (exp(x - lse[r]) - [v == label]) / count,
//       0 on rows that do not count and everywhere when count is 0. One workgroup per
//       (block of 4 * local size classes, row). The _inplace variant writes over the logits.
//
// CPU devices (lavapipe runs a workgroup's invocations as loops over SIMD lanes and each
// invocation costs ~10 ns before it does anything, so these kernels give every invocation
// a long run of work; logits are read as vec4 texels, which llvmpipe gathers):
//   softmax_cross_entropy_backward_runs     invocation j owns vec4s [j * per_invocation,
//       (j + 1) * per_invocation) of the chunk as one flat range of rows * V floats (a row
//       boundary may fall inside a vec4); the owner of the last partial vec4 finishes it
//       with scalars. dlogits may be the logits' memory (binding 4 aliases binding 0).
//   softmax_cross_entropy_rows_cpu          (V % 4 == 0) the forward's rows kernel with one
//       row per invocation (no shared memory, no barriers): an online pass over the row's
//       vec4 texels, two per step (one rescale per 8 logits).
//   softmax_cross_entropy_backward_columns  (V % 4 == 0) invocation c owns columns 4c..4c+3
//       of every row of the chunk and also adds their sum to dbias (the output layer's bias
//       gradient), which saves a pass over dlogits. A row's label and lse are the same for
//       every lane, so they load once per row.
//
// Logits are bound a chunk of rows at a time (a binding may cover at most
// maxStorageBufferRange bytes); elem_offset is where the chunk's first row starts inside
// its binding and row0 its index among all rows (for labels, loss, lse, pred).
//! variant softmax_cross_entropy_stats -DSTATS=1
//! variant softmax_cross_entropy_backward -DBACKWARD=1
//! variant softmax_cross_entropy_backward_inplace -DBACKWARD=1 -DIN_PLACE=1
//! variant softmax_cross_entropy_backward_runs -DBACKWARD=1 -DCPU_RUNS=1
//! variant softmax_cross_entropy_backward_columns -DBACKWARD=1 -DCPU_COLUMNS=1
//! variant softmax_cross_entropy_rows_cpu -DROWS_CPU=1
layout(local_size_x_id = 0) in;

#if STATS
layout(std430, set = 0, binding = 0) readonly buffer Labels { uint labels[]; };
layout(std430, set = 0, binding = 1) readonly buffer Loss { float loss[]; };
layout(std430, set = 0, binding = 2) readonly buffer Pred { uint pred[]; };
layout(std430, set = 0, binding = 3) writeonly buffer Stats {
    float mean_loss;
    float sum_loss;
    uint count;
    uint correct;
    uint invalid;
} stats;

layout(push_constant) uniform Push {
    uint rows;
    uint classes;
    uint ignore_index;
} pc;

shared float s_sum[gl_WorkGroupSize.x];
shared uint s_count[gl_WorkGroupSize.x];
shared uint s_correct[gl_WorkGroupSize.x];
shared uint s_invalid[gl_WorkGroupSize.x];

void main()
{
    uint t = gl_LocalInvocationID.x;
    float sum = 0.0;
    uint count = 0u, correct = 0u, invalid = 0u;
    for (uint r = t; r < pc.rows; r += gl_WorkGroupSize.x) {
        uint label = labels[r];
        if (label == pc.ignore_index) continue;
        if (label >= pc.classes) { invalid++; continue; }
        sum += loss[r];
        count++;
        if (pred[r] == label) correct++;
    }
    s_sum[t] = sum;
    s_count[t] = count;
    s_correct[t] = correct;
    s_invalid[t] = invalid;
    barrier();
    for (uint stride = gl_WorkGroupSize.x / 2u; stride > 0u; stride /= 2u) {
        if (t < stride) {
            s_sum[t] += s_sum[t + stride];
            s_count[t] += s_count[t + stride];
            s_correct[t] += s_correct[t + stride];
            s_invalid[t] += s_invalid[t + stride];
        }
        barrier();
    }
    if (t == 0u) {
        stats.sum_loss = s_sum[0];
        stats.count = s_count[0];
        stats.mean_loss = s_count[0] > 0u ? s_sum[0] / float(s_count[0]) : 0.0;
        stats.correct = s_correct[0];
        stats.invalid = s_invalid[0];
    }
}

#elif ROWS_CPU
layout(set = 0, binding = 0) uniform samplerBuffer tex_logits;  // vec4 texels
layout(std430, set = 0, binding = 1) readonly buffer Labels { uint labels[]; };
layout(std430, set = 0, binding = 2) writeonly buffer Loss { float loss[]; };
layout(std430, set = 0, binding = 3) writeonly buffer Lse { float lse[]; };
layout(std430, set = 0, binding = 4) writeonly buffer Pred { uint pred[]; };

layout(push_constant) uniform Push {
    uint rows;          // in this chunk
    uint classes;       // a multiple of 4
    uint ignore_index;
    uint row0;
    uint elem_offset;   // of the chunk's first logit in the logits binding (a multiple of 4)
} pc;

// The first of the 4 lanes of x equal to mx (one of them is).
uint first_of(vec4 x, float mx)
{
    return x.x == mx ? 0u : x.y == mx ? 1u : x.z == mx ? 2u : 3u;
}

void main()
{
    uint r = gl_GlobalInvocationID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    if (r >= pc.rows) return;
    uint vecs = pc.classes / 4u, base = pc.elem_offset / 4u + r * vecs;
    // Running max m (first index where reached: arg) and sum s of exp(x - m), over two
    // texels per step: their max rescales s once (exp runs under a mask in every step on
    // llvmpipe, so one rescale per 8 logits rather than per logit).
    float m = -1.0 / 0.0, s = 0.0;
    uint arg = 0xffffffffu, q = 0u;
    for (; q + 1u < vecs; q += 2u) {
        vec4 x0 = texelFetch(tex_logits, int(base + q)), x1 = texelFetch(tex_logits, int(base + q + 1u));
        float m0 = max(max(x0.x, x0.y), max(x0.z, x0.w)), m1 = max(max(x1.x, x1.y), max(x1.z, x1.w));
        float mx = max(m0, m1);
        if (mx > m) {
            s *= exp(m - mx);  // 0 * exp(-inf) = 0 on the first step
            m = mx;
            arg = m0 == mx ? 4u * q + first_of(x0, mx) : 4u * q + 4u + first_of(x1, mx);
        }
        vec4 e = exp(x0 - m) + exp(x1 - m);
        s += (e.x + e.y) + (e.z + e.w);
    }
    if (q < vecs) {  // an odd number of texels: the last one
        vec4 x0 = texelFetch(tex_logits, int(base + q));
        float mx = max(max(x0.x, x0.y), max(x0.z, x0.w));
        if (mx > m) {
            s *= exp(m - mx);
            m = mx;
            arg = 4u * q + first_of(x0, mx);
        }
        vec4 e = exp(x0 - m);
        s += (e.x + e.y) + (e.z + e.w);
    }
    float logsum = log(s);
    uint label = labels[pc.row0 + r];
    bool counted = label != pc.ignore_index && label < pc.classes;
    // (max - x[label]) + log(sum), as the rows kernel (exact difference of close logits).
    float x_label = counted ? texelFetch(tex_logits, int(base + label / 4u))[label % 4u] : 0.0;
    loss[pc.row0 + r] = counted ? (m - x_label) + logsum : 0.0;
    lse[pc.row0 + r] = m + logsum;
    pred[pc.row0 + r] = arg;
}

#elif BACKWARD && (CPU_RUNS || CPU_COLUMNS)
layout(set = 0, binding = 0) uniform samplerBuffer tex_logits;  // vec4 texels
// Labels and lse as texels of 4 rows each: every invocation loads every row's (the column
// kernel), and one fetch per 4 rows costs less than one storage-buffer load per row, a
// loop over the lanes on llvmpipe (the LM head's backward spent ~40% of its time there).
layout(set = 0, binding = 1) uniform usamplerBuffer tex_labels;
layout(set = 0, binding = 2) uniform samplerBuffer tex_lse;
layout(std430, set = 0, binding = 3) readonly buffer Stats {
    float mean_loss;
    float sum_loss;
    uint count;
    uint correct;
    uint invalid;
} stats;
layout(std430, set = 0, binding = 4) writeonly buffer DLogits { float dlogits[]; };
layout(std430, set = 0, binding = 4) writeonly buffer DLogits4 { vec4 dlogits4[]; };
#if CPU_COLUMNS
layout(std430, set = 0, binding = 5) buffer DBias4 { vec4 dbias4[]; };
#endif

layout(push_constant) uniform Push {
    uint rows;            // in this chunk
    uint classes;
    uint ignore_index;
    uint row0;
    uint elem_offset;     // of the chunk's first logit in the logits binding (a multiple of 4)
    uint out_offset;      // of the chunk's first gradient in the dlogits binding (a multiple of 4)
    float scale;
    uint per_invocation;  // _runs: vec4s per invocation
} pc;

// What a row's gradients need: its label, its lse and scale / count (0 on rows that do not count).
struct RowInfo {
    uint label;
    float lse;
    float factor;
};

RowInfo row_info_of(uint label, float row_lse, uint count)
{
    RowInfo ri;
    ri.label = label;
    ri.lse = row_lse;
    bool counted = label != pc.ignore_index && label < pc.classes && count > 0u;
    ri.factor = counted ? pc.scale / float(count) : 0.0;
    return ri;
}

RowInfo row_info(uint r, uint count)
{
    uint i = pc.row0 + r;
    return row_info_of(texelFetch(tex_labels, int(i / 4u))[i % 4u], texelFetch(tex_lse, int(i / 4u))[i % 4u], count);
}

float grad(float x, uint v, RowInfo ri)
{
    if (ri.factor == 0.0) return 0.0;
    float p = exp(x - ri.lse);
    return (v == ri.label ? p - 1.0 : p) * ri.factor;
}

#if CPU_RUNS
void main()
{
    uint j = gl_GlobalInvocationID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    uint total = pc.rows * pc.classes;
    uint full = total / 4u;  // whole vec4s; the total % 4 floats after them go to the owner of vec4 `full`
    uint q0 = j * pc.per_invocation;
    if (q0 > full || (q0 == full && total % 4u == 0u)) return;
    uint q1 = min(q0 + pc.per_invocation, full);
    uint count = stats.count;
    // One division finds the run's first row; after that the row advances by counting.
    uint r = 4u * q0 / pc.classes, v = 4u * q0 - r * pc.classes;
    RowInfo ri = row_info(r, count);
    uint in0 = pc.elem_offset / 4u, out0 = pc.out_offset / 4u;
    for (uint q = q0; q < q1; q++) {
        vec4 x = texelFetch(tex_logits, int(in0 + q));
        vec4 g;
        for (uint c = 0u; c < 4u; c++, v++) {
            if (v == pc.classes) { r++; v = 0u; ri = row_info(r, count); }
            g[c] = grad(x[c], v, ri);
        }
        dlogits4[out0 + q] = g;
    }
    if (q1 < full) return;
    for (uint i = 4u * full; i < total; i++, v++) {
        if (v == pc.classes) { r++; v = 0u; ri = row_info(r, count); }
        dlogits[pc.out_offset + i] = grad(texelFetch(tex_logits, int(in0 + i / 4u))[i % 4u], v, ri);
    }
}
#else
// Row r's gradients in columns 4c .. 4c+3, added to sum.
void column_row(RowInfo ri, uint r, uint c, uint vecs, uint in0, uint out0, inout vec4 sum)
{
    vec4 g = vec4(0.0);
    if (ri.factor != 0.0) {
        g = exp(texelFetch(tex_logits, int(in0 + r * vecs + c)) - ri.lse);
        uint k = ri.label - 4u * c;  // the label's lane in this vec4, if it falls here
        if (k < 4u) g[k] -= 1.0;
        g *= ri.factor;
    }
    dlogits4[out0 + r * vecs + c] = g;
    sum += g;
}

void main()
{
    uint c = gl_GlobalInvocationID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    uint vecs = pc.classes / 4u;
    if (c >= vecs) return;
    uint count = stats.count;
    uint in0 = pc.elem_offset / 4u, out0 = pc.out_offset / 4u;
    vec4 sum = vec4(0.0);
    // Rows one by one up to a multiple of 4 of the whole rows, then 4 per texel of
    // labels and lse, then the last few.
    uint r = 0u, lead = min((4u - pc.row0 % 4u) % 4u, pc.rows);
    for (; r < lead; r++) column_row(row_info(r, count), r, c, vecs, in0, out0, sum);
    for (; r + 4u <= pc.rows; r += 4u) {
        uint g = (pc.row0 + r) / 4u;
        uvec4 label = texelFetch(tex_labels, int(g));
        vec4 row_lse = texelFetch(tex_lse, int(g));
        column_row(row_info_of(label.x, row_lse.x, count), r, c, vecs, in0, out0, sum);
        column_row(row_info_of(label.y, row_lse.y, count), r + 1u, c, vecs, in0, out0, sum);
        column_row(row_info_of(label.z, row_lse.z, count), r + 2u, c, vecs, in0, out0, sum);
        column_row(row_info_of(label.w, row_lse.w, count), r + 3u, c, vecs, in0, out0, sum);
    }
    for (; r < pc.rows; r++) column_row(row_info(r, count), r, c, vecs, in0, out0, sum);
    dbias4[c] += sum;
}
#endif

#elif BACKWARD
#if IN_PLACE
layout(std430, set = 0, binding = 0) buffer Logits { float logits[]; };
#else
layout(std430, set = 0, binding = 0) readonly buffer Logits { float logits[]; };
#endif
layout(std430, set = 0, binding = 1) readonly buffer Labels { uint labels[]; };
layout(std430, set = 0, binding = 2) readonly buffer Lse { float lse[]; };
layout(std430, set = 0, binding = 3) readonly buffer Stats {
    float mean_loss;
    float sum_loss;
    uint count;
    uint correct;
    uint invalid;
} stats;
#if !IN_PLACE
layout(std430, set = 0, binding = 4) writeonly buffer DLogits { float dlogits[]; };
#endif

layout(push_constant) uniform Push {
    uint rows;          // in this chunk
    uint classes;
    uint ignore_index;
    uint row0;
    uint elem_offset;   // of the chunk's first logit in the logits binding
    uint out_offset;    // of the chunk's first gradient in the dlogits binding
    float scale;        // d loss / d mean loss (1 for plain training)
} pc;

// Each invocation writes PER_THREAD gradients of its row, strided by the workgroup size
// (coalesced), so the row's label, lse and the count are loaded once per four.
const uint PER_THREAD = 4u;

void main()
{
    uint r = gl_WorkGroupID.y;
    if (r >= pc.rows) return;
    uint label = labels[pc.row0 + r];
    uint count = stats.count;
    bool counted = label != pc.ignore_index && label < pc.classes && count > 0u;
    float row_lse = lse[pc.row0 + r];
    float factor = counted ? pc.scale / float(count) : 0.0;
    uint first = gl_WorkGroupID.x * gl_WorkGroupSize.x * PER_THREAD + gl_LocalInvocationID.x;
    for (uint k = 0u; k < PER_THREAD; k++) {
        uint v = first + k * gl_WorkGroupSize.x;
        if (v >= pc.classes) break;
        uint at = r * pc.classes + v;
        float g = 0.0;
        if (counted) {
            float p = exp(logits[pc.elem_offset + at] - row_lse);
            g = (v == label ? p - 1.0 : p) * factor;
        }
#if IN_PLACE
        logits[pc.elem_offset + at] = g;
#else
        dlogits[pc.out_offset + at] = g;
#endif
    }
}

#else
layout(std430, set = 0, binding = 0) readonly buffer Logits { float logits[]; };
layout(std430, set = 0, binding = 1) readonly buffer Labels { uint labels[]; };
layout(std430, set = 0, binding = 2) writeonly buffer Loss { float loss[]; };
layout(std430, set = 0, binding = 3) writeonly buffer Lse { float lse[]; };
layout(std430, set = 0, binding = 4) writeonly buffer Pred { uint pred[]; };

layout(push_constant) uniform Push {
    uint rows;          // in this chunk
    uint classes;
    uint ignore_index;
    uint row0;
    uint elem_offset;
} pc;

shared float s_max[gl_WorkGroupSize.x];
shared float s_sum[gl_WorkGroupSize.x];
shared uint s_arg[gl_WorkGroupSize.x];

void main()
{
    uint t = gl_LocalInvocationID.x;
    uint r = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
    if (r >= pc.rows) return;  // uniform across the workgroup, so no barrier is skipped by part of it
    uint base = pc.elem_offset + r * pc.classes;
    // Running max m (first index where reached: arg) and sum of exp(x - m).
    // Four logits per iteration (v, v + L, v + 2L, v + 3L): independent loads in flight and
    // one rescale of s per four, instead of a chain of dependent exp per logit.
    float m = -1.0 / 0.0, s = 0.0;
    uint arg = 0xffffffffu;
    const uint L = gl_WorkGroupSize.x;
    uint v = t;
    for (; v + 3u * L < pc.classes; v += 4u * L) {
        float x0 = logits[base + v], x1 = logits[base + v + L];
        float x2 = logits[base + v + 2u * L], x3 = logits[base + v + 3u * L];
        // the first index of the largest of the four (indices increase with k)
        float mx = x0;
        uint ax = v;
        if (x1 > mx) { mx = x1; ax = v + L; }
        if (x2 > mx) { mx = x2; ax = v + 2u * L; }
        if (x3 > mx) { mx = x3; ax = v + 3u * L; }
        if (mx > m) {
            s *= exp(m - mx);  // 0 * exp(-inf) = 0 on the first iteration
            m = mx;
            arg = ax;
        }
        s += (exp(x0 - m) + exp(x1 - m)) + (exp(x2 - m) + exp(x3 - m));
    }
    for (; v < pc.classes; v += L) {
        float x = logits[base + v];
        if (x > m) {
            s = s * exp(m - x) + 1.0;
            m = x;
            arg = v;
        } else {
            s += exp(x - m);
        }
    }
    s_max[t] = m;
    s_sum[t] = s;
    s_arg[t] = arg;
    barrier();
    for (uint stride = gl_WorkGroupSize.x / 2u; stride > 0u; stride /= 2u) {
        if (t < stride) {
            float m1 = s_max[t], m2 = s_max[t + stride];
            float s1 = s_sum[t], s2 = s_sum[t + stride];
            uint a1 = s_arg[t], a2 = s_arg[t + stride];
            if (s2 > 0.0) {  // the other thread saw at least one logit
                if (s1 == 0.0 || m2 > m1 || (m2 == m1 && a2 < a1)) {
                    s_sum[t] = s2 + (s1 > 0.0 ? s1 * exp(m1 - m2) : 0.0);
                    s_max[t] = m2;
                    s_arg[t] = a2;
                } else {
                    s_sum[t] = s1 + s2 * exp(m2 - m1);
                }
            }
        }
        barrier();
    }
    if (t == 0u) {
        float mx = s_max[0], logsum = log(s_sum[0]);
        uint label = labels[pc.row0 + r];
        bool counted = label != pc.ignore_index && label < pc.classes;
        // (max - x[label]) + log(sum) rather than lse - x[label]: the difference of two
        // logits is exact when they are close, so a small loss keeps its precision.
        loss[pc.row0 + r] = counted ? (mx - logits[base + label]) + logsum : 0.0;
        lse[pc.row0 + r] = mx + logsum;
        pred[pc.row0 + r] = s_arg[0];
    }
}
#endif
