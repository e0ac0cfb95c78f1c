/* The snapshot of the environment a context takes when it is created. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/context.h"
#include "core/env_settings.h"

/* Copies the variable's value into out ("" when unset). Named like enn_env_flag, so that
 * tests/docs/env_documented.cmake finds the variables read here. */
static void enn_env_copy(const char *name, char out[ENN_ENV_VALUE_MAX])
{
    const char *v = getenv(name);
    size_t len = v ? strlen(v) : 0;
    if (len < ENN_ENV_VALUE_MAX) memcpy(out, v ? v : "", len + 1);
    else snprintf(out, ENN_ENV_VALUE_MAX, "(too long: %zu characters)", len);
}

void enn_env_settings_read(enn_env_settings *s)
{
    enn_env_copy("ENN_GEMM_TILES", s->gemm_tiles);
    enn_env_copy("ENN_GEMM_COOPMAT_TILES", s->gemm_coopmat_tiles);
    enn_env_copy("ENN_GEMM_VARIANT", s->gemm_variant);
    enn_env_copy("ENN_GEMM_TEXEL_TILE", s->gemm_texel_tile);
    enn_env_copy("ENN_LM_CHUNK_ROWS", s->lm_chunk_rows);
    s->disable_gemm_texel = enn_env_flag("ENN_DISABLE_GEMM_TEXEL");
    s->disable_gemm_texel_wide = enn_env_flag("ENN_DISABLE_GEMM_TEXEL_WIDE");
    s->disable_gemm_epilogue_spec = enn_env_flag("ENN_DISABLE_GEMM_EPILOGUE_SPEC");
    s->disable_split_k = enn_env_flag("ENN_DISABLE_SPLIT_K");
    s->disable_rnn_recurrence = enn_env_flag("ENN_DISABLE_RNN_RECURRENCE");
    s->disable_noise_blocks = enn_env_flag("ENN_DISABLE_NOISE_BLOCKS");
    s->disable_packed_slots = enn_env_flag("ENN_DISABLE_PACKED_SLOTS");
    s->disable_int64 = enn_env_flag("ENN_DISABLE_INT64");
}
