// The compute kernels of conv1d at stride 1: a direct, register-blocked correlation (no im2col
// matrix, no gemm) and the weight gradient as blocked dot products; and the moves of the im2col
// path (im2col, col2im, to and from the gemm's layout), whose rows are often shorter than a
// vector or two. Each is compiled once per instruction set (conv_kernels.cpp: the build's
// baseline; conv_kernels_avx512.cpp: AVX-512) and conv_kernels<T>() picks, once, the best one
// this CPU runs.
//
// The data layout the direct kernels share ("packed rows"): a channel's samples laid end to end,
// each sample in a segment of `segment` values holding its zero padding, so one row of length
// N·segment serves the whole batch and every load is contiguous:
//   xp[c, s·segment + j] = x[s, c, j − left]   (0 outside the sample),
// and a correlation with kernel K at dilation d reads xp[c, u + k·d] for output column u. The
// columns u = s·segment + t with t ≥ L_out straddle two samples; they are computed and dropped.
#pragma once

#include <cstddef>

namespace tapegrad::conv_kernels {

// A stride-1 conv1d as the im2col path's moves see it: x [N, C_in, L], the im2col matrix
// [C_in·K, cols] with cols = N·L_out, sample s in columns s·L_out … (s + 1)·L_out − 1.
struct RowShape {
  std::size_t c_in, length, kernel, dilation, l_out, cols;
  long left;  // the padding before each sample
};

//
// With a kernel of 1 correlate and weight_gradient are matrix products (blas.cpp uses them so):
// correlate is Z = Wᵀ · X with W packed k-major and X row-major, weight_gradient is G = Z · Xᵀ
// with both operands row-major (dot products along their rows).
template <class T>
struct Kernels {
  // z[o, u] (+)= Σ_c Σ_k wp[(c·K + k)·rows + o] · xp[c·ldx + u + k·d]
  // for o < rows and u in tiles [tile_begin, tile_end) of `tile` columns: added to z when
  // accumulate, else written, plus init[o] when init is given (rows values). rows is a multiple
  // of `rows_block`; xp must be readable up to c·ldx + tile_end·tile + (K − 1)·d.
  void (*correlate)(const T* wp, std::size_t rows, const T* xp, std::size_t ldx, std::size_t c_in,
                    std::size_t kernel, std::size_t dilation, T* z, std::size_t ldz,
                    std::size_t tile_begin, std::size_t tile_end, bool accumulate, const T* init);
  // gw[o·ldg + c·K + k] (+)= Σ_{u < cols} gz[o·ldz + u] · xp[c·ldx + u + k·d]
  // for o < c_out in blocks [block_begin, block_end) of `grad_rows_block` rows: added to gw when
  // accumulate, else written. cols is a multiple of `vector`.
  void (*weight_gradient)(const T* gz, std::size_t ldz, const T* xp, std::size_t ldx,
                          std::size_t c_in, std::size_t kernel, std::size_t dilation,
                          std::size_t cols, T* gw, std::size_t ldg, std::size_t c_out,
                          std::size_t block_begin, std::size_t block_end, bool accumulate);
  // The im2col path's moves at stride 1, for samples [s0, s1) (rows of a few tens of values on
  // the CNNs' short inputs: where the set has masked vector moves, one or two per piece there):
  //   im2col: col[c·K + k, s·L_out + t] = x[s, c, t + k·d − left]   (0 outside the sample)
  //   col2im: gx[s, c, i] (+)= Σ_k col[c·K + k, s·L_out + i + left − k·d]
  // over the k whose column lies in [0, L_out), added in the order of k, to gx when
  // accumulate, else to 0.
  void (*im2col)(const RowShape& r, const T* x, std::size_t s0, std::size_t s1, T* col);
  void (*col2im)(const RowShape& r, const T* col, std::size_t s0, std::size_t s1, bool accumulate,
                 T* gx);
  // And the moves between [N, C, L] and the gemm's layout [C, cols] (cols = N·L, sample s in
  // columns s·L … (s + 1)·L − 1), for samples [s0, s1):
  //   to_gemm_layout:   z[c, s·L + t] = a[s, c, t]
  //   from_gemm_layout: a[s, c, t] = z[c, s·L + t] + bias[c]   (+ 0 without a bias)
  void (*to_gemm_layout)(const T* a, std::size_t channels, std::size_t length, std::size_t cols,
                         std::size_t s0, std::size_t s1, T* z);
  void (*from_gemm_layout)(const T* z, std::size_t channels, std::size_t length, std::size_t cols,
                           const T* bias, std::size_t s0, std::size_t s1, T* a);
  std::size_t rows_block;       // correlate's output rows per register block
  std::size_t tile;             // correlate's output columns per register block
  std::size_t grad_rows_block;  // weight_gradient's output rows per register block
  std::size_t vector;           // values per SIMD vector
  // Whether blas::gemm runs its products on these kernels rather than OpenBLAS's: the AVX-512
  // set does (measured 1.2–1.8× OpenBLAS 0.3.21's sgemm, whose kernels for AMD CPUs stop at
  // AVX2); the baseline set does not.
  bool for_products;
  const char* name;  // the instruction set
};

// The best kernels for this CPU (the environment variable TAPEGRAD_KERNELS=baseline forces the
// baseline set, for testing and comparison).
template <class T>
const Kernels<T>& conv_kernels();

// One instruction set's kernels (defined only where that set was compiled in).
template <class T>
const Kernels<T>& baseline_kernels();
template <class T>
const Kernels<T>& avx512_kernels();

}  // namespace tapegrad::conv_kernels
