/* diffcr — TensorBoard scalar logs as TFRecord files (format in tb_events.h).
 *
 * Written by hand because the format is tiny and pulling protobuf-c or TensorFlow into a C tool
 * for four fields is not worth it. Each record is flushed so a TensorBoard watching the folder
 * sees the curve while training runs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "diffcr/tb_events.h"
#include "diffcr/train.h"

size_t dc_pb_varint(uint8_t *buf, size_t cap, uint64_t v)
{
    size_t n = 0;
    do {
        if (n >= cap)
            return 0;
        uint8_t b = v & 0x7F;
        v >>= 7;
        buf[n++] = v ? (b | 0x80) : b;
    } while (v);
    return n;
}

static size_t put_u32le(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
    return 4;
}

static size_t put_u64le(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
    return 8;
}

/* key = (field << 3) | wire type: 0 varint, 1 fixed64, 2 length-delimited, 5 fixed32. */
#define NEED(k) do { if (n + (k) > cap) return 0; } while (0)

static size_t put_bytes_field(uint8_t *buf, size_t cap, int field, const void *data, size_t len)
{
    size_t n = 0, k;
    if (!(k = dc_pb_varint(buf, cap, (uint64_t)(field << 3 | 2))))
        return 0;
    n += k;
    if (!(k = dc_pb_varint(buf + n, cap - n, len)))
        return 0;
    n += k;
    NEED(len);
    memcpy(buf + n, data, len);
    return n + len;
}

size_t dc_tb_encode_event(uint8_t *buf, size_t cap, double wall_time, int64_t step,
                          const char *version, const char *tag, float value)
{
    size_t n = 0, k;
    uint64_t bits;
    memcpy(&bits, &wall_time, 8);
    NEED(9);
    buf[n++] = 1 << 3 | 1;
    n += put_u64le(buf + n, bits);
    if (step != 0) {   /* proto3: a zero scalar is not written */
        NEED(1);
        buf[n++] = 2 << 3 | 0;
        if (!(k = dc_pb_varint(buf + n, cap - n, (uint64_t)step)))
            return 0;
        n += k;
    }
    if (version) {
        if (!(k = put_bytes_field(buf + n, cap - n, 3, version, strlen(version))))
            return 0;
        return n + k;
    }
    /* Value { tag = 1; simple_value = 2 } inside Summary { value = 1 } inside Event.summary = 5 */
    uint8_t val[512], sum[600];
    size_t vn = put_bytes_field(val, sizeof val, 1, tag, strlen(tag));
    if (!vn || vn + 5 > sizeof val)
        return 0;
    uint32_t fb;
    memcpy(&fb, &value, 4);
    val[vn++] = 2 << 3 | 5;
    vn += put_u32le(val + vn, fb);
    size_t sn = put_bytes_field(sum, sizeof sum, 1, val, vn);
    if (!sn || !(k = put_bytes_field(buf + n, cap - n, 5, sum, sn)))
        return 0;
    return n + k;
}

size_t dc_tb_record(uint8_t *buf, size_t cap, const uint8_t *payload, size_t len)
{
    if (cap < len + 16)
        return 0;
    put_u64le(buf, len);
    put_u32le(buf + 8, dc_crc32c_masked(buf, 8));
    memcpy(buf + 12, payload, len);
    put_u32le(buf + 12 + len, dc_crc32c_masked(payload, len));
    return len + 16;
}

struct dc_tb_writer {
    FILE *f;
    char path[4200];
};

static double wall_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int write_event(dc_tb_writer *w, const uint8_t *ev, size_t n, dc_error *err)
{
    uint8_t rec[1200];
    size_t rn = dc_tb_record(rec, sizeof rec, ev, n);
    if (!rn)
        return dc_fail(err, DC_ERR_ARG, "TensorBoard event too large");
    if (fwrite(rec, 1, rn, w->f) != rn || fflush(w->f) != 0)
        return dc_fail(err, DC_ERR_IO, "%s: write failed", w->path);
    return DC_OK;
}

int dc_tb_open(dc_tb_writer **out, const char *dir, dc_error *err)
{
    *out = NULL;
    dc_tb_writer *w = calloc(1, sizeof *w);
    if (!w)
        return dc_fail(err, DC_ERR_NOMEM, "out of memory");
    char host[256] = "localhost";
    gethostname(host, sizeof host - 1);
    snprintf(w->path, sizeof w->path, "%s/events.out.tfevents.%lld.%s", dir, (long long)time(NULL), host);
    if (!(w->f = fopen(w->path, "ab"))) {
        int rc = dc_fail(err, DC_ERR_IO, "%s: cannot create the TensorBoard log", w->path);
        free(w);
        return rc;
    }
    uint8_t ev[256];
    size_t n = dc_tb_encode_event(ev, sizeof ev, wall_now(), 0, "brain.Event:2", NULL, 0);
    int rc = write_event(w, ev, n, err);
    if (rc != DC_OK) {
        dc_tb_close(w);
        return rc;
    }
    *out = w;
    return DC_OK;
}

int dc_tb_scalar(dc_tb_writer *w, const char *tag, int64_t step, double value, dc_error *err)
{
    uint8_t ev[1024];
    size_t n = dc_tb_encode_event(ev, sizeof ev, wall_now(), step, NULL, tag, (float)value);
    if (!n)
        return dc_fail(err, DC_ERR_ARG, "TensorBoard tag too long: %s", tag);
    return write_event(w, ev, n, err);
}

const char *dc_tb_path(const dc_tb_writer *w) { return w->path; }

void dc_tb_close(dc_tb_writer *w)
{
    if (!w)
        return;
    if (w->f)
        fclose(w->f);
    free(w);
}
