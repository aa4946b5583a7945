/* diffcr cudasim — a host implementation of the cuDNN calls the CUDA backend makes (cudnn.h): the
 * handle, 4-d tensor and filter descriptors, 2-d convolution descriptors, and the three
 * convolution directions with their Find / Get_v7 / WorkspaceSize queries.
 *
 * Like the real library, every call validates its arguments at once and returns cuDNN's status;
 * the arithmetic is queued on the handle's stream (dc_sim_enqueue) with a snapshot of the
 * descriptors, the scalars and the math type taken at the call, so it runs in stream order and
 * reads device memory when a GPU would. A device pointer that is not live device memory for the
 * whole extent the call touches is a crash on a GPU: dc_sim_fail.
 *
 * The "algorithms" are one direct loop per direction; what differs between them is what a caller
 * can observe: which shapes each supports, the workspace each needs (the call fails when given
 * less) and the time Find reports. Precision follows the descriptor's math type at the compute
 * call: inputs are rounded to TF32 (DEFAULT, TENSOR_OP), fp16 (TENSOR_OP_MATH_ALLOW_CONVERSION)
 * or kept (FMA) before they are multiplied; sums are float (fakes_README.md). bf16 tensors (the
 * pseudo-bf16 configuration: bf16 data, float compute) are read exactly, their products are exact
 * in float, and the result is rounded to bf16 when it is stored. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <algorithm>
#include <mutex>
#include <unordered_set>
#include <vector>

#include "cudnn.h"
#include "fake_arith.h"
#include "sim_runtime.h"

/* --- the objects behind the opaque handles (the header leaves them incomplete, as cuDNN does) --- */

struct cudnnContext {
    cudaStream_t stream = nullptr; /* a new handle uses the legacy default stream */
};

struct cudnnTensorStruct {
    bool set = false; /* created descriptors are unusable until a Set call */
    cudnnTensorFormat_t format = CUDNN_TENSOR_NCHW;
    cudnnDataType_t type = CUDNN_DATA_FLOAT;
    int n = 0, c = 0, h = 0, w = 0;
};

struct cudnnFilterStruct {
    bool set = false;
    cudnnDataType_t type = CUDNN_DATA_FLOAT;
    cudnnTensorFormat_t format = CUDNN_TENSOR_NCHW; /* NCHW: KCRS memory order, NHWC: KRSC */
    int k = 0, c = 0, r = 0, s = 0;                 /* c: input channels per group */
};

struct cudnnConvolutionStruct {
    bool set = false;
    int pad_h = 0, pad_w = 0, stride_h = 0, stride_w = 0, dil_h = 0, dil_w = 0;
    cudnnConvolutionMode_t mode = CUDNN_CROSS_CORRELATION;
    cudnnDataType_t compute = CUDNN_DATA_FLOAT;
    int groups = 1;                       /* cuDNN's defaults for a new descriptor */
    cudnnMathType_t math = CUDNN_DEFAULT_MATH;
};

namespace {

using namespace fake;

/* --- live objects ---------------------------------------------------------------------------------
 * A handle or descriptor that was destroyed (or never created) is a use-after-free in the real
 * library, so it is fatal here. One lock covers the registries and the objects' fields: cuDNN does
 * not promise thread safety for a descriptor being set while used, but the simulator must not add
 * races of its own. */

std::mutex g_lock;
std::unordered_set<const void *> g_live;

void register_object(const void *p)
{
    std::lock_guard<std::mutex> guard(g_lock);
    g_live.insert(p);
}

/* Removes p from the live set; false when p is NULL. Dies on a pointer that is not live. */
bool unregister_object(const void *p, const char *call)
{
    if (!p)
        return false;
    std::lock_guard<std::mutex> guard(g_lock);
    if (!g_live.erase(p))
        dc_sim_fail("%s: %p was already destroyed or never created", call, p);
    return true;
}

/* A copy of the object behind p taken under the lock; false when p is NULL. Dies on a pointer that
 * is not live. */
template <class T> bool snapshot(const T *p, T *out, const char *call, const char *arg)
{
    if (!p)
        return false;
    std::lock_guard<std::mutex> guard(g_lock);
    if (!g_live.count(p))
        dc_sim_fail("%s: %s = %p was destroyed or never created", call, arg, (const void *)p);
    *out = *p;
    return true;
}

/* Runs f on the object behind p under the lock; BAD_PARAM for NULL. Dies on a dead pointer. */
template <class T, class F> cudnnStatus_t update(T *p, const char *call, F f)
{
    if (!p)
        return CUDNN_STATUS_BAD_PARAM;
    std::lock_guard<std::mutex> guard(g_lock);
    if (!g_live.count(p))
        dc_sim_fail("%s: %p was destroyed or never created", call, (const void *)p);
    return f(*p);
}

template <class T> cudnnStatus_t create_object(T **out)
{
    if (!out)
        return CUDNN_STATUS_BAD_PARAM;
    T *p = new T;
    register_object(p);
    *out = p;
    return CUDNN_STATUS_SUCCESS;
}

template <class T> cudnnStatus_t destroy_object(T *p, const char *call)
{
    if (unregister_object(p, call))
        delete p; /* queued work holds copies, never the descriptor itself */
    return CUDNN_STATUS_SUCCESS; /* destroying NULL is a no-op */
}

/* --- enum checks ------------------------------------------------------------------------------------ */

bool valid_data_type(cudnnDataType_t t)
{
    switch (t) {
    case CUDNN_DATA_FLOAT:
    case CUDNN_DATA_DOUBLE:
    case CUDNN_DATA_HALF:
    case CUDNN_DATA_INT8:
    case CUDNN_DATA_INT32:
    case CUDNN_DATA_UINT8:
    case CUDNN_DATA_BFLOAT16:
    case CUDNN_DATA_INT64: return true;
    }
    return false;
}

bool valid_format(cudnnTensorFormat_t f) { return f == CUDNN_TENSOR_NCHW || f == CUDNN_TENSOR_NHWC; }

bool valid_math(cudnnMathType_t m)
{
    return m == CUDNN_DEFAULT_MATH || m == CUDNN_TENSOR_OP_MATH || m == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION ||
           m == CUDNN_FMA_MATH;
}

/* cuDNN's 4-d descriptor checks: positive sizes, at most 2^31 - 1 elements (NOT_SUPPORTED past it),
 * a plain layout for the fake's only data layouts (NCHW_VECT_C is for packed int8 vectors). */
cudnnStatus_t check_4d(cudnnTensorFormat_t format, cudnnDataType_t type, int a, int b, int c, int d)
{
    if (!valid_data_type(type) || (format != CUDNN_TENSOR_NCHW_VECT_C && !valid_format(format)))
        return CUDNN_STATUS_BAD_PARAM;
    if (format == CUDNN_TENSOR_NCHW_VECT_C)
        return CUDNN_STATUS_BAD_PARAM; /* only with the int8x4 / int8x32 vector types */
    if (a <= 0 || b <= 0 || c <= 0 || d <= 0)
        return CUDNN_STATUS_BAD_PARAM;
    if ((int64_t)a * b * c * d > INT32_MAX)
        return CUDNN_STATUS_NOT_SUPPORTED;
    return CUDNN_STATUS_SUCCESS;
}

/* --- convolution geometry ------------------------------------------------------------------------- */

/* Element strides of a 4-d tensor (n, c, h, w) or filter (k, c, r, s) in its memory layout. */
struct Strides {
    size_t a, b, c, d;
};

Strides packed_strides(cudnnTensorFormat_t f, int B, int C, int D)
{
    /* NCHW / KCRS: the second dimension outside the spatial ones; NHWC / KRSC: innermost */
    if (f == CUDNN_TENSOR_NHWC)
        return Strides{(size_t)C * D * B, 1, (size_t)D * B, (size_t)B};
    return Strides{(size_t)B * C * D, (size_t)C * D, (size_t)D, 1};
}

inline size_t at(const Strides &s, int a, int b, int c, int d)
{
    return (size_t)a * s.a + (size_t)b * s.b + (size_t)c * s.c + (size_t)d * s.d;
}

/* One convolution's sizes, independent of the direction it is run in. */
struct Geometry {
    int N, C, H, W;  /* input x (forward) / dx */
    int K, OH, OW;   /* output y / dy */
    int Cg, Kg, G;   /* per-group channel counts, groups */
    int R, S;        /* filter taps */
    int pad_h, pad_w, stride_h, stride_w, dil_h, dil_w;
    bool flip;       /* CUDNN_CONVOLUTION: the filter is applied rotated by 180 degrees */
    bool bf16;       /* bf16 data (float compute); else float data */
    Strides xs, ys, ws;
    size_t x_elems, y_elems, w_elems;

    /* Memory tap of the logical tap r / s (convolution mode flips them). */
    int tap_r(int r) const { return flip ? R - 1 - r : r; }
    int tap_s(int s) const { return flip ? S - 1 - s : s; }
    double macs() const { return (double)N * K * OH * OW * Cg * R * S; }
};

/* The checks every convolution call makes on its descriptors, then the geometry. x / y are the
 * input / output of the forward convolution whatever the direction. */
cudnnStatus_t make_geometry(const char *call, cudnnTensorDescriptor_t xd, cudnnFilterDescriptor_t wd,
                            cudnnConvolutionDescriptor_t cd, cudnnTensorDescriptor_t yd, Geometry *g,
                            cudnnConvolutionStruct *conv_out)
{
    cudnnTensorStruct x, y;
    cudnnFilterStruct w;
    cudnnConvolutionStruct cv;
    if (!snapshot(xd, &x, call, "input tensor descriptor") || !snapshot(yd, &y, call, "output tensor descriptor") ||
        !snapshot(wd, &w, call, "filter descriptor") || !snapshot(cd, &cv, call, "convolution descriptor"))
        return CUDNN_STATUS_BAD_PARAM;
    if (!x.set || !y.set || !w.set || !cv.set)
        return CUDNN_STATUS_BAD_PARAM;
    if (x.type != y.type || x.type != w.type)
        return CUDNN_STATUS_BAD_PARAM; /* documented: non-matching data types */
    if ((x.type != CUDNN_DATA_FLOAT && x.type != CUDNN_DATA_BFLOAT16) || cv.compute != CUDNN_DATA_FLOAT)
        return CUDNN_STATUS_NOT_SUPPORTED; /* the fake computes fp32 and bf16 data in fp32 only */
    /* channels per group must agree, and the output channels must split into the groups */
    if (x.c != w.c * cv.groups || w.k % cv.groups != 0)
        return CUDNN_STATUS_BAD_PARAM;
    const int ext_h = (w.r - 1) * cv.dil_h + 1, ext_w = (w.s - 1) * cv.dil_w + 1; /* dilated filter */
    if (x.h + 2 * cv.pad_h < ext_h || x.w + 2 * cv.pad_w < ext_w)
        return CUDNN_STATUS_BAD_PARAM; /* filter larger than the padded input */
    const int OH = (x.h + 2 * cv.pad_h - ext_h) / cv.stride_h + 1;
    const int OW = (x.w + 2 * cv.pad_w - ext_w) / cv.stride_w + 1;
    if (y.n != x.n || y.c != w.k || y.h != OH || y.w != OW)
        return CUDNN_STATUS_BAD_PARAM; /* the output is not what this convolution produces */

    g->N = x.n, g->C = x.c, g->H = x.h, g->W = x.w;
    g->K = w.k, g->OH = OH, g->OW = OW;
    g->G = cv.groups, g->Cg = w.c, g->Kg = w.k / cv.groups;
    g->R = w.r, g->S = w.s;
    g->pad_h = cv.pad_h, g->pad_w = cv.pad_w, g->stride_h = cv.stride_h, g->stride_w = cv.stride_w;
    g->dil_h = cv.dil_h, g->dil_w = cv.dil_w;
    g->flip = cv.mode == CUDNN_CONVOLUTION;
    g->bf16 = x.type == CUDNN_DATA_BFLOAT16;
    g->xs = packed_strides(x.format, x.c, x.h, x.w);
    g->ys = packed_strides(y.format, y.c, y.h, y.w);
    g->ws = packed_strides(w.format, w.c, w.r, w.s);
    g->x_elems = (size_t)x.n * x.c * x.h * x.w;
    g->y_elems = (size_t)y.n * y.c * y.h * y.w;
    g->w_elems = (size_t)w.k * w.c * w.r * w.s;
    if (conv_out)
        *conv_out = cv;
    return CUDNN_STATUS_SUCCESS;
}

/* --- the algorithm model ----------------------------------------------------------------------------
 * What a caller can see of cuDNN's algorithms: which shapes each runs, its workspace, its speed,
 * whether it has tensor-core variants and whether it is deterministic. Numbers are plausible,
 * not measured; they only need to be consistent (Find's memory == WorkspaceSize's answer). */

enum class Dir { fwd, bwd_data, bwd_filter };

int algo_count(Dir d)
{
    switch (d) {
    case Dir::fwd: return CUDNN_CONVOLUTION_FWD_ALGO_COUNT;
    case Dir::bwd_data: return CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT;
    default: return CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT;
    }
}

enum class Kind { implicit, precomp, gemm, fft, winograd_nonfused, none };

/* The fake's classification of each algorithm number; `none` is never supported (DIRECT,
 * fused WINOGRAD, the FFT_TILING variants). */
Kind kind_of(Dir d, int a)
{
    switch (d) {
    case Dir::fwd:
        switch (a) {
        case CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM: return Kind::implicit;
        case CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM: return Kind::precomp;
        case CUDNN_CONVOLUTION_FWD_ALGO_GEMM: return Kind::gemm;
        case CUDNN_CONVOLUTION_FWD_ALGO_FFT: return Kind::fft;
        case CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED: return Kind::winograd_nonfused;
        default: return Kind::none;
        }
    case Dir::bwd_data:
        switch (a) {
        case CUDNN_CONVOLUTION_BWD_DATA_ALGO_0: return Kind::implicit;
        case CUDNN_CONVOLUTION_BWD_DATA_ALGO_1: return Kind::precomp;
        case CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT: return Kind::fft;
        case CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD_NONFUSED: return Kind::winograd_nonfused;
        default: return Kind::none;
        }
    default:
        switch (a) {
        case CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0: return Kind::implicit;
        case CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1: return Kind::precomp;
        case CUDNN_CONVOLUTION_BWD_FILTER_ALGO_3: return Kind::gemm;
        case CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT: return Kind::fft;
        case CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD_NONFUSED: return Kind::winograd_nonfused;
        default: return Kind::none;
        }
    }
}

bool algo_supported(Dir d, int a, const Geometry &g)
{
    const bool dense = g.G == 1, unit = g.stride_h == 1 && g.stride_w == 1 && g.dil_h == 1 && g.dil_w == 1;
    switch (kind_of(d, a)) {
    case Kind::implicit:
    case Kind::precomp: return true;
    case Kind::gemm: return dense;
    case Kind::fft: return dense && unit && g.pad_h < g.R && g.pad_w < g.S;
    case Kind::winograd_nonfused: return dense && unit && g.R == 3 && g.S == 3;
    default: return false;
    }
}

/* Tensor-core variants exist for the GEMM-like kernels; FFT and GEMM run on FMA units only. */
bool algo_has_tensor_op(Dir d, int a)
{
    const Kind k = kind_of(d, a);
    return k == Kind::implicit || k == Kind::precomp || k == Kind::winograd_nonfused;
}

cudnnDeterminism_t algo_determinism(Dir d, int a)
{
    /* documented as non-deterministic: they sum with atomics */
    if ((d == Dir::bwd_data && a == CUDNN_CONVOLUTION_BWD_DATA_ALGO_0) ||
        (d == Dir::bwd_filter && (a == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0 || a == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_3)))
        return CUDNN_NON_DETERMINISTIC;
    return CUDNN_DETERMINISTIC;
}

size_t round_up(size_t v, size_t to) { return (v + to - 1) / to * to; }

/* Workspace bytes of a supported algorithm: a function of the algorithm and the shape only, so
 * WorkspaceSize, Find, Get_v7 and the compute calls always agree. */
size_t algo_workspace(Dir d, int a, const Geometry &g)
{
    const size_t f = sizeof(float);
    const size_t filter = (size_t)g.K * g.Cg * g.R * g.S;
    switch (kind_of(d, a)) {
    case Kind::implicit: return 0;
    case Kind::precomp: /* forward: index tables; backward: a re-laid-out filter / partial sums */
        if (d == Dir::fwd)
            return round_up(sizeof(int) * ((size_t)g.Cg * g.R * g.S + (size_t)g.OH * g.OW), 256);
        return round_up(f * filter * (d == Dir::bwd_filter ? 4 : 1), 256);
    case Kind::gemm: /* forward: one image's im2col matrix; filter ALGO_3: index tables */
        if (d == Dir::fwd)
            return round_up(f * g.C * g.R * g.S * g.OH * g.OW, 256);
        return round_up(sizeof(int) * (size_t)g.OH * g.OW, 256);
    case Kind::fft: { /* complex spectra of inputs, outputs and filters at the padded size */
        const size_t hf = (size_t)g.H + 2 * g.pad_h, wf = ((size_t)g.W + 2 * g.pad_w) / 2 + 1; /* real-input FFT */
        return round_up(2 * f * hf * wf * ((size_t)g.N * (g.C + g.K) + (size_t)g.C * g.K), 256);
    }
    case Kind::winograd_nonfused: { /* F(4x4, 3x3): 6x6 transformed tiles */
        const size_t tiles = (size_t)((g.OH + 3) / 4) * ((g.OW + 3) / 4);
        return round_up(36 * f * (tiles * g.N * (g.C + g.K) + (size_t)g.C * g.K), 256);
    }
    default: return 0;
    }
}

/* Relative cost of an algorithm's kernels (precomputed implicit GEMM = 1). */
double algo_cost(Dir d, int a)
{
    switch (kind_of(d, a)) {
    case Kind::precomp: return 1.0;
    case Kind::winograd_nonfused: return 1.15;
    case Kind::implicit: return 1.3;
    case Kind::gemm: return d == Dir::fwd ? 1.7 : 1.4;
    case Kind::fft: return 2.2;
    default: return 10.0;
    }
}

/* Speed-up of a math type for an algorithm: tensor cores only help kernels that have them. */
double math_speed(cudnnMathType_t m, bool tensor_op)
{
    if (!tensor_op || m == CUDNN_FMA_MATH)
        return 1.0;
    switch (m) {
    case CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION: return 0.22; /* fp16 tensor cores */
    case CUDNN_TENSOR_OP_MATH: return 0.42;                  /* TF32 tensor cores */
    default: return 0.45;                                    /* DEFAULT: TF32 on Ampere+ */
    }
}

/* A Find time in milliseconds: ~20 TFLOP/s of FMA plus a launch overhead. */
float algo_time(Dir d, int a, cudnnMathType_t m, const Geometry &g)
{
    return (float)(0.004 + 2.0 * g.macs() / 20e12 * 1e3 * algo_cost(d, a) * math_speed(m, algo_has_tensor_op(d, a)));
}

/* One row of a Find / Get_v7 answer before it is copied into the direction's perf struct. */
struct Perf {
    int algo;
    cudnnStatus_t status;
    float time;
    size_t memory;
    cudnnDeterminism_t determinism;
    cudnnMathType_t math;
};

/* The list Find and Get_v7 return. As documented for Find, each algorithm is tried with the
 * descriptor's math type and with CUDNN_DEFAULT_MATH; an algorithm without tensor-core kernels is
 * tried under tensor-op maths only as DEFAULT_MATH. Successful entries come fastest first, then
 * one NOT_SUPPORTED entry per algorithm this shape cannot run (as cuDNN reports them). */
std::vector<Perf> algo_list(Dir d, const Geometry &g, cudnnMathType_t desc_math, bool timed)
{
    std::vector<cudnnMathType_t> maths{desc_math};
    if (desc_math != CUDNN_DEFAULT_MATH)
        maths.push_back(CUDNN_DEFAULT_MATH);
    std::vector<Perf> ok, unsupported;
    for (cudnnMathType_t m : maths)
        for (int a = 0; a < algo_count(d); a++) {
            if (!algo_supported(d, a, g))
                continue;
            const bool tensor_math = m == CUDNN_TENSOR_OP_MATH || m == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION;
            if (tensor_math && !algo_has_tensor_op(d, a))
                continue;
            ok.push_back(Perf{a, CUDNN_STATUS_SUCCESS, algo_time(d, a, m, g), algo_workspace(d, a, g),
                              algo_determinism(d, a), m});
        }
    std::stable_sort(ok.begin(), ok.end(), [](const Perf &p, const Perf &q) { return p.time < q.time; });
    if (!timed)
        for (Perf &p : ok)
            p.time = -1.0f; /* the heuristics do not run anything */
    for (int a = 0; a < algo_count(d); a++)
        if (!algo_supported(d, a, g))
            unsupported.push_back(Perf{a, CUDNN_STATUS_NOT_SUPPORTED, -1.0f, 0, algo_determinism(d, a), desc_math});
    ok.insert(ok.end(), unsupported.begin(), unsupported.end());
    return ok;
}

template <class PerfT, class AlgoT>
cudnnStatus_t report(const std::vector<Perf> &list, int requested, int *returned, PerfT *out)
{
    const int n = std::min<int>(requested, (int)list.size());
    for (int i = 0; i < n; i++) {
        PerfT p;
        memset(&p, 0, sizeof p);
        p.algo = (AlgoT)list[(size_t)i].algo;
        p.status = list[(size_t)i].status;
        p.time = list[(size_t)i].time;
        p.memory = list[(size_t)i].memory;
        p.determinism = list[(size_t)i].determinism;
        p.mathType = list[(size_t)i].math;
        out[i] = p;
    }
    *returned = n;
    return CUDNN_STATUS_SUCCESS;
}

/* Find and Get_v7 for any direction: descriptor checks, then the list. */
template <class PerfT, class AlgoT>
cudnnStatus_t query_algos(const char *call, Dir d, bool timed, cudnnHandle_t handle, cudnnTensorDescriptor_t x,
                          cudnnFilterDescriptor_t w, cudnnConvolutionDescriptor_t cv, cudnnTensorDescriptor_t y,
                          int requested, int *returned, PerfT *out)
{
    cudnnContext h;
    if (!snapshot(handle, &h, call, "handle"))
        return CUDNN_STATUS_BAD_PARAM;
    if (requested < 1 || !returned || !out)
        return CUDNN_STATUS_BAD_PARAM;
    Geometry g;
    cudnnConvolutionStruct conv;
    const cudnnStatus_t s = make_geometry(call, x, w, cv, y, &g, &conv);
    if (s != CUDNN_STATUS_SUCCESS)
        return s;
    return report<PerfT, AlgoT>(algo_list(d, g, conv.math, timed), requested, returned, out);
}

/* The WorkspaceSize queries: BAD_PARAM for an algorithm number outside the enum, NOT_SUPPORTED
 * for one this shape cannot run. */
cudnnStatus_t query_workspace(const char *call, Dir d, cudnnHandle_t handle, cudnnTensorDescriptor_t x,
                              cudnnFilterDescriptor_t w, cudnnConvolutionDescriptor_t cv, cudnnTensorDescriptor_t y,
                              int algo, size_t *bytes)
{
    cudnnContext h;
    if (!snapshot(handle, &h, call, "handle") || !bytes)
        return CUDNN_STATUS_BAD_PARAM;
    Geometry g;
    const cudnnStatus_t s = make_geometry(call, x, w, cv, y, &g, nullptr);
    if (s != CUDNN_STATUS_SUCCESS)
        return s;
    if (algo < 0 || algo >= algo_count(d))
        return CUDNN_STATUS_BAD_PARAM;
    if (!algo_supported(d, algo, g))
        return CUDNN_STATUS_NOT_SUPPORTED;
    *bytes = algo_workspace(d, algo, g);
    return CUDNN_STATUS_SUCCESS;
}

/* --- the arithmetic -------------------------------------------------------------------------------- */

Rounding rounding_of(cudnnMathType_t m)
{
    switch (m) {
    case CUDNN_FMA_MATH: return Rounding::exact;
    case CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION: return Rounding::fp16;
    default: return Rounding::tf32; /* DEFAULT and TENSOR_OP on fp32 data: TF32 tensor cores */
    }
}

/* Everything one queued convolution needs, by value. x, w, y are the forward roles; `out` is the
 * one written (y, x or w by direction). */
struct ConvJob {
    Geometry g;
    Rounding rounding;
    float alpha, beta;
    const float *x, *w, *y; /* for bf16 data (g.bf16) these hold bf16 values: see run_bf16 */
    float *out;
    void *workspace;
    size_t workspace_bytes;
};

/* A copy of the filter in logical tap order (convolution mode's flip undone), laid out RSCK
 * ([r][s][c][k], for the forward pass) or RSKC (backward data), so that the innermost loops
 * below read it contiguously whatever the filter format. */
enum class TapOrder { rsck, rskc };

std::vector<float> filter_taps(const Geometry &g, const float *w, TapOrder order)
{
    std::vector<float> t((size_t)g.R * g.S * g.Cg * g.K);
    for (int k = 0; k < g.K; k++)
        for (int c = 0; c < g.Cg; c++)
            for (int r = 0; r < g.R; r++)
                for (int s = 0; s < g.S; s++) {
                    const size_t rs = (size_t)r * g.S + s;
                    const size_t i = order == TapOrder::rsck ? (rs * g.Cg + c) * g.K + k : (rs * g.K + k) * g.Cg + c;
                    t[i] = w[at(g.ws, k, c, g.tap_r(r), g.tap_s(s))];
                }
    return t;
}

/* y[n][k][oh][ow] = sum over taps (r, s), then the group's channels c, of x * w. All K outputs of
 * a pixel are summed side by side (independent sums the compiler can interleave); each one adds
 * its terms in the order (r, s, c). */
void run_forward(const ConvJob &j)
{
    const Geometry &g = j.g;
    std::vector<float> xb, wb;
    const float *x = rounded_inputs(j.x, g.x_elems, j.rounding, xb);
    const std::vector<float> taps = filter_taps(g, rounded_inputs(j.w, g.w_elems, j.rounding, wb), TapOrder::rsck);
    std::vector<float> acc((size_t)g.K);
    for (int n = 0; n < g.N; n++)
        for (int oh = 0; oh < g.OH; oh++)
            for (int ow = 0; ow < g.OW; ow++) {
                std::fill(acc.begin(), acc.end(), 0.0f);
                for (int r = 0; r < g.R; r++) {
                    const int ih = oh * g.stride_h - g.pad_h + r * g.dil_h;
                    if (ih < 0 || ih >= g.H)
                        continue;
                    for (int s = 0; s < g.S; s++) {
                        const int iw = ow * g.stride_w - g.pad_w + s * g.dil_w;
                        if (iw < 0 || iw >= g.W)
                            continue;
                        const float *xp = x + at(g.xs, n, 0, ih, iw);
                        const float *tp = &taps[((size_t)r * g.S + s) * g.Cg * g.K];
                        for (int grp = 0; grp < g.G; grp++) {
                            const int c0 = grp * g.Cg, k0 = grp * g.Kg;
                            float *ak = &acc[(size_t)k0];
                            for (int c = 0; c < g.Cg; c++) {
                                const float xv = xp[(size_t)(c0 + c) * g.xs.b];
                                axpy(ak, tp + (size_t)c * g.K + k0, xv, g.Kg);
                            }
                        }
                    }
                }
                for (int k = 0; k < g.K; k++)
                    blend(j.out + at(g.ys, n, k, oh, ow), acc[(size_t)k], j.alpha, j.beta);
            }
}

/* dx[n][c][ih][iw] = sum over the taps (r, s) that reach (ih, iw), then the group's output
 * channels k, of dy * w: gathered, so each dx element is written once. All C sums of a pixel run
 * side by side; each adds its terms in the order (r, s, k). */
void run_backward_data(const ConvJob &j)
{
    const Geometry &g = j.g;
    std::vector<float> yb, wb;
    const float *dy = rounded_inputs(j.y, g.y_elems, j.rounding, yb);
    const std::vector<float> taps = filter_taps(g, rounded_inputs(j.w, g.w_elems, j.rounding, wb), TapOrder::rskc);
    std::vector<float> acc((size_t)g.C);
    for (int n = 0; n < g.N; n++)
        for (int ih = 0; ih < g.H; ih++)
            for (int iw = 0; iw < g.W; iw++) {
                std::fill(acc.begin(), acc.end(), 0.0f);
                for (int r = 0; r < g.R; r++) {
                    const int th = ih + g.pad_h - r * g.dil_h; /* = oh * stride_h */
                    if (th < 0 || th % g.stride_h != 0 || th / g.stride_h >= g.OH)
                        continue;
                    const int oh = th / g.stride_h;
                    for (int s = 0; s < g.S; s++) {
                        const int tw = iw + g.pad_w - s * g.dil_w;
                        if (tw < 0 || tw % g.stride_w != 0 || tw / g.stride_w >= g.OW)
                            continue;
                        const int ow = tw / g.stride_w;
                        const float *dyp = dy + at(g.ys, n, 0, oh, ow);
                        const float *tp = &taps[((size_t)r * g.S + s) * g.K * g.Cg];
                        for (int grp = 0; grp < g.G; grp++) {
                            const int c0 = grp * g.Cg, k0 = grp * g.Kg;
                            float *ac = &acc[(size_t)c0];
                            for (int kl = 0; kl < g.Kg; kl++) {
                                const float dv = dyp[(size_t)(k0 + kl) * g.ys.b];
                                axpy(ac, tp + (size_t)(k0 + kl) * g.Cg, dv, g.Cg);
                            }
                        }
                    }
                }
                for (int c = 0; c < g.C; c++)
                    blend(j.out + at(g.xs, n, c, ih, iw), acc[(size_t)c], j.alpha, j.beta);
            }
}

/* dw[k][c][r][s] = sum over images and output pixels of dy * x. Sums are kept in a scratch laid
 * out [k][r][s][c] (contiguous in c like NHWC x) and blended into dw at the end; each element
 * still adds its terms in one fixed order (n, oh, ow). */
void run_backward_filter(const ConvJob &j)
{
    const Geometry &g = j.g;
    std::vector<float> xb, yb;
    const float *x = rounded_inputs(j.x, g.x_elems, j.rounding, xb);
    const float *dy = rounded_inputs(j.y, g.y_elems, j.rounding, yb);
    std::vector<float> acc((size_t)g.K * g.R * g.S * g.Cg, 0.0f);
    for (int n = 0; n < g.N; n++)
        for (int oh = 0; oh < g.OH; oh++)
            for (int ow = 0; ow < g.OW; ow++)
                for (int k = 0; k < g.K; k++) {
                    const float d = dy[at(g.ys, n, k, oh, ow)];
                    const int c0 = (k / g.Kg) * g.Cg;
                    for (int r = 0; r < g.R; r++) {
                        const int ih = oh * g.stride_h - g.pad_h + r * g.dil_h;
                        if (ih < 0 || ih >= g.H)
                            continue;
                        for (int s = 0; s < g.S; s++) {
                            const int iw = ow * g.stride_w - g.pad_w + s * g.dil_w;
                            if (iw < 0 || iw >= g.W)
                                continue;
                            const float *xp = x + at(g.xs, n, c0, ih, iw);
                            float *ap = &acc[(((size_t)k * g.R + r) * g.S + s) * g.Cg];
                            if (g.xs.b == 1) /* NHWC: the channels are contiguous */
                                axpy(ap, xp, d, g.Cg);
                            else
                                for (int c = 0; c < g.Cg; c++)
                                    ap[c] += xp[(size_t)c * g.xs.b] * d;
                        }
                    }
                }
    for (int k = 0; k < g.K; k++)
        for (int r = 0; r < g.R; r++)
            for (int s = 0; s < g.S; s++)
                for (int c = 0; c < g.Cg; c++)
                    blend(j.out + at(g.ws, k, c, g.tap_r(r), g.tap_s(s)),
                          acc[(((size_t)k * g.R + r) * g.S + s) * g.Cg + c], j.alpha, j.beta);
}

void run_float(Dir d, const ConvJob &j)
{
    switch (d) {
    case Dir::fwd: run_forward(j); break;
    case Dir::bwd_data: run_backward_data(j); break;
    case Dir::bwd_filter: run_backward_filter(j); break;
    }
}

std::vector<float> widen(const void *p, size_t n)
{
    std::vector<float> v(n);
    const uint16_t *h = static_cast<const uint16_t *>(p);
    for (size_t i = 0; i < n; i++)
        v[i] = bf16_value(h[i]);
    return v;
}

/* bf16 data: the same loops on exact float copies, the result stored rounded to bf16 (cuDNN
 * blends alpha/beta in float before it stores, so the old output is read widened). */
void run_bf16(Dir d, const ConvJob &j)
{
    const Geometry &g = j.g;
    std::vector<float> x = widen(j.x, g.x_elems), w = widen(j.w, g.w_elems), y = widen(j.y, g.y_elems);
    ConvJob f = j;
    f.rounding = Rounding::exact; /* a bf16 x bf16 product is exact in float */
    f.x = x.data(), f.w = w.data(), f.y = y.data();
    std::vector<float> &out = d == Dir::fwd ? y : d == Dir::bwd_data ? x : w;
    f.out = out.data();
    run_float(d, f);
    uint16_t *dst = reinterpret_cast<uint16_t *>(j.out);
    for (size_t i = 0; i < out.size(); i++)
        dst[i] = bf16_bits(out[i]);
}

void run(Dir d, const ConvJob &j)
{
    /* A real algorithm scribbles over its workspace: a caller that shares it with live data, or
     * hands it to two streams at once, sees the damage. */
    if (j.workspace_bytes)
        memset(j.workspace, 0xff, j.workspace_bytes);
    if (j.g.bf16)
        run_bf16(d, j);
    else
        run_float(d, j);
}

const char *math_name(cudnnMathType_t m)
{
    switch (m) {
    case CUDNN_DEFAULT_MATH: return "DEFAULT";
    case CUDNN_TENSOR_OP_MATH: return "TENSOR_OP";
    case CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION: return "TENSOR_OP_ALLOW_CONVERSION";
    case CUDNN_FMA_MATH: return "FMA";
    }
    return "?";
}

/* DIFFCR_CUDASIM_TRACE_LIBS=1: one line per compute call on stderr (which algorithm and math the
 * caller chose, with how much workspace), to see what a backend's algorithm search picked. */
void trace_call(const char *call, int algo, const cudnnConvolutionStruct &cv, const Geometry &g, size_t need,
                size_t given)
{
    static const bool on = [] {
        const char *e = getenv("DIFFCR_CUDASIM_TRACE_LIBS");
        return e && *e && strcmp(e, "0") != 0;
    }();
    if (on)
        fprintf(stderr,
                "cudasim: %s algo %d math %s workspace %zu of %zu bytes: N=%d C=%d %dx%d -> K=%d %dx%d, %dx%d "
                "stride %d pad %d dilation %d groups %d%s\n",
                call, algo, math_name(cv.math), need, given, g.N, g.C, g.H, g.W, g.K, g.OH, g.OW, g.R, g.S, g.stride_h,
                g.pad_h, g.dil_h, g.G, g.flip ? " (convolution mode)" : "");
}

/* The pointer arguments of one compute call, in the forward roles, with their names for messages. */
struct ConvArgs {
    const void *x, *w, *y;
    void *out;
    const char *x_name, *w_name, *y_name;
};

/* The three compute calls: checks at the call (cuDNN's statuses), then the work on the stream. */
cudnnStatus_t launch(const char *call, Dir d, cudnnHandle_t handle, const void *alpha, const void *beta,
                     cudnnTensorDescriptor_t xd, cudnnFilterDescriptor_t wd, cudnnConvolutionDescriptor_t cd,
                     cudnnTensorDescriptor_t yd, int algo, void *workspace, size_t workspace_bytes,
                     const ConvArgs &args)
{
    cudnnContext h;
    if (!snapshot(handle, &h, call, "handle"))
        return CUDNN_STATUS_BAD_PARAM;
    Geometry g;
    cudnnConvolutionStruct conv;
    const cudnnStatus_t s = make_geometry(call, xd, wd, cd, yd, &g, &conv);
    if (s != CUDNN_STATUS_SUCCESS)
        return s;
    if (!alpha || !beta || !args.x || !args.w || !args.y)
        return CUDNN_STATUS_BAD_PARAM;
    if (algo < 0 || algo >= algo_count(d))
        return CUDNN_STATUS_BAD_PARAM;
    if (!algo_supported(d, algo, g))
        return CUDNN_STATUS_NOT_SUPPORTED;
    const size_t need = algo_workspace(d, algo, g);
    if (workspace_bytes < need || (need > 0 && !workspace))
        return CUDNN_STATUS_BAD_PARAM; /* less workspace than this algorithm needs */

    const size_t elem = g.bf16 ? sizeof(uint16_t) : sizeof(float);
    need_device(args.x, g.x_elems * elem, call, args.x_name);
    need_device(args.w, g.w_elems * elem, call, args.w_name);
    need_device(args.y, g.y_elems * elem, call, args.y_name);
    need_device(workspace, need, call, "workSpace");
    trace_call(call, algo, conv, g, need, workspace_bytes);

    ConvJob j;
    j.g = g;
    j.rounding = rounding_of(conv.math); /* the math type set when the call is made */
    memcpy(&j.alpha, alpha, sizeof j.alpha); /* float data: float scaling factors, read now */
    memcpy(&j.beta, beta, sizeof j.beta);
    j.x = static_cast<const float *>(args.x);
    j.w = static_cast<const float *>(args.w);
    j.y = static_cast<const float *>(args.y);
    j.out = static_cast<float *>(args.out);
    j.workspace = workspace, j.workspace_bytes = need;
    dc_sim_enqueue(h.stream, [d, j]() { run(d, j); });
    return CUDNN_STATUS_SUCCESS;
}

} // namespace

/* --- the API ---------------------------------------------------------------------------------------- */

extern "C" {

const char *cudnnGetErrorString(cudnnStatus_t status)
{
    switch (status) {
    case CUDNN_STATUS_SUCCESS: return "CUDNN_STATUS_SUCCESS";
    case CUDNN_STATUS_NOT_INITIALIZED: return "CUDNN_STATUS_NOT_INITIALIZED";
    case CUDNN_STATUS_SUBLIBRARY_VERSION_MISMATCH: return "CUDNN_STATUS_SUBLIBRARY_VERSION_MISMATCH";
    case CUDNN_STATUS_BAD_PARAM: return "CUDNN_STATUS_BAD_PARAM";
    case CUDNN_STATUS_INVALID_VALUE: return "CUDNN_STATUS_INVALID_VALUE";
    case CUDNN_STATUS_BAD_PARAM_NULL_POINTER: return "CUDNN_STATUS_BAD_PARAM_NULL_POINTER";
    case CUDNN_STATUS_BAD_PARAM_MISALIGNED_POINTER: return "CUDNN_STATUS_BAD_PARAM_MISALIGNED_POINTER";
    case CUDNN_STATUS_BAD_PARAM_OUT_OF_BOUND: return "CUDNN_STATUS_BAD_PARAM_OUT_OF_BOUND";
    case CUDNN_STATUS_BAD_PARAM_SIZE_INSUFFICIENT: return "CUDNN_STATUS_BAD_PARAM_SIZE_INSUFFICIENT";
    case CUDNN_STATUS_BAD_PARAM_SHAPE_MISMATCH: return "CUDNN_STATUS_BAD_PARAM_SHAPE_MISMATCH";
    case CUDNN_STATUS_NOT_SUPPORTED: return "CUDNN_STATUS_NOT_SUPPORTED";
    case CUDNN_STATUS_NOT_SUPPORTED_SHAPE: return "CUDNN_STATUS_NOT_SUPPORTED_SHAPE";
    case CUDNN_STATUS_NOT_SUPPORTED_DATA_TYPE: return "CUDNN_STATUS_NOT_SUPPORTED_DATA_TYPE";
    case CUDNN_STATUS_NOT_SUPPORTED_LAYOUT: return "CUDNN_STATUS_NOT_SUPPORTED_LAYOUT";
    case CUDNN_STATUS_ARCH_MISMATCH: return "CUDNN_STATUS_NOT_SUPPORTED_ARCH_MISMATCH";
    case CUDNN_STATUS_INTERNAL_ERROR: return "CUDNN_STATUS_INTERNAL_ERROR";
    case CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED: return "CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED";
    case CUDNN_STATUS_INTERNAL_ERROR_DEVICE_ALLOCATION_FAILED:
        return "CUDNN_STATUS_INTERNAL_ERROR_DEVICE_ALLOCATION_FAILED";
    case CUDNN_STATUS_MAPPING_ERROR: return "CUDNN_STATUS_INTERNAL_ERROR_TEXTURE_CREATION_FAILED";
    case CUDNN_STATUS_EXECUTION_FAILED: return "CUDNN_STATUS_EXECUTION_FAILED";
    }
    return "CUDNN_STATUS_UNKNOWN";
}

cudnnStatus_t cudnnCreate(cudnnHandle_t *handle) { return create_object(handle); }

cudnnStatus_t cudnnDestroy(cudnnHandle_t handle)
{
    if (!handle)
        return CUDNN_STATUS_BAD_PARAM;
    return destroy_object(handle, "cudnnDestroy");
}

cudnnStatus_t cudnnSetStream(cudnnHandle_t handle, cudaStream_t streamId)
{
    /* NULL, cudaStreamLegacy and cudaStreamPerThread are all valid and passed through unchanged */
    return update(handle, "cudnnSetStream", [&](cudnnContext &h) {
        h.stream = streamId;
        return CUDNN_STATUS_SUCCESS;
    });
}

cudnnStatus_t cudnnGetStream(cudnnHandle_t handle, cudaStream_t *streamId)
{
    if (!streamId)
        return CUDNN_STATUS_BAD_PARAM;
    return update(handle, "cudnnGetStream", [&](cudnnContext &h) {
        *streamId = h.stream;
        return CUDNN_STATUS_SUCCESS;
    });
}

cudnnStatus_t cudnnCreateTensorDescriptor(cudnnTensorDescriptor_t *tensorDesc) { return create_object(tensorDesc); }

cudnnStatus_t cudnnDestroyTensorDescriptor(cudnnTensorDescriptor_t tensorDesc)
{
    return destroy_object(tensorDesc, "cudnnDestroyTensorDescriptor");
}

cudnnStatus_t cudnnSetTensor4dDescriptor(cudnnTensorDescriptor_t tensorDesc, cudnnTensorFormat_t format,
                                         cudnnDataType_t dataType, int n, int c, int h, int w)
{
    const cudnnStatus_t s = check_4d(format, dataType, n, c, h, w);
    return update(tensorDesc, "cudnnSetTensor4dDescriptor", [&](cudnnTensorStruct &t) {
        if (s != CUDNN_STATUS_SUCCESS)
            return s;
        t.set = true, t.format = format, t.type = dataType;
        t.n = n, t.c = c, t.h = h, t.w = w;
        return CUDNN_STATUS_SUCCESS;
    });
}

cudnnStatus_t cudnnCreateFilterDescriptor(cudnnFilterDescriptor_t *filterDesc) { return create_object(filterDesc); }

cudnnStatus_t cudnnDestroyFilterDescriptor(cudnnFilterDescriptor_t filterDesc)
{
    return destroy_object(filterDesc, "cudnnDestroyFilterDescriptor");
}

cudnnStatus_t cudnnSetFilter4dDescriptor(cudnnFilterDescriptor_t filterDesc, cudnnDataType_t dataType,
                                         cudnnTensorFormat_t format, int k, int c, int h, int w)
{
    const cudnnStatus_t s = check_4d(format, dataType, k, c, h, w);
    return update(filterDesc, "cudnnSetFilter4dDescriptor", [&](cudnnFilterStruct &f) {
        if (s != CUDNN_STATUS_SUCCESS)
            return s;
        f.set = true, f.type = dataType, f.format = format;
        f.k = k, f.c = c, f.r = h, f.s = w;
        return CUDNN_STATUS_SUCCESS;
    });
}

cudnnStatus_t cudnnCreateConvolutionDescriptor(cudnnConvolutionDescriptor_t *convDesc)
{
    return create_object(convDesc);
}

cudnnStatus_t cudnnDestroyConvolutionDescriptor(cudnnConvolutionDescriptor_t convDesc)
{
    return destroy_object(convDesc, "cudnnDestroyConvolutionDescriptor");
}

cudnnStatus_t cudnnSetConvolution2dDescriptor(cudnnConvolutionDescriptor_t convDesc, int pad_h, int pad_w, int u,
                                              int v, int dilation_h, int dilation_w, cudnnConvolutionMode_t mode,
                                              cudnnDataType_t computeType)
{
    const bool ok = pad_h >= 0 && pad_w >= 0 && u > 0 && v > 0 && dilation_h > 0 && dilation_w > 0 &&
                    (mode == CUDNN_CONVOLUTION || mode == CUDNN_CROSS_CORRELATION) && valid_data_type(computeType);
    return update(convDesc, "cudnnSetConvolution2dDescriptor", [&](cudnnConvolutionStruct &cv) {
        if (!ok)
            return CUDNN_STATUS_BAD_PARAM;
        cv.set = true; /* group count and math type keep their values */
        cv.pad_h = pad_h, cv.pad_w = pad_w, cv.stride_h = u, cv.stride_w = v;
        cv.dil_h = dilation_h, cv.dil_w = dilation_w;
        cv.mode = mode, cv.compute = computeType;
        return CUDNN_STATUS_SUCCESS;
    });
}

cudnnStatus_t cudnnSetConvolutionGroupCount(cudnnConvolutionDescriptor_t convDesc, int groupCount)
{
    return update(convDesc, "cudnnSetConvolutionGroupCount", [&](cudnnConvolutionStruct &cv) {
        if (groupCount < 1)
            return CUDNN_STATUS_BAD_PARAM;
        cv.groups = groupCount;
        return CUDNN_STATUS_SUCCESS;
    });
}

cudnnStatus_t cudnnSetConvolutionMathType(cudnnConvolutionDescriptor_t convDesc, cudnnMathType_t mathType)
{
    return update(convDesc, "cudnnSetConvolutionMathType", [&](cudnnConvolutionStruct &cv) {
        if (!valid_math(mathType))
            return CUDNN_STATUS_BAD_PARAM;
        cv.math = mathType;
        return CUDNN_STATUS_SUCCESS;
    });
}

cudnnStatus_t cudnnGetConvolutionMathType(cudnnConvolutionDescriptor_t convDesc, cudnnMathType_t *mathType)
{
    if (!mathType)
        return CUDNN_STATUS_BAD_PARAM;
    return update(convDesc, "cudnnGetConvolutionMathType", [&](cudnnConvolutionStruct &cv) {
        *mathType = cv.math;
        return CUDNN_STATUS_SUCCESS;
    });
}

/* --- forward ---------------------------------------------------------------------------------------- */

cudnnStatus_t cudnnGetConvolutionForwardAlgorithm_v7(cudnnHandle_t handle, const cudnnTensorDescriptor_t srcDesc,
                                                     const cudnnFilterDescriptor_t filterDesc,
                                                     const cudnnConvolutionDescriptor_t convDesc,
                                                     const cudnnTensorDescriptor_t destDesc,
                                                     const int requestedAlgoCount, int *returnedAlgoCount,
                                                     cudnnConvolutionFwdAlgoPerf_t *perfResults)
{
    return query_algos<cudnnConvolutionFwdAlgoPerf_t, cudnnConvolutionFwdAlgo_t>(
        "cudnnGetConvolutionForwardAlgorithm_v7", Dir::fwd, false, handle, srcDesc, filterDesc, convDesc, destDesc,
        requestedAlgoCount, returnedAlgoCount, perfResults);
}

cudnnStatus_t cudnnFindConvolutionForwardAlgorithm(cudnnHandle_t handle, const cudnnTensorDescriptor_t xDesc,
                                                   const cudnnFilterDescriptor_t wDesc,
                                                   const cudnnConvolutionDescriptor_t convDesc,
                                                   const cudnnTensorDescriptor_t yDesc, const int requestedAlgoCount,
                                                   int *returnedAlgoCount, cudnnConvolutionFwdAlgoPerf_t *perfResults)
{
    return query_algos<cudnnConvolutionFwdAlgoPerf_t, cudnnConvolutionFwdAlgo_t>(
        "cudnnFindConvolutionForwardAlgorithm", Dir::fwd, true, handle, xDesc, wDesc, convDesc, yDesc,
        requestedAlgoCount, returnedAlgoCount, perfResults);
}

cudnnStatus_t cudnnGetConvolutionForwardWorkspaceSize(cudnnHandle_t handle, const cudnnTensorDescriptor_t xDesc,
                                                      const cudnnFilterDescriptor_t wDesc,
                                                      const cudnnConvolutionDescriptor_t convDesc,
                                                      const cudnnTensorDescriptor_t yDesc,
                                                      cudnnConvolutionFwdAlgo_t algo, size_t *sizeInBytes)
{
    return query_workspace("cudnnGetConvolutionForwardWorkspaceSize", Dir::fwd, handle, xDesc, wDesc, convDesc, yDesc,
                           (int)algo, sizeInBytes);
}

cudnnStatus_t cudnnConvolutionForward(cudnnHandle_t handle, const void *alpha, const cudnnTensorDescriptor_t xDesc,
                                      const void *x, const cudnnFilterDescriptor_t wDesc, const void *w,
                                      const cudnnConvolutionDescriptor_t convDesc, cudnnConvolutionFwdAlgo_t algo,
                                      void *workSpace, size_t workSpaceSizeInBytes, const void *beta,
                                      const cudnnTensorDescriptor_t yDesc, void *y)
{
    const ConvArgs args{x, w, y, y, "x", "w", "y"};
    return launch("cudnnConvolutionForward", Dir::fwd, handle, alpha, beta, xDesc, wDesc, convDesc, yDesc, (int)algo,
                  workSpace, workSpaceSizeInBytes, args);
}

/* --- backward data ---------------------------------------------------------------------------------- */

cudnnStatus_t cudnnFindConvolutionBackwardDataAlgorithm(cudnnHandle_t handle, const cudnnFilterDescriptor_t wDesc,
                                                        const cudnnTensorDescriptor_t dyDesc,
                                                        const cudnnConvolutionDescriptor_t convDesc,
                                                        const cudnnTensorDescriptor_t dxDesc,
                                                        const int requestedAlgoCount, int *returnedAlgoCount,
                                                        cudnnConvolutionBwdDataAlgoPerf_t *perfResults)
{
    return query_algos<cudnnConvolutionBwdDataAlgoPerf_t, cudnnConvolutionBwdDataAlgo_t>(
        "cudnnFindConvolutionBackwardDataAlgorithm", Dir::bwd_data, true, handle, dxDesc, wDesc, convDesc, dyDesc,
        requestedAlgoCount, returnedAlgoCount, perfResults);
}

cudnnStatus_t cudnnGetConvolutionBackwardDataAlgorithm_v7(cudnnHandle_t handle,
                                                          const cudnnFilterDescriptor_t filterDesc,
                                                          const cudnnTensorDescriptor_t diffDesc,
                                                          const cudnnConvolutionDescriptor_t convDesc,
                                                          const cudnnTensorDescriptor_t gradDesc,
                                                          const int requestedAlgoCount, int *returnedAlgoCount,
                                                          cudnnConvolutionBwdDataAlgoPerf_t *perfResults)
{
    return query_algos<cudnnConvolutionBwdDataAlgoPerf_t, cudnnConvolutionBwdDataAlgo_t>(
        "cudnnGetConvolutionBackwardDataAlgorithm_v7", Dir::bwd_data, false, handle, gradDesc, filterDesc, convDesc,
        diffDesc, requestedAlgoCount, returnedAlgoCount, perfResults);
}

cudnnStatus_t cudnnGetConvolutionBackwardDataWorkspaceSize(cudnnHandle_t handle, const cudnnFilterDescriptor_t wDesc,
                                                           const cudnnTensorDescriptor_t dyDesc,
                                                           const cudnnConvolutionDescriptor_t convDesc,
                                                           const cudnnTensorDescriptor_t dxDesc,
                                                           cudnnConvolutionBwdDataAlgo_t algo, size_t *sizeInBytes)
{
    return query_workspace("cudnnGetConvolutionBackwardDataWorkspaceSize", Dir::bwd_data, handle, dxDesc, wDesc,
                           convDesc, dyDesc, (int)algo, sizeInBytes);
}

cudnnStatus_t cudnnConvolutionBackwardData(cudnnHandle_t handle, const void *alpha, const cudnnFilterDescriptor_t wDesc,
                                           const void *w, const cudnnTensorDescriptor_t dyDesc, const void *dy,
                                           const cudnnConvolutionDescriptor_t convDesc,
                                           cudnnConvolutionBwdDataAlgo_t algo, void *workSpace,
                                           size_t workSpaceSizeInBytes, const void *beta,
                                           const cudnnTensorDescriptor_t dxDesc, void *dx)
{
    const ConvArgs args{dx, w, dy, dx, "dx", "w", "dy"};
    return launch("cudnnConvolutionBackwardData", Dir::bwd_data, handle, alpha, beta, dxDesc, wDesc, convDesc, dyDesc,
                  (int)algo, workSpace, workSpaceSizeInBytes, args);
}

/* --- backward filter -------------------------------------------------------------------------------- */

cudnnStatus_t cudnnFindConvolutionBackwardFilterAlgorithm(cudnnHandle_t handle, const cudnnTensorDescriptor_t xDesc,
                                                          const cudnnTensorDescriptor_t dyDesc,
                                                          const cudnnConvolutionDescriptor_t convDesc,
                                                          const cudnnFilterDescriptor_t dwDesc,
                                                          const int requestedAlgoCount, int *returnedAlgoCount,
                                                          cudnnConvolutionBwdFilterAlgoPerf_t *perfResults)
{
    return query_algos<cudnnConvolutionBwdFilterAlgoPerf_t, cudnnConvolutionBwdFilterAlgo_t>(
        "cudnnFindConvolutionBackwardFilterAlgorithm", Dir::bwd_filter, true, handle, xDesc, dwDesc, convDesc, dyDesc,
        requestedAlgoCount, returnedAlgoCount, perfResults);
}

cudnnStatus_t cudnnGetConvolutionBackwardFilterAlgorithm_v7(cudnnHandle_t handle,
                                                            const cudnnTensorDescriptor_t srcDesc,
                                                            const cudnnTensorDescriptor_t diffDesc,
                                                            const cudnnConvolutionDescriptor_t convDesc,
                                                            const cudnnFilterDescriptor_t gradDesc,
                                                            const int requestedAlgoCount, int *returnedAlgoCount,
                                                            cudnnConvolutionBwdFilterAlgoPerf_t *perfResults)
{
    return query_algos<cudnnConvolutionBwdFilterAlgoPerf_t, cudnnConvolutionBwdFilterAlgo_t>(
        "cudnnGetConvolutionBackwardFilterAlgorithm_v7", Dir::bwd_filter, false, handle, srcDesc, gradDesc, convDesc,
        diffDesc, requestedAlgoCount, returnedAlgoCount, perfResults);
}

cudnnStatus_t cudnnGetConvolutionBackwardFilterWorkspaceSize(cudnnHandle_t handle,
                                                             const cudnnTensorDescriptor_t xDesc,
                                                             const cudnnTensorDescriptor_t dyDesc,
                                                             const cudnnConvolutionDescriptor_t convDesc,
                                                             const cudnnFilterDescriptor_t gradDesc,
                                                             cudnnConvolutionBwdFilterAlgo_t algo, size_t *sizeInBytes)
{
    return query_workspace("cudnnGetConvolutionBackwardFilterWorkspaceSize", Dir::bwd_filter, handle, xDesc, gradDesc,
                           convDesc, dyDesc, (int)algo, sizeInBytes);
}

cudnnStatus_t cudnnConvolutionBackwardFilter(cudnnHandle_t handle, const void *alpha,
                                             const cudnnTensorDescriptor_t xDesc, const void *x,
                                             const cudnnTensorDescriptor_t dyDesc, const void *dy,
                                             const cudnnConvolutionDescriptor_t convDesc,
                                             cudnnConvolutionBwdFilterAlgo_t algo, void *workSpace,
                                             size_t workSpaceSizeInBytes, const void *beta,
                                             const cudnnFilterDescriptor_t dwDesc, void *dw)
{
    const ConvArgs args{x, dw, dy, dw, "x", "dw", "dy"};
    return launch("cudnnConvolutionBackwardFilter", Dir::bwd_filter, handle, alpha, beta, xDesc, dwDesc, convDesc,
                  dyDesc, (int)algo, workSpace, workSpaceSizeInBytes, args);
}

} // extern "C"
