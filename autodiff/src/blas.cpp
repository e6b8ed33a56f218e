// The only file that includes <cblas.h> (it clashes with xtensor-blas's declarations).
//
// Threads: OpenBLAS runs single-threaded and a large gemm is split here, by blocks of C's
// columns (or rows), among tapegrad's own threads (parallel.hpp). One pool of threads then
// serves both the gemms and tapegrad's kernels: OpenBLAS's pool spinning beside OpenMP's would
// fight it for the cores.
#include "tapegrad/autodiff/blas.hpp"

#include <cblas.h>

#include <algorithm>

#include "parallel.hpp"

namespace tapegrad::blas {
namespace {
CBLAS_TRANSPOSE flag(Transpose t) {
  return t == Transpose::yes ? CblasTrans : CblasNoTrans;
}

// OpenBLAS's own count (OPENBLAS_NUM_THREADS, else one per core), read once, after which
// OpenBLAS is set to one thread.
std::size_t take_over_threads() {
  static const std::size_t count = [] {
    const int n = openblas_get_num_threads();
    openblas_set_num_threads(1);
    return n > 0 ? static_cast<std::size_t>(n) : std::size_t(1);
  }();
  return count;
}

// op(A) is [m, k] and op(B) [k, n], stored row-major with leading dimensions lda, ldb, ldc.
// Threads take blocks of C's columns (when n ≥ m) or rows: each element of C is computed by one
// call, over all of k, so the result does not depend on the thread count.
template <class T, class Call>
void split_gemm(Transpose ta, Transpose tb, std::size_t m, std::size_t n, std::size_t k, const T* a,
                const T* b, T* c, const Call& call) {
  take_over_threads();
  const std::size_t lda = ta == Transpose::yes ? m : k, ldb = tb == Transpose::yes ? k : n;
  constexpr std::size_t block = 16;  // columns or rows per unit of work
  const double flop =
      2.0 * static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k);
  if (n >= m) {
    detail::parallel_for((n + block - 1) / block, flop / 4,
                         [&](std::size_t begin, std::size_t end, std::size_t) {
                           const std::size_t n0 = begin * block, n1 = std::min(n, end * block);
                           if (n0 >= n1) return;
                           const T* b0 = tb == Transpose::yes ? b + n0 * ldb : b + n0;
                           call(m, n1 - n0, a, lda, b0, ldb, c + n0, n);
                         });
  } else {
    detail::parallel_for((m + block - 1) / block, flop / 4,
                         [&](std::size_t begin, std::size_t end, std::size_t) {
                           const std::size_t m0 = begin * block, m1 = std::min(m, end * block);
                           if (m0 >= m1) return;
                           const T* a0 = ta == Transpose::yes ? a + m0 : a + m0 * lda;
                           call(m1 - m0, n, a0, lda, b, ldb, c + m0 * n, n);
                         });
  }
}
}  // namespace

void gemm(Transpose ta, Transpose tb, std::size_t m, std::size_t n, std::size_t k, float alpha,
          const float* a, const float* b, float beta, float* c) {
  if (m == 0 || n == 0) return;
  split_gemm(ta, tb, m, n, k, a, b, c,
             [&](std::size_t rows, std::size_t cols, const float* a0, std::size_t lda,
                 const float* b0, std::size_t ldb, float* c0, std::size_t ldc) {
               cblas_sgemm(CblasRowMajor, flag(ta), flag(tb), static_cast<blasint>(rows),
                           static_cast<blasint>(cols), static_cast<blasint>(k), alpha, a0,
                           static_cast<blasint>(lda), b0, static_cast<blasint>(ldb), beta, c0,
                           static_cast<blasint>(ldc));
             });
}

void gemm(Transpose ta, Transpose tb, std::size_t m, std::size_t n, std::size_t k, double alpha,
          const double* a, const double* b, double beta, double* c) {
  if (m == 0 || n == 0) return;
  split_gemm(ta, tb, m, n, k, a, b, c,
             [&](std::size_t rows, std::size_t cols, const double* a0, std::size_t lda,
                 const double* b0, std::size_t ldb, double* c0, std::size_t ldc) {
               cblas_dgemm(CblasRowMajor, flag(ta), flag(tb), static_cast<blasint>(rows),
                           static_cast<blasint>(cols), static_cast<blasint>(k), alpha, a0,
                           static_cast<blasint>(lda), b0, static_cast<blasint>(ldb), beta, c0,
                           static_cast<blasint>(ldc));
             });
}

std::size_t default_threads() {
  return take_over_threads();
}

}  // namespace tapegrad::blas
