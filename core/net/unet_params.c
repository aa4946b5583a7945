/* diffcr — the DiffCR parameter table: names, PyTorch shapes and offsets in the flat buffer.
 *
 * Names are DiffCR's state-dict keys (DIFFCR.md §2.3) and the order is PyTorch's state_dict order
 * (a module's own parameters first, then its children in registration order), so a checkpoint written
 * from the flat buffer lists tensors in the same order as torch.save would. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/unet_layout.h"

typedef struct table_builder {
    dc_param_table *tab;
    int capacity;
    int failed;
} table_builder;

/* prefix + suffix into dst; names are at most 95 chars by construction (the longest DiffCR key is
 * about 40), so truncation would be a bug: it is cut rather than overflowing. */
static void join_name(char *dst, size_t cap, const char *prefix, const char *suffix)
{
    size_t lp = strlen(prefix), ls = strlen(suffix);
    if (lp >= cap)
        lp = cap - 1;
    if (lp + ls >= cap)
        ls = cap - 1 - lp;
    memcpy(dst, prefix, lp);
    memcpy(dst + lp, suffix, ls);
    dst[lp + ls] = '\0';
}

static size_t add_param(table_builder *b, const char *name, int ndim, int d0, int d1, int d2, int d3)
{
    dc_param_table *tab = b->tab;
    if (b->failed)
        return 0;
    if (tab->count == b->capacity) {
        int cap = b->capacity ? b->capacity * 2 : 256;
        dc_param_view *v = realloc(tab->views, (size_t)cap * sizeof *v);
        if (!v) {
            b->failed = 1;
            return 0;
        }
        tab->views = v;
        b->capacity = cap;
    }
    dc_param_view *v = &tab->views[tab->count++];
    memset(v, 0, sizeof *v);
    snprintf(v->name, sizeof v->name, "%s", name);
    int dims[4] = {d0, d1, d2, d3};
    v->ndim = ndim;
    v->numel = 1;
    for (int i = 0; i < ndim; i++) {
        v->shape[i] = dims[i];
        v->numel *= (size_t)dims[i];
    }
    v->offset = tab->total;
    tab->total += v->numel;
    return v->offset;
}

static void add_conv(table_builder *b, const char *prefix, int out, int in_per_group, int k,
                     int bias, size_t *w_off, size_t *b_off)
{
    char name[96];
    join_name(name, sizeof name, prefix, ".weight");
    *w_off = add_param(b, name, 4, out, in_per_group, k, k);
    if (bias) {
        join_name(name, sizeof name, prefix, ".bias");
        *b_off = add_param(b, name, 1, out, 0, 0, 0);
    }
}

static void add_block(table_builder *b, naf_block_layout *blk, const char *prefix, int c, int has_time)
{
    char name[96];
    int dw = 2 * c; /* DW_Expand = FFN_Expand = 2 */
    blk->c = c;
    blk->has_time = has_time;
    join_name(name, sizeof name, prefix, ".beta");
    blk->beta = add_param(b, name, 4, 1, c, 1, 1);
    join_name(name, sizeof name, prefix, ".gamma");
    blk->gamma = add_param(b, name, 4, 1, c, 1, 1);
    join_name(name, sizeof name, prefix, ".conv1");
    add_conv(b, name, dw, c, 1, 1, &blk->conv1_w, &blk->conv1_b);
    join_name(name, sizeof name, prefix, ".conv2");
    add_conv(b, name, dw, 1, 3, 1, &blk->conv2_w, &blk->conv2_b);
    join_name(name, sizeof name, prefix, ".conv3");
    add_conv(b, name, c, dw / 2, 1, 1, &blk->conv3_w, &blk->conv3_b);
    join_name(name, sizeof name, prefix, ".sca_avg.1");
    add_conv(b, name, dw / 4, dw / 4, 1, 1, &blk->sca_avg_w, &blk->sca_avg_b);
    join_name(name, sizeof name, prefix, ".sca_max.1");
    add_conv(b, name, dw / 4, dw / 4, 1, 1, &blk->sca_max_w, &blk->sca_max_b);
    join_name(name, sizeof name, prefix, ".conv4");
    add_conv(b, name, 2 * c, c, 1, 1, &blk->conv4_w, &blk->conv4_b);
    join_name(name, sizeof name, prefix, ".conv5");
    add_conv(b, name, c, c, 1, 1, &blk->conv5_w, &blk->conv5_b);
    join_name(name, sizeof name, prefix, ".norm1.weight");
    blk->norm1_w = add_param(b, name, 1, c, 0, 0, 0);
    join_name(name, sizeof name, prefix, ".norm1.bias");
    blk->norm1_b = add_param(b, name, 1, c, 0, 0, 0);
    join_name(name, sizeof name, prefix, ".norm2.weight");
    blk->norm2_w = add_param(b, name, 1, c, 0, 0, 0);
    join_name(name, sizeof name, prefix, ".norm2.bias");
    blk->norm2_b = add_param(b, name, 1, c, 0, 0, 0);
    if (has_time) {
        join_name(name, sizeof name, prefix, ".time_emb.1.weight");
        blk->temb_w = add_param(b, name, 2, c, DC_UNET_TEMB_DIM, 0, 0);
        join_name(name, sizeof name, prefix, ".time_emb.1.bias");
        blk->temb_b = add_param(b, name, 1, c, 0, 0, 0);
    }
}

int unet_layout_build(unet_layout *lay, dc_param_table *tab, const dc_unet_config *cfg, dc_error *err)
{
    int rc = dc_unet_config_validate(cfg, err);
    if (rc != DC_OK)
        return rc;
    memset(lay, 0, sizeof *lay);
    memset(tab, 0, sizeof *tab);
    int L = cfg->n_levels;
    lay->levels = L;

    int nblocks = cfg->middle_blk_num;
    for (int i = 0; i < L; i++)
        nblocks += 2 * cfg->enc_blk_nums[i] + cfg->dec_blk_nums[i];
    lay->block_storage = calloc((size_t)(nblocks ? nblocks : 1), sizeof(naf_block_layout));
    if (!lay->block_storage)
        return dc_fail(err, DC_ERR_NOMEM, "out of memory building the parameter table");
    lay->block_count = nblocks;

    table_builder b = {tab, 0, 0};
    naf_block_layout *next = lay->block_storage;
    char prefix[96];
    int ic = cfg->img_channel, w = cfg->width;

    /* UNet.__init__ registration order: intro, cond_intro, ending, encoders, cond_encoders,
     * decoders, middle_blks, ups, downs, cond_downs, map. */
    add_conv(&b, "intro", w, ic, 3, 1, &lay->intro_w, &lay->intro_b);
    add_conv(&b, "cond_intro", w, ic, 3, 1, &lay->cond_intro_w, &lay->cond_intro_b);
    add_conv(&b, "ending", ic, w, 3, 1, &lay->ending_w, &lay->ending_b);

    int chan = w;
    for (int i = 0; i < L; i++, chan *= 2) {
        lay->enc[i] = next;
        for (int j = 0; j < cfg->enc_blk_nums[i]; j++) {
            snprintf(prefix, sizeof prefix, "encoders.%d.%d", i, j);
            add_block(&b, next++, prefix, chan, 1);
        }
    }
    chan = w;
    for (int i = 0; i < L; i++, chan *= 2) {
        lay->cond_enc[i] = next;
        for (int j = 0; j < cfg->enc_blk_nums[i]; j++) {
            snprintf(prefix, sizeof prefix, "cond_encoders.%d.%d", i, j);
            add_block(&b, next++, prefix, chan, 0);
        }
    }
    int bottom = w << L;
    chan = bottom;
    for (int j = 0; j < L; j++) {
        chan /= 2;
        lay->dec[j] = next;
        for (int k = 0; k < cfg->dec_blk_nums[j]; k++) {
            snprintf(prefix, sizeof prefix, "decoders.%d.%d", j, k);
            add_block(&b, next++, prefix, chan, 1);
        }
    }
    lay->middle = next;
    for (int k = 0; k < cfg->middle_blk_num; k++) {
        snprintf(prefix, sizeof prefix, "middle_blks.%d", k);
        add_block(&b, next++, prefix, bottom, 1);
    }
    chan = bottom;
    for (int j = 0; j < L; j++, chan /= 2) {
        snprintf(prefix, sizeof prefix, "ups.%d.0", j);
        size_t unused = 0;
        add_conv(&b, prefix, 2 * chan, chan, 1, 0, &lay->up_w[j], &unused);
    }
    chan = w;
    for (int i = 0; i < L; i++, chan *= 2) {
        snprintf(prefix, sizeof prefix, "downs.%d", i);
        add_conv(&b, prefix, 2 * chan, chan, 2, 1, &lay->down_w[i], &lay->down_b[i]);
    }
    chan = w;
    for (int i = 0; i < L; i++, chan *= 2) {
        snprintf(prefix, sizeof prefix, "cond_downs.%d", i);
        add_conv(&b, prefix, 2 * chan, chan, 2, 1, &lay->cond_down_w[i], &lay->cond_down_b[i]);
    }
    lay->map0_w = add_param(&b, "map.0.weight", 2, DC_UNET_TEMB_DIM, DC_UNET_GAMMA_DIM, 0, 0);
    lay->map0_b = add_param(&b, "map.0.bias", 1, DC_UNET_TEMB_DIM, 0, 0, 0);
    lay->map2_w = add_param(&b, "map.2.weight", 2, DC_UNET_TEMB_DIM, DC_UNET_TEMB_DIM, 0, 0);
    lay->map2_b = add_param(&b, "map.2.bias", 1, DC_UNET_TEMB_DIM, 0, 0, 0);

    if (b.failed) {
        unet_layout_free(lay);
        dc_param_table_free(tab);
        return dc_fail(err, DC_ERR_NOMEM, "out of memory building the parameter table");
    }
    return DC_OK;
}

void unet_layout_free(unet_layout *lay)
{
    free(lay->block_storage);
    memset(lay, 0, sizeof *lay);
}

int dc_param_table_build(dc_param_table *tab, const dc_unet_config *cfg, dc_error *err)
{
    unet_layout lay;
    int rc = unet_layout_build(&lay, tab, cfg, err);
    if (rc == DC_OK)
        unet_layout_free(&lay);
    return rc;
}

void dc_param_table_free(dc_param_table *tab)
{
    free(tab->views);
    memset(tab, 0, sizeof *tab);
}

const dc_param_view *dc_param_table_find(const dc_param_table *tab, const char *name)
{
    for (int i = 0; i < tab->count; i++)
        if (strcmp(tab->views[i].name, name) == 0)
            return &tab->views[i];
    return NULL;
}

/* splitmix64: a tiny counter-based mixer, so each parameter's init depends only on (seed, its index
 * in the table, element index) and not on the order anything is initialised in. */
static uint64_t mix64(uint64_t z)
{
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double unit_open(uint64_t bits) { return ((double)(bits >> 11) + 0.5) / 9007199254740992.0; }

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

void dc_unet_init_params(float *params, const dc_param_table *tab, unsigned long long seed)
{
    for (int t = 0; t < tab->count; t++) {
        const dc_param_view *v = &tab->views[t];
        float *p = params + v->offset;
        if (ends_with(v->name, ".beta") || ends_with(v->name, ".gamma") || ends_with(v->name, ".bias")) {
            memset(p, 0, v->numel * sizeof *p);
        } else if (strstr(v->name, ".norm") && ends_with(v->name, ".weight")) {
            for (size_t i = 0; i < v->numel; i++)
                p[i] = 1.0f;
        } else {
            /* kaiming_normal_(a=0, mode=fan_in): std = sqrt(2 / fan_in), fan_in = numel / out. */
            size_t fan_in = v->numel / (size_t)v->shape[0];
            double std = sqrt(2.0 / (double)fan_in);
            uint64_t key = mix64(seed ^ mix64((uint64_t)t + 1));
            for (size_t i = 0; i < v->numel; i++) {
                uint64_t r = mix64(key + 2 * i), s = mix64(key + 2 * i + 1);
                double g = sqrt(-2.0 * log(unit_open(r))) * cos(6.283185307179586 * unit_open(s));
                p[i] = (float)(std * g);
            }
        }
    }
}
