/* diffcr — DiffCR-schema JSON configs: comment stripping, parsing, dotted-path lookups, and the UNet
 * block (see config.h).
 *
 * DiffCR's configs are JSON with `//` comments (Palette strips them line by line before json.loads).
 * We strip `//` and block comments outside strings by overwriting them with spaces, keeping newlines,
 * so that a cJSON error position still maps to the line and column the user sees in their editor.
 * Lookup errors name the path and what was expected, because a config is edited by hand and "width
 * must be an integer" is the message that gets it fixed. */
#include "diffcr/config.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Configs are a few KB; anything far bigger is not a config. */
#define CONFIG_MAX_BYTES (16u << 20)
/* Longest single segment of a dotted path (a key or an index). */
#define PATH_SEGMENT_MAX 256

/* Overwrite comments outside strings with spaces (newlines kept). Returns 0, or the offset + 1 of an
 * unterminated block comment. */
static size_t strip_comments(char *s)
{
    int in_string = 0;
    for (char *p = s; *p; p++) {
        if (in_string) {
            if (*p == '\\' && p[1] != '\0')
                p++;   /* the escaped character (\" in particular) cannot end the string */
            else if (*p == '"')
                in_string = 0;
            continue;
        }
        if (*p == '"') {
            in_string = 1;
        } else if (p[0] == '/' && p[1] == '/') {
            while (*p && *p != '\n')
                *p++ = ' ';
            if (!*p)
                break;
        } else if (p[0] == '/' && p[1] == '*') {
            char *start = p;
            p[0] = p[1] = ' ';
            p += 2;
            while (*p && !(p[0] == '*' && p[1] == '/')) {
                if (*p != '\n')
                    *p = ' ';
                p++;
            }
            if (!*p)
                return (size_t)(start - s) + 1;
            p[0] = p[1] = ' ';
            p++;   /* the loop's p++ steps past the closing '/' */
        }
    }
    return 0;
}

static void line_col(const char *text, size_t offset, int *line, int *col)
{
    int l = 1, c = 1;
    for (size_t i = 0; i < offset && text[i]; i++) {
        if (text[i] == '\n') {
            l++;
            c = 1;
        } else {
            c++;
        }
    }
    *line = l;
    *col = c;
}

int dc_json_parse_text(cJSON **out, const char *text, const char *what, dc_error *err)
{
    if (!what)
        what = "config";
    if (!out || !text)
        return dc_fail(err, DC_ERR_ARG, "%s: NULL argument", what);
    *out = NULL;
    size_t n = strlen(text);
    char *copy = malloc(n + 1);
    if (!copy)
        return dc_fail(err, DC_ERR_NOMEM, "%s: out of memory", what);
    memcpy(copy, text, n + 1);

    size_t open_comment = strip_comments(copy);
    if (open_comment) {
        int line, col;
        line_col(copy, open_comment - 1, &line, &col);
        free(copy);
        return dc_fail(err, DC_ERR_FORMAT, "%s: unterminated /* comment starting at line %d, column %d",
                       what, line, col);
    }
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithOpts(copy, &end, 1);
    if (!root) {
        size_t at = end && end >= copy ? (size_t)(end - copy) : 0;
        int line, col;
        line_col(copy, at, &line, &col);
        /* A few characters of context help find the spot; the stripped text equals the original
         * there except that comments became spaces. */
        char near[24];
        size_t k = 0;
        for (const char *p = copy + at; *p && *p != '\n' && k + 1 < sizeof near; p++)
            near[k++] = (*p == '\t' || (unsigned char)*p < 0x20) ? ' ' : *p;
        near[k] = '\0';
        int rc = dc_fail(err, DC_ERR_FORMAT, "%s: invalid JSON at line %d, column %d%s%s%s", what, line,
                         col, k ? " (near \"" : (at >= n ? " (unexpected end of text)" : ""), near,
                         k ? "\")" : "");
        free(copy);
        return rc;
    }
    free(copy);
    *out = root;
    return DC_OK;
}

int dc_json_parse_file(cJSON **out, const char *path, dc_error *err)
{
    if (!out || !path)
        return dc_fail(err, DC_ERR_ARG, "dc_json_parse_file: NULL argument");
    *out = NULL;
    /* O_NONBLOCK: opening a FIFO must not hang before S_ISREG rejects it (no effect on files). */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return dc_fail(err, DC_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return dc_fail(err, DC_ERR_IO, "%s: not a regular file", path);
    }
    FILE *f = fdopen(fd, "rb");
    if (!f) {
        close(fd);
        return dc_fail(err, DC_ERR_NOMEM, "%s: cannot open: %s", path, strerror(errno));
    }
    if ((unsigned long long)sb.st_size > CONFIG_MAX_BYTES) {
        fclose(f);
        return dc_fail(err, DC_ERR_FORMAT, "%s: %lld bytes is too large for a config file", path,
                       (long long)sb.st_size);
    }
    size_t size = (size_t)sb.st_size;
    char *text = malloc(size + 1);
    if (!text) {
        fclose(f);
        return dc_fail(err, DC_ERR_NOMEM, "%s: out of memory", path);
    }
    size_t got = fread(text, 1, size, f);
    int read_error = ferror(f);
    fclose(f);
    if (read_error || got != size) {
        free(text);
        return dc_fail(err, DC_ERR_IO, "%s: read failed", path);
    }
    text[size] = '\0';
    /* A NUL would silently end the text early for the parser. */
    if (strlen(text) != size) {
        free(text);
        return dc_fail(err, DC_ERR_FORMAT, "%s: contains a NUL byte (not a text file)", path);
    }
    int rc = dc_json_parse_text(out, text, path, err);
    free(text);
    return rc;
}

/* Segment [s, s+n) as an array index, or -1. */
static int parse_index(const char *s, size_t n)
{
    if (n == 0 || n > 9)
        return -1;
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

const cJSON *dc_json_at(const cJSON *root, const char *path)
{
    if (!root || !path)
        return NULL;
    const cJSON *cur = root;
    const char *p = path;
    while (*p) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        if (n == 0 || n >= PATH_SEGMENT_MAX)
            return NULL;
        if (cJSON_IsArray(cur)) {
            int idx = parse_index(p, n);
            if (idx < 0)
                return NULL;
            cur = cJSON_GetArrayItem(cur, idx);
        } else if (cJSON_IsObject(cur)) {
            char key[PATH_SEGMENT_MAX];
            memcpy(key, p, n);
            key[n] = '\0';
            cur = cJSON_GetObjectItemCaseSensitive(cur, key);
        } else {
            return NULL;
        }
        if (!cur)
            return NULL;
        p += n;
        if (*p == '.') {
            p++;
            if (!*p)
                return NULL;   /* trailing dot */
        }
    }
    return cur;
}

/* An exactly integral JSON number that fits an int. */
static int json_to_int(const cJSON *v, int *out)
{
    if (!cJSON_IsNumber(v))
        return 0;
    double d = v->valuedouble;
    if (!isfinite(d) || floor(d) != d || d < (double)INT_MIN || d > (double)INT_MAX)
        return 0;
    *out = (int)d;
    return 1;
}

/* The lookups below take the name to print separately from the path to follow, so that the UNet
 * parser can say "unet.width" whatever the prefix in front of it. */
static int get_int_named(const cJSON *root, const char *path, const char *name, int *out, dc_error *err)
{
    const cJSON *v = dc_json_at(root, path);
    if (!v)
        return dc_fail(err, DC_ERR_FORMAT, "config: \"%s\" is missing", name);
    if (!json_to_int(v, out))
        return dc_fail(err, DC_ERR_FORMAT, "config: \"%s\" must be an integer", name);
    return DC_OK;
}

static int get_int_array_named(const cJSON *root, const char *path, const char *name, int *out, int max,
                               int *count, dc_error *err)
{
    const cJSON *v = dc_json_at(root, path);
    if (!v)
        return dc_fail(err, DC_ERR_FORMAT, "config: \"%s\" is missing", name);
    if (!cJSON_IsArray(v))
        return dc_fail(err, DC_ERR_FORMAT, "config: \"%s\" must be an array of integers", name);
    int n = cJSON_GetArraySize(v);
    if (n > max)
        return dc_fail(err, DC_ERR_FORMAT, "config: \"%s\" has %d elements (at most %d)", name, n, max);
    int i = 0;
    for (const cJSON *e = v->child; e; e = e->next, i++)
        if (!json_to_int(e, &out[i]))
            return dc_fail(err, DC_ERR_FORMAT, "config: \"%s\" element %d must be an integer", name, i);
    *count = n;
    return DC_OK;
}

int dc_json_get_int(const cJSON *root, const char *path, int *out, dc_error *err)
{
    if (!root || !path || !out)
        return dc_fail(err, DC_ERR_ARG, "dc_json_get_int: NULL argument");
    return get_int_named(root, path, path, out, err);
}

int dc_json_get_double(const cJSON *root, const char *path, double *out, dc_error *err)
{
    if (!root || !path || !out)
        return dc_fail(err, DC_ERR_ARG, "dc_json_get_double: NULL argument");
    const cJSON *v = dc_json_at(root, path);
    if (!v)
        return dc_fail(err, DC_ERR_FORMAT, "config: \"%s\" is missing", path);
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
        return dc_fail(err, DC_ERR_FORMAT, "config: \"%s\" must be a number", path);
    *out = v->valuedouble;
    return DC_OK;
}

int dc_json_get_string(const cJSON *root, const char *path, const char **out, dc_error *err)
{
    if (!root || !path || !out)
        return dc_fail(err, DC_ERR_ARG, "dc_json_get_string: NULL argument");
    const cJSON *v = dc_json_at(root, path);
    if (!v)
        return dc_fail(err, DC_ERR_FORMAT, "config: \"%s\" is missing", path);
    if (!cJSON_IsString(v))
        return dc_fail(err, DC_ERR_FORMAT, "config: \"%s\" must be a string", path);
    *out = v->valuestring;
    return DC_OK;
}

int dc_json_get_int_array(const cJSON *root, const char *path, int *out, int max, int *count,
                          dc_error *err)
{
    if (!root || !path || !count || max < 0 || (!out && max > 0))
        return dc_fail(err, DC_ERR_ARG, "dc_json_get_int_array: bad argument");
    return get_int_array_named(root, path, path, out, max, count, err);
}

/* DiffCR keeps the UNet hyper-parameters here (config/ours_sigmoid.json). */
#define UNET_PATH_IN_CONFIG "model.which_networks.0.args.unet"

int dc_unet_config_from_json(dc_unet_config *cfg, const cJSON *root, dc_error *err)
{
    if (!cfg || !root)
        return dc_fail(err, DC_ERR_ARG, "dc_unet_config_from_json: NULL argument");
    if (!cJSON_IsObject(root))
        return dc_fail(err, DC_ERR_FORMAT, "config: not a JSON object");

    /* Whole config, a network's "args" object, or the unet object itself. */
    const cJSON *unet = dc_json_at(root, UNET_PATH_IN_CONFIG);
    if (!unet)
        unet = cJSON_GetObjectItemCaseSensitive(root, "unet");
    if (!unet) {
        if (cJSON_GetObjectItemCaseSensitive(root, "model"))
            return dc_fail(err, DC_ERR_FORMAT, "config: \"%s\" is missing", UNET_PATH_IN_CONFIG);
        unet = root;
    }
    if (!cJSON_IsObject(unet))
        return dc_fail(err, DC_ERR_FORMAT, "config: \"unet\" must be an object");

    dc_unet_config c;
    memset(&c, 0, sizeof c);
    int rc;
    if ((rc = get_int_named(unet, "img_channel", "unet.img_channel", &c.img_channel, err)) != DC_OK ||
        (rc = get_int_named(unet, "width", "unet.width", &c.width, err)) != DC_OK ||
        (rc = get_int_named(unet, "middle_blk_num", "unet.middle_blk_num", &c.middle_blk_num, err)) != DC_OK)
        return rc;
    int n_enc = 0, n_dec = 0;
    if ((rc = get_int_array_named(unet, "enc_blk_nums", "unet.enc_blk_nums", c.enc_blk_nums,
                                  DC_UNET_MAX_LEVELS, &n_enc, err)) != DC_OK ||
        (rc = get_int_array_named(unet, "dec_blk_nums", "unet.dec_blk_nums", c.dec_blk_nums,
                                  DC_UNET_MAX_LEVELS, &n_dec, err)) != DC_OK)
        return rc;
    if (n_enc == 0)
        return dc_fail(err, DC_ERR_FORMAT, "config: \"unet.enc_blk_nums\" is empty (1..%d levels)",
                       DC_UNET_MAX_LEVELS);
    if (n_enc != n_dec)
        return dc_fail(err, DC_ERR_FORMAT,
                       "config: \"unet.enc_blk_nums\" has %d levels but \"unet.dec_blk_nums\" has %d", n_enc,
                       n_dec);
    c.n_levels = n_enc;
    c.ndates = 3;   /* DiffCR's network hard-codes three dates */
    if (cJSON_GetObjectItemCaseSensitive(unet, "ndates") &&
        (rc = get_int_named(unet, "ndates", "unet.ndates", &c.ndates, err)) != DC_OK)
        return rc;
    if ((rc = dc_unet_config_validate(&c, err)) != DC_OK)
        return rc;
    *cfg = c;
    return DC_OK;
}
