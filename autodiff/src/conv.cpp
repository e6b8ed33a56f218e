#include "tapegrad/autodiff/conv.hpp"

#include <algorithm>
#include <cstring>
#include <string>

#include "conv_kernels.hpp"
#include "parallel.hpp"
#include "strided.hpp"
#include "tapegrad/autodiff/blas.hpp"
#include "tapegrad/autodiff/op.hpp"

namespace tapegrad {

Padding::Padding(const char* name) {
  const std::string n = name ? name : "";
  if (n == "valid")
    mode = Mode::valid;
  else if (n == "same")
    mode = Mode::same;
  else if (n == "full")
    mode = Mode::full;
  else
    throw std::invalid_argument("conv1d: unknown padding \"" + n +
                                "\" (a number of zeros, \"valid\", \"same\" or \"full\")");
}

std::pair<std::size_t, std::size_t> Padding::resolve(std::size_t kernel_eff,
                                                     std::size_t stride) const {
  switch (mode) {
    case Mode::zeros:
      return {amount, amount};
    case Mode::valid:
      return {0, 0};
    case Mode::full:
      return {kernel_eff - 1, kernel_eff - 1};
    case Mode::same:
      if (stride != 1)
        throw std::invalid_argument("conv1d: padding \"same\" needs stride 1, got stride " +
                                    std::to_string(stride));
      return {(kernel_eff - 1) / 2, kernel_eff - 1 - (kernel_eff - 1) / 2};
  }
  return {0, 0};
}

std::string Padding::to_string() const {
  switch (mode) {
    case Mode::zeros:
      return std::to_string(amount);
    case Mode::valid:
      return "\"valid\"";
    case Mode::same:
      return "\"same\"";
    case Mode::full:
      return "\"full\"";
  }
  return "";
}

std::size_t conv1d_output_length(std::size_t length, std::size_t kernel, std::size_t stride,
                                 const Padding& padding, std::size_t dilation) {
  // The message is built only on failure: this runs on every forward pass.
  auto params = [&] {
    return " (length " + std::to_string(length) + ", kernel " + std::to_string(kernel) +
           ", stride " + std::to_string(stride) + ", padding " + padding.to_string() +
           ", dilation " + std::to_string(dilation) + ")";
  };
  if (kernel == 0 || stride == 0 || dilation == 0)
    throw std::invalid_argument("conv1d: kernel, stride and dilation must be positive" + params());
  const std::size_t k_eff = dilation * (kernel - 1) + 1;
  const auto [left, right] = padding.resolve(k_eff, stride);
  const std::size_t padded = length + left + right;
  if (padded < k_eff)
    throw ShapeError("conv1d: the input, padded to length " + std::to_string(padded) +
                     ", is shorter than the effective kernel d(K - 1) + 1 = " +
                     std::to_string(k_eff) + params());
  return (padded - k_eff) / stride + 1;
}

namespace {
struct ConvGeometry {
  std::size_t n, c_in, length, c_out, kernel, stride, dilation, left, l_out;
  std::size_t rows() const { return c_in * kernel; }  // of the im2col matrix
};

template <class T>
ConvGeometry geometry(const Shape& xs, const Shape& ws, const Var<T>* b, std::size_t stride,
                      const Padding& padding, std::size_t dilation) {
  if (xs.rank() != 3)
    throw ShapeError("conv1d: input must be [N, C_in, L], got shape " + xs.to_string());
  if (ws.rank() != 3)
    throw ShapeError("conv1d: weight must be [C_out, C_in, K], got shape " + ws.to_string());
  if (xs[1] != ws[1])
    throw ShapeError("conv1d: input " + xs.to_string() + " has " + std::to_string(xs[1]) +
                     " channels but weight " + ws.to_string() + " expects " +
                     std::to_string(ws[1]));
  if (b && b->defined() && b->shape() != Shape{ws[0]})
    throw ShapeError("conv1d: bias of shape " + b->shape().to_string() + " for weight " +
                     ws.to_string() + " (expected [" + std::to_string(ws[0]) + "])");
  // PyTorch's errors for empty shapes: no output channels; samples of length 0 (unless there are
  // no samples or no channels).
  if (ws[0] == 0) throw ShapeError("conv1d: weight " + ws.to_string() + " has no output channels");
  if (xs[2] == 0 && xs[0] != 0 && xs[1] != 0)
    throw ShapeError("conv1d: input " + xs.to_string() +
                     " has samples of length 0 (only an empty batch or no channels may be empty)");
  ConvGeometry g{xs[0], xs[1], xs[2], ws[0], ws[2], stride, dilation, 0, 0};
  g.l_out = conv1d_output_length(xs[2], ws[2], stride, padding, dilation);
  g.left = padding.resolve(dilation * (ws[2] - 1) + 1, stride).first;
  return g;
}

// The im2col matrix of the whole batch, [C_in·K, N·L_out]: sample s fills columns
// s·L_out … (s + 1)·L_out − 1, with col[c·K + k, s·L_out + t] = x[s, c, t·s + k·d − left]
// (0 outside the input). Then y = W · col is one gemm for the batch.
template <class T>
void im2col(const ConvGeometry& g, const T* x, T* col) {
  const std::size_t ld = g.n * g.l_out;
  for (std::size_t s = 0; s < g.n; ++s)
    for (std::size_t c = 0; c < g.c_in; ++c)
      for (std::size_t k = 0; k < g.kernel; ++k) {
        T* row = col + (c * g.kernel + k) * ld + s * g.l_out;
        const T* xc = x + (s * g.c_in + c) * g.length;
        const long offset = static_cast<long>(k * g.dilation) - static_cast<long>(g.left);
        for (std::size_t t = 0; t < g.l_out; ++t) {
          const long i = static_cast<long>(t * g.stride) + offset;
          row[t] = (i >= 0 && i < static_cast<long>(g.length)) ? xc[i] : T(0);
        }
      }
}

// The adjoint of im2col: gx[s, c, t·s + k·d − left] += gcol[c·K + k, s·L_out + t].
template <class T>
void col2im(const ConvGeometry& g, const T* gcol, T* gx) {
  const std::size_t ld = g.n * g.l_out;
  for (std::size_t s = 0; s < g.n; ++s)
    for (std::size_t c = 0; c < g.c_in; ++c)
      for (std::size_t k = 0; k < g.kernel; ++k) {
        const T* row = gcol + (c * g.kernel + k) * ld + s * g.l_out;
        T* gxc = gx + (s * g.c_in + c) * g.length;
        const long offset = static_cast<long>(k * g.dilation) - static_cast<long>(g.left);
        for (std::size_t t = 0; t < g.l_out; ++t) {
          const long i = static_cast<long>(t * g.stride) + offset;
          if (i >= 0 && i < static_cast<long>(g.length)) gxc[i] += row[t];
        }
      }
}

// ---- the direct path (stride 1): packed rows and the kernels of conv_kernels.hpp ----

std::size_t round_up(std::size_t n, std::size_t multiple) {
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

// The correlation of src [N, C, len] (placed in its segments at offset left) with packed
// weights, z[o, u] = Σ_c Σ_k wp[(c·K + k)·rows + o] · xp[c, u + k·d], threads splitting the
// tiles of columns into contiguous parts (thread i takes the i-th part of the columns in every
// pass of conv1d, forward and backward, so the data it writes in one pass is in its own cache in
// the next). A thread works through its part in ranges: it packs the input columns a range reads,
// correlates them, and hands the outputs to unpack(s, t0, t1, z, ldz) — sample s's outputs
// t0 … t1 − 1 are z[o·ldz + t − t0] — while all of it is in its cache. Each column is one
// thread's: the result does not depend on the thread count.
template <class T, class Unpack>
void correlate_direct(const conv_kernels::Kernels<T>& kernels, const DirectLayout& l, const T* src,
                      std::size_t c_in, std::size_t len, long left, std::size_t out_length,
                      const T* wp, std::size_t rows, std::size_t kernel, std::size_t dilation,
                      const Unpack& unpack) {
  const std::size_t span = dilation * (kernel - 1);
  const double flop = 2.0 * static_cast<double>(rows * c_in * kernel * l.cols);
  // Ranges small enough that a range's packed input stays in cache (L1/L2) until the kernel,
  // and an equal number of them in each thread's part.
  std::size_t range = std::max<std::size_t>(1, 16384 / (c_in * kernels.tile));
  const std::size_t parts = detail::parallel_parts((l.tiles + range - 1) / range, flop);
  const std::size_t ranges = round_up((l.tiles + range - 1) / range, parts);
  range = (l.tiles + ranges - 1) / ranges;
  const std::size_t range_cols = range * kernels.tile;
  const std::size_t range_ld = range_cols + span;
  Tensor<T> xp(Shape{parts, c_in, range_ld});
  Tensor<T> z(Shape{parts, rows, range_cols});
  detail::parallel_for_affine(
      l.tiles, range, flop, [&](std::size_t begin, std::size_t end, std::size_t thread) {
        const std::size_t u0 = begin * kernels.tile, u1 = end * kernels.tile;
        T* x_part = xp.data() + thread * c_in * range_ld;
        T* z_part = z.data() + thread * rows * range_cols;
        pack_columns(src, l.samples, c_in, len, left, l.segment, u0, u1 + span, range_ld, x_part);
        kernels.correlate(wp, rows, x_part, range_ld, c_in, kernel, dilation, z_part, range_cols, 0,
                          end - begin, false);
        for (std::size_t s = u0 / l.segment; s < l.samples && s * l.segment < u1; ++s) {
          const std::size_t first = s * l.segment;
          const std::size_t t0 = u0 > first ? u0 - first : 0;
          const std::size_t t1 = std::min(out_length, u1 - first);
          if (t0 < t1) unpack(s, t0, t1, z_part + (first + t0 - u0), range_cols);
        }
      });
}

// y[s, o, t] = b[o] + Σ_c Σ_k w[o, c, k] · x[s, c, t + k·d − left]: with the input packed in
// segments of L_out + d(K − 1), y[s, o, t] = b[o] + z[o, s·segment + t].
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
  correlate_direct(kernels, l, x, g.c_in, g.length, static_cast<long>(g.left), g.l_out, wp.data(),
                   rows, g.kernel, g.dilation,
                   [&](std::size_t s, std::size_t t0, std::size_t t1, const T* z, std::size_t ldz) {
                     for (std::size_t o = 0; o < g.c_out; ++o) {
                       const T* from = z + o * ldz;
                       T* to = y + (s * g.c_out + o) * g.l_out + t0;
                       const T bias = b ? b[o] : T(0);
                       for (std::size_t t = 0; t < t1 - t0; ++t) to[t] = from[t] + bias;
                     }
                   });
}

// gx[s, c, i] = Σ_o Σ_k w[o, c, k] · gy[s, o, i + left − k·d]: the full correlation of gy with
// the flipped, transposed kernel w'[c, o, k'] = w[o, c, K − 1 − k'], i.e. the forward kernels
// again, on gy packed with left' = d(K − 1) − left (negative when the padding exceeds the
// kernel) and output length L. Adds to gx unless overwrite.
template <class T>
void input_gradient_direct(const ConvGeometry& g, const T* gy, const T* w, T* gx, bool overwrite) {
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
  correlate_direct(kernels, l, gy, g.c_out, g.l_out,
                   static_cast<long>(span) - static_cast<long>(g.left), g.length, wp.data(), rows,
                   g.kernel, g.dilation,
                   [&](std::size_t s, std::size_t i0, std::size_t i1, const T* z, std::size_t ldz) {
                     for (std::size_t c = 0; c < g.c_in; ++c) {
                       const T* from = z + c * ldz;
                       T* to = gx + (s * g.c_in + c) * g.length + i0;
                       if (overwrite)
                         std::copy(from, from + (i1 - i0), to);
                       else
                         for (std::size_t i = 0; i < i1 - i0; ++i) to[i] += from[i];
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
// order: the result depends on the shape only, not on the thread count. Adds to gw and gb unless
// their overwrite flag is set.
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
                detail::sum_contiguous(gz_part + o * slice_cols, u1 - u0);
      });
  const auto add_slices = [slices](const T* parts_sum, std::size_t size, GradSlot<T> out) {
    for (std::size_t i = 0; i < size; ++i) {
      T acc = parts_sum[i];
      for (std::size_t s = 1; s < slices; ++s) acc += parts_sum[s * size + i];
      out.data[i] = out.overwrite ? acc : out.data[i] + acc;
    }
  };
  add_slices(partial.data(), g.c_out * ck, gw);
  if (gb) add_slices(bias_partial.data(), g.c_out, *gb);
}

// The direct path wastes the columns between samples (d(K − 1) per sample): taken at stride 1
// when at least half the columns it computes are kept.
bool direct_pays(std::size_t stride, std::size_t kept, std::size_t span) {
  return stride == 1 && kept >= span;
}

// ---- the im2col path (any stride) ----

// gy [N, C_out, L_out] as [C_out, N·L_out], the layout of the im2col gemm's output.
template <class T>
Tensor<T> gemm_layout(const ConvGeometry& g, const T* gy) {
  const std::size_t cols = g.n * g.l_out;
  Tensor<T> gout(Shape{g.c_out, cols});
  for (std::size_t s = 0; s < g.n; ++s)
    for (std::size_t o = 0; o < g.c_out; ++o)
      std::copy_n(gy + (s * g.c_out + o) * g.l_out, g.l_out, gout.data() + o * cols + s * g.l_out);
  return gout;
}

template <class T>
void forward_im2col(const ConvGeometry& g, const T* x, const T* w, const T* b, T* y) {
  const std::size_t cols = g.n * g.l_out;
  Tensor<T> col(Shape{g.rows(), cols});
  im2col(g, x, col.data());
  // out[C_out, N·L_out] = W[C_out, C_in·K] · col, then each sample's block moves to y[s] (+ b).
  Tensor<T> out(Shape{g.c_out, cols});
  blas::gemm(blas::Transpose::no, blas::Transpose::no, g.c_out, cols, g.rows(), T(1), w, col.data(),
             T(0), out.data());
  for (std::size_t s = 0; s < g.n; ++s)
    for (std::size_t o = 0; o < g.c_out; ++o) {
      const T* from = out.data() + o * cols + s * g.l_out;
      T* to = y + (s * g.c_out + o) * g.l_out;
      const T bias = b ? b[o] : T(0);
      for (std::size_t t = 0; t < g.l_out; ++t) to[t] = from[t] + bias;
    }
}

// gW[C_out, C_in·K] = gout · colᵀ.
template <class T>
void weight_gradient_im2col(const ConvGeometry& g, const T* x, const Tensor<T>& gout, T* gw,
                            bool overwrite) {
  Tensor<T> col(Shape{g.rows(), g.n * g.l_out});
  im2col(g, x, col.data());
  blas::gemm(blas::Transpose::no, blas::Transpose::yes, g.c_out, g.rows(), g.n * g.l_out, T(1),
             gout.data(), col.data(), overwrite ? T(0) : T(1), gw);
}

// gcol = Wᵀ · gout, scattered back by col2im.
template <class T>
void input_gradient_im2col(const ConvGeometry& g, const T* w, const Tensor<T>& gout, T* gx,
                           bool overwrite) {
  Tensor<T> col(Shape{g.rows(), g.n * g.l_out});
  blas::gemm(blas::Transpose::yes, blas::Transpose::no, g.rows(), g.n * g.l_out, g.c_out, T(1), w,
             gout.data(), T(0), col.data());
  if (overwrite) std::fill(gx, gx + g.n * g.c_in * g.length, T(0));
  col2im(g, col.data(), gx);
}

// gb[o] (+)= Σ_s Σ_t gy[s, o, t]: added to the slot unless it is to be overwritten.
template <class T>
void bias_gradient(const ConvGeometry& g, const T* gy, GradSlot<T> slot) {
  if (slot.overwrite) std::fill(slot.data, slot.data + slot.size, T(0));
  for (std::size_t s = 0; s < g.n; ++s)
    for (std::size_t o = 0; o < g.c_out; ++o)
      slot.data[o] += detail::sum_contiguous(gy + (s * g.c_out + o) * g.l_out, g.l_out);
}

// No samples or no input channels: no products of x and w at all (the kernels' blocking would
// divide by zero). y = b broadcast (0 without a bias); gx and gw are zero (gx is empty, gw too
// when C_in = 0; with N = 0 gw is a sum over no samples); gb[o] = Σ_s Σ_t gy[s, o, t].
template <class T>
Var<T> conv1d_without_products(const ConvGeometry& g, const Var<T>& x, const Var<T>& w,
                               const Var<T>& b, Tensor<T> y) {
  const bool has_bias = b.defined();
  for (std::size_t s = 0; s < g.n; ++s)
    for (std::size_t o = 0; o < g.c_out; ++o)
      std::fill_n(y.data() + (s * g.c_out + o) * g.l_out, g.l_out, has_bias ? b.value()[o] : T(0));
  auto backward = [g, has_bias](const Tensor<T>& gy, Gradients<T>& gr) {
    for (std::size_t i = 0; i < 2; ++i)
      if (gr.needed(i)) gr.accumulate(i, [](std::size_t) { return T(0); });
    if (has_bias && gr.needed(2)) bias_gradient(g, gy.data(), gr.slot(2));
  };
  if (has_bias) return make_op<T>("conv1d", {x, w, b}, std::move(y), std::move(backward));
  return make_op<T>("conv1d", {x, w}, std::move(y), std::move(backward));
}

}  // namespace

template <class T>
Var<T> conv1d(const Var<T>& x, const Var<T>& w, const Var<T>& b, std::size_t stride,
              const Padding& padding, std::size_t dilation) {
  const ConvGeometry g = geometry(x.shape(), w.shape(), &b, stride, padding, dilation);
  const std::size_t span = g.dilation * (g.kernel - 1);
  const bool has_bias = b.defined();
  Tensor<T> y(Shape{g.n, g.c_out, g.l_out});
  const T* bias = has_bias ? b.value().data() : nullptr;
  if (g.n == 0 || g.c_in == 0) return conv1d_without_products(g, x, w, b, std::move(y));
  if (direct_pays(stride, g.l_out, span))
    forward_direct(g, x.value().data(), w.value().data(), bias, y.data());
  else
    forward_im2col(g, x.value().data(), w.value().data(), bias, y.data());
  auto backward = [g, span, has_bias](const Tensor<T>& gy, Gradients<T>& gr) {
    const bool direct_w = direct_pays(g.stride, g.l_out, span);
    const bool direct_x = direct_pays(g.stride, g.length, span);
    Tensor<T> gout;  // gy in the im2col layout, made only if the im2col path needs it
    if ((gr.needed(1) && !direct_w) || (gr.needed(0) && !direct_x))
      gout = gemm_layout(g, gy.data());
    if (gr.needed(1)) {
      GradSlot<T> slot = gr.slot(1);
      if (direct_w) {
        GradSlot<T> bias_slot{};
        if (has_bias && gr.needed(2)) bias_slot = gr.slot(2);
        weight_gradient_direct(g, gr.input(0).data(), gy.data(), slot,
                               has_bias && gr.needed(2) ? &bias_slot : nullptr);
      } else
        weight_gradient_im2col(g, gr.input(0).data(), gout, slot.data, slot.overwrite);
    }
    const bool bias_done = direct_w && gr.needed(1);  // by weight_gradient_direct
    if (has_bias && gr.needed(2) && !bias_done) bias_gradient(g, gy.data(), gr.slot(2));
    if (gr.needed(0)) {
      GradSlot<T> slot = gr.slot(0);
      if (direct_x)
        input_gradient_direct(g, gy.data(), gr.input(1).data(), slot.data, slot.overwrite);
      else
        input_gradient_im2col(g, gr.input(1).data(), gout, slot.data, slot.overwrite);
    }
  };
  if (has_bias) return make_op<T>("conv1d", {x, w, b}, std::move(y), std::move(backward));
  return make_op<T>("conv1d", {x, w}, std::move(y), std::move(backward));
}

namespace reference {

template <class T>
Tensor<T> conv1d(const Tensor<T>& x, const Tensor<T>& w, const Tensor<T>& b, std::size_t stride,
                 const Padding& padding, std::size_t dilation) {
  const Var<T> bias = b.defined() ? Var<T>(b) : Var<T>();
  const ConvGeometry g = geometry(x.shape(), w.shape(), &bias, stride, padding, dilation);
  Tensor<T> y = Tensor<T>::zeros({g.n, g.c_out, g.l_out});
  for (std::size_t s = 0; s < g.n; ++s)
    for (std::size_t o = 0; o < g.c_out; ++o)
      for (std::size_t t = 0; t < g.l_out; ++t) {
        T acc = b.defined() ? b[o] : T(0);
        for (std::size_t c = 0; c < g.c_in; ++c)
          for (std::size_t k = 0; k < g.kernel; ++k) {
            const long i = static_cast<long>(t * stride + k * dilation) - static_cast<long>(g.left);
            if (i >= 0 && i < static_cast<long>(g.length))
              acc += w.at({o, c, k}) * x.at({s, c, static_cast<std::size_t>(i)});
          }
        y.at({s, o, t}) = acc;
      }
  return y;
}

template <class T>
void conv1d_backward(const Tensor<T>& x, const Tensor<T>& w, const Tensor<T>& gy,
                     std::size_t stride, const Padding& padding, std::size_t dilation,
                     Tensor<T>& gx, Tensor<T>& gw, Tensor<T>& gb) {
  const ConvGeometry g = geometry<T>(x.shape(), w.shape(), nullptr, stride, padding, dilation);
  gx = Tensor<T>::zeros(x.shape());
  gw = Tensor<T>::zeros(w.shape());
  gb = Tensor<T>::zeros({g.c_out});
  for (std::size_t s = 0; s < g.n; ++s)
    for (std::size_t o = 0; o < g.c_out; ++o)
      for (std::size_t t = 0; t < g.l_out; ++t) {
        const T grad = gy.at({s, o, t});
        gb[o] += grad;
        for (std::size_t c = 0; c < g.c_in; ++c)
          for (std::size_t k = 0; k < g.kernel; ++k) {
            const long i = static_cast<long>(t * stride + k * dilation) - static_cast<long>(g.left);
            if (i < 0 || i >= static_cast<long>(g.length)) continue;
            const std::size_t iu = static_cast<std::size_t>(i);
            gw.at({o, c, k}) += grad * x.at({s, c, iu});
            gx.at({s, c, iu}) += grad * w.at({o, c, k});
          }
      }
}

}  // namespace reference

#define TAPEGRAD_INSTANTIATE(T)                                                                    \
  template Var<T> conv1d(const Var<T>&, const Var<T>&, const Var<T>&, std::size_t, const Padding&, \
                         std::size_t);                                                             \
  template Tensor<T> reference::conv1d(const Tensor<T>&, const Tensor<T>&, const Tensor<T>&,       \
                                       std::size_t, const Padding&, std::size_t);                  \
  template void reference::conv1d_backward(const Tensor<T>&, const Tensor<T>&, const Tensor<T>&,   \
                                           std::size_t, const Padding&, std::size_t, Tensor<T>&,   \
                                           Tensor<T>&, Tensor<T>&);
TAPEGRAD_INSTANTIATE(float)
TAPEGRAD_INSTANTIATE(double)
#undef TAPEGRAD_INSTANTIATE

}  // namespace tapegrad
