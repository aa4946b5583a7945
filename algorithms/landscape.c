/* diffcr — synthetic landscape rendering (see include/diffcr/landscape.h).
 *
 * Land cover is decided per pixel in priority order: water (lakes, river) > roads > villages >
 * forest > fields. Each layer is a point-evaluable function: thresholded fractal noise for lakes
 * and forest, a noise-displaced centre line for the river and roads, Voronoi cells for farm blocks
 * (their edges become farm tracks) and villages, and rotated rectangle lattices inside a block for
 * the fields. Reflectances are typical Sentinel-2 surface values (R, G, B, NIR). */
#include <math.h>
#include <string.h>

#include "cloud_sim_noise.h"
#include "diffcr/landscape.h"

/* Reflectance of a cover type: R, G, B, NIR. */
typedef struct { double r, g, b, n; } refl4;

static const refl4 water_refl = {0.028, 0.042, 0.050, 0.014};
static const refl4 conifer_refl = {0.020, 0.036, 0.021, 0.21};
static const refl4 deciduous_refl = {0.030, 0.055, 0.030, 0.31};
static const refl4 road_refl = {0.17, 0.165, 0.16, 0.20};
static const refl4 track_refl = {0.15, 0.13, 0.10, 0.21};
static const refl4 garden_refl = {0.045, 0.075, 0.042, 0.30};
static const refl4 street_refl = {0.14, 0.14, 0.14, 0.17};
static const refl4 roof_refl[4] = {
    {0.22, 0.22, 0.23, 0.26}, /* grey concrete tiles */
    {0.12, 0.12, 0.13, 0.15}, /* dark slate */
    {0.26, 0.12, 0.085, 0.27}, /* red clay tiles */
    {0.34, 0.34, 0.35, 0.37}, /* white flat roofs (barns, halls) */
};
/* Crops, with weights in the field draw. */
static const refl4 crop_refl[6] = {
    {0.17, 0.14, 0.10, 0.24},   /* bright bare soil */
    {0.09, 0.075, 0.055, 0.14}, /* dark moist or ploughed soil */
    {0.035, 0.07, 0.035, 0.40}, /* green cereal */
    {0.14, 0.12, 0.08, 0.25},   /* stubble, ripening */
    {0.05, 0.085, 0.045, 0.31}, /* meadow */
    {0.17, 0.16, 0.06, 0.36},   /* rapeseed in flower */
};
static const double crop_weight[6] = {0.22, 0.19, 0.28, 0.13, 0.16, 0.02};

/* Layers of noise keys. */
enum {
    L_LAKE = 1, L_FOREST, L_FOREST_KIND, L_CANOPY, L_RIVER, L_RIVER_PLACE, L_ROAD, L_BLOCK,
    L_FIELD, L_SOIL, L_VILLAGE, L_HOUSE, L_PIXEL, L_SCENE
};

void dc_landscape_defaults(dc_landscape_options *o)
{
    memset(o, 0, sizeof *o);
    o->width = 512;
    o->height = 512;
    o->seed = 1;
    o->origin_x = 380000.0;
    o->origin_y = 5820000.0;
    o->pixel_size = 10.0;
    o->epsg = 32633;
}

static inline uint64_t lkey(const dc_landscape_options *o, int layer)
{
    return dc_noise_key(o->seed, 0x4C414E44ull /* "LAND" */, (uint64_t)layer, 0);
}

static inline double hunit(uint64_t key, int64_t a, int64_t b)
{
    return dc_noise_unit(dc_noise_hash2(key, a, b));
}

static refl4 mix(refl4 a, refl4 b, double t)
{
    refl4 m = {a.r + (b.r - a.r) * t, a.g + (b.g - a.g) * t, a.b + (b.b - a.b) * t,
               a.n + (b.n - a.n) * t};
    return m;
}

static refl4 scale(refl4 a, double s, double sn)
{
    refl4 m = {a.r * s, a.g * s, a.b * s, a.n * sn};
    return m;
}

/* Nearest jittered-grid point (cell size `cell`) to (x, y): its cell and distance, and the
 * distance to the nearest Voronoi edge (perpendicular to the bisector with the runner-up). */
typedef struct { int64_t cx, cy; double px, py, dist, edge; } voronoi_hit;

static voronoi_hit voronoi(uint64_t key, double x, double y, double cell)
{
    int64_t gx = (int64_t)floor(x / cell), gy = (int64_t)floor(y / cell);
    double pts[9][2];
    int64_t ids[9][2];
    int best = 0, n = 0;
    double bestd = INFINITY;
    for (int dy = -1; dy <= 1; dy++)
        for (int dx = -1; dx <= 1; dx++, n++) {
            int64_t cx = gx + dx, cy = gy + dy;
            uint64_t h = dc_noise_hash2(key, cx, cy);
            pts[n][0] = (cx + 0.1 + 0.8 * dc_noise_unit(h)) * cell;
            pts[n][1] = (cy + 0.1 + 0.8 * dc_noise_unit(dc_noise_mix64(h))) * cell;
            ids[n][0] = cx;
            ids[n][1] = cy;
            double d = hypot(x - pts[n][0], y - pts[n][1]);
            if (d < bestd) {
                bestd = d;
                best = n;
            }
        }
    voronoi_hit v = {ids[best][0], ids[best][1], pts[best][0], pts[best][1], bestd, INFINITY};
    double da2 = bestd * bestd;
    for (int k = 0; k < 9; k++) {
        if (k == best)
            continue;
        double bx = pts[k][0], by = pts[k][1];
        double db2 = (x - bx) * (x - bx) + (y - by) * (y - by);
        double ab = hypot(bx - v.px, by - v.py);
        double e = (db2 - da2) / (2.0 * ab);
        if (e < v.edge)
            v.edge = e;
    }
    return v;
}

/* Scene-wide draws that depend only on the seed. */
typedef struct {
    double field_angle;              /* prevailing field orientation */
    double river_angle, river_offset; /* river centre line: direction and offset across */
    int nroads;
    double road_x[4], road_y[4], road_angle[4];
} scene_draws;

static void draw_scene(const dc_landscape_options *o, scene_draws *s)
{
    uint64_t k = lkey(o, L_SCENE);
    double cx = 0.5 * o->width, cy = 0.5 * o->height;
    s->field_angle = M_PI * hunit(k, 1, 0);
    s->river_angle = M_PI * hunit(k, 2, 0);
    /* across-river coordinate of the scene centre is 0; put the river within the middle half */
    double half = 0.5 * fabs(-sin(s->river_angle) * o->width) + 0.5 * fabs(cos(s->river_angle) * o->height);
    s->river_offset = (hunit(k, 3, 0) - 0.5) * half;
    s->nroads = 2 + (int)(3.0 * hunit(k, 4, 0)); /* 2..4 */
    for (int r = 0; r < s->nroads; r++) {
        s->road_x[r] = cx + (hunit(k, 10 + r, 1) - 0.5) * 0.8 * o->width;
        s->road_y[r] = cy + (hunit(k, 10 + r, 2) - 0.5) * 0.8 * o->height;
        s->road_angle[r] = M_PI * hunit(k, 10 + r, 3);
    }
}

/* Water: 1 inside lakes or the river, with a soft 1-pixel shore. */
static double water_cover(const dc_landscape_options *o, const scene_draws *s, double x, double y)
{
    /* lakes: elongated (glacial channel lakes), stretched along a fixed diagonal */
    double u = 0.8 * x + 0.6 * y, v = -0.6 * x + 0.8 * y;
    double lake = dc_noise_fbm(lkey(o, L_LAKE), u / 2.5, v, 110.0, 5, 0.5, 0, 5);
    double lake_w = dc_noise_clamp01((lake - 0.30) * 40.0);
    /* river: a centre line displaced by 1-D noise along its direction */
    double ca = cos(s->river_angle), sa = sin(s->river_angle);
    double dx = x - 0.5 * o->width, dy = y - 0.5 * o->height;
    double along = ca * dx + sa * dy, across = -sa * dx + ca * dy;
    double centre = s->river_offset +
                    60.0 * dc_noise_fbm(lkey(o, L_RIVER), along, 0.5, 240.0, 3, 0.5, 0, 3);
    double width = 2.6 + 1.4 * dc_noise_fbm(lkey(o, L_RIVER_PLACE), along, 7.5, 200.0, 2, 0.5, 0, 2);
    double river_w = dc_noise_clamp01(width - fabs(across - centre) + 0.5);
    return lake_w > river_w ? lake_w : river_w;
}

/* Roads: 0..1 coverage of the nearest major road (about 1.5 px wide). */
static double road_cover(const dc_landscape_options *o, const scene_draws *s, double x, double y)
{
    double best = 0.0;
    for (int r = 0; r < s->nroads; r++) {
        double ca = cos(s->road_angle[r]), sa = sin(s->road_angle[r]);
        double dx = x - s->road_x[r], dy = y - s->road_y[r];
        double along = ca * dx + sa * dy, across = -sa * dx + ca * dy;
        across -= 25.0 * dc_noise_fbm(lkey(o, L_ROAD), along, (double)r * 97.0, 300.0, 2, 0.5, 0, 2);
        double c = dc_noise_clamp01(1.3 - fabs(across));
        if (c > best)
            best = c;
    }
    return best;
}

/* Villages: Voronoi cells of 200 px, about 40 % of them hold a village of radius 14..40 px
 * around their point. Returns 1 and fills *out when (x, y) is built up. */
static int village(const dc_landscape_options *o, double x, double y, refl4 *out)
{
    uint64_t kv = lkey(o, L_VILLAGE);
    voronoi_hit v = voronoi(kv, x, y, 200.0);
    uint64_t h = dc_noise_hash2(kv ^ 0x5151, v.cx, v.cy);
    if (dc_noise_unit(h) > 0.4)
        return 0;
    double radius = 16.0 + 30.0 * dc_noise_unit(dc_noise_mix64(h));
    double ragged = 1.0 + 0.35 * dc_noise_fbm(kv, x, y, 40.0, 3, 0.5, 0, 3);
    /* villages stretch along their main street: an ellipse in the street grid's frame */
    double ang = M_PI * dc_noise_unit(dc_noise_mix64(h ^ 7));
    double ca = cos(ang), sa = sin(ang);
    double dx = x - v.px, dy = y - v.py;
    double u = ca * dx + sa * dy, w = -sa * dx + ca * dy;
    double dist = hypot(u / 1.6, w * 1.4);
    if (dist > radius * ragged)
        return 0;
    /* a rotated street grid: blocks of 4 x 4 house lots of 3 px */
    u += 1000.0;
    w += 1000.0;
    double lot = 3.0;
    int64_t lu = (int64_t)floor(u / lot), lw = (int64_t)floor(w / lot);
    double fu = u - lu * lot, fw = w - lw * lot;
    if (((lu % 5) == 0 && fu < 1.2) || ((lw % 5) == 0 && fw < 1.2)) {
        *out = street_refl;
        return 1;
    }
    uint64_t kh = lkey(o, L_HOUSE);
    uint64_t hl = dc_noise_hash2(kh, lu, lw);
    double centre = 1.0 - dist / (radius * ragged); /* denser near the centre */
    if (dc_noise_unit(hl) < 0.45 + 0.45 * centre && fu < 2.4 && fw < 2.4) {
        double pick = dc_noise_unit(dc_noise_mix64(hl));
        int kind = pick < 0.38 ? 2 : (pick < 0.68 ? 0 : (pick < 0.9 ? 1 : 3));
        double shade = 0.9 + 0.2 * dc_noise_unit(dc_noise_mix64(hl ^ 3));
        *out = scale(roof_refl[kind], shade, shade);
        return 1;
    }
    double tree = dc_noise_value(kh ^ 0x77, x / 2.0, y / 2.0);
    *out = scale(garden_refl, 0.85 + 0.3 * tree, 0.9 + 0.2 * tree);
    return 1;
}

/* Forest: fraction 0..1 (soft edge) and its reflectance with canopy texture. */
static double forest(const dc_landscape_options *o, double x, double y, refl4 *out)
{
    double f = dc_noise_fbm(lkey(o, L_FOREST), x, y, 260.0, 6, 0.55, 0, 6);
    double cover = dc_noise_clamp01((f - 0.16) * 60.0); /* forest edges are sharp */
    if (cover <= 0.0)
        return 0.0;
    double kind = dc_noise_fbm(lkey(o, L_FOREST_KIND), x, y, 150.0, 3, 0.5, 0, 3);
    refl4 base = mix(conifer_refl, deciduous_refl, dc_noise_clamp01(kind * 3.0 + 0.5));
    /* crowns and gaps: high-frequency value noise, shadows between crowns darken all bands */
    double crowns = 0.6 * dc_noise_value(lkey(o, L_CANOPY), x / 1.7, y / 1.7) +
                    0.4 * dc_noise_value(lkey(o, L_CANOPY) ^ 1, x / 4.0, y / 4.0);
    *out = scale(base, 1.0 + 0.3 * crowns, 1.0 + 0.2 * crowns);
    return cover;
}

/* Fields: the farm block (Voronoi cell of 170 px) sets an orientation and strip widths; fields
 * are staggered rectangles in the block's rotated frame; block edges are farm tracks. */
static refl4 field(const dc_landscape_options *o, const scene_draws *s, double x, double y)
{
    uint64_t kb = lkey(o, L_BLOCK);
    voronoi_hit v = voronoi(kb, x, y, 170.0);
    uint64_t hb = dc_noise_hash2(kb ^ 0xB10C, v.cx, v.cy);
    double ang = s->field_angle + 0.5 * (dc_noise_unit(hb) - 0.5);
    if (dc_noise_unit(dc_noise_mix64(hb)) < 0.3)
        ang += 0.5 * M_PI;
    double width = 16.0 + 34.0 * dc_noise_unit(dc_noise_mix64(hb ^ 1));
    double length = 30.0 + 70.0 * dc_noise_unit(dc_noise_mix64(hb ^ 2));
    double ca = cos(ang), sa = sin(ang);
    double dx = x - v.px, dy = y - v.py;
    double u = ca * dx + sa * dy + 4096.0, w = -sa * dx + ca * dy + 4096.0;
    int64_t iu = (int64_t)floor(u / width);
    double stagger = length * dc_noise_unit(dc_noise_hash2(kb, iu, v.cx * 7919 + v.cy));
    int64_t iw = (int64_t)floor((w + stagger) / length);
    uint64_t kf = lkey(o, L_FIELD);
    uint64_t hf = dc_noise_hash2(kf, iu * 1000003 + v.cx, iw * 999983 + v.cy);
    double pick = dc_noise_unit(hf), acc = 0.0;
    int crop = 5;
    for (int c = 0; c < 6; c++) {
        acc += crop_weight[c];
        if (pick < acc) {
            crop = c;
            break;
        }
    }
    /* per-field brightness, smooth moisture patches, a little per-pixel grain */
    double fieldvar = 0.88 + 0.24 * dc_noise_unit(dc_noise_mix64(hf));
    double moist = dc_noise_fbm(lkey(o, L_SOIL), x, y, 90.0, 4, 0.5, 0, 4);
    double grain = dc_noise_value(lkey(o, L_SOIL) ^ 5, x, y);
    double vis = fieldvar * (1.0 + 0.18 * moist + 0.03 * grain);
    double nir = fieldvar * (1.0 + 0.10 * moist + 0.02 * grain);
    refl4 c = scale(crop_refl[crop], vis, nir);
    /* field margins: a faint grassy line on the field's edge */
    double fu = u - iu * width, fw = (w + stagger) - iw * length;
    if (fu < 0.8 || fw < 0.8)
        c = mix(c, crop_refl[4], 0.45);
    /* farm tracks along some block edges (where a slow noise is positive), hedges elsewhere */
    double track = dc_noise_clamp01(1.0 - v.edge);
    if (track > 0.0) {
        int is_track = dc_noise_fbm(kb ^ 0x7AC, x, y, 120.0, 2, 0.5, 0, 2) > 0.05;
        c = mix(c, is_track ? track_refl : deciduous_refl, 0.55 * track);
    }
    return c;
}

int dc_landscape_render(const dc_landscape_options *o, int x0, int y0, int w, int h, uint16_t *out,
                        dc_error *err)
{
    if (!o || !out || o->width <= 0 || o->height <= 0)
        return dc_fail(err, DC_ERR_ARG, "landscape: bad scene size");
    if (x0 < 0 || y0 < 0 || w <= 0 || h <= 0 || x0 > o->width - w || y0 > o->height - h)
        return dc_fail(err, DC_ERR_ARG, "landscape: window %d,%d %dx%d outside the %dx%d scene",
                       x0, y0, w, h, o->width, o->height);
    scene_draws s;
    draw_scene(o, &s);
    uint64_t kp = lkey(o, L_PIXEL);
    for (int j = 0; j < h; j++)
        for (int i = 0; i < w; i++) {
            double x = x0 + i + 0.5, y = y0 + j + 0.5;
            refl4 c, tmp;
            if (village(o, x, y, &tmp)) {
                c = tmp;
            } else {
                c = field(o, &s, x, y);
                double f = forest(o, x, y, &tmp);
                if (f > 0.0)
                    c = mix(c, tmp, f);
            }
            double rd = road_cover(o, &s, x, y);
            if (rd > 0.0)
                c = mix(c, road_refl, rd);
            double wt = water_cover(o, &s, x, y);
            if (wt > 0.0) {
                double turbid = 1.0 + 0.15 * dc_noise_fbm(lkey(o, L_LAKE) ^ 9, x, y, 60.0, 2, 0.5, 0, 2);
                c = mix(c, scale(water_refl, turbid, turbid), wt);
            }
            /* sensor noise, about 0.5 % */
            uint64_t hp = dc_noise_hash2(kp, x0 + i, y0 + j);
            double noise = 1.0 + 0.01 * (dc_noise_unit(hp) - 0.5);
            double v[4] = {c.r, c.g, c.b, c.n};
            uint16_t *px = out + ((size_t)j * w + i) * DC_LANDSCAPE_BANDS;
            for (int b = 0; b < 4; b++) {
                double dn = floor(v[b] * noise * 10000.0 + 0.5);
                px[b] = (uint16_t)(dn < 1.0 ? 1.0 : (dn > 65535.0 ? 65535.0 : dn));
            }
        }
    return DC_OK;
}
