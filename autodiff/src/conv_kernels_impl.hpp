// The bodies of the conv1d kernels declared in conv_kernels.hpp, written once with GCC/Clang
// vector extensions and compiled per instruction set by the file that includes this one (each
// includes it once, so every function here gets internal linkage and the sets never mix).
// Only builtins are used here: no standard-library templates whose out-of-line copies could
// be shared with (and run by) code built for another instruction set.
#pragma once

#include <cstddef>
#include <cstring>
#include <utility>

#include "conv_kernels.hpp"

namespace tapegrad::conv_kernels {
namespace {

template <class T, int W>
struct simd {
  typedef T type __attribute__((vector_size(W * sizeof(T))));
};

template <class T, int W>
__attribute__((always_inline)) inline typename simd<T, W>::type load(const T* p) {
  typename simd<T, W>::type v;
  std::memcpy(&v, p, sizeof(v));  // an unaligned vector load
  return v;
}

template <class T, int W>
__attribute__((always_inline)) inline void store(T* p, typename simd<T, W>::type v) {
  std::memcpy(p, &v, sizeof(v));
}

// One register block of the correlation: R output rows × V vectors of W columns, accumulated
// over every (c, k): z[o + r, u + j] = Σ_c Σ_k wp[(c·K + k)·rows + o + r] · xp[c, u + j + k·d].
// Per (c, k): V vector loads of the input row, R broadcast weights, R·V fused multiply-adds.
template <class T, int W, int R, int V>
__attribute__((always_inline)) inline void correlate_block(const T* wp, std::size_t rows,
                                                           const T* xp, std::size_t ldx,
                                                           std::size_t c_in, std::size_t kernel,
                                                           std::size_t dilation, T* z,
                                                           std::size_t ldz, bool accumulate) {
  using vec = typename simd<T, W>::type;
  vec acc[R][V];
  for (int r = 0; r < R; ++r)
    for (int j = 0; j < V; ++j) acc[r][j] = accumulate ? load<T, W>(z + r * ldz + j * W) : vec{};
  for (std::size_t c = 0; c < c_in; ++c) {
    const T* row = xp + c * ldx;
    for (std::size_t k = 0; k < kernel; ++k) {
      const T* in = row + k * dilation;
      vec x[V];
      for (int j = 0; j < V; ++j) x[j] = load<T, W>(in + j * W);
      const T* weights = wp + (c * kernel + k) * rows;
      for (int r = 0; r < R; ++r) {
        const vec wr = vec{} + weights[r];
        for (int j = 0; j < V; ++j) acc[r][j] += wr * x[j];
      }
    }
  }
  for (int r = 0; r < R; ++r)
    for (int j = 0; j < V; ++j) store<T, W>(z + r * ldz + j * W, acc[r][j]);
}

template <class T, int W, int R, int V>
void correlate(const T* wp, std::size_t rows, const T* xp, std::size_t ldx, std::size_t c_in,
               std::size_t kernel, std::size_t dilation, T* z, std::size_t ldz,
               std::size_t tile_begin, std::size_t tile_end, bool accumulate) {
  constexpr std::size_t tile = std::size_t(W) * V;
  for (std::size_t t = tile_begin; t < tile_end; ++t)
    for (std::size_t o = 0; o < rows; o += R)
      correlate_block<T, W, R, V>(wp + o, rows, xp + t * tile, ldx, c_in, kernel, dilation,
                                  z + o * ldz + t * tile, ldz, accumulate);
}

// The sum of a vector's lanes, pairwise (a fixed order: results do not depend on threads): the
// upper half added to the lower half until one lane is left, each step one extract and one add.
template <class T, int W, std::size_t... I>
__attribute__((always_inline)) inline T lane_sum(typename simd<T, W>::type v,
                                                 std::index_sequence<I...>) {
  if constexpr (W == 1) {
    return v[0];
  } else {
    const typename simd<T, W / 2>::type half =
        __builtin_shufflevector(v, v, I...) + __builtin_shufflevector(v, v, (I + W / 2)...);
    return lane_sum<T, W / 2>(half, std::make_index_sequence<W / 4>());
  }
}
template <class T, int W>
__attribute__((always_inline)) inline T lane_sum(typename simd<T, W>::type v) {
  return lane_sum<T, W>(v, std::make_index_sequence<W / 2>());
}

// One register block of the weight gradient: R rows of gz against Q shifted input rows,
// sum[r·Q + q] = Σ_{u < cols} g_rows[r][u] · in[q][u]. Per vector of columns: R + Q loads and
// R·Q fused multiply-adds.
template <class T, int W, int R, int Q>
__attribute__((always_inline)) inline void weight_gradient_block(const T* const* g_rows,
                                                                 const T* const* in,
                                                                 std::size_t cols, T* sum) {
  using vec = typename simd<T, W>::type;
  vec acc[R][Q];
  for (int r = 0; r < R; ++r)
    for (int q = 0; q < Q; ++q) acc[r][q] = vec{};
  for (std::size_t u = 0; u < cols; u += W) {
    vec g[R];
    for (int r = 0; r < R; ++r) g[r] = load<T, W>(g_rows[r] + u);
    for (int q = 0; q < Q; ++q) {
      const vec x = load<T, W>(in[q] + u);
      for (int r = 0; r < R; ++r) acc[r][q] += g[r] * x;
    }
  }
  for (int r = 0; r < R; ++r)
    for (int q = 0; q < Q; ++q) sum[r * Q + q] = lane_sum<T, W>(acc[r][q]);
}

// Columns per pass of the weight gradient: a pass's slice of gz and xp stays in cache while
// every block of the pass reads it.
constexpr std::size_t weight_gradient_chunk = 1024;

template <class T, int W, int R, int Q>
void weight_gradient(const T* gz, std::size_t ldz, const T* xp, std::size_t ldx, std::size_t c_in,
                     std::size_t kernel, std::size_t dilation, std::size_t cols, T* gw,
                     std::size_t ldg, std::size_t c_out, std::size_t block_begin,
                     std::size_t block_end, bool accumulate) {
  const std::size_t ck = c_in * kernel;
  for (std::size_t u0 = 0; u0 < cols; u0 += weight_gradient_chunk) {
    const std::size_t n = cols - u0 < weight_gradient_chunk ? cols - u0 : weight_gradient_chunk;
    const bool add = accumulate || u0 > 0;
    for (std::size_t block = block_begin; block < block_end; ++block) {
      const std::size_t o0 = block * R;
      const T* g_rows[R];
      for (int r = 0; r < R; ++r) {  // past the last row: any valid row (its sums are dropped)
        const std::size_t o = o0 + r < c_out ? o0 + r : c_out - 1;
        g_rows[r] = gz + o * ldz + u0;
      }
      for (std::size_t j0 = 0; j0 < ck; j0 += Q) {
        const T* in[Q];
        for (int q = 0; q < Q; ++q) {
          const std::size_t j = j0 + q < ck ? j0 + q : ck - 1;  // past the end: any valid row
          in[q] = xp + (j / kernel) * ldx + (j % kernel) * dilation + u0;
        }
        T sum[R * Q];
        weight_gradient_block<T, W, R, Q>(g_rows, in, n, sum);
        for (int r = 0; r < R && o0 + r < c_out; ++r)
          for (int q = 0; q < Q && j0 + q < ck; ++q) {
            T& out = gw[(o0 + r) * ldg + j0 + q];
            out = add ? out + sum[r * Q + q] : sum[r * Q + q];
          }
      }
    }
  }
}

// The kernel set for one instruction set: vectors of `bytes` bytes, correlate blocks of
// R × V vectors, weight-gradient blocks of RG × QG.
template <class T, int bytes, int R, int V, int RG, int QG>
const Kernels<T>& make_kernels(const char* name, bool for_products) {
  constexpr int W = bytes / int(sizeof(T));
  static const Kernels<T> kernels{&correlate<T, W, R, V>, &weight_gradient<T, W, RG, QG>,
                                  std::size_t(R),         std::size_t(W) * V,
                                  std::size_t(RG),        std::size_t(W),
                                  for_products,           name};
  return kernels;
}

}  // namespace
}  // namespace tapegrad::conv_kernels
