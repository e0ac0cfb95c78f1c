// The parameter table shared by the norm and optimiser kernels: tensors (ranges of one
// flat float buffer) split into chunks of chunk_elems floats, one workgroup per chunk.
// Entry k is 4 uints: offset, count (floats), first chunk, flags.
// Declare `readonly buffer Table { uint table[]; }` before including this file.

// The tensor that owns chunk w: the last entry whose first chunk is <= w.
uint table_tensor_of_chunk(uint w, uint tensor_count)
{
    uint lo = 0u, hi = tensor_count - 1u;
    while (lo < hi) {
        uint mid = (lo + hi + 1u) / 2u;
        if (table[4u * mid + 2u] <= w) lo = mid;
        else hi = mid - 1u;
    }
    return lo;
}
