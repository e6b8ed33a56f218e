// The only file that includes <cblas.h> (it clashes with xtensor-blas's declarations).
#include "tapegrad/autodiff/blas.hpp"

#include <cblas.h>

namespace tapegrad::blas {
namespace {
CBLAS_TRANSPOSE flag(Transpose t) {
  return t == Transpose::yes ? CblasTrans : CblasNoTrans;
}
// Leading dimension of a stored matrix whose op() is [rows, cols].
blasint ld(Transpose t, std::size_t rows, std::size_t cols) {
  return static_cast<blasint>(t == Transpose::yes ? rows : cols);
}
}  // namespace

void gemm(Transpose ta, Transpose tb, std::size_t m, std::size_t n, std::size_t k, float alpha,
          const float* a, const float* b, float beta, float* c) {
  if (m == 0 || n == 0) return;
  cblas_sgemm(CblasRowMajor, flag(ta), flag(tb), static_cast<blasint>(m), static_cast<blasint>(n),
              static_cast<blasint>(k), alpha, a, ld(ta, m, k), b, ld(tb, k, n), beta, c,
              static_cast<blasint>(n));
}

void gemm(Transpose ta, Transpose tb, std::size_t m, std::size_t n, std::size_t k, double alpha,
          const double* a, const double* b, double beta, double* c) {
  if (m == 0 || n == 0) return;
  cblas_dgemm(CblasRowMajor, flag(ta), flag(tb), static_cast<blasint>(m), static_cast<blasint>(n),
              static_cast<blasint>(k), alpha, a, ld(ta, m, k), b, ld(tb, k, n), beta, c,
              static_cast<blasint>(n));
}

}  // namespace tapegrad::blas
