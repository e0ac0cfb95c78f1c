/* libenn: Engram Neural Networks trained on any GPU through Vulkan compute.
 *
 * The public C API. Handles are opaque; nothing here needs the Vulkan headers (the
 * embedding interface, which does, is in enn_vulkan.h). Every function that can fail
 * returns an enn_status; enn_last_error() then gives a message, per thread, that names
 * the cause. The library never aborts or exits the host program.
 */
#ifndef ENN_H
#define ENN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define ENN_API __attribute__((visibility("default")))
#else
#define ENN_API
#endif

/* ---------------------------------------------------------------- status codes
 * Ranged, so a caller can test the family of an error without knowing every code:
 *   1xxx  the caller's arguments       2xxx  resources (memory)
 *   3xxx  the device and driver        4xxx  files and data
 */
typedef enum enn_status {
    ENN_OK = 0,
    ENN_ERROR_INVALID_ARGUMENT = 1000, /* NULL handle, zero size, bad option value */
    ENN_ERROR_SHAPE = 1001,            /* tensor shapes that do not fit together */
    ENN_ERROR_OUT_OF_RANGE = 1002,     /* offset or index past the end */
    ENN_ERROR_OUT_OF_HOST_MEMORY = 2000,
    ENN_ERROR_OUT_OF_DEVICE_MEMORY = 2001,
    ENN_ERROR_NO_DEVICE = 3000,       /* no Vulkan device, or none matches ENN_DEVICE */
    ENN_ERROR_UNSUPPORTED = 3001,     /* the device lacks a feature the request needs */
    ENN_ERROR_DEVICE_LOST = 3002,
    ENN_ERROR_VULKAN = 3003,          /* any other Vulkan failure; message has the VkResult */
    ENN_ERROR_IO = 4000,              /* open/read/write/rename failed */
    ENN_ERROR_FORMAT = 4001,          /* a file or data that is not what it claims */
    ENN_ERROR_INTERNAL = 9000,        /* a bug in libenn: please report it */
} enn_status;

/* The message of the last failure on the calling thread ("" if none). Valid until the
 * next libenn call on this thread. */
ENN_API const char *enn_last_error(void);
/* A fixed name for a status code, e.g. "ENN_ERROR_SHAPE". */
ENN_API const char *enn_status_name(enn_status status);
ENN_API const char *enn_version(void);

/* ---------------------------------------------------------------- structs that grow
 * Four structs gain fields in later releases, appended at their end:
 * enn_context_options, enn_vulkan_handles (enn_vulkan.h), enn_capabilities and
 * enn_model_config. Each starts with `uint32_t struct_size`, the bytes of the struct
 * the caller has, so that a program and a shared libenn built from different enn.h
 * agree on how much of it there is (as Linux's clone3 and openat2 do):
 *
 *   0        the struct as libenn 0.2 laid it out, ENN_<STRUCT>_SIZE_0_2 bytes (the end
 *            of its last 0.2 field, so right on every ABI), in this release and every
 *            later one. A zero-initialised struct (`= {0}`, memset,
 *            designated initialisers) therefore keeps working; it also means that
 *            fields added after 0.2 are read only when struct_size covers them: set
 *            struct_size = sizeof (enn_context_options_init and enn_model_config_init
 *            do).
 *   below the 0.2 size (and not 0)   ENN_ERROR_INVALID_ARGUMENT.
 *
 * Structs libenn reads (context options, Vulkan handles, model config): libenn reads
 * no byte past struct_size, and a field the caller's struct does not reach takes its
 * zero value. A struct_size larger than this libenn knows is accepted when every byte
 * past what it knows is 0 (new fields left at their zero default), else it is
 * ENN_ERROR_UNSUPPORTED naming those bytes: a newer program asks for something this
 * older libenn cannot do.
 *
 * Structs libenn writes (enn_context_capabilities, enn_device_capabilities,
 * enn_context_vulkan_handles, enn_model_config_from_json): set struct_size before the call (0: the 0.2 size).
 * libenn writes at most that many bytes, never past the caller's struct, and sets
 * struct_size to the number it wrote.
 *
 * enn_model_get_config points at libenn's own copy, whose struct_size is libenn's
 * sizeof; a program that copies it into a struct of its own sets struct_size to
 * sizeof its own struct (or 0) before passing the copy back.
 *
 * Every other public struct (enn_device_info, enn_memory_stats, enn_coopmat_shape,
 * enn_cell_config, enn_optimizer_config, enn_batch, enn_step_result,
 * enn_forward_inputs, enn_tensor_desc, enn_metadata, enn_stream_io and those of
 * enn_data.h) keeps its layout for the whole 0.x series. (A device's capabilities
 * before any context exists come from enn_device_capabilities, one struct at a time, so
 * that the array enn_list_devices fills never grows.)
 *
 * While the major version is 0 the shared library's soname carries the minor version
 * (libenn.so.0.2): a program built against 0.1 does not load 0.2. */

/* ---------------------------------------------------------------- context */
typedef struct enn_context enn_context;

typedef enum enn_device_type {
    ENN_DEVICE_OTHER = 0,
    ENN_DEVICE_INTEGRATED_GPU = 1,
    ENN_DEVICE_DISCRETE_GPU = 2,
    ENN_DEVICE_VIRTUAL_GPU = 3,
    ENN_DEVICE_CPU = 4,
} enn_device_type;

#define ENN_MAX_COOPMAT_SHAPES 16

typedef enum enn_scalar_type {
    ENN_F32 = 0,
    ENN_F16 = 1,
    ENN_OTHER_TYPE = 255,
} enn_scalar_type;

/* One matrix shape the device's cooperative-matrix units multiply: an MxK A times a
 * KxN B accumulated into MxN C. */
typedef struct enn_coopmat_shape {
    uint32_t m, n, k;
    enn_scalar_type a_type, b_type, c_type, result_type;
} enn_coopmat_shape;

/* What the chosen device can do, after the ENN_DISABLE_* switches are applied. A struct
 * that grows: set struct_size before enn_context_capabilities ("structs that grow"). */
typedef struct enn_capabilities {
    uint32_t struct_size;            /* 0: the 0.2 size; libenn sets the bytes it wrote */
    char device_name[256];
    char driver_name[256];
    char driver_info[256];
    uint32_t vendor_id, device_id;
    uint32_t driver_version;
    uint32_t api_version;
    enn_device_type device_type;
    uint8_t pipeline_cache_uuid[16];

    uint32_t subgroup_size;          /* default subgroup size of compute shaders */
    uint32_t min_subgroup_size;      /* range when subgroup size control is present, */
    uint32_t max_subgroup_size;      /* else both equal subgroup_size */
    int subgroup_size_control;
    int subgroup_arithmetic;         /* subgroupAdd etc. in compute shaders */
    uint32_t max_shared_memory;      /* bytes of shared memory per workgroup */
    uint32_t max_workgroup_size[3];
    uint32_t max_workgroup_invocations;
    uint32_t max_workgroup_count[3];
    uint64_t max_storage_buffer_range; /* largest range one binding may cover */
    uint32_t min_storage_buffer_offset_alignment;
    uint32_t max_push_constants_size;

    int fp16_arithmetic;             /* float16_t math in shaders */
    int storage_16bit;               /* 16-bit values in storage buffers */
    int cooperative_matrix;          /* tensor-core GEMM usable (VK_NV_cooperative_matrix,
                                        fp16 x fp16 -> fp32) */
    int cooperative_matrix_khr;      /* the device also has VK_KHR_cooperative_matrix */
    uint32_t coopmat_shape_count;
    enn_coopmat_shape coopmat_shapes[ENN_MAX_COOPMAT_SHAPES];
    int timestamps;                  /* timestamp queries on the compute queue */
    double timestamp_period_ns;
    int push_descriptors;
    int unified_memory;              /* device-local memory is also host-visible */
    uint64_t device_local_bytes;     /* size of the largest device-local heap */
    int texel_buffer_f32;            /* R32_SFLOAT and R32G32B32A32_SFLOAT uniform texel buffers */
    uint32_t max_texel_buffer_elements;
    uint32_t min_texel_buffer_offset_alignment;
    int storage_texel_buffer_f32;    /* R32G32B32A32_SFLOAT storage texel buffers */
} enn_capabilities;
/* The bytes of enn_capabilities in libenn 0.2: up to its last 0.2 field. */
#define ENN_CAPABILITIES_SIZE_0_2 \
    (offsetof(enn_capabilities, storage_texel_buffer_f32) + sizeof(int))

struct VkAllocationCallbacks; /* vulkan.h; enn.h does not need it */

/* A struct that grows ("structs that grow"): zero-initialise it, or call
 * enn_context_options_init. */
typedef struct enn_context_options {
    uint32_t struct_size;      /* 0: the 0.2 size; enn_context_options_init: sizeof */
    /* Device choice: an index into the enumeration or a substring of the device name
     * (case-insensitive). NULL: the ENN_DEVICE environment variable, else the best
     * device (discrete GPU > integrated > virtual > CPU). */
    const char *device;
    /* Enable VK_LAYER_KHRONOS_validation with a messenger that counts every warning and
     * error (enn_context_validation_messages), the loader's own warnings aside (such as
     * its notice that VK_INSTANCE_LAYERS adds layers). Also turned on by ENN_VALIDATION=1. */
    int validation;
    /* Most dispatches in one queue submission; a long recording is split so that no
     * submission runs long enough to trip a driver watchdog. 0: the default (256), or
     * ENN_MAX_DISPATCHES_PER_SUBMIT. At most 65536. */
    uint32_t max_dispatches_per_submit;
    /* Directory of the on-disk pipeline cache. NULL: ENN_CACHE_DIR, else
     * $XDG_CACHE_HOME/enn, else $HOME/.cache/enn. "" turns the disk cache off. */
    const char *cache_dir;
    /* Called for every validation warning or error (when validation is on), also during
     * enn_context_destroy, from whichever thread the driver reports on. */
    void (*validation_callback)(void *user, const char *message);
    void *validation_user;
    /* Host allocator for the Vulkan objects of a context libenn creates: the instance, the
     * debug messenger, the device and every object and memory allocation on it get these
     * VkAllocationCallbacks as pAllocator (the Vulkan driver and layers then allocate
     * their host memory through them). They must stay valid until enn_context_destroy
     * has returned. NULL: the driver's own. libenn's own bookkeeping still uses malloc.
     * Ignored by enn_context_create_from_vulkan: an adopted device's callbacks are
     * enn_vulkan_handles.allocation_callbacks. */
    const struct VkAllocationCallbacks *vk_allocation_callbacks;
} enn_context_options;
/* The bytes of enn_context_options in libenn 0.2: up to its last 0.2 field. */
#define ENN_CONTEXT_OPTIONS_SIZE_0_2 \
    (offsetof(enn_context_options, vk_allocation_callbacks) + sizeof(const struct VkAllocationCallbacks *))

/* All zero (every option its default) with struct_size = sizeof. */
ENN_API void enn_context_options_init(enn_context_options *options);

/* Creates a context on a device of its own choosing. options may be NULL. */
ENN_API enn_status enn_context_create(const enn_context_options *options, enn_context **out);
/* Destroys the context and everything it created; objects it adopted are left alone.
 * Saves the pipeline cache. NULL is ignored. */
ENN_API void enn_context_destroy(enn_context *ctx);
/* Fills `out` up to its struct_size (0: ENN_CAPABILITIES_SIZE_0_2), which it then sets to
 * the bytes written. */
ENN_API enn_status enn_context_capabilities(const enn_context *ctx, enn_capabilities *out);
/* Number of validation-layer warnings and errors seen so far (0 when validation is off),
 * and the text of the first one. */
ENN_API uint32_t enn_context_validation_messages(const enn_context *ctx, const char **first);
/* Blocks until the device has finished all work libenn submitted. */
ENN_API enn_status enn_context_wait_idle(enn_context *ctx);

/* Devices as the library sees them, before any context exists. */
typedef struct enn_device_info {
    uint32_t index;            /* the index ENN_DEVICE and enn_device_capabilities take */
    char name[256];            /* as enn_capabilities.device_name */
    enn_device_type type;
    int chosen;                /* 1 for the device enn_context_create would pick now */
} enn_device_info;
/* Fills up to `capacity` entries and sets *count to the number of devices. When none is
 * marked chosen (ENN_DEVICE names none, or none is usable), enn_last_error() says why. */
ENN_API enn_status enn_list_devices(enn_device_info *infos, uint32_t capacity, uint32_t *count);
/* What device `index` (of enn_list_devices) can do, with the ENN_DISABLE_* switches
 * applied, as enn_context_capabilities gives it for a context on that device: `out` is
 * written up to its struct_size (0: ENN_CAPABILITIES_SIZE_0_2). */
ENN_API enn_status enn_device_capabilities(uint32_t index, enn_capabilities *out);

/* ---------------------------------------------------------------- device buffers
 * A range of device memory carved out of a larger block by the library's sub-allocator. */
typedef struct enn_buffer enn_buffer;

ENN_API enn_status enn_buffer_create(enn_context *ctx, size_t bytes, enn_buffer **out);
ENN_API void enn_buffer_destroy(enn_context *ctx, enn_buffer *buf);
ENN_API size_t enn_buffer_size(const enn_buffer *buf);
/* Copies host memory into the buffer at byte `offset` (any alignment), and back. Both
 * wait for earlier work that touches the buffer and return when the copy is complete. */
ENN_API enn_status enn_buffer_upload(enn_context *ctx, enn_buffer *buf, size_t offset,
                                     const void *src, size_t bytes);
ENN_API enn_status enn_buffer_download(enn_context *ctx, const enn_buffer *buf, size_t offset,
                                       void *dst, size_t bytes);

/* Memory statistics of the sub-allocator. */
typedef struct enn_memory_stats {
    uint64_t block_bytes;     /* VkDeviceMemory held in blocks */
    uint32_t block_count;
    uint64_t used_bytes;      /* bytes in live sub-allocations (after alignment) */
    uint32_t live_buffers;
    uint64_t peak_used_bytes;
} enn_memory_stats;
ENN_API enn_status enn_memory_get_stats(const enn_context *ctx, enn_memory_stats *out);

/* ---------------------------------------------------------------- models
 * An ENN (or an RNN/GRU/LSTM baseline) with a head and a loss, trained on the device.
 * Parameters, gradients and Adam moments each live in one flat device buffer; tensor
 * names follow the spec's symbols (W_z, b_z, M, W_u, b_u, W_o, b_o, ln1.gain, ...), and
 * every matrix is laid out [in, out] as in Keras. A baseline's layer i has
 * layer<i>.kernel [in, G u], layer<i>.recurrent_kernel [u, G u] and layer<i>.bias [G u]
 * (GRU: [2, 3u], the input then the recurrent bias), gates packed in Keras's order:
 * LSTM i, f, c, o (G = 4); GRU z, r, h (G = 3); SimpleRNN G = 1. */
typedef struct enn_model enn_model;

typedef enum enn_head_kind {
    ENN_HEAD_CLASSIFIER = 0,   /* pooled feature, dropout, dense, softmax cross-entropy */
    ENN_HEAD_REGRESSOR = 1,    /* dense on the last state (or every step), mean squared error */
    ENN_HEAD_LANGUAGE_MODEL = 2, /* per-token dense over the vocabulary, cross-entropy, pad 0 ignored */
} enn_head_kind;

typedef enum enn_pooling {
    ENN_POOL_ATTENTION = 0,    /* softmax over time of tanh(h_t w + b); the default */
    ENN_POOL_LAST = 1,         /* the last hidden state: what the reference package does */
} enn_pooling;

typedef enum enn_trace_mode {
    ENN_TRACE_SHARED = 0,      /* one trace H [N,h] for the batch, written with the batch mean */
    ENN_TRACE_PER_SAMPLE = 1,  /* H [B,N,h]: a sample never depends on the others */
} enn_trace_mode;

typedef enum enn_trace_gradient {
    ENN_TRACE_GRADIENT_EXACT = 0, /* differentiate through the trace recurrence (reference) */
    ENN_TRACE_GRADIENT_STOP = 1,  /* treat each step's H as a constant input (paper text) */
} enn_trace_gradient;

typedef enum enn_lm_input {
    ENN_LM_EMBEDDING = 0,      /* an embedding table [V, embedding_dim] */
    ENN_LM_FLOAT_FEATURE = 1,  /* the token id itself as one float feature (paper mode) */
} enn_lm_input;

typedef enum enn_clip_mode {
    ENN_CLIP_NONE = 0,
    ENN_CLIP_PER_TENSOR = 1,   /* Keras clipnorm: each tensor's gradient to norm <= clip */
    ENN_CLIP_GLOBAL = 2,       /* Keras global_clipnorm */
} enn_clip_mode;

typedef enum enn_model_kind {
    ENN_MODEL_ENN = 0,         /* the Engram cell */
    ENN_MODEL_RNN = 1,         /* baselines, as Keras builds them: SimpleRNN (tanh), */
    ENN_MODEL_GRU = 2,         /* GRU (reset_after), */
    ENN_MODEL_LSTM = 3,        /* LSTM (forget-gate bias 1) */
} enn_model_kind;

#define ENN_MAX_LAYERS 4
/* The largest size a configuration may give (sequence length, batch, outputs, input
 * features, embedding, hidden size, memory slots, units): far enough from 2^32 that no
 * derived size (3h, 4 units) wraps. */
#define ENN_MAX_DIMENSION (1u << 24)

typedef struct enn_cell_config {
    uint32_t hidden;           /* h: 128 */
    uint32_t memory_slots;     /* N: 64 */
    float hebbian_rate;        /* eta: 0.05 */
    float trace_scale;         /* alpha (scale_factor): 0.5 */
    float temperature;         /* tau: 1.5 */
    float sparsity;            /* lambda: 0.1 */
    int layer_norm;            /* 1 */
    int noise;                 /* trace noise on: 1 */
    float noise_std;           /* sigma: 0.001 */
    enn_trace_mode trace_mode;
    enn_trace_gradient trace_gradient;
    int stateful;              /* 0: h0 and H0 drawn anew for every training batch (baselines:
                                  every layer's h0 and c0 are 0, as in Keras); 1: the state
                                  after one batch is the next batch's initial state (also
                                  for the baselines) */
    uint32_t recompute_interval; /* 0: the backward pass reads every step's stored trace H_t;
                                  K >= 2: only H_t for t a multiple of K (and the step
                                  before) is stored, the others are recomputed in the
                                  backward pass (one trace-update dispatch each): trace
                                  memory falls from T+1 to about 2T/K + K slabs, same
                                  results bit for bit. What dominates a per-sample trace's
                                  memory at long T ([T+1, B, N, h] floats). */
} enn_cell_config;

typedef struct enn_optimizer_config {
    float learning_rate;       /* 1e-3 */
    float beta1, beta2;        /* 0.9, 0.999 */
    float epsilon;             /* 1e-7 (Keras) */
    float weight_decay;        /* 0: Adam; > 0: AdamW (decoupled) */
    enn_clip_mode clip;        /* ENN_CLIP_PER_TENSOR */
    float clip_norm;           /* 1.0 */
} enn_optimizer_config;

/* A struct that grows ("structs that grow"): start from enn_model_config_init, or
 * zero-initialise it. */
typedef struct enn_model_config {
    uint32_t struct_size;      /* 0: the 0.2 size; enn_model_config_init: sizeof */
    enn_model_kind kind;
    uint32_t layers;           /* baselines: stacked layers (init: 1; the paper: 2), ENN: 1 */
    uint32_t layer_units[ENN_MAX_LAYERS]; /* baselines: units per layer (init: 128; the paper: 128, 64) */
    uint32_t input_features;   /* d (ignored for an embedding language model) */
    uint32_t max_seq_len;      /* T: buffers are sized for this */
    uint32_t max_batch;        /* B: buffers are sized for this; smaller batches work */
    enn_cell_config cell;
    enn_head_kind head;
    uint32_t outputs;          /* classes, regression outputs, or vocabulary size */
    enn_pooling pooling;
    float dropout;             /* 0.3 before the classifier's dense layer */
    int return_sequences;      /* regressor: predict at every step instead of the last (0 or 1; 0 for the other heads) */
    enn_lm_input lm_input;
    uint32_t embedding_dim;    /* 128 */
    enn_optimizer_config optimizer;
    uint64_t seed;             /* initialisation, noise, dropout: same seed, same run */
} enn_model_config;
/* The bytes of enn_model_config in libenn 0.2: up to its last 0.2 field. */
#define ENN_MODEL_CONFIG_SIZE_0_2 (offsetof(enn_model_config, seed) + sizeof(uint64_t))

/* The spec's defaults for a head: ENN(h=128, N=64), attention pooling, dropout 0.3,
 * Adam 1e-3 with per-tensor clipnorm 1.0, batch 128, struct_size = sizeof. Set
 * input_features, max_seq_len and outputs yourself. enn_model_config_check, _to_json,
 * enn_model_parameter_count and enn_model_create check struct_size as "structs that
 * grow" says. */
ENN_API void enn_model_config_init(enn_model_config *config, enn_head_kind head);
/* Checks a configuration; an impossible one is ENN_ERROR_INVALID_ARGUMENT with a message
 * naming the field. */
ENN_API enn_status enn_model_config_check(const enn_model_config *config);
/* The configuration as JSON text (every field under a readable key, enumerations as
 * words, and a "version" key), malloc'ed: release it with free(). */
ENN_API enn_status enn_model_config_to_json(const enn_model_config *config, char **json);
/* Parses what enn_model_config_to_json writes. Strict: a missing or unknown key, a wrong
 * type or an unknown word is ENN_ERROR_FORMAT naming the key. `origin` (a file name, or
 * NULL) starts each message. The result is not checked: call enn_model_config_check.
 * `config` is written up to its struct_size (0: ENN_MODEL_CONFIG_SIZE_0_2; set it
 * before the call), which is then the bytes written. struct_size is not part of the
 * JSON. */
ENN_API enn_status enn_model_config_from_json(const char *json, const char *origin, enn_model_config *config);
/* Parameters of the model: `trainable` counts every learned tensor; `reference` adds
 * what the reference Keras package also counts (its unused, non-trainable initial-trace
 * weight of N*h for an ENN), which is how the paper's table counts. Either may be NULL. */
ENN_API enn_status enn_model_parameter_count(const enn_model_config *config, uint64_t *trainable,
                                             uint64_t *reference);

/* One batch, in the caller's layout (sample-major). Which arrays are read depends on
 * the head and input: x for numeric input (and the language model's float feature),
 * tokens for an embedding language model; labels (classifier), y (regressor) or
 * targets (language model). */
typedef struct enn_batch {
    uint32_t size;             /* B, 1..max_batch */
    uint32_t seq_len;          /* T, 1..max_seq_len */
    const float *x;            /* [B, T, d] */
    const uint32_t *tokens;    /* [B, T] */
    const uint32_t *labels;    /* [B] class ids */
    const float *y;            /* [B, outputs], or [B, T, outputs] with return_sequences */
    const uint32_t *targets;   /* [B, T] next-token ids, 0 = padding (ignored) */
} enn_batch;

typedef struct enn_step_result {
    float loss;                /* mean loss of the batch */
    uint32_t correct;          /* classifier / language model: argmax hits */
    uint32_t counted;          /* samples (or non-pad tokens) the loss and accuracy count */
} enn_step_result;

/* Explicit values for what training otherwise draws itself, for checking the library
 * against another implementation number for number (enn grad). NULL fields: the usual
 * rule (training: h0, H0 ~ Normal(0, 0.01^2) and Philox noise and dropout; evaluation:
 * zeros, no noise, no dropout). A given h0 or H0 also replaces a stateful model's
 * carried state for that pass. */
typedef struct enn_forward_inputs {
    const float *h0;           /* [B, h] (ENN only: a baseline rejects h0, H0 and noise) */
    const float *H0;           /* [N, h], or [B, N, h] per-sample */
    const float *noise;        /* [T, N, h], or [T, B, N, h] per-sample: xi, already scaled */
    const float *keep_mask;    /* [B, f] 1 = kept, 0 = dropped (scaled by 1 / (1 - rate));
                                  f = h, or a baseline's last layer units */
    int no_dropout;            /* 1: dropout off */
} enn_forward_inputs;

ENN_API enn_status enn_model_create(enn_context *ctx, const enn_model_config *config, enn_model **out);
ENN_API void enn_model_destroy(enn_model *model);
/* libenn's own copy, struct_size = sizeof in this libenn (see "structs that grow"
 * before copying it into a struct of your own). */
ENN_API const enn_model_config *enn_model_get_config(const enn_model *model);

/* One training step: forward, loss, backward through time, clipping and the Adam update,
 * recorded as one submission with no host synchronisation inside. */
ENN_API enn_status enn_model_train_step(enn_model *model, const enn_batch *batch, enn_step_result *result);
/* Loss and accuracy without training; deterministic (h0 = 0, H0 = 0, no noise, no
 * dropout; a stateful model starts from its carried state). outputs, when not NULL,
 * receives the logits or predictions: classifier [B, classes], regressor [B, outputs] or
 * [B, T, outputs], language model [B, T, vocabulary]. */
ENN_API enn_status enn_model_evaluate(enn_model *model, const enn_batch *batch, enn_step_result *result,
                                      float *outputs);
/* Forward and backward without the update; gradients and intermediates are then read
 * with enn_model_read. `inputs` may be NULL. */
ENN_API enn_status enn_model_compute_gradients(enn_model *model, const enn_batch *batch,
                                               const enn_forward_inputs *inputs, enn_step_result *result);
/* Gradient exchange, for data-parallel training (several processes or devices, each with
 * its own model on its own share of every batch, e.g. an MPI all-reduce between them)
 * and for gradient accumulation over micro-batches: enn_model_compute_gradients, read
 * the gradients, combine them with the others', write the result back, and apply it.
 * enn_model_compute_gradients then enn_model_apply_gradients is enn_model_train_step,
 * bit for bit. The gradients are of the batch's mean loss: to get the gradient of a
 * larger batch split into shares, weight each share's by its `counted` (equal shares:
 * the plain mean). With the shared trace (ENN_TRACE_SHARED) each share's trace is the
 * mean over that share only, so shares of one batch do not train quite as the whole batch
 * would; the per-sample trace and the baselines do.
 *
 * The gradients as one array of enn_model_gradient_count() floats: every parameter
 * tensor in enn_model_parameter_desc order, back to back. */
ENN_API uint64_t enn_model_gradient_count(const enn_model *model);
ENN_API enn_status enn_model_read_gradients(enn_model *model, float *dst, size_t count);
ENN_API enn_status enn_model_write_gradients(enn_model *model, const float *src, size_t count);
/* Clipping and one Adam update (the end of a training step) from the gradients the model
 * holds: those of the last enn_model_compute_gradients, or written since. Fails when
 * there are none (nothing computed or written since the last update). */
ENN_API enn_status enn_model_apply_gradients(enn_model *model);
ENN_API enn_status enn_model_set_learning_rate(enn_model *model, float learning_rate);
ENN_API float enn_model_learning_rate(const enn_model *model);
ENN_API uint64_t enn_model_step_count(const enn_model *model);
/* Forward passes so far (training and evaluation). The pass count picks a training pass's
 * noise and dropout draws (with the seed), and a checkpoint keeps it, so a loaded model
 * draws what the saved one would have drawn next. Setting it positions those streams: a
 * data-parallel run that resumes from one process's checkpoint gives every process its
 * own count back (each evaluates its own part of the validation set). */
ENN_API uint64_t enn_model_pass_count(const enn_model *model);
ENN_API enn_status enn_model_set_pass_count(enn_model *model, uint64_t passes);

/* Named tensors: parameters by their names (W_z, ...), "grad.<name>" for gradients
 * after a training step or enn_model_compute_gradients, "adam.m.<name>" and
 * "adam.v.<name>" for the optimiser's moments, and the last forward pass's
 * "out.logits", "out.hs" [T, B, h], "out.H_T", "out.a" [T, B, N], "grad.input.x",
 * "grad.input.h0", "grad.input.H0". A baseline has "out.logits", "out.hs" [T, B, f]
 * (its last layer's hidden states) and "grad.input.x". A stateful ENN's carried state
 * (what its next batch starts from) is "state.h" [max_batch, h] and "state.H" ([N, h], or
 * [max_batch, N, h] per-sample): read it, or write it to set the trace the model goes on
 * from. */
typedef struct enn_tensor_desc {
    const char *name;
    uint32_t rank;
    uint32_t shape[4];
} enn_tensor_desc;
ENN_API uint32_t enn_model_parameter_tensors(const enn_model *model);
ENN_API enn_status enn_model_parameter_desc(const enn_model *model, uint32_t index, enn_tensor_desc *out);
/* Copies `count` floats (the tensor's size) out of, or into, the model. */
ENN_API enn_status enn_model_read(enn_model *model, const char *name, float *dst, size_t count);
ENN_API enn_status enn_model_write(enn_model *model, const char *name, const float *src, size_t count);
/* Device memory the model holds: parameters, gradients, optimiser state, activations. */
ENN_API enn_status enn_model_memory(const enn_model *model, uint64_t *parameter_bytes, uint64_t *activation_bytes);

/* ---------------------------------------------------------------- checkpoints
 * A checkpoint is a safetensors file: every parameter under its name (F32, [in, out]),
 * the Adam moments as "adam.m.<name>" and "adam.v.<name>", a stateful model's carried
 * state as "state.h" [Bp, h] and "state.H" [nH, N, h] (Bp, nH: the padded batch and trace
 * copies of the model), and metadata: "format" = "enn.checkpoint", "format_version",
 * "config" (enn_model_config_to_json), "step" (Adam updates), "passes" (forward passes:
 * they pick the noise and dropout streams), "state_T", "state_B", and "data_crc32" (of the
 * data section; checked when present). A model loaded from it
 * continues training bit for bit like the model that wrote it. */

/* Writes atomically (temporary file, fsync, rename): an existing file at `path` is
 * replaced whole or not at all. */
ENN_API enn_status enn_model_save(enn_model *model, const char *path);
/* A caller's text saved with the model, in the same file and the same atomic write (a
 * training loop's state, so that weights and loop never disagree after a crash; a note):
 * entries of the header's metadata beside libenn's own, whose keys they may not take. */
typedef struct enn_metadata {
    const char *key;
    const char *value;
} enn_metadata;
ENN_API enn_status enn_model_save_with_metadata(enn_model *model, const char *path, const enn_metadata *extra,
                                                uint32_t count);
/* The metadata value under `key` in the checkpoint at `path`, malloc'ed into *value (free
 * it), or *value = NULL when there is no such key (ENN_OK). The file is read and checked
 * as a safetensors file, not loaded into a model. */
ENN_API enn_status enn_checkpoint_metadata(const char *path, const char *key, char **value);
/* Creates a model from a checkpoint's configuration and loads it. */
ENN_API enn_status enn_model_load(enn_context *ctx, const char *path, enn_model **out);
/* Loads into an existing model: every tensor's name, shape and dtype must match the
 * model's, and nothing else may be in the file. The whole file is read and checked
 * before anything changes, so on failure the model is as it was. The model keeps its own
 * configuration except the learning rate, which is training state and comes from the
 * checkpoint like the step and pass counters. */
ENN_API enn_status enn_model_load_into(enn_model *model, const char *path);

/* ---------------------------------------------------------------- streaming inference
 * A stream runs a trained model one time step at a time, keeping the recurrent state
 * (h and the trace H) on the device between calls: for programs that get frames or
 * tokens as they come. A step is the cell's single-step forward (input projection,
 * memory step with the trace update, integrator, layer norms) with no noise and no
 * dropout, then the head. Stepping a sequence x_1..x_T from a reset gives exactly the
 * hidden states of enn_model_evaluate on that sequence (up to fp32 rounding), and each
 * step returns what evaluate would return for the sequence so far:
 *   classifier, attention pooling   logits of the context pooled over steps 1..t (the
 *                                    pooling's softmax is kept as running sums), so
 *                                    step T gives evaluate's logits
 *   classifier, last-state pooling  logits of h_t
 *   regressor                       the prediction from h_t (return_sequences or not)
 *   language model                  logits over the vocabulary for the next token
 * The stream reads the model's parameters where they live, so training the model
 * between steps changes the steps after it. The model must outlive its streams. */
typedef struct enn_stream enn_stream;

/* `batch` parallel, independent streams (1..max_batch of the model; 0 means 1). With a
 * shared trace (ENN_TRACE_SHARED) the streams of one enn_stream share one trace, as the
 * samples of a batch do. Starts reset. Only ENN models (not the baselines). */
ENN_API enn_status enn_stream_create(enn_model *model, uint32_t batch, enn_stream **out);
ENN_API void enn_stream_destroy(enn_stream *stream);
/* h = 0, H = 0 and the pooling sums emptied: the state evaluation starts from. */
ENN_API enn_status enn_stream_reset(enn_stream *stream);
/* One step for every stream. x: [batch, input_features] (a language model with float
 * token input: [batch] token ids as floats). out, when not NULL: [batch, outputs]. */
ENN_API enn_status enn_stream_step(enn_stream *stream, const float *x, float *out);
/* The same for an embedding language model: tokens [batch] ids. */
ENN_API enn_status enn_stream_step_tokens(enn_stream *stream, const uint32_t *tokens, float *out);
/* Floats per stream of a step's output (the model's outputs). */
ENN_API uint32_t enn_stream_outputs(const enn_stream *stream);
/* Steps since the last reset (recorded steps count when they are recorded). */
ENN_API uint64_t enn_stream_position(const enn_stream *stream);
/* The current state, either may be NULL: h [batch, hidden]; H [N, hidden] (shared
 * trace) or [batch, N, hidden] (per-sample trace). */
ENN_API enn_status enn_stream_state(enn_stream *stream, float *h, float *H);

#ifdef __cplusplus
}
#endif
#endif /* ENN_H */
