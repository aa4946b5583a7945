/* diffcr cudasim — stand-in for CUDA's library_types.h: the data-type enum shared by the runtime,
 * cuBLAS and cuDNN headers. Names and numeric values follow NVIDIA's documented enum so that a
 * value printed by the simulator means the same as on a real system; only the types the backend
 * (or the fakes' error paths) can meet are listed. */
#ifndef DIFFCR_CUDASIM_LIBRARY_TYPES_H
#define DIFFCR_CUDASIM_LIBRARY_TYPES_H

/* The enum tag is cudaDataType_t and the typedef cudaDataType, as in the real header; the second
 * typedef below makes both spellings name the same type. */
typedef enum cudaDataType_t {
    CUDA_R_32F = 0,  /* float */
    CUDA_R_64F = 1,  /* double */
    CUDA_R_16F = 2,  /* half */
    CUDA_R_8I = 3,   /* int8 */
    CUDA_C_32F = 4,  /* complex float */
    CUDA_C_64F = 5,  /* complex double */
    CUDA_C_16F = 6,  /* complex half */
    CUDA_R_32I = 10, /* int32 */
    CUDA_R_16BF = 14 /* bfloat16 */
} cudaDataType;

typedef enum cudaDataType_t cudaDataType_t;

#endif
