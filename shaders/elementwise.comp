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

#if BINARY
layout(std430, set = 0, binding = 0) readonly buffer A { float a[]; };
layout(std430, set = 0, binding = 1) readonly buffer B { float b[]; };
layout(std430, set = 0, binding = 2) buffer Y { float y[]; };
#else
layout(std430, set = 0, binding = 0) readonly buffer X { float x[]; };
layout(std430, set = 0, binding = 1) buffer Y { float y[]; };
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

void main()
{
    // A 2-D grid lets n exceed 65535 workgroups in x.
    uint i = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    if (i >= pc.n) return;
    float f;
#if BINARY
    float av = a[i], bv = b[i];
    if (pc.op == 0u) f = av + bv;
    else if (pc.op == 1u) f = av * bv;
    else if (pc.op == 2u) f = bv > 0.0 ? av : 0.0;
    else if (pc.op == 3u) f = av * ((1.0 - bv) * (1.0 + bv));  // no cancellation near |b| = 1
    else f = av * bv * (1.0 - bv);
#else
    float xv = x[i];
    if (pc.op == 0u) f = xv;
    else if (pc.op == 1u) f = max(xv, 0.0);
    else if (pc.op == 2u) f = stable_tanh(xv);
    else f = stable_sigmoid(xv);
#endif
    y[i] = pc.beta == 0.0 ? pc.alpha * f : pc.alpha * f + pc.beta * y[i];
}
