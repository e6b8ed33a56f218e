// libtorch's C++ API as a side of benchmarks/compare (Debian's libtorch-dev, 1.13; built only
// where it is installed): the workloads of tapegrad_bench.cpp and torch_bench.py, same shapes
// and steps, float32, CPU, with no Python in the way.
//
// Threads: at::set_num_threads(OMP_NUM_THREADS, else 1), set before anything runs; libtorch's
// matrix products go through OpenBLAS, which benchmarks/compare limits with
// OPENBLAS_NUM_THREADS. Each benchmark with a known FLOP count reports GFLOPs.
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "mlp_flop.hpp"
#include "tapegrad/train/readers.hpp"

namespace {

// MLP with ReLU between layers, He-normal weights and zero biases, as torch_bench.py builds it.
torch::nn::Sequential mlp(const std::vector<std::int64_t>& sizes) {
  torch::nn::Sequential model;
  for (std::size_t i = 0; i + 1 < sizes.size(); ++i) {
    torch::nn::Linear lin(sizes[i], sizes[i + 1]);
    torch::nn::init::kaiming_normal_(lin->weight, 0.0, torch::kFanIn, torch::kReLU);
    torch::nn::init::zeros_(lin->bias);
    model->push_back(lin);
    if (i + 2 < sizes.size()) model->push_back(torch::nn::ReLU());
  }
  return model;
}

torch::nn::Sequential cnn() {
  namespace nn = torch::nn;
  return nn::Sequential(nn::Conv1d(nn::Conv1dOptions(28, 64, 3).padding(1)), nn::ReLU(),
                        nn::MaxPool1d(2), nn::Conv1d(nn::Conv1dOptions(64, 128, 3).padding(1)),
                        nn::ReLU(), nn::MaxPool1d(2), nn::Flatten(), nn::Linear(128 * 7, 10));
}

torch::Tensor rand(std::vector<std::int64_t> shape) {
  return torch::rand(shape) * 2 - 1;
}

double conv_flop(double n, double c_in, double c_out, double length, double kernel) {
  return 2 * n * c_out * length * c_in * kernel;
}

template <class Step>
void run(benchmark::State& state, Step&& step, double flop = 0) {
  for (int i = 0; i < 3; ++i) step();
  for (auto _ : state) step();
  if (flop > 0)
    state.counters["GFLOPs"] =
        benchmark::Counter(flop * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

void train_step(benchmark::State& state, torch::nn::Sequential model, torch::Tensor x,
                torch::Tensor y, double flop) {
  torch::optim::SGD opt(model->parameters(), torch::optim::SGDOptions(0.1));
  run(
      state,
      [&] {
        opt.zero_grad();
        torch::Tensor loss = torch::nn::functional::cross_entropy(model->forward(x), y);
        loss.backward();
        opt.step();
      },
      flop);
}

void sgemm_rate(benchmark::State& state) {
  const std::int64_t n = state.range(0);
  torch::NoGradGuard no_grad;
  torch::Tensor a = rand({n, n}), b = rand({n, n});
  run(
      state, [&] { benchmark::DoNotOptimize(torch::mm(a, b).data_ptr()); }, 2.0 * n * n * n);
}

void op_overhead(benchmark::State& state) {
  torch::Tensor x = rand({1, 16}).requires_grad_();
  run(state, [&] {
    torch::relu(x).sum().backward();
    x.mutable_grad() = torch::Tensor();
  });
}

void mlp_step(benchmark::State& state, std::vector<std::int64_t> sizes, std::int64_t batch) {
  train_step(state, mlp(sizes), rand({batch, sizes[0]}), torch::randint(0, 10, {batch}),
             mlp_flop(sizes, batch));
}

void cnn_step(benchmark::State& state) {
  const double conv1 = conv_flop(64, 28, 64, 28, 3), conv2 = conv_flop(64, 64, 128, 14, 3);
  const double lin = 2.0 * 64 * 128 * 7 * 10;
  train_step(state, cnn(), rand({64, 28, 28}), torch::randint(0, 10, {64}),
             2 * conv1 + 3 * conv2 + 3 * lin);
}

void conv_bench(benchmark::State& state, bool backward) {
  torch::nn::Conv1d conv(torch::nn::Conv1dOptions(16, 32, 5).padding(2));
  const double pass = conv_flop(32, 16, 32, 256, 5);
  if (!backward) {
    torch::Tensor x = rand({32, 16, 256});
    torch::NoGradGuard no_grad;
    run(
        state, [&] { benchmark::DoNotOptimize(conv->forward(x).data_ptr()); }, pass);
    return;
  }
  torch::Tensor x = rand({32, 16, 256}).requires_grad_();
  run(
      state,
      [&] {
        conv->zero_grad();
        x.mutable_grad() = torch::Tensor();
        conv->forward(x).sum().backward();
      },
      3 * pass);
}

// One epoch of the MLP 784-256-128-10 on Fashion-MNIST, batch 64, SGD lr 0.05 momentum 0.9,
// shuffled; the data is loaded (by tapegrad's reader) outside the timing.
void fashion_epoch(benchmark::State& state) {
  tapegrad::Dataset train = tapegrad::load_mnist_folder(tapegrad::fashion_mnist_folder, "train");
  const std::int64_t n = static_cast<std::int64_t>(train.size());
  torch::Tensor images = torch::from_blob(train.inputs.data(), {n, 784}, torch::kFloat32).clone();
  torch::Tensor labels = torch::from_blob(train.labels.data(), {n}, torch::kInt64).clone();
  torch::manual_seed(0);
  auto model = mlp({784, 256, 128, 10});
  torch::optim::SGD opt(model->parameters(), torch::optim::SGDOptions(0.05).momentum(0.9));
  run(
      state,
      [&] {
        torch::Tensor order = torch::randperm(n);
        for (std::int64_t i = 0; i < n; i += 64) {
          torch::Tensor idx = order.slice(0, i, std::min(i + 64, n));
          opt.zero_grad();
          torch::nn::functional::cross_entropy(model->forward(images.index_select(0, idx)),
                                               labels.index_select(0, idx))
              .backward();
          opt.step();
        }
      },
      mlp_flop({784, 256, 128, 10}, n));
}

}  // namespace

int main(int argc, char** argv) {
  const char* omp = std::getenv("OMP_NUM_THREADS");
  at::set_num_threads(omp ? std::max(1, std::atoi(omp)) : 1);
  torch::manual_seed(0);
  benchmark::RegisterBenchmark("sgemm_rate", sgemm_rate)->Arg(1024)->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("op-overhead", op_overhead)->Unit(benchmark::kMicrosecond);
  benchmark::RegisterBenchmark("mlp-small", mlp_step, std::vector<std::int64_t>{64, 32, 10}, 32)
      ->Unit(benchmark::kMicrosecond);
  benchmark::RegisterBenchmark("mlp-fashion", mlp_step,
                               std::vector<std::int64_t>{784, 256, 128, 10}, 64)
      ->Unit(benchmark::kMicrosecond);
  benchmark::RegisterBenchmark("mlp-wide", mlp_step, std::vector<std::int64_t>{784, 1024, 1024, 10},
                               256)
      ->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("conv1d-fwd", conv_bench, false)->Unit(benchmark::kMicrosecond);
  benchmark::RegisterBenchmark("conv1d-fwdbwd", conv_bench, true)->Unit(benchmark::kMicrosecond);
  benchmark::RegisterBenchmark("cnn-fashion", cnn_step)->Unit(benchmark::kMicrosecond);
  benchmark::RegisterBenchmark("fashion-mlp-epoch", fashion_epoch)->Unit(benchmark::kMillisecond);
  for (std::int64_t batch : {1, 4, 16, 64, 256, 1024})
    benchmark::RegisterBenchmark(("sweep/batch/" + std::to_string(batch)).c_str(), mlp_step,
                                 std::vector<std::int64_t>{784, 256, 128, 10}, batch)
        ->Unit(benchmark::kMicrosecond);
  for (std::int64_t width : {64, 128, 256, 512, 1024, 2048, 4096})
    benchmark::RegisterBenchmark(("sweep/width/" + std::to_string(width)).c_str(), mlp_step,
                                 std::vector<std::int64_t>{784, width, width, 10}, 64)
        ->Unit(benchmark::kMicrosecond);
  benchmark::AddCustomContext("libtorch_threads", std::to_string(at::get_num_threads()));
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
