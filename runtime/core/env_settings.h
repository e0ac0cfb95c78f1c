/* The tuning and switch variables the op code consults, read once when a context is
 * created: getenv racing with the host's setenv on another thread is undefined
 * behaviour, and a context's kernel choices must not change in mid-life. */
#ifndef ENN_CORE_ENV_SETTINGS_H
#define ENN_CORE_ENV_SETTINGS_H

/* Room for any valid value; a longer one is kept as a marker that no parser accepts,
 * so that the call using it still reports the variable as malformed. */
#define ENN_ENV_VALUE_MAX 64

typedef struct enn_env_settings {
    /* Values as set, "" when unset (every use treats "" as unset). */
    char gemm_tiles[ENN_ENV_VALUE_MAX];          /* ENN_GEMM_TILES */
    char gemm_coopmat_tiles[ENN_ENV_VALUE_MAX];  /* ENN_GEMM_COOPMAT_TILES */
    char gemm_variant[ENN_ENV_VALUE_MAX];        /* ENN_GEMM_VARIANT */
    char gemm_texel_tile[ENN_ENV_VALUE_MAX];     /* ENN_GEMM_TEXEL_TILE */
    char lm_chunk_rows[ENN_ENV_VALUE_MAX];       /* ENN_LM_CHUNK_ROWS */
    /* Switches, as enn_env_flag reads them. */
    int disable_gemm_texel;                      /* ENN_DISABLE_GEMM_TEXEL */
    int disable_gemm_texel_wide;                 /* ENN_DISABLE_GEMM_TEXEL_WIDE */
    int disable_gemm_epilogue_spec;              /* ENN_DISABLE_GEMM_EPILOGUE_SPEC */
    int disable_split_k;                         /* ENN_DISABLE_SPLIT_K */
    int disable_rnn_recurrence;                  /* ENN_DISABLE_RNN_RECURRENCE */
    int disable_noise_blocks;                    /* ENN_DISABLE_NOISE_BLOCKS */
    int disable_packed_slots;                    /* ENN_DISABLE_PACKED_SLOTS */
    int disable_int64;                           /* ENN_DISABLE_INT64 */
} enn_env_settings;

/* Fills s from the environment (context creation calls it, and nothing later). */
void enn_env_settings_read(enn_env_settings *s);

#endif
