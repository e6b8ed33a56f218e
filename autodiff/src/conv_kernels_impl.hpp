// The bodies of the conv1d kernels declared in conv_kernels.hpp, written once with GCC/Clang
// vector extensions and compiled per instruction set by the file that includes this one (each
// includes it once, so every function here gets internal linkage and the sets never mix).
// Only builtins are used here: no standard-library templates whose out-of-line copies could
// be shared with (and run by) code built for another instruction set.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <utility>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

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

// A vector with every lane v: one broadcast load, on the load ports (where `vec{} + v` costs an
// add and a shuffle on the ports the multiply-adds need).
template <class T, int W>
__attribute__((always_inline)) inline typename simd<T, W>::type splat(T v) {
  return v - typename simd<T, W>::type{};  // exact for every v (−0 − 0 = −0), so folded away
}

template <class T, int W>
__attribute__((always_inline)) inline void store(T* p, typename simd<T, W>::type v) {
  std::memcpy(p, &v, sizeof(v));
}

// One register block of the correlation: R output rows × V vectors of W columns, accumulated
// over every (c, k): z[o + r, u + j] = Σ_c Σ_k wp[(c·K + k)·rows + o + r] · xp[c, u + j + k·d],
// starting from z itself (accumulate), from init[r] (given), or from 0.
// Per (c, k): V vector loads of the input row, R broadcast weights, R·V fused multiply-adds.
template <class T, int W, int R, int V>
__attribute__((always_inline)) inline void correlate_block(const T* wp, std::size_t rows,
                                                           const T* xp, std::size_t ldx,
                                                           std::size_t c_in, std::size_t kernel,
                                                           std::size_t dilation, T* z,
                                                           std::size_t ldz, bool accumulate,
                                                           const T* init) {
  using vec = typename simd<T, W>::type;
  vec acc[R][V];
  for (int r = 0; r < R; ++r)
    for (int j = 0; j < V; ++j)
      acc[r][j] = accumulate ? load<T, W>(z + r * ldz + j * W)
                  : init     ? splat<T, W>(init[r])
                             : vec{};
  for (std::size_t c = 0; c < c_in; ++c) {
    const T* row = xp + c * ldx;
    for (std::size_t k = 0; k < kernel; ++k) {
      const T* in = row + k * dilation;
      vec x[V];
      for (int j = 0; j < V; ++j) x[j] = load<T, W>(in + j * W);
      const T* weights = wp + (c * kernel + k) * rows;
      for (int r = 0; r < R; ++r) {
        const vec wr = splat<T, W>(weights[r]);
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
               std::size_t tile_begin, std::size_t tile_end, bool accumulate, const T* init) {
  constexpr std::size_t tile = std::size_t(W) * V;
  for (std::size_t t = tile_begin; t < tile_end; ++t)
    for (std::size_t o = 0; o < rows; o += R)
      correlate_block<T, W, R, V>(wp + o, rows, xp + t * tile, ldx, c_in, kernel, dilation,
                                  z + o * ldz + t * tile, ldz, accumulate,
                                  init ? init + o : nullptr);
}

// The sums of the lanes of W vectors at once, each added pairwise in a fixed order (the upper
// half of its lanes added to the lower half until one lane is left: results do not depend on
// threads), with the vectors' partial sums packed side by side as they shrink: each level halves
// the lanes a vector's partial sum occupies and the number of vectors, with two shuffles and one
// add per pair, so W vectors take 3(W − 1) instructions, where summing them one at a time takes
// about 2·log2(W) each, plus the extractions.
//
// Level h (segment size h, h vectors left): vector i holds, in each of its W/h segments of h
// lanes, the partial sums of one original vector. Pairs (a, b) = (v[2i], v[2i + 1]) become one
// vector whose segments keep a's halved partial sums in their lower halves and b's in their
// upper halves. fold_index gives the input lane an output lane reads: from a in the lower half
// of a segment, from b (indices from W on) in the upper half; `upper` picks the second of the
// two addends.
constexpr int fold_index(int lane, int h, int w, bool upper) {
  const int q = h / 2, segment = lane / h, position = lane % h;
  const int from_b = position >= q ? 1 : 0;
  return segment * h + position - from_b * q + (upper ? q : 0) + from_b * w;
}

template <class T, int W, int H, std::size_t... I>
__attribute__((always_inline)) inline typename simd<T, W>::type fold_pair(
    typename simd<T, W>::type a, typename simd<T, W>::type b, std::index_sequence<I...>) {
  return __builtin_shufflevector(a, b, fold_index(int(I), H, W, false)...) +
         __builtin_shufflevector(a, b, fold_index(int(I), H, W, true)...);
}

template <class T, int W, int H>
__attribute__((always_inline)) inline void fold_levels(typename simd<T, W>::type* v) {
  if constexpr (H >= 2) {
    for (int i = 0; i < H / 2; ++i)
      v[i] = fold_pair<T, W, H>(v[2 * i], v[2 * i + 1], std::make_index_sequence<W>());
    fold_levels<T, W, H / 2>(v);
  }
}

// After every level, lane L holds the sum of vector bit_reverse(L) (log2(W) bits): each level
// puts a vector's index bit into the next lane bit down from the top.
constexpr int bit_reverse(int lane, int w) {
  int reversed = 0;
  for (int bit = 1; bit < w; bit <<= 1, lane >>= 1) reversed = (reversed << 1) | (lane & 1);
  return reversed;
}

// sums[i] = the sum of v[i]'s lanes for i < N, W vectors at a time (a last group of fewer is
// padded with zero vectors, whose sums are dropped).
template <class T, int W, int N>
__attribute__((always_inline)) inline void lane_sums(const typename simd<T, W>::type* v, T* sums) {
  using vec = typename simd<T, W>::type;
  for (int g = 0; g < N; g += W) {
    vec t[W];
    for (int i = 0; i < W; ++i) t[i] = g + i < N ? v[g + i] : vec{};
    fold_levels<T, W, W>(t);
    T lanes[W];
    store<T, W>(lanes, t[0]);
    for (int i = 0; i < W && g + i < N; ++i) sums[g + i] = lanes[bit_reverse(i, W)];
  }
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
  lane_sums<T, W, R * Q>(&acc[0][0], sum);
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

// ---- the im2col path's moves ----

#if defined(__AVX512F__)
// Masked moves of one AVX-512 vector: lanes outside the mask are neither read nor written (a
// masked-out lane's address may lie outside any object: AVX-512 suppresses its faults).
template <class T>
struct Masked;
template <>
struct Masked<float> {
  using reg = __m512;
  using mask = __mmask16;
  static reg load(mask m, std::uintptr_t p) {
    return _mm512_maskz_loadu_ps(m, reinterpret_cast<const void*>(p));
  }
  static void store(float* p, mask m, reg v) { _mm512_mask_storeu_ps(p, m, v); }
  static reg add(reg a, mask m, reg b) { return _mm512_mask_add_ps(a, m, a, b); }
  static reg zero() { return _mm512_setzero_ps(); }
};
template <>
struct Masked<double> {
  using reg = __m512d;
  using mask = __mmask8;
  static reg load(mask m, std::uintptr_t p) {
    return _mm512_maskz_loadu_pd(m, reinterpret_cast<const void*>(p));
  }
  static void store(double* p, mask m, reg v) { _mm512_mask_storeu_pd(p, m, v); }
  static reg add(reg a, mask m, reg b) { return _mm512_mask_add_pd(a, m, a, b); }
  static reg zero() { return _mm512_setzero_pd(); }
};

// The mask of lanes [a, b) ∩ [0, lanes), for any a and b.
template <class T>
__attribute__((always_inline)) inline typename Masked<T>::mask lanes_between(long a, long b) {
  constexpr long lanes = 64 / sizeof(T);
  a = a < 0 ? 0 : (a > lanes ? lanes : a);
  b = b < a ? a : (b > lanes ? lanes : b);
  return static_cast<typename Masked<T>::mask>(((1u << b) - 1u) & ~((1u << a) - 1u));
}

// The address of p[i] for any i (the lane addresses of a masked move may fall before p).
template <class T>
__attribute__((always_inline)) inline std::uintptr_t address(const T* p, long i) {
  return reinterpret_cast<std::uintptr_t>(p) + static_cast<std::uintptr_t>(i) * sizeof(T);
}
#endif

// Whether a set of W-lane vectors of T moves rows with AVX-512's masked moves.
template <class T, int W>
constexpr bool masked_moves() {
#if defined(__AVX512F__)
  return W * sizeof(T) == 64;
#else
  return false;
#endif
}

// The positions t of a row of n whose source t + offset lies in [0, length): [first, last).
struct Inside {
  long first, last;
};
inline Inside inside(long offset, long length, long n) {
  const long first = offset >= 0 ? 0 : (-offset < n ? -offset : n);
  long last = length - offset < n ? length - offset : n;
  if (last < first) last = first;
  return {first, last};
}

// Channel by channel, the samples in order: each of the channel's K rows of col is written
// front to back, and each piece of x is read once for its K rows.
template <class T, int W>
void im2col_rows(const RowShape& r, const T* x, std::size_t s0, std::size_t s1, T* col) {
  const long n = static_cast<long>(r.l_out), length = static_cast<long>(r.length);
  for (std::size_t c = 0; c < r.c_in; ++c)
    for (std::size_t s = s0; s < s1; ++s) {
      const T* xc = x + (s * r.c_in + c) * r.length;
      for (std::size_t k = 0; k < r.kernel; ++k) {
        T* row = col + (c * r.kernel + k) * r.cols + s * r.l_out;
        const long offset = static_cast<long>(k * r.dilation) - r.left;
        const Inside in = inside(offset, length, n);
#if defined(__AVX512F__)
        if constexpr (masked_moves<T, W>()) {
          using M = Masked<T>;
          for (long t0 = 0; t0 < n; t0 += W) {
            const auto v =
                M::load(lanes_between<T>(in.first - t0, in.last - t0), address(xc, t0 + offset));
            M::store(row + t0, lanes_between<T>(0, n - t0), v);
          }
          continue;
        }
#endif
        for (long t = 0; t < in.first; ++t) row[t] = T(0);
        for (long t = in.first; t < in.last; ++t) row[t] = xc[t + offset];
        for (long t = in.last; t < n; ++t) row[t] = T(0);
      }
    }
}

template <class T, int W>
void col2im_rows(const RowShape& r, const T* col, std::size_t s0, std::size_t s1, bool accumulate,
                 T* gx) {
  const long n = static_cast<long>(r.l_out), length = static_cast<long>(r.length);
  for (std::size_t s = s0; s < s1; ++s)
    for (std::size_t c = 0; c < r.c_in; ++c) {
      T* gxc = gx + (s * r.c_in + c) * r.length;
      const T* rows = col + c * r.kernel * r.cols + s * r.l_out;
#if defined(__AVX512F__)
      if constexpr (masked_moves<T, W>()) {
        // gx[i] for i in [i0, i0 + W) in one register: each k adds its lanes inside the row.
        using M = Masked<T>;
        for (long i0 = 0; i0 < length; i0 += W) {
          const long end = length - i0;  // the lanes [0, end) of this register are in the row
          auto acc = accumulate ? M::load(lanes_between<T>(0, end), address(gxc, i0)) : M::zero();
          for (std::size_t k = 0; k < r.kernel; ++k) {
            // Lane j reads col at t = i0 + j − offset: inside for t in [0, L_out).
            const long offset = static_cast<long>(k * r.dilation) - r.left;
            const long a = offset - i0, b = offset + n - i0;
            const auto m = lanes_between<T>(a, b < end ? b : end);
            acc = M::add(acc, m, M::load(m, address(rows + k * r.cols, i0 - offset)));
          }
          M::store(gxc + i0, lanes_between<T>(0, end), acc);
        }
        continue;
      }
#endif
      if (!accumulate)
        for (long i = 0; i < length; ++i) gxc[i] = T(0);
      for (std::size_t k = 0; k < r.kernel; ++k) {
        const T* row = rows + k * r.cols;
        const long offset = static_cast<long>(k * r.dilation) - r.left;
        const Inside in = inside(offset, length, n);
        for (long t = in.first; t < in.last; ++t) gxc[t + offset] += row[t];
      }
    }
}

// y[0, n) = x[0, n) + add (a row of a few tens of values: masked moves where the set has them).
template <class T, int W>
__attribute__((always_inline)) inline void move_row(const T* x, long n, T add, T* y) {
#if defined(__AVX512F__)
  if constexpr (masked_moves<T, W>()) {
    using M = Masked<T>;
    using vec = typename simd<T, W>::type;
    const vec a = splat<T, W>(add);
    for (long t0 = 0; t0 < n; t0 += W) {
      const auto m = lanes_between<T>(0, n - t0);
      typename M::reg v = M::load(m, address(x, t0));
      vec sum;
      std::memcpy(&sum, &v, sizeof(sum));
      sum += a;
      std::memcpy(&v, &sum, sizeof(v));
      M::store(y + t0, m, v);
    }
    return;
  }
#endif
  for (long t = 0; t < n; ++t) y[t] = x[t] + add;
}

// Channel by channel, the samples in order: each row of z is written front to back.
template <class T, int W>
void to_gemm_layout(const T* a, std::size_t channels, std::size_t length, std::size_t cols,
                    std::size_t s0, std::size_t s1, T* z) {
  for (std::size_t c = 0; c < channels; ++c)
    for (std::size_t s = s0; s < s1; ++s)
      move_row<T, W>(a + (s * channels + c) * length, static_cast<long>(length), T(0),
                     z + c * cols + s * length);
}

// Sample by sample: each sample of a is written front to back.
template <class T, int W>
void from_gemm_layout(const T* z, std::size_t channels, std::size_t length, std::size_t cols,
                      const T* bias, std::size_t s0, std::size_t s1, T* a) {
  for (std::size_t s = s0; s < s1; ++s)
    for (std::size_t c = 0; c < channels; ++c)
      move_row<T, W>(z + c * cols + s * length, static_cast<long>(length), bias ? bias[c] : T(0),
                     a + (s * channels + c) * length);
}

// The kernel set for one instruction set: vectors of `bytes` bytes, correlate blocks of
// R × V vectors, weight-gradient blocks of RG × QG.
template <class T, int bytes, int R, int V, int RG, int QG>
const Kernels<T>& make_kernels(const char* name, bool for_products) {
  constexpr int W = bytes / int(sizeof(T));
  static const Kernels<T> kernels{&correlate<T, W, R, V>, &weight_gradient<T, W, RG, QG>,
                                  &im2col_rows<T, W>,     &col2im_rows<T, W>,
                                  &to_gemm_layout<T, W>,  &from_gemm_layout<T, W>,
                                  std::size_t(R),         std::size_t(W) * V,
                                  std::size_t(RG),        std::size_t(W),
                                  for_products,           name};
  return kernels;
}

}  // namespace
}  // namespace tapegrad::conv_kernels
