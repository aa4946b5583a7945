/* diffcr tests — safetensors reader and writer.
 *
 * Round trips of every float dtype (with conversion to F32), odd shapes, zero-size and scalar tensors
 * and metadata; a gallery of hand-made broken files, each of which must fail with a message naming the
 * problem (never a crash: this suite also runs under ASan+UBSan); and the atomic-write promise: a
 * failed write leaves no temporary file and does not touch an existing target. Write failures are
 * provoked with RLIMIT_FSIZE, which works as root, unlike read-only folders. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "diffcr/safetensors.h"
#include "testutil.h"

/* ---- scratch folder ---------------------------------------------------------------------------- */

static char scratch_dir[4096];

static void scratch_setup(void)
{
    const char *base = getenv("TMPDIR");
    snprintf(scratch_dir, sizeof scratch_dir, "%s/diffcr-st-XXXXXX", base && *base ? base : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(scratch_dir));
}

static void scratch_teardown(void)
{
    DIR *d = opendir(scratch_dir);
    if (d) {
        struct dirent *e;
        char p[8192];
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            snprintf(p, sizeof p, "%s/%s", scratch_dir, e->d_name);
            if (unlink(p) != 0)
                rmdir(p);
        }
        closedir(d);
    }
    rmdir(scratch_dir);
}

static const char *scratch(const char *name)
{
    static char p[8192];
    snprintf(p, sizeof p, "%s/%s", scratch_dir, name);
    return p;
}

/* Number of entries in the scratch folder whose name contains `part`. */
static int count_entries(const char *part)
{
    int n = 0;
    DIR *d = opendir(scratch_dir);
    ck_assert_ptr_nonnull(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strstr(e->d_name, part))
            n++;
    closedir(d);
    return n;
}

static void write_bytes(const char *path, const void *buf, size_t n)
{
    /* Unlink first: ext4 flushes a file truncated to zero on close (auto_da_alloc), which makes the
     * thousands of rewrites in test_corrupt_bytes_never_crash take seconds instead of milliseconds. */
    unlink(path);
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    if (n)
        ck_assert_uint_eq(fwrite(buf, 1, n, f), n);
    ck_assert_int_eq(fclose(f), 0);
}

/* A safetensors file from a header text, a declared header length, and data bytes. */
static void write_st_raw(const char *path, uint64_t declared_len, const char *header, size_t header_bytes,
                         const void *data, size_t data_bytes)
{
    size_t n = 8 + header_bytes + data_bytes;
    unsigned char *buf = malloc(n ? n : 1);
    ck_assert_ptr_nonnull(buf);
    for (int i = 0; i < 8; i++)
        buf[i] = (unsigned char)(declared_len >> (8 * i));
    memcpy(buf + 8, header, header_bytes);
    if (data_bytes)
        memcpy(buf + 8 + header_bytes, data, data_bytes);
    write_bytes(path, buf, n);
    free(buf);
}

static void write_st(const char *path, const char *header, size_t data_bytes)
{
    unsigned char *data = calloc(data_bytes ? data_bytes : 1, 1);
    ck_assert_ptr_nonnull(data);
    write_st_raw(path, strlen(header), header, strlen(header), data, data_bytes);
    free(data);
}

/* Opening must fail with `code` and a message naming the file and containing `what`. */
static void expect_open_error(const char *path, int code, const char *what)
{
    dc_safetensors *st = (dc_safetensors *)1;
    dc_error err;
    dc_error_clear(&err);
    int rc = dc_st_open(&st, path, &err);
    ck_assert_msg(rc == code, "%s: expected status %d, got %d (%s)", what, code, rc, err.msg);
    ck_assert_ptr_null(st);
    ck_assert_int_eq(err.code, code);
    ck_assert_msg(strstr(err.msg, path) != NULL, "message does not name the file: %s", err.msg);
    ck_assert_msg(strstr(err.msg, what) != NULL, "message \"%s\" lacks \"%s\"", err.msg, what);
    ck_assert_msg(strchr(err.msg, '\n') == NULL, "message is not one line: %s", err.msg);
}

/* ---- round trip -------------------------------------------------------------------------------- */

START_TEST(test_dtype_names)
{
    ck_assert_str_eq(dc_dtype_name(DC_DTYPE_F32), "F32");
    ck_assert_str_eq(dc_dtype_name(DC_DTYPE_BF16), "BF16");
    ck_assert_str_eq(dc_dtype_name(DC_DTYPE_BOOL), "BOOL");
    ck_assert_uint_eq(dc_dtype_size(DC_DTYPE_F64), 8);
    ck_assert_uint_eq(dc_dtype_size(DC_DTYPE_F16), 2);
    ck_assert_uint_eq(dc_dtype_size(DC_DTYPE_U8), 1);
    ck_assert_uint_eq(dc_dtype_size(DC_DTYPE_COUNT), 0);
}
END_TEST

START_TEST(test_round_trip)
{
    const char *path = scratch("model.safetensors");
    float f32[2 * 3];
    tu_fill_uniform(f32, 6, 1, 3.0f);
    /* 1, -2, smallest subnormal, largest finite, +inf, 0.5 + 2^-11 (exact in half) */
    const uint16_t f16[6] = {0x3C00, 0xC000, 0x0001, 0x7BFF, 0x7C00, 0x3801};
    const float f16_expect[6] = {1.0f, -2.0f, 5.9604644775390625e-8f, 65504.0f, INFINITY, 0.50048828125f};
    const uint16_t bf16[4] = {0x3F80, 0xBF00, 0x4049, 0x0000};   /* 1, -0.5, 3.140625, 0 */
    const float bf16_expect[4] = {1.0f, -0.5f, 3.140625f, 0.0f};
    const double f64[3] = {0.25, -1e-3, 12345.5};
    const int64_t i64[2] = {-7, 1LL << 40};
    const uint8_t u8[3] = {1, 2, 255};   /* odd byte count: the writer must keep later offsets aligned */
    const uint8_t flag = 1;

    const int64_t s_f32[2] = {2, 3}, s_f16[1] = {6}, s_bf16[2] = {2, 2}, s_f64[3] = {1, 3, 1};
    const int64_t s_i64[1] = {2}, s_u8[1] = {3}, s_empty[2] = {0, 4};

    dc_error err;
    dc_st_writer *w = dc_st_writer_new();
    ck_assert_ptr_nonnull(w);
    /* u8 first in insertion order on purpose: data must still come out aligned. */
    ck_assert_int_eq(dc_st_writer_add(w, "bytes", DC_DTYPE_U8, 1, s_u8, u8, &err), DC_OK);
    ck_assert_int_eq(dc_st_writer_add(w, "encoders.0.0.conv1.weight", DC_DTYPE_F32, 2, s_f32, f32, &err), DC_OK);
    ck_assert_int_eq(dc_st_writer_add(w, "half", DC_DTYPE_F16, 1, s_f16, f16, &err), DC_OK);
    ck_assert_int_eq(dc_st_writer_add(w, "brain", DC_DTYPE_BF16, 2, s_bf16, bf16, &err), DC_OK);
    ck_assert_int_eq(dc_st_writer_add(w, "double", DC_DTYPE_F64, 3, s_f64, f64, &err), DC_OK);
    ck_assert_int_eq(dc_st_writer_add(w, "step", DC_DTYPE_I64, 1, s_i64, i64, &err), DC_OK);
    ck_assert_int_eq(dc_st_writer_add(w, "flag", DC_DTYPE_BOOL, 0, NULL, &flag, &err), DC_OK);
    ck_assert_int_eq(dc_st_writer_add(w, "empty", DC_DTYPE_F32, 2, s_empty, NULL, &err), DC_OK);
    ck_assert_int_eq(dc_st_writer_meta(w, "diffcr.format", "1", &err), DC_OK);
    ck_assert_int_eq(dc_st_writer_meta(w, "note", "quote \" backslash \\ newline \n tab \t \xc3\xa9", &err), DC_OK);
    ck_assert_int_eq(dc_st_writer_meta(w, "diffcr.step", "10", &err), DC_OK);
    ck_assert_int_eq(dc_st_writer_meta(w, "diffcr.step", "20", &err), DC_OK);   /* replaces */
    /* Misuse is refused, not recorded. */
    ck_assert_int_eq(dc_st_writer_add(w, "half", DC_DTYPE_F16, 1, s_f16, f16, &err), DC_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(err.msg, "twice"));
    ck_assert_int_eq(dc_st_writer_add(w, "__metadata__", DC_DTYPE_F16, 1, s_f16, f16, &err), DC_ERR_ARG);
    const int64_t s_neg[1] = {-1};
    ck_assert_int_eq(dc_st_writer_add(w, "neg", DC_DTYPE_F32, 1, s_neg, f32, &err), DC_ERR_ARG);
    ck_assert_int_eq(dc_st_writer_add(w, "nodata", DC_DTYPE_F32, 1, s_f16, NULL, &err), DC_ERR_ARG);
    ck_assert_int_eq(dc_st_writer_write(w, path, &err), DC_OK);
    dc_st_writer_free(w);
    ck_assert_int_eq(count_entries(".tmp."), 0);

    /* The header is padded to a multiple of 8, so the data section starts aligned in the file. */
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    unsigned char lenbuf[8];
    ck_assert_uint_eq(fread(lenbuf, 1, 8, f), 8);
    fclose(f);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = (hlen << 8) | lenbuf[i];
    ck_assert_uint_eq(hlen % 8, 0);

    dc_safetensors *st = NULL;
    ck_assert_msg(dc_st_open(&st, path, &err) == DC_OK, "%s", err.msg);
    ck_assert_int_eq(dc_st_count(st), 8);
    ck_assert_str_eq(dc_st_get(st, 0)->name, "bytes");   /* header order = insertion order */
    ck_assert_ptr_null(dc_st_get(st, 8));
    ck_assert_ptr_null(dc_st_get(st, -1));
    ck_assert_ptr_null(dc_st_find(st, "missing"));
    for (int i = 0; i < dc_st_count(st); i++) {
        const dc_st_tensor *t = dc_st_get(st, i);
        ck_assert_msg((uintptr_t)t->data % dc_dtype_size(t->dtype) == 0, "%s misaligned", t->name);
        ck_assert_ptr_eq(dc_st_find(st, t->name), t);
    }

    const dc_st_tensor *t = dc_st_find(st, "encoders.0.0.conv1.weight");
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(t->dtype, DC_DTYPE_F32);
    ck_assert_int_eq(t->ndim, 2);
    ck_assert_int_eq(t->shape[0], 2);
    ck_assert_int_eq(t->shape[1], 3);
    ck_assert_uint_eq(t->numel, 6);
    ck_assert_uint_eq(t->nbytes, 24);
    ck_assert_mem_eq(t->data, f32, sizeof f32);

    float out[6];
    ck_assert_int_eq(dc_st_read_f32(st, "encoders.0.0.conv1.weight", out, 6, &err), DC_OK);
    ck_assert_mem_eq(out, f32, sizeof f32);
    ck_assert_int_eq(dc_st_read_f32(st, "half", out, 6, &err), DC_OK);
    for (int i = 0; i < 6; i++)
        ck_assert_msg(out[i] == f16_expect[i], "half[%d] = %g, expected %g", i, out[i], f16_expect[i]);
    ck_assert_int_eq(dc_st_read_f32(st, "brain", out, 4, &err), DC_OK);
    for (int i = 0; i < 4; i++)
        ck_assert(out[i] == bf16_expect[i]);
    ck_assert_int_eq(dc_st_read_f32(st, "double", out, 3, &err), DC_OK);
    for (int i = 0; i < 3; i++)
        ck_assert(out[i] == (float)f64[i]);
    ck_assert_int_eq(dc_st_read_f32(st, "empty", out, 0, &err), DC_OK);

    t = dc_st_find(st, "step");
    ck_assert_mem_eq(t->data, i64, sizeof i64);
    t = dc_st_find(st, "bytes");
    ck_assert_mem_eq(t->data, u8, sizeof u8);
    t = dc_st_find(st, "flag");
    ck_assert_int_eq(t->ndim, 0);
    ck_assert_uint_eq(t->numel, 1);
    ck_assert_int_eq(*(const uint8_t *)t->data, 1);
    t = dc_st_find(st, "empty");
    ck_assert_uint_eq(t->numel, 0);
    ck_assert_uint_eq(t->nbytes, 0);

    /* Wrong count, integer dtype, unknown name: errors, not conversions. */
    ck_assert_int_eq(dc_st_read_f32(st, "half", out, 5, &err), DC_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(err.msg, "half"));
    ck_assert_int_ne(dc_st_read_f32(st, "step", out, 2, &err), DC_OK);
    ck_assert_ptr_nonnull(strstr(err.msg, "I64"));
    ck_assert_int_ne(dc_st_read_f32(st, "nope", out, 2, &err), DC_OK);
    ck_assert_ptr_nonnull(strstr(err.msg, "nope"));

    ck_assert_int_eq(dc_st_meta_count(st), 3);
    ck_assert_str_eq(dc_st_meta(st, "diffcr.format"), "1");
    ck_assert_str_eq(dc_st_meta(st, "diffcr.step"), "20");
    ck_assert_str_eq(dc_st_meta(st, "note"), "quote \" backslash \\ newline \n tab \t \xc3\xa9");
    ck_assert_ptr_null(dc_st_meta(st, "absent"));
    const char *k, *v;
    dc_st_meta_get(st, 0, &k, &v);
    ck_assert_str_eq(k, "diffcr.format");
    ck_assert_str_eq(v, "1");
    dc_st_meta_get(st, 3, &k, &v);
    ck_assert_ptr_null(k);
    ck_assert_ptr_null(v);
    dc_st_close(st);
}
END_TEST

START_TEST(test_empty_file_and_rewrite)
{
    /* No tensors and no metadata is still a valid file ("{}" padded to 8). */
    const char *path = scratch("empty.safetensors");
    dc_error err;
    dc_st_writer *w = dc_st_writer_new();
    ck_assert_int_eq(dc_st_writer_write(w, path, &err), DC_OK);
    /* Writing again replaces the file (rename over an existing target). */
    const float x[2] = {1.5f, -2.5f};
    const int64_t shape[1] = {2};
    ck_assert_int_eq(dc_st_writer_add(w, "x", DC_DTYPE_F32, 1, shape, x, &err), DC_OK);
    dc_safetensors *st = NULL;
    ck_assert_int_eq(dc_st_open(&st, path, &err), DC_OK);
    ck_assert_int_eq(dc_st_count(st), 0);
    ck_assert_int_eq(dc_st_meta_count(st), 0);
    dc_st_close(st);
    ck_assert_int_eq(dc_st_writer_write(w, path, &err), DC_OK);
    dc_st_writer_free(w);
    ck_assert_int_eq(dc_st_open(&st, path, &err), DC_OK);
    ck_assert_int_eq(dc_st_count(st), 1);
    float y[2];
    ck_assert_int_eq(dc_st_read_f32(st, "x", y, 2, &err), DC_OK);
    ck_assert(y[0] == 1.5f && y[1] == -2.5f);
    dc_st_close(st);
    dc_st_close(NULL);
    dc_st_writer_free(NULL);
}
END_TEST

START_TEST(test_reads_unpadded_misaligned_file)
{
    /* Legal but unusual: no padding, and an F32 tensor at an odd offset. The reader must still hand
     * out an aligned pointer with the right values. */
    const char *path = scratch("odd.safetensors");
    const char *header = "{\"b\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
                         "\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[1,9]}}";
    unsigned char data[9] = {7};
    const float w[2] = {0.75f, -3.0f};
    memcpy(data + 1, w, sizeof w);
    write_st_raw(path, strlen(header), header, strlen(header), data, sizeof data);
    dc_safetensors *st = NULL;
    dc_error err;
    ck_assert_msg(dc_st_open(&st, path, &err) == DC_OK, "%s", err.msg);
    const dc_st_tensor *t = dc_st_find(st, "w");
    ck_assert_uint_eq((uintptr_t)t->data % 4, 0);
    ck_assert(((const float *)t->data)[0] == 0.75f && ((const float *)t->data)[1] == -3.0f);
    ck_assert_int_eq(((const uint8_t *)dc_st_find(st, "b")->data)[0], 7);
    dc_st_close(st);
}
END_TEST

/* ---- broken files ------------------------------------------------------------------------------ */

START_TEST(test_missing_file)
{
    expect_open_error(scratch("does-not-exist.safetensors"), DC_ERR_IO, "cannot open");
    expect_open_error(scratch_dir, DC_ERR_IO, "not a regular file");
    /* A FIFO must be refused, not waited on. */
    const char *fifo = scratch("fifo.safetensors");
    ck_assert_int_eq(mkfifo(fifo, 0600), 0);
    expect_open_error(fifo, DC_ERR_IO, "not a regular file");
}
END_TEST

START_TEST(test_truncated_length)
{
    const char *path = scratch("short.safetensors");
    write_bytes(path, "", 0);
    expect_open_error(path, DC_ERR_FORMAT, "truncated");
    write_bytes(path, "\x10\0\0\0\0", 5);
    expect_open_error(path, DC_ERR_FORMAT, "truncated");
}
END_TEST

START_TEST(test_header_past_end)
{
    const char *path = scratch("past.safetensors");
    /* Header cut short: the length says 64 bytes, only 20 follow. */
    const char *header = "{\"a\":{\"dtype\":\"F32\",";
    write_st_raw(path, 64, header, strlen(header), NULL, 0);
    expect_open_error(path, DC_ERR_FORMAT, "points past the end");
    /* A length that would wrap any naive addition. */
    write_st_raw(path, UINT64_MAX - 3, "{}", 2, NULL, 0);
    expect_open_error(path, DC_ERR_FORMAT, "points past the end");
    write_st_raw(path, 0, "", 0, NULL, 0);
    expect_open_error(path, DC_ERR_FORMAT, "too small");
}
END_TEST

START_TEST(test_header_too_large)
{
    /* A sparse file: 200 MB claimed header inside a 200 MB file, without writing 200 MB. */
    const char *path = scratch("big.safetensors");
    unsigned char lenbuf[8];
    uint64_t n = 200000000;
    for (int i = 0; i < 8; i++)
        lenbuf[i] = (unsigned char)(n >> (8 * i));
    write_bytes(path, lenbuf, 8);
    ck_assert_int_eq(truncate(path, (off_t)(8 + n)), 0);
    expect_open_error(path, DC_ERR_FORMAT, "exceeds");
}
END_TEST

START_TEST(test_invalid_json)
{
    const char *path = scratch("json.safetensors");
    write_st(path, "{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]", 4);
    expect_open_error(path, DC_ERR_FORMAT, "not valid JSON");
    write_st(path, "[1, 2, 3]", 0);
    expect_open_error(path, DC_ERR_FORMAT, "not an object");
    write_st(path, "{} xx", 0);
    expect_open_error(path, DC_ERR_FORMAT, "trailing");
    /* A NUL inside the header must not end it silently. */
    write_st_raw(path, 8, "{}\0{\"a\"}", 8, NULL, 0);
    expect_open_error(path, DC_ERR_FORMAT, "trailing");
    write_st(path, "{\"a\": 5}", 0);
    expect_open_error(path, DC_ERR_FORMAT, "not an object");
}
END_TEST

START_TEST(test_header_cut_by_length)
{
    /* The declared length is shorter than the JSON: what remains is not valid JSON. */
    const char *path = scratch("cut.safetensors");
    const char *header = "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}";
    write_st_raw(path, 20, header, strlen(header), NULL, 0);
    expect_open_error(path, DC_ERR_FORMAT, "not valid JSON");
}
END_TEST

START_TEST(test_bad_dtype)
{
    const char *path = scratch("dtype.safetensors");
    write_st(path, "{\"a\":{\"dtype\":\"F8_E4M3\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1);
    expect_open_error(path, DC_ERR_FORMAT, "unknown dtype \"F8_E4M3\"");
    write_st(path, "{\"a\":{\"dtype\":4,\"shape\":[1],\"data_offsets\":[0,4]}}", 4);
    expect_open_error(path, DC_ERR_FORMAT, "dtype");
    write_st(path, "{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4);
    expect_open_error(path, DC_ERR_FORMAT, "no \"dtype\"");
}
END_TEST

START_TEST(test_bad_shape)
{
    const char *path = scratch("shape.safetensors");
    write_st(path, "{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4);
    expect_open_error(path, DC_ERR_FORMAT, "shape[0] is not a non-negative integer");
    write_st(path, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2, 1.5],\"data_offsets\":[0,12]}}", 12);
    expect_open_error(path, DC_ERR_FORMAT, "shape[1]");
    write_st(path, "{\"a\":{\"dtype\":\"F32\",\"shape\":[1e300],\"data_offsets\":[0,4]}}", 4);
    expect_open_error(path, DC_ERR_FORMAT, "shape[0]");
    write_st(path, "{\"a\":{\"dtype\":\"F32\",\"shape\":[\"2\"],\"data_offsets\":[0,8]}}", 8);
    expect_open_error(path, DC_ERR_FORMAT, "shape[0]");
    /* Each dimension is fine, the product overflows 64 bits. */
    write_st(path, "{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],"
                   "\"data_offsets\":[0,0]}}", 0);
    expect_open_error(path, DC_ERR_FORMAT, "overflows");
    /* Above 2^53 a JSON number is not an exact integer. */
    write_st(path, "{\"a\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904],\"data_offsets\":[0,0]}}", 0);
    expect_open_error(path, DC_ERR_FORMAT, "shape[0]");
    /* numel = 2^62 fits, numel * 4 bytes does not. */
    write_st(path, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2147483648,2147483648],\"data_offsets\":[0,0]}}", 0);
    expect_open_error(path, DC_ERR_FORMAT, "overflows");
    write_st(path, "{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4);
    expect_open_error(path, DC_ERR_FORMAT, "9 dimensions");
    write_st(path, "{\"a\":{\"dtype\":\"F32\",\"shape\":5,\"data_offsets\":[0,4]}}", 4);
    expect_open_error(path, DC_ERR_FORMAT, "no \"shape\" array");
}
END_TEST

START_TEST(test_bad_offsets)
{
    const char *path = scratch("offsets.safetensors");
    /* Data cut short: the tensor needs 16 bytes, the file has 8. */
    write_st(path, "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8);
    expect_open_error(path, DC_ERR_FORMAT, "outside the data section");
    /* Offsets past the end, far past. */
    write_st(path, "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[1000000,1000004]}}", 8);
    expect_open_error(path, DC_ERR_FORMAT, "outside the data section");
    /* begin > end */
    write_st(path, "{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,4]}}", 8);
    expect_open_error(path, DC_ERR_FORMAT, "outside the data section");
    /* Inside the file but inconsistent with the shape. */
    write_st(path, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,12]}}", 12);
    expect_open_error(path, DC_ERR_FORMAT, "need 8");
    write_st(path, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", 8);
    expect_open_error(path, DC_ERR_FORMAT, "data_offsets");
    write_st(path, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[-8,0]}}", 8);
    expect_open_error(path, DC_ERR_FORMAT, "data_offsets");
    write_st(path, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8);
    expect_open_error(path, DC_ERR_FORMAT, "data_offsets");
}
END_TEST

START_TEST(test_bad_metadata_and_names)
{
    const char *path = scratch("meta.safetensors");
    write_st(path, "{\"__metadata__\":{\"ok\":\"1\",\"step\":5}}", 0);
    expect_open_error(path, DC_ERR_FORMAT, "metadata value \"step\" is not a string");
    write_st(path, "{\"__metadata__\":[\"a\"]}", 0);
    expect_open_error(path, DC_ERR_FORMAT, "\"__metadata__\" is not an object");
    write_st(path, "{\"__metadata__\":{\"a\":\"1\",\"a\":\"2\"}}", 0);
    expect_open_error(path, DC_ERR_FORMAT, "appears twice");
    write_st(path, "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
                   "\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}", 2);
    expect_open_error(path, DC_ERR_FORMAT, "tensor \"a\" appears twice");
    write_st(path, "{\"\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1);
    expect_open_error(path, DC_ERR_FORMAT, "empty name");
}
END_TEST

START_TEST(test_corrupt_bytes_never_crash)
{
    /* Flip bytes of a good file one at a time: every result must be a clean success or a clean
     * error (ASan/UBSan would catch a bad read). */
    const char *path = scratch("good.safetensors");
    dc_error err;
    float x[4] = {1, 2, 3, 4};
    const int64_t shape[2] = {2, 2};
    dc_st_writer *w = dc_st_writer_new();
    ck_assert_int_eq(dc_st_writer_add(w, "x", DC_DTYPE_F32, 2, shape, x, &err), DC_OK);
    ck_assert_int_eq(dc_st_writer_add(w, "y", DC_DTYPE_F16, 1, shape, x, &err), DC_OK);
    ck_assert_int_eq(dc_st_writer_meta(w, "k", "v", &err), DC_OK);
    ck_assert_int_eq(dc_st_writer_write(w, path, &err), DC_OK);
    dc_st_writer_free(w);

    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    unsigned char good[1024];
    size_t n = fread(good, 1, sizeof good, f);
    fclose(f);
    ck_assert_uint_gt(n, 8);
    ck_assert_uint_lt(n, sizeof good);
    const char *bad = scratch("bad.safetensors");
    const unsigned char flips[] = {0x01, 0x80, 0xFF, '"', '}', '-'};
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < sizeof flips; k++) {
            unsigned char copy[1024];
            memcpy(copy, good, n);
            copy[i] = (k < 3) ? (unsigned char)(copy[i] ^ flips[k]) : flips[k];
            write_bytes(bad, copy, n);
            dc_safetensors *st = NULL;
            dc_error_clear(&err);
            int rc = dc_st_open(&st, bad, &err);
            if (rc == DC_OK) {
                float out[4];
                for (int t = 0; t < dc_st_count(st); t++) {
                    const dc_st_tensor *tt = dc_st_get(st, t);
                    if (tt->numel <= 4)
                        (void)dc_st_read_f32(st, tt->name, out, tt->numel, &err);
                }
                dc_st_close(st);
            } else {
                ck_assert_ptr_null(st);
                ck_assert_msg(err.msg[0] != '\0', "byte %zu: empty message", i);
            }
        }
    /* And every truncation. */
    for (size_t len = 0; len < n; len++) {
        write_bytes(bad, good, len);
        dc_safetensors *st = NULL;
        ck_assert_int_ne(dc_st_open(&st, bad, &err), DC_OK);
        ck_assert_ptr_null(st);
    }
}
END_TEST

/* ---- atomic writes ----------------------------------------------------------------------------- */

START_TEST(test_write_into_missing_dir)
{
    char path[8192];
    snprintf(path, sizeof path, "%s/no/such/dir/model.safetensors", scratch_dir);
    dc_error err;
    float x[1] = {1};
    const int64_t shape[1] = {1};
    dc_st_writer *w = dc_st_writer_new();
    ck_assert_int_eq(dc_st_writer_add(w, "x", DC_DTYPE_F32, 1, shape, x, &err), DC_OK);
    dc_error_clear(&err);
    ck_assert_int_eq(dc_st_writer_write(w, path, &err), DC_ERR_IO);
    ck_assert_ptr_nonnull(strstr(err.msg, path));
    dc_st_writer_free(w);
    ck_assert_int_eq(count_entries(""), 2);   /* "." and ".." only */
}
END_TEST

START_TEST(test_failed_rename_leaves_no_temp)
{
    /* The target is a non-empty folder: everything succeeds until rename, which must then clean up. */
    const char *target = scratch("target");
    ck_assert_int_eq(mkdir(target, 0755), 0);
    char inner[8192 + 16];
    snprintf(inner, sizeof inner, "%s/keep", target);
    write_bytes(inner, "x", 1);
    dc_error err;
    float x[3] = {1, 2, 3};
    const int64_t shape[1] = {3};
    dc_st_writer *w = dc_st_writer_new();
    ck_assert_int_eq(dc_st_writer_add(w, "x", DC_DTYPE_F32, 1, shape, x, &err), DC_OK);
    ck_assert_int_eq(dc_st_writer_write(w, target, &err), DC_ERR_IO);
    ck_assert_ptr_nonnull(strstr(err.msg, "rename"));
    dc_st_writer_free(w);
    ck_assert_int_eq(count_entries(".tmp."), 0);
    struct stat sb;
    ck_assert_int_eq(stat(inner, &sb), 0);
    unlink(inner);
}
END_TEST

START_TEST(test_disk_full_keeps_old_file)
{
    /* RLIMIT_FSIZE makes write() fail with EFBIG after a few KB, standing in for a full disk. This
     * test runs in Check's forked child, and restores the limit anyway. */
    const char *path = scratch("model.safetensors");
    const char old_content[] = "old checkpoint, must survive";
    write_bytes(path, old_content, sizeof old_content);

    size_t n = 1 << 16;   /* 256 KB of data */
    float *big = calloc(n, sizeof *big);
    ck_assert_ptr_nonnull(big);
    const int64_t shape[1] = {(int64_t)n};
    dc_error err;
    dc_st_writer *w = dc_st_writer_new();
    ck_assert_int_eq(dc_st_writer_add(w, "big", DC_DTYPE_F32, 1, shape, big, &err), DC_OK);

    struct rlimit saved, tiny;
    ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &saved), 0);
    tiny = saved;
    tiny.rlim_cur = 4096;
    void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN);   /* else the signal kills us */
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &tiny), 0);
    int rc = dc_st_writer_write(w, path, &err);
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &saved), 0);
    signal(SIGXFSZ, old_handler);

    ck_assert_int_eq(rc, DC_ERR_IO);
    ck_assert_ptr_nonnull(strstr(err.msg, "write failed"));
    ck_assert_ptr_nonnull(strstr(err.msg, path));
    ck_assert_int_eq(count_entries(".tmp."), 0);
    char back[sizeof old_content];
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fread(back, 1, sizeof back, f), sizeof back);
    ck_assert_int_eq(fgetc(f), EOF);
    fclose(f);
    ck_assert_mem_eq(back, old_content, sizeof old_content);

    /* Same writer, limit lifted: the write now succeeds and replaces the file. */
    ck_assert_int_eq(dc_st_writer_write(w, path, &err), DC_OK);
    dc_st_writer_free(w);
    free(big);
    dc_safetensors *st = NULL;
    ck_assert_int_eq(dc_st_open(&st, path, &err), DC_OK);
    ck_assert_uint_eq(dc_st_find(st, "big")->numel, n);
    dc_st_close(st);
}
END_TEST

static Suite *safetensors_suite(void)
{
    Suite *s = suite_create("safetensors");
    TCase *tc = tcase_create("format");
    tcase_add_checked_fixture(tc, scratch_setup, scratch_teardown);
    tcase_add_test(tc, test_dtype_names);
    tcase_add_test(tc, test_round_trip);
    tcase_add_test(tc, test_empty_file_and_rewrite);
    tcase_add_test(tc, test_reads_unpadded_misaligned_file);
    tcase_add_test(tc, test_missing_file);
    tcase_add_test(tc, test_truncated_length);
    tcase_add_test(tc, test_header_past_end);
    tcase_add_test(tc, test_header_too_large);
    tcase_add_test(tc, test_invalid_json);
    tcase_add_test(tc, test_header_cut_by_length);
    tcase_add_test(tc, test_bad_dtype);
    tcase_add_test(tc, test_bad_shape);
    tcase_add_test(tc, test_bad_offsets);
    tcase_add_test(tc, test_bad_metadata_and_names);
    tcase_add_test(tc, test_corrupt_bytes_never_crash);
    suite_add_tcase(s, tc);

    TCase *tw = tcase_create("atomic_write");
    tcase_add_checked_fixture(tw, scratch_setup, scratch_teardown);
    tcase_add_test(tw, test_write_into_missing_dir);
    tcase_add_test(tw, test_failed_rename_leaves_no_temp);
    tcase_add_test(tw, test_disk_full_keeps_old_file);
    suite_add_tcase(s, tw);
    return s;
}

int main(void)
{
    return tu_run_suite(safetensors_suite());
}
