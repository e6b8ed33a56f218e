// The only file that includes <cblas.h> (it clashes with xtensor-blas's declarations).
//
// float products run on oneDNN's sgemm where tapegrad is built with it (TAPEGRAD_ONEDNN: CMake
// found Debian's libdnnl-dev), unless the environment sets TAPEGRAD_PRODUCTS=builtin. It is
// faster than both alternatives at every shape of tapegrad's workloads: on a 2-core Xeon with
// AVX-512, one thread, 1.2–1.9× tapegrad's own kernels and 3–5× OpenBLAS 0.3.21 (which runs its
// Prescott kernels there), from the MLP 64-32-10 at batch 32 to the MLP 784-1024-1024-10 at
// batch 256. Otherwise (and for double), where the CPU has AVX-512, products run on tapegrad's
// own register-blocked kernels (conv_kernels.hpp: at a kernel of 1 a correlation is a matrix
// product), which beat OpenBLAS 0.3.21's there; elsewhere, and for the shapes those kernels do
// not take, on OpenBLAS.
//
// Threads: oneDNN's sgemm and OpenBLAS run single-threaded and a large gemm is split here, by
// blocks of C's columns (or rows), among tapegrad's own threads (parallel.hpp). One pool of
// threads then serves both the gemms and tapegrad's kernels: OpenBLAS's pool spinning beside
// OpenMP's would fight it for the cores. Results do not depend on the thread count: which
// kernels run (oneDNN's, tapegrad's or OpenBLAS's), how k is blocked and how C is cut into calls
// all follow from the shape alone, and a thread computes whole blocks of C (gemm_blocks,
// own_gemm_b_rows, own_gemm_dots).
#include "tapegrad/autodiff/blas.hpp"

#include <cblas.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <new>
#include <stdexcept>
#include <string>
#include <type_traits>

#if defined(TAPEGRAD_ONEDNN)
#include <oneapi/dnnl/dnnl.h>
#if DNNL_CPU_RUNTIME != DNNL_RUNTIME_OMP && DNNL_CPU_RUNTIME != DNNL_RUNTIME_SEQ
#error \
    "tapegrad runs oneDNN's sgemm one call per thread: it needs oneDNN's OpenMP or sequential \
runtime (configure with -DTAPEGRAD_WITH_ONEDNN=OFF)"
#endif
#if DNNL_CPU_RUNTIME == DNNL_RUNTIME_OMP && !defined(_OPENMP)
#error "oneDNN runs on OpenMP here: tapegrad must be built with OpenMP to use it"
#endif
#endif

#include "conv_kernels.hpp"
#include "parallel.hpp"
#include "tapegrad/autodiff/profiler.hpp"
#include "tapegrad/autodiff/tensor.hpp"

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

// The split of C = op(A)·op(B) (op(A) [m, k], op(B) [k, n]) into blocks of one OpenBLAS call
// each: C's columns (when n ≥ m) or rows, in units of 16, cut into `count` blocks of nearly equal
// numbers of units. The partition is a function of (m, n, k) alone, never of the thread count:
// OpenBLAS's result for a block of C can differ in its last bits from the same block inside a
// larger call, because its kernels' blocking and edge handling depend on the call's m and n
// (0.3.21's Haswell kernels, also run on AMD Zen: a 300×300 sgemm differed from its two column
// halves in some 2 000 elements; its SkylakeX kernels likewise in dgemm). Every element of C is
// computed by the same call whatever the thread count, and so has the same value.
//
// Below 16 MFLOP, one call (a split would not pay). From there, 2 blocks, doubled while each block
// keeps at least 8 MFLOP and 256 columns (or rows), up to 64: each block's call packs the other
// operand again, work that blocks this wide make small; and a power of two of blocks divides
// evenly among 2, 4 or 8 threads.
struct GemmBlocks {
  bool by_columns;
  std::size_t units;  // of `unit` columns or rows (the last one possibly partial)
  std::size_t count;  // blocks: block i has units [units·i/count, units·(i + 1)/count)
  static constexpr std::size_t unit = 16;
};

GemmBlocks gemm_blocks(std::size_t m, std::size_t n, std::size_t k) {
  GemmBlocks blocks;
  blocks.by_columns = n >= m;
  const std::size_t extent = blocks.by_columns ? n : m;
  blocks.units = (extent + GemmBlocks::unit - 1) / GemmBlocks::unit;
  const double flop =
      2.0 * static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k);
  blocks.count = 1;
  if (flop >= 16e6 && blocks.units >= 2) {
    blocks.count = 2;
    while (blocks.count < 64 && 2 * blocks.count <= blocks.units &&
           extent / (2 * blocks.count) >= 256 &&
           flop / static_cast<double>(2 * blocks.count) >= 8e6)
      blocks.count *= 2;
  }
  return blocks;
}

// Runs call(rows, cols, a0, lda, b0, ldb, c0, ldc) for each block of gemm_blocks(m, n, k), blocks
// shared among threads (parallel_for: up to one per 8 MFLOP). A, B and C are row-major with
// leading dimensions lda, ldb and n.
template <class T, class Call>
void split_gemm(Transpose ta, Transpose tb, std::size_t m, std::size_t n, std::size_t k, const T* a,
                const T* b, T* c, const Call& call) {
  take_over_threads();
  const std::size_t lda = ta == Transpose::yes ? m : k, ldb = tb == Transpose::yes ? k : n;
  const GemmBlocks blocks = gemm_blocks(m, n, k);
  const double flop =
      2.0 * static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k);
  const std::size_t extent = blocks.by_columns ? n : m;
  detail::parallel_for(
      blocks.count, flop / 4, [&](std::size_t begin, std::size_t end, std::size_t) {
        for (std::size_t i = begin; i < end; ++i) {
          const std::size_t first = blocks.units * i / blocks.count * GemmBlocks::unit;
          const std::size_t last =
              std::min(extent, blocks.units * (i + 1) / blocks.count * GemmBlocks::unit);
          if (blocks.by_columns) {
            const T* b0 = tb == Transpose::yes ? b + first * ldb : b + first;
            call(m, last - first, a, lda, b0, ldb, c + first, n);
          } else {
            const T* a0 = ta == Transpose::yes ? a + first : a + first * lda;
            call(last - first, n, a0, lda, b, ldb, c + first * n, n);
          }
        }
      });
}

// ---- products on tapegrad's kernels ----

// A product split among threads must pay for its operands crossing between cores' caches (its
// input was written, and its output is read, mostly by one thread): it is split only at 8× the
// work per part that parallel_parts asks of compute-bound kernels (16 MFLOP). Measured on the
// 2-core VM: MLP 784-256-128-10 steps (26 MFLOP products) ran faster on one thread than split.
constexpr double own_split_discount = 8;

// C = op(A)·B (op(A) = A or Aᵀ, [m, k]; B [k, n]): the correlation kernel at a kernel of 1,
// z[o, u] = Σ_j wp[j·m + o] · B[j, u], with A packed k-major (Aᵀ already is) and C written in
// place. The rows of C are whole register blocks (m a multiple of rows_block); B's columns go in
// tiles, the last partial one through a zero-padded copy. k runs in blocks of 256, so a tile's
// block of B stays in L1 across C's rows. Threads take tiles.
template <class T>
void own_gemm_b_rows(const conv_kernels::Kernels<T>& kern, Transpose ta, std::size_t m,
                     std::size_t n, std::size_t k, const T* a, const T* b, bool accumulate, T* c) {
  Tensor<T> packed;
  const T* wp = a;
  if (ta == Transpose::no) {  // A [m, k] → wp [k, m]
    packed = Tensor<T>(Shape{k, m});
    for (std::size_t i = 0; i < m; ++i)
      for (std::size_t j = 0; j < k; ++j) packed[j * m + i] = a[i * k + j];
    wp = packed.data();
  }
  constexpr std::size_t k_block = 256;
  const std::size_t tile = kern.tile, full = n / tile, tail = n % tile;
  const std::size_t tasks = full + (tail ? 1 : 0);
  const double flop = 2.0 * static_cast<double>(m) * static_cast<double>(n) *
                      static_cast<double>(k) / own_split_discount;
  const std::size_t parts = detail::parallel_parts(tasks, flop);
  Tensor<T> tail_b, tail_c;  // per thread: the last tile's columns of B and of C
  if (tail) {
    tail_b = Tensor<T>(Shape{parts, k, tile});
    tail_c = Tensor<T>(Shape{parts, m, tile});
  }
  detail::parallel_for_affine(tasks, 1, flop, [&](std::size_t t, std::size_t, std::size_t thread) {
    if (t < full) {
      for (std::size_t j0 = 0; j0 < k; j0 += k_block)
        kern.correlate(wp + j0 * m, m, b + j0 * n, n, std::min(k_block, k - j0), 1, 1, c, n, t,
                       t + 1, accumulate || j0 > 0, nullptr);
      return;
    }
    const std::size_t first = full * tile;
    T* bt = tail_b.data() + thread * k * tile;
    T* ct = tail_c.data() + thread * m * tile;
    for (std::size_t j = 0; j < k; ++j) {
      std::copy(b + j * n + first, b + j * n + n, bt + j * tile);
      std::fill(bt + j * tile + tail, bt + (j + 1) * tile, T(0));
    }
    for (std::size_t j0 = 0; j0 < k; j0 += k_block)
      kern.correlate(wp + j0 * m, m, bt + j0 * tile, tile, std::min(k_block, k - j0), 1, 1, ct,
                     tile, 0, 1, j0 > 0, nullptr);
    for (std::size_t i = 0; i < m; ++i)
      for (std::size_t u = 0; u < tail; ++u)
        c[i * n + first + u] =
            accumulate ? c[i * n + first + u] + ct[i * tile + u] : ct[i * tile + u];
  });
}

// C = A·Bᵀ (A [m, k], B [n, k]): dot products of A's rows with B's (the weight-gradient kernel
// at a kernel of 1); k a multiple of the vector width. B's rows go in groups of 96, whose block
// stays in L2 while C's rows run over it; threads take (group, block of C's rows) pairs.
template <class T>
void own_gemm_dots(const conv_kernels::Kernels<T>& kern, std::size_t m, std::size_t n,
                   std::size_t k, const T* a, const T* b, bool accumulate, T* c) {
  constexpr std::size_t group = 96;
  const std::size_t groups = (n + group - 1) / group;
  const std::size_t blocks = (m + kern.grad_rows_block - 1) / kern.grad_rows_block;
  const double flop = 2.0 * static_cast<double>(m) * static_cast<double>(n) *
                      static_cast<double>(k) / own_split_discount;
  // Ranges of about 1 MFLOP: few enough calls, enough ranges for threads to share.
  const double task_flop = 2.0 * static_cast<double>(kern.grad_rows_block * group * k);
  const std::size_t grain = std::max<std::size_t>(1, static_cast<std::size_t>(1e6 / task_flop));
  detail::parallel_for_affine(
      groups * blocks, grain, flop, [&](std::size_t begin, std::size_t end, std::size_t) {
        for (std::size_t t = begin; t < end;) {  // runs of tasks in one group: one call each
          const std::size_t g = t / blocks, b0 = t % blocks;
          const std::size_t b1 = std::min(blocks, b0 + (end - t));
          const std::size_t j0 = g * group, count = std::min(group, n - j0);
          kern.weight_gradient(a, k, b + j0 * k, k, count, 1, 1, k, c + j0, n, m, b0, b1,
                               accumulate);
          t += b1 - b0;
        }
      });
}

// Runs C = op(A)·op(B) + beta·C on tapegrad's kernels if they serve this CPU and this shape
// (alpha 1, beta 0 or 1, and at least 1 MFLOP: below that OpenBLAS's lighter set-up wins);
// returns false, having done nothing, otherwise.
template <class T>
bool own_gemm(Transpose ta, Transpose tb, std::size_t m, std::size_t n, std::size_t k, const T* a,
              const T* b, T beta, T* c) {
  const auto& kern = conv_kernels::conv_kernels<T>();
  if (!kern.for_products || (beta != T(0) && beta != T(1))) return false;
  if (2.0 * static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k) < 1e6)
    return false;
  if (ta == Transpose::no && tb == Transpose::yes && k % kern.vector == 0) {
    own_gemm_dots(kern, m, n, k, a, b, beta == T(1), c);
    return true;
  }
  // op(A)·B: each thread's tiles read all of packed A, in k-blocks of 256 × m, which must stay
  // in its cache (L2): beyond m = 256 OpenBLAS's blocking wins.
  if (tb == Transpose::no && m % kern.rows_block == 0 && m <= 256) {
    own_gemm_b_rows(kern, ta, m, n, k, a, b, beta == T(1), c);
    return true;
  }
  return false;
}

// ---- oneDNN ----

#if defined(TAPEGRAD_ONEDNN)
// Whether float products go to oneDNN: yes unless TAPEGRAD_PRODUCTS=builtin (read once).
bool onednn_products() {
  static const bool use = [] {
    const char* forced = std::getenv("TAPEGRAD_PRODUCTS");
    return !(forced && std::strcmp(forced, "builtin") == 0);
  }();
  return use;
}

// While alive, the calling thread's OpenMP teams have one thread. oneDNN's sgemm splits a call
// among omp_get_max_threads() threads unless it runs inside an active parallel region, and how
// it splits k then depends on that count: each call here must run on its own thread alone.
class OneOpenMPThread {
 public:
#if defined(_OPENMP)
  OneOpenMPThread() : saved_(omp_get_max_threads()) {
    omp_set_num_threads(1);
  }
  ~OneOpenMPThread() {
    omp_set_num_threads(saved_);
  }

 private:
  int saved_;
#endif
};

// C = alpha·op(A)·op(B) + beta·C by blocks of gemm_blocks, one single-threaded dnnl_sgemm each.
// oneDNN's sgemm takes its packing buffer from malloc on every call (one allocation, freed
// before it returns) and can fail only there: that failure is std::bad_alloc.
void onednn_gemm(Transpose ta, Transpose tb, std::size_t m, std::size_t n, std::size_t k,
                 float alpha, const float* a, const float* b, float beta, float* c) {
  std::atomic<int> failure{dnnl_success};
  split_gemm(ta, tb, m, n, k, a, b, c,
             [&](std::size_t rows, std::size_t cols, const float* a0, std::size_t lda,
                 const float* b0, std::size_t ldb, float* c0, std::size_t ldc) {
               OneOpenMPThread one;
               const dnnl_status_t status = dnnl_sgemm(
                   ta == Transpose::yes ? 'T' : 'N', tb == Transpose::yes ? 'T' : 'N',
                   static_cast<dnnl_dim_t>(rows), static_cast<dnnl_dim_t>(cols),
                   static_cast<dnnl_dim_t>(k), alpha, a0, static_cast<dnnl_dim_t>(lda), b0,
                   static_cast<dnnl_dim_t>(ldb), beta, c0, static_cast<dnnl_dim_t>(ldc));
               if (status != dnnl_success) failure.store(status, std::memory_order_relaxed);
             });
  const int status = failure.load();
  if (status == dnnl_out_of_memory) throw std::bad_alloc();
  if (status != dnnl_success)
    throw std::runtime_error("blas::gemm: oneDNN's sgemm failed (dnnl_status_t " +
                             std::to_string(status) + ") on a [" + std::to_string(m) + ", " +
                             std::to_string(k) + "]·[" + std::to_string(k) + ", " +
                             std::to_string(n) + "] product");
}
#endif

// ---- OpenBLAS ----

void cblas_gemm(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, blasint m, blasint n, blasint k,
                float alpha, const float* a, blasint lda, const float* b, blasint ldb, float beta,
                float* c, blasint ldc) {
  cblas_sgemm(CblasRowMajor, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
void cblas_gemm(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, blasint m, blasint n, blasint k,
                double alpha, const double* a, blasint lda, const double* b, blasint ldb,
                double beta, double* c, blasint ldc) {
  cblas_dgemm(CblasRowMajor, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

template <class T>
void gemm_any(Transpose ta, Transpose tb, std::size_t m, std::size_t n, std::size_t k, T alpha,
              const T* a, const T* b, T beta, T* c) {
  if (m == 0 || n == 0) return;
  if (k == 0) {  // a sum of no products: C = beta · C, without a BLAS call (its lda would be 0)
    for (std::size_t i = 0; i < m * n; ++i) c[i] = beta == T(0) ? T(0) : beta * c[i];
    return;
  }
  detail::profile_flops(2.0 * static_cast<double>(m) * static_cast<double>(n) *
                        static_cast<double>(k));
#if defined(TAPEGRAD_ONEDNN)
  if constexpr (std::is_same_v<T, float>)
    if (onednn_products()) return onednn_gemm(ta, tb, m, n, k, alpha, a, b, beta, c);
#endif
  if (alpha == T(1) && own_gemm(ta, tb, m, n, k, a, b, beta, c)) return;
  split_gemm(ta, tb, m, n, k, a, b, c,
             [&](std::size_t rows, std::size_t cols, const T* a0, std::size_t lda, const T* b0,
                 std::size_t ldb, T* c0, std::size_t ldc) {
               cblas_gemm(flag(ta), flag(tb), static_cast<blasint>(rows),
                          static_cast<blasint>(cols), static_cast<blasint>(k), alpha, a0,
                          static_cast<blasint>(lda), b0, static_cast<blasint>(ldb), beta, c0,
                          static_cast<blasint>(ldc));
             });
}
}  // namespace

void gemm(Transpose ta, Transpose tb, std::size_t m, std::size_t n, std::size_t k, float alpha,
          const float* a, const float* b, float beta, float* c) {
  gemm_any(ta, tb, m, n, k, alpha, a, b, beta, c);
}
void gemm(Transpose ta, Transpose tb, std::size_t m, std::size_t n, std::size_t k, double alpha,
          const double* a, const double* b, double beta, double* c) {
  gemm_any(ta, tb, m, n, k, alpha, a, b, beta, c);
}

std::size_t default_threads() {
  return take_over_threads();
}

bool float_products_on_onednn() {
#if defined(TAPEGRAD_ONEDNN)
  return onednn_products();
#else
  return false;
#endif
}

const char* float_products() {
#if defined(TAPEGRAD_ONEDNN)
  if (onednn_products()) return "oneDNN sgemm";
#endif
  return conv_kernels::conv_kernels<float>().for_products ? "tapegrad AVX-512 kernels + OpenBLAS"
                                                          : "OpenBLAS";
}

}  // namespace tapegrad::blas
