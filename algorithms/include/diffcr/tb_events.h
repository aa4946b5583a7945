/* diffcr — TensorBoard event files (scalars), written by hand: no protobuf or TensorFlow library.
 *
 * File: events.out.tfevents.<time>.<host> holding TFRecords: uint64 length (little-endian),
 * uint32 masked CRC32C of those 8 bytes, the Event protobuf bytes, uint32 masked CRC32C of them.
 * Event (tensorflow/core/util/event.proto): wall_time double = 1, step int64 = 2,
 * file_version string = 3 ("brain.Event:2", first record), summary Summary = 5;
 * Summary.value repeated Value = 1; Value.tag string = 1, Value.simple_value float = 2. */
#ifndef DIFFCR_TB_EVENTS_H
#define DIFFCR_TB_EVENTS_H

#include <stddef.h>
#include <stdint.h>

#include "diffcr/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Protobuf encoding into buf (room for cap bytes); each returns bytes written, 0 if no room. */
size_t dc_pb_varint(uint8_t *buf, size_t cap, uint64_t v);
/* An Event with a file_version, or with one scalar (tag, value) when version is NULL. */
size_t dc_tb_encode_event(uint8_t *buf, size_t cap, double wall_time, int64_t step,
                          const char *version, const char *tag, float value);
/* A whole TFRecord around payload[0..n): returns bytes written (n + 16) or 0 if no room. */
size_t dc_tb_record(uint8_t *buf, size_t cap, const uint8_t *payload, size_t n);

typedef struct dc_tb_writer dc_tb_writer;

/* Create <dir>/events.out.tfevents.<secs>.<host> (dir must exist) and write the version record. */
int dc_tb_open(dc_tb_writer **out, const char *dir, dc_error *err);
int dc_tb_scalar(dc_tb_writer *w, const char *tag, int64_t step, double value, dc_error *err);
const char *dc_tb_path(const dc_tb_writer *w);
void dc_tb_close(dc_tb_writer *w);

#ifdef __cplusplus
}
#endif
#endif
