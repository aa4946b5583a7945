/* diffcr — safetensors files (8-byte little-endian header length, JSON header, raw data).
 *
 * The reader treats the file as untrusted: header length, JSON syntax, every dtype, shape, and data
 * offset are validated against the file size; overflow-safe arithmetic; failures are one-line errors
 * naming the file and the problem. The writer writes a temporary file in the same folder and renames
 * it over the target (atomic on POSIX), so a crash or a full disk never leaves a half-written file. */
#ifndef DIFFCR_SAFETENSORS_H
#define DIFFCR_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "diffcr/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum dc_dtype {
    DC_DTYPE_F32 = 0, DC_DTYPE_F16, DC_DTYPE_BF16, DC_DTYPE_F64,
    DC_DTYPE_I64, DC_DTYPE_I32, DC_DTYPE_I16, DC_DTYPE_I8, DC_DTYPE_U8, DC_DTYPE_BOOL,
    DC_DTYPE_COUNT
} dc_dtype;

const char *dc_dtype_name(dc_dtype t);   /* "F32", ... */
size_t dc_dtype_size(dc_dtype t);

#define DC_ST_MAX_DIMS 8

typedef struct dc_st_tensor {
    char *name;
    dc_dtype dtype;
    int ndim;
    int64_t shape[DC_ST_MAX_DIMS];
    size_t numel;
    const void *data;   /* points into the file's data section */
    size_t nbytes;
} dc_st_tensor;

typedef struct dc_safetensors dc_safetensors;

int dc_st_open(dc_safetensors **out, const char *path, dc_error *err);
void dc_st_close(dc_safetensors *st);
int dc_st_count(const dc_safetensors *st);
const dc_st_tensor *dc_st_get(const dc_safetensors *st, int i);
const dc_st_tensor *dc_st_find(const dc_safetensors *st, const char *name);
/* __metadata__ string value, or NULL. */
const char *dc_st_meta(const dc_safetensors *st, const char *key);
int dc_st_meta_count(const dc_safetensors *st);
void dc_st_meta_get(const dc_safetensors *st, int i, const char **key, const char **value);
/* Copy a tensor into dst as float32 (F32, F16, BF16 and F64 are converted); its numel must equal n. */
int dc_st_read_f32(const dc_safetensors *st, const char *name, float *dst, size_t n, dc_error *err);

typedef struct dc_st_writer dc_st_writer;

dc_st_writer *dc_st_writer_new(void);
/* data is not copied: it must stay valid until dc_st_writer_write. */
int dc_st_writer_add(dc_st_writer *w, const char *name, dc_dtype dtype, int ndim,
                     const int64_t *shape, const void *data, dc_error *err);
int dc_st_writer_meta(dc_st_writer *w, const char *key, const char *value, dc_error *err);
int dc_st_writer_write(dc_st_writer *w, const char *path, dc_error *err);
void dc_st_writer_free(dc_st_writer *w);

#ifdef __cplusplus
}
#endif
#endif
