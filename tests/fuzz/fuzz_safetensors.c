/* libFuzzer harness: the safetensors reader (core/io/safetensors.c).
 *
 * The input is a whole .safetensors file. dc_st_open takes a path, so the bytes are written to a
 * per-process file in /dev/shm, opened, and everything the reader exposes is exercised: every
 * tensor (dc_st_get, dc_st_find, its data bytes, dc_st_read_f32 when numel <= 1<<20), every
 * metadata entry and dc_st_meta lookups; then dc_st_close. The file is removed at exit. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "diffcr/safetensors.h"

static char path[64];

static void remove_file(void)
{
    unlink(path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!path[0]) {
        snprintf(path, sizeof path, "/dev/shm/fuzz_st_%ld.safetensors", (long)getpid());
        atexit(remove_file);
    }
    FILE *f = fopen(path, "wb");
    if (!f)
        abort();
    if (size && fwrite(data, 1, size, f) != size)
        abort();
    fclose(f);

    dc_safetensors *st = NULL;
    dc_error err;
    if (dc_st_open(&st, path, &err) != DC_OK)
        return 0;
    volatile unsigned sum = 0;
    for (int i = 0; i < dc_st_count(st); i++) {
        const dc_st_tensor *t = dc_st_get(st, i);
        if (dc_st_find(st, t->name) != t)
            abort();   /* every tensor must be reachable by its name */
        for (size_t b = 0; b < t->nbytes; b++)
            sum += ((const unsigned char *)t->data)[b];
        if (t->numel <= ((size_t)1 << 20)) {
            float *buf = malloc((t->numel ? t->numel : 1) * sizeof *buf);
            if (buf && dc_st_read_f32(st, t->name, buf, t->numel, &err) == DC_OK)
                for (size_t k = 0; k < t->numel; k++)
                    sum += (unsigned)(buf[k] == buf[k]);
            free(buf);
        }
    }
    for (int i = 0; i < dc_st_meta_count(st); i++) {
        const char *k, *v;
        dc_st_meta_get(st, i, &k, &v);
        if (dc_st_meta(st, k) != v)
            abort();   /* keys are unique */
    }
    (void)dc_st_meta(st, "diffcr.unet");
    dc_st_close(st);
    return 0;
}
