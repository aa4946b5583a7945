/* diffcr — `--in-place FILE`: replace FILE with the result so that a kill at any moment leaves
 * it either untouched or fully processed, and let a rerun continue an interrupted run.
 *
 * The result is written to FILE.diffcr-tmp (a GTiff in the same folder) and renamed over FILE
 * at the end (atomic on POSIX file systems). After each flushed strip the temporary records
 * DIFFCR_DONE_ROWS (rows complete on disk) and DIFFCR_RUN_KEY (a hash of the arguments). A rerun
 * with the same arguments reopens it and computes only the rows after DIFFCR_DONE_ROWS; since
 * tiles sit on a grid fixed in raster space the result is the same as one uninterrupted run.
 * A leftover from other arguments, or one a kill left unreadable, is deleted and redone. */
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cpl_conv.h>
#include <cpl_error.h>

#include "decloud_internal.h"

int dc_in_place_check_target(const char *path, dc_error *err)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return dc_fail(err, DC_ERR_IO, "--in-place %s: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return dc_fail(err, DC_ERR_ARG, "--in-place %s: not a regular file", path);
    if (!(st.st_mode & (S_IWUSR | S_IWGRP | S_IWOTH)) || access(path, W_OK) != 0)
        return dc_fail(err, DC_ERR_IO, "--in-place %s: the file is read-only", path);
    char *copy = strdup(path);
    if (!copy)
        return dc_fail(err, DC_ERR_NOMEM, "out of memory");
    const char *dir = dirname(copy);
    struct stat dst;
    int ok = stat(dir, &dst) == 0 && (dst.st_mode & (S_IWUSR | S_IWGRP | S_IWOTH)) &&
             access(dir, W_OK) == 0;
    int rc = ok ? DC_OK
                : dc_fail(err, DC_ERR_IO, "--in-place %s: folder %s is read-only (the update "
                          "needs a temporary file beside it)", path, dir);
    free(copy);
    return rc;
}

int dc_in_place_resume_rows(const char *tmp_path, const char *run_key, int width, int height,
                            int nbands, char *notice, size_t notice_len)
{
    notice[0] = '\0';
    struct stat st;
    if (stat(tmp_path, &st) != 0)
        return 0;
    CPLPushErrorHandler(CPLQuietErrorHandler);
    GDALDatasetH ds = GDALOpenEx(tmp_path, GDAL_OF_RASTER | GDAL_OF_READONLY, NULL, NULL, NULL);
    int done = 0;
    if (ds) {
        const char *key = GDALGetMetadataItem(ds, "DIFFCR_RUN_KEY", NULL);
        const char *rows = GDALGetMetadataItem(ds, "DIFFCR_DONE_ROWS", NULL);
        if (key && rows && run_key && strcmp(key, run_key) == 0 &&
            GDALGetRasterXSize(ds) == width && GDALGetRasterYSize(ds) == height &&
            GDALGetRasterCount(ds) == nbands) {
            done = atoi(rows);
            if (done < 0 || done > height)
                done = 0;
        }
        GDALClose(ds);
    }
    CPLPopErrorHandler();
    CPLErrorReset();
    if (done > 0) {
        snprintf(notice, notice_len, "resuming the interrupted update from row %d of %d (%s)",
                 done, height, tmp_path);
    } else {
        unlink(tmp_path);
        snprintf(notice, notice_len, "removed a stale leftover %s", tmp_path);
    }
    return done;
}

int dc_in_place_mark_done(dc_raster_writer *w, const char *run_key, int done_rows,
                          dc_error *err)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%d", done_rows);
    CPLErrorReset();
    if (GDALSetMetadataItem(w->ds, "DIFFCR_RUN_KEY", run_key ? run_key : "", NULL) != CE_None ||
        GDALSetMetadataItem(w->ds, "DIFFCR_DONE_ROWS", buf, NULL) != CE_None)
        return dc_gdal_fail(err, DC_ERR_IO, "%s: cannot record progress", w->tmp_path);
    /* Pixels first, then the directory with the new count: GTiff's flush writes dirty blocks
     * before rewriting the directory, so the count never runs ahead of the data. */
    GDALFlushCache(w->ds);
    if (CPLGetLastErrorType() == CE_Failure)
        return dc_gdal_fail(err, DC_ERR_IO, "%s: write failed (disk full?)", w->final_path);
    return DC_OK;
}

int dc_in_place_clear_marks(dc_raster_writer *w)
{
    /* Setting an item to NULL removes it, so the final file carries no resume state. */
    GDALSetMetadataItem(w->ds, "DIFFCR_RUN_KEY", NULL, NULL);
    GDALSetMetadataItem(w->ds, "DIFFCR_DONE_ROWS", NULL, NULL);
    return DC_OK;
}
