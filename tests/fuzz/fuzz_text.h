/* diffcr fuzz harnesses — the fuzzer's bytes as a C string (cut at the first NUL, as a C string
 * would be), for the parsers that read text. Free it with free(); NULL when out of memory. */
#ifndef DIFFCR_FUZZ_TEXT_H
#define DIFFCR_FUZZ_TEXT_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static inline char *fuzz_text(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (text) {
        memcpy(text, data, size);
        text[size] = '\0';
    }
    return text;
}

#endif
