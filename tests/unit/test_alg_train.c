/* diffcr unit tests — the pure pieces of diffcr-train: CRC-32C and TFRecord framing, protobuf
 * encoding of TensorBoard events, augmentation maps (permutations, identical for every date),
 * deterministic shuffles, the learning-rate schedule, the progress line, the config's unknown-key
 * check; a training step skipped when its loss or gradient is not finite. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diffcr/dataset.h"
#include "diffcr/tb_events.h"
#include "diffcr/train.h"
#include "testutil.h"

START_TEST(test_crc32c_known_values)
{
    ck_assert_uint_eq(dc_crc32c(0, "123456789", 9), 0xE3069283u);
    ck_assert_uint_eq(dc_crc32c(0, "", 0), 0u);
    uint8_t zeros[32] = {0};
    ck_assert_uint_eq(dc_crc32c(0, zeros, 32), 0x8A9136AAu);   /* RFC 3720 B.4 */
    /* incremental == one shot */
    ck_assert_uint_eq(dc_crc32c(dc_crc32c(0, "12345", 5), "6789", 4), 0xE3069283u);
    uint32_t c = 0xE3069283u;
    ck_assert_uint_eq(dc_crc32c_masked("123456789", 9), ((c >> 15) | (c << 17)) + 0xa282ead8u);
}
END_TEST

START_TEST(test_protobuf_varint)
{
    uint8_t b[16];
    ck_assert_uint_eq(dc_pb_varint(b, sizeof b, 0), 1);
    ck_assert_uint_eq(b[0], 0);
    ck_assert_uint_eq(dc_pb_varint(b, sizeof b, 300), 2);   /* protobuf docs: 300 = AC 02 */
    ck_assert_uint_eq(b[0], 0xAC);
    ck_assert_uint_eq(b[1], 0x02);
    ck_assert_uint_eq(dc_pb_varint(b, sizeof b, UINT64_MAX), 10);
    ck_assert_uint_eq(b[9], 0x01);
    ck_assert_uint_eq(dc_pb_varint(b, 1, 300), 0);   /* no room */
}
END_TEST

START_TEST(test_event_encoding)
{
    uint8_t ev[256];
    /* file_version record: 09 <double 8 bytes> 1A 0D "brain.Event:2" (step 0 not written) */
    size_t n = dc_tb_encode_event(ev, sizeof ev, 1.5, 0, "brain.Event:2", NULL, 0);
    ck_assert_uint_eq(n, 9 + 2 + 13);
    ck_assert_uint_eq(ev[0], 0x09);
    double wt;
    memcpy(&wt, ev + 1, 8);
    ck_assert(wt == 1.5);
    ck_assert_uint_eq(ev[9], 0x1A);
    ck_assert_uint_eq(ev[10], 13);
    ck_assert(!memcmp(ev + 11, "brain.Event:2", 13));
    /* scalar: 09 <8> 10 07 2A 0F 0A 0D 0A 04 "loss" 15 <float 4> */
    n = dc_tb_encode_event(ev, sizeof ev, 2.0, 7, NULL, "loss", 0.25f);
    static const uint8_t want[] = {0x10, 0x07, 0x2A, 0x0D, 0x0A, 0x0B, 0x0A, 0x04, 'l', 'o', 's', 's', 0x15};
    ck_assert_uint_eq(n, 9 + sizeof want + 4);
    ck_assert(!memcmp(ev + 9, want, sizeof want));
    float f;
    memcpy(&f, ev + 9 + sizeof want, 4);
    ck_assert(f == 0.25f);
    /* TFRecord framing */
    uint8_t rec[300];
    size_t rn = dc_tb_record(rec, sizeof rec, ev, n);
    ck_assert_uint_eq(rn, n + 16);
    ck_assert_uint_eq(rec[0], n);
    uint32_t lc, dcrc;
    memcpy(&lc, rec + 8, 4);
    memcpy(&dcrc, rec + 12 + n, 4);
    ck_assert_uint_eq(lc, dc_crc32c_masked(rec, 8));
    ck_assert_uint_eq(dcrc, dc_crc32c_masked(ev, n));
}
END_TEST

START_TEST(test_augment_is_permutation_same_for_all_dates)
{
    const int n = 8, dates = 3, c = 2;
    for (int flip = 0; flip < 3; flip++)
        for (int k = 0; k < 4; k++) {
            dc_augment a = {flip, k};
            float img[8 * 8 * 6], scratch[8 * 8 * 6];
            for (int p = 0; p < n * n; p++)
                for (int ch = 0; ch < dates * c; ch++)
                    img[p * dates * c + ch] = (float)(p * 100 + ch);
            dc_augment_apply(img, n, dates * c, a, scratch);
            int seen[64] = {0};
            for (int p = 0; p < n * n; p++) {
                int src = (int)img[p * dates * c] / 100;
                ck_assert_int_ge(src, 0);
                ck_assert_int_lt(src, n * n);
                seen[src]++;
                /* every date and channel of the pixel moved together */
                for (int ch = 0; ch < dates * c; ch++)
                    ck_assert(img[p * dates * c + ch] == (float)(src * 100 + ch));
                int sy, sx;
                dc_augment_source(n, a, p / n, p % n, &sy, &sx);
                ck_assert_int_eq(src, sy * n + sx);
            }
            for (int p = 0; p < n * n; p++)
                ck_assert_int_eq(seen[p], 1);
        }
    /* rot90 k=1 is numpy.rot90: out[0][0] = in[0][n-1] */
    int sy, sx;
    dc_augment_source(4, (dc_augment){0, 1}, 0, 0, &sy, &sx);
    ck_assert_int_eq(sy, 0);
    ck_assert_int_eq(sx, 3);
    /* flip 1 reverses rows */
    dc_augment_source(4, (dc_augment){1, 0}, 0, 2, &sy, &sx);
    ck_assert_int_eq(sy, 3);
    ck_assert_int_eq(sx, 2);
}
END_TEST

START_TEST(test_augment_draw_and_permutation_deterministic)
{
    int hist[3][4] = {{0}};
    for (int i = 0; i < 1200; i++) {
        dc_augment a = dc_augment_draw(5, 2, i), b = dc_augment_draw(5, 2, i);
        ck_assert_int_eq(a.flip, b.flip);
        ck_assert_int_eq(a.rot90, b.rot90);
        ck_assert(a.flip >= 0 && a.flip < 3 && a.rot90 >= 0 && a.rot90 < 4);
        hist[a.flip][a.rot90]++;
    }
    for (int f = 0; f < 3; f++)
        for (int k = 0; k < 4; k++)
            ck_assert_int_gt(hist[f][k], 50);   /* all 12 transforms occur (~100 each) */
    int p1[100], p2[100], p3[100];
    dc_dataset_permutation(p1, 100, 9, 0);
    dc_dataset_permutation(p2, 100, 9, 0);
    dc_dataset_permutation(p3, 100, 9, 1);
    int seen[100] = {0}, same = 1, differ = 0;
    for (int i = 0; i < 100; i++) {
        seen[p1[i]]++;
        same &= p1[i] == p2[i];
        differ |= p1[i] != p3[i];
    }
    for (int i = 0; i < 100; i++)
        ck_assert_int_eq(seen[i], 1);
    ck_assert(same);
    ck_assert(differ);
}
END_TEST

START_TEST(test_lr_schedule)
{
    dc_train_config c;
    memset(&c, 0, sizeof c);
    c.adam.lr = 1e-3;
    ck_assert(dc_train_lr(&c, 1, 100) == 1e-3);   /* DiffCR: constant */
    c.warmup_iter = 10;
    ck_assert(fabs(dc_train_lr(&c, 1, 100) - 1e-4) < 1e-15);
    ck_assert(fabs(dc_train_lr(&c, 10, 100) - 1e-3) < 1e-15);
    ck_assert(dc_train_lr(&c, 50, 100) == 1e-3);
    c.cosine = 1;
    c.min_lr = 1e-5;
    ck_assert(fabs(dc_train_lr(&c, 10, 110) - 1e-3) < 1e-15);
    ck_assert(fabs(dc_train_lr(&c, 60, 110) - (1e-5 + (1e-3 - 1e-5) * 0.5)) < 1e-12);
    ck_assert(fabs(dc_train_lr(&c, 110, 110) - 1e-5) < 1e-15);
    ck_assert(fabs(dc_train_lr(&c, 500, 110) - 1e-5) < 1e-15);   /* held at the floor */
    c.lr_decay_iter = 210;                                         /* explicit length wins */
    ck_assert(fabs(dc_train_lr(&c, 110, 110) - (1e-5 + (1e-3 - 1e-5) * 0.5)) < 1e-12);
    /* monotone decreasing after warm-up */
    for (long long s = 11; s < 210; s++)
        ck_assert(dc_train_lr(&c, s + 1, 0) <= dc_train_lr(&c, s, 0));
}
END_TEST

START_TEST(test_progress_line)
{
    char line[256];
    dc_progress_format(line, sizeof line, 50, 100, 0.125, 4.0, 12.5);
    ck_assert_str_eq(line, "[############............] it 50/100 loss 0.12500 4.00 it/s ETA 0:13");
    dc_progress_format(line, sizeof line, 0, 10, 1.0, 0.0, -1);
    ck_assert(strstr(line, "ETA --:--") != NULL);
}
END_TEST

static void count_warn(const char *msg, void *arg)
{
    (void)msg;
    (*(int *)arg)++;
}

START_TEST(test_config_unknown_keys_and_defaults)
{
    const char *text =
        "// comment\n{\"seed\": 3, \"datasets\": {\"train\": {\"which_dataset\": {\"name\": \"csv\", \"args\": {\"csv\": \"x\", \"anything\": 1}}}},\n"
        " \"model\": {\"which_model\": {\"args\": {\"optimizers\": [{\"lr\": 1e-4, \"type\": \"adamw\", \"weight_decay\": 0.01}]}},\n"
        "  \"which_networks\": [{\"args\": {\"unet\": {\"img_channel\": 3, \"width\": 8, \"middle_blk_num\": 1,"
        " \"enc_blk_nums\": [1, 1], \"dec_blk_nums\": [1, 1]},\n"
        "  \"beta_schedule\": {\"train\": {\"schedule\": \"sigmoid\", \"n_timestep\": 2000}, \"test\": {\"schedule\": \"linear\", \"n_timestep\": 100, \"typo\": 1}}}}]},\n"
        " \"train\": {\"n_iters\": 5, \"n_iter\": 7}, \"extra\": {\"x\": 1}}";
    dc_train_config c;
    dc_error err;
    int warnings = 0;
    ck_assert_msg(dc_train_config_parse(&c, text, ".", count_warn, &warnings, &err) == DC_OK, "%s", err.msg);
    ck_assert_int_eq(warnings, 3);   /* beta_schedule.test.typo, train.n_iters, extra */
    ck_assert_int_eq(c.n_iter, 7);
    ck_assert_int_eq(c.seed, 3);
    ck_assert(c.adam.decoupled == 1 && c.adam.lr == 1e-4 && c.adam.weight_decay == 0.01);
    ck_assert(c.ema_decay == 0.9999 && c.target == DC_TARGET_X0 && c.time_input == DC_TIME_INPUT_GAMMA);
    ck_assert_int_eq(c.batch, 8);
    ck_assert_int_eq(c.test_schedule.n, 100);
    dc_train_config_free(&c);
    ck_assert(dc_train_config_parse(&c, "{\"model\": {}}", ".", NULL, NULL, &err) != DC_OK);
}
END_TEST

/* Counts, iteration numbers and seeds are whole numbers within what their C fields hold: a value
 * that would be cast out of range (undefined, in practice INT_MIN or a clock seed) or rounded
 * (16.5 -> 16) is refused with an error naming the key. Found by tests/fuzz/fuzz_config.c. */
static int config_error(const char *model_args, const char *top, char *msg, size_t cap)
{
    char text[1024];
    snprintf(text, sizeof text,
             "{\"model\": {\"which_model\": {\"args\": {%s}}, \"which_networks\": [{\"args\": {\"unet\":"
             " {\"img_channel\": 3, \"width\": 4, \"middle_blk_num\": 1, \"enc_blk_nums\": [1], \"dec_blk_nums\": [1]},"
             " \"beta_schedule\": {\"train\": {\"schedule\": \"sigmoid\", \"n_timestep\": 2000},"
             " \"test\": {\"schedule\": \"sigmoid\", \"n_timestep\": 1000}}}}]}%s}",
             model_args, top);
    dc_train_config c;
    dc_error err;
    int rc = dc_train_config_parse(&c, text, ".", NULL, NULL, &err);
    if (rc == DC_OK) {
        snprintf(msg, cap, "seed=%lld ema_start=%d ema_iter=%d tile=%d", c.seed, c.ema_start, c.ema_iter, c.tile);
        dc_train_config_free(&c);
    } else {
        snprintf(msg, cap, "%s", err.msg);
    }
    return rc;
}

START_TEST(test_config_integer_fields_are_exact)
{
    char msg[512];
    static const struct { const char *model_args, *top, *key; } bad[] = {
        {"", ", \"seed\": 1e19", "seed"},
        {"", ", \"train\": {\"seed\": 9.3e18}", "train.seed"},
        {"", ", \"train\": {\"tile\": 16.5}", "train.tile"},
        {"", ", \"train\": {\"n_iter\": 2.5}", "train.n_iter"},
        {"", ", \"datasets\": {\"train\": {\"dataloader\": {\"args\": {\"batch_size\": 1.5}}}}", "batch_size"},
        {"\"ema_scheduler\": {\"ema_start\": 3e9}", "", "ema_start"},
        {"\"ema_scheduler\": {\"ema_iter\": 1e15}", "", "ema_iter"},
        {"\"optimizers\": [{\"betas\": [0.9, 1.0]}]", "", "betas"},
        {"\"optimizers\": [{\"betas\": [-0.1, 0.99]}]", "", "betas"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = config_error(bad[i].model_args, bad[i].top, msg, sizeof msg);
        ck_assert_msg(rc == DC_ERR_ARG, "%s accepted: %s", bad[i].key, msg);
        ck_assert_msg(strstr(msg, bad[i].key) != NULL, "error does not name %s: %s", bad[i].key, msg);
    }
    /* The largest accepted values arrive exactly. */
    ck_assert_msg(config_error("", ", \"seed\": 9007199254740992, \"train\": {\"tile\": 32}", msg, sizeof msg) == DC_OK, "%s", msg);
    ck_assert_str_eq(msg, "seed=9007199254740992 ema_start=1 ema_iter=1 tile=32");
    ck_assert_msg(config_error("\"ema_scheduler\": {\"ema_start\": 2147483647, \"ema_iter\": 2147483647}", "", msg, sizeof msg) == DC_OK, "%s", msg);
    ck_assert_str_eq(msg, "seed=-1 ema_start=2147483647 ema_iter=2147483647 tile=0");
}
END_TEST

/* A step with a NaN in its input is skipped: weights, Adam moments, Adam's step count and the EMA
 * keep their exact bits (an update would have made them NaN); the next finite step updates. */
START_TEST(test_nonfinite_step_is_skipped)
{
    const char *text =
        "{\"model\": {\"which_model\": {\"args\": {\"ema_scheduler\": {\"ema_start\": 1, \"ema_iter\": 1}}},"
        " \"which_networks\": [{\"args\": {\"unet\": {\"img_channel\": 3, \"width\": 4, \"middle_blk_num\": 1,"
        " \"enc_blk_nums\": [1], \"dec_blk_nums\": [1]}, \"beta_schedule\": {\"train\": {\"schedule\": \"sigmoid\","
        " \"n_timestep\": 2000}, \"test\": {\"schedule\": \"sigmoid\", \"n_timestep\": 1000}}}}]}}";
    dc_train_config c;
    dc_error err;
    ck_assert_msg(dc_train_config_parse(&c, text, ".", NULL, NULL, &err) == DC_OK, "%s", err.msg);
    dc_backend *be;
    ck_assert_int_eq(dc_backend_create(&be, "ref", 1, &err), DC_OK);
    enum { B = 2, T = 8 };
    dc_trainer *tr;
    ck_assert_msg(dc_trainer_create(&tr, &c, be, B, T, 7, &err) == DC_OK, "%s", err.msg);
    size_t n = dc_trainer_table(tr)->total;
    size_t nx = (size_t)B * T * T * 3, ncond = nx * c.unet.ndates;
    float *cond = tu_alloc_floats(ncond), *x0 = tu_alloc_floats(nx);
    tu_fill_uniform(cond, ncond, 1, 1.0f);
    tu_fill_uniform(x0, nx, 2, 1.0f);
    float *before[4], *now[4] = {dc_trainer_params(tr), dc_trainer_adam_m(tr), dc_trainer_adam_v(tr),
                                 dc_trainer_ema(tr)};
    for (int k = 0; k < 4; k++) {
        before[k] = tu_alloc_floats(n);
        memcpy(before[k], now[k], n * sizeof(float));
    }
    const float bad[2] = {NAN, INFINITY};
    for (int b = 0; b < 2; b++) {
        float *in = b == 0 ? cond : x0;   /* a NaN in the condition, an inf in the target */
        float keep = in[17];
        in[17] = bad[b];
        dc_step_result res;
        ck_assert_msg(dc_trainer_step(tr, cond, x0, b, 1e-3, &res, &err) == DC_OK, "%s", err.msg);
        in[17] = keep;
        ck_assert_int_eq(res.skipped, 1);
        ck_assert(!isfinite(res.loss) || !isfinite(res.grad_norm));
        ck_assert_int_eq(dc_trainer_adam_step(tr), 0);
        ck_assert_int_eq(dc_trainer_pull(tr, &err), DC_OK);
        for (int k = 0; k < 4; k++)
            ck_assert_msg(memcmp(before[k], now[k], n * sizeof(float)) == 0, "state %d changed by a skipped step", k);
    }
    dc_step_result res;
    ck_assert_int_eq(dc_trainer_step(tr, cond, x0, 2, 1e-3, &res, &err), DC_OK);
    ck_assert_int_eq(res.skipped, 0);
    ck_assert(isfinite(res.loss) && isfinite(res.grad_norm) && res.grad_norm > 0);
    ck_assert_int_eq(dc_trainer_adam_step(tr), 1);
    ck_assert(memcmp(before[0], now[0], n * sizeof(float)) != 0);
    for (size_t i = 0; i < n; i++)
        ck_assert(isfinite(now[0][i]));
    for (int k = 0; k < 4; k++)
        free(before[k]);
    free(cond), free(x0);
    dc_trainer_destroy(tr);
    dc_backend_destroy(be);
    dc_train_config_free(&c);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("train");
    TCase *tc = tcase_create("pure");
    tcase_add_test(tc, test_crc32c_known_values);
    tcase_add_test(tc, test_protobuf_varint);
    tcase_add_test(tc, test_event_encoding);
    tcase_add_test(tc, test_augment_is_permutation_same_for_all_dates);
    tcase_add_test(tc, test_augment_draw_and_permutation_deterministic);
    tcase_add_test(tc, test_lr_schedule);
    tcase_add_test(tc, test_progress_line);
    tcase_add_test(tc, test_config_unknown_keys_and_defaults);
    tcase_add_test(tc, test_config_integer_fields_are_exact);
    suite_add_tcase(s, tc);
    TCase *st = tcase_create("step");
    tcase_add_test(st, test_nonfinite_step_is_skipped);
    suite_add_tcase(s, st);
    return s;
}

int main(void)
{
    return tu_run_suite(suite());
}
