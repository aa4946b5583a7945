/* diffcr — compute one output window from the tiles touching it.
 *
 * For each tile row touching the window: read the strip the tile row covers (only the columns of
 * the touching tile columns), run the model on every tile (K samples: mean, and their standard
 * deviation when asked; `batch` tiles of the row per model call), blend into the accumulator, emit
 * the rows no later tile row touches, shift the accumulator. Batches are aligned to fixed tile
 * columns (multiples of `batch`), so a tile's batch mates do not depend on the window either,
 * except at the window's own edges. With `prefetch`, a second thread reads the next tile row's
 * strip (GDAL decoding, warping) while this one runs the model on the current one: two strip
 * buffers, swapped each row; only one thread touches the input datasets at a time. Memory: one tile height x the touched width. The tile grid does not
 * depend on the window (diffcr/tile_grid.h), so a window gives the same pixels as a full run. */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "decloud_internal.h"
#include "diffcr/tile_blend.h"

typedef struct window_buffers {
    float *strip;      /* [T rows][aw][D*B]: the tile row being computed */
    uint8_t *strip_ok; /* [T rows][aw] */
    float *next;       /* prefetch: the next tile row's strip, being read */
    uint8_t *next_ok;
    uint8_t *acc_ok;   /* validity of the accumulator rows [T rows][aw] */
    float *cond;       /* [batch][T][T][D*B] */
    float *sample;     /* [batch][T][T][B] */
    float *tile_out;   /* [batch][T][T][B or 2B]: mean, then std */
    double *m1, *m2;   /* running sums over samples [batch][T][T][B] */
    uint64_t *keys;    /* [batch] */
    float *row_acc;    /* one emitted row, normalised [w][C] */
    float *dn, *std;   /* emitted rows [rows][w][B] */
    uint8_t *ok;       /* emitted rows [rows][w] */
} window_buffers;

static void free_buffers(window_buffers *b)
{
    free(b->strip); free(b->strip_ok); free(b->next); free(b->next_ok); free(b->acc_ok); free(b->cond); free(b->sample);
    free(b->tile_out); free(b->m1); free(b->m2); free(b->row_acc); free(b->dn); free(b->std);
    free(b->ok); free(b->keys);
}

/* Gather the padded tile (tx, ty) from the strip: positions outside the raster reflect. */
static void gather_tile(const dc_pipeline *p, const window_buffers *b, int tx, int ty, int ax0,
                        int aw, int sy0, float *cond)
{
    const dc_tile_grid *g = &p->grid;
    const int T = g->x.tile, C = p->in->ndates * p->in->nbands;
    const int sx = dc_tile_axis_start(&g->x, tx), sy = dc_tile_axis_start(&g->y, ty);
    for (int ky = 0; ky < T; ky++) {
        int ry = dc_reflect_index(sy + ky, g->y.length) - sy0;
        for (int kx = 0; kx < T; kx++) {
            int rx = dc_reflect_index(sx + kx, g->x.length) - ax0;
            memcpy(cond + ((size_t)ky * T + kx) * C, b->strip + ((size_t)ry * aw + rx) * C,
                   sizeof(float) * (size_t)C);
        }
    }
}

/* Run the model on tiles tx .. tx+count-1 of row ty (gathered in b->cond); their blended values
 * land in b->tile_out, one [T][T][C] block per tile. */
static int run_tiles(const dc_pipeline *p, window_buffers *b, int tx, int count, int ty, dc_error *err)
{
    const int T = p->grid.x.tile, B = p->in->nbands, K = p->samples;
    const size_t n = (size_t)T * T * B, all = n * (size_t)count;
    dc_tile_model *m = p->model;
    for (int i = 0; i < count; i++)
        b->keys[i] = dc_tile_key(dc_tile_axis_start(&p->grid.x, tx + i), dc_tile_axis_start(&p->grid.y, ty));
    float *out = K == 1 && !p->want_std ? b->tile_out : b->sample;
    if (K > 1 || p->want_std) {
        memset(b->m1, 0, all * sizeof(double));
        memset(b->m2, 0, all * sizeof(double));
    }
    for (int k = 0; k < K; k++) {
        /* count > 1 only when the model has run_tiles (dc_decloud_setup_open) */
        int rc = count > 1 ? m->run_tiles(m, out, b->cond, count, T, T, b->keys, k, err)
                           : m->run_tile(m, out, b->cond, T, T, b->keys[0], k, err);
        if (rc != DC_OK)
            return rc;
        if (out == b->tile_out)
            return DC_OK;
        for (size_t i = 0; i < all; i++) {
            b->m1[i] += out[i];
            b->m2[i] += (double)out[i] * out[i];
        }
    }
    /* tile_out holds [pixel][mean B | std B] so one accumulator blends both. */
    const int C = p->want_std ? 2 * B : B;
    for (size_t px = 0; px < (size_t)T * T * count; px++) {
        for (int c = 0; c < B; c++) {
            double mean = b->m1[px * B + c] / K;
            double var = b->m2[px * B + c] / K - mean * mean;
            b->tile_out[px * C + c] = (float)mean;
            if (p->want_std)
                b->tile_out[px * C + B + c] = (float)sqrt(var > 0 ? var : 0);
        }
    }
    return DC_OK;
}

/* Reading one tile row's strip on the prefetch thread. */
typedef struct strip_job {
    const dc_pipeline *p;
    int x0, y0, w, h;
    float *values;
    uint8_t *ok;
    int rc;
    dc_error err;
    pthread_t thread;
    int running;
} strip_job;

static void *strip_job_main(void *arg)
{
    strip_job *j = arg;
    j->rc = dc_read_strip(j->p->in, j->p->model, j->x0, j->y0, j->w, j->h, j->values, j->ok, &j->err);
    return NULL;
}

static int strip_job_start(strip_job *j, const dc_pipeline *p, int x0, int y0, int w, int h, float *values,
                           uint8_t *ok, dc_error *err)
{
    j->p = p, j->x0 = x0, j->y0 = y0, j->w = w, j->h = h, j->values = values, j->ok = ok;
    j->rc = DC_OK;
    dc_error_clear(&j->err);
    if (pthread_create(&j->thread, NULL, strip_job_main, j) != 0)
        return dc_fail(err, DC_ERR_NOMEM, "cannot start the strip reading thread");
    j->running = 1;
    return DC_OK;
}

/* Wait for the job; its status (and message) become the caller's. */
static int strip_job_finish(strip_job *j, dc_error *err)
{
    if (!j->running)
        return DC_OK;
    pthread_join(j->thread, NULL);
    j->running = 0;
    if (j->rc != DC_OK && err)
        *err = j->err;
    return j->rc;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

int dc_decloud_window(const dc_pipeline *p, int x0, int y0, int w, int h, dc_row_sink sink,
                      void *sink_ctx, GDALProgressFunc progress, void *progress_arg,
                      dc_error *err)
{
    const dc_tile_grid *g = &p->grid;
    const int T = g->x.tile, D = p->in->ndates, B = p->in->nbands, Cin = D * B;
    const int C = p->want_std ? 2 * B : B;
    int tx0, tx1, ty0, ty1;
    dc_tile_axis_touching(&g->x, x0, x0 + w, &tx0, &tx1);
    dc_tile_axis_touching(&g->y, y0, y0 + h, &ty0, &ty1);
    /* Columns read and accumulated: the union of the touching tile columns. */
    const int ax0 = dc_tile_axis_start(&g->x, tx0);
    const int aw = dc_tile_axis_start(&g->x, tx1) + dc_tile_axis_extent(&g->x, tx1) - ax0;
    const int rows = T < g->y.length ? T : g->y.length;

    window_buffers b;
    memset(&b, 0, sizeof b);
    dc_blend_acc acc;
    int rc = dc_blend_init(&acc, ax0, aw, dc_tile_axis_start(&g->y, ty0), rows, C, err);
    if (rc != DC_OK)
        return rc;
    size_t tpix = (size_t)T * T, spix = (size_t)rows * aw, opix = (size_t)rows * w;
    const int prefetch = p->prefetch && ty1 > ty0;
    b.strip = malloc(spix * Cin * sizeof(float));
    b.strip_ok = malloc(spix);
    if (prefetch) {
        b.next = malloc(spix * Cin * sizeof(float));
        b.next_ok = malloc(spix);
    }
    b.acc_ok = calloc(spix, 1);
    const int batch = p->batch > 1 ? p->batch : 1;
    const size_t bpix = tpix * (size_t)batch;
    b.cond = malloc(bpix * Cin * sizeof(float));
    b.sample = malloc(bpix * B * sizeof(float));
    b.tile_out = malloc(bpix * C * sizeof(float));
    b.m1 = malloc(bpix * B * sizeof(double));
    b.m2 = malloc(bpix * B * sizeof(double));
    b.keys = malloc((size_t)batch * sizeof *b.keys);
    b.row_acc = malloc((size_t)w * C * sizeof(float));
    b.dn = malloc(opix * B * sizeof(float));
    b.std = p->want_std ? malloc(opix * B * sizeof(float)) : NULL;
    b.ok = malloc(opix);
    if (!b.strip || !b.strip_ok || !b.acc_ok || !b.cond || !b.sample || !b.tile_out || !b.m1 ||
        !b.m2 || !b.row_acc || !b.dn || (p->want_std && !b.std) || !b.ok || !b.keys ||
        (prefetch && (!b.next || !b.next_ok))) {
        rc = dc_fail(err, DC_ERR_NOMEM, "out of memory for a %d-pixel-wide window", aw);
        goto done;
    }
    const dc_tile_model *m = p->model;
    int emitted = 0;
    strip_job job;
    memset(&job, 0, sizeof job);
    for (int ty = ty0; ty <= ty1 && rc == DC_OK; ty++) {
        const int sy = dc_tile_axis_start(&g->y, ty), ey = dc_tile_axis_extent(&g->y, ty);
        /* acc.y0 == sy here: rows above were emitted (or lie above the window) and shifted. */
        if (ty > ty0 && prefetch) { /* the strip was read while the previous row computed */
            rc = strip_job_finish(&job, err);
            float *t = b.strip;
            uint8_t *t_ok = b.strip_ok;
            b.strip = b.next, b.strip_ok = b.next_ok;
            b.next = t, b.next_ok = t_ok;
        } else {
            rc = dc_read_strip(p->in, m, ax0, sy, aw, ey, b.strip, b.strip_ok, err);
        }
        if (rc == DC_OK && prefetch && ty < ty1)
            rc = strip_job_start(&job, p, ax0, dc_tile_axis_start(&g->y, ty + 1), aw,
                                 dc_tile_axis_extent(&g->y, ty + 1), b.next, b.next_ok, err);
        if (rc != DC_OK)
            break;
        memcpy(b.acc_ok, b.strip_ok, (size_t)ey * aw);
        for (int tx = tx0; tx <= tx1 && rc == DC_OK;) {
            /* this tile's batch: up to the next multiple of `batch` (fixed in raster space) */
            int end = (tx / batch + 1) * batch - 1, count;
            if (end > tx1)
                end = tx1;
            count = end - tx + 1;
            for (int i = 0; i < count; i++)
                gather_tile(p, &b, tx + i, ty, ax0, aw, sy, b.cond + (size_t)i * tpix * Cin);
            rc = run_tiles(p, &b, tx, count, ty, err);
            for (int i = 0; rc == DC_OK && i < count; i++)
                dc_blend_add_tile(&acc, g, tx + i, ty, b.tile_out + (size_t)i * tpix * C);
            tx += count;
        }
        if (rc != DC_OK)
            break;
        /* Rows below `final` get no more tiles; emit those inside the window. */
        int final = ty == ty1 ? y0 + h : dc_tile_axis_final_before(&g->y, ty);
        int r0 = acc.y0 > y0 ? acc.y0 : y0, r1 = final < y0 + h ? final : y0 + h;
        for (int y = r0; y < r1; y++) {
            size_t o = (size_t)(y - r0) * w;
            dc_blend_read_row(&acc, y - acc.y0, x0, w, b.row_acc);
            for (int i = 0; i < w; i++) {
                const float *v = b.row_acc + (size_t)i * C;
                for (int c = 0; c < B; c++) {
                    b.dn[(o + i) * B + c] = (float)dc_model_to_dn(v[c], p->out_add_offset[c],
                                                                  m->scale, m->offset);
                    if (b.std)
                        b.std[(o + i) * B + c] = (float)(v[B + c] / m->scale);
                }
                b.ok[o + i] = b.acc_ok[(size_t)(y - acc.y0) * aw + (size_t)(x0 + i - ax0)];
            }
        }
        if (r1 > r0) {
            rc = sink(sink_ctx, x0, r0, w, r1 - r0, b.dn, b.ok, b.std, err);
            emitted += r1 - r0;
        }
        if (rc == DC_OK && p->delay_ms > 0)
            sleep_ms(p->delay_ms);
        if (rc == DC_OK && progress && !progress((double)emitted / h, NULL, progress_arg))
            rc = dc_fail(err, DC_ERR_CANCELLED, "interrupted");
        if (ty < ty1) {
            int shift = dc_tile_axis_start(&g->y, ty + 1) - acc.y0;
            dc_blend_shift(&acc, shift);
            memmove(b.acc_ok, b.acc_ok + (size_t)shift * aw, (size_t)(rows - shift) * aw);
        }
    }
    strip_job_finish(&job, NULL); /* stopped early: the reader must finish before its buffer goes */
done:
    dc_blend_free(&acc);
    free_buffers(&b);
    return rc;
}
