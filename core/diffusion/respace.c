/* diffcr — timestep respacing for DDIM and DDPM (improved-diffusion's space_timesteps).
 *
 * "a,b,c" splits the N steps into len equal sections (the first N % len one longer) and takes
 * a, b, c evenly spaced steps from them: start + round(i * (size-1)/(count-1)), with Python's
 * round (half to even: rint in the default rounding mode). "ddimN" takes the smallest integer
 * stride whose range(0, N, stride) has exactly N values, as in the DDIM paper. The samplers then
 * chain the kept steps, recomputing the step betas from alpha-bar (SpacedDiffusion). */
#include "diffcr/sampler.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* Parse a decimal integer >= 0 ending at a ',' or the end; advances *s. */
static int parse_count(const char **s, long *out)
{
    const char *p = *s;
    if (*p < '0' || *p > '9')
        return 0;
    errno = 0;
    char *end;
    long v = strtol(p, &end, 10);
    if (errno || v > 1000000000L)
        return 0;
    if (*end != '\0' && *end != ',')
        return 0;
    *out = v;
    *s = end;
    return 1;
}

int dc_space_timesteps(int num_timesteps, const char *section_counts, int *steps_out,
                       int max_steps, int *count, dc_error *err)
{
    if (!section_counts || !steps_out || !count)
        return dc_fail(err, DC_ERR_ARG, "respacing: NULL argument");
    if (num_timesteps < 1)
        return dc_fail(err, DC_ERR_ARG, "respacing: %d timesteps", num_timesteps);
    int got = 0;
    if (strncmp(section_counts, "ddim", 4) == 0) {
        const char *p = section_counts + 4;
        long desired;
        if (!parse_count(&p, &desired) || *p != '\0')
            return dc_fail(err, DC_ERR_ARG, "respacing: bad '%s' (want ddimN)", section_counts);
        for (int stride = 1; stride < num_timesteps; stride++) {
            long len = (num_timesteps + stride - 1) / stride; /* len(range(0, N, stride)) */
            if (len == desired) {
                if (len > max_steps)
                    return dc_fail(err, DC_ERR_ARG, "respacing: %ld steps exceed room for %d", len, max_steps);
                for (int i = 0; i < len; i++)
                    steps_out[got++] = i * stride;
                *count = got;
                return DC_OK;
            }
        }
        return dc_fail(err, DC_ERR_ARG, "respacing: cannot create exactly %ld steps from %d with an "
                       "integer stride", desired, num_timesteps);
    }
    /* Count the sections first. */
    int sections = 1;
    for (const char *p = section_counts; *p; p++)
        if (*p == ',')
            sections++;
    int size_per = num_timesteps / sections, extra = num_timesteps % sections;
    int start = 0;
    const char *p = section_counts;
    for (int i = 0; i < sections; i++) {
        long want;
        if (!parse_count(&p, &want))
            return dc_fail(err, DC_ERR_ARG, "respacing: bad section counts '%s'", section_counts);
        if (*p == ',')
            p++;
        int size = size_per + (i < extra ? 1 : 0);
        if (size < want)
            return dc_fail(err, DC_ERR_ARG, "respacing: cannot divide section of %d steps into %ld",
                           size, want);
        double stride = want <= 1 ? 1.0 : (double)(size - 1) / (double)(want - 1);
        double cur = 0.0;
        for (long j = 0; j < want; j++) {
            if (got >= max_steps)
                return dc_fail(err, DC_ERR_ARG, "respacing: more than %d steps", max_steps);
            steps_out[got++] = start + (int)rint(cur);
            cur += stride;
        }
        start += size;
    }
    /* Python returns a set: sort and drop duplicates. */
    qsort(steps_out, (size_t)got, sizeof *steps_out, cmp_int);
    int u = 0;
    for (int i = 0; i < got; i++)
        if (u == 0 || steps_out[i] != steps_out[u - 1])
            steps_out[u++] = steps_out[i];
    if (u == 0)
        return dc_fail(err, DC_ERR_ARG, "respacing: '%s' keeps no steps", section_counts);
    *count = u;
    return DC_OK;
}
