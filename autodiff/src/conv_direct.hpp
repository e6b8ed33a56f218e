// conv1d at stride 1: the batch laid out in packed rows, correlated by the register-blocked
// kernels of conv_kernels.hpp (AVX-512 where the CPU has it), threads splitting the columns.
#pragma once

#include <algorithm>
#include <cstddef>
#include <type_traits>
#include <utility>

#include "conv_geometry.hpp"
#include "conv_kernels.hpp"
#include "parallel.hpp"
#include "strided.hpp"
#include "tapegrad/autodiff/blas.hpp"
#include "tapegrad/autodiff/tape.hpp"

namespace tapegrad::detail {

inline std::size_t round_up(std::size_t n, std::size_t multiple) {
  return (n + multiple - 1) / multiple * multiple;
}

// Copies and zero-fills of a few values each (a sample's row is often only tens of values long):
// plain loops in blocks of 8, where a call to memcpy or memset would cost more than the copy.
template <class T>
void copy_short(const T* from, std::size_t n, T* to) {
  for (; n >= 8; n -= 8, from += 8, to += 8)
    for (std::size_t k = 0; k < 8; ++k) to[k] = from[k];
  for (std::size_t k = 0; k < n; ++k) to[k] = from[k];
}
template <class T>
void zero_short(T* to, std::size_t n) {
  for (; n >= 8; n -= 8, to += 8)
    for (std::size_t k = 0; k < 8; ++k) to[k] = T(0);
  for (std::size_t k = 0; k < n; ++k) to[k] = T(0);
}

// Packs columns [u0, u1) of src [N, C, len] laid out in rows (the layout of conv_kernels.hpp):
//   dst[c·ld + u − u0] = src[s, c, j − left]   where u = s·segment + j, j < segment,
// and 0 where j − left falls outside the sample or s ≥ N. left may be negative (the sample then
// starts before its segment). Sample s starts at src + s·sample_stride (0: channels·len, the
// whole tensor; more when packing some of its channels). Sample by sample, the piece of the
// segment that falls in [u0, u1) is worked out once for all channels.
template <class T>
void pack_columns(const T* src, std::size_t n, std::size_t channels, std::size_t len, long left,
                  std::size_t segment, std::size_t u0, std::size_t u1, std::size_t ld, T* dst,
                  std::size_t sample_stride = 0) {
  if (sample_stride == 0) sample_stride = channels * len;
  for (std::size_t u = u0; u < u1;) {
    const std::size_t s = u / segment, first = s * segment;
    const std::size_t stop = std::min(u1, first + segment);
    T* piece = dst + (u - u0);  // this piece's start in channel 0's row
    if (s >= n) {
      for (std::size_t c = 0; c < channels; ++c) zero_short(piece + c * ld, stop - u);
    } else {  // sample s fills [first + left, first + left + len) of its segment
      const long j0 = static_cast<long>(u - first), j1 = static_cast<long>(stop - first);
      const long lo = std::clamp(left, j0, j1);
      const long hi = std::clamp(left + static_cast<long>(len), lo, j1);
      const auto before = static_cast<std::size_t>(lo - j0);
      const auto values = static_cast<std::size_t>(hi - lo);
      const auto after = static_cast<std::size_t>(j1 - hi);
      const T* in = src + s * sample_stride + (lo - left);
      for (std::size_t c = 0; c < channels; ++c) {
        T* out = piece + c * ld;
        zero_short(out, before);
        copy_short(in + c * len, values, out + before);
        zero_short(out + before + values, after);
      }
    }
    u = stop;
  }
}

// The columns the kernels compute for a batch laid out in segments: whole tiles.
struct DirectLayout {
  std::size_t samples;
  std::size_t segment;  // per sample: its output length + d(K − 1)
  std::size_t tiles;    // of the kernels' tile width
  std::size_t cols;     // tiles · tile ≥ N · segment
};

template <class T>
DirectLayout direct_layout(std::size_t n, std::size_t out_length, std::size_t span,
                           const conv_kernels::Kernels<T>& kernels) {
  DirectLayout l;
  l.samples = n;
  l.segment = out_length + span;
  l.tiles = (n * l.segment + kernels.tile - 1) / kernels.tile;
  l.cols = l.tiles * kernels.tile;
  return l;
}

// Ranges of tiles small enough that a range's packed input stays in cache (L1/L2) until the
// kernel, and an equal number of them in each thread's part: (tiles a range, threads' parts).
template <class T>
std::pair<std::size_t, std::size_t> tile_ranges(const conv_kernels::Kernels<T>& kernels,
                                                std::size_t tiles, std::size_t c_in, double flop) {
  std::size_t range = std::max<std::size_t>(1, 16384 / (c_in * kernels.tile));
  const std::size_t parts = detail::parallel_parts((tiles + range - 1) / range, flop);
  const std::size_t ranges = round_up((tiles + range - 1) / range, parts);
  return {(tiles + ranges - 1) / ranges, parts};
}

// The correlation of src [N, C, len] (placed in its segments at offset left) with packed
// weights, z[o, u] = init[o] + Σ_c Σ_k wp[(c·K + k)·rows + o] · xp[c, u + k·d] (init: rows
// values, or none), threads splitting the tiles of columns into contiguous parts (thread i takes
// the i-th part of the columns in every pass of conv1d, forward and backward, so the data it
// writes in one pass is in its own cache in the next). A thread works through its part in
// ranges: it packs the input columns a range reads, correlates them, and hands the outputs to
// unpack(s, t0, t1, z, ldz) — sample s's outputs t0 … t1 − 1 are z[o·ldz + t − t0] — while all
// of it is in its cache. Each column is one thread's: the result does not depend on the thread
// count.
//
// Given `out` ([N, rows, out_length]), the kernels write the outputs there themselves (added to
// what it holds when `accumulate`) wherever a tile lies wholly inside one sample's outputs, and
// only the other tiles go through unpack, which must then add to out likewise. Where
// that computes no more tiles than the segments' layout, the tiles are then laid per sample
// instead, from each sample's first output (on conv1d-fwd, 16→32 channels of 256: 4 tiles a
// sample, all written into out, none through unpack, where 1 in 4 of the segments' tiles
// straddled two samples). A column's sum is the same in either layout: the choice does not change
// the result.
template <class T, class Unpack>
void correlate_direct(const conv_kernels::Kernels<T>& kernels, const DirectLayout& l, const T* src,
                      std::size_t c_in, std::size_t len, long left, std::size_t out_length,
                      const T* wp, std::size_t rows, std::size_t kernel, std::size_t dilation,
                      const T* init, T* out, bool accumulate, const Unpack& unpack) {
  const std::size_t span = dilation * (kernel - 1);
  const std::size_t tile = kernels.tile;
  const std::size_t per_sample = (out_length + tile - 1) / tile;
  if (out && l.samples * per_sample <= l.tiles) {
    const std::size_t tiles = l.samples * per_sample;
    const double flop = 2.0 * static_cast<double>(rows * c_in * kernel * tiles * tile);
    const auto [range, parts] = tile_ranges(kernels, tiles, c_in, flop);
    // The columns a range reads: its tiles, the kernel's reach, and the gap between a sample's
    // last tile and the next sample's segment at each of the ⌈range / per_sample⌉ (at most)
    // samples it crosses into.
    const std::size_t gap = l.segment > per_sample * tile ? l.segment - per_sample * tile : 0;
    const std::size_t range_ld = range * tile + span + (range + per_sample - 1) / per_sample * gap;
    Tensor<T> xp(Shape{parts, c_in, range_ld});
    Tensor<T> z(Shape{parts, rows, tile});
    detail::parallel_for_affine(
        tiles, range, flop, [&](std::size_t begin, std::size_t end, std::size_t thread) {
          const auto column = [&](std::size_t t) {  // tile t's first column
            return t / per_sample * l.segment + t % per_sample * tile;
          };
          const std::size_t u0 = column(begin), u1 = column(end - 1) + tile + span;
          T* x_part = xp.data() + thread * c_in * range_ld;
          T* z_part = z.data() + thread * rows * tile;
          pack_columns(src, l.samples, c_in, len, left, l.segment, u0, u1, range_ld, x_part);
          for (std::size_t t = begin; t < end;) {
            const std::size_t s = t / per_sample, j = t % per_sample;
            const std::size_t stop = std::min(end, (s + 1) * per_sample);
            const std::size_t whole = std::min(stop, s * per_sample + out_length / tile);
            if (whole > t)
              kernels.correlate(wp, rows, x_part + (column(t) - u0), range_ld, c_in, kernel,
                                dilation, out + s * rows * out_length + j * tile, out_length, 0,
                                whole - t, accumulate, init);
            if (stop > whole) {  // the sample's last tile, partly past its outputs
              kernels.correlate(wp, rows, x_part + (column(whole) - u0), range_ld, c_in, kernel,
                                dilation, z_part, tile, 0, 1, false, init);
              unpack(s, (whole - s * per_sample) * tile, out_length, z_part, tile);
            }
            t = stop;
          }
        });
    return;
  }
  const double flop = 2.0 * static_cast<double>(rows * c_in * kernel * l.cols);
  const auto [range, parts] = tile_ranges(kernels, l.tiles, c_in, flop);
  const std::size_t range_cols = range * tile;
  const std::size_t range_ld = range_cols + span;
  Tensor<T> xp(Shape{parts, c_in, range_ld});
  Tensor<T> z(Shape{parts, rows, range_cols});
  detail::parallel_for_affine(
      l.tiles, range, flop, [&](std::size_t begin, std::size_t end, std::size_t thread) {
        const std::size_t u0 = begin * tile, u1 = end * tile;
        T* x_part = xp.data() + thread * c_in * range_ld;
        T* z_part = z.data() + thread * rows * range_cols;
        pack_columns(src, l.samples, c_in, len, left, l.segment, u0, u1 + span, range_ld, x_part);
        // Columns [a, b) of z_part, correlated, handed to unpack sample by sample.
        const auto through_z = [&](std::size_t a, std::size_t b) {
          kernels.correlate(wp, rows, x_part + (a - u0), range_ld, c_in, kernel, dilation,
                            z_part + (a - u0), range_cols, 0, (b - a) / tile, false, init);
          for (std::size_t s = a / l.segment; s < l.samples && s * l.segment < b; ++s) {
            const std::size_t first = s * l.segment;
            const std::size_t t0 = a > first ? a - first : 0;
            const std::size_t t1 = std::min(out_length, b - first);
            if (t0 < t1) unpack(s, t0, t1, z_part + (first + t0 - u0), range_cols);
          }
        };
        if (!out) {
          through_z(u0, u1);
          return;
        }
        for (std::size_t t = begin; t < end;) {
          const std::size_t u = t * tile, s = u / l.segment, first = s * l.segment;
          // Up to inside_end, the tiles end within sample s's outputs [first, first + L_out).
          const std::size_t inside_end =
              s < l.samples ? std::min(end, (first + out_length) / tile) : t;
          if (inside_end > t) {
            kernels.correlate(wp, rows, x_part + (u - u0), range_ld, c_in, kernel, dilation,
                              out + s * rows * out_length + (u - first), out_length, 0,
                              inside_end - t, accumulate, init);
            t = inside_end;
          } else {
            through_z(u, u + tile);
            ++t;
          }
        }
      });
}

// y[s, o, t] = b[o] + Σ_c Σ_k w[o, c, k] · x[s, c, t + k·d − left]: with the input packed in
// segments of L_out + d(K − 1), y[s, o, t] = z[o, s·segment + t], the kernels' sums starting
// from b[o]. Where C_out is a whole number of the kernels' row blocks, most tiles go straight
// into y.
template <class T>
void forward_direct(const ConvGeometry& g, const T* x, const T* w, const T* b, T* y) {
  const auto& kernels = conv_kernels::conv_kernels<T>();
  const std::size_t span = g.dilation * (g.kernel - 1);
  const DirectLayout l = direct_layout(g.n, g.l_out, span, kernels);
  const std::size_t rows = round_up(g.c_out, kernels.rows_block);
  Tensor<T> wp(Shape{g.rows(), rows});  // wp[c·K + k, o] = w[o, c, k]
  for (std::size_t j = 0; j < g.rows(); ++j) {
    T* row = wp.data() + j * rows;
    for (std::size_t o = 0; o < g.c_out; ++o) row[o] = w[o * g.rows() + j];
    std::fill(row + g.c_out, row + rows, T(0));
  }
  // The kernels' starting values: b, padded with zeros to a whole row block where C_out is not.
  const T* init = b;
  Tensor<T> padded_bias;
  if (b && rows != g.c_out) {
    padded_bias = Tensor<T>(Shape{rows});
    std::copy(b, b + g.c_out, padded_bias.data());
    std::fill(padded_bias.data() + g.c_out, padded_bias.data() + rows, T(0));
    init = padded_bias.data();
  }
  correlate_direct(kernels, l, x, g.c_in, g.length, static_cast<long>(g.left), g.l_out, wp.data(),
                   rows, g.kernel, g.dilation, init, rows == g.c_out ? y : nullptr, false,
                   [&](std::size_t s, std::size_t t0, std::size_t t1, const T* z, std::size_t ldz) {
                     for (std::size_t o = 0; o < g.c_out; ++o)
                       copy_short(z + o * ldz, t1 - t0, y + (s * g.c_out + o) * g.l_out + t0);
                   });
}

// gx[s, c, i] = Σ_o Σ_k w[o, c, k] · gy[s, o, i + left − k·d]: the full correlation of gy with
// the flipped, transposed kernel w'[c, o, k'] = w[o, c, K − 1 − k'], i.e. the forward kernels
// again, on gy packed with left' = d(K − 1) − left (negative when the padding exceeds the
// kernel) and output length L. Where C_in is a whole number of the kernels' row blocks, most
// tiles are written (or added) into gx by the kernels.
template <class T>
void input_gradient_direct(const ConvGeometry& g, const T* gy, const T* w, const GradSlot<T>& gx) {
  const auto& kernels = conv_kernels::conv_kernels<T>();
  const std::size_t span = g.dilation * (g.kernel - 1);
  const DirectLayout l = direct_layout(g.n, g.length, span, kernels);
  const std::size_t rows = round_up(g.c_in, kernels.rows_block);
  Tensor<T> wp(Shape{g.c_out * g.kernel, rows});  // wp[o·K + k', c] = w[o, c, K − 1 − k']
  for (std::size_t o = 0; o < g.c_out; ++o)
    for (std::size_t k = 0; k < g.kernel; ++k) {
      T* row = wp.data() + (o * g.kernel + k) * rows;
      for (std::size_t c = 0; c < g.c_in; ++c)
        row[c] = w[(o * g.c_in + c) * g.kernel + g.kernel - 1 - k];
      std::fill(row + g.c_in, row + rows, T(0));
    }
  correlate_direct<T>(
      kernels, l, gy, g.c_out, g.l_out, static_cast<long>(span) - static_cast<long>(g.left),
      g.length, wp.data(), rows, g.kernel, g.dilation, nullptr,
      rows == g.c_in ? gx.data() : nullptr, gx.beta() != T(0),
      [&](std::size_t s, std::size_t i0, std::size_t i1, const T* z, std::size_t ldz) {
        for (std::size_t c = 0; c < g.c_in; ++c) {
          const T* from = z + c * ldz;
          const std::size_t to = (s * g.c_in + c) * g.length + i0;
          gx.put_range(to, to + (i1 - i0), [&](std::size_t k) { return from[k - to]; });
        }
      });
}

// gw[o, c, k] = Σ_s Σ_t gy[s, o, t] · x[s, c, t + k·d − left] = Σ_u gz[o, u] · xp[c, u + k·d]
// with x packed as in the forward pass and gy packed in the same segments (left 0, so the
// columns t ≥ L_out hold zeros and add nothing); and, when gb is given, gb[o] = Σ_u gz[o, u].
//
// The columns are cut into slices, a partition fixed by the shape (about 1024 columns each, at
// most 64 slices), and the rows of gw into groups when slices are fewer than threads. Threads
// start on contiguous runs of slices (the columns they own in the other passes: see
// parallel_for_affine); for each slice a thread packs the columns of x and gy it reads into its own
// buffers and writes the slice's partial sums of gw and gb. The partial sums are added in slice
// order: the result depends on the shape only, not on the thread count.
template <class T>
void weight_gradient_direct(const ConvGeometry& g, const T* x, const T* gy, GradSlot<T> gw,
                            const GradSlot<T>* gb) {
  const auto& kernels = conv_kernels::conv_kernels<T>();
  const std::size_t span = g.dilation * (g.kernel - 1);
  const DirectLayout l = direct_layout(g.n, g.l_out, span, kernels);
  const std::size_t ck = g.rows();
  const std::size_t rows = round_up(g.c_out, kernels.grad_rows_block);
  const std::size_t blocks = rows / kernels.grad_rows_block;
  const std::size_t slice_tiles =
      std::max((1024 + kernels.tile - 1) / kernels.tile, (l.tiles + 63) / 64);
  const std::size_t slices = (l.tiles + slice_tiles - 1) / slice_tiles;
  const std::size_t slice_cols = slice_tiles * kernels.tile;
  const double flop = 2.0 * static_cast<double>(rows * ck * l.cols);
  const std::size_t threads = detail::parallel_parts(slices * blocks, flop);
  const std::size_t groups = std::min(blocks, (threads + slices - 1) / slices);
  const std::size_t tasks = slices * groups;
  const std::size_t parts = detail::parallel_parts(tasks, flop);
  Tensor<T> xp(Shape{parts, g.c_in, slice_cols + span});
  Tensor<T> gz(Shape{parts, g.c_out, slice_cols});
  Tensor<T> partial(Shape{slices, g.c_out, ck});
  Tensor<T> bias_partial(Shape{slices, g.c_out});
  detail::parallel_for_affine(
      tasks, 1, flop, [&](std::size_t task, std::size_t, std::size_t thread) {
        T* x_part = xp.data() + thread * g.c_in * (slice_cols + span);
        T* gz_part = gz.data() + thread * g.c_out * slice_cols;
        const std::size_t slice = task / groups, group = task % groups;
        const std::size_t b0 = blocks * group / groups, b1 = blocks * (group + 1) / groups;
        const std::size_t o0 = b0 * kernels.grad_rows_block;
        const std::size_t o1 = std::min(g.c_out, b1 * kernels.grad_rows_block);
        const std::size_t u0 = slice * slice_cols, u1 = std::min(l.cols, u0 + slice_cols);
        pack_columns(x, g.n, g.c_in, g.length, static_cast<long>(g.left), l.segment, u0, u1 + span,
                     slice_cols + span, x_part);
        // gy's rows o0 … o1 − 1 at gz_part[o·slice_cols].
        pack_columns(gy + o0 * g.l_out, g.n, o1 - o0, g.l_out, 0L, l.segment, u0, u1, slice_cols,
                     gz_part + o0 * slice_cols, g.c_out * g.l_out);
        kernels.weight_gradient(gz_part, slice_cols, x_part, slice_cols + span, g.c_in, g.kernel,
                                g.dilation, u1 - u0, partial.data() + slice * g.c_out * ck, ck,
                                g.c_out, b0, b1, false);
        if (gb)
          for (std::size_t o = o0; o < o1; ++o)
            bias_partial[slice * g.c_out + o] =
                detail::sum_contiguous<T, 32>(gz_part + o * slice_cols, u1 - u0);
      });
  const auto add_slices = [slices](const T* parts_sum, std::size_t size, const GradSlot<T>& out) {
    out.put_range(0, size, [&](std::size_t i) {
      T acc = parts_sum[i];
      for (std::size_t s = 1; s < slices; ++s) acc += parts_sum[s * size + i];
      return acc;
    });
  };
  add_slices(partial.data(), g.c_out * ck, gw);
  if (gb) add_slices(bias_partial.data(), g.c_out, *gb);
}

// The direct path wastes the columns between samples (d(K − 1) per sample): taken at stride 1
// when at least half the columns it computes are kept, and for float, where products run on
// oneDNN's sgemm, only when a sample's `kept` columns fill a register tile of the direct kernels:
// on shorter rows im2col + oneDNN's sgemm wins (measured on a 2-core Xeon with AVX-512, one
// thread: the cnn-fashion step, lengths 28 and 14 at 64 columns a tile, 15 % faster with every
// pass on im2col; conv1d 16→32, kernel 5, length 256 forward + backward 1.8× slower there).
template <class T>
bool direct_pays(std::size_t stride, std::size_t kept, std::size_t span) {
  if (stride != 1 || kept < span) return false;
  if constexpr (std::is_same_v<T, float>)
    if (blas::float_products_on_onednn() && kept < conv_kernels::conv_kernels<T>().tile)
      return false;
  return true;
}

}  // namespace tapegrad::detail
