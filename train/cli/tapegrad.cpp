// The tapegrad command: train, evaluate and summarise classifiers and regression models.
// clang-format off
//  tapegrad train   --model mlp:784-256-128-10 --data fashion-mnist --out out
//  tapegrad eval    --model mlp:784-256-128-10 --weights out/model.safetensors --data fashion-mnist
//  tapegrad train   --task regression --model mlp:8-32-1 --data train.csv --test test.csv
//  tapegrad eval    --task regression --model mlp:8-32-1 --weights out/model.safetensors --test test.csv
//  tapegrad summary --model cnn
//  tapegrad bench   --model cnn,norm=batch --batch 64 --threads 2 --steps 20 --trace trace.json
// clang-format on
// Every command takes --help. Errors are one line on stderr and a non-zero exit.
#include <CLI/CLI.hpp>

#include <sys/stat.h>
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <limits>
#include <memory>
#include <optional>
#include <random>
#include <sstream>

#include "tapegrad/autodiff/blas.hpp"
#include "tapegrad/autodiff/losses.hpp"
#include "tapegrad/autodiff/profiler.hpp"
#include "tapegrad/autodiff/threads.hpp"
#include "tapegrad/layers/safetensors.hpp"
#include "tapegrad/train/augment.hpp"
#include "tapegrad/train/make_optimizer.hpp"
#include "tapegrad/train/model_file.hpp"
#include "tapegrad/train/models.hpp"
#include "tapegrad/train/peak_flops.hpp"
#include "tapegrad/train/readers.hpp"
#include "tapegrad/train/trainer.hpp"
#ifdef TAPEGRAD_WITH_MPI
#include "tapegrad/train/distributed.hpp"
#endif

using namespace tapegrad;

namespace {

struct DataOptions {
  std::string data = "fashion-mnist";
  std::string test;          // CSV: a separate test file
  std::string label_column;  // CSV
  bool standardize = false;
  std::string task = "classification";
  std::string target_columns;  // CSV, regression: comma-separated names
  bool regression() const { return task == "regression"; }
};

void add_data_options(CLI::App* cmd, DataOptions& d) {
  cmd->add_option("--data", d.data,
                  "fashion-mnist (the dataset-fashion-mnist package), an MNIST-layout IDX folder, "
                  "or a CSV file with a header")
      ->capture_default_str();
  cmd->add_option("--test", d.test, "CSV only: the test set file");
  cmd->add_option("--label-column", d.label_column, "CSV only: the label column (default: last)");
  cmd->add_flag("--standardize", d.standardize,
                "standardise each feature with the training set's mean and deviation");
  cmd->add_option("--task", d.task,
                  "classification (class labels) or regression (real-valued CSV targets, "
                  "standardised with the training set's mean and deviation, metrics MAE, RMSE "
                  "and R2 in their units)")
      ->capture_default_str()
      ->check(CLI::IsMember({"classification", "regression"}));
  cmd->add_option(
      "--target-columns", d.target_columns,
      "regression, CSV: the target columns, A,B,... by header name (default: the last column; "
      "eval: the model's)");
}

std::vector<std::string> split_names(const std::string& text) {
  std::vector<std::string> names;
  std::size_t start = 0;
  for (std::size_t i = 0; i <= text.size(); ++i)
    if (i == text.size() || text[i] == ',') {
      names.push_back(text.substr(start, i - start));
      start = i + 1;
    }
  return names;
}

std::string join_names(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& n : names) out += (out.empty() ? "" : ",") + n;
  return out;
}

// Refuses flags of the other task.
void check_task_flags(const DataOptions& d) {
  if (d.regression() && !d.label_column.empty())
    throw std::invalid_argument(
        "--label-column does not apply to --task regression (name the targets with "
        "--target-columns)");
  if (!d.regression() && !d.target_columns.empty())
    throw std::invalid_argument("--target-columns applies to --task regression only");
}

// Validators whose messages name the value: "--lr: 'abc' is not a number". CLI11 would
// otherwise wrap negative counts and clamp those beyond 64 bits.
bool parse_number(const std::string& text, double& v) {
  std::size_t used = 0;
  try {
    v = std::stod(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  return used == text.size() && !text.empty();
}
CLI::Validator number_at_least(double low, const char* what) {
  return CLI::Validator(
      [low, what](std::string& text) -> std::string {
        double v = 0;
        if (!parse_number(text, v)) return "'" + text + "' is not a number";
        if (!std::isfinite(v)) return "'" + text + "' is not a finite number";
        if (!(v >= low) || (low > 0 && v == 0)) return "'" + text + "' is not " + what;
        return "";
      },
      what);
}
const CLI::Validator non_negative = number_at_least(0, ">= 0");
const CLI::Validator positive = number_at_least(1e-300, "> 0");

CLI::Validator number_in(double low, double high) {
  std::ostringstream text;
  text << "[" << low << ", " << high << "]";
  const std::string range = text.str();
  return CLI::Validator(
      [low, high, range](std::string& text) -> std::string {
        double v = 0;
        if (!parse_number(text, v) || !(v >= low && v <= high))
          return "'" + text + "' is not a number in " + range;
        return "";
      },
      "in " + range);
}

// Decimal digits only, within [low, 2^64 − 1].
CLI::Validator whole_number_from(std::uint64_t low) {
  const std::string range = "[" + std::to_string(low) + ", " +
                            std::to_string(std::numeric_limits<std::uint64_t>::max()) + "]";
  return CLI::Validator(
      [low, range](std::string& text) -> std::string {
        errno = 0;
        const unsigned long long v = std::strtoull(text.c_str(), nullptr, 10);
        if (text.empty() || text.find_first_not_of("0123456789") != std::string::npos ||
            errno == ERANGE || v < low)
          return "'" + text + "' is not a whole number in " + range;
        return "";
      },
      "integer in " + range);
}
const CLI::Validator count = whole_number_from(0);
const CLI::Validator positive_count = whole_number_from(1);

bool is_directory(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

bool is_idx(const DataOptions& d) {
  return d.data == "fashion-mnist" || is_directory(d.data);
}

[[noreturn]] void refuse_idx(const DataOptions& d) {
  throw std::invalid_argument(
      "--task regression needs a CSV file with numeric target columns; --data " + d.data +
      " is IDX image data with class labels");
}

// Throws, naming the model and the columns, unless the model has one output per target.
void check_output_width(const ModelSpec& spec, const Dataset& data) {
  const std::size_t k = data.target_count();
  if (spec.classes != k)
    throw std::invalid_argument("model " + spec.text + " has " + std::to_string(spec.classes) +
                                (spec.classes == 1 ? " output" : " outputs") + " but there " +
                                (k == 1 ? "is " : "are ") + std::to_string(k) + " target column" +
                                (k == 1 ? "" : "s") + " (" + join_names(data.target_names) +
                                "): its last layer must have one output per target");
}

// The training and test sets named by the options, shaped for the model, the inputs'
// standardisation (undefined tensors without --standardize), and the shape of a sample as the
// files hold it (IDX images: [rows, columns]; CSV: [features]).
struct LoadedData {
  Dataset train, test;
  Standardizer inputs;
  Shape file_sample_shape;
};
LoadedData load_data(const DataOptions& d, const ModelSpec& spec) {
  check_task_flags(d);
  Dataset train, test;
  Standardizer inputs;
  if (d.regression() && is_idx(d)) refuse_idx(d);
  if (is_idx(d)) {
    const std::string folder = d.data == "fashion-mnist" ? fashion_mnist_folder : d.data;
    train = load_mnist_folder(folder, "train");
    test = load_mnist_folder(folder, "test");
  } else {
    if (d.test.empty())
      throw std::invalid_argument("--data " + d.data +
                                  " is a CSV file: name its test set with --test");
    CsvOptions csv;
    if (d.regression()) {
      csv.regression = true;
      if (!d.target_columns.empty()) csv.target_columns = split_names(d.target_columns);
    } else {
      csv.label_column = d.label_column;
      csv.classes = spec.classes;  // labels must be outputs of the model
    }
    train = read_csv(d.data, csv);
    test = read_csv(d.test, csv);
  }
  if (d.regression()) check_output_width(spec, train);
  const Shape file_sample_shape = train.sample_shape();
  if (d.standardize) {
    inputs = Standardizer::fit(train);
    inputs.apply(train);
    inputs.apply(test);
  }
  shape_for_model(train, spec, d.data);
  shape_for_model(test, spec, d.test.empty() ? d.data : d.test);
  return {std::move(train), std::move(test), std::move(inputs), file_sample_shape};
}

// The test set of a regression model's evaluation: --test, or --data when there is no --test,
// with the model's targets (those --target-columns names must be the same) and its inputs
// standardised as in training.
Dataset load_regression_test(const DataOptions& d, const ModelSpec& spec,
                             const RegressionModelInfo& info, const std::string& weights) {
  check_task_flags(d);
  if (is_idx(d) && d.test.empty()) refuse_idx(d);
  CsvOptions csv;
  csv.regression = true;
  csv.target_columns = info.target_names;
  if (!d.target_columns.empty() && split_names(d.target_columns) != info.target_names)
    throw std::invalid_argument("--target-columns " + d.target_columns + ": " + weights +
                                " was trained on the target columns " +
                                join_names(info.target_names));
  const std::string path = d.test.empty() ? d.data : d.test;
  Dataset test = read_csv(path, csv);
  check_output_width(spec, test);
  if (d.standardize && !info.inputs.mean.defined())
    throw std::invalid_argument("--standardize: " + weights +
                                " holds no input standardisation (it was trained without "
                                "--standardize)");
  if (info.inputs.mean.defined()) info.inputs.apply(test);  // as the model was trained
  shape_for_model(test, spec, path);
  return test;
}

void print_regression(const RegressionEvaluation& e, const std::vector<std::string>& names,
                      const RegressionLoss& loss, std::size_t n) {
  std::printf(
      "test MAE %.4f, RMSE %.4f, R2 %.4f (test loss %.4f: %s on standardised targets, %zu "
      "samples)\n",
      e.metrics.mae, e.metrics.rmse, e.metrics.r2, e.loss, loss.name(), n);
  if (names.size() > 1)
    for (std::size_t k = 0; k < names.size(); ++k)
      std::printf("  %s: MAE %.4f, RMSE %.4f, R2 %.4f\n", names[k].c_str(),
                  e.metrics.mae_per_target[k], e.metrics.rmse_per_target[k],
                  e.metrics.r2_per_target[k]);
}

void print_evaluation(const Evaluation& e, std::size_t n) {
  std::printf("test loss %.4f, test accuracy %.4f (%zu samples)\n", e.loss, e.accuracy, n);
  std::printf("per-class accuracy:");
  for (std::size_t c = 0; c < e.per_class_accuracy.size(); ++c)
    std::printf(" %zu:%.3f", c, e.per_class_accuracy[c]);
  std::printf("\nconfusion matrix (rows: true class, columns: predicted):\n");
  for (const auto& row : e.confusion) {
    for (std::size_t v : row) std::printf(" %5zu", v);
    std::printf("\n");
  }
}

struct BenchOptions {
  std::size_t batch = 64;
  std::size_t steps = 20;
  std::size_t warmup = 3;
  std::size_t threads = 0;
  std::string trace;
};

constexpr const char* bench_footer =
    "Columns: forward is the model and the loss, backward is loss.backward(), optimizer is "
    "step() and zero_grad() of the default recipe's optimiser (SGD with momentum), step is "
    "their sum; median_ms, min_ms and max_ms are over the timed steps, in milliseconds; "
    "samples/s is the batch size over the median step; gflop/step is the FLOP the ops report "
    "per step (products: 2·m·n·k each, forward and backward), gflop/s that over the median "
    "step, and % of peak that rate over the machine's peak float32 FMA rate on the same threads, "
    "measured after the steps (a register-only FMA loop: tapegrad::measure_peak_flops). The "
    "first line names what runs the float matrix products (oneDNN's sgemm where tapegrad is built "
    "with it; TAPEGRAD_PRODUCTS=builtin in the environment forces tapegrad's kernels and "
    "OpenBLAS). The "
    "per-op table that follows: op, calls (forward calls), bwd_calls (backward rules run), "
    "forward_ms, backward_ms and total_ms (summed over the timed steps), % (share of the sum of "
    "all ops' times), gflop and gflop/s (the op's FLOP and their rate over its total time; - for "
    "ops that report none); an op's forward time is the time from the previous op to it (see "
    "docs/benchmarking.md). Inputs are standard normal, labels uniform; the model is in training "
    "mode. The profiler records during the timed steps (about 75 ns per op event on a 2-core VM: "
    "see docs/benchmarking.md).";

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int run_bench(const ModelSpec& spec, const BenchOptions& b, std::uint64_t seed) {
  if (b.threads > 0) set_num_threads(b.threads);
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal;
  Tensor<float> x(spec.batch_shape(b.batch));
  for (float& v : x) v = normal(rng);
  std::vector<std::int64_t> y(b.batch);
  for (std::int64_t& v : y) v = static_cast<std::int64_t>(rng() % spec.classes);
  std::unique_ptr<Optimizer<float>> opt =
      make_optimizer(default_train_options().optimizer, *spec.model);
  spec.model->train();
  using clock = std::chrono::steady_clock;
  const auto ms = [](clock::time_point a, clock::time_point c) {
    return std::chrono::duration<double, std::milli>(c - a).count();
  };
  std::vector<double> forward, backward, step, total;
  std::optional<Profiler> prof;
  for (std::size_t s = 0; s < b.warmup + b.steps; ++s) {
    if (s == b.warmup) prof.emplace();
    const clock::time_point t0 = clock::now();
    Var<float> loss = softmax_cross_entropy((*spec.model)(Var<float>(x)), y);
    const clock::time_point t1 = clock::now();
    loss.backward();
    const clock::time_point t2 = clock::now();
    opt->step();
    opt->zero_grad();
    const clock::time_point t3 = clock::now();
    Profiler::mark();
    if (s < b.warmup) continue;
    forward.push_back(ms(t0, t1));
    backward.push_back(ms(t1, t2));
    step.push_back(ms(t2, t3));
    total.push_back(ms(t0, t3));
  }
  prof->stop();
  std::printf("bench %s: batch %zu, %zu threads, %zu steps after %zu warm-up; float products: %s\n",
              spec.text.c_str(), b.batch, num_threads(), b.steps, b.warmup, blas::float_products());
  std::printf("%-10s %10s %10s %10s\n", "phase", "median_ms", "min_ms", "max_ms");
  const auto row = [](const char* name, const std::vector<double>& v) {
    std::printf("%-10s %10.3f %10.3f %10.3f\n", name, median(v),
                *std::min_element(v.begin(), v.end()), *std::max_element(v.begin(), v.end()));
  };
  row("forward", forward);
  row("backward", backward);
  row("optimizer", step);
  row("step", total);
  std::printf("samples/s %.0f\n", static_cast<double>(b.batch) / (median(total) * 1e-3));
  const double flop = prof->total_flops() / static_cast<double>(b.steps);
  const PeakFlops peak = measure_peak_flops(num_threads());
  const double rate = flop / (median(total) * 1e-3) * 1e-9;
  std::printf(
      "gflop/step %.4f, gflop/s %.1f, peak %.1f GFLOP/s (%zu threads, %s): %.1f%% of peak\n\n",
      flop * 1e-9, rate, peak.gflops, peak.threads, peak.isa,
      peak.gflops > 0 ? 100 * rate / peak.gflops : 0.0);
  std::fflush(stdout);
  prof->print(std::cout);
  if (!b.trace.empty()) {
    prof->write_chrome_trace(b.trace);
    std::cout << "wrote " << b.trace << "\n";
  }
  return 0;
}

}  // namespace

// The values of the optimiser flags, and the options that say whether each was given.
struct OptimizerFlags {
  double lr, momentum;
  bool nesterov;
  double weight_decay;
  std::string betas;
  double eps, alpha;
  bool amsgrad;
};
struct OptimizerFlagOptions {
  CLI::Option *lr, *momentum, *nesterov, *weight_decay, *betas, *eps, *alpha, *amsgrad;
};

// The optimiser the flags ask for: for SGD the recipe's settings, for another optimiser
// PyTorch's defaults, each replaced by the flags given. A flag that does not apply to the
// optimiser is refused, naming both.
OptimizerSpec optimizer_from_flags(const std::string& name, const OptimizerSpec& recipe,
                                   const OptimizerFlagOptions& given, const OptimizerFlags& v) {
  using Kind = OptimizerSpec::Kind;
  OptimizerSpec s;
  s.kind = OptimizerSpec::parse_kind(name);
  if (s.kind == Kind::sgd)
    s = recipe;
  else
    s.lr = s.kind == Kind::adam || s.kind == Kind::adamw ? 1e-3 : 1e-2;
  s.kind = OptimizerSpec::parse_kind(name);
  s.no_decay_bias_norm = recipe.no_decay_bias_norm;
  auto applies = [&](CLI::Option* o, std::initializer_list<Kind> kinds, const char* which) {
    if (o->count() == 0) return false;
    for (Kind k : kinds)
      if (k == s.kind) return true;
    throw std::invalid_argument(o->get_name() + " does not apply to --optimizer " + name +
                                " (only to " + which + ")");
  };
  if (given.lr->count()) s.lr = v.lr;
  if (given.weight_decay->count()) s.weight_decay = v.weight_decay;
  if (applies(given.momentum, {Kind::sgd, Kind::rmsprop}, "sgd and rmsprop"))
    s.momentum = v.momentum;
  if (applies(given.nesterov, {Kind::sgd}, "sgd")) s.nesterov = v.nesterov;
  if (applies(given.amsgrad, {Kind::adam, Kind::adamw}, "adam and adamw")) s.amsgrad = v.amsgrad;
  if (applies(given.alpha, {Kind::rmsprop}, "rmsprop")) s.alpha = v.alpha;
  if (applies(given.eps, {Kind::adam, Kind::adamw, Kind::rmsprop, Kind::adagrad},
              "adam, adamw, rmsprop and adagrad"))
    s.eps = v.eps;
  if (applies(given.betas, {Kind::adam, Kind::adamw}, "adam and adamw")) {
    const std::size_t comma = v.betas.find(',');
    double b1 = -1, b2 = -1;
    if (comma == std::string::npos || !parse_number(v.betas.substr(0, comma), b1) ||
        !parse_number(v.betas.substr(comma + 1), b2) || !(b1 >= 0 && b1 < 1) ||
        !(b2 >= 0 && b2 < 1))
      throw std::invalid_argument("--betas: '" + v.betas +
                                  "' is not two numbers in [0, 1) separated by a comma");
    s.beta1 = b1;
    s.beta2 = b2;
  }
  return s;
}

// "sgd: lr 0.05, momentum 0.9 (Nesterov), weight decay 0.0005", and so on.
std::string describe(const OptimizerSpec& s) {
  using Kind = OptimizerSpec::Kind;
  std::ostringstream text;
  text << OptimizerSpec::name_of(s.kind) << ": lr " << s.lr;
  if (s.kind == Kind::sgd || (s.kind == Kind::rmsprop && s.momentum > 0))
    text << ", momentum " << s.momentum << (s.nesterov ? " (Nesterov)" : "");
  if (s.kind == Kind::adam || s.kind == Kind::adamw)
    text << ", betas " << s.beta1 << "," << s.beta2 << (s.amsgrad ? " (AMSGrad)" : "");
  if (s.kind == Kind::rmsprop) text << ", alpha " << s.alpha;
  if (s.eps) text << ", eps " << *s.eps;
  if (s.weight_decay) text << ", weight decay " << *s.weight_decay;
  if (s.no_decay_bias_norm) text << " (none on biases and norms)";
  return text.str();
}

int main(int argc, char** argv) {
  CLI::App app{"tapegrad: train and evaluate small neural networks"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "tapegrad 0.1.0");

  // ---- train ----
  CLI::App* train_cmd = app.add_subcommand(
      "train", "train a classifier or a regression model and evaluate it on the test set");
  std::string model_text = default_model;
  DataOptions data;
  TrainOptions opts = default_train_options();
  std::string out = "out", init, resume, schedule = "cosine", progress = "auto";
  std::string augment = "none";
  std::string optimizer = "sgd", betas;
  double lr = opts.optimizer.lr, momentum = opts.optimizer.momentum,
         weight_decay = opts.optimizer.weight_decay.value_or(0), eps = 0, alpha = 0.99;
  bool nesterov = opts.optimizer.nesterov, amsgrad = false;
  double val_split = 0.0;
  std::uint64_t seed = 0;
  bool no_shuffle = false;
  train_cmd->add_option("--model", model_text, model_help)->capture_default_str();
  add_data_options(train_cmd, data);
  train_cmd->add_option("--epochs", opts.epochs, "passes over the training set")
      ->capture_default_str()
      ->check(positive_count);
  train_cmd->add_option("--batch", opts.batch_size, "batch size")
      ->capture_default_str()
      ->check(positive_count);
  train_cmd
      ->add_option("--optimizer", optimizer,
                   "sgd, adam, adamw, rmsprop or adagrad, with PyTorch's update rules; the "
                   "defaults below are the SGD recipe's, and another optimizer takes PyTorch's "
                   "defaults for any setting not given")
      ->capture_default_str()
      ->check(CLI::IsMember({"sgd", "adam", "adamw", "rmsprop", "adagrad"}));
  CLI::Option* lr_opt = train_cmd->add_option("--lr", lr, "learning rate")
                            ->capture_default_str()
                            ->check(non_negative);
  CLI::Option* momentum_opt =
      train_cmd->add_option("--momentum", momentum, "momentum (sgd, rmsprop)")
          ->capture_default_str()
          ->check(non_negative);
  CLI::Option* nesterov_opt =
      train_cmd->add_flag("--nesterov,!--no-nesterov", nesterov, "Nesterov momentum (sgd)")
          ->capture_default_str();
  CLI::Option* decay_opt =
      train_cmd
          ->add_option("--weight-decay", weight_decay,
                       "weight decay: L2 added to the gradient, decoupled for adamw")
          ->capture_default_str()
          ->check(non_negative);
  CLI::Option* betas_opt = train_cmd->add_option(
      "--betas", betas, "B1,B2: the moving averages' factors (adam, adamw; default 0.9,0.999)");
  CLI::Option* eps_opt =
      train_cmd
          ->add_option("--eps", eps,
                       "added to the denominator (adam, adamw, rmsprop: 1e-8; adagrad: 1e-10)")
          ->check(non_negative);
  CLI::Option* alpha_opt =
      train_cmd->add_option("--alpha", alpha, "smoothing of the squared gradients (rmsprop)")
          ->capture_default_str()
          ->check(number_in(0.0, 1.0));
  CLI::Option* amsgrad_opt =
      train_cmd->add_flag("--amsgrad", amsgrad, "the AMSGrad variant (adam, adamw)");
  train_cmd
      ->add_option("--clip-grad-norm", opts.clip_grad_norm,
                   "scale the gradients to this global 2-norm at most before each step (0: off)")
      ->capture_default_str()
      ->check(non_negative);
  CLI::Option* label_smoothing_opt =
      train_cmd
          ->add_option("--label-smoothing", opts.label_smoothing,
                       "classification: label smoothing of the training loss, as PyTorch's "
                       "cross_entropy(label_smoothing=)")
          ->capture_default_str()
          ->check(number_in(0.0, 1.0));
  train_cmd->add_flag("--keep-denormals{false}", opts.flush_denormal,
                      "keep denormal floats (below 1.18e-38) as PyTorch does by default, instead "
                      "of flushing them to zero while training (slower where they arise)");
  train_cmd->add_flag("--no-decay-bias-norm", opts.optimizer.no_decay_bias_norm,
                      "no weight decay on biases and normalisation weights");
  train_cmd
      ->add_option("--schedule", schedule,
                   "learning-rate schedule: constant, step[:EPOCHS[:GAMMA]], "
                   "exponential[:GAMMA], cosine[:MIN_LR] or plateau[:GAMMA[:PATIENCE[:MIN_LR]]] "
                   "(on the validation loss, else the training loss), each optionally followed "
                   "by ,warmup:STEPS")
      ->capture_default_str();
  train_cmd->add_option("--seed", seed, "seed of the initial weights and of the shuffling")
      ->capture_default_str()
      ->check(count);
  train_cmd
      ->add_option(
          "--val-split", val_split,
          "fraction of the training set held out for validation (early stopping, best model)")
      ->capture_default_str()
      ->check(number_in(0.0, 0.9));
  train_cmd
      ->add_option("--patience", opts.patience,
                   "early stopping: epochs without a better validation loss (0: off)")
      ->capture_default_str()
      ->check(count);
  train_cmd
      ->add_option(
          "--out", out,
          "output folder: model.safetensors, metrics.csv, curves.svg, checkpoint.safetensors")
      ->capture_default_str();
  train_cmd->add_option("--init", init, "start from the parameters in this safetensors file");
  train_cmd->add_option("--resume", resume, "continue the run saved in this checkpoint");
  train_cmd->add_flag("--no-shuffle", no_shuffle, "keep the data order");
  train_cmd
      ->add_option(
          "--augment", augment,
          "training-time augmentation of image data (IDX), the training batches only: none, or "
          "comma-separated flip (reverse each image's columns with probability 1/2, as "
          "torchvision's RandomHorizontalFlip) and shift:P (translate each image by up to P "
          "pixels on each axis, uniformly, with zero fill, as RandomCrop(size, padding=P)); "
          "drawn from a stream derived from --seed, saved in checkpoints")
      ->capture_default_str()
      ->check(CLI::Validator(
          [](std::string& text) -> std::string {
            try {
              Augmentation::parse(text);
              return "";
            } catch (const std::invalid_argument& e) {
              return e.what();
            }
          },
          ""));
  train_cmd
      ->add_option("--max-steps", opts.max_steps,
                   "stop after this many optimiser steps (0: no limit)")
      ->capture_default_str()
      ->check(count);
  std::string loss_name = "mse";
  double huber_delta = 1.0;
  CLI::Option* loss_opt =
      train_cmd
          ->add_option("--loss", loss_name,
                       "regression: mse, l1 or huber, on the standardised targets")
          ->capture_default_str()
          ->check(CLI::IsMember({"mse", "l1", "huber"}));
  CLI::Option* huber_delta_opt =
      train_cmd->add_option("--huber-delta", huber_delta, "regression: the Huber loss's delta")
          ->capture_default_str()
          ->check(positive);
  double mpi_timeout = 300;
  std::size_t mpi_bucket_bytes = 256 * 1024;
  train_cmd
      ->add_option("--mpi-timeout", mpi_timeout,
                   "under mpirun: the longest wait, in seconds, for any one collective operation "
                   "before every rank ends with an error")
      ->capture_default_str()
      ->check(positive);
  train_cmd
      ->add_option("--mpi-bucket-bytes", mpi_bucket_bytes,
                   "under mpirun: gradients per all-reduce, in bytes")
      ->capture_default_str()
      ->check(positive_count);
  train_cmd
      ->add_option("--progress", progress,
                   "auto (a bar when stderr is a terminal), bar, lines, none")
      ->capture_default_str()
      ->check(CLI::IsMember({"auto", "bar", "lines", "none"}));

  // ---- eval ----
  CLI::App* eval_cmd = app.add_subcommand("eval", "evaluate saved weights on the test set");
  std::string weights;
  eval_cmd->add_option("--model", model_text, model_help)->capture_default_str();
  eval_cmd->add_option("--weights", weights, "a safetensors file written by tapegrad train")
      ->required();
  add_data_options(eval_cmd, data);

  // ---- summary ----
  CLI::App* summary_cmd =
      app.add_subcommand("summary", "print the model's layers, output shapes and parameter counts");
  summary_cmd->add_option("--model", model_text, model_help)->capture_default_str();

  // ---- bench ----
  CLI::App* bench_cmd = app.add_subcommand(
      "bench",
      "time the forward pass, the backward pass and the optimiser step of a model on random "
      "data, and print its per-op profile");
  BenchOptions bench;
  bench_cmd->add_option("--model", model_text, model_help)->capture_default_str();
  bench_cmd->add_option("--batch", bench.batch, "batch size")
      ->capture_default_str()
      ->check(positive_count);
  bench_cmd->add_option("--steps", bench.steps, "timed steps")
      ->capture_default_str()
      ->check(positive_count);
  bench_cmd->add_option("--warmup", bench.warmup, "untimed steps before them")
      ->capture_default_str()
      ->check(count);
  bench_cmd
      ->add_option("--threads", bench.threads,
                   "tapegrad's thread count (0: the default, OPENBLAS_NUM_THREADS or one per "
                   "core)")
      ->capture_default_str()
      ->check(count);
  bench_cmd->add_option("--seed", seed, "seed of the weights, inputs and labels")
      ->capture_default_str()
      ->check(count);
  bench_cmd->add_option("--trace", bench.trace,
                        "write the Chrome trace of the timed steps to this file (open it in "
                        "ui.perfetto.dev or chrome://tracing)");
  bench_cmd->footer(bench_footer);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(
        stderr, "tapegrad: error: %s (see tapegrad %s--help)\n", e.what(),
        app.get_subcommands().empty() ? "" : (app.get_subcommands()[0]->get_name() + " ").c_str());
    return 2;
  }

  // Under mpirun (more than one process): data-parallel training, or, in a build without MPI,
  // an error saying how to get one (N separate runs writing the same files would be wrong).
  const std::size_t processes = launcher_world_size();
#ifdef TAPEGRAD_WITH_MPI
  std::unique_ptr<Distributed> group;
  if (train_cmd->parsed() && processes > 1) {
    try {
      group = std::make_unique<Distributed>(&argc, &argv,
                                            DistributedOptions{mpi_timeout, mpi_bucket_bytes});
    } catch (const std::exception& e) {
      std::fprintf(stderr, "tapegrad: error: %s\n", e.what());
      return 1;
    }
  }
  const bool leader = !group || group->rank() == 0;
#else
  (void)mpi_timeout;
  (void)mpi_bucket_bytes;
  if (train_cmd->parsed() && processes > 1) {
    std::fprintf(stderr,
                 "tapegrad: error: started as one of %zu processes (mpirun), but this tapegrad "
                 "was built without MPI, so each would train alone: install Open MPI "
                 "(scripts/setup --with-mpi, or apt-get install libopenmpi-dev openmpi-bin) and "
                 "build again (CMake finds it and builds the distributed trainer)\n",
                 processes);
    return 1;
  }
  const bool leader = true;
#endif

  try {
    ModelSpec spec = build_model(model_text, seed);
    if (summary_cmd->parsed()) {
      std::cout << spec.model->summary(spec.batch_shape(1));
      return 0;
    }
    if (bench_cmd->parsed()) return run_bench(spec, bench, seed);
    if (eval_cmd->parsed() && data.regression()) {
      const RegressionModelInfo info = load_regression_model(weights, *spec.model);
      require_finite_parameters(*spec.model, weights);
      const Dataset test_set = load_regression_test(data, spec, info, weights);
      print_regression(evaluate_regressor(*spec.model, test_set, info.targets, info.loss),
                       info.target_names, info.loss, test_set.size());
      return 0;
    }
    if (!data.regression())
      for (CLI::Option* o : {loss_opt, huber_delta_opt})
        if (o->count())
          throw std::invalid_argument(o->get_name() + " applies to --task regression only");
    TensorFile weights_file;
    if (eval_cmd->parsed()) {
      weights_file = load_tensors(weights);
      const auto task = weights_file.metadata.find("tapegrad.task");
      if (task != weights_file.metadata.end() && task->second == "regression")
        throw std::invalid_argument(weights +
                                    " is a regression model: evaluate it with --task regression");
    }
    auto [train_set, test_set, input_scaler, file_sample_shape] = load_data(data, spec);
    if (eval_cmd->parsed()) {
      nn::load_state_tensors(*spec.model, weights_file, weights);
      require_finite_parameters(*spec.model, weights);
      print_evaluation(evaluate_classifier(*spec.model, test_set), test_set.size());
      return 0;
    }
    if (data.regression() && label_smoothing_opt->count())
      throw std::invalid_argument("--label-smoothing applies to classification only");
    if (data.regression()) opts.loss = RegressionLoss::parse(loss_name, huber_delta);
    if (!init.empty()) {
      nn::load_parameters(*spec.model, init);
      require_finite_parameters(*spec.model, init);
    }
    opts.schedule = LrSchedule::parse(schedule);
    opts.optimizer = optimizer_from_flags(
        optimizer, opts.optimizer,
        {lr_opt, momentum_opt, nesterov_opt, decay_opt, betas_opt, eps_opt, alpha_opt, amsgrad_opt},
        {lr, momentum, nesterov, weight_decay, betas, eps, alpha, amsgrad});
    opts.seed = seed;
    opts.shuffle = !no_shuffle;
    opts.augmentation = Augmentation::parse(augment);
    if (opts.augmentation.enabled()) {
      if (file_sample_shape.rank() != 2)
        throw std::invalid_argument("--augment " + augment + ": --data " + data.data +
                                    " has samples of shape " + file_sample_shape.to_string() +
                                    ", not images [rows, columns] (augmentation applies to IDX "
                                    "image data such as fashion-mnist)");
      opts.augmentation.image = file_sample_shape;  // the model may take them flattened
      try {
        Augmenter(opts.augmentation, train_set.sample_shape(), 0);  // the shift fits the images
      } catch (const std::invalid_argument& e) {
        throw std::invalid_argument(std::string("--augment: ") + e.what());
      }
    }
    opts.progress = progress == "bar"     ? TrainOptions::Progress::bar
                    : progress == "lines" ? TrainOptions::Progress::lines
                    : progress == "none"  ? TrainOptions::Progress::none
                                          : TrainOptions::Progress::automatic;
    if (::mkdir(out.c_str(), 0755) != 0 && !is_directory(out))
      throw std::runtime_error(out + ": cannot create the output folder");
    opts.metrics_path = out + "/metrics.csv";
    opts.curves_path = out + "/curves.svg";
    opts.watch = &test_set;
    opts.checkpoint_path = out + "/checkpoint.safetensors";
    Dataset fit = std::move(train_set), validation;
    if (val_split > 0) std::tie(fit, validation) = split_validation(fit, val_split, seed);
    std::string task_text;  // regression: the targets and the loss
    if (data.regression()) {
      task_text =
          ", regression of " + join_names(fit.target_names) + " with loss " + opts.loss.name();
      if (opts.loss.kind == RegressionLoss::Kind::huber)
        task_text += " (delta " + std::to_string(opts.loss.huber_delta) + ")";
    }
#ifdef TAPEGRAD_WITH_MPI
    opts.parallel = group.get();
    if (group)
      task_text += ", on " + std::to_string(group->world_size()) + " processes (batch " +
                   std::to_string(opts.batch_size) + " split among them)";
#endif
    if (leader) {
      std::printf(
          "training %s on %zu samples (%s%s): epochs %zu, batch %zu, %s, schedule %s, seed "
          "%llu%s\n",
          model_text.c_str(), fit.size(), data.data.c_str(), task_text.c_str(), opts.epochs,
          opts.batch_size, describe(opts.optimizer).c_str(), schedule.c_str(),
          static_cast<unsigned long long>(seed),
          opts.augmentation.enabled() ? (", augment " + opts.augmentation.text()).c_str() : "");
      std::fflush(stdout);
    }
    const Dataset* val = val_split > 0 ? &validation : nullptr;
    const TrainResult r = data.regression() ? train_regressor(*spec.model, fit, val, opts, resume)
                                            : train_classifier(*spec.model, fit, val, opts, resume);
    if (!leader) return 0;  // rank 0 writes the model and prints the test result
    const std::string model_path = out + "/model.safetensors";
    if (data.regression())
      save_regression_model(model_path, *spec.model,
                            {fit.target_names, r.target_scaler, input_scaler, opts.loss});
    else
      nn::save_parameters(*spec.model, model_path);
    std::printf("wrote %s/model.safetensors, %s/metrics.csv, %s/curves.svg (%zu steps%s)\n",
                out.c_str(), out.c_str(), out.c_str(), r.steps,
                r.stopped_early ? ", stopped early" : "");
    if (data.regression()) {
      print_regression(evaluate_regressor(*spec.model, test_set, r.target_scaler, opts.loss),
                       fit.target_names, opts.loss, test_set.size());
      return 0;
    }
    const Evaluation e = evaluate_classifier(*spec.model, test_set);
    std::printf("test accuracy %.4f (test loss %.4f, %zu images)\n", e.accuracy, e.loss,
                test_set.size());
    return 0;
  } catch (const DistributedError& e) {
    // Thrown on every rank alike: rank 0 says it, and every rank ends normally.
    if (leader) std::fprintf(stderr, "tapegrad: error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
#ifdef TAPEGRAD_WITH_MPI
    // Possibly on this rank alone: the others would wait for it. End them all.
    if (group) group->abort(std::string("error: ") + e.what(), 1);
#endif
    std::fprintf(stderr, "tapegrad: error: %s\n", e.what());
    return 1;
  }
}
