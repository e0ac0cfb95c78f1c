// Workgroup reductions through shared memory: the portable fp32 path, no subgroup
// operations and no assumption about the subgroup size. Needs a power-of-two workgroup
// size (the launchers choose one) and is called by every invocation of the workgroup in
// uniform control flow. Every call starts and ends with a barrier, so shared values
// written before it are visible after it.
shared float reduce_scratch[gl_WorkGroupSize.x];

float workgroup_sum(float v)
{
    uint t = gl_LocalInvocationID.x;
    reduce_scratch[t] = v;
    barrier();
    for (uint s = gl_WorkGroupSize.x / 2u; s > 0u; s >>= 1) {
        if (t < s) reduce_scratch[t] += reduce_scratch[t + s];
        barrier();
    }
    float r = reduce_scratch[0];
    barrier();
    return r;
}

float workgroup_max(float v)
{
    uint t = gl_LocalInvocationID.x;
    reduce_scratch[t] = v;
    barrier();
    for (uint s = gl_WorkGroupSize.x / 2u; s > 0u; s >>= 1) {
        if (t < s) reduce_scratch[t] = max(reduce_scratch[t], reduce_scratch[t + s]);
        barrier();
    }
    float r = reduce_scratch[0];
    barrier();
    return r;
}
