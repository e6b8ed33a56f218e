// dlib's DNN API as a side of benchmarks/compare (Debian's libdlib-dev, 19.24; built only where
// it is installed): the workloads of tapegrad_bench.cpp that dlib can run, same shapes, same
// data (the same generators and seeds), float32, CPU.
//
// mlp-small, mlp-fashion, mlp-wide: one SGD step (lr 0.1, no momentum, no weight decay) of
// loss_multiclass_log<fc<10, relu<fc<..., input<matrix<float>>>>>> on a fixed batch. The step
// is exactly what dnn_trainer runs per mini-batch (dlib/dnn/trainer.h):
// net.compute_parameter_gradients(x, labels) — forward, softmax cross-entropy averaged over the
// batch, backward — then net.update_parameters(solvers, lr), with one dlib::sgd(0, 0) per
// computational layer. dnn_trainer itself is not used: it runs those two calls on a worker
// thread fed by a loader thread, so timing it would time its queues and synchronisation too. The
// batch is converted to a tensor (net.to_tensor, what dnn_trainer's loader thread does) once,
// outside the timing, as tapegrad and libtorch keep theirs as one tensor. dlib needs no separate
// "zero grads": its backward overwrites every parameter gradient and zeroes the layer gradients
// it accumulates into. Differences in the work, all dlib's own and kept: its first fc layer
// always computes the gradient with respect to the input (an extra product of batch × inputs ×
// outputs, which tapegrad and libtorch skip: 1.41× tapegrad's FLOP in mlp-small, 1.40× in
// mlp-fashion, 1.17× in mlp-wide) after zeroing an input-sized buffer; its SGD writes the step
// to a buffer, then adds it to the parameters. The GFLOPs counter uses tapegrad's FLOP count, so
// the rates compare. The variants `<workload>/no-input-grad` replace the first fc by
// fc_no_input_grad (below: dlib's fc_ whose backward leaves out that product; dlib still
// zeroes the buffer) to show what it costs; benchmarks/compare's default filter does not select
// them.
//
// op-overhead: loss_dot<relu<input<matrix<float>>>> on a [1, 16] sample with the label −1
// everywhere, so the loss is the sum of relu(x) and its gradient is 1; compute_parameter_gradients
// runs relu forward, the loss, relu backward and writes the gradient with respect to x
// (get_final_data_gradient, zeroed by dlib first). The arithmetic is tapegrad's op-overhead; the
// difference is that dlib's graph is fixed by the network's type, so nothing is recorded: this
// times dlib's per-layer dispatch, not a tape.
//
// Threads and BLAS: Debian builds dlib with DLIB_USE_BLAS and DLIB_USE_LAPACK (dlib/config.h)
// and links it to libblas.so.3 and liblapack.so.3, which Debian's alternatives point at
// OpenBLAS (openblas-pthread) where libopenblas-dev is installed; every fc product
// (tt::gemm) is a cblas_sgemm call into it. The context below names the library that
// cblas_sgemm resolved to and, if it is OpenBLAS, its kernels and thread count. OpenBLAS's
// threads follow OPENBLAS_NUM_THREADS (benchmarks/compare sets it with OMP_NUM_THREADS); dlib's
// own CPU layers (bias, relu, softmax, the loss, SGD) run on the calling thread. Each benchmark
// reports process_threads (the process's threads after warm-up, from /proc/self/status),
// heap_allocs (operator new calls per iteration after warm-up), malloc_calls (every C allocation
// per iteration) and, where the FLOP are known, GFLOPs.
#include <benchmark/benchmark.h>
#include <dlfcn.h>
#include <dlib/dnn.h>
#include <dlib/revision.h>

#include <atomic>
#include <climits>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <new>
#include <random>
#include <string>
#include <vector>

#include "alloc_counters.hpp"
#include "mlp_flop.hpp"

namespace {

// dlib's fc_ (with bias) whose backward computes the parameter gradients only, not the gradient
// with respect to its input: for the first layer, where that gradient is never used.
template <unsigned long num_outputs>
class fc_no_input_grad_ : public dlib::fc_<num_outputs, dlib::FC_HAS_BIAS> {
 public:
  template <typename SUBNET>
  void backward(const dlib::tensor& gradient_input, SUBNET& sub, dlib::tensor& params_grad) {
    const dlib::tensor& x = sub.get_output();
    const dlib::alias_tensor weights(x.k() * x.nr() * x.nc(), num_outputs);
    const dlib::alias_tensor biases(1, num_outputs);
    auto w = weights(params_grad, 0);
    dlib::tt::gemm(0, w, 1, x, true, gradient_input, false);
    auto b = biases(params_grad, weights.size());
    dlib::tt::assign_bias_gradient(b, gradient_input);
  }
};
template <unsigned long num_outputs, typename SUBNET>
using fc_no_input_grad = dlib::add_layer<fc_no_input_grad_<num_outputs>, SUBNET>;

using dlib::fc;
using dlib::relu;
using in = dlib::input<dlib::matrix<float>>;
template <typename SUBNET>
using loss = dlib::loss_multiclass_log<SUBNET>;

using mlp_small = loss<fc<10, relu<fc<32, in>>>>;
using mlp_fashion = loss<fc<10, relu<fc<128, relu<fc<256, in>>>>>>;
using mlp_wide = loss<fc<10, relu<fc<1024, relu<fc<1024, in>>>>>>;
using mlp_small_no_input_grad = loss<fc<10, relu<fc_no_input_grad<32, in>>>>;
using mlp_fashion_no_input_grad = loss<fc<10, relu<fc<128, relu<fc_no_input_grad<256, in>>>>>>;
using mlp_wide_no_input_grad = loss<fc<10, relu<fc<1024, relu<fc_no_input_grad<1024, in>>>>>>;

// A batch of `rows` samples of `cols` values, uniform in [−1, 1): the values, in order, of
// tapegrad_bench's random_tensor({rows, cols}, seed).
std::vector<dlib::matrix<float>> random_samples(std::size_t rows, std::size_t cols,
                                                std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  std::vector<dlib::matrix<float>> samples(rows, dlib::matrix<float>(1, static_cast<long>(cols)));
  for (auto& s : samples)
    for (long c = 0; c < s.nc(); ++c) s(0, c) = u(rng);
  return samples;
}

// tapegrad_bench's random_labels(n, seed).
std::vector<unsigned long> random_labels(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<unsigned long> y(n);
  for (auto& v : y) v = static_cast<unsigned long>(rng() % 10);
  return y;
}

double process_threads() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);)
    if (line.rfind("Threads:", 0) == 0) return std::atof(line.c_str() + 8);
  return 0;
}

// Runs `step` in the benchmark loop after a warm-up, and reports allocations per iteration.
void run(benchmark::State& state, const std::function<void()>& step, double flop = 0) {
  for (int i = 0; i < 3; ++i) step();
  state.counters["process_threads"] = process_threads();
  timed_counting_allocations(state, step);
  if (flop > 0)
    state.counters["GFLOPs"] =
        benchmark::Counter(flop * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

template <typename Net>
void mlp_step(benchmark::State& state, std::vector<std::size_t> sizes, std::size_t batch) {
  std::srand(0);  // fc_ seeds its initial weights with std::rand()
  Net net;
  const std::vector<dlib::matrix<float>> samples = random_samples(batch, sizes[0], 9);
  const std::vector<unsigned long> labels = random_labels(batch, 10);
  dlib::resizable_tensor x;
  net.to_tensor(samples.begin(), samples.end(), x);
  std::vector<dlib::sgd> solvers(Net::num_computational_layers, dlib::sgd(0.f, 0.f));
  double loss_sum = 0;
  run(
      state,
      [&] {
        loss_sum += net.compute_parameter_gradients(x, labels.begin());
        net.update_parameters(solvers, 0.1);
      },
      mlp_flop(sizes, batch));
  benchmark::DoNotOptimize(loss_sum);
}

void op_overhead(benchmark::State& state) {
  dlib::loss_dot<relu<in>> net;
  const std::vector<dlib::matrix<float>> sample = random_samples(1, 16, 3);
  const std::vector<dlib::matrix<float, 0, 1>> minus_ones(
      1, dlib::matrix<float, 0, 1>(dlib::uniform_matrix<float>(16, 1, -1.f)));
  dlib::resizable_tensor x;
  net.to_tensor(sample.begin(), sample.end(), x);
  float sink = 0;
  run(state, [&] {
    net.compute_parameter_gradients(x, minus_ones.begin());
    sink += net.get_final_data_gradient().host()[0];
  });
  benchmark::DoNotOptimize(sink);
}

// The BLAS that dlib's cblas_sgemm calls resolved to, and OpenBLAS's settings if it is OpenBLAS.
void add_blas_context() {
  std::string library = "(cblas_sgemm not found)";
  if (void* sgemm = dlsym(RTLD_DEFAULT, "cblas_sgemm")) {
    Dl_info info{};
    if (dladdr(sgemm, &info) && info.dli_fname) {
      char resolved[PATH_MAX];
      library = realpath(info.dli_fname, resolved) ? resolved : info.dli_fname;
    }
  }
  benchmark::AddCustomContext("blas_library", library);
  using name_fn = char* (*)();
  using count_fn = int (*)();
  const auto core = reinterpret_cast<name_fn>(dlsym(RTLD_DEFAULT, "openblas_get_corename"));
  const auto config = reinterpret_cast<name_fn>(dlsym(RTLD_DEFAULT, "openblas_get_config"));
  const auto threads = reinterpret_cast<count_fn>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
  benchmark::AddCustomContext("openblas_core", core ? core() : "(not OpenBLAS)");
  benchmark::AddCustomContext("openblas_config", config ? config() : "(not OpenBLAS)");
  benchmark::AddCustomContext("openblas_threads", threads ? std::to_string(threads()) : "?");
  const char* forced = std::getenv("OPENBLAS_CORETYPE");
  benchmark::AddCustomContext("OPENBLAS_CORETYPE", forced ? forced : "(unset)");
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::RegisterBenchmark("op-overhead", op_overhead)->Unit(benchmark::kMicrosecond);
  benchmark::RegisterBenchmark("mlp-small", mlp_step<mlp_small>,
                               std::vector<std::size_t>{64, 32, 10}, 32)
      ->Unit(benchmark::kMicrosecond);
  benchmark::RegisterBenchmark("mlp-fashion", mlp_step<mlp_fashion>,
                               std::vector<std::size_t>{784, 256, 128, 10}, 64)
      ->Unit(benchmark::kMicrosecond);
  benchmark::RegisterBenchmark("mlp-wide", mlp_step<mlp_wide>,
                               std::vector<std::size_t>{784, 1024, 1024, 10}, 256)
      ->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("mlp-small/no-input-grad", mlp_step<mlp_small_no_input_grad>,
                               std::vector<std::size_t>{64, 32, 10}, 32)
      ->Unit(benchmark::kMicrosecond);
  benchmark::RegisterBenchmark("mlp-fashion/no-input-grad", mlp_step<mlp_fashion_no_input_grad>,
                               std::vector<std::size_t>{784, 256, 128, 10}, 64)
      ->Unit(benchmark::kMicrosecond);
  benchmark::RegisterBenchmark("mlp-wide/no-input-grad", mlp_step<mlp_wide_no_input_grad>,
                               std::vector<std::size_t>{784, 1024, 1024, 10}, 256)
      ->Unit(benchmark::kMillisecond);
  benchmark::AddCustomContext("dlib_version", std::to_string(DLIB_MAJOR_VERSION) + "." +
                                                  std::to_string(DLIB_MINOR_VERSION) + "." +
                                                  std::to_string(DLIB_PATCH_VERSION));
  add_blas_context();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
