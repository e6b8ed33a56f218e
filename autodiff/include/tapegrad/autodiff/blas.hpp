// Matrix products: thin, typed wrappers over oneDNN's sgemm (float, where tapegrad is built
// with oneDNN), tapegrad's own kernels and CBLAS gemm (OpenBLAS). Row-major throughout.
#pragma once

#include <cstddef>

namespace tapegrad::blas {

enum class Transpose { no, yes };

// C[M,N] = alpha · op(A) · op(B) + beta · C, op(X) = X or Xᵀ per flag; op(A) is [M,K],
// op(B) is [K,N]. A, B, C are contiguous row-major; with beta = 0, C is not read. Large
// products are split by blocks of C among tapegrad::num_threads() threads; the blocks, the
// kernels and the order of each element's sum follow from the shape alone, so the result does not
// depend on the thread count (blas.cpp).
void gemm(Transpose ta, Transpose tb, std::size_t m, std::size_t n, std::size_t k, float alpha,
          const float* a, const float* b, float beta, float* c);
void gemm(Transpose ta, Transpose tb, std::size_t m, std::size_t n, std::size_t k, double alpha,
          const double* a, const double* b, double beta, double* c);

// The thread count OpenBLAS was started with (OPENBLAS_NUM_THREADS, else one per core): the
// default of tapegrad::num_threads(). gemm runs OpenBLAS single-threaded and splits large
// products among tapegrad's threads itself (see threads.hpp).
std::size_t default_threads();

// What runs float products in this process: "oneDNN sgemm" (built with oneDNN, and the
// environment does not set TAPEGRAD_PRODUCTS=builtin), "tapegrad AVX-512 kernels + OpenBLAS"
// or "OpenBLAS". double products never run on oneDNN, which has no dgemm.
const char* float_products();
// Whether float products run on oneDNN's sgemm in this process (float_products() names it).
bool float_products_on_onednn();

}  // namespace tapegrad::blas
