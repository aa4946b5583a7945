/* diffcr — strict number parsing for the command-line programs: the whole string must be a number
 * (no trailing text), integers must fit an int, doubles must be finite. */
#ifndef DIFFCR_CLI_PARSE_H
#define DIFFCR_CLI_PARSE_H

int dc_parse_int(const char *s, int *out);
int dc_parse_double(const char *s, double *out);

#endif
