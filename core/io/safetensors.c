/* diffcr — safetensors reader and writer (see safetensors.h).
 *
 * Format: an 8-byte little-endian header length N, N bytes of JSON, then the data section. The JSON
 * maps tensor names to {"dtype", "shape", "data_offsets": [begin, end]} (offsets relative to the data
 * section) plus an optional "__metadata__" object of strings.
 *
 * Reading. Checkpoints come from the internet, so the file is untrusted: the header length is checked
 * against the file size and a cap before anything is allocated from it, every header field is checked
 * for type and range, sizes are multiplied with overflow checks, and every tensor must lie inside the
 * data section with exactly numel * dtype-size bytes. The whole file is read into memory (a 23 M
 * parameter model is 92 MB); reading instead of mmap means a file truncated by someone else while we
 * use it cannot SIGBUS us. The data section gets its own malloc so that it starts aligned; a tensor
 * whose offset is not a multiple of its element size (legal in the format, never written by the
 * reference writer) gets an aligned private copy, so callers may always cast `data` to the element
 * type.
 *
 * Writing. Tensors are not copied; the header is written by hand (exact integer formatting, which the
 * reference Rust reader needs for its u64 offsets) and padded with spaces to a multiple of 8 bytes as
 * the reference implementation does. The data section holds the tensors ordered by decreasing element
 * size, so every tensor offset is aligned for its type while the section stays contiguous (the
 * reference reader rejects holes). Output goes to "<path>.tmp.<pid>", is fsync'ed and renamed over
 * the target: a failure at any point (ENOSPC included) removes the temporary file and leaves an
 * existing target untouched. */
#include "diffcr/safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Tensor bytes are used in place (F32 data is handed to the network as floats): the host must be
 * little-endian like the format. Every platform diffcr targets is. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "diffcr's safetensors code assumes a little-endian host"
#endif

/* The reference implementation refuses headers above 100 MB; so do we (a 308-tensor header is 30 KB). */
#define ST_MAX_HEADER ((uint64_t)100000000)
/* JSON numbers are doubles: integers above 2^53 are not exact, so no valid offset or dimension can
 * exceed it. */
#define ST_MAX_EXACT_INT 9007199254740992.0

static const struct {
    const char *name;
    size_t size;
} dtype_info[DC_DTYPE_COUNT] = {
    [DC_DTYPE_F32] = {"F32", 4},  [DC_DTYPE_F16] = {"F16", 2}, [DC_DTYPE_BF16] = {"BF16", 2},
    [DC_DTYPE_F64] = {"F64", 8},  [DC_DTYPE_I64] = {"I64", 8}, [DC_DTYPE_I32] = {"I32", 4},
    [DC_DTYPE_I16] = {"I16", 2},  [DC_DTYPE_I8] = {"I8", 1},   [DC_DTYPE_U8] = {"U8", 1},
    [DC_DTYPE_BOOL] = {"BOOL", 1},
};

const char *dc_dtype_name(dc_dtype t)
{
    return (unsigned)t < DC_DTYPE_COUNT ? dtype_info[t].name : "?";
}

size_t dc_dtype_size(dc_dtype t)
{
    return (unsigned)t < DC_DTYPE_COUNT ? dtype_info[t].size : 0;
}

static int dtype_from_name(const char *s, dc_dtype *out)
{
    for (int i = 0; i < DC_DTYPE_COUNT; i++)
        if (strcmp(s, dtype_info[i].name) == 0) {
            *out = (dc_dtype)i;
            return 1;
        }
    return 0;
}

static char *dup_string(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

/* numel and byte count of a shape, or 0 when they overflow size_t. */
static int shape_size(const int64_t *shape, int ndim, size_t elem, size_t *numel, size_t *nbytes)
{
    size_t n = 1;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] < 0 || (uint64_t)shape[d] > SIZE_MAX)
            return 0;
        size_t s = (size_t)shape[d];
        if (s != 0 && n > SIZE_MAX / s)
            return 0;
        n *= s;
    }
    if (elem != 0 && n > SIZE_MAX / elem)
        return 0;
    *numel = n;
    *nbytes = n * elem;
    return 1;
}

/* ============================================================================================ */
/* Reader                                                                                       */
/* ============================================================================================ */

struct dc_safetensors {
    char *path;
    unsigned char *data;       /* data section (own allocation: aligned); never NULL */
    size_t data_size;
    dc_st_tensor *tensors;     /* header order */
    void **private_copies;     /* per tensor: aligned copy for misaligned offsets, else NULL */
    int count;
    const dc_st_tensor **by_name;   /* tensors sorted by name, for dc_st_find */
    char **meta_keys;
    char **meta_values;
    int meta_count;
};

/* Read exactly n bytes (short reads and EINTR are retried). Returns 0, or an errno value; EIO
 * stands for "end of file reached early". */
static int read_full(int fd, void *buf, size_t n)
{
    unsigned char *p = buf;
    while (n > 0) {
        ssize_t r = read(fd, p, n);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return errno;
        }
        if (r == 0)
            return EIO;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

/* A JSON number that is an exact non-negative integer up to 2^53. */
static int json_uint(const cJSON *v, uint64_t *out)
{
    if (!cJSON_IsNumber(v))
        return 0;
    double d = v->valuedouble;
    if (!isfinite(d) || d < 0.0 || d > ST_MAX_EXACT_INT || floor(d) != d)
        return 0;
    *out = (uint64_t)d;
    return 1;
}

static int cmp_by_name(const void *a, const void *b)
{
    const dc_st_tensor *ta = *(const dc_st_tensor *const *)a;
    const dc_st_tensor *tb = *(const dc_st_tensor *const *)b;
    return strcmp(ta->name, tb->name);
}

/* Fill one tensor record from its header entry; t->name is already set. */
static int parse_tensor_entry(dc_safetensors *st, dc_st_tensor *t, void **private_copy,
                              const cJSON *entry, dc_error *err)
{
    const char *path = st->path;
    if (!cJSON_IsObject(entry))
        return dc_fail(err, DC_ERR_FORMAT, "%s: header entry \"%s\" is not an object", path, t->name);

    const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(entry, "dtype");
    if (!cJSON_IsString(dtype))
        return dc_fail(err, DC_ERR_FORMAT, "%s: tensor \"%s\" has no \"dtype\" string", path, t->name);
    if (!dtype_from_name(dtype->valuestring, &t->dtype))
        return dc_fail(err, DC_ERR_FORMAT, "%s: tensor \"%s\" has unknown dtype \"%.32s\"", path,
                       t->name, dtype->valuestring);

    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(entry, "shape");
    if (!cJSON_IsArray(shape))
        return dc_fail(err, DC_ERR_FORMAT, "%s: tensor \"%s\" has no \"shape\" array", path, t->name);
    int ndim = cJSON_GetArraySize(shape);
    if (ndim > DC_ST_MAX_DIMS)
        return dc_fail(err, DC_ERR_FORMAT, "%s: tensor \"%s\" has %d dimensions (at most %d)", path,
                       t->name, ndim, DC_ST_MAX_DIMS);
    t->ndim = ndim;
    int d = 0;
    for (const cJSON *dim = shape->child; dim; dim = dim->next, d++) {
        uint64_t v;
        if (!json_uint(dim, &v) || v > (uint64_t)INT64_MAX)
            return dc_fail(err, DC_ERR_FORMAT,
                           "%s: tensor \"%s\": shape[%d] is not a non-negative integer", path, t->name, d);
        t->shape[d] = (int64_t)v;
    }
    size_t elem = dtype_info[t->dtype].size;
    if (!shape_size(t->shape, ndim, elem, &t->numel, &t->nbytes))
        return dc_fail(err, DC_ERR_FORMAT, "%s: tensor \"%s\": shape is too large (size overflows)",
                       path, t->name);

    const cJSON *offsets = cJSON_GetObjectItemCaseSensitive(entry, "data_offsets");
    uint64_t begin, end;
    if (!cJSON_IsArray(offsets) || cJSON_GetArraySize(offsets) != 2 ||
        !json_uint(offsets->child, &begin) || !json_uint(offsets->child->next, &end))
        return dc_fail(err, DC_ERR_FORMAT,
                       "%s: tensor \"%s\": \"data_offsets\" must be [begin, end] non-negative integers",
                       path, t->name);
    if (begin > end || end > (uint64_t)st->data_size)
        return dc_fail(err, DC_ERR_FORMAT,
                       "%s: tensor \"%s\": data_offsets [%" PRIu64 ", %" PRIu64
                       "] lie outside the data section (%zu bytes)",
                       path, t->name, begin, end, st->data_size);
    if (end - begin != (uint64_t)t->nbytes)
        return dc_fail(err, DC_ERR_FORMAT,
                       "%s: tensor \"%s\": data_offsets span %" PRIu64
                       " bytes but shape and dtype need %zu",
                       path, t->name, end - begin, t->nbytes);

    const unsigned char *src = st->data + begin;
    if (begin % elem != 0 && t->nbytes > 0) {
        /* Misaligned for its type: hand out an aligned copy instead (malloc aligns for any type). */
        void *copy = malloc(t->nbytes);
        if (!copy)
            return dc_fail(err, DC_ERR_NOMEM, "%s: out of memory copying tensor \"%s\"", path, t->name);
        memcpy(copy, src, t->nbytes);
        *private_copy = copy;
        src = copy;
    }
    t->data = src;
    return DC_OK;
}

static int parse_metadata(dc_safetensors *st, const cJSON *meta, dc_error *err)
{
    if (!cJSON_IsObject(meta))
        return dc_fail(err, DC_ERR_FORMAT, "%s: \"__metadata__\" is not an object", st->path);
    int n = cJSON_GetArraySize(meta);
    if (n == 0)
        return DC_OK;
    st->meta_keys = calloc((size_t)n, sizeof *st->meta_keys);
    st->meta_values = calloc((size_t)n, sizeof *st->meta_values);
    if (!st->meta_keys || !st->meta_values)
        return dc_fail(err, DC_ERR_NOMEM, "%s: out of memory reading metadata", st->path);
    for (const cJSON *m = meta->child; m; m = m->next) {
        if (!cJSON_IsString(m))
            return dc_fail(err, DC_ERR_FORMAT, "%s: metadata value \"%.64s\" is not a string",
                           st->path, m->string);
        /* A duplicate key would make dc_st_meta ambiguous. */
        for (int j = 0; j < st->meta_count; j++)
            if (strcmp(st->meta_keys[j], m->string) == 0)
                return dc_fail(err, DC_ERR_FORMAT, "%s: metadata key \"%.64s\" appears twice",
                               st->path, m->string);
        st->meta_keys[st->meta_count] = dup_string(m->string);
        st->meta_values[st->meta_count] = dup_string(m->valuestring);
        if (!st->meta_keys[st->meta_count] || !st->meta_values[st->meta_count]) {
            st->meta_count++;   /* so close frees whichever half was allocated */
            return dc_fail(err, DC_ERR_NOMEM, "%s: out of memory reading metadata", st->path);
        }
        st->meta_count++;
    }
    return DC_OK;
}

/* Validate the header JSON (NUL-terminated, hlen bytes before the terminator) and build the tables. */
static int parse_header(dc_safetensors *st, const char *header, size_t hlen, dc_error *err)
{
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithOpts(header, &end, 0);
    if (!root)
        return dc_fail(err, DC_ERR_FORMAT, "%s: header is not valid JSON (near byte %td of %zu)",
                       st->path, end ? end - header : (ptrdiff_t)0, hlen);
    /* The reference writer pads with spaces; anything else after the JSON (including a NUL that cut
     * cJSON short) means the header is not what it claims. */
    for (const char *p = end; p < header + hlen; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
            cJSON_Delete(root);
            return dc_fail(err, DC_ERR_FORMAT, "%s: header has trailing bytes after the JSON (byte %td)",
                           st->path, p - header);
        }
    int rc = DC_OK;
    if (!cJSON_IsObject(root)) {
        rc = dc_fail(err, DC_ERR_FORMAT, "%s: header JSON is not an object", st->path);
        goto done;
    }

    int n = 0;
    for (const cJSON *e = root->child; e; e = e->next)
        if (strcmp(e->string, "__metadata__") != 0)
            n++;
    st->tensors = calloc((size_t)(n > 0 ? n : 1), sizeof *st->tensors);
    st->private_copies = calloc((size_t)(n > 0 ? n : 1), sizeof *st->private_copies);
    st->by_name = calloc((size_t)(n > 0 ? n : 1), sizeof *st->by_name);
    if (!st->tensors || !st->private_copies || !st->by_name) {
        rc = dc_fail(err, DC_ERR_NOMEM, "%s: out of memory reading the header", st->path);
        goto done;
    }

    int seen_meta = 0;
    for (const cJSON *e = root->child; e; e = e->next) {
        if (strcmp(e->string, "__metadata__") == 0) {
            if (seen_meta++) {
                rc = dc_fail(err, DC_ERR_FORMAT, "%s: \"__metadata__\" appears twice", st->path);
                goto done;
            }
            if ((rc = parse_metadata(st, e, err)) != DC_OK)
                goto done;
            continue;
        }
        if (e->string[0] == '\0') {
            rc = dc_fail(err, DC_ERR_FORMAT, "%s: a tensor has an empty name", st->path);
            goto done;
        }
        dc_st_tensor *t = &st->tensors[st->count];
        t->name = dup_string(e->string);
        if (!t->name) {
            rc = dc_fail(err, DC_ERR_NOMEM, "%s: out of memory reading the header", st->path);
            goto done;
        }
        st->count++;   /* counted now so that close frees the name even if the entry is bad */
        rc = parse_tensor_entry(st, t, &st->private_copies[st->count - 1], e, err);
        if (rc != DC_OK)
            goto done;
    }

    for (int i = 0; i < st->count; i++)
        st->by_name[i] = &st->tensors[i];
    qsort(st->by_name, (size_t)st->count, sizeof *st->by_name, cmp_by_name);
    /* cJSON keeps duplicate keys; a second tensor of the same name would be unreachable. */
    for (int i = 1; i < st->count; i++)
        if (strcmp(st->by_name[i - 1]->name, st->by_name[i]->name) == 0) {
            rc = dc_fail(err, DC_ERR_FORMAT, "%s: tensor \"%s\" appears twice", st->path,
                         st->by_name[i]->name);
            goto done;
        }
done:
    cJSON_Delete(root);
    return rc;
}

int dc_st_open(dc_safetensors **out, const char *path, dc_error *err)
{
    if (!out || !path)
        return dc_fail(err, DC_ERR_ARG, "dc_st_open: NULL argument");
    *out = NULL;

    dc_safetensors *st = calloc(1, sizeof *st);
    if (!st || !(st->path = dup_string(path))) {
        free(st);
        return dc_fail(err, DC_ERR_NOMEM, "%s: out of memory", path);
    }
    char *header = NULL;
    int rc = DC_OK;
    /* O_NONBLOCK: opening a FIFO must not hang before S_ISREG rejects it (no effect on files). */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        rc = dc_fail(err, DC_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
        goto fail;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        rc = dc_fail(err, DC_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
        goto fail;
    }
    if (!S_ISREG(sb.st_mode)) {
        rc = dc_fail(err, DC_ERR_IO, "%s: not a regular file", path);
        goto fail;
    }
    uint64_t file_size = (uint64_t)sb.st_size;
    if (file_size < 8) {
        rc = dc_fail(err, DC_ERR_FORMAT, "%s: file is truncated (%" PRIu64 " bytes, the header length alone is 8)",
                     path, file_size);
        goto fail;
    }

    unsigned char lenbuf[8];
    int e = read_full(fd, lenbuf, 8);
    if (e) {
        rc = dc_fail(err, DC_ERR_IO, "%s: cannot read: %s", path, e == EIO ? "file is truncated" : strerror(e));
        goto fail;
    }
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = (hlen << 8) | lenbuf[i];
    if (hlen > file_size - 8) {
        rc = dc_fail(err, DC_ERR_FORMAT,
                     "%s: header length %" PRIu64 " points past the end of the file (%" PRIu64 " bytes)",
                     path, hlen, file_size);
        goto fail;
    }
    if (hlen > ST_MAX_HEADER) {
        rc = dc_fail(err, DC_ERR_FORMAT, "%s: header length %" PRIu64 " exceeds the %" PRIu64 "-byte limit",
                     path, hlen, ST_MAX_HEADER);
        goto fail;
    }
    if (hlen < 2) {
        rc = dc_fail(err, DC_ERR_FORMAT, "%s: header length %" PRIu64 " is too small for a JSON object",
                     path, hlen);
        goto fail;
    }
    uint64_t data_size = file_size - 8 - hlen;
    if (data_size > SIZE_MAX - 1) {
        rc = dc_fail(err, DC_ERR_FORMAT, "%s: data section too large for this machine", path);
        goto fail;
    }

    header = malloc((size_t)hlen + 1);
    /* +1: a zero-size section still gets a real pointer, so tensor pointers are never NULL + 0. */
    st->data = malloc((size_t)data_size + 1);
    st->data_size = (size_t)data_size;
    if (!header || !st->data) {
        rc = dc_fail(err, DC_ERR_NOMEM, "%s: out of memory reading %" PRIu64 " bytes", path, file_size);
        goto fail;
    }
    if ((e = read_full(fd, header, (size_t)hlen)) != 0 ||
        (e = read_full(fd, st->data, (size_t)data_size)) != 0) {
        /* The size came from fstat, so EIO here means the file shrank while we read it. */
        rc = dc_fail(err, DC_ERR_IO, "%s: cannot read: %s", path, e == EIO ? "file is truncated" : strerror(e));
        goto fail;
    }
    header[hlen] = '\0';
    close(fd);
    fd = -1;

    if ((rc = parse_header(st, header, (size_t)hlen, err)) != DC_OK)
        goto fail;
    free(header);
    *out = st;
    return DC_OK;

fail:
    if (fd >= 0)
        close(fd);
    free(header);
    dc_st_close(st);
    return rc;
}

void dc_st_close(dc_safetensors *st)
{
    if (!st)
        return;
    for (int i = 0; i < st->count; i++) {
        free(st->tensors[i].name);
        free(st->private_copies[i]);
    }
    for (int i = 0; i < st->meta_count; i++) {
        free(st->meta_keys[i]);
        free(st->meta_values[i]);
    }
    free(st->tensors);
    free(st->private_copies);
    free(st->by_name);
    free(st->meta_keys);
    free(st->meta_values);
    free(st->data);
    free(st->path);
    free(st);
}

int dc_st_count(const dc_safetensors *st)
{
    return st ? st->count : 0;
}

const dc_st_tensor *dc_st_get(const dc_safetensors *st, int i)
{
    return st && i >= 0 && i < st->count ? &st->tensors[i] : NULL;
}

const dc_st_tensor *dc_st_find(const dc_safetensors *st, const char *name)
{
    if (!st || !name)
        return NULL;
    int lo = 0, hi = st->count - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        const dc_st_tensor *t = st->by_name[mid];
        int c = strcmp(name, t->name);
        if (c == 0)
            return t;
        if (c < 0)
            hi = mid - 1;
        else
            lo = mid + 1;
    }
    return NULL;
}

const char *dc_st_meta(const dc_safetensors *st, const char *key)
{
    if (!st || !key)
        return NULL;
    for (int i = 0; i < st->meta_count; i++)
        if (strcmp(st->meta_keys[i], key) == 0)
            return st->meta_values[i];
    return NULL;
}

int dc_st_meta_count(const dc_safetensors *st)
{
    return st ? st->meta_count : 0;
}

void dc_st_meta_get(const dc_safetensors *st, int i, const char **key, const char **value)
{
    int ok = st && i >= 0 && i < st->meta_count;
    if (key)
        *key = ok ? st->meta_keys[i] : NULL;
    if (value)
        *value = ok ? st->meta_values[i] : NULL;
}

/* IEEE half to single, exact for every value (subnormals, infinities and NaN payloads included). */
static float half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1Fu;
    uint32_t mant = h & 0x3FFu;
    uint32_t bits;
    if (exp == 0x1F) {
        bits = sign | 0x7F800000u | (mant << 13);
    } else if (exp != 0) {
        bits = sign | ((exp + 112u) << 23) | (mant << 13);
    } else if (mant == 0) {
        bits = sign;
    } else {
        /* Subnormal half: normalise the mantissa into a single-precision normal. */
        int e = -1;
        do {
            e++;
            mant <<= 1;
        } while ((mant & 0x400u) == 0);
        bits = sign | ((uint32_t)(112 - e) << 23) | ((mant & 0x3FFu) << 13);
    }
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

int dc_st_read_f32(const dc_safetensors *st, const char *name, float *dst, size_t n, dc_error *err)
{
    if (!st || !name || (!dst && n > 0))
        return dc_fail(err, DC_ERR_ARG, "dc_st_read_f32: NULL argument");
    const dc_st_tensor *t = dc_st_find(st, name);
    if (!t)
        return dc_fail(err, DC_ERR_FORMAT, "%s: no tensor \"%s\"", st->path, name);
    if (t->numel != n)
        return dc_fail(err, DC_ERR_SHAPE, "%s: tensor \"%s\" has %zu elements, expected %zu", st->path,
                       name, t->numel, n);
    const unsigned char *src = t->data;
    switch (t->dtype) {
    case DC_DTYPE_F32:
        if (n > 0)
            memcpy(dst, src, n * sizeof(float));
        break;
    case DC_DTYPE_F16:
        for (size_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, src + 2 * i, 2);
            dst[i] = half_to_float(h);
        }
        break;
    case DC_DTYPE_BF16:
        /* bfloat16 is the top half of a float32. */
        for (size_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, src + 2 * i, 2);
            uint32_t bits = (uint32_t)h << 16;
            memcpy(&dst[i], &bits, sizeof bits);
        }
        break;
    case DC_DTYPE_F64:
        for (size_t i = 0; i < n; i++) {
            double v;
            memcpy(&v, src + 8 * i, 8);
            dst[i] = (float)v;
        }
        break;
    default:
        return dc_fail(err, DC_ERR_FORMAT, "%s: tensor \"%s\" has dtype %s, not a floating-point type",
                       st->path, name, dc_dtype_name(t->dtype));
    }
    return DC_OK;
}

/* ============================================================================================ */
/* Writer                                                                                       */
/* ============================================================================================ */

typedef struct writer_tensor {
    char *name;
    dc_dtype dtype;
    int ndim;
    int64_t shape[DC_ST_MAX_DIMS];
    const void *data;
    size_t nbytes;
    uint64_t begin;   /* assigned by dc_st_writer_write */
} writer_tensor;

struct dc_st_writer {
    writer_tensor *tensors;
    int count, cap;
    char **meta_keys;
    char **meta_values;
    int meta_count, meta_cap;
};

dc_st_writer *dc_st_writer_new(void)
{
    return calloc(1, sizeof(dc_st_writer));
}

void dc_st_writer_free(dc_st_writer *w)
{
    if (!w)
        return;
    for (int i = 0; i < w->count; i++)
        free(w->tensors[i].name);
    for (int i = 0; i < w->meta_count; i++) {
        free(w->meta_keys[i]);
        free(w->meta_values[i]);
    }
    free(w->tensors);
    free(w->meta_keys);
    free(w->meta_values);
    free(w);
}

int dc_st_writer_add(dc_st_writer *w, const char *name, dc_dtype dtype, int ndim,
                     const int64_t *shape, const void *data, dc_error *err)
{
    if (!w || !name || (ndim > 0 && !shape))
        return dc_fail(err, DC_ERR_ARG, "dc_st_writer_add: NULL argument");
    if (name[0] == '\0' || strcmp(name, "__metadata__") == 0)
        return dc_fail(err, DC_ERR_ARG, "safetensors writer: invalid tensor name \"%s\"", name);
    if ((unsigned)dtype >= DC_DTYPE_COUNT)
        return dc_fail(err, DC_ERR_ARG, "safetensors writer: tensor \"%s\": invalid dtype %d", name,
                       (int)dtype);
    if (ndim < 0 || ndim > DC_ST_MAX_DIMS)
        return dc_fail(err, DC_ERR_ARG, "safetensors writer: tensor \"%s\": %d dimensions (0..%d)", name,
                       ndim, DC_ST_MAX_DIMS);
    size_t numel, nbytes;
    if (!shape_size(shape, ndim, dtype_info[dtype].size, &numel, &nbytes))
        return dc_fail(err, DC_ERR_ARG, "safetensors writer: tensor \"%s\": negative or too large shape",
                       name);
    if (nbytes > 0 && !data)
        return dc_fail(err, DC_ERR_ARG, "safetensors writer: tensor \"%s\": NULL data", name);
    for (int i = 0; i < w->count; i++)
        if (strcmp(w->tensors[i].name, name) == 0)
            return dc_fail(err, DC_ERR_ARG, "safetensors writer: tensor \"%s\" added twice", name);

    if (w->count == w->cap) {
        int cap = w->cap ? 2 * w->cap : 64;
        writer_tensor *grown = realloc(w->tensors, (size_t)cap * sizeof *grown);
        if (!grown)
            return dc_fail(err, DC_ERR_NOMEM, "safetensors writer: out of memory");
        w->tensors = grown;
        w->cap = cap;
    }
    writer_tensor *t = &w->tensors[w->count];
    memset(t, 0, sizeof *t);
    if (!(t->name = dup_string(name)))
        return dc_fail(err, DC_ERR_NOMEM, "safetensors writer: out of memory");
    t->dtype = dtype;
    t->ndim = ndim;
    for (int d = 0; d < ndim; d++)
        t->shape[d] = shape[d];
    t->data = data;
    t->nbytes = nbytes;
    w->count++;
    return DC_OK;
}

int dc_st_writer_meta(dc_st_writer *w, const char *key, const char *value, dc_error *err)
{
    if (!w || !key || !value)
        return dc_fail(err, DC_ERR_ARG, "dc_st_writer_meta: NULL argument");
    char *v = dup_string(value);
    if (!v)
        return dc_fail(err, DC_ERR_NOMEM, "safetensors writer: out of memory");
    /* Setting a key again replaces it (e.g. the training step when a checkpoint is rewritten). */
    for (int i = 0; i < w->meta_count; i++)
        if (strcmp(w->meta_keys[i], key) == 0) {
            free(w->meta_values[i]);
            w->meta_values[i] = v;
            return DC_OK;
        }
    if (w->meta_count == w->meta_cap) {
        int cap = w->meta_cap ? 2 * w->meta_cap : 8;
        char **k2 = realloc(w->meta_keys, (size_t)cap * sizeof *k2);
        if (k2)
            w->meta_keys = k2;
        char **v2 = k2 ? realloc(w->meta_values, (size_t)cap * sizeof *v2) : NULL;
        if (v2)
            w->meta_values = v2;
        if (!k2 || !v2) {
            free(v);
            return dc_fail(err, DC_ERR_NOMEM, "safetensors writer: out of memory");
        }
        w->meta_cap = cap;
    }
    char *k = dup_string(key);
    if (!k) {
        free(v);
        return dc_fail(err, DC_ERR_NOMEM, "safetensors writer: out of memory");
    }
    w->meta_keys[w->meta_count] = k;
    w->meta_values[w->meta_count] = v;
    w->meta_count++;
    return DC_OK;
}

/* A growable text buffer for the header; `failed` latches an allocation failure. */
typedef struct text_buf {
    char *p;
    size_t len, cap;
    int failed;
} text_buf;

static void tb_append(text_buf *b, const char *s, size_t n)
{
    if (b->failed)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *grown = realloc(b->p, cap);
        if (!grown) {
            b->failed = 1;
            return;
        }
        b->p = grown;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void tb_puts(text_buf *b, const char *s)
{
    tb_append(b, s, strlen(s));
}

static void tb_u64(text_buf *b, uint64_t v)
{
    char num[32];
    int n = snprintf(num, sizeof num, "%" PRIu64, v);
    tb_append(b, num, (size_t)n);
}

/* A JSON string literal. Bytes >= 0x80 pass through: names and values are expected to be UTF-8. */
static void tb_json_string(text_buf *b, const char *s)
{
    tb_append(b, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            tb_append(b, esc, 2);
        } else if (c < 0x20) {
            char esc[8];
            snprintf(esc, sizeof esc, "\\u%04x", c);
            tb_append(b, esc, 6);
        } else {
            tb_append(b, (const char *)&c, 1);
        }
    }
    tb_append(b, "\"", 1);
}

static int write_full(int fd, const void *buf, size_t n)
{
    const unsigned char *p = buf;
    while (n > 0) {
        /* Large tensors go in bounded chunks: some kernels cap a single write at ~2 GB. */
        size_t chunk = n < ((size_t)1 << 30) ? n : ((size_t)1 << 30);
        ssize_t r = write(fd, p, chunk);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return errno;
        }
        if (r == 0)
            return EIO;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

/* Make the rename durable: fsync the folder that holds the file. Best effort (some file systems
 * refuse fsync on directories); the data itself was already synced. */
static void sync_parent_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir;
    if (!slash)
        dir = dup_string(".");
    else if (slash == path)
        dir = dup_string("/");
    else {
        size_t n = (size_t)(slash - path);
        dir = malloc(n + 1);
        if (dir) {
            memcpy(dir, path, n);
            dir[n] = '\0';
        }
    }
    if (!dir)
        return;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
    free(dir);
}

int dc_st_writer_write(dc_st_writer *w, const char *path, dc_error *err)
{
    if (!w || !path || !*path)
        return dc_fail(err, DC_ERR_ARG, "dc_st_writer_write: NULL argument");

    /* Data layout: by decreasing element size (stable), so each offset is aligned for its type. */
    uint64_t offset = 0;
    for (size_t size = 8; size >= 1; size /= 2)
        for (int i = 0; i < w->count; i++)
            if (dtype_info[w->tensors[i].dtype].size == size) {
                w->tensors[i].begin = offset;
                offset += w->tensors[i].nbytes;
            }

    /* Header: metadata first, then tensors in the order they were added. */
    text_buf hb = {0};
    tb_puts(&hb, "{");
    if (w->meta_count > 0) {
        tb_puts(&hb, "\"__metadata__\":{");
        for (int i = 0; i < w->meta_count; i++) {
            if (i)
                tb_puts(&hb, ",");
            tb_json_string(&hb, w->meta_keys[i]);
            tb_puts(&hb, ":");
            tb_json_string(&hb, w->meta_values[i]);
        }
        tb_puts(&hb, "}");
    }
    for (int i = 0; i < w->count; i++) {
        const writer_tensor *t = &w->tensors[i];
        if (i || w->meta_count > 0)
            tb_puts(&hb, ",");
        tb_json_string(&hb, t->name);
        tb_puts(&hb, ":{\"dtype\":\"");
        tb_puts(&hb, dtype_info[t->dtype].name);
        tb_puts(&hb, "\",\"shape\":[");
        for (int d = 0; d < t->ndim; d++) {
            if (d)
                tb_puts(&hb, ",");
            tb_u64(&hb, (uint64_t)t->shape[d]);
        }
        tb_puts(&hb, "],\"data_offsets\":[");
        tb_u64(&hb, t->begin);
        tb_puts(&hb, ",");
        tb_u64(&hb, t->begin + t->nbytes);
        tb_puts(&hb, "]}");
    }
    tb_puts(&hb, "}");
    while (!hb.failed && hb.len % 8 != 0)
        tb_puts(&hb, " ");
    if (hb.failed) {
        free(hb.p);
        return dc_fail(err, DC_ERR_NOMEM, "%s: out of memory building the header", path);
    }
    unsigned char lenbuf[8];
    for (int i = 0; i < 8; i++)
        lenbuf[i] = (unsigned char)(((uint64_t)hb.len >> (8 * i)) & 0xFFu);

    size_t tmp_len = strlen(path) + 32;
    char *tmp = malloc(tmp_len);
    if (!tmp) {
        free(hb.p);
        return dc_fail(err, DC_ERR_NOMEM, "%s: out of memory", path);
    }
    snprintf(tmp, tmp_len, "%s.tmp.%ld", path, (long)getpid());

    int rc = DC_OK;
    /* O_NOFOLLOW: a planted symlink at the temporary name must not redirect the write. */
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0) {
        rc = dc_fail(err, DC_ERR_IO, "%s: cannot create %s: %s", path, tmp, strerror(errno));
        free(tmp);
        free(hb.p);
        return rc;
    }
    int e = write_full(fd, lenbuf, 8);
    if (!e)
        e = write_full(fd, hb.p, hb.len);
    for (size_t size = 8; !e && size >= 1; size /= 2)
        for (int i = 0; !e && i < w->count; i++)
            if (dtype_info[w->tensors[i].dtype].size == size && w->tensors[i].nbytes > 0)
                e = write_full(fd, w->tensors[i].data, w->tensors[i].nbytes);
    if (e) {
        rc = dc_fail(err, DC_ERR_IO, "%s: write failed: %s", path, strerror(e));
        close(fd);
        goto fail;
    }
    if (fsync(fd) != 0) {
        rc = dc_fail(err, DC_ERR_IO, "%s: fsync failed: %s", path, strerror(errno));
        close(fd);
        goto fail;
    }
    /* close can report a deferred write error (NFS): the file is not good then. */
    if (close(fd) != 0) {
        rc = dc_fail(err, DC_ERR_IO, "%s: close failed: %s", path, strerror(errno));
        goto fail;
    }
    if (rename(tmp, path) != 0) {
        rc = dc_fail(err, DC_ERR_IO, "%s: cannot rename the temporary file over it: %s", path,
                     strerror(errno));
        goto fail;
    }
    sync_parent_dir(path);
    free(tmp);
    free(hb.p);
    return DC_OK;

fail:
    unlink(tmp);
    free(tmp);
    free(hb.p);
    return rc;
}
