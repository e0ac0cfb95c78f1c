#version 450
// Elementwise kernels over flat float arrays, one op per dispatch (chosen by push
// constant so one pipeline serves them all). Every op writes
//     y[i] = alpha * f(...) + beta * y[i]      (beta = 0 writes y without reading it)
//
// Unary (the plain build; bindings x, y):
//   op 0  f = x                    axpby: add, scale, copy
//   op 1  f = relu(x)
//   op 2  f = tanh(x)
//   op 3  f = sigmoid(x)
// Binary (variant elementwise_binary; bindings a, b, y):
//   op 0  f = a + b
//   op 1  f = a * b
//   op 2  f = a * relu'(b)         backward of relu: a = dy, b = the forward output (or input)
//   op 3  f = a * (1 - b*b)        backward of tanh from its output b
//   op 4  f = a * b * (1 - b)      backward of sigmoid from its output b
//! variant elementwise_binary -DBINARY=1
layout(local_size_x_id = 0) in;

// CPU devices get the op and whether y is read compiled in (llvmpipe runs every branch
// of the op chain under lane masks, so relu's backward also paid for tanh's exp), and
// with VEC4 each invocation takes 4 elements (n % 4 == 0): every storage access is a
// loop over the lanes there, and a vec4 costs about what a float does. GPUs keep the
// push constants' op and beta (uniform branches) and one element per invocation.
layout(constant_id = 1) const uint OP_SPEC = 0xffffffffu;  // else pc.op
layout(constant_id = 2) const uint READ_Y_SPEC = 2u;       // 0, 1, or 2: pc.beta != 0
layout(constant_id = 3) const uint VEC4 = 0u;

#if BINARY
layout(std430, set = 0, binding = 0) readonly buffer A { float a[]; };
layout(std430, set = 0, binding = 1) readonly buffer B { float b[]; };
layout(std430, set = 0, binding = 2) buffer Y { float y[]; };
layout(std430, set = 0, binding = 0) readonly buffer A4 { vec4 a4[]; };
layout(std430, set = 0, binding = 1) readonly buffer B4 { vec4 b4[]; };
layout(std430, set = 0, binding = 2) buffer Y4 { vec4 y4[]; };
#else
layout(std430, set = 0, binding = 0) readonly buffer X { float x[]; };
layout(std430, set = 0, binding = 1) buffer Y { float y[]; };
layout(std430, set = 0, binding = 0) readonly buffer X4 { vec4 x4[]; };
layout(std430, set = 0, binding = 1) buffer Y4 { vec4 y4[]; };
#endif

layout(push_constant) uniform Push {
    uint n;
    uint op;
    float alpha;
    float beta;
} pc;

// tanh without overflow for large |x|, and without the cancellation of 1 - exp(-2|x|)
// near 0 (there the odd Taylor series to x^7 is exact to float precision for |x| < 0.1).
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

uint op_of() { return OP_SPEC != 0xffffffffu ? OP_SPEC : pc.op; }
bool read_y() { return READ_Y_SPEC == 2u ? pc.beta != 0.0 : READ_Y_SPEC == 1u; }

#if BINARY
float apply(uint op, float av, float bv)
{
    if (op == 0u) return av + bv;
    if (op == 1u) return av * bv;
    if (op == 2u) return bv > 0.0 ? av : 0.0;
    if (op == 3u) return av * ((1.0 - bv) * (1.0 + bv));  // no cancellation near |b| = 1
    return av * bv * (1.0 - bv);
}
#else
float apply(uint op, float xv)
{
    if (op == 0u) return xv;
    if (op == 1u) return max(xv, 0.0);
    if (op == 2u) return stable_tanh(xv);
    return stable_sigmoid(xv);
}
#endif

void main()
{
    // A 2-D grid lets n exceed 65535 workgroups in x.
    uint i = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    uint op = op_of();
    if (VEC4 != 0u) {
        if (i >= pc.n / 4u) return;
        vec4 f;
#if BINARY
        vec4 av = a4[i], bv = b4[i];
        for (uint c = 0u; c < 4u; c++) f[c] = apply(op, av[c], bv[c]);
#else
        vec4 xv = x4[i];
        for (uint c = 0u; c < 4u; c++) f[c] = apply(op, xv[c]);
#endif
        y4[i] = read_y() ? pc.alpha * f + pc.beta * y4[i] : pc.alpha * f;
        return;
    }
    if (i >= pc.n) return;
#if BINARY
    float f = apply(op, a[i], b[i]);
#else
    float f = apply(op, x[i]);
#endif
    y[i] = read_y() ? pc.alpha * f + pc.beta * y[i] : pc.alpha * f;
}
