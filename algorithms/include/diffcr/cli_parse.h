/* diffcr — strict number parsing for the command-line programs: the whole string must be a number
 * (no trailing text), integers must fit an int, doubles must be finite. */
#ifndef DIFFCR_CLI_PARSE_H
#define DIFFCR_CLI_PARSE_H

int dc_parse_int(const char *s, int *out);
int dc_parse_double(const char *s, double *out);

/* A comma-separated list of 1..max integers ("4,3,2") into out; returns how many, 0 when the list is
 * empty, too long or has a non-integer. */
int dc_parse_int_list(const char *s, int *out, int max);

/* SIGINT and SIGTERM call `on_stop` (which should only set a flag: the programs finish the current
 * step and clean up), and a file-size limit fails the write (EFBIG) instead of killing the process
 * with a partial file. */
void dc_cli_catch_stop_signals(void (*on_stop)(int));

#endif
