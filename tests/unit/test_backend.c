/* Choosing a backend by name: the errors a user sees for a device this machine lacks, the precision
 * names, and that "auto" falls back to the CPU when no usable GPU is there. */
#include <check.h>
#include <sys/wait.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#include "diffcr/backend.h"
#include "testutil.h"

START_TEST(test_cpu_and_ref)
{
    dc_backend *be = NULL;
    dc_error err;
    ck_assert_int_eq(dc_backend_create(&be, "ref", 1, &err), DC_OK);
    ck_assert_str_eq(be->name, "ref");
    ck_assert_int_eq(be->is_host, 1);
    ck_assert_ptr_nonnull(strstr(be->description, "reference"));
    /* the CPU computes in fp32 only; asking for tensor-core maths is an error, not a silent no-op */
    ck_assert_int_eq(be->set_precision(be, DC_PRECISION_FP32, &err), DC_OK);
    ck_assert_int_eq(be->set_precision(be, DC_PRECISION_TF32, &err), DC_ERR_UNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(err.msg, "tf32"));
    dc_backend_destroy(be);
}
END_TEST

START_TEST(test_unknown_and_malformed)
{
    dc_backend *be = NULL;
    dc_error err;
    ck_assert_int_eq(dc_backend_create(&be, "tpu", 1, &err), DC_ERR_ARG);
    ck_assert_ptr_null(be);
    ck_assert_ptr_nonnull(strstr(err.msg, "unknown device 'tpu'"));
    ck_assert_int_eq(dc_backend_create(&be, "cuda:x", 1, &err), DC_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(err.msg, "cuda:N"));
    ck_assert_int_eq(dc_backend_create(&be, "cuda:", 1, &err), DC_ERR_ARG);
    ck_assert_int_eq(dc_backend_create(&be, "cudax", 1, &err), DC_ERR_ARG);
}
END_TEST

/* Without a usable GPU (this test's premise: it skips itself where one works), "cuda" is a clear
 * one-line error naming the reason and the way out, and "auto" is the CPU. */
START_TEST(test_cuda_absent)
{
    const char *why = dc_cuda_unavailable_reason();
    if (!why)
        return; /* a GPU works here: tests/gpu covers this machine */
    dc_backend *be = NULL;
    dc_error err;
    ck_assert_int_eq(dc_backend_create(&be, "cuda", 1, &err), DC_ERR_UNSUPPORTED);
    ck_assert_ptr_null(be);
    ck_assert_ptr_nonnull(strstr(err.msg, "device 'cuda' requested but"));
    ck_assert_ptr_nonnull(strstr(err.msg, "--device cpu"));
    ck_assert_ptr_null(strchr(err.msg, '\n'));
    ck_assert_int_eq(dc_backend_create(&be, "cuda:1", 1, &err), DC_ERR_UNSUPPORTED);
    ck_assert_int_eq(dc_backend_create(&be, "auto", 1, &err), DC_OK);
    ck_assert_int_eq(be->is_host, 1);
    dc_backend_destroy(be);
}
END_TEST

/* A module that is not there: the reason says so (DIFFCR_CUDA_MODULE pins the path). */
START_TEST(test_cuda_module_path)
{
    /* dc_cuda_unavailable_reason caches per process: run the lookup in a child. */
    pid_t pid = fork();
    if (pid == 0) {
        setenv("DIFFCR_CUDA_MODULE", "/nonexistent/libdiffcr_cuda.so", 1);
        const char *why = dc_cuda_unavailable_reason();
        _exit(why && strstr(why, "DIFFCR_CUDA_MODULE") ? 0 : 1);
    }
    int status = 0;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}
END_TEST

START_TEST(test_precision_names)
{
    dc_precision p;
    dc_error err;
    ck_assert_int_eq(dc_precision_parse("fp16", &p, &err), DC_OK);
    ck_assert_int_eq(p, DC_PRECISION_FP16);
    ck_assert_str_eq(dc_precision_name(DC_PRECISION_TF32), "tf32");
    for (int i = 0; i < DC_PRECISION_COUNT; i++) {   /* every name parses back to its value */
        ck_assert_int_eq(dc_precision_parse(dc_precision_name((dc_precision)i), &p, &err), DC_OK);
        ck_assert_int_eq(p, i);
    }
    ck_assert_str_eq(dc_precision_name(DC_PRECISION_BF16), "bf16");
    ck_assert_str_eq(dc_precision_name(DC_PRECISION_COUNT), "?");
    ck_assert_int_eq(dc_precision_parse("fp8", &p, &err), DC_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(err.msg, "fp32, tf32, fp16 or bf16"));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("backend");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_cpu_and_ref);
    tcase_add_test(tc, test_unknown_and_malformed);
    tcase_add_test(tc, test_cuda_absent);
    tcase_add_test(tc, test_cuda_module_path);
    tcase_add_test(tc, test_precision_names);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
