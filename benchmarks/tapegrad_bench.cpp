// tapegrad's side of the benchmarks: the workloads of benchmarks/README.md, the sweep of the
// mlp-fashion step over batch and width (sweep/...), a sweep of single ops, forward and
// forward+backward, and the machine's limits (peak_fma, sgemm_rate), with Google Benchmark. Run
// through benchmarks/compare to see them next to PyTorch; run alone for tapegrad's numbers only.
//
// Each benchmark with a known FLOP count reports GFLOPs (its rate), peak_fma reports
// peak_gflops, and the context names the OpenBLAS kernels that ran (openblas_core). Each also
// reports heap_allocs (operator new calls per iteration, after warm-up: tapegrad's own
// allocations), malloc_calls (every allocation in the process per iteration, C and C++, the
// libraries' included: oneDNN's sgemm takes its packing buffer from malloc on each call) and
// peak_rss_mb (the process's peak resident memory so far).
#include <benchmark/benchmark.h>
#include <cblas.h>
#include <sys/resource.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <functional>
#include <new>
#include <random>
#include <string>
#include <vector>

#include "tapegrad/autodiff/blas.hpp"
#include "tapegrad/layers/layers.hpp"
#include "tapegrad/tapegrad.hpp"
#include "tapegrad/train/peak_flops.hpp"
#include "tapegrad/train/readers.hpp"
#include "tapegrad/train/sgd.hpp"

#include "alloc_counters.hpp"
#include "mlp_flop.hpp"

using namespace tapegrad;

namespace {

Tensor<float> random_tensor(const Shape& shape, std::uint64_t seed, float scale = 1.f) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> u(-scale, scale);
  Tensor<float> t(shape);
  for (float& v : t) v = u(rng);
  return t;
}

double peak_rss_mb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / 1024.0;
}

// Runs `step` in the benchmark loop after a warm-up, and reports allocations per iteration.
void run(benchmark::State& state, const std::function<void()>& step, double flop = 0) {
  for (int i = 0; i < 3; ++i) step();
  timed_counting_allocations(state, step);
  state.counters["peak_rss_mb"] = peak_rss_mb();
  if (flop > 0)
    state.counters["GFLOPs"] =
        benchmark::Counter(flop * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

// ---- the machine's peak float32 FMA rate on tapegrad's thread count (a register-only loop) ----
void peak_fma(benchmark::State& state) {
  PeakFlops p;
  for (auto _ : state) {
    const PeakFlops q = measure_peak_flops(num_threads(), 0.05, 3);
    if (q.gflops > p.gflops) p = q;
  }
  state.counters["peak_gflops"] = p.gflops;
  state.counters["threads"] = static_cast<double>(p.threads);
  state.SetLabel(p.isa);
}

// ---- the sgemm rate of this machine (the floor for BLAS-bound workloads) ----
void sgemm_rate(benchmark::State& state) {
  const std::size_t n = static_cast<std::size_t>(state.range(0));
  const Tensor<float> a = random_tensor({n, n}, 1), b = random_tensor({n, n}, 2);
  Tensor<float> c({n, n});
  run(
      state,
      [&] {
        blas::gemm(Transpose::no, Transpose::no, n, n, n, 1.f, a.data(), b.data(), 0.f, c.data());
      },
      2.0 * n * n * n);
}

// ---- op-overhead: relu forward, sum, backward on [1, 16] ----
void op_overhead(benchmark::State& state) {
  Var<float> x = Var<float>::parameter(random_tensor({1, 16}, 3));
  run(state, [&] {
    sum(relu(x)).backward();
    x.zero_grad();
  });
}

// ---- training steps: zero grads, forward, softmax-cross-entropy, backward, SGD update ----
std::vector<std::int64_t> random_labels(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::int64_t> y(n);
  for (auto& v : y) v = static_cast<std::int64_t>(rng() % 10);
  return y;
}

void train_step(benchmark::State& state, nn::Module<float>& model, const Tensor<float>& x,
                const std::vector<std::int64_t>& y, double flop) {
  SGD<float> sgd(model.parameters(), {0.1, 0.0, 0.0, false, 0.0});
  run(
      state,
      [&] {
        sgd.zero_grad();
        softmax_cross_entropy(model(Var<float>(x)), y).backward();
        sgd.step();
      },
      flop);
}

// FLOP of one conv1d pass at stride 1 ("same" padding): 2·N·C_out·L·C_in·K.
double conv_flop(double n, double c_in, double c_out, double length, double kernel) {
  return 2 * n * c_out * length * c_in * kernel;
}

// cnn-fashion: both convs forward and their weight gradients, the second conv's input gradient,
// and the linear layer's forward, weight and input gradient.
double cnn_flop() {
  const double conv1 = conv_flop(64, 28, 64, 28, 3), conv2 = conv_flop(64, 64, 128, 14, 3);
  const double lin = 2.0 * 64 * 128 * 7 * 10;
  return 2 * conv1 + 3 * conv2 + 3 * lin;
}

void mlp_step(benchmark::State& state, std::vector<std::size_t> sizes, std::size_t batch) {
  const double flop = mlp_flop(sizes, batch);
  nn::Generator g(0);
  auto model = nn::mlp<float>(sizes, nn::Activation::relu, g);
  train_step(state, *model, random_tensor({batch, sizes[0]}, 9), random_labels(batch, 10), flop);
}

// ---- mlp-fashion-grad / -hvp: the gradient of the mlp-fashion loss with respect to every
// parameter, and one Hessian-vector product H v of that loss (v random, one tensor per
// parameter): a create_graph pass, then a reverse pass through it.
void mlp_fashion_derivative(benchmark::State& state, bool hvp) {
  nn::Generator g(0);
  auto model = nn::mlp<float>({784, 256, 128, 10}, nn::Activation::relu, g);
  const Tensor<float> x = random_tensor({64, 784}, 9);
  const std::vector<std::int64_t> y = random_labels(64, 10);
  const std::vector<Var<float>> params = model->parameters();
  std::vector<Var<float>> v;
  for (std::size_t i = 0; i < params.size(); ++i)
    v.emplace_back(random_tensor(params[i].shape(), 20 + i));
  GradOptions keep;
  keep.create_graph = true;
  float sink = 0;
  run(state, [&] {
    const Var<float> loss = softmax_cross_entropy((*model)(Var<float>(x)), y);
    if (!hvp) {
      sink += grad(loss, params)[0].value()[0];
      return;
    }
    const std::vector<Var<float>> gr = grad(loss, params, {}, keep);
    Var<float> inner = sum(gr[0] * v[0]);
    for (std::size_t i = 1; i < gr.size(); ++i) inner = inner + sum(gr[i] * v[i]);
    sink += grad(inner, params)[0].value()[0];
  });
  benchmark::DoNotOptimize(sink);
}

void cnn_step(benchmark::State& state) {
  nn::Generator g(0);
  auto model = nn::cnn1d<float>({28, 64, 128}, 28, 10, 3, 2, g);
  train_step(state, *model, random_tensor({64, 28, 28}, 11), random_labels(64, 12), cnn_flop());
}

void conv_bench(benchmark::State& state, bool backward) {
  nn::Generator g(0);
  nn::Conv1d<float> conv(16, 32, 5, g, 1, 2);
  Var<float> x = Var<float>::parameter(random_tensor({32, 16, 256}, 13));
  const double pass = conv_flop(32, 16, 32, 256, 5);
  if (!backward) {
    NoGradGuard no_grad;
    run(
        state, [&] { benchmark::DoNotOptimize(conv(x).value().data()); }, pass);
    return;
  }
  run(
      state,
      [&] {
        conv.zero_grad();
        x.zero_grad();
        sum(conv(x)).backward();
      },
      3 * pass);
}

// fashion-mlp: one epoch of the MLP 784-256-128-10 on Fashion-MNIST, batch 64, SGD lr 0.05
// momentum 0.9, He-normal init, seed 0 (data loading is outside the timing).
// flush_denormals: as tapegrad's trainer runs (TrainOptions::flush_denormal, its default), or
// keeping them as PyTorch does by default ("/keep-denormals"): without weight decay, the momentum
// buffers of the always-zero pixels' weights decay into denormals after the first epoch.
void fashion_epoch(benchmark::State& state, bool flush_denormals) {
  const bool before = flush_denormal();
  set_flush_denormal(flush_denormals);
  Dataset train = load_mnist_folder(fashion_mnist_folder, "train");
  train.inputs.reshape_in_place({train.size(), 784});
  nn::Generator g(0);
  auto model = nn::mlp<float>({784, 256, 128, 10}, nn::Activation::relu, g);
  SGD<float> sgd(model->parameters(), {0.05, 0.9, 0.0, false, 0.0});
  DataLoader loader(train, {64, true, 0, false});
  Batch batch;
  run(
      state,
      [&] {
        loader.start_epoch();
        while (loader.next(batch)) {
          sgd.zero_grad();
          softmax_cross_entropy((*model)(Var<float>(batch.inputs)), batch.labels).backward();
          sgd.step();
        }
      },
      mlp_flop({784, 256, 128, 10}, train.size()));
  set_flush_denormal(before);
}

// ---- single ops at several sizes: forward, or forward + sum + backward ----
using UnaryOp = Var<float> (*)(const Var<float>&);
void unary_op(benchmark::State& state, UnaryOp op, bool backward) {
  const std::size_t rows = static_cast<std::size_t>(state.range(0));
  const std::size_t cols = static_cast<std::size_t>(state.range(1));
  Var<float> x = Var<float>::parameter(random_tensor({rows, cols}, 4));
  if (!backward) {
    NoGradGuard no_grad;
    run(state, [&] { benchmark::DoNotOptimize(op(x).value().data()); });
    return;
  }
  run(state, [&] {
    sum(op(x)).backward();
    x.zero_grad();
  });
}

void bias_add(benchmark::State& state, bool backward) {
  const std::size_t rows = static_cast<std::size_t>(state.range(0));
  const std::size_t cols = static_cast<std::size_t>(state.range(1));
  Var<float> x = Var<float>::parameter(random_tensor({rows, cols}, 5));
  Var<float> b = Var<float>::parameter(random_tensor({cols}, 6));
  if (!backward) {
    NoGradGuard no_grad;
    run(state, [&] { benchmark::DoNotOptimize((x + b).value().data()); });
    return;
  }
  run(state, [&] {
    sum(x + b).backward();
    x.zero_grad();
    b.zero_grad();
  });
}

void matmul_op(benchmark::State& state, bool backward) {
  const std::size_t n = static_cast<std::size_t>(state.range(0));
  Var<float> a = Var<float>::parameter(random_tensor({n, n}, 7));
  Var<float> b = Var<float>::parameter(random_tensor({n, n}, 8));
  const double flop = 2.0 * n * n * n * (backward ? 3 : 1);
  if (!backward) {
    NoGradGuard no_grad;
    run(
        state, [&] { benchmark::DoNotOptimize(matmul(a, b).value().data()); }, flop);
    return;
  }
  run(
      state,
      [&] {
        sum(matmul(a, b)).backward();
        a.zero_grad();
        b.zero_grad();
      },
      flop);
}

void register_all() {
  benchmark::RegisterBenchmark("peak_fma", peak_fma)->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("sgemm_rate", sgemm_rate)->Arg(1024)->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("op-overhead", op_overhead)->Unit(benchmark::kMicrosecond);
  benchmark::RegisterBenchmark("mlp-small", mlp_step, std::vector<std::size_t>{64, 32, 10}, 32)
      ->Unit(benchmark::kMicrosecond);
  benchmark::RegisterBenchmark("mlp-fashion", mlp_step, std::vector<std::size_t>{784, 256, 128, 10},
                               64)
      ->Unit(benchmark::kMicrosecond);
  benchmark::RegisterBenchmark("mlp-wide", mlp_step, std::vector<std::size_t>{784, 1024, 1024, 10},
                               256)
      ->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("mlp-fashion-grad", mlp_fashion_derivative, false)
      ->Unit(benchmark::kMicrosecond);
  benchmark::RegisterBenchmark("mlp-fashion-hvp", mlp_fashion_derivative, true)
      ->Unit(benchmark::kMicrosecond);
  benchmark::RegisterBenchmark("conv1d-fwd", conv_bench, false)->Unit(benchmark::kMicrosecond);
  benchmark::RegisterBenchmark("conv1d-fwdbwd", conv_bench, true)->Unit(benchmark::kMicrosecond);
  benchmark::RegisterBenchmark("cnn-fashion", cnn_step)->Unit(benchmark::kMicrosecond);
  benchmark::RegisterBenchmark("fashion-mlp-epoch", fashion_epoch, true)
      ->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("fashion-mlp-epoch/keep-denormals", fashion_epoch, false)
      ->Unit(benchmark::kMillisecond);
  // The sweep: the mlp-fashion step at several batches, and the MLP 784-W-W-10 at batch 64.
  for (std::size_t batch : {1, 4, 16, 64, 256, 1024})
    benchmark::RegisterBenchmark(("sweep/batch/" + std::to_string(batch)).c_str(), mlp_step,
                                 std::vector<std::size_t>{784, 256, 128, 10}, batch)
        ->Unit(benchmark::kMicrosecond);
  for (std::size_t width : {64, 128, 256, 512, 1024, 2048, 4096})
    benchmark::RegisterBenchmark(("sweep/width/" + std::to_string(width)).c_str(), mlp_step,
                                 std::vector<std::size_t>{784, width, width, 10}, 64)
        ->Unit(benchmark::kMicrosecond);
  const std::vector<std::pair<long, long>> sizes = {{1, 16}, {64, 256}, {256, 1024}};
  const std::pair<const char*, UnaryOp> unary[] = {{"relu", relu<float>},
                                                   {"sigmoid", sigmoid<float>},
                                                   {"tanh", tanh<float>},
                                                   {"exp", exp<float>}};
  for (bool bwd : {false, true}) {
    const std::string pass = bwd ? "fwdbwd" : "fwd";
    for (const auto& [name, op] : unary) {
      auto* b = benchmark::RegisterBenchmark(("op/" + std::string(name) + "/" + pass).c_str(),
                                             unary_op, op, bwd);
      for (const auto& [r, c] : sizes) b->Args({r, c});
      b->Unit(benchmark::kMicrosecond);
    }
    auto* add = benchmark::RegisterBenchmark(("op/bias_add/" + pass).c_str(), bias_add, bwd);
    for (const auto& [r, c] : sizes) add->Args({r, c});
    add->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark(("op/matmul/" + pass).c_str(), matmul_op, bwd)
        ->Arg(16)
        ->Arg(256)
        ->Arg(1024)
        ->Unit(benchmark::kMicrosecond);
  }
}

}  // namespace

int main(int argc, char** argv) {
  register_all();
  // Which OpenBLAS kernels run (OPENBLAS_CORETYPE in the environment forces a set).
  benchmark::AddCustomContext("openblas_core", openblas_get_corename());
  const char* forced = std::getenv("OPENBLAS_CORETYPE");
  benchmark::AddCustomContext("OPENBLAS_CORETYPE", forced ? forced : "(unset)");
  benchmark::AddCustomContext("tapegrad_threads", std::to_string(num_threads()));
  // What runs float products: oneDNN's sgemm where built with it, else tapegrad's kernels and
  // OpenBLAS (TAPEGRAD_PRODUCTS=builtin forces the latter).
  benchmark::AddCustomContext("float_products", blas::float_products());
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
