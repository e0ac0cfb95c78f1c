// Staging of fp16 op(A) [BM x BK] and op(B) [BK x BN] tiles into shared memory, for the
// gemm_f16 variant of gemm.comp. The includer defines BM, BN, BK
// (multiples of 8), TRANS_A, TRANS_B, the buffers a[], b[] and pc, and the stores
//   PUT_A(mm, kk, value)  and  PUT_B(kk, nn, value)   (value is a float)
// When the tile lies inside the matrix and the rows are 16-byte aligned (ld and the
// batch offset multiples of 8 halves) each invocation reads 8 halves with one 16-byte
// load; otherwise one half at a time with zeros outside the matrix. The choice is the
// same for the whole workgroup, so it costs no divergence.
layout(std430, set = 0, binding = 0) readonly buffer BufA8 { uvec4 a8[]; };
layout(std430, set = 0, binding = 1) readonly buffer BufB8 { uvec4 b8[]; };

// Eight halves (as floats) of one 16-byte word.
void unpack8(uvec4 w, out float h[8])
{
    vec2 p = unpackHalf2x16(w.x); h[0] = p.x; h[1] = p.y;
    p = unpackHalf2x16(w.y); h[2] = p.x; h[3] = p.y;
    p = unpackHalf2x16(w.z); h[4] = p.x; h[5] = p.y;
    p = unpackHalf2x16(w.w); h[6] = p.x; h[7] = p.y;
}

void stage_a(uint base, uint m_tile, uint k0, uint tid, uint threads)
{
    if (m_tile + BM <= pc.M && k0 + BK <= pc.K && pc.lda % 8u == 0u && base % 8u == 0u) {
        for (uint e = tid; e < BM * BK / 8u; e += threads) {
            float h[8];
            if (TRANS_A == 0u) {  // rows of A run along k
                uint mm = e / (BK / 8u), kv = e % (BK / 8u) * 8u;
                unpack8(a8[(base + (m_tile + mm) * pc.lda + k0 + kv) / 8u], h);
                for (uint i = 0u; i < 8u; i++) PUT_A(mm, kv + i, h[i]);
            } else {              // rows of A run along m
                uint kk = e / (BM / 8u), mv = e % (BM / 8u) * 8u;
                unpack8(a8[(base + (k0 + kk) * pc.lda + m_tile + mv) / 8u], h);
                for (uint i = 0u; i < 8u; i++) PUT_A(mv + i, kk, h[i]);
            }
        }
        return;
    }
    // Consecutive invocations read consecutive addresses of whichever layout.
    for (uint e = tid; e < BK * BM; e += threads) {
        uint kk = TRANS_A != 0u ? e / BM : e % BK;
        uint mm = TRANS_A != 0u ? e % BM : e / BK;
        PUT_A(mm, kk, load_a(base, m_tile + mm, k0 + kk));
    }
}

void stage_b(uint base, uint n_tile, uint k0, uint tid, uint threads)
{
    if (n_tile + BN <= pc.N && k0 + BK <= pc.K && pc.ldb % 8u == 0u && base % 8u == 0u) {
        for (uint e = tid; e < BN * BK / 8u; e += threads) {
            float h[8];
            if (TRANS_B == 0u) {  // rows of B run along n
                uint kk = e / (BN / 8u), nv = e % (BN / 8u) * 8u;
                unpack8(b8[(base + (k0 + kk) * pc.ldb + n_tile + nv) / 8u], h);
                for (uint i = 0u; i < 8u; i++) PUT_B(kk, nv + i, h[i]);
            } else {              // rows of B run along k
                uint nn = e / (BK / 8u), kv = e % (BK / 8u) * 8u;
                unpack8(b8[(base + (n_tile + nn) * pc.ldb + k0 + kv) / 8u], h);
                for (uint i = 0u; i < 8u; i++) PUT_B(kv + i, nn, h[i]);
            }
        }
        return;
    }
    for (uint e = tid; e < BK * BN; e += threads) {
        uint kk = TRANS_B != 0u ? e % BK : e / BN;
        uint nn = TRANS_B != 0u ? e / BK : e % BN;
        PUT_B(kk, nn, load_b(base, k0 + kk, n_tile + nn));
    }
}
