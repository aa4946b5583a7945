/* diffcr — fully connected layers (the time-embedding MLP and each block's time projection), ops.h.
 *
 * The products go to OpenBLAS's sgemm: the shapes are tiny (B x 256 x 256) but BLAS is already linked
 * for the reference convolutions, and a hand-written GEMM would only be slower and another thing to
 * test. Weights keep PyTorch's [out][in] layout, which row-major sgemm reads as a transposed operand.
 * The bias gradient is a sum over the batch, done in double in batch order for determinism. */
#include "diffcr/ops.h"

#include <cblas.h>

void linear_forward(float *out, const float *inp, const float *weight, const float *bias,
                    int B, int IC, int OC)
{
    if (B <= 0 || OC <= 0)
        return;
    if (IC <= 0) { /* an empty product: sgemm would not touch out, the contract says out = bias */
        for (size_t k = 0; k < (size_t)B * (size_t)OC; k++)
            out[k] = bias ? bias[k % (size_t)OC] : 0.0f;
        return;
    }
    float beta = 0.0f;
    if (bias) {
        /* Seed every row with the bias and let sgemm accumulate onto it (beta = 1). */
        for (int b = 0; b < B; b++)
            for (int o = 0; o < OC; o++)
                out[(size_t)b * (size_t)OC + (size_t)o] = bias[o];
        beta = 1.0f;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, OC, IC, 1.0f, inp, IC, weight, IC, beta,
                out, OC);
}

void linear_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                     const float *inp, const float *weight, int B, int IC, int OC)
{
    if (OC <= 0 || IC < 0 || B < 0)
        return;
    if (B == 0 || IC == 0) { /* nothing flows: write the zero gradients the contract promises */
        for (size_t k = 0; k < (size_t)OC * (size_t)IC; k++)
            dweight[k] = 0.0f;
        if (dbias)
            for (int o = 0; o < OC; o++)
                dbias[o] = 0.0f;
        if (dinp)
            for (size_t k = 0; k < (size_t)B * (size_t)IC; k++)
                dinp[k] = 0.0f;
        return;
    }
    /* dinp [B, IC] = dout [B, OC] . weight [OC, IC] */
    if (dinp)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, IC, OC, 1.0f, dout, OC, weight, IC,
                    0.0f, dinp, IC);
    /* dweight [OC, IC] = dout^T . inp */
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, OC, IC, B, 1.0f, dout, OC, inp, IC, 0.0f,
                dweight, IC);
    if (dbias)
        for (int o = 0; o < OC; o++) {
            double s = 0.0;
            for (int b = 0; b < B; b++)
                s += (double)dout[(size_t)b * (size_t)OC + (size_t)o];
            dbias[o] = (float)s;
        }
}
