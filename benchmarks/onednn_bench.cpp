// oneDNN's side of benchmarks/compare (Debian's libdnnl-dev, oneDNN 2.6; built only where it is
// installed): the floors a kernel library sets for tapegrad's BLAS- and conv-bound workloads.
//
// - products/<mlp>: exactly the matrix products of one tapegrad MLP training step, in
//   dnnl_sgemm (row-major): per layer the forward x·Wᵀ, the weight gradient gyᵀ·x, and for every
//   layer but the first the input gradient gy·W. Nothing else of the step (no bias, ReLU, loss,
//   update): the time a step cannot go below while its products run in oneDNN.
// - conv1d-fwd and conv1d-fwdbwd (Conv1d 16→32, kernel 5, padding 2, bias, input [32, 16, 256]):
//   oneDNN's convolution primitives, "/primitive" alone on data already in the layouts they
//   choose, "/plain" including the reorders from and to plain [N, C, L] layout that a caller
//   holding plain tensors pays (source and weights in, output out; backward: the output's
//   gradient in, the input's and weights' gradients out).
// - sgemm_rate/1024: dnnl_sgemm on 1024³.
//
// Threads: oneDNN runs on OpenMP here; benchmarks/compare sets OMP_NUM_THREADS. Each benchmark
// reports GFLOPs, its FLOP (multiply-add = 2) over its time.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdio>
#include <oneapi/dnnl/dnnl.hpp>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

namespace {

using dt = dnnl::memory::data_type;
using tag = dnnl::memory::format_tag;

std::vector<float> random_vector(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  std::vector<float> v(n);
  for (float& x : v) x = u(rng);
  return v;
}

void sgemm(char ta, char tb, std::int64_t m, std::int64_t n, std::int64_t k, const float* a,
           std::int64_t lda, const float* b, std::int64_t ldb, float* c, std::int64_t ldc) {
  if (dnnl_sgemm(ta, tb, m, n, k, 1.f, a, lda, b, ldb, 0.f, c, ldc) != dnnl_success) {
    std::fprintf(stderr, "onednn_bench: dnnl_sgemm failed\n");
    std::abort();
  }
}

void report(benchmark::State& state, double flop) {
  state.counters["GFLOPs"] =
      benchmark::Counter(flop * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

void sgemm_rate(benchmark::State& state) {
  const std::int64_t n = state.range(0);
  const auto a = random_vector(n * n, 1), b = random_vector(n * n, 2);
  std::vector<float> c(n * n);
  for (int i = 0; i < 2; ++i) sgemm('N', 'N', n, n, n, a.data(), n, b.data(), n, c.data(), n);
  for (auto _ : state) sgemm('N', 'N', n, n, n, a.data(), n, b.data(), n, c.data(), n);
  report(state, 2.0 * n * n * n);
}

// The products of one step of the MLP `sizes` at `batch`, with tapegrad's layouts: x [B, in],
// W [out, in], y and gy [B, out].
void mlp_products(benchmark::State& state, std::vector<std::int64_t> sizes, std::int64_t batch) {
  const std::size_t layers = sizes.size() - 1;
  std::vector<std::vector<float>> x(layers), w(layers), gw(layers), gy(layers), gx(layers);
  double flop = 0;
  for (std::size_t l = 0; l < layers; ++l) {
    const std::int64_t in = sizes[l], out = sizes[l + 1];
    x[l] = random_vector(batch * in, 10 + l);
    w[l] = random_vector(out * in, 20 + l);
    gw[l].resize(out * in);
    gy[l] = random_vector(batch * out, 30 + l);
    gx[l].resize(batch * in);
    flop += 2.0 * batch * in * out * (l > 0 ? 3 : 2);
  }
  std::vector<float> y(batch * *std::max_element(sizes.begin(), sizes.end()));
  const auto step = [&] {
    for (std::size_t l = 0; l < layers; ++l) {  // forward
      const std::int64_t in = sizes[l], out = sizes[l + 1];
      sgemm('N', 'T', batch, out, in, x[l].data(), in, w[l].data(), in, y.data(), out);
    }
    for (std::size_t l = layers; l-- > 0;) {  // backward
      const std::int64_t in = sizes[l], out = sizes[l + 1];
      sgemm('T', 'N', out, in, batch, gy[l].data(), out, x[l].data(), in, gw[l].data(), in);
      if (l > 0)
        sgemm('N', 'N', batch, in, out, gy[l].data(), out, w[l].data(), in, gx[l].data(), in);
    }
  };
  for (int i = 0; i < 3; ++i) step();
  for (auto _ : state) step();
  report(state, flop);
}

// ---- conv1d ----
struct Conv {
  static constexpr std::int64_t n = 32, c_in = 16, c_out = 32, length = 256, kernel = 5, pad = 2;
  dnnl::engine eng{dnnl::engine::kind::cpu, 0};
  dnnl::stream strm{eng};
  dnnl::memory::desc src_plain{{n, c_in, length}, dt::f32, tag::ncw};
  dnnl::memory::desc wei_plain{{c_out, c_in, kernel}, dt::f32, tag::oiw};
  dnnl::memory::desc bias_plain{{c_out}, dt::f32, tag::x};
  dnnl::memory::desc dst_plain{{n, c_out, length}, dt::f32, tag::ncw};
  // Plain tensors, as the caller holds them.
  dnnl::memory src{src_plain, eng}, wei{wei_plain, eng}, bias{bias_plain, eng}, dst{dst_plain, eng};
  dnnl::memory diff_dst{dst_plain, eng}, diff_src{src_plain, eng}, diff_wei{wei_plain, eng};
  dnnl::memory diff_bias{bias_plain, eng};
  dnnl::convolution_forward::primitive_desc fwd_pd;
  dnnl::convolution_backward_data::primitive_desc bwd_data_pd;
  dnnl::convolution_backward_weights::primitive_desc bwd_wei_pd;

  explicit Conv(dnnl::prop_kind kind) {
    fill(src, 1);
    fill(wei, 2);
    fill(bias, 3);
    float* g = static_cast<float*>(diff_dst.get_data_handle());
    for (std::size_t i = 0; i < dst_plain.get_size() / sizeof(float); ++i) g[i] = 1.f;  // d sum
    const dnnl::memory::desc any_src({n, c_in, length}, dt::f32, tag::any);
    const dnnl::memory::desc any_wei({c_out, c_in, kernel}, dt::f32, tag::any);
    const dnnl::memory::desc any_dst({n, c_out, length}, dt::f32, tag::any);
    const dnnl::memory::dims strides{1}, padding{pad};
    fwd_pd = {{kind, dnnl::algorithm::convolution_direct, any_src, any_wei, bias_plain, any_dst,
               strides, padding, padding},
              eng};
    if (kind == dnnl::prop_kind::forward_training) {
      bwd_data_pd = {{dnnl::algorithm::convolution_direct, any_src, any_wei, any_dst, strides,
                      padding, padding},
                     eng,
                     fwd_pd};
      bwd_wei_pd = {{dnnl::algorithm::convolution_direct, any_src, any_wei, bias_plain, any_dst,
                     strides, padding, padding},
                    eng,
                    fwd_pd};
    }
  }

  static void fill(dnnl::memory& m, std::uint64_t seed) {
    const std::size_t count = m.get_desc().get_size() / sizeof(float);
    const auto v = random_vector(count, seed);
    std::copy(v.begin(), v.end(), static_cast<float*>(m.get_data_handle()));
  }

  // The memory in layout `want` for the plain memory `plain`: itself if the layouts agree.
  dnnl::memory in_layout(const dnnl::memory& plain, const dnnl::memory::desc& want) {
    if (plain.get_desc() == want) return plain;
    return dnnl::memory(want, eng);
  }
  // Copies between layouts (nothing when `from` and `to` are the same memory).
  void reorder(const dnnl::memory& from, const dnnl::memory& to) {
    if (from.get_data_handle() == to.get_data_handle()) return;
    dnnl::reorder(from, to).execute(strm, const_cast<dnnl::memory&>(from),
                                    const_cast<dnnl::memory&>(to));
  }
};

// FLOP of one pass: 2·N·C_out·L·C_in·K.
constexpr double conv_pass_flop =
    2.0 * Conv::n * Conv::c_out * Conv::length * Conv::c_in * Conv::kernel;

void conv_fwd(benchmark::State& state, bool plain) {
  Conv c(dnnl::prop_kind::forward_inference);
  dnnl::memory src = c.in_layout(c.src, c.fwd_pd.src_desc());
  dnnl::memory wei = c.in_layout(c.wei, c.fwd_pd.weights_desc());
  dnnl::memory dst = c.in_layout(c.dst, c.fwd_pd.dst_desc());
  dnnl::convolution_forward fwd(c.fwd_pd);
  c.reorder(c.src, src);
  c.reorder(c.wei, wei);
  const auto step = [&] {
    if (plain) {
      c.reorder(c.src, src);
      c.reorder(c.wei, wei);
    }
    fwd.execute(c.strm, {{DNNL_ARG_SRC, src},
                         {DNNL_ARG_WEIGHTS, wei},
                         {DNNL_ARG_BIAS, c.bias},
                         {DNNL_ARG_DST, dst}});
    if (plain) c.reorder(dst, c.dst);
    c.strm.wait();
  };
  for (int i = 0; i < 3; ++i) step();
  for (auto _ : state) step();
  report(state, conv_pass_flop);
  state.SetLabel(std::string(plain ? "from plain layout" : "primitive alone") +
                 (src.get_desc() == c.src_plain ? ", src plain" : ", src blocked"));
}

void conv_fwdbwd(benchmark::State& state, bool plain) {
  Conv c(dnnl::prop_kind::forward_training);
  // Forward.
  dnnl::memory src = c.in_layout(c.src, c.fwd_pd.src_desc());
  dnnl::memory wei = c.in_layout(c.wei, c.fwd_pd.weights_desc());
  dnnl::memory dst = c.in_layout(c.dst, c.fwd_pd.dst_desc());
  // Backward data: dsrc = conv_bwd(ddst, W).
  dnnl::memory bd_ddst = c.in_layout(c.diff_dst, c.bwd_data_pd.diff_dst_desc());
  dnnl::memory bd_wei = c.bwd_data_pd.weights_desc() == wei.get_desc()
                            ? wei
                            : c.in_layout(c.wei, c.bwd_data_pd.weights_desc());
  dnnl::memory bd_dsrc = c.in_layout(c.diff_src, c.bwd_data_pd.diff_src_desc());
  // Backward weights: dW, db from src and ddst.
  dnnl::memory bw_src =
      c.bwd_wei_pd.src_desc() == src.get_desc() ? src : c.in_layout(c.src, c.bwd_wei_pd.src_desc());
  dnnl::memory bw_ddst = c.bwd_wei_pd.diff_dst_desc() == bd_ddst.get_desc()
                             ? bd_ddst
                             : c.in_layout(c.diff_dst, c.bwd_wei_pd.diff_dst_desc());
  dnnl::memory bw_dwei = c.in_layout(c.diff_wei, c.bwd_wei_pd.diff_weights_desc());
  dnnl::convolution_forward fwd(c.fwd_pd);
  dnnl::convolution_backward_data bwd_data(c.bwd_data_pd);
  dnnl::convolution_backward_weights bwd_wei(c.bwd_wei_pd);
  const auto to_layouts = [&] {
    c.reorder(c.src, src);
    c.reorder(c.wei, wei);
    c.reorder(c.wei, bd_wei);
    c.reorder(c.src, bw_src);
    c.reorder(c.diff_dst, bd_ddst);
    c.reorder(c.diff_dst, bw_ddst);
  };
  to_layouts();
  const auto step = [&] {
    if (plain) {
      c.reorder(c.src, src);
      c.reorder(c.wei, wei);
      c.reorder(c.wei, bd_wei);
      c.reorder(c.src, bw_src);
    }
    fwd.execute(c.strm, {{DNNL_ARG_SRC, src},
                         {DNNL_ARG_WEIGHTS, wei},
                         {DNNL_ARG_BIAS, c.bias},
                         {DNNL_ARG_DST, dst}});
    if (plain) {
      c.reorder(dst, c.dst);
      c.reorder(c.diff_dst, bd_ddst);
      c.reorder(c.diff_dst, bw_ddst);
    }
    bwd_data.execute(
        c.strm,
        {{DNNL_ARG_DIFF_DST, bd_ddst}, {DNNL_ARG_WEIGHTS, bd_wei}, {DNNL_ARG_DIFF_SRC, bd_dsrc}});
    bwd_wei.execute(c.strm, {{DNNL_ARG_SRC, bw_src},
                             {DNNL_ARG_DIFF_DST, bw_ddst},
                             {DNNL_ARG_DIFF_WEIGHTS, bw_dwei},
                             {DNNL_ARG_DIFF_BIAS, c.diff_bias}});
    if (plain) {
      c.reorder(bd_dsrc, c.diff_src);
      c.reorder(bw_dwei, c.diff_wei);
    }
    c.strm.wait();
  };
  for (int i = 0; i < 3; ++i) step();
  for (auto _ : state) step();
  report(state, 3 * conv_pass_flop);
  state.SetLabel(plain ? "from plain layout" : "primitive alone");
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::RegisterBenchmark("sgemm_rate", sgemm_rate)->Arg(1024)->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("products/mlp-small", mlp_products,
                               std::vector<std::int64_t>{64, 32, 10}, 32)
      ->Unit(benchmark::kMicrosecond);
  benchmark::RegisterBenchmark("products/mlp-fashion", mlp_products,
                               std::vector<std::int64_t>{784, 256, 128, 10}, 64)
      ->Unit(benchmark::kMicrosecond);
  benchmark::RegisterBenchmark("products/mlp-wide", mlp_products,
                               std::vector<std::int64_t>{784, 1024, 1024, 10}, 256)
      ->Unit(benchmark::kMillisecond);
  for (bool plain : {false, true}) {
    const std::string how = plain ? "/plain" : "/primitive";
    benchmark::RegisterBenchmark(("conv1d-fwd" + how).c_str(), conv_fwd, plain)
        ->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark(("conv1d-fwdbwd" + how).c_str(), conv_fwdbwd, plain)
        ->Unit(benchmark::kMicrosecond);
  }
  const dnnl_version_t* v = dnnl_version();
  benchmark::AddCustomContext(
      "onednn_version",
      std::to_string(v->major) + "." + std::to_string(v->minor) + "." + std::to_string(v->patch));
  benchmark::AddCustomContext("onednn_cpu_isa",
                              std::to_string(static_cast<int>(dnnl::get_effective_cpu_isa())));
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
