/* diffcr — SSIM exactly as scikit-image's structural_similarity computes it.
 *
 * skimage (0.18 compare_ssim and the later metrics.structural_similarity alike), per channel:
 *   ux = f(x), uy = f(y), uxx = f(x·x), uyy = f(y·y), uxy = f(x·y)   with f the window filter,
 *   vx = n·(uxx - ux²), vy = n·(uyy - uy²), vxy = n·(uxy - ux·uy)    n = N/(N-1) or 1,
 *   S = (2·ux·uy + C1)(2·vxy + C2) / ((ux² + uy² + C1)(vx + vy + C2)), C1 = (K1·R)², C2 = (K2·R)²,
 * mean of S over the map cropped by pad = (win-1)/2 on every side (float64), then the mean over
 * channels. f is scipy.ndimage.gaussian_filter(sigma, truncate=3.5, mode='reflect') — radius
 * int(3.5·1.5 + 0.5) = 5, 11 taps of exp(-x²/2σ²) normalised to sum 1 — or uniform_filter(7)
 * (also 'reflect'). N = win_size² (the window side squared, for both kinds).
 *
 * Both filters are separable; here each input row is filtered horizontally into a ring of
 * (2r+1) rows, and the vertical pass reads the ring, so memory is O(width), not O(image) — whole
 * Sentinel-2 tiles fit. scipy filters axis 0 first, we filter axis 1 first: the same sums in
 * another order, different only at the 1e-16 level. 'reflect' is scipy's half-sample symmetric
 * mode (d c b a | a b c d | d c b a); it only matters for the optional full map, since the crop
 * keeps exactly the pixels whose window lies inside the image. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "diffcr/metrics.h"

void dc_ssim_options_init(dc_ssim_options *o, dc_ssim_window window)
{
    memset(o, 0, sizeof *o);
    o->window = window;
    o->sigma = 1.5;
    o->truncate = 3.5;
    o->win_size = 7;
    o->sample_covariance = window == DC_SSIM_UNIFORM;
    o->k1 = 0.01;
    o->k2 = 0.03;
}

static int radius_of(const dc_ssim_options *o)
{
    if (o->window == DC_SSIM_GAUSSIAN)
        return (int)(o->truncate * o->sigma + 0.5); /* ndimage's radius */
    return o->win_size / 2;
}

int dc_ssim_window_side(const dc_ssim_options *o)
{
    return 2 * radius_of(o) + 1;
}

/* scipy.ndimage 'reflect': half-sample symmetric, repeated for indices beyond one period. */
static int reflect(int i, int n)
{
    int period = 2 * n;
    i %= period;
    if (i < 0)
        i += period;
    return i < n ? i : period - 1 - i;
}

enum { Q_X, Q_Y, Q_XX, Q_YY, Q_XY, NQ };

typedef struct ssim_work {
    int w, h, c, r, k; /* k = 2r+1 taps */
    double *wt;        /* [k] */
    double *ext;       /* [2][w + 2r]: one input row of x and y with reflected margins */
    double *ring;      /* [k][NQ][w]: horizontally filtered rows, slot = row % k */
    double *vert;      /* [NQ][w]: the vertical pass for one output row */
} ssim_work;

static void work_free(ssim_work *s)
{
    free(s->wt);
    free(s->ext);
    free(s->ring);
    free(s->vert);
}

static int work_init(ssim_work *s, const dc_ssim_options *o, int h, int w, int c)
{
    memset(s, 0, sizeof *s);
    s->h = h;
    s->w = w;
    s->c = c;
    s->r = radius_of(o);
    s->k = 2 * s->r + 1;
    size_t ew = (size_t)w + 2 * (size_t)s->r;
    s->wt = malloc((size_t)s->k * sizeof *s->wt);
    s->ext = malloc(2 * ew * sizeof *s->ext);
    s->ring = malloc((size_t)s->k * NQ * (size_t)w * sizeof *s->ring);
    s->vert = malloc(NQ * (size_t)w * sizeof *s->vert);
    if (!s->wt || !s->ext || !s->ring || !s->vert) {
        work_free(s);
        return 0;
    }
    if (o->window == DC_SSIM_GAUSSIAN) {
        /* scipy _gaussian_kernel1d: exp(-0.5/σ² · x²), divided by its sum */
        double sum = 0, s2 = o->sigma * o->sigma;
        for (int i = 0; i < s->k; i++) {
            double x = i - s->r;
            s->wt[i] = exp(-0.5 / s2 * x * x);
            sum += s->wt[i];
        }
        for (int i = 0; i < s->k; i++)
            s->wt[i] /= sum;
    } else {
        for (int i = 0; i < s->k; i++)
            s->wt[i] = 1.0 / s->k;
    }
    return 1;
}

/* Filter input row y of channel ch horizontally into its ring slot. */
static void filter_row(ssim_work *s, const float *a, const float *b, int y, int ch)
{
    int w = s->w, r = s->r, k = s->k;
    size_t ew = (size_t)w + 2 * (size_t)r;
    double *ex = s->ext, *ey = s->ext + ew;
    const float *ra = a + (size_t)y * w * s->c, *rb = b + (size_t)y * w * s->c;
    for (int i = 0; i < (int)ew; i++) {
        int x = reflect(i - r, w);
        ex[i] = ra[(size_t)x * s->c + ch];
        ey[i] = rb[(size_t)x * s->c + ch];
    }
    double *slot = s->ring + (size_t)(y % k) * NQ * w;
    for (int x = 0; x < w; x++) {
        double q[NQ] = {0};
        for (int t = 0; t < k; t++) {
            double wt = s->wt[t], vx = ex[x + t], vy = ey[x + t];
            q[Q_X] += wt * vx;
            q[Q_Y] += wt * vy;
            q[Q_XX] += wt * (vx * vx);
            q[Q_YY] += wt * (vy * vy);
            q[Q_XY] += wt * (vx * vy);
        }
        for (int j = 0; j < NQ; j++)
            slot[(size_t)j * w + x] = q[j];
    }
}

/* Vertical pass for output row oy (all rows it needs are in the ring), into s->vert. */
static void filter_col(ssim_work *s, int oy)
{
    int w = s->w, r = s->r, k = s->k;
    memset(s->vert, 0, NQ * (size_t)w * sizeof *s->vert);
    for (int t = 0; t < k; t++) {
        int src = reflect(oy + t - r, s->h);
        const double *slot = s->ring + (size_t)(src % k) * NQ * w;
        double wt = s->wt[t];
        for (int j = 0; j < NQ; j++)
            for (int x = 0; x < w; x++)
                s->vert[(size_t)j * w + x] += wt * slot[(size_t)j * w + x];
    }
}

int dc_ssim(const float *a, const float *b, int h, int w, int c, double data_range,
            const dc_ssim_options *opts, double *mean, double *per_band, float *map,
            dc_error *err)
{
    dc_ssim_options def;
    if (!opts) {
        dc_ssim_options_init(&def, DC_SSIM_GAUSSIAN);
        opts = &def;
    }
    if (!a || !b || h < 1 || w < 1 || c < 1)
        return dc_fail(err, DC_ERR_ARG, "SSIM: bad image size %dx%dx%d", w, h, c);
    if (!(data_range > 0) || !isfinite(data_range))
        return dc_fail(err, DC_ERR_ARG, "SSIM: data range must be positive");
    if (opts->window == DC_SSIM_GAUSSIAN ? !(opts->sigma > 0) || !(opts->truncate >= 0)
                                         : opts->win_size < 1 || opts->win_size % 2 == 0)
        return dc_fail(err, DC_ERR_ARG, "SSIM: bad window (sigma > 0, or an odd window size)");
    if (opts->k1 < 0 || opts->k2 < 0)
        return dc_fail(err, DC_ERR_ARG, "SSIM: K1 and K2 must not be negative");
    int side = dc_ssim_window_side(opts);
    if (h < side || w < side)
        return dc_fail(err, DC_ERR_SHAPE, "SSIM: image %dx%d is smaller than the %dx%d window", w,
                       h, side, side);
    ssim_work s;
    if (!work_init(&s, opts, h, w, c))
        return dc_fail(err, DC_ERR_NOMEM, "SSIM: out of memory");

    double np = (double)side * side;
    double cov_norm = opts->sample_covariance && side > 1 ? np / (np - 1) : 1.0;
    double c1 = (opts->k1 * data_range) * (opts->k1 * data_range);
    double c2 = (opts->k2 * data_range) * (opts->k2 * data_range);
    int pad = (side - 1) / 2;
    double total = 0;
    for (int ch = 0; ch < c; ch++) {
        int next = 0; /* next input row to filter horizontally */
        double sum = 0;
        for (int oy = 0; oy < h; oy++) {
            int need = oy + s.r < h - 1 ? oy + s.r : h - 1;
            while (next <= need)
                filter_row(&s, a, b, next++, ch);
            int in_crop = oy >= pad && oy < h - pad;
            if (!in_crop && !map)
                continue;
            filter_col(&s, oy);
            const double *ux = s.vert, *uy = ux + w, *uxx = uy + w, *uyy = uxx + w,
                         *uxy = uyy + w;
            double row = 0;
            for (int x = 0; x < w; x++) {
                double vx = cov_norm * (uxx[x] - ux[x] * ux[x]);
                double vy = cov_norm * (uyy[x] - uy[x] * uy[x]);
                double vxy = cov_norm * (uxy[x] - ux[x] * uy[x]);
                double a1 = 2 * ux[x] * uy[x] + c1, a2 = 2 * vxy + c2;
                double b1 = ux[x] * ux[x] + uy[x] * uy[x] + c1, b2 = vx + vy + c2;
                double sv = (a1 * a2) / (b1 * b2);
                if (map)
                    map[((size_t)oy * w + x) * c + ch] = (float)sv;
                if (in_crop && x >= pad && x < w - pad)
                    row += sv;
            }
            sum += row;
        }
        double m = sum / ((double)(h - 2 * pad) * (double)(w - 2 * pad));
        if (per_band)
            per_band[ch] = m;
        total += m;
    }
    work_free(&s);
    if (mean)
        *mean = total / c;
    return DC_OK;
}
