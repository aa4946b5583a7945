/* diffcr — CRC-32C (Castagnoli), the checksum of TFRecord files (TensorBoard event logs).
 *
 * Table-driven, reflected polynomial 0x82F63B78; a few kilobytes of log a minute do not need the
 * SSE4.2 instruction. crc32c("123456789") = 0xE3069283. */
#include <stddef.h>
#include <stdint.h>

#include "diffcr/train.h"

static uint32_t table[256];
static int table_ready;

static void build_table(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        table[i] = c;
    }
    table_ready = 1;
}

uint32_t dc_crc32c(uint32_t crc, const void *data, size_t n)
{
    /* Building twice from two threads writes the same values: harmless. */
    if (!table_ready)
        build_table();
    const unsigned char *p = data;
    crc = ~crc;
    for (size_t i = 0; i < n; i++)
        crc = table[(crc ^ p[i]) & 0xFF] ^ (crc >> 8);
    return ~crc;
}

uint32_t dc_crc32c_masked(const void *data, size_t n)
{
    uint32_t c = dc_crc32c(0, data, n);
    return ((c >> 15) | (c << 17)) + 0xa282ead8u;
}
