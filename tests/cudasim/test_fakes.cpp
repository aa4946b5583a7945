/* diffcr cudasim — self-test of the fake cuBLAS and cuDNN (fake_cublas.cpp, fake_cudnn.cpp), run
 * against the private runtime stub test_fakes_stub.cpp.
 *
 * Each check is a property that holds for the real libraries and is computed independently of the
 * fakes' own loops: GEMMs against a row-major triple loop on logical matrices (stored with padded
 * leading dimensions full of NaN), convolutions against a reference on logical NCHW indices, the
 * adjoint identities <fwd(x), dy> = <x, bwd_data(dy)> = <w, bwd_filter(dy)>, layout invariance,
 * hand-computed values, the documented rounding of TF32 / fp16 / bf16 inputs, the documented error
 * statuses, and (in forked children) that misuse a GPU would crash on aborts with a message.
 *
 * Usage: test_fakes [-v]   (-v prints the Find lists). Exit status 0 when everything passed. */
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <functional>
#include <string>
#include <vector>

#include "cublas_v2.h"
#include "cuda_runtime.h"
#include "cudnn.h"

void stub_defer(bool on); /* test_fakes_stub.cpp: queue work until the next synchronisation */

namespace {

int g_checks, g_failures;
bool g_verbose;

void check(bool ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void check(bool ok, const char *fmt, ...)
{
    g_checks++;
    if (ok)
        return;
    g_failures++;
    va_list ap;
    va_start(ap, fmt);
    fputs("FAIL: ", stdout);
    vprintf(fmt, ap);
    fputc('\n', stdout);
    va_end(ap);
}

#define CK_CUDNN(call) check((call) == CUDNN_STATUS_SUCCESS, "%s:%d: %s", __FILE__, __LINE__, #call)
#define CK_CUBLAS(call) check((call) == CUBLAS_STATUS_SUCCESS, "%s:%d: %s", __FILE__, __LINE__, #call)

/* Deterministic values in [-1, 1). */
struct Rng {
    uint64_t s;
    float next()
    {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        return (float)((s >> 40) & 0xffffff) / (float)(1 << 23) - 1.0f;
    }
};

/* A device buffer of floats; in the simulator device memory is host memory, readable after a
 * synchronisation. */
struct Dev {
    float *p = nullptr;
    size_t n = 0;
    explicit Dev(size_t count, float fill = 0.0f) : n(count)
    {
        if (cudaMalloc((void **)&p, (count ? count : 1) * sizeof(float)) != cudaSuccess) {
            fprintf(stderr, "cudaMalloc failed\n");
            abort();
        }
        for (size_t i = 0; i < count; i++)
            p[i] = fill;
    }
    ~Dev() { cudaFree(p); }
    Dev(const Dev &) = delete;
    Dev &operator=(const Dev &) = delete;
};

void sync() { cudaDeviceSynchronize(); }

/* Runs f in a child and checks that it aborts with a message containing `needle`: misuse that
 * would crash a GPU must stop the simulator, loudly. */
void expect_abort(const char *what, const char *needle, const std::function<void()> &f)
{
    fflush(stdout);
    fflush(stderr);
    int fds[2];
    if (pipe(fds) != 0) {
        check(false, "%s: pipe failed", what);
        return;
    }
    const pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], 2);
        close(fds[0]);
        f();
        sync();
        _exit(0);
    }
    close(fds[1]);
    std::string msg;
    char buf[512];
    ssize_t got;
    while ((got = read(fds[0], buf, sizeof buf)) > 0)
        msg.append(buf, (size_t)got);
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    const bool aborted = WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT;
    check(aborted && msg.find("cudasim: ") != std::string::npos && msg.find(needle) != std::string::npos,
          "%s: expected an abort mentioning \"%s\", got status %d, message \"%s\"", what, needle, status, msg.c_str());
}

/* ================================================================================================
 * cuBLAS
 * ================================================================================================ */

/* Stores a logical row-major rows x cols matrix column-major with leading dimension ld, the padding
 * rows filled with NaN so that a wrong leading dimension poisons the result. */
void store_colmajor(float *dst, const std::vector<float> &logical, int rows, int cols, int ld)
{
    for (int j = 0; j < cols; j++)
        for (int i = 0; i < ld; i++)
            dst[(size_t)j * ld + i] = i < rows ? logical[(size_t)i * cols + j] : NAN;
}

void test_gemm_case(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, float alpha, float beta,
                    cublasComputeType_t ct, Rng &rng)
{
    const int m = 5, n = 7, k = 3;
    const bool TA = ta != CUBLAS_OP_N, TB = tb != CUBLAS_OP_N;
    /* logical op(A) m x k, op(B) k x n and C0 m x n, row-major */
    std::vector<float> opA((size_t)m * k), opB((size_t)k * n), C0((size_t)m * n);
    for (float &v : opA) v = rng.next();
    for (float &v : opB) v = rng.next();
    for (float &v : C0) v = beta == 0.0f ? NAN : rng.next();
    /* the stored A is op(A) or its transpose */
    std::vector<float> Astore(TA ? (size_t)k * m : (size_t)m * k), Bstore(TB ? (size_t)n * k : (size_t)k * n);
    const int a_rows = TA ? k : m, a_cols = TA ? m : k, b_rows = TB ? n : k, b_cols = TB ? k : n;
    for (int i = 0; i < m; i++)
        for (int l = 0; l < k; l++)
            (TA ? Astore[(size_t)l * m + i] : Astore[(size_t)i * k + l]) = opA[(size_t)i * k + l];
    for (int l = 0; l < k; l++)
        for (int j = 0; j < n; j++)
            (TB ? Bstore[(size_t)j * k + l] : Bstore[(size_t)l * n + j]) = opB[(size_t)l * n + j];
    const int lda = a_rows + 3, ldb = b_rows + 2, ldc = m + 4;
    Dev A((size_t)lda * a_cols), B((size_t)ldb * b_cols), C((size_t)ldc * n);
    store_colmajor(A.p, Astore, a_rows, a_cols, lda);
    store_colmajor(B.p, Bstore, b_rows, b_cols, ldb);
    for (int j = 0; j < n; j++)
        for (int i = 0; i < ldc; i++)
            C.p[(size_t)j * ldc + i] = i < m ? C0[(size_t)i * n + j] : 12345.0f; /* padding: must survive */

    CK_CUBLAS(cublasGemmEx(h, ta, tb, m, n, k, &alpha, A.p, CUDA_R_32F, lda, B.p, CUDA_R_32F, ldb, &beta, C.p,
                           CUDA_R_32F, ldc, ct, CUBLAS_GEMM_DEFAULT));
    sync();
    int bad = 0;
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double ref = 0.0, mag = 0.0;
            for (int l = 0; l < k; l++) {
                const double t = (double)opA[(size_t)i * k + l] * opB[(size_t)l * n + j];
                ref += t, mag += fabs(t);
            }
            ref *= alpha, mag *= fabs(alpha);
            if (beta != 0.0f)
                ref += (double)beta * C0[(size_t)i * n + j], mag += fabs((double)beta * C0[(size_t)i * n + j]);
            const float got = C.p[(size_t)j * ldc + i];
            if (!(fabs(got - ref) <= 1e-6 * mag + 1e-7))
                bad++;
        }
    int clobbered = 0;
    for (int j = 0; j < n; j++)
        for (int i = m; i < ldc; i++)
            clobbered += C.p[(size_t)j * ldc + i] != 12345.0f;
    check(bad == 0, "GEMM %c%c alpha %g beta %g: %d of %d entries differ from the triple loop", TA ? 'T' : 'N',
          TB ? 'T' : 'N', alpha, beta, bad, m * n);
    check(clobbered == 0, "GEMM %c%c: %d entries of C's padding rows were written", TA ? 'T' : 'N', TB ? 'T' : 'N',
          clobbered);
}

void test_gemm(cublasHandle_t h)
{
    Rng rng{1};
    const cublasOperation_t ops[2] = {CUBLAS_OP_N, CUBLAS_OP_T};
    for (cublasOperation_t ta : ops)
        for (cublasOperation_t tb : ops) {
            test_gemm_case(h, ta, tb, 1.5f, -0.75f, CUBLAS_COMPUTE_32F, rng);
            test_gemm_case(h, ta, tb, -0.5f, 0.0f, CUBLAS_COMPUTE_32F, rng); /* C holds NaN: must not be read */
            test_gemm_case(h, ta, tb, 2.0f, 0.25f, CUBLAS_COMPUTE_32F_PEDANTIC, rng);
        }

    /* k = 0: C = beta C (and 0 for beta 0 even where C held NaN) */
    Dev C(6, 3.0f);
    C.p[5] = NAN;
    const float alpha = 1.0f, half = 0.5f, zero = 0.0f;
    CK_CUBLAS(cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 0, &alpha, nullptr, CUDA_R_32F, 2, nullptr, CUDA_R_32F, 1,
                           &half, C.p, CUDA_R_32F, 2, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    CK_CUBLAS(cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, 2, 1, 0, &alpha, nullptr, CUDA_R_32F, 2, nullptr, CUDA_R_32F, 1,
                           &zero, C.p + 4, CUDA_R_32F, 2, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT_TENSOR_OP));
    sync();
    check(C.p[0] == 1.5f && C.p[3] == 1.5f && C.p[4] == 0.0f && C.p[5] == 0.0f,
          "GEMM with k = 0: expected C = beta C, got %g %g %g %g", C.p[0], C.p[3], C.p[4], C.p[5]);
}

void test_gemv(cublasHandle_t h)
{
    Rng rng{7};
    const int m = 6, n = 4, lda = 9;
    std::vector<float> logical((size_t)m * n); /* row-major m x n */
    for (float &v : logical) v = rng.next();
    Dev A((size_t)lda * n);
    store_colmajor(A.p, logical, m, n, lda);
    for (int trans = 0; trans < 2; trans++)
        for (int beta_zero = 0; beta_zero < 2; beta_zero++) {
            const int xlen = trans ? m : n, ylen = trans ? n : m, incx = 2, incy = -3;
            std::vector<float> xv((size_t)xlen), y0((size_t)ylen);
            for (float &v : xv) v = rng.next();
            for (float &v : y0) v = beta_zero ? NAN : rng.next();
            Dev x((size_t)(xlen - 1) * incx + 1, NAN), y((size_t)(ylen - 1) * 3 + 1, 777.0f);
            for (int i = 0; i < xlen; i++)
                x.p[(size_t)i * incx] = xv[(size_t)i];
            for (int i = 0; i < ylen; i++)
                y.p[(size_t)(ylen - 1 - i) * 3] = y0[(size_t)i]; /* negative increment: element 0 is last */
            const float alpha = 1.25f, beta = beta_zero ? 0.0f : -2.0f;
            CK_CUBLAS(cublasSgemv(h, trans ? CUBLAS_OP_T : CUBLAS_OP_N, m, n, &alpha, A.p, lda, x.p, incx, &beta, y.p,
                                  incy));
            sync();
            int bad = 0;
            for (int i = 0; i < ylen; i++) {
                double ref = 0.0, mag = 0.0;
                for (int l = 0; l < xlen; l++) {
                    const double a = trans ? logical[(size_t)l * n + i] : logical[(size_t)i * n + l];
                    ref += a * xv[(size_t)l], mag += fabs(a * xv[(size_t)l]);
                }
                ref *= alpha, mag *= alpha;
                if (!beta_zero)
                    ref += (double)beta * y0[(size_t)i], mag += fabs((double)beta * y0[(size_t)i]);
                const float got = y.p[(size_t)(ylen - 1 - i) * 3];
                bad += !(fabs(got - ref) <= 1e-6 * mag + 1e-7);
            }
            int gaps = 0; /* entries between the strided ones stay untouched */
            for (size_t i = 0; i < y.n; i++)
                gaps += i % 3 != 0 && y.p[i] != 777.0f;
            check(bad == 0 && gaps == 0, "GEMV %c beta %s: %d wrong, %d gap entries written", trans ? 'T' : 'N',
                  beta_zero ? "0" : "-2", bad, gaps);
        }
}

/* Rounding of inputs by compute type: k = 1 products with an exact 1.0 show each rounded value. */
void test_gemm_rounding(cublasHandle_t h)
{
    struct Case {
        float in, tf32, fp16, bf16;
    };
    const Case cases[] = {
        {1.0f + 0x1p-11f, 1.0f, 1.0f, 1.0f},                          /* tie, even below */
        {1.0f + 0x1p-10f + 0x1p-11f, 1.0f + 0x1p-9f, 1.0f + 0x1p-9f, 1.0f}, /* tie, odd: rounds up */
        {1.0f + 0x1p-11f + 0x1p-20f, 1.0f + 0x1p-10f, 1.0f + 0x1p-10f, 1.0f}, /* just above the tie */
        {-3.0f - 0x1p-12f, -3.0f, -3.0f, -3.0f},
        {65519.0f, 65519.0f - 15.0f, 65504.0f, 65536.0f},              /* 65504 is the largest half */
        {65520.0f, 65536.0f, INFINITY, 65536.0f},                      /* half overflows, bf16 does not */
        {-1.0e5f, -99968.0f, -INFINITY, -99840.0f},                    /* bf16 quantum 512 there */
        {1.0e-6f, 0x1.0c8p-20f, 17.0f * 0x1p-24f, 0x1.0cp-20f}, /* 1e-6 = 0x1.0c6f7ap-20; half subnormal, quantum 2^-24 */
        {0x1p-25f, 0x1p-25f, 0.0f, 0x1p-25f},                           /* tie between 0 and 2^-24: even */
        {3.0f * 0x1p-26f, 3.0f * 0x1p-26f, 0x1p-24f, 3.0f * 0x1p-26f},
        {0x1.fffffep127f, INFINITY, INFINITY, INFINITY},               /* FLT_MAX rounds past TF32's range */
        {1.0f + 0x1p-8f, 1.0f + 0x1p-8f, 1.0f + 0x1p-8f, 1.0f},        /* bf16 tie, even below */
        {1.0f + 0x1p-7f + 0x1p-8f, 1.0f + 0x1p-7f + 0x1p-8f, 1.0f + 0x1p-7f + 0x1p-8f, 1.0f + 0x1p-6f}, /* odd: up */
    };
    const int m = (int)(sizeof cases / sizeof cases[0]);
    Dev A((size_t)m), B(1, 1.0f), C((size_t)m);
    for (int i = 0; i < m; i++)
        A.p[i] = cases[i].in;
    const float one = 1.0f, zero = 0.0f;
    const struct {
        cublasComputeType_t ct;
        const char *name;
        int which; /* 0 exact, 1 tf32, 2 fp16, 3 bf16 */
    } modes[] = {{CUBLAS_COMPUTE_32F, "32F", 0},
                 {CUBLAS_COMPUTE_32F_PEDANTIC, "32F_PEDANTIC", 0},
                 {CUBLAS_COMPUTE_32F_FAST_TF32, "FAST_TF32", 1},
                 {CUBLAS_COMPUTE_32F_FAST_16F, "FAST_16F", 2},
                 {CUBLAS_COMPUTE_32F_FAST_16BF, "FAST_16BF", 3}};
    for (const auto &md : modes) {
        CK_CUBLAS(cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, m, 1, 1, &one, A.p, CUDA_R_32F, m, B.p, CUDA_R_32F, 1,
                               &zero, C.p, CUDA_R_32F, m, md.ct, CUBLAS_GEMM_DEFAULT));
        sync();
        for (int i = 0; i < m; i++) {
            const float want = md.which == 0   ? cases[i].in
                               : md.which == 1 ? cases[i].tf32
                               : md.which == 2 ? cases[i].fp16
                                               : cases[i].bf16;
            const float got = C.p[i];
            check(got == want || (isnan(got) && isnan(want)), "GEMM %s: input %a became %a, expected %a", md.name,
                  (double)cases[i].in, (double)got, (double)want);
        }
    }

    /* the brief's example: four inputs 1 + 2^-12 sum to exactly 4 after fp16 or TF32 rounding */
    Dev a4(4, 1.0f + 0x1p-12f), b4(4, 1.0f), c1(1);
    const float expect[4] = {4.0f + 0x1p-10f, 4.0f, 4.0f, 4.0f};
    const cublasComputeType_t cts[4] = {CUBLAS_COMPUTE_32F, CUBLAS_COMPUTE_32F_FAST_TF32, CUBLAS_COMPUTE_32F_FAST_16F,
                                        CUBLAS_COMPUTE_32F_FAST_16BF};
    for (int i = 0; i < 4; i++) {
        CK_CUBLAS(cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, 1, 1, 4, &one, a4.p, CUDA_R_32F, 4, b4.p, CUDA_R_32F, 4,
                               &zero, c1.p, CUDA_R_32F, 1, cts[i], CUBLAS_GEMM_DEFAULT));
        sync();
        check(c1.p[0] == expect[i], "GEMM dot of 4 x (1 + 2^-12), compute type %d: got %a, expected %a", (int)cts[i],
              (double)c1.p[0], (double)expect[i]);
    }
}

void test_cublas_validation(cublasHandle_t h)
{
    Dev A(64), B(64), C(64, 5.0f);
    const float one = 1.0f, zero = 0.0f;
    auto gemm = [&](cublasHandle_t hh, cublasOperation_t ta, int m, int n, int k, int lda, int ldb, int ldc,
                    cudaDataType at, cublasComputeType_t ct, const float *alpha) {
        return cublasGemmEx(hh, ta, CUBLAS_OP_N, m, n, k, alpha, A.p, at, lda, B.p, CUDA_R_32F, ldb, &zero, C.p,
                            CUDA_R_32F, ldc, ct, CUBLAS_GEMM_DEFAULT);
    };
    const cublasComputeType_t F = CUBLAS_COMPUTE_32F;
    check(gemm(h, CUBLAS_OP_N, 4, 3, 2, 3, 2, 4, CUDA_R_32F, F, &one) == CUBLAS_STATUS_INVALID_VALUE,
          "GEMM: lda 3 < m 4 must be INVALID_VALUE");
    check(gemm(h, CUBLAS_OP_T, 4, 3, 2, 1, 2, 4, CUDA_R_32F, F, &one) == CUBLAS_STATUS_INVALID_VALUE,
          "GEMM: transposed A with lda 1 < k 2 must be INVALID_VALUE");
    check(gemm(h, CUBLAS_OP_N, 4, 3, 2, 4, 1, 4, CUDA_R_32F, F, &one) == CUBLAS_STATUS_INVALID_VALUE,
          "GEMM: ldb 1 < k 2 must be INVALID_VALUE");
    check(gemm(h, CUBLAS_OP_N, 4, 3, 2, 4, 2, 3, CUDA_R_32F, F, &one) == CUBLAS_STATUS_INVALID_VALUE,
          "GEMM: ldc 3 < m 4 must be INVALID_VALUE");
    check(gemm(h, CUBLAS_OP_N, -1, 3, 2, 4, 2, 4, CUDA_R_32F, F, &one) == CUBLAS_STATUS_INVALID_VALUE,
          "GEMM: m < 0 must be INVALID_VALUE");
    check(gemm(h, CUBLAS_OP_N, 0, 3, 2, 1, 2, 1, CUDA_R_32F, F, &one) == CUBLAS_STATUS_SUCCESS,
          "GEMM: m = 0 with lda = ldc = 1 is a valid no-op");
    check(gemm(h, CUBLAS_OP_CONJG, 4, 3, 2, 4, 2, 4, CUDA_R_32F, F, &one) == CUBLAS_STATUS_INVALID_VALUE,
          "GEMM: CUBLAS_OP_CONJG must be INVALID_VALUE");
    check(gemm(h, CUBLAS_OP_N, 4, 3, 2, 4, 2, 4, CUDA_R_32F, F, nullptr) == CUBLAS_STATUS_INVALID_VALUE,
          "GEMM: NULL alpha must be INVALID_VALUE");
    check(gemm(h, CUBLAS_OP_N, 4, 3, 2, 4, 2, 4, CUDA_R_16F, F, &one) == CUBLAS_STATUS_NOT_SUPPORTED,
          "GEMM: fp16 A must be NOT_SUPPORTED by the fake");
    check(gemm(h, CUBLAS_OP_N, 4, 3, 2, 4, 2, 4, CUDA_R_32F, CUBLAS_COMPUTE_64F, &one) == CUBLAS_STATUS_NOT_SUPPORTED,
          "GEMM: fp32 data with COMPUTE_64F must be NOT_SUPPORTED");
    check(gemm(nullptr, CUBLAS_OP_N, 4, 3, 2, 4, 2, 4, CUDA_R_32F, F, &one) == CUBLAS_STATUS_NOT_INITIALIZED,
          "GEMM: NULL handle must be NOT_INITIALIZED");
    sync();
    int touched = 0;
    for (int i = 0; i < 64; i++)
        touched += C.p[i] != 5.0f;
    check(touched == 0, "failed GEMMs wrote %d entries of C", touched);

    check(cublasSgemv(h, CUBLAS_OP_N, 4, 3, &one, A.p, 3, B.p, 1, &zero, C.p, 1) == CUBLAS_STATUS_INVALID_VALUE,
          "GEMV: lda 3 < m 4 must be INVALID_VALUE");
    check(cublasSgemv(h, CUBLAS_OP_N, 4, 3, &one, A.p, 4, B.p, 0, &zero, C.p, 1) == CUBLAS_STATUS_INVALID_VALUE,
          "GEMV: incx 0 must be INVALID_VALUE");
    check(cublasSetStream(nullptr, cudaStreamPerThread) == CUBLAS_STATUS_NOT_INITIALIZED,
          "cublasSetStream(NULL) must be NOT_INITIALIZED");
    check(strcmp(cublasGetStatusName(CUBLAS_STATUS_INVALID_VALUE), "CUBLAS_STATUS_INVALID_VALUE") == 0,
          "cublasGetStatusName");

    /* misuse a GPU would crash on */
    expect_abort("GEMM with a host C", "cublasGemmEx: C", [&]() {
        std::vector<float> host(64);
        cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, 4, 3, 2, &one, A.p, CUDA_R_32F, 4, B.p, CUDA_R_32F, 2, &zero,
                     host.data(), CUDA_R_32F, 4, F, CUBLAS_GEMM_DEFAULT);
    });
    expect_abort("GEMM reading past B", "cublasGemmEx: B", [&]() {
        cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, 4, 40, 2, &one, A.p, CUDA_R_32F, 4, B.p, CUDA_R_32F, 2, &zero, C.p,
                     CUDA_R_32F, 1 * 4, F, CUBLAS_GEMM_DEFAULT);
    });
    expect_abort("GEMV with a host x", "cublasSgemv: x", [&]() {
        std::vector<float> host(8);
        cublasSgemv(h, CUBLAS_OP_N, 4, 3, &one, A.p, 4, host.data(), 1, &zero, C.p, 1);
    });
    expect_abort("destroyed cuBLAS handle", "cuBLAS handle", [&]() {
        cublasHandle_t dead;
        cublasCreate(&dead);
        cublasDestroy(dead);
        cublasSetStream(dead, nullptr);
    });
}

/* ================================================================================================
 * cuDNN
 * ================================================================================================ */

struct ConvCase {
    const char *name;
    int N, C, H, W, K, R, S, pad, stride, dil, groups;
    cudnnConvolutionMode_t mode;
    int OH() const { return (H + 2 * pad - ((R - 1) * dil + 1)) / stride + 1; }
    int OW() const { return (W + 2 * pad - ((S - 1) * dil + 1)) / stride + 1; }
    int Cg() const { return C / groups; }
};

/* Offsets of a logical element in each layout: tensors (n, c, h, w), filters (k, c, r, s). */
size_t tensor_at(cudnnTensorFormat_t f, int C, int H, int W, int n, int c, int h, int w)
{
    return f == CUDNN_TENSOR_NHWC ? (((size_t)n * H + h) * W + w) * C + c : (((size_t)n * C + c) * H + h) * W + w;
}

size_t filter_at(cudnnTensorFormat_t f, int C, int R, int S, int k, int c, int r, int s)
{
    return f == CUDNN_TENSOR_NHWC ? (((size_t)k * R + r) * S + s) * C + c : (((size_t)k * C + c) * R + r) * S + s;
}

/* Descriptors of one case in one layout (filters follow the tensors: NHWC/KRSC or NCHW/KCRS). */
struct ConvDescs {
    cudnnTensorDescriptor_t x = nullptr, y = nullptr;
    cudnnFilterDescriptor_t w = nullptr;
    cudnnConvolutionDescriptor_t c = nullptr;
    ConvDescs(const ConvCase &cc, cudnnTensorFormat_t f, cudnnMathType_t math, cudnnDataType_t data = CUDNN_DATA_FLOAT)
    {
        CK_CUDNN(cudnnCreateTensorDescriptor(&x));
        CK_CUDNN(cudnnCreateTensorDescriptor(&y));
        CK_CUDNN(cudnnCreateFilterDescriptor(&w));
        CK_CUDNN(cudnnCreateConvolutionDescriptor(&c));
        CK_CUDNN(cudnnSetTensor4dDescriptor(x, f, data, cc.N, cc.C, cc.H, cc.W));
        CK_CUDNN(cudnnSetTensor4dDescriptor(y, f, data, cc.N, cc.K, cc.OH(), cc.OW()));
        CK_CUDNN(cudnnSetFilter4dDescriptor(w, data, f, cc.K, cc.Cg(), cc.R, cc.S));
        CK_CUDNN(cudnnSetConvolution2dDescriptor(c, cc.pad, cc.pad, cc.stride, cc.stride, cc.dil, cc.dil, cc.mode,
                                                 CUDNN_DATA_FLOAT));
        CK_CUDNN(cudnnSetConvolutionGroupCount(c, cc.groups));
        CK_CUDNN(cudnnSetConvolutionMathType(c, math));
    }
    ~ConvDescs()
    {
        cudnnDestroyTensorDescriptor(x);
        cudnnDestroyTensorDescriptor(y);
        cudnnDestroyFilterDescriptor(w);
        cudnnDestroyConvolutionDescriptor(c);
    }
    ConvDescs(const ConvDescs &) = delete;
    ConvDescs &operator=(const ConvDescs &) = delete;
};

/* Logical (NCHW / KCRS ordered) data of one case. */
struct ConvData {
    std::vector<float> x, w, dy;
};

/* The three results of one case, back in logical order. */
struct ConvResults {
    std::vector<float> y, dx, dw;
};

/* The first successful algorithm of each direction's Find list (the fastest), workspace to match. */
ConvResults run_case(cudnnHandle_t h, const ConvCase &cc, cudnnTensorFormat_t f, const ConvData &d)
{
    ConvDescs ds(cc, f, CUDNN_FMA_MATH);
    const int OH = cc.OH(), OW = cc.OW(), Cg = cc.Cg();
    Dev x(d.x.size()), w(d.w.size()), dy(d.dy.size()), y(d.dy.size(), NAN), dx(d.x.size(), NAN), dw(d.w.size(), NAN);
    for (int n = 0; n < cc.N; n++)
        for (int c = 0; c < cc.C; c++)
            for (int i = 0; i < cc.H; i++)
                for (int j = 0; j < cc.W; j++)
                    x.p[tensor_at(f, cc.C, cc.H, cc.W, n, c, i, j)] =
                        d.x[tensor_at(CUDNN_TENSOR_NCHW, cc.C, cc.H, cc.W, n, c, i, j)];
    for (int n = 0; n < cc.N; n++)
        for (int k = 0; k < cc.K; k++)
            for (int i = 0; i < OH; i++)
                for (int j = 0; j < OW; j++)
                    dy.p[tensor_at(f, cc.K, OH, OW, n, k, i, j)] = d.dy[tensor_at(CUDNN_TENSOR_NCHW, cc.K, OH, OW, n, k, i, j)];
    for (int k = 0; k < cc.K; k++)
        for (int c = 0; c < Cg; c++)
            for (int r = 0; r < cc.R; r++)
                for (int s = 0; s < cc.S; s++)
                    w.p[filter_at(f, Cg, cc.R, cc.S, k, c, r, s)] = d.w[filter_at(CUDNN_TENSOR_NCHW, Cg, cc.R, cc.S, k, c, r, s)];

    const float one = 1.0f, zero = 0.0f;
    int n = 0;
    cudnnConvolutionFwdAlgoPerf_t fp[16];
    CK_CUDNN(cudnnFindConvolutionForwardAlgorithm(h, ds.x, ds.w, ds.c, ds.y, 16, &n, fp));
    cudnnConvolutionBwdDataAlgoPerf_t dp[16];
    CK_CUDNN(cudnnFindConvolutionBackwardDataAlgorithm(h, ds.w, ds.y, ds.c, ds.x, 16, &n, dp));
    cudnnConvolutionBwdFilterAlgoPerf_t wp[16];
    CK_CUDNN(cudnnFindConvolutionBackwardFilterAlgorithm(h, ds.x, ds.y, ds.c, ds.w, 16, &n, wp));
    CK_CUDNN(cudnnSetConvolutionMathType(ds.c, CUDNN_FMA_MATH)); /* exact, whatever was listed */
    Dev ws1(fp[0].memory / sizeof(float) + 1), ws2(dp[0].memory / sizeof(float) + 1), ws3(wp[0].memory / sizeof(float) + 1);
    CK_CUDNN(cudnnConvolutionForward(h, &one, ds.x, x.p, ds.w, w.p, ds.c, fp[0].algo, ws1.p, fp[0].memory, &zero, ds.y,
                                     y.p));
    CK_CUDNN(cudnnConvolutionBackwardData(h, &one, ds.w, w.p, ds.y, dy.p, ds.c, dp[0].algo, ws2.p, dp[0].memory, &zero,
                                          ds.x, dx.p));
    CK_CUDNN(cudnnConvolutionBackwardFilter(h, &one, ds.x, x.p, ds.y, dy.p, ds.c, wp[0].algo, ws3.p, wp[0].memory,
                                            &zero, ds.w, dw.p));
    sync();

    ConvResults out;
    out.y.resize(d.dy.size()), out.dx.resize(d.x.size()), out.dw.resize(d.w.size());
    for (int nn = 0; nn < cc.N; nn++)
        for (int k = 0; k < cc.K; k++)
            for (int i = 0; i < OH; i++)
                for (int j = 0; j < OW; j++)
                    out.y[tensor_at(CUDNN_TENSOR_NCHW, cc.K, OH, OW, nn, k, i, j)] = y.p[tensor_at(f, cc.K, OH, OW, nn, k, i, j)];
    for (int nn = 0; nn < cc.N; nn++)
        for (int c = 0; c < cc.C; c++)
            for (int i = 0; i < cc.H; i++)
                for (int j = 0; j < cc.W; j++)
                    out.dx[tensor_at(CUDNN_TENSOR_NCHW, cc.C, cc.H, cc.W, nn, c, i, j)] =
                        dx.p[tensor_at(f, cc.C, cc.H, cc.W, nn, c, i, j)];
    for (int k = 0; k < cc.K; k++)
        for (int c = 0; c < Cg; c++)
            for (int r = 0; r < cc.R; r++)
                for (int s = 0; s < cc.S; s++)
                    out.dw[filter_at(CUDNN_TENSOR_NCHW, Cg, cc.R, cc.S, k, c, r, s)] = dw.p[filter_at(f, Cg, cc.R, cc.S, k, c, r, s)];
    return out;
}

double dot(const std::vector<float> &a, const std::vector<float> &b)
{
    double s = 0.0;
    for (size_t i = 0; i < a.size(); i++)
        s += (double)a[i] * b[i];
    return s;
}

/* The documented definition on logical indices: cross-correlation, or convolution with the filter
 * rotated by 180 degrees. Counts the entries off by more than float rounding. */
int forward_mismatches(const ConvCase &cc, const ConvData &d, const std::vector<float> &y)
{
    const int OH = cc.OH(), OW = cc.OW(), Cg = cc.Cg(), Kg = cc.K / cc.groups;
    int bad = 0;
    for (int n = 0; n < cc.N; n++)
        for (int k = 0; k < cc.K; k++)
            for (int oh = 0; oh < OH; oh++)
                for (int ow = 0; ow < OW; ow++) {
                    double ref = 0.0, mag = 0.0;
                    for (int c = 0; c < Cg; c++)
                        for (int r = 0; r < cc.R; r++)
                            for (int s = 0; s < cc.S; s++) {
                                const int ih = oh * cc.stride - cc.pad + r * cc.dil;
                                const int iw = ow * cc.stride - cc.pad + s * cc.dil;
                                if (ih < 0 || ih >= cc.H || iw < 0 || iw >= cc.W)
                                    continue;
                                const int fr = cc.mode == CUDNN_CONVOLUTION ? cc.R - 1 - r : r;
                                const int fs = cc.mode == CUDNN_CONVOLUTION ? cc.S - 1 - s : s;
                                const double t =
                                    (double)d.x[tensor_at(CUDNN_TENSOR_NCHW, cc.C, cc.H, cc.W, n, (k / Kg) * Cg + c, ih, iw)] *
                                    d.w[filter_at(CUDNN_TENSOR_NCHW, Cg, cc.R, cc.S, k, c, fr, fs)];
                                ref += t, mag += fabs(t);
                            }
                    const float got = y[tensor_at(CUDNN_TENSOR_NCHW, cc.K, OH, OW, n, k, oh, ow)];
                    bad += !(fabs(got - ref) <= 1e-6 * mag + 1e-7);
                }
    return bad;
}

void test_conv_adjoint(cudnnHandle_t h)
{
    const ConvCase cases[] = {
        {"3x3 pad 1", 2, 5, 7, 6, 4, 3, 3, 1, 1, 1, 1, CUDNN_CROSS_CORRELATION},
        {"2x2 stride 2 (odd height)", 2, 4, 7, 6, 6, 2, 2, 0, 2, 1, 1, CUDNN_CROSS_CORRELATION},
        {"depthwise 3x3 groups=C", 2, 6, 5, 6, 6, 3, 3, 1, 1, 1, 6, CUDNN_CROSS_CORRELATION},
        {"3-channel input 3x3", 1, 3, 8, 5, 8, 3, 3, 1, 1, 1, 1, CUDNN_CROSS_CORRELATION},
        {"grouped dilated flipped 3x3", 2, 4, 9, 8, 6, 3, 3, 2, 1, 2, 2, CUDNN_CONVOLUTION},
        {"1x3 stride 2 pad 1", 1, 2, 6, 7, 3, 1, 3, 1, 2, 1, 1, CUDNN_CROSS_CORRELATION},
    };
    Rng rng{42};
    for (const ConvCase &cc : cases) {
        ConvData d;
        d.x.resize((size_t)cc.N * cc.C * cc.H * cc.W);
        d.w.resize((size_t)cc.K * cc.Cg() * cc.R * cc.S);
        d.dy.resize((size_t)cc.N * cc.K * cc.OH() * cc.OW());
        for (float &v : d.x) v = rng.next();
        for (float &v : d.w) v = rng.next();
        for (float &v : d.dy) v = rng.next();
        ConvResults res[2];
        const cudnnTensorFormat_t formats[2] = {CUDNN_TENSOR_NHWC, CUDNN_TENSOR_NCHW};
        for (int fi = 0; fi < 2; fi++) {
            const char *layout = fi == 0 ? "NHWC/KRSC" : "NCHW/KCRS";
            const ConvResults &r = res[fi] = run_case(h, cc, formats[fi], d);
            const double a = dot(r.y, d.dy), b = dot(d.x, r.dx), c = dot(d.w, r.dw);
            const double scale = fabs(a) + 1e-3;
            check(fabs(a - b) <= 1e-4 * scale && fabs(a - c) <= 1e-4 * scale,
                  "%s %s: <fwd(x),dy> = %.9g, <x,bwd_data(dy)> = %.9g, <w,bwd_filter(x,dy)> = %.9g", cc.name, layout, a,
                  b, c);
            const int bad = forward_mismatches(cc, d, r.y);
            check(bad == 0, "%s %s: %d forward outputs differ from the definition", cc.name, layout, bad);
        }
        /* the layout changes where values live, not what they are */
        check(res[0].y == res[1].y && res[0].dx == res[1].dx && res[0].dw == res[1].dw,
              "%s: NHWC/KRSC and NCHW/KCRS results differ", cc.name);
    }
}

/* Small cases worked out by hand. */
void test_conv_hand(cudnnHandle_t h)
{
    const float one = 1.0f, zero = 0.0f;
    const cudnnConvolutionFwdAlgo_t algo = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM; /* no workspace */
    {
        /* 3x3 input 1..9, 2x2 filter [[1,2],[3,4]], no padding */
        const ConvCase cc{"hand", 1, 1, 3, 3, 1, 2, 2, 0, 1, 1, 1, CUDNN_CROSS_CORRELATION};
        Dev x(9), w(4), y(4);
        for (int i = 0; i < 9; i++)
            x.p[i] = (float)(i + 1);
        for (int i = 0; i < 4; i++)
            w.p[i] = (float)(i + 1);
        const float xcorr[4] = {37, 47, 67, 77}, conv[4] = {23, 33, 53, 63};
        for (int flip = 0; flip < 2; flip++) {
            ConvCase c2 = cc;
            c2.mode = flip ? CUDNN_CONVOLUTION : CUDNN_CROSS_CORRELATION;
            ConvDescs ds(c2, CUDNN_TENSOR_NCHW, CUDNN_FMA_MATH);
            CK_CUDNN(cudnnConvolutionForward(h, &one, ds.x, x.p, ds.w, w.p, ds.c, algo, nullptr, 0, &zero, ds.y, y.p));
            sync();
            const float *want = flip ? conv : xcorr;
            check(memcmp(y.p, want, sizeof xcorr) == 0, "hand %s: got %g %g %g %g, expected %g %g %g %g",
                  flip ? "convolution" : "cross-correlation", y.p[0], y.p[1], y.p[2], y.p[3], want[0], want[1], want[2],
                  want[3]);
        }
    }
    {
        /* NHWC 2x2x2 input, KRSC 1x2x2x2 filter 1..8: 1*1 + 10*2 + 2*3 + 20*4 + 3*5 + 30*6 + 4*7 + 40*8 = 650
         * (read as NCHW/KCRS the same memory would give 730) */
        const ConvCase cc{"hand nhwc", 1, 2, 2, 2, 1, 2, 2, 0, 1, 1, 1, CUDNN_CROSS_CORRELATION};
        ConvDescs ds(cc, CUDNN_TENSOR_NHWC, CUDNN_FMA_MATH);
        Dev x(8), w(8), y(1);
        const float xv[8] = {1, 10, 2, 20, 3, 30, 4, 40};
        for (int i = 0; i < 8; i++)
            x.p[i] = xv[i], w.p[i] = (float)(i + 1);
        CK_CUDNN(cudnnConvolutionForward(h, &one, ds.x, x.p, ds.w, w.p, ds.c, algo, nullptr, 0, &zero, ds.y, y.p));
        sync();
        check(y.p[0] == 650.0f, "hand NHWC/KRSC: got %g, expected 650", y.p[0]);
    }
    {
        /* alpha/beta: y = 2 conv + 0.5 y0; beta 0 over NaN gives the plain result */
        const ConvCase cc{"blend", 1, 1, 3, 3, 1, 2, 2, 0, 1, 1, 1, CUDNN_CROSS_CORRELATION};
        ConvDescs ds(cc, CUDNN_TENSOR_NCHW, CUDNN_FMA_MATH);
        Dev x(9), w(4), y(4, NAN);
        for (int i = 0; i < 9; i++)
            x.p[i] = (float)(i + 1);
        for (int i = 0; i < 4; i++)
            w.p[i] = (float)(i + 1);
        CK_CUDNN(cudnnConvolutionForward(h, &one, ds.x, x.p, ds.w, w.p, ds.c, algo, nullptr, 0, &zero, ds.y, y.p));
        const float two = 2.0f, half = 0.5f;
        CK_CUDNN(cudnnConvolutionForward(h, &two, ds.x, x.p, ds.w, w.p, ds.c, algo, nullptr, 0, &half, ds.y, y.p));
        sync();
        check(y.p[0] == 2 * 37 + 18.5f && y.p[3] == 2 * 77 + 38.5f, "alpha 2 beta 0.5: got %g .. %g", y.p[0], y.p[3]);
    }
}

/* The descriptor's math type at the call decides how inputs are rounded. */
void test_conv_rounding(cudnnHandle_t h)
{
    const ConvCase cc{"1x1", 1, 4, 2, 2, 1, 1, 1, 0, 1, 1, 1, CUDNN_CROSS_CORRELATION};
    ConvDescs ds(cc, CUDNN_TENSOR_NHWC, CUDNN_FMA_MATH);
    Dev x(16, 1.0f + 0x1p-12f), w(4, 1.0f), y(4), ws(4096);
    x.p[12] = 7.0e4f; /* the last pixel: one channel beyond fp16's range */
    const float one = 1.0f, zero = 0.0f;
    const struct {
        cudnnMathType_t math;
        float plain, big;
    } cases[] = {
        {CUDNN_FMA_MATH, 4.0f + 0x1p-10f, 7.0e4f + 3.0f * (1.0f + 0x1p-12f)},
        {CUDNN_DEFAULT_MATH, 4.0f, 70016.0f + 3.0f}, /* 7e4 = 2^16 (1 + 2^-4 + 2^-8 + 2^-10 + 2^-11 + 2^-12):
                                                      * the dropped 2^-11 + 2^-12 round up to 70016 in TF32 */
        {CUDNN_TENSOR_OP_MATH, 4.0f, 70016.0f + 3.0f},
        {CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION, 4.0f, INFINITY},
    };
    for (const auto &c : cases) {
        CK_CUDNN(cudnnSetConvolutionMathType(ds.c, c.math));
        CK_CUDNN(cudnnConvolutionForward(h, &one, ds.x, x.p, ds.w, w.p, ds.c,
                                         CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM, ws.p, 4096 * sizeof(float),
                                         &zero, ds.y, y.p));
        sync();
        check(y.p[0] == c.plain && y.p[3] == c.big, "math type %d: got %a and %a, expected %a and %a", (int)c.math,
              (double)y.p[0], (double)y.p[3], (double)c.plain, (double)c.big);
    }

    /* queued work keeps what the call saw: math type, alpha, descriptors changed or gone before it runs */
    stub_defer(true);
    {
        ConvDescs late(cc, CUDNN_TENSOR_NHWC, CUDNN_FMA_MATH);
        float alpha = 1.0f;
        CK_CUDNN(cudnnConvolutionForward(h, &alpha, late.x, x.p, late.w, w.p, late.c,
                                         CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, nullptr, 0, &zero, late.y, y.p));
        alpha = 100.0f;
        CK_CUDNN(cudnnSetConvolutionMathType(late.c, CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION));
    } /* descriptors destroyed here, before the work runs */
    sync();
    stub_defer(false);
    check(y.p[0] == 4.0f + 0x1p-10f, "deferred forward: got %a, expected the FMA result with alpha 1", (double)y.p[0]);
}

/* bf16 tensors (float compute): values read exactly, the stored result rounded to nearest-even
 * bf16 in both directions, a NaN stays NaN. 1x1, three channels, three pixels, K = 1. */
uint16_t bf16_of(float v) /* exact bf16 values only */
{
    uint32_t u;
    memcpy(&u, &v, sizeof u);
    return (uint16_t)(u >> 16);
}

float float_of(uint16_t h)
{
    const uint32_t u = (uint32_t)h << 16;
    float v;
    memcpy(&v, &u, sizeof v);
    return v;
}

void test_conv_bf16(cudnnHandle_t h)
{
    const ConvCase cc{"bf16", 1, 3, 1, 3, 1, 1, 1, 0, 1, 1, 1, CUDNN_CROSS_CORRELATION};
    ConvDescs ds(cc, CUDNN_TENSOR_NHWC, CUDNN_TENSOR_OP_MATH, CUDNN_DATA_BFLOAT16);
    uint16_t *x, *w, *y;
    cudaMalloc((void **)&x, 9 * sizeof *x);
    cudaMalloc((void **)&w, 3 * sizeof *w);
    cudaMalloc((void **)&y, 3 * sizeof *y);
    const float a = 1.0f + 0x1p-7f, b = 1.0f + 3.0f * 0x1p-7f;
    /* pixel 0: 3 a = 3 + 3 * 2^-7, a tie between 3 + 2^-6 and 3 + 2^-5 (bf16 quantum 2^-6): even, up;
     * pixel 1: 2 a + b = 3 + 5 * 2^-7, a tie between 3 + 2^-5 and 3 + 3 * 2^-6: even, down; pixel 2: NaN */
    const float xv[9] = {a, a, a, a, a, b, NAN, 0.0f, 0.0f};
    for (int i = 0; i < 9; i++)
        x[i] = isnan(xv[i]) ? (uint16_t)0x7fc0 : bf16_of(xv[i]);
    for (int i = 0; i < 3; i++)
        w[i] = bf16_of(1.0f);
    const float one = 1.0f, zero = 0.0f;
    CK_CUDNN(cudnnConvolutionForward(h, &one, ds.x, x, ds.w, w, ds.c, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, nullptr,
                                     0, &zero, ds.y, y));
    sync();
    check(float_of(y[0]) == 3.0f + 0x1p-5f && float_of(y[1]) == 3.0f + 0x1p-5f && isnan(float_of(y[2])),
          "bf16 forward: got %a %a %a, expected 0x1.84p+1 twice and nan", (double)float_of(y[0]),
          (double)float_of(y[1]), (double)float_of(y[2]));
    /* backward data: dx[p][c] = w[c] dy[p] with w = (1, 2, 3), dy = a: 3 a ties up as above */
    for (int i = 0; i < 3; i++)
        w[i] = bf16_of((float)(i + 1)), y[i] = bf16_of(a);
    CK_CUDNN(cudnnConvolutionBackwardData(h, &one, ds.w, w, ds.y, y, ds.c, CUDNN_CONVOLUTION_BWD_DATA_ALGO_0, nullptr, 0,
                                          &zero, ds.x, x));
    sync();
    check(float_of(x[0]) == a && float_of(x[1]) == 2.0f * a && float_of(x[2]) == 3.0f + 0x1p-5f,
          "bf16 backward data: got %a %a %a", (double)float_of(x[0]), (double)float_of(x[1]), (double)float_of(x[2]));
    /* mixed data types are refused, as cuDNN documents */
    cudnnTensorDescriptor_t yf;
    CK_CUDNN(cudnnCreateTensorDescriptor(&yf));
    CK_CUDNN(cudnnSetTensor4dDescriptor(yf, CUDNN_TENSOR_NHWC, CUDNN_DATA_FLOAT, 1, 1, 1, 3));
    check(cudnnConvolutionForward(h, &one, ds.x, x, ds.w, w, ds.c, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, nullptr, 0,
                                  &zero, yf, y) == CUDNN_STATUS_BAD_PARAM,
          "bf16 input with a float output is BAD_PARAM");
    cudnnDestroyTensorDescriptor(yf);
    cudaFree(x), cudaFree(w), cudaFree(y);
}

/* Find / Get_v7 lists: shape, consistency with WorkspaceSize, and something every precision of
 * conv_cudnn.cu accepts. Prints the lists with -v. */
const char *math_name(cudnnMathType_t m)
{
    switch (m) {
    case CUDNN_DEFAULT_MATH: return "DEFAULT";
    case CUDNN_TENSOR_OP_MATH: return "TENSOR_OP";
    case CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION: return "ALLOW_CONVERSION";
    case CUDNN_FMA_MATH: return "FMA";
    }
    return "?";
}

/* conv_cudnn.cu's filter (math_allowed), per precision, mirrored to prove each finds an entry. */
bool accepted(int precision, cudnnMathType_t m)
{
    if (precision == 0) /* fp32 */
        return m == CUDNN_FMA_MATH || m == CUDNN_DEFAULT_MATH;
    if (precision == 1) /* tf32 */
        return m != CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION;
    return true;
}

template <class PerfT, class FindF, class GetF, class WsF>
void check_list(const char *dir, cudnnConvolutionDescriptor_t conv, cudnnMathType_t desc_math, FindF find, GetF get,
                WsF ws)
{
    PerfT p[16], q[16];
    int n = -1, nq = -1;
    CK_CUDNN(cudnnSetConvolutionMathType(conv, desc_math));
    CK_CUDNN(find(16, &n, p));
    CK_CUDNN(get(16, &nq, q));
    check(n > 1 && nq == n, "%s %s: Find returned %d entries, Get_v7 %d", dir, math_name(desc_math), n, nq);
    int ok = 0, with_ws = 0, unsorted = 0, ws_mismatch = 0;
    bool seen_fail = false, ok_after_fail = false;
    for (int i = 0; i < n; i++) {
        if (g_verbose)
            printf("  %-10s desc %-16s #%d algo %d status %d time %.4f ms memory %zu %s math %s\n", dir,
                   math_name(desc_math), i, (int)p[i].algo, (int)p[i].status, p[i].time, p[i].memory,
                   p[i].determinism == CUDNN_DETERMINISTIC ? "det" : "nondet", math_name(p[i].mathType));
        if (p[i].status != CUDNN_STATUS_SUCCESS) {
            seen_fail = true;
            continue;
        }
        ok_after_fail |= seen_fail;
        ok++;
        with_ws += p[i].memory > 0;
        unsorted += i > 0 && p[i - 1].status == CUDNN_STATUS_SUCCESS && p[i].time < p[i - 1].time;
        /* WorkspaceSize agrees with the list, under the listed math and under FMA */
        size_t bytes = 1;
        CK_CUDNN(cudnnSetConvolutionMathType(conv, p[i].mathType));
        ws_mismatch += ws(p[i].algo, &bytes) != CUDNN_STATUS_SUCCESS || bytes != p[i].memory;
        CK_CUDNN(cudnnSetConvolutionMathType(conv, CUDNN_FMA_MATH));
        ws_mismatch += ws(p[i].algo, &bytes) != CUDNN_STATUS_SUCCESS || bytes != p[i].memory;
        CK_CUDNN(cudnnSetConvolutionMathType(conv, desc_math));
    }
    check(ok >= 2 && with_ws >= 1 && unsorted == 0 && !ok_after_fail && ws_mismatch == 0,
          "%s %s: %d ok entries, %d with workspace, %d out of order, failures first %d, %d workspace mismatches", dir,
          math_name(desc_math), ok, with_ws, unsorted, (int)ok_after_fail, ws_mismatch);
    /* the precision that requests this math type finds an entry it accepts */
    const int precision = desc_math == CUDNN_FMA_MATH ? 0 : desc_math == CUDNN_DEFAULT_MATH ? 1 : 2;
    int acceptable = 0;
    for (int i = 0; i < n; i++)
        acceptable += p[i].status == CUDNN_STATUS_SUCCESS && accepted(precision, p[i].mathType);
    check(acceptable > 0, "%s %s: no entry the precision accepts", dir, math_name(desc_math));
    for (int i = 0; i < n; i++)
        check(q[i].algo == p[i].algo && q[i].mathType == p[i].mathType && q[i].memory == p[i].memory,
              "%s %s: Get_v7 entry %d differs from Find's", dir, math_name(desc_math), i);
    /* truncation to the requested count */
    int n1 = -1;
    CK_CUDNN(find(1, &n1, p));
    check(n1 == 1, "%s: requesting 1 algorithm returned %d", dir, n1);
}

void test_find_lists(cudnnHandle_t h)
{
    const ConvCase cases[] = {{"3x3", 2, 16, 16, 16, 16, 3, 3, 1, 1, 1, 1, CUDNN_CROSS_CORRELATION},
                              {"2x2/2", 2, 16, 16, 16, 32, 2, 2, 0, 2, 1, 1, CUDNN_CROSS_CORRELATION},
                              {"depthwise", 2, 16, 16, 16, 16, 3, 3, 1, 1, 1, 16, CUDNN_CROSS_CORRELATION}};
    const cudnnMathType_t maths[] = {CUDNN_FMA_MATH, CUDNN_DEFAULT_MATH, CUDNN_TENSOR_OP_MATH,
                                     CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION};
    for (const ConvCase &cc : cases) {
        if (g_verbose)
            printf("Find lists for %s (N=%d C=%d H=%d W=%d K=%d):\n", cc.name, cc.N, cc.C, cc.H, cc.W, cc.K);
        ConvDescs ds(cc, CUDNN_TENSOR_NHWC, CUDNN_FMA_MATH);
        for (cudnnMathType_t m : maths) {
            check_list<cudnnConvolutionFwdAlgoPerf_t>(
                "forward", ds.c, m,
                [&](int req, int *n, cudnnConvolutionFwdAlgoPerf_t *p) {
                    return cudnnFindConvolutionForwardAlgorithm(h, ds.x, ds.w, ds.c, ds.y, req, n, p);
                },
                [&](int req, int *n, cudnnConvolutionFwdAlgoPerf_t *p) {
                    return cudnnGetConvolutionForwardAlgorithm_v7(h, ds.x, ds.w, ds.c, ds.y, req, n, p);
                },
                [&](cudnnConvolutionFwdAlgo_t a, size_t *b) {
                    return cudnnGetConvolutionForwardWorkspaceSize(h, ds.x, ds.w, ds.c, ds.y, a, b);
                });
            check_list<cudnnConvolutionBwdDataAlgoPerf_t>(
                "bwd-data", ds.c, m,
                [&](int req, int *n, cudnnConvolutionBwdDataAlgoPerf_t *p) {
                    return cudnnFindConvolutionBackwardDataAlgorithm(h, ds.w, ds.y, ds.c, ds.x, req, n, p);
                },
                [&](int req, int *n, cudnnConvolutionBwdDataAlgoPerf_t *p) {
                    return cudnnGetConvolutionBackwardDataAlgorithm_v7(h, ds.w, ds.y, ds.c, ds.x, req, n, p);
                },
                [&](cudnnConvolutionBwdDataAlgo_t a, size_t *b) {
                    return cudnnGetConvolutionBackwardDataWorkspaceSize(h, ds.w, ds.y, ds.c, ds.x, a, b);
                });
            check_list<cudnnConvolutionBwdFilterAlgoPerf_t>(
                "bwd-filter", ds.c, m,
                [&](int req, int *n, cudnnConvolutionBwdFilterAlgoPerf_t *p) {
                    return cudnnFindConvolutionBackwardFilterAlgorithm(h, ds.x, ds.y, ds.c, ds.w, req, n, p);
                },
                [&](int req, int *n, cudnnConvolutionBwdFilterAlgoPerf_t *p) {
                    return cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, ds.x, ds.y, ds.c, ds.w, req, n, p);
                },
                [&](cudnnConvolutionBwdFilterAlgo_t a, size_t *b) {
                    return cudnnGetConvolutionBackwardFilterWorkspaceSize(h, ds.x, ds.y, ds.c, ds.w, a, b);
                });
        }
    }
}

void test_cudnn_validation(cudnnHandle_t h)
{
    const float one = 1.0f, zero = 0.0f;
    const ConvCase cc{"v", 1, 4, 6, 6, 4, 3, 3, 1, 1, 1, 1, CUDNN_CROSS_CORRELATION};
    ConvDescs ds(cc, CUDNN_TENSOR_NHWC, CUDNN_FMA_MATH);
    Dev x(144), w(144), y(144, 9.0f), ws(1 << 16);
    const cudnnConvolutionFwdAlgo_t precomp = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM;
    size_t need = 0;
    CK_CUDNN(cudnnGetConvolutionForwardWorkspaceSize(h, ds.x, ds.w, ds.c, ds.y, precomp, &need));
    check(need > 0, "IMPLICIT_PRECOMP_GEMM should need a workspace in the fake");
    auto fwd = [&](cudnnTensorDescriptor_t yd, cudnnConvolutionFwdAlgo_t algo, void *wsp, size_t wsb, const void *a) {
        return cudnnConvolutionForward(h, a, ds.x, x.p, ds.w, w.p, ds.c, algo, wsp, wsb, &zero, yd, y.p);
    };
    check(fwd(ds.y, precomp, ws.p, need - 1, &one) == CUDNN_STATUS_BAD_PARAM, "forward: workspace one byte short");
    check(fwd(ds.y, precomp, nullptr, need, &one) == CUDNN_STATUS_BAD_PARAM, "forward: NULL workspace of size > 0");
    check(fwd(ds.y, precomp, ws.p, need, nullptr) == CUDNN_STATUS_BAD_PARAM, "forward: NULL alpha");
    /* 15: past CUDNN_CONVOLUTION_FWD_ALGO_COUNT, yet inside the enum's value range (no UB in C++) */
    check(fwd(ds.y, (cudnnConvolutionFwdAlgo_t)15, ws.p, need, &one) == CUDNN_STATUS_BAD_PARAM,
          "forward: algorithm number out of range");
    check(fwd(ds.y, CUDNN_CONVOLUTION_FWD_ALGO_DIRECT, ws.p, 1 << 16, &one) == CUDNN_STATUS_NOT_SUPPORTED,
          "forward: DIRECT must be NOT_SUPPORTED");

    /* output descriptors that are not this convolution's output */
    cudnnTensorDescriptor_t bad;
    CK_CUDNN(cudnnCreateTensorDescriptor(&bad));
    check(fwd(bad, precomp, ws.p, need, &one) == CUDNN_STATUS_BAD_PARAM, "forward: output descriptor never set");
    CK_CUDNN(cudnnSetTensor4dDescriptor(bad, CUDNN_TENSOR_NHWC, CUDNN_DATA_FLOAT, 1, 4, 5, 6)); /* height 5, not 6 */
    check(fwd(bad, precomp, ws.p, need, &one) == CUDNN_STATUS_BAD_PARAM, "forward: output height mismatch");
    check(cudnnConvolutionBackwardData(h, &one, ds.w, w.p, bad, y.p, ds.c, CUDNN_CONVOLUTION_BWD_DATA_ALGO_0, nullptr, 0,
                                       &zero, ds.x, x.p) == CUDNN_STATUS_BAD_PARAM,
          "backward data: dy height mismatch");
    check(cudnnConvolutionBackwardFilter(h, &one, ds.x, x.p, bad, y.p, ds.c, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0, nullptr,
                                         0, &zero, ds.w, w.p) == CUDNN_STATUS_BAD_PARAM,
          "backward filter: dy height mismatch");
    int n = 0;
    cudnnConvolutionFwdAlgoPerf_t perf[16];
    check(cudnnFindConvolutionForwardAlgorithm(h, ds.x, ds.w, ds.c, bad, 16, &n, perf) == CUDNN_STATUS_BAD_PARAM,
          "Find: output height mismatch");
    CK_CUDNN(cudnnSetTensor4dDescriptor(bad, CUDNN_TENSOR_NHWC, CUDNN_DATA_FLOAT, 1, 5, 6, 6)); /* 5 channels, not 4 */
    check(fwd(bad, precomp, ws.p, need, &one) == CUDNN_STATUS_BAD_PARAM, "forward: output channel mismatch");
    CK_CUDNN(cudnnSetTensor4dDescriptor(bad, CUDNN_TENSOR_NHWC, CUDNN_DATA_FLOAT, 2, 4, 6, 6)); /* batch 2, not 1 */
    check(fwd(bad, precomp, ws.p, need, &one) == CUDNN_STATUS_BAD_PARAM, "forward: output batch mismatch");
    check(cudnnFindConvolutionForwardAlgorithm(h, ds.x, ds.w, ds.c, ds.y, 0, &n, perf) == CUDNN_STATUS_BAD_PARAM,
          "Find: requested count 0");
    CK_CUDNN(cudnnDestroyTensorDescriptor(bad));
    sync();
    int touched = 0;
    for (int i = 0; i < 144; i++)
        touched += y.p[i] != 9.0f;
    check(touched == 0, "failed convolutions wrote %d outputs", touched);

    /* groups: input channels must be filter channels x groups, output channels a multiple of groups */
    {
        ConvCase g = cc;
        g.groups = 2; /* descriptors built with C/2 = 2 filter channels */
        ConvDescs dg(g, CUDNN_TENSOR_NHWC, CUDNN_FMA_MATH);
        size_t b = 0;
        CK_CUDNN(cudnnGetConvolutionForwardWorkspaceSize(h, dg.x, dg.w, dg.c, dg.y, precomp, &b));
        CK_CUDNN(cudnnSetConvolutionGroupCount(dg.c, 3)); /* 4 channels do not split in 3 groups of 2 */
        check(cudnnGetConvolutionForwardWorkspaceSize(h, dg.x, dg.w, dg.c, dg.y, precomp, &b) == CUDNN_STATUS_BAD_PARAM,
              "channels not divisible by the group count");
        CK_CUDNN(cudnnSetConvolutionGroupCount(dg.c, 2));
        CK_CUDNN(cudnnSetFilter4dDescriptor(dg.w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NHWC, 3, 2, 3, 3)); /* K = 3 */
        CK_CUDNN(cudnnSetTensor4dDescriptor(dg.y, CUDNN_TENSOR_NHWC, CUDNN_DATA_FLOAT, 1, 3, 6, 6));
        check(cudnnGetConvolutionForwardWorkspaceSize(h, dg.x, dg.w, dg.c, dg.y, precomp, &b) == CUDNN_STATUS_BAD_PARAM,
              "output channels not divisible by the group count");
        check(cudnnGetConvolutionForwardWorkspaceSize(h, dg.x, dg.w, dg.c, dg.y, CUDNN_CONVOLUTION_FWD_ALGO_FFT, &b) ==
                  CUDNN_STATUS_BAD_PARAM,
              "validation comes before the algorithm check");
    }
    /* an algorithm the shape cannot run: FFT with stride 2 */
    {
        ConvCase s2 = cc;
        s2.stride = 2;
        ConvDescs d2(s2, CUDNN_TENSOR_NHWC, CUDNN_FMA_MATH);
        size_t b = 0;
        check(cudnnGetConvolutionForwardWorkspaceSize(h, d2.x, d2.w, d2.c, d2.y, CUDNN_CONVOLUTION_FWD_ALGO_FFT, &b) ==
                  CUDNN_STATUS_NOT_SUPPORTED,
              "FFT with stride 2 must be NOT_SUPPORTED");
    }
    /* descriptor setters */
    cudnnTensorDescriptor_t t;
    CK_CUDNN(cudnnCreateTensorDescriptor(&t));
    check(cudnnSetTensor4dDescriptor(t, CUDNN_TENSOR_NHWC, CUDNN_DATA_FLOAT, 0, 1, 1, 1) == CUDNN_STATUS_BAD_PARAM,
          "tensor with n = 0");
    /* 3 is within the enum's value range (no UB in C++) but names no layout */
    check(cudnnSetTensor4dDescriptor(t, (cudnnTensorFormat_t)3, CUDNN_DATA_FLOAT, 1, 1, 1, 1) == CUDNN_STATUS_BAD_PARAM,
          "tensor with an invalid format");
    check(cudnnSetTensor4dDescriptor(t, CUDNN_TENSOR_NHWC, CUDNN_DATA_FLOAT, 65536, 256, 256, 1) ==
              CUDNN_STATUS_NOT_SUPPORTED,
          "tensor of 2^32 elements");
    CK_CUDNN(cudnnDestroyTensorDescriptor(t));
    check(cudnnSetConvolution2dDescriptor(ds.c, 1, 1, 0, 1, 1, 1, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT) ==
              CUDNN_STATUS_BAD_PARAM,
          "convolution with stride 0");
    check(cudnnSetConvolution2dDescriptor(ds.c, -1, 1, 1, 1, 1, 1, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT) ==
              CUDNN_STATUS_BAD_PARAM,
          "convolution with negative padding");
    check(cudnnSetConvolutionGroupCount(ds.c, 0) == CUDNN_STATUS_BAD_PARAM, "group count 0");
    check(cudnnCreate(nullptr) == CUDNN_STATUS_BAD_PARAM, "cudnnCreate(NULL)");
    check(cudnnSetStream(nullptr, nullptr) == CUDNN_STATUS_BAD_PARAM, "cudnnSetStream(NULL handle)");
    check(cudnnDestroyTensorDescriptor(nullptr) == CUDNN_STATUS_SUCCESS, "destroying a NULL descriptor is a no-op");
    check(strcmp(cudnnGetErrorString(CUDNN_STATUS_BAD_PARAM), "CUDNN_STATUS_BAD_PARAM") == 0, "cudnnGetErrorString");
    /* half data: a valid descriptor the fake does not compute */
    {
        ConvDescs dh(cc, CUDNN_TENSOR_NHWC, CUDNN_FMA_MATH);
        CK_CUDNN(cudnnSetTensor4dDescriptor(dh.x, CUDNN_TENSOR_NHWC, CUDNN_DATA_HALF, 1, 4, 6, 6));
        size_t b = 0;
        check(cudnnGetConvolutionForwardWorkspaceSize(h, dh.x, dh.w, dh.c, dh.y, precomp, &b) == CUDNN_STATUS_BAD_PARAM,
              "mixed data types must be BAD_PARAM");
    }

    /* misuse a GPU would crash on */
    expect_abort("forward with a host x", "cudnnConvolutionForward: x", [&]() {
        std::vector<float> host(144);
        cudnnConvolutionForward(h, &one, ds.x, host.data(), ds.w, w.p, ds.c, precomp, ws.p, need, &zero, ds.y, y.p);
    });
    expect_abort("forward with a short y", "cudnnConvolutionForward: y", [&]() {
        Dev small(143);
        cudnnConvolutionForward(h, &one, ds.x, x.p, ds.w, w.p, ds.c, precomp, ws.p, need, &zero, ds.y, small.p);
    });
    expect_abort("workspace size larger than the buffer", "workSpace", [&]() {
        Dev tiny(1);
        cudnnConvolutionForward(h, &one, ds.x, x.p, ds.w, w.p, ds.c, precomp, tiny.p, need, &zero, ds.y, y.p);
    });
    expect_abort("backward filter with a host dw", "cudnnConvolutionBackwardFilter: dw", [&]() {
        std::vector<float> host(144);
        cudnnConvolutionBackwardFilter(h, &one, ds.x, x.p, ds.y, y.p, ds.c, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0, nullptr,
                                       0, &zero, ds.w, host.data());
    });
    expect_abort("destroyed descriptor", "destroyed", [&]() {
        cudnnTensorDescriptor_t dead;
        cudnnCreateTensorDescriptor(&dead);
        cudnnDestroyTensorDescriptor(dead);
        cudnnSetTensor4dDescriptor(dead, CUDNN_TENSOR_NHWC, CUDNN_DATA_FLOAT, 1, 1, 1, 1);
    });
}

} // namespace

int main(int argc, char **argv)
{
    g_verbose = argc > 1 && strcmp(argv[1], "-v") == 0;

    cublasHandle_t blas = nullptr;
    CK_CUBLAS(cublasCreate(&blas));
    CK_CUBLAS(cublasSetStream(blas, cudaStreamPerThread));
    cudaStream_t got = nullptr;
    CK_CUBLAS(cublasGetStream(blas, &got));
    check(got == cudaStreamPerThread, "cublasGetStream returns the stream set");
    test_gemm(blas);
    test_gemv(blas);
    test_gemm_rounding(blas);
    test_cublas_validation(blas);
    CK_CUBLAS(cublasDestroy(blas));

    cudnnHandle_t dnn = nullptr;
    CK_CUDNN(cudnnCreate(&dnn));
    CK_CUDNN(cudnnGetStream(dnn, &got));
    check(got == nullptr, "a new cuDNN handle uses the legacy default stream");
    CK_CUDNN(cudnnSetStream(dnn, cudaStreamLegacy));
    test_conv_hand(dnn);
    test_conv_adjoint(dnn);
    test_conv_rounding(dnn);
    test_conv_bf16(dnn);
    test_find_lists(dnn);
    test_cudnn_validation(dnn);
    CK_CUDNN(cudnnDestroy(dnn));

    printf("test_fakes: %d checks, %d failed\n", g_checks, g_failures);
    return g_failures ? 1 : 0;
}
