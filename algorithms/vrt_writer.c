/* diffcr — writing the decloud VRT (diffcr/vrt_writer.h).
 *
 * GDAL's VRT driver builds the dataset part (so SRS axis mapping, geotransform, nodata, band
 * metadata are written the way GDAL reads them back), describe_output adds what diffcr-decloud
 * puts on its outputs, and the serialised XML then gets, per band, the pixel-function arguments,
 * the block size and the two ramp sources, which the C API cannot set. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cpl_conv.h>
#include <cpl_error.h>
#include <cpl_minixml.h>
#include <cpl_string.h>
#include <cpl_vsi.h>

#include "decloud_internal.h"
#include "diffcr/vrt_writer.h"

#define VRT_BLOCK 256

/* Absolute form of a local path (GDAL does not tell a pixel function where its VRT is, so the
 * arguments cannot be relative); /vsi paths and absolute ones are kept as given. */
static char *absolute_path(const char *p)
{
    if (p[0] == '/')
        return strdup(p);
    char *r = realpath(p, NULL);
    if (r)
        return r;
    char *cwd = CPLGetCurrentDir(); /* a path that does not exist (yet): cwd/p */
    r = strdup(cwd ? CPLFormFilename(cwd, p, NULL) : p);
    CPLFree(cwd);
    return r;
}

static void set_arg(CPLXMLNode *args, const char *name, const char *value)
{
    CPLAddXMLAttributeAndValue(args, name, value);
}

static void set_arg_int(CPLXMLNode *args, const char *name, int v)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%d", v);
    set_arg(args, name, buf);
}

static void set_arg_double(CPLXMLNode *args, const char *name, double v)
{
    char buf[40];
    CPLsnprintf(buf, sizeof buf, "%.17g", v);
    set_arg(args, name, buf);
}

/* The arguments every band shares (band= is added per band). */
static int shared_arguments(CPLXMLNode *args, const dc_decloud_options *o,
                            const dc_decloud_setup *s, dc_error *err)
{
    /* inputs: absolute, `|`-separated */
    size_t len = 1;
    char **abs = calloc((size_t)o->ninputs, sizeof *abs);
    if (!abs)
        return dc_fail(err, DC_ERR_NOMEM, "out of memory");
    int rc = DC_OK;
    for (int i = 0; i < o->ninputs && rc == DC_OK; i++) {
        abs[i] = absolute_path(o->inputs[i]);
        if (!abs[i])
            rc = dc_fail(err, DC_ERR_NOMEM, "out of memory");
        else if (strchr(abs[i], '|'))
            rc = dc_fail(err, DC_ERR_ARG, "%s: a path with '|' cannot go into the VRT", abs[i]);
        else
            len += strlen(abs[i]) + 1;
    }
    char *joined = rc == DC_OK ? malloc(len) : NULL;
    if (rc == DC_OK && !joined)
        rc = dc_fail(err, DC_ERR_NOMEM, "out of memory");
    if (rc == DC_OK) {
        joined[0] = '\0';
        for (int i = 0; i < o->ninputs; i++) {
            if (i)
                strcat(joined, "|");
            strcat(joined, abs[i]);
        }
        set_arg(args, "inputs", joined);
    }
    free(joined);
    for (int i = 0; i < o->ninputs; i++)
        free(abs[i]);
    free(abs);
    if (rc != DC_OK)
        return rc;

    const dc_pipeline *p = &s->pipeline;
    set_arg_int(args, "dates", s->in.ndates);
    if (o->nbands_sel > 0) {
        char buf[DC_MAX_BANDS * 12] = "";
        for (int b = 0; b < o->nbands_sel; b++)
            snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%s%d", b ? "," : "",
                     o->bands[b]);
        set_arg(args, "bands", buf);
    }
    if (o->weights) {
        char *w = absolute_path(o->weights);
        if (!w)
            return dc_fail(err, DC_ERR_NOMEM, "out of memory");
        set_arg(args, "weights", w);
        free(w);
        set_arg_int(args, "steps", o->steps);
        set_arg_int(args, "order", o->order);
        set_arg(args, "sampler", o->sampler);
        set_arg_int(args, "seed", o->seed);
    } else {
        set_arg(args, "model", o->model_name ? o->model_name : "mean");
    }
    if (o->threads > 0)
        set_arg_int(args, "threads", o->threads);
    if (o->device && strcmp(o->device, "auto") != 0)
        set_arg(args, "device", o->device);
    if (o->precision && strcmp(o->precision, "fp32") != 0)
        set_arg(args, "precision", o->precision);
    if (o->samples > 1)
        set_arg_int(args, "samples", o->samples);
    if (o->batch > 1)
        set_arg_int(args, "batch", o->batch);
    /* The tile grid as resolved now, so a later default cannot move the tiles. */
    set_arg_int(args, "tile", p->grid.x.tile);
    set_arg_int(args, "overlap", p->grid.x.overlap);
    set_arg_int(args, "width", s->grid.width);
    set_arg_int(args, "height", s->grid.height);
    set_arg_int(args, "xsrc", 0);
    set_arg_int(args, "ysrc", 1);
    if (s->has_nodata)
        set_arg_double(args, "nodata", s->nodata);
    if (o->have_srcnodata)
        set_arg_double(args, "srcnodata", o->srcnodata);
    if (o->like) {
        char *l = absolute_path(o->like);
        if (!l)
            return dc_fail(err, DC_ERR_NOMEM, "out of memory");
        set_arg(args, "like", l);
        free(l);
    }
    if (o->have_te) {
        char buf[200];
        CPLsnprintf(buf, sizeof buf, "%.17g,%.17g,%.17g,%.17g", o->te[0], o->te[1], o->te[2],
                    o->te[3]);
        set_arg(args, "te", buf);
    }
    if (o->have_tr) {
        char buf[100];
        CPLsnprintf(buf, sizeof buf, "%.17g,%.17g", o->tr[0], o->tr[1]);
        set_arg(args, "tr", buf);
    }
    if (o->t_srs)
        set_arg(args, "t_srs", o->t_srs);
    if (o->resampling && strcmp(o->resampling, "bilinear") != 0)
        set_arg(args, "r", o->resampling);
    if (o->no_warp)
        set_arg(args, "no_warp", "YES");
    return DC_OK;
}

/* <SimpleSource resampling="nearest"> stretching a ramp over the whole band. */
static void add_ramp_source(CPLXMLNode *band, const char *path, int column_ramp, int width,
                            int height)
{
    char buf[32];
    CPLXMLNode *src = CPLCreateXMLNode(band, CXT_Element, "SimpleSource");
    CPLAddXMLAttributeAndValue(src, "resampling", "nearest");
    CPLXMLNode *fn = CPLCreateXMLElementAndValue(src, "SourceFilename", path);
    CPLAddXMLAttributeAndValue(fn, "relativeToVRT", "0");
    CPLCreateXMLElementAndValue(src, "SourceBand", "1");
    /* Declared properties let GDAL defer opening the ramp until a read, so a VRT opened without
     * the plugin fails with "pixel function 'decloud' not registered", not a /vsimem error. */
    CPLXMLNode *props = CPLCreateXMLNode(src, CXT_Element, "SourceProperties");
    snprintf(buf, sizeof buf, "%d", column_ramp ? DC_VRT_RAMP_LENGTH : 1);
    CPLAddXMLAttributeAndValue(props, "RasterXSize", buf);
    snprintf(buf, sizeof buf, "%d", column_ramp ? 1 : DC_VRT_RAMP_LENGTH);
    CPLAddXMLAttributeAndValue(props, "RasterYSize", buf);
    CPLAddXMLAttributeAndValue(props, "DataType", "Int32");
    snprintf(buf, sizeof buf, "%d", column_ramp ? DC_VRT_RAMP_LENGTH : 1);
    CPLAddXMLAttributeAndValue(props, "BlockXSize", buf);
    CPLAddXMLAttributeAndValue(props, "BlockYSize", "1");
    CPLXMLNode *rect = CPLCreateXMLNode(src, CXT_Element, "SrcRect");
    CPLAddXMLAttributeAndValue(rect, "xOff", "0");
    CPLAddXMLAttributeAndValue(rect, "yOff", "0");
    snprintf(buf, sizeof buf, "%d", column_ramp ? width : 1);
    CPLAddXMLAttributeAndValue(rect, "xSize", buf);
    snprintf(buf, sizeof buf, "%d", column_ramp ? 1 : height);
    CPLAddXMLAttributeAndValue(rect, "ySize", buf);
    rect = CPLCreateXMLNode(src, CXT_Element, "DstRect");
    CPLAddXMLAttributeAndValue(rect, "xOff", "0");
    CPLAddXMLAttributeAndValue(rect, "yOff", "0");
    snprintf(buf, sizeof buf, "%d", width);
    CPLAddXMLAttributeAndValue(rect, "xSize", buf);
    snprintf(buf, sizeof buf, "%d", height);
    CPLAddXMLAttributeAndValue(rect, "ySize", buf);
}

/* The dataset part, through GDAL's VRT driver: grid, CRS, bands, nodata, descriptions. */
static int build_dataset(GDALDatasetH *out, const dc_decloud_setup *s, const dc_tile_model *m,
                         const dc_decloud_options *o, dc_error *err)
{
    GDALDriverH vrt = GDALGetDriverByName("VRT");
    if (!vrt)
        return dc_fail(err, DC_ERR_UNSUPPORTED, "GDAL has no VRT driver");
    CPLErrorReset();
    GDALDatasetH ds = GDALCreate(vrt, "", s->grid.width, s->grid.height, 0, s->in.type, NULL);
    if (!ds)
        return dc_gdal_fail(err, DC_ERR_IO, "cannot create a VRT");
    GDALSetGeoTransform(ds, (double *)s->grid.gt);
    if (s->grid.wkt[0])
        GDALSetProjection(ds, s->grid.wkt);
    static const char *const band_options[] = {"subClass=VRTDerivedRasterBand",
                                               "PixelFunctionType=decloud",
                                               "SourceTransferType=Float32", NULL};
    for (int b = 0; b < s->in.nbands; b++) {
        if (GDALAddBand(ds, s->in.type, (char **)band_options) != CE_None) {
            GDALClose(ds);
            return dc_gdal_fail(err, DC_ERR_IO, "cannot add a derived band to the VRT");
        }
        if (s->has_nodata)
            GDALSetRasterNoDataValue(GDALGetRasterBand(ds, b + 1), s->nodata);
    }
    dc_decloud_describe_output(ds, &s->in, m, o);
    *out = ds;
    return DC_OK;
}

static int write_xml(const dc_decloud_setup *s, GDALDatasetH ds, const dc_decloud_options *o,
                     const char *vrt_path, dc_error *err)
{
    char **xml = GDALGetMetadata(ds, "xml:VRT");
    CPLXMLNode *root = xml && xml[0] ? CPLParseXMLString(xml[0]) : NULL;
    if (!root)
        return dc_gdal_fail(err, DC_ERR_FORMAT, "cannot serialise the VRT");
    int rc = DC_OK;
    char buf[32];
    const int W = s->grid.width, H = s->grid.height;
    for (CPLXMLNode *band = root->psChild; band && rc == DC_OK; band = band->psNext) {
        if (band->eType != CXT_Element || strcmp(band->pszValue, "VRTRasterBand") != 0)
            continue;
        /* Moderate blocks: every call allocates the ramp buffers of the request, and GDAL's
         * swaths follow the block height. */
        if (W >= 32) {
            snprintf(buf, sizeof buf, "%d", W < VRT_BLOCK ? W : VRT_BLOCK);
            CPLAddXMLAttributeAndValue(band, "blockXSize", buf);
        }
        if (H >= 32) {
            snprintf(buf, sizeof buf, "%d", H < VRT_BLOCK ? H : VRT_BLOCK);
            CPLAddXMLAttributeAndValue(band, "blockYSize", buf);
        }
        CPLXMLNode *args = CPLCreateXMLNode(band, CXT_Element, "PixelFunctionArguments");
        CPLAddXMLAttributeAndValue(args, "band", CPLGetXMLValue(band, "band", "1"));
        rc = shared_arguments(args, o, s, err);
        add_ramp_source(band, DC_VRT_XRAMP_PATH, 1, W, H);
        add_ramp_source(band, DC_VRT_YRAMP_PATH, 0, W, H);
    }
    if (rc == DC_OK) {
        /* A note for whoever opens the file, first thing inside the root element. (XML
         * comments may not contain "--", hence no option name.) */
        CPLXMLNode *note = CPLCreateXMLNode(NULL, CXT_Comment,
            " Written by diffcr-decloud (VRT output). The bands are computed by the `decloud` pixel "
            "function of gdal_decloud.so: put its folder in GDAL_DRIVER_PATH. Sources 0 and 1 "
            "are coordinate ramps telling the function where a request lies. ");
        /* ...after the attributes, which the serialiser expects first. */
        CPLXMLNode **at = &root->psChild;
        while (*at && (*at)->eType == CXT_Attribute)
            at = &(*at)->psNext;
        note->psNext = *at;
        *at = note;
        CPLErrorReset();
        if (!CPLSerializeXMLTreeToFile(root, vrt_path)) {
            rc = dc_gdal_fail(err, DC_ERR_IO, "%s: cannot write the VRT", vrt_path);
            VSIUnlink(vrt_path);
        }
    }
    CPLDestroyXMLNode(root);
    return rc;
}

int dc_decloud_write_vrt(const dc_decloud_options *o, const char *vrt_path, dc_error *err)
{
    if (o->in_place || o->uncertainty)
        return dc_fail(err, DC_ERR_ARG, "--vrt cannot be combined with --in-place or --uncertainty");
    dc_tile_model *model = NULL;
    dc_decloud_setup setup;
    memset(&setup, 0, sizeof setup);
    int have_setup = 0;
    GDALDatasetH ds = NULL;
    int rc = dc_decloud_open_model(&model, o, err);
    if (rc == DC_OK) {
        rc = dc_decloud_setup_open(&setup, o, model, err);
        have_setup = rc == DC_OK;
    }
    if (rc == DC_OK && (setup.grid.width > DC_VRT_RAMP_LENGTH ||
                        setup.grid.height > DC_VRT_RAMP_LENGTH))
        rc = dc_fail(err, DC_ERR_UNSUPPORTED, "a %dx%d raster is too large for the VRT's ramps "
                     "(at most %d pixels a side)", setup.grid.width, setup.grid.height,
                     DC_VRT_RAMP_LENGTH);
    if (rc == DC_OK)
        rc = build_dataset(&ds, &setup, model, o, err);
    if (rc == DC_OK)
        rc = write_xml(&setup, ds, o, vrt_path, err);
    if (ds)
        GDALClose(ds);
    if (have_setup)
        dc_decloud_setup_close(&setup);
    dc_tile_model_destroy(model);
    return rc;
}
