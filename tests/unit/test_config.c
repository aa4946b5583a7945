/* diffcr tests — JSON configs with comments, dotted-path lookups, and the UNet block.
 *
 * The shipped configs (configs/diffcr_paper.json, configs/tiny_test.json) are read from
 * $DIFFCR_SOURCE_DIR, which ctest sets to the repository root. */
#include <check.h>
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diffcr/config.h"
#include "diffcr/unet.h"
#include "testutil.h"

static const char *source_path(const char *rel)
{
    static char p[4096];
    const char *root = getenv("DIFFCR_SOURCE_DIR");
    snprintf(p, sizeof p, "%s/%s", root && *root ? root : ".", rel);
    return p;
}

static cJSON *parse_ok(const char *text)
{
    cJSON *root = NULL;
    dc_error err;
    dc_error_clear(&err);
    int rc = dc_json_parse_text(&root, text, "test", &err);
    ck_assert_msg(rc == DC_OK, "parse failed: %s", err.msg);
    ck_assert_ptr_nonnull(root);
    return root;
}

/* The UNet parse of `text` must fail and the message must contain each of the given pieces. */
static void expect_unet_error(const char *text, const char *piece1, const char *piece2)
{
    cJSON *root = parse_ok(text);
    dc_unet_config cfg;
    dc_unet_config_default(&cfg);
    dc_unet_config before = cfg;
    dc_error err;
    dc_error_clear(&err);
    int rc = dc_unet_config_from_json(&cfg, root, &err);
    cJSON_Delete(root);
    ck_assert_msg(rc != DC_OK, "accepted: %s", text);
    ck_assert_msg(strstr(err.msg, piece1) != NULL, "message \"%s\" lacks \"%s\"", err.msg, piece1);
    if (piece2)
        ck_assert_msg(strstr(err.msg, piece2) != NULL, "message \"%s\" lacks \"%s\"", err.msg, piece2);
    ck_assert_msg(memcmp(&cfg, &before, sizeof cfg) == 0, "config changed on failure");
}

START_TEST(test_comments_stripped)
{
    const char *text =
        "// leading comment\n"
        "{\n"
        "  \"url\": \"http://x//y\",   // a comment after a string holding //\n"
        "  \"quote\": \"a\\\"//b\",     /* block after an escaped quote */\n"
        "  \"star\": \"/* not a comment */\",\n"
        "  /* a block\n"
        "     over lines with \"quotes\" and // slashes */\n"
        "  \"n\": 3, \"back\": \"c:\\\\\" // string ending in an escaped backslash\n"
        "}\n"
        "// trailing comment without newline";
    cJSON *root = parse_ok(text);
    const char *s = NULL;
    dc_error err;
    ck_assert_int_eq(dc_json_get_string(root, "url", &s, &err), DC_OK);
    ck_assert_str_eq(s, "http://x//y");
    ck_assert_int_eq(dc_json_get_string(root, "quote", &s, &err), DC_OK);
    ck_assert_str_eq(s, "a\"//b");
    ck_assert_int_eq(dc_json_get_string(root, "star", &s, &err), DC_OK);
    ck_assert_str_eq(s, "/* not a comment */");
    ck_assert_int_eq(dc_json_get_string(root, "back", &s, &err), DC_OK);
    ck_assert_str_eq(s, "c:\\");
    int n = 0;
    ck_assert_int_eq(dc_json_get_int(root, "n", &n, &err), DC_OK);
    ck_assert_int_eq(n, 3);
    cJSON_Delete(root);
}
END_TEST

START_TEST(test_parse_errors)
{
    cJSON *root = (cJSON *)1;
    dc_error err;
    /* The error is on line 4: comments before it must not shift the count. */
    const char *text = "{\n  // one\n  \"a\": 1, /* two */\n  \"b\": }\n";
    ck_assert_int_eq(dc_json_parse_text(&root, text, "my.json", &err), DC_ERR_FORMAT);
    ck_assert_ptr_null(root);
    ck_assert_msg(strstr(err.msg, "my.json") && strstr(err.msg, "line 4"), "%s", err.msg);
    ck_assert_int_eq(dc_json_parse_text(&root, "{\"a\": 1 /* open", "c.json", &err), DC_ERR_FORMAT);
    ck_assert_msg(strstr(err.msg, "unterminated") && strstr(err.msg, "line 1"), "%s", err.msg);
    ck_assert_int_eq(dc_json_parse_text(&root, "{\"a\": 1} trailing", "c.json", &err), DC_ERR_FORMAT);
    ck_assert_int_eq(dc_json_parse_text(&root, "", "c.json", &err), DC_ERR_FORMAT);
    ck_assert_int_eq(dc_json_parse_text(&root, "// only a comment", "c.json", &err), DC_ERR_FORMAT);
    ck_assert_int_eq(dc_json_parse_text(&root, "{\"a\": \"unterminated}", "c.json", &err), DC_ERR_FORMAT);

    const char *missing = "/nonexistent/diffcr/config.json";
    ck_assert_int_eq(dc_json_parse_file(&root, missing, &err), DC_ERR_IO);
    ck_assert_ptr_nonnull(strstr(err.msg, missing));
    ck_assert_int_eq(dc_json_parse_file(&root, "/", &err), DC_ERR_IO);
    ck_assert_ptr_nonnull(strstr(err.msg, "not a regular file"));
}
END_TEST

START_TEST(test_path_lookup)
{
    cJSON *root = parse_ok("{\"a\": {\"b\": [10, {\"c\": 2.5}, [7, 8]], \"0\": \"zero\"}, \"s\": \"x\","
                           " \"f\": 1.5, \"big\": 3e9, \"t\": true, \"arr\": [1, 2, 3]}");
    dc_error err;
    int v = 0;
    double d = 0;
    const char *s = NULL;
    ck_assert_ptr_eq(dc_json_at(root, ""), root);
    ck_assert_int_eq(dc_json_get_int(root, "a.b.0", &v, &err), DC_OK);
    ck_assert_int_eq(v, 10);
    ck_assert_int_eq(dc_json_get_int(root, "a.b.2.1", &v, &err), DC_OK);
    ck_assert_int_eq(v, 8);
    ck_assert_int_eq(dc_json_get_double(root, "a.b.1.c", &d, &err), DC_OK);
    ck_assert(d == 2.5);
    ck_assert_int_eq(dc_json_get_string(root, "a.0", &s, &err), DC_OK);   /* "0" as an object key */
    ck_assert_str_eq(s, "zero");
    ck_assert_ptr_null(dc_json_at(root, "a.b.3"));
    ck_assert_ptr_null(dc_json_at(root, "a.b.x"));
    ck_assert_ptr_null(dc_json_at(root, "a.b.-1"));
    ck_assert_ptr_null(dc_json_at(root, "a..b"));
    ck_assert_ptr_null(dc_json_at(root, "a."));
    ck_assert_ptr_null(dc_json_at(root, "s.x"));
    ck_assert_ptr_null(dc_json_at(NULL, "a"));

    ck_assert_int_eq(dc_json_get_int(root, "f", &v, &err), DC_ERR_FORMAT);
    ck_assert_str_eq(err.msg, "config: \"f\" must be an integer");
    ck_assert_int_eq(dc_json_get_int(root, "big", &v, &err), DC_ERR_FORMAT);   /* > INT_MAX */
    ck_assert_int_eq(dc_json_get_int(root, "t", &v, &err), DC_ERR_FORMAT);
    ck_assert_int_eq(dc_json_get_int(root, "nope.deeper", &v, &err), DC_ERR_FORMAT);
    ck_assert_str_eq(err.msg, "config: \"nope.deeper\" is missing");
    ck_assert_int_eq(dc_json_get_double(root, "s", &d, &err), DC_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(err.msg, "\"s\" must be a number"));
    ck_assert_int_eq(dc_json_get_string(root, "f", &s, &err), DC_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(err.msg, "\"f\" must be a string"));

    int arr[4], count = -1;
    ck_assert_int_eq(dc_json_get_int_array(root, "arr", arr, 4, &count, &err), DC_OK);
    ck_assert_int_eq(count, 3);
    ck_assert(arr[0] == 1 && arr[1] == 2 && arr[2] == 3);
    ck_assert_int_eq(dc_json_get_int_array(root, "arr", arr, 2, &count, &err), DC_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(err.msg, "at most 2"));
    ck_assert_int_eq(dc_json_get_int_array(root, "a.b", arr, 4, &count, &err), DC_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(err.msg, "element 1"));
    ck_assert_int_eq(dc_json_get_int_array(root, "s", arr, 4, &count, &err), DC_ERR_FORMAT);
    cJSON_Delete(root);
}
END_TEST

START_TEST(test_paper_config)
{
    const char *path = source_path("configs/diffcr_paper.json");
    cJSON *root = NULL;
    dc_error err;
    ck_assert_msg(dc_json_parse_file(&root, path, &err) == DC_OK, "%s (is DIFFCR_SOURCE_DIR set?)", err.msg);
    dc_unet_config cfg;
    ck_assert_msg(dc_unet_config_from_json(&cfg, root, &err) == DC_OK, "%s", err.msg);
    dc_unet_config def;
    dc_unet_config_default(&def);
    ck_assert_int_eq(cfg.img_channel, 3);
    ck_assert_int_eq(cfg.width, 64);
    ck_assert_int_eq(cfg.middle_blk_num, 1);
    ck_assert_int_eq(cfg.n_levels, 4);
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(cfg.enc_blk_nums[i], 1);
        ck_assert_int_eq(cfg.dec_blk_nums[i], 1);
    }
    ck_assert_int_eq(cfg.ndates, 3);
    ck_assert_mem_eq(&cfg, &def, sizeof cfg);   /* the paper config is the default */

    const char *name = NULL;
    double lr = 0, start = 0, decay = 0;
    int steps = 0, batch = 0, n_epoch = 0;
    ck_assert_int_eq(dc_json_get_string(root, "name", &name, &err), DC_OK);
    ck_assert_str_eq(name, "ours_double_encoder_splitcaCond_splitcaUnet_sigmoid");
    ck_assert_int_eq(dc_json_get_double(root, "model.which_model.args.optimizers.0.lr", &lr, &err), DC_OK);
    ck_assert(fabs(lr - 5e-5) < 1e-18);
    ck_assert_int_eq(dc_json_get_double(root, "model.which_model.args.ema_scheduler.ema_decay", &decay, &err), DC_OK);
    ck_assert(decay == 0.9999);
    ck_assert_int_eq(dc_json_get_int(root, "model.which_networks.0.args.beta_schedule.train.n_timestep", &steps, &err), DC_OK);
    ck_assert_int_eq(steps, 2000);
    ck_assert_int_eq(dc_json_get_double(root, "model.which_networks.0.args.beta_schedule.test.linear_end", &start, &err), DC_OK);
    ck_assert(start == 0.09);
    ck_assert_int_eq(dc_json_get_int(root, "datasets.train.dataloader.args.batch_size", &batch, &err), DC_OK);
    ck_assert_int_eq(batch, 8);
    ck_assert_int_eq(dc_json_get_int(root, "train.n_epoch", &n_epoch, &err), DC_OK);
    ck_assert_int_eq(n_epoch, 3000);
    cJSON_Delete(root);
}
END_TEST

START_TEST(test_tiny_config)
{
    cJSON *root = NULL;
    dc_error err;
    ck_assert_msg(dc_json_parse_file(&root, source_path("configs/tiny_test.json"), &err) == DC_OK, "%s", err.msg);
    dc_unet_config cfg;
    ck_assert_msg(dc_unet_config_from_json(&cfg, root, &err) == DC_OK, "%s", err.msg);
    ck_assert_int_eq(cfg.width, 8);
    ck_assert_int_eq(cfg.n_levels, 2);
    ck_assert_int_eq(cfg.middle_blk_num, 1);
    ck_assert(cfg.enc_blk_nums[0] == 1 && cfg.enc_blk_nums[1] == 1);
    ck_assert(cfg.dec_blk_nums[0] == 1 && cfg.dec_blk_nums[1] == 1);
    int n_iter = 0;
    ck_assert_int_eq(dc_json_get_int(root, "train.n_iter", &n_iter, &err), DC_OK);
    ck_assert_int_eq(n_iter, 200);
    cJSON_Delete(root);
}
END_TEST

START_TEST(test_unet_object_forms)
{
    dc_unet_config cfg;
    dc_error err;
    /* The unet object itself, with ndates. */
    cJSON *root = parse_ok("{\"img_channel\": 4, \"width\": 16, \"middle_blk_num\": 2,"
                           " \"enc_blk_nums\": [1, 2, 0], \"dec_blk_nums\": [3, 1, 1], \"ndates\": 2}");
    ck_assert_msg(dc_unet_config_from_json(&cfg, root, &err) == DC_OK, "%s", err.msg);
    cJSON_Delete(root);
    ck_assert_int_eq(cfg.img_channel, 4);
    ck_assert_int_eq(cfg.width, 16);
    ck_assert_int_eq(cfg.middle_blk_num, 2);
    ck_assert_int_eq(cfg.n_levels, 3);
    ck_assert(cfg.enc_blk_nums[1] == 2 && cfg.enc_blk_nums[2] == 0 && cfg.dec_blk_nums[0] == 3);
    ck_assert_int_eq(cfg.ndates, 2);

    /* to_json and back gives the same config. */
    char *json = dc_unet_config_to_json(&cfg);
    ck_assert_ptr_nonnull(json);
    ck_assert_str_eq(json, "{\"img_channel\":4,\"width\":16,\"middle_blk_num\":2,\"enc_blk_nums\":[1,2,0],"
                           "\"dec_blk_nums\":[3,1,1],\"ndates\":2}");
    root = parse_ok(json);
    free(json);
    dc_unet_config back;
    ck_assert_int_eq(dc_unet_config_from_json(&back, root, &err), DC_OK);
    cJSON_Delete(root);
    ck_assert_mem_eq(&back, &cfg, sizeof cfg);

    /* A network "args" object holding "unet"; ndates defaults to 3. */
    root = parse_ok("{\"init_type\": \"kaiming\", \"unet\": {\"img_channel\": 3, \"width\": 32,"
                    " \"middle_blk_num\": 1, \"enc_blk_nums\": [1], \"dec_blk_nums\": [1]}}");
    ck_assert_msg(dc_unet_config_from_json(&cfg, root, &err) == DC_OK, "%s", err.msg);
    cJSON_Delete(root);
    ck_assert_int_eq(cfg.width, 32);
    ck_assert_int_eq(cfg.n_levels, 1);
    ck_assert_int_eq(cfg.ndates, 3);

    dc_unet_config def;
    dc_unet_config_default(&def);
    json = dc_unet_config_to_json(&def);
    ck_assert_str_eq(json, "{\"img_channel\":3,\"width\":64,\"middle_blk_num\":1,\"enc_blk_nums\":[1,1,1,1],"
                           "\"dec_blk_nums\":[1,1,1,1],\"ndates\":3}");
    free(json);
}
END_TEST

START_TEST(test_unet_errors)
{
    expect_unet_error("{\"img_channel\": 3, \"middle_blk_num\": 1, \"enc_blk_nums\": [1], \"dec_blk_nums\": [1]}",
                      "\"unet.width\"", "missing");
    expect_unet_error("{\"img_channel\": 3, \"width\": \"64\", \"middle_blk_num\": 1, \"enc_blk_nums\": [1],"
                      " \"dec_blk_nums\": [1]}",
                      "config: \"unet.width\" must be an integer", NULL);
    expect_unet_error("{\"img_channel\": 3, \"width\": 64.5, \"middle_blk_num\": 1, \"enc_blk_nums\": [1],"
                      " \"dec_blk_nums\": [1]}",
                      "\"unet.width\" must be an integer", NULL);
    expect_unet_error("{\"img_channel\": 3, \"width\": 64, \"middle_blk_num\": 1, \"enc_blk_nums\": [1, 1]}",
                      "\"unet.dec_blk_nums\"", "missing");
    expect_unet_error("{\"img_channel\": 3, \"width\": 64, \"middle_blk_num\": 1, \"enc_blk_nums\": 4,"
                      " \"dec_blk_nums\": [1]}",
                      "\"unet.enc_blk_nums\"", "array");
    expect_unet_error("{\"img_channel\": 3, \"width\": 64, \"middle_blk_num\": 1, \"enc_blk_nums\": [1, true],"
                      " \"dec_blk_nums\": [1, 1]}",
                      "\"unet.enc_blk_nums\" element 1", NULL);
    expect_unet_error("{\"img_channel\": 3, \"width\": 64, \"middle_blk_num\": 1, \"enc_blk_nums\": [1, 1],"
                      " \"dec_blk_nums\": [1]}",
                      "\"unet.dec_blk_nums\" has 1", NULL);
    expect_unet_error("{\"img_channel\": 3, \"width\": 64, \"middle_blk_num\": 1, \"enc_blk_nums\": [],"
                      " \"dec_blk_nums\": []}",
                      "\"unet.enc_blk_nums\"", "empty");
    expect_unet_error("{\"img_channel\": 3, \"width\": 64, \"middle_blk_num\": 1,"
                      " \"enc_blk_nums\": [1,1,1,1,1,1,1,1,1], \"dec_blk_nums\": [1,1,1,1,1,1,1,1,1]}",
                      "\"unet.enc_blk_nums\"", "at most 8");
    /* Well-typed but out of range: caught by validation, still named. */
    expect_unet_error("{\"img_channel\": 3, \"width\": 63, \"middle_blk_num\": 1, \"enc_blk_nums\": [1],"
                      " \"dec_blk_nums\": [1]}",
                      "\"unet.width\"", "even");
    expect_unet_error("{\"img_channel\": 0, \"width\": 64, \"middle_blk_num\": 1, \"enc_blk_nums\": [1],"
                      " \"dec_blk_nums\": [1]}",
                      "\"unet.img_channel\"", NULL);
    expect_unet_error("{\"img_channel\": 3, \"width\": 64, \"middle_blk_num\": 1, \"enc_blk_nums\": [1],"
                      " \"dec_blk_nums\": [-1]}",
                      "\"unet.dec_blk_nums\" element 0", NULL);
    expect_unet_error("{\"img_channel\": 3, \"width\": 64, \"middle_blk_num\": 1, \"enc_blk_nums\": [1],"
                      " \"dec_blk_nums\": [1], \"ndates\": \"three\"}",
                      "\"unet.ndates\" must be an integer", NULL);
    expect_unet_error("{\"img_channel\": 3, \"width\": 64, \"middle_blk_num\": 1, \"enc_blk_nums\": [1],"
                      " \"dec_blk_nums\": [1], \"ndates\": 0}",
                      "\"unet.ndates\"", NULL);
    /* A whole config whose network lacks the unet block. */
    expect_unet_error("{\"model\": {\"which_networks\": [{\"args\": {}}]}}",
                      "model.which_networks.0.args.unet", "missing");
    expect_unet_error("{\"unet\": 5}", "\"unet\" must be an object", NULL);
}
END_TEST

START_TEST(test_unet_validate)
{
    dc_unet_config cfg;
    dc_error err;
    dc_unet_config_default(&cfg);
    ck_assert_int_eq(dc_unet_config_validate(&cfg, &err), DC_OK);
    dc_unet_config c = cfg;
    c.width = 0;
    ck_assert_int_ne(dc_unet_config_validate(&c, &err), DC_OK);
    c = cfg;
    c.n_levels = 0;
    ck_assert_int_ne(dc_unet_config_validate(&c, &err), DC_OK);
    c = cfg;
    c.n_levels = 9;
    ck_assert_int_ne(dc_unet_config_validate(&c, &err), DC_OK);
    ck_assert_ptr_null(dc_unet_config_to_json(&c));
    c = cfg;
    c.middle_blk_num = 65;
    ck_assert_int_ne(dc_unet_config_validate(&c, &err), DC_OK);
    ck_assert_ptr_nonnull(strstr(err.msg, "middle_blk_num"));
    c = cfg;
    c.ndates = 17;
    ck_assert_int_ne(dc_unet_config_validate(&c, &err), DC_OK);
    c = cfg;
    c.width = 4096;
    c.n_levels = 8;
    ck_assert_int_ne(dc_unet_config_validate(&c, &err), DC_OK);   /* 4096 << 8 channels */
    ck_assert_ptr_nonnull(strstr(err.msg, "bottom"));
    c = cfg;
    c.width = 2;
    c.middle_blk_num = 0;
    c.enc_blk_nums[0] = 0;
    ck_assert_int_eq(dc_unet_config_validate(&c, &err), DC_OK);
    ck_assert_int_ne(dc_unet_config_validate(NULL, &err), DC_OK);
}
END_TEST

static Suite *config_suite(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("json");
    tcase_add_test(tc, test_comments_stripped);
    tcase_add_test(tc, test_parse_errors);
    tcase_add_test(tc, test_path_lookup);
    suite_add_tcase(s, tc);
    TCase *tu = tcase_create("unet");
    tcase_add_test(tu, test_paper_config);
    tcase_add_test(tu, test_tiny_config);
    tcase_add_test(tu, test_unet_object_forms);
    tcase_add_test(tu, test_unet_errors);
    tcase_add_test(tu, test_unet_validate);
    suite_add_tcase(s, tu);
    return s;
}

int main(void)
{
    return tu_run_suite(config_suite());
}
