/* diffcr — the training config: DiffCR's JSON schema read into dc_train_config (train.h).
 *
 * DiffCR's own keys keep their meaning (DIFFCR.md §3.3); diffcr's additions live under "train"
 * and are listed in train.h. Keys that neither knows are reported (a typo such as "n_iters" would
 * otherwise silently leave the default in force), but are not errors: DiffCR configs carry keys
 * for its Python side that do not matter here. */
#include <cjson/cJSON.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diffcr/config.h"
#include "diffcr/train.h"

/* Known key paths: components separated by '.', '*' matches one object key, '#' an array index.
 * A trailing '!' marks a subtree whose content is not checked (dataset args, unet). */
static const char *const known_keys[] = {
    "name", "gpu_ids", "seed", "finetune_norm", "phase", "distributed", "local_rank",
    "path", "path.*",
    "datasets", "datasets.*", "datasets.*.which_dataset", "datasets.*.which_dataset.name!",
    "datasets.*.which_dataset.args!", "datasets.*.dataloader", "datasets.*.dataloader.validation_split",
    "datasets.*.dataloader.args!", "datasets.*.dataloader.val_args!",
    "model", "model.which_model", "model.which_model.name!", "model.which_model.args",
    "model.which_model.args.sample_num", "model.which_model.args.task",
    "model.which_model.args.ema_scheduler", "model.which_model.args.ema_scheduler.ema_start",
    "model.which_model.args.ema_scheduler.ema_iter", "model.which_model.args.ema_scheduler.ema_decay",
    "model.which_model.args.optimizers", "model.which_model.args.optimizers.#",
    "model.which_model.args.optimizers.#.lr", "model.which_model.args.optimizers.#.weight_decay",
    "model.which_model.args.optimizers.#.betas!", "model.which_model.args.optimizers.#.eps",
    "model.which_model.args.optimizers.#.type",
    "model.which_networks", "model.which_networks.#", "model.which_networks.#.name!",
    "model.which_networks.#.args", "model.which_networks.#.args.init_type",
    "model.which_networks.#.args.module_name", "model.which_networks.#.args.unet!",
    "model.which_networks.#.args.beta_schedule", "model.which_networks.#.args.beta_schedule.*",
    "model.which_networks.#.args.beta_schedule.*.schedule",
    "model.which_networks.#.args.beta_schedule.*.n_timestep",
    "model.which_networks.#.args.beta_schedule.*.linear_start",
    "model.which_networks.#.args.beta_schedule.*.linear_end",
    "model.which_losses!", "model.which_metrics!",
    "train", "train.n_epoch", "train.n_iter", "train.val_epoch", "train.save_checkpoint_epoch",
    "train.log_iter", "train.tensorboard", "train.val_iter", "train.save_checkpoint_iter",
    "train.val_samples", "train.target", "train.time_input", "train.lr_schedule", "train.warmup_iter",
    "train.min_lr", "train.lr_decay_iter", "train.grad_clip", "train.augment", "train.export_ema",
    "train.tile", "train.seed",
    "debug", "debug.*",
};

/* 1 = known, 2 = known and opaque. */
static int key_known(const char *path)
{
    for (size_t i = 0; i < sizeof known_keys / sizeof *known_keys; i++) {
        const char *p = known_keys[i], *q = path;
        for (;;) {
            size_t pl = strcspn(p, ".!"), ql = strcspn(q, ".");
            int ok = (pl == 1 && (*p == '*' || (*p == '#' && q[0] >= '0' && q[0] <= '9'))) ||
                     (pl == ql && !strncmp(p, q, pl));
            if (!ok)
                break;
            p += pl, q += ql;
            int pend = (*p == 0 || *p == '!'), qend = (*q == 0);
            if (pend && qend)
                return *p == '!' ? 2 : 1;
            if (pend || qend)
                break;
            p++, q++;
        }
    }
    return 0;
}

static void check_keys(const cJSON *node, const char *prefix, void (*warn)(const char *, void *), void *arg)
{
    int idx = 0;
    for (const cJSON *c = node->child; c; c = c->next, idx++) {
        char path[512];
        if (cJSON_IsArray(node))
            snprintf(path, sizeof path, "%s%s%d", prefix, *prefix ? "." : "", idx);
        else
            snprintf(path, sizeof path, "%s%s%s", prefix, *prefix ? "." : "", c->string ? c->string : "?");
        int k = key_known(path);
        if (!k) {
            char msg[700];
            snprintf(msg, sizeof msg, "unknown config key '%s' (ignored)", path);
            warn(msg, arg);
            continue;
        }
        if (k == 1 && (cJSON_IsObject(c) || cJSON_IsArray(c)))
            check_keys(c, path, warn, arg);
    }
}

static int get_beta(dc_beta_spec *b, const cJSON *root, const char *which, dc_error *err)
{
    char path[200];
    snprintf(path, sizeof path, "model.which_networks.0.args.beta_schedule.%s", which);
    const cJSON *o = dc_json_at(root, path);
    if (!o)
        return dc_fail(err, DC_ERR_ARG, "config: %s is missing", path);
    const char *name;
    int rc;
    b->linear_start = DC_BETA_DEFAULT_LINEAR_START;
    b->linear_end = DC_BETA_DEFAULT_LINEAR_END;
    if ((rc = dc_json_get_string(o, "schedule", &name, err)) != DC_OK ||
        (rc = dc_beta_kind_parse(name, &b->kind, err)) != DC_OK ||
        (rc = dc_json_get_int(o, "n_timestep", &b->n, err)) != DC_OK)
        return rc;
    if (dc_json_at(o, "linear_start") && (rc = dc_json_get_double(o, "linear_start", &b->linear_start, err)) != DC_OK)
        return rc;
    if (dc_json_at(o, "linear_end") && (rc = dc_json_get_double(o, "linear_end", &b->linear_end, err)) != DC_OK)
        return rc;
    if (b->n < 2 || b->n > 100000)
        return dc_fail(err, DC_ERR_ARG, "config: %s.n_timestep %d out of range 2..100000", path, b->n);
    return DC_OK;
}

/* Optional number at path: leaves *out alone when absent; errors on a wrong type or range. */
static int opt_num(const cJSON *root, const char *path, double lo, double hi, double *out, dc_error *err)
{
    const cJSON *v = dc_json_at(root, path);
    if (!v || cJSON_IsNull(v))
        return DC_OK;
    if (!cJSON_IsNumber(v))
        return dc_fail(err, DC_ERR_ARG, "config: %s must be a number", path);
    if (v->valuedouble < lo || v->valuedouble > hi)
        return dc_fail(err, DC_ERR_ARG, "config: %s = %g is out of range %g..%g", path, v->valuedouble, lo, hi);
    *out = v->valuedouble;
    return DC_OK;
}

/* A count, iteration number or seed: a whole number in lo..hi. Bounds stay within what the
 * double holds exactly (2^53) and what the C field holds, so the cast below is exact. */
static int opt_int(const cJSON *root, const char *path, double lo, double hi, double *out, dc_error *err)
{
    double v = *out;
    int rc = opt_num(root, path, lo, hi, &v, err);
    if (rc != DC_OK)
        return rc;
    if (v != floor(v))
        return dc_fail(err, DC_ERR_ARG, "config: %s = %g must be a whole number", path, v);
    *out = v;
    return DC_OK;
}

static int opt_bool(const cJSON *root, const char *path, int *out, dc_error *err)
{
    const cJSON *v = dc_json_at(root, path);
    if (!v)
        return DC_OK;
    if (!cJSON_IsBool(v))
        return dc_fail(err, DC_ERR_ARG, "config: %s must be true or false", path);
    *out = cJSON_IsTrue(v);
    return DC_OK;
}

static int opt_str(const cJSON *root, const char *path, const char **out, dc_error *err)
{
    const cJSON *v = dc_json_at(root, path);
    if (!v || cJSON_IsNull(v))
        return DC_OK;
    if (!cJSON_IsString(v))
        return dc_fail(err, DC_ERR_ARG, "config: %s must be a string", path);
    *out = v->valuestring;
    return DC_OK;
}

int dc_train_config_parse(dc_train_config *cfg, const char *text, const char *base_dir,
                          void (*warn)(const char *msg, void *arg), void *warn_arg, dc_error *err)
{
    memset(cfg, 0, sizeof *cfg);
    snprintf(cfg->base_dir, sizeof cfg->base_dir, "%s", base_dir ? base_dir : ".");
    if (!(cfg->text = strdup(text)))
        return dc_fail(err, DC_ERR_NOMEM, "out of memory");
    int rc = dc_json_parse_text(&cfg->root, text, "config", err);
    if (rc != DC_OK)
        goto fail;
    const cJSON *r = cfg->root;
    if (!cJSON_IsObject(r)) {
        rc = dc_fail(err, DC_ERR_FORMAT, "config: not a JSON object");
        goto fail;
    }
    if (warn)
        check_keys(r, "", warn, warn_arg);
    const char *s = NULL;
    opt_str(r, "name", &s, NULL);
    snprintf(cfg->name, sizeof cfg->name, "%s", s ? s : "diffcr");
    if ((rc = dc_unet_config_from_json(&cfg->unet, r, err)) != DC_OK ||
        (rc = dc_unet_config_validate(&cfg->unet, err)) != DC_OK ||
        (rc = get_beta(&cfg->train_schedule, r, "train", err)) != DC_OK ||
        (rc = get_beta(&cfg->test_schedule, r, "test", err)) != DC_OK)
        goto fail;

    /* DiffCR's defaults (diffcr_paper.json), then the file's values. */
    double batch = 8, workers = 4, n_epoch = 3000, n_iter = 1e8, val_epoch = 1000, save_epoch = 1000;
    double log_iter = 10000, val_iter = 0, save_iter = 0, val_samples = 4, warmup = 0, decay_iter = 0;
    double tile = 0, seed = -1, ema_start = 1, ema_iter = 1;
    cfg->ema_decay = 0.9999;
    dc_adam_config_default(&cfg->adam);
    cfg->augment = 1, cfg->export_ema = 0;
    cfg->target = DC_TARGET_X0;
    cfg->time_input = DC_TIME_INPUT_GAMMA;
    const cJSON *betas = dc_json_at(r, "model.which_model.args.optimizers.0.betas");
    const char *type = NULL, *target = NULL, *ti = NULL, *lrs = NULL;
    if ((rc = opt_int(r, "datasets.train.dataloader.args.batch_size", 1, 4096, &batch, err)) ||
        (rc = opt_int(r, "datasets.train.dataloader.args.num_workers", 0, 256, &workers, err)) ||
        (rc = opt_int(r, "train.n_epoch", 1, 1e9, &n_epoch, err)) ||
        (rc = opt_int(r, "train.n_iter", 1, 1e15, &n_iter, err)) ||
        (rc = opt_int(r, "train.val_epoch", 0, 1e9, &val_epoch, err)) ||
        (rc = opt_int(r, "train.save_checkpoint_epoch", 0, 1e9, &save_epoch, err)) ||
        (rc = opt_int(r, "train.log_iter", 1, 1e15, &log_iter, err)) ||
        (rc = opt_int(r, "train.val_iter", 0, 1e15, &val_iter, err)) ||
        (rc = opt_int(r, "train.save_checkpoint_iter", 0, 1e15, &save_iter, err)) ||
        (rc = opt_int(r, "train.val_samples", 0, 1e6, &val_samples, err)) ||
        (rc = opt_int(r, "train.warmup_iter", 0, 1e15, &warmup, err)) ||
        (rc = opt_int(r, "train.lr_decay_iter", 0, 1e15, &decay_iter, err)) ||
        (rc = opt_num(r, "train.min_lr", 0, 1, &cfg->min_lr, err)) ||
        (rc = opt_num(r, "train.grad_clip", 0, 1e30, &cfg->grad_clip, err)) ||
        (rc = opt_int(r, "train.tile", 0, 8192, &tile, err)) ||
        (rc = opt_int(r, "seed", -1, 9007199254740992.0, &seed, err)) ||
        (rc = opt_int(r, "train.seed", -1, 9007199254740992.0, &seed, err)) ||
        (rc = opt_bool(r, "train.augment", &cfg->augment, err)) ||
        (rc = opt_bool(r, "train.export_ema", &cfg->export_ema, err)) ||
        (rc = opt_str(r, "train.target", &target, err)) ||
        (rc = opt_str(r, "train.time_input", &ti, err)) ||
        (rc = opt_str(r, "train.lr_schedule", &lrs, err)) ||
        (rc = opt_num(r, "model.which_model.args.optimizers.0.lr", 0, 10, &cfg->adam.lr, err)) ||
        (rc = opt_num(r, "model.which_model.args.optimizers.0.weight_decay", 0, 10, &cfg->adam.weight_decay, err)) ||
        (rc = opt_num(r, "model.which_model.args.optimizers.0.eps", 0, 1, &cfg->adam.eps, err)) ||
        (rc = opt_str(r, "model.which_model.args.optimizers.0.type", &type, err)) ||
        (rc = opt_int(r, "model.which_model.args.ema_scheduler.ema_start", 0, INT_MAX, &ema_start, err)) ||
        (rc = opt_int(r, "model.which_model.args.ema_scheduler.ema_iter", 1, INT_MAX, &ema_iter, err)) ||
        (rc = opt_num(r, "model.which_model.args.ema_scheduler.ema_decay", 0, 1, &cfg->ema_decay, err)))
        goto fail;
    if (betas) {
        if (!cJSON_IsArray(betas) || cJSON_GetArraySize(betas) != 2 ||
            !cJSON_IsNumber(cJSON_GetArrayItem(betas, 0)) || !cJSON_IsNumber(cJSON_GetArrayItem(betas, 1))) {
            rc = dc_fail(err, DC_ERR_ARG, "config: optimizers.0.betas must be [beta1, beta2]");
            goto fail;
        }
        cfg->adam.beta1 = cJSON_GetArrayItem(betas, 0)->valuedouble;
        cfg->adam.beta2 = cJSON_GetArrayItem(betas, 1)->valuedouble;
        /* Adam divides by 1 - beta^t: a beta of 1 or more never warms up or blows up. */
        if (!(cfg->adam.beta1 >= 0 && cfg->adam.beta1 < 1 && cfg->adam.beta2 >= 0 && cfg->adam.beta2 < 1)) {
            rc = dc_fail(err, DC_ERR_ARG, "config: optimizers.0.betas = [%g, %g] must each be in [0, 1)",
                         cfg->adam.beta1, cfg->adam.beta2);
            goto fail;
        }
    }
    if (type && strcmp(type, "adam") && strcmp(type, "adamw")) {
        rc = dc_fail(err, DC_ERR_ARG, "config: optimizers.0.type must be adam or adamw, got '%s'", type);
        goto fail;
    }
    cfg->adam.decoupled = type && !strcmp(type, "adamw");
    if (target && (rc = dc_target_kind_parse(target, &cfg->target, err)) != DC_OK)
        goto fail;
    if (ti && (rc = dc_time_input_parse(ti, &cfg->time_input, err)) != DC_OK)
        goto fail;
    if (lrs && strcmp(lrs, "constant") && strcmp(lrs, "cosine")) {
        rc = dc_fail(err, DC_ERR_ARG, "config: train.lr_schedule must be constant or cosine, got '%s'", lrs);
        goto fail;
    }
    if (tile != 0 && (tile < 16 || (int)tile % 16)) {
        rc = dc_fail(err, DC_ERR_ARG, "config: train.tile must be a multiple of 16");
        goto fail;
    }
    cfg->cosine = lrs && !strcmp(lrs, "cosine");
    cfg->batch = (int)batch;
    cfg->workers = workers < 1 ? 1 : workers > 8 ? 8 : (int)workers;
    cfg->n_epoch = (int)n_epoch;
    cfg->n_iter = (long long)n_iter;
    cfg->val_epoch = (int)val_epoch;
    cfg->save_checkpoint_epoch = (int)save_epoch;
    cfg->log_iter = (long long)log_iter;
    cfg->val_iter = (long long)val_iter;
    cfg->save_checkpoint_iter = (long long)save_iter;
    cfg->val_samples = (int)val_samples;
    cfg->warmup_iter = (long long)warmup;
    cfg->lr_decay_iter = (long long)decay_iter;
    cfg->tile = (int)tile;
    cfg->seed = (long long)seed;
    cfg->ema_start = (int)ema_start;
    cfg->ema_iter = (int)ema_iter;
    return DC_OK;
fail:
    dc_train_config_free(cfg);
    return rc;
}

int dc_train_config_load(dc_train_config *cfg, const char *path,
                         void (*warn)(const char *msg, void *arg), void *warn_arg, dc_error *err)
{
    memset(cfg, 0, sizeof *cfg);
    FILE *f = fopen(path, "rb");
    if (!f)
        return dc_fail(err, DC_ERR_IO, "%s: cannot open the config", path);
    char *text = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n + 4096 + 1 > cap) {
            cap = cap ? 2 * cap : 16384;
            char *t = realloc(text, cap);
            if (!t || cap > (64u << 20)) {
                free(t ? t : text);
                fclose(f);
                return dc_fail(err, DC_ERR_FORMAT, "%s: config too large or out of memory", path);
            }
            text = t;
        }
        size_t k = fread(text + n, 1, 4096, f);
        n += k;
        if (k < 4096)
            break;
    }
    fclose(f);
    text[n] = 0;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = 0;
    else
        snprintf(dir, sizeof dir, ".");
    int rc = dc_train_config_parse(cfg, text, dir, warn, warn_arg, err);
    free(text);
    if (rc != DC_OK) {
        char msg[sizeof err->msg];
        if (err) {
            snprintf(msg, sizeof msg, "%s", err->msg);
            dc_fail(err, rc, "%s: %s", path, msg);
        }
    }
    return rc;
}

void dc_train_config_free(dc_train_config *cfg)
{
    free(cfg->text);
    if (cfg->root)
        cJSON_Delete(cfg->root);
    cfg->text = NULL;
    cfg->root = NULL;
}

const cJSON *dc_train_config_dataset(const dc_train_config *cfg, const char *split)
{
    char path[128];
    snprintf(path, sizeof path, "datasets.%s.which_dataset", split);
    return dc_json_at(cfg->root, path);
}
