#include "tapegrad/train/trainer.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <deque>
#include <iostream>
#include <numeric>
#include <optional>
#include <sstream>

#include "tapegrad/autodiff/losses.hpp"
#include "tapegrad/autodiff/reduce.hpp"
#include "tapegrad/autodiff/threads.hpp"
#include "tapegrad/train/checkpoint.hpp"
#include "tapegrad/train/clip_grad.hpp"
#include "text.hpp"

namespace tapegrad {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// Number of rows of `logits` [B, K] whose largest entry (first, on ties) is at the label.
std::size_t count_correct(const Tensor<float>& logits, const std::vector<std::int64_t>& labels) {
  const std::size_t k = logits.dim(1);
  std::size_t correct = 0;
  for (std::size_t r = 0; r < labels.size(); ++r) {
    const float* row = logits.data() + r * k;
    const std::size_t best = argmax(row, k);
    correct += static_cast<std::int64_t>(best) == labels[r];
  }
  return correct;
}

std::string clock_text(double seconds) {
  const long s = std::lround(std::max(0.0, seconds));
  char buf[32];
  std::snprintf(buf, sizeof buf, "%ld:%02ld", s / 60, s % 60);
  return buf;
}

// A one-line progress bar on stderr, redrawn at most ten times a second.
class ProgressBar {
 public:
  ProgressBar(std::size_t epoch, std::size_t epochs, std::size_t batches)
      : epoch_(epoch), epochs_(epochs), batches_(batches), start_(Clock::now()), last_(start_) {}
  void update(std::size_t batch, double running_loss, std::size_t samples, bool force = false) {
    const auto now = Clock::now();
    if (!force && std::chrono::duration<double>(now - last_).count() < 0.1) return;
    last_ = now;
    const double elapsed = seconds_since(start_);
    const double rate = elapsed > 0 ? static_cast<double>(samples) / elapsed : 0;
    const double eta = batch ? elapsed * static_cast<double>(batches_ - batch) / batch : 0;
    const int width = 30;
    const int filled = batches_ ? static_cast<int>(width * batch / batches_) : width;
    std::fprintf(stderr, "\repoch %zu/%zu [%.*s%*s] %zu/%zu loss %.4f  %.0f samples/s  ETA %s ",
                 epoch_, epochs_, filled, "==============================", width - filled, "",
                 batch, batches_, running_loss, rate, clock_text(eta).c_str());
    std::fflush(stderr);
  }
  void finish() { std::fprintf(stderr, "\r%*s\r", 110, ""); }

 private:
  std::size_t epoch_, epochs_, batches_;
  Clock::time_point start_, last_;
};

// The fields of EpochMetrics each split fills.
enum class Split { train, validation, test };
struct SplitFields {
  const char* name;
  double EpochMetrics::*loss;
  double EpochMetrics::*accuracy;
  double EpochMetrics::*mae;
  double EpochMetrics::*rmse;
  double EpochMetrics::*r2;
};
const SplitFields& fields_of(Split split) {
  using M = EpochMetrics;
  static const SplitFields table[] = {
      {"train", &M::train_loss, &M::train_accuracy, &M::train_mae, &M::train_rmse, &M::train_r2},
      {"val", &M::val_loss, &M::val_accuracy, &M::val_mae, &M::val_rmse, &M::val_r2},
      {"test", &M::test_loss, &M::test_accuracy, &M::test_mae, &M::test_rmse, &M::test_r2}};
  return table[static_cast<int>(split)];
}

// What the training loop does differently for each task: the loss, the running metrics of an
// epoch (kept in a checkpoint taken inside it), evaluation and the epoch line.
class TaskLoop {
 public:
  virtual ~TaskLoop() = default;
  virtual Task task() const = 0;
  // Refuses data of the other task (or of another target width), naming `what`.
  virtual void check_data(const Dataset& data, const std::string& what) const = 0;
  // Records the task in a new run's state, or checks a resumed run's state against this run.
  virtual void stamp(TrainingState& state, const std::string& resume_from) const = 0;
  // The loss of the model's output `out` for `batch` (whose targets it may prepare in place).
  virtual Var<float> loss(const Var<float>& out, Batch& batch) = 0;
  // Adds a trained batch to the epoch's running metrics.
  virtual void count(const Tensor<float>& out, const Batch& batch) = 0;
  // Restarts the running metrics: from `inside`'s when resuming inside an epoch, else zero.
  virtual void restart(const TrainingState* inside) = 0;
  // Stores the running metrics in `state` (for a checkpoint inside an epoch).
  virtual void save(TrainingState& state) const = 0;
  // The epoch's training metrics over `seen` samples.
  virtual void train_metrics(EpochMetrics& m, std::size_t seen) const = 0;
  // Evaluates `data` into the fields of `split`; returns the loss.
  virtual double evaluate(nn::Module<float>& model, const Dataset& data, EpochMetrics& m,
                          Split split) const = 0;
  // The metrics of `split` after its loss in the epoch line.
  virtual void describe(std::ostream& line, const EpochMetrics& m, Split split) const = 0;
  // Replaces the running metrics by their sums over the processes of `group`.
  virtual void sum_running(DataParallel& group) = 0;
  // Evaluates with `group` (or alone, if null). Regression evaluates every set whole on every
  // process (equal weights give equal results).
  virtual void evaluate_with(DataParallel* group) { (void)group; }
};

class ClassificationLoop final : public TaskLoop {
 public:
  explicit ClassificationLoop(double label_smoothing) {
    options_.label_smoothing = label_smoothing;
  }
  Task task() const override { return Task::classification; }
  void check_data(const Dataset& data, const std::string& what) const override {
    if (data.regression())
      throw std::invalid_argument(what + ": regression targets given to train_classifier");
  }
  void stamp(TrainingState& state, const std::string& resume_from) const override {
    if (state.task != Task::classification)
      throw TrainingError(resume_from +
                          ": the checkpoint is of a regression run, this run is classification");
  }
  Var<float> loss(const Var<float>& out, Batch& batch) override {
    return softmax_cross_entropy(out, batch.labels, options_);
  }
  void count(const Tensor<float>& out, const Batch& batch) override {
    correct_ += count_correct(out, batch.labels);
  }
  void restart(const TrainingState* inside) override {
    correct_ = inside ? inside->epoch_correct : 0;
  }
  void save(TrainingState& state) const override { state.epoch_correct = correct_; }
  // This process's share of `data`, copied once.
  const Dataset& share_of(const Dataset& data) const {
    for (const auto& [source, share] : shares_)
      if (source == &data) return share;
    const auto [first, last] = shard_range(data.size(), group_->rank(), group_->world_size());
    std::vector<std::size_t> indices(last - first);
    std::iota(indices.begin(), indices.end(), first);
    shares_.emplace_back(&data, last > first ? data.subset(indices) : Dataset());
    return shares_.back().second;
  }
  void train_metrics(EpochMetrics& m, std::size_t seen) const override {
    m.train_accuracy = static_cast<double>(correct_) / static_cast<double>(seen);
  }
  // With a group, each process evaluates its share of the samples (shard_range), and the loss
  // sums and correct counts are summed over the processes.
  double evaluate(nn::Module<float>& model, const Dataset& data, EpochMetrics& m,
                  Split split) const override {
    if (!group_ || group_->world_size() == 1) {
      const Evaluation e = evaluate_classifier(model, data);
      m.*fields_of(split).accuracy = e.accuracy;
      return e.loss;
    }
    const Dataset& share = share_of(data);
    const double n = static_cast<double>(share.size());
    std::vector<double> sums{0.0, 0.0};
    if (share.size() > 0) {
      const Evaluation e = evaluate_classifier(model, share);
      sums = {e.loss * n, std::round(e.accuracy * n)};
    }
    group_->sum(sums);
    const double total = static_cast<double>(std::max<std::size_t>(1, data.size()));
    m.*fields_of(split).accuracy = sums[1] / total;
    return sums[0] / total;
  }
  void evaluate_with(DataParallel* group) override { group_ = group; }
  void describe(std::ostream& line, const EpochMetrics& m, Split split) const override {
    line << "  acc " << m.*fields_of(split).accuracy;
  }
  void sum_running(DataParallel& group) override {
    std::vector<double> v{static_cast<double>(correct_)};
    group.sum(v);
    correct_ = static_cast<std::size_t>(std::llround(v[0]));
  }

 private:
  CrossEntropyOptions<float> options_;  // the training loss's
  std::size_t correct_ = 0;
  DataParallel* group_ = nullptr;
  mutable std::deque<std::pair<const Dataset*, Dataset>> shares_;
};

// "y", or "y1, y2": the names of the targets, for messages.
std::string names_text(const Dataset& data) {
  std::string out;
  for (const std::string& n : data.target_names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

// Throws unless the model's output `out` is [B, K] for `data`'s K targets.
void check_regression_output(const Var<float>& out, std::size_t batch, const Dataset& data,
                             const std::string& what) {
  const std::size_t k = data.target_count();
  if (out.shape() != Shape{batch, k})
    throw TrainingError(what + ": the model's output has shape " + out.shape().to_string() +
                        " but the data have " + std::to_string(k) + " target column" +
                        (k == 1 ? "" : "s") +
                        (data.target_names.empty() ? "" : " (" + names_text(data) + ")") +
                        ": its output width must be the number of targets");
}

Var<float> regression_loss(const Var<float>& out, const Var<float>& target,
                           const RegressionLoss& loss) {
  switch (loss.kind) {
    case RegressionLoss::Kind::l1:
      return l1_loss(out, target);
    case RegressionLoss::Kind::huber:
      return huber_loss(out, target, Reduction::mean, loss.huber_delta);
    default:
      return mse_loss(out, target);
  }
}

class RegressionLoop final : public TaskLoop {
 public:
  RegressionLoop(const Dataset& train, const RegressionLoss& loss)
      : train_(train),
        loss_(loss),
        scaler_(Standardizer::fit(train.targets)),
        k_(train.target_count()),
        train_ss_tot_(total_sum_of_squares(train.targets)),
        abs_(k_, 0.0),
        sq_(k_, 0.0) {}
  const Standardizer& scaler() const { return scaler_; }

  Task task() const override { return Task::regression; }
  void check_data(const Dataset& data, const std::string& what) const override {
    if (!data.regression())
      throw std::invalid_argument(what + ": train_regressor needs regression targets");
    if (data.target_count() != k_)
      throw std::invalid_argument(what + ": " + std::to_string(data.target_count()) +
                                  " targets, the training data have " + std::to_string(k_));
  }
  void stamp(TrainingState& state, const std::string& resume_from) const override {
    const std::vector<float> mean(scaler_.mean.begin(), scaler_.mean.end());
    const std::vector<float> stddev(scaler_.stddev.begin(), scaler_.stddev.end());
    if (!resume_from.empty()) {
      if (state.task != Task::regression)
        throw TrainingError(resume_from +
                            ": the checkpoint is of a classification run, this run is regression");
      if (state.target_mean != mean || state.target_std != stddev)
        throw TrainingError(resume_from +
                            ": the checkpoint's target means and deviations differ from this "
                            "training set's (other data?)");
    }
    state.task = Task::regression;
    state.target_mean = mean;
    state.target_std = stddev;
  }
  Var<float> loss(const Var<float>& out, Batch& batch) override {
    check_regression_output(out, batch.size(), train_, "train");
    scaler_.standardize(batch.targets);
    return regression_loss(out, Var<float>(batch.targets), loss_);
  }
  void count(const Tensor<float>& out, const Batch& batch) override {
    // batch.targets are standardised: the error in the targets' units is (out − target)·σ.
    for (std::size_t j = 0; j < out.numel(); ++j) {
      const std::size_t c = j % k_;
      const double e = (static_cast<double>(out[j]) - batch.targets[j]) * scaler_.stddev[c];
      abs_[c] += std::fabs(e);
      sq_[c] += e * e;
    }
  }
  void restart(const TrainingState* inside) override {
    if (inside &&
        (inside->epoch_abs_error.size() != k_ || inside->epoch_squared_error.size() != k_))
      throw TrainingError("the checkpoint holds running errors of " +
                          std::to_string(inside->epoch_abs_error.size()) + " targets, not " +
                          std::to_string(k_));
    std::fill(abs_.begin(), abs_.end(), 0.0);
    std::fill(sq_.begin(), sq_.end(), 0.0);
    if (inside) abs_ = inside->epoch_abs_error, sq_ = inside->epoch_squared_error;
  }
  void save(TrainingState& state) const override {
    state.epoch_abs_error = abs_;
    state.epoch_squared_error = sq_;
  }
  void train_metrics(EpochMetrics& m, std::size_t seen) const override {
    m.train_accuracy = std::nan("");
    fill(m, Split::train, regression_metrics(abs_, sq_, train_ss_tot_, seen));
  }
  double evaluate(nn::Module<float>& model, const Dataset& data, EpochMetrics& m,
                  Split split) const override {
    const RegressionEvaluation e = evaluate_regressor(model, data, scaler_, loss_);
    fill(m, split, e.metrics);
    return e.loss;
  }
  void describe(std::ostream& line, const EpochMetrics& m, Split split) const override {
    line << "  rmse " << m.*fields_of(split).rmse << "  r2 " << m.*fields_of(split).r2;
  }
  void sum_running(DataParallel& group) override {
    group.sum(abs_);
    group.sum(sq_);
  }

 private:
  static void fill(EpochMetrics& m, Split split, const RegressionMetrics& r) {
    const SplitFields& f = fields_of(split);
    m.*f.mae = r.mae;
    m.*f.rmse = r.rmse;
    m.*f.r2 = r.r2;
  }
  const Dataset& train_;
  RegressionLoss loss_;
  Standardizer scaler_;
  std::size_t k_;
  std::vector<double> train_ss_tot_, abs_, sq_;
};

}  // namespace

void require_finite_parameters(const nn::Module<float>& model, const std::string& source) {
  for (const auto& [name, p] : model.named_parameters()) {
    const Tensor<float>& v = p.value();
    for (std::size_t k = 0; k < v.numel(); ++k)
      if (!std::isfinite(v[k]))
        throw TrainingError(source + ": parameter \"" + name + "\" holds a non-finite value (" +
                            detail::non_finite_text(v[k]) + ") at element " + std::to_string(k));
  }
}

Evaluation evaluate_classifier(nn::Module<float>& model, const Dataset& data,
                               std::size_t batch_size) {
  data.validate("evaluate");
  data.check_finite("evaluate");
  require_finite_parameters(model, "the model");
  const bool was_training = model.is_training();
  model.eval();
  NoGradGuard no_grad;
  Evaluation e;
  DataLoader loader(data, {batch_size, false, 0, false});
  loader.start_epoch();
  Batch batch;
  double loss_sum = 0;
  std::size_t correct = 0;
  const std::size_t k = data.classes;
  while (loader.next(batch)) {
    const Var<float> logits = model(Var<float>(batch.inputs));
    if (logits.shape().rank() != 2 || logits.shape()[1] != k)
      throw TrainingError("evaluate: the model's output has shape " + logits.shape().to_string() +
                          " but the data has " + std::to_string(k) + " classes");
    // Sized only now that the model's output has matched the classes: it bounds their count.
    if (e.confusion.empty()) e.confusion.assign(k, std::vector<std::size_t>(k, 0));
    loss_sum +=
        softmax_cross_entropy(logits, batch.labels).item() * static_cast<double>(batch.size());
    correct += count_correct(logits.value(), batch.labels);
    for (std::size_t r = 0; r < batch.size(); ++r) {
      const float* row = logits.value().data() + r * k;
      const std::size_t predicted = argmax(row, k);
      ++e.confusion[static_cast<std::size_t>(batch.labels[r])][predicted];
    }
  }
  if (was_training) model.train();
  const double n = static_cast<double>(std::max<std::size_t>(1, data.size()));
  e.loss = loss_sum / n;
  e.accuracy = static_cast<double>(correct) / n;
  for (std::size_t c = 0; c < e.confusion.size(); ++c) {
    std::size_t total = 0;
    for (std::size_t v : e.confusion[c]) total += v;
    e.per_class_accuracy.push_back(total ? static_cast<double>(e.confusion[c][c]) / total : 0.0);
  }
  return e;
}

RegressionLoss RegressionLoss::parse(const std::string& name, double huber_delta) {
  RegressionLoss loss;
  if (name == "mse")
    loss.kind = Kind::mse;
  else if (name == "l1")
    loss.kind = Kind::l1;
  else if (name == "huber")
    loss.kind = Kind::huber;
  else
    throw std::invalid_argument("unknown loss \"" + name + "\" (valid: mse, l1, huber)");
  if (!(huber_delta > 0) || !std::isfinite(huber_delta))
    throw std::invalid_argument("the Huber delta " + std::to_string(huber_delta) +
                                " is not a finite number > 0");
  loss.huber_delta = huber_delta;
  return loss;
}

const char* RegressionLoss::name() const {
  return kind == Kind::l1 ? "l1" : kind == Kind::huber ? "huber" : "mse";
}

RegressionEvaluation evaluate_regressor(nn::Module<float>& model, const Dataset& data,
                                        const Standardizer& target_scaler,
                                        const RegressionLoss& loss, std::size_t batch_size) {
  data.validate("evaluate");
  if (!data.regression()) throw std::invalid_argument("evaluate: the data have no targets");
  data.check_finite("evaluate");
  const std::size_t k = data.target_count();
  if (target_scaler.mean.shape() != Shape{k} || target_scaler.stddev.shape() != Shape{k})
    throw std::invalid_argument("evaluate: the target scaler has shape " +
                                target_scaler.mean.shape().to_string() + " for " +
                                std::to_string(k) + " targets");
  require_finite_parameters(model, "the model");
  const bool was_training = model.is_training();
  model.eval();
  NoGradGuard no_grad;
  DataLoader loader(data, {batch_size, false, 0, false});
  loader.start_epoch();
  Batch batch;
  Tensor<float> standardized, predictions;
  double loss_sum = 0;
  std::vector<double> abs_sum(k, 0.0), sq_sum(k, 0.0);
  while (loader.next(batch)) {
    const Var<float> out = model(Var<float>(batch.inputs));
    check_regression_output(out, batch.size(), data, "evaluate");
    standardized = batch.targets;
    target_scaler.standardize(standardized);
    loss_sum += regression_loss(out, Var<float>(standardized), loss).item() *
                static_cast<double>(batch.size());
    predictions = out.value();
    target_scaler.unstandardize(predictions);
    for (std::size_t j = 0; j < predictions.numel(); ++j) {
      const double e = static_cast<double>(predictions[j]) - batch.targets[j];
      abs_sum[j % k] += std::fabs(e);
      sq_sum[j % k] += e * e;
    }
  }
  if (was_training) model.train();
  RegressionEvaluation e;
  e.loss = loss_sum / static_cast<double>(std::max<std::size_t>(1, data.size()));
  e.metrics = regression_metrics(abs_sum, sq_sum, total_sum_of_squares(data.targets), data.size());
  return e;
}

namespace {

// FNV-1a over bytes.
std::uint64_t hash_bytes(std::uint64_t h, const void* data, std::size_t n) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (std::size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 1099511628211ULL;
  return h;
}

std::uint64_t parameters_hash(const nn::Module<float>& model) {
  std::uint64_t h = 1469598103934665603ULL;
  for (const Var<float>& p : model.parameters())
    h = hash_bytes(h, p.value().data(), p.numel() * sizeof(float));
  return h;
}

std::uint64_t bits_of(double x) {
  std::uint64_t u;
  std::memcpy(&u, &x, sizeof u);
  return u;
}

// Throws DistributedError on every process of `group` unless all train on data of the same
// sizes (and labels) with the same options.
void agree(DataParallel& group, const Dataset& train, const Dataset* validation,
           const TrainOptions& options) {
  const std::uint64_t labels = hash_bytes(1469598103934665603ULL, train.labels.data(),
                                          train.labels.size() * sizeof(std::int64_t));
  group.require_same(
      "the data (training samples, values per sample, classes, targets, hash of the labels, "
      "validation samples, test samples)",
      {train.size(), train.inputs.numel() / train.size(), train.classes, train.target_count(),
       labels, validation ? validation->size() : 0, options.watch ? options.watch->size() : 0});
  group.require_same(
      "the training options (epochs, batch size, seed, shuffling, max steps, learning rate, "
      "gradient clipping)",
      {options.epochs, options.batch_size, options.seed, options.shuffle ? 1u : 0u,
       options.max_steps, bits_of(options.optimizer.lr), bits_of(options.clip_grad_norm)});
  group.require_same("the augmentation (flip, shift)",
                     {options.augmentation.flip ? 1u : 0u, options.augmentation.shift});
}

// The training loop of both tasks.
TrainResult train_loop(nn::Module<float>& model, const Dataset& train, const Dataset* validation,
                       const TrainOptions& options, const std::string& resume_from,
                       TaskLoop& task) {
  // The denormal mode for this run, the caller's back afterwards (also when training throws).
  struct DenormalMode {
    bool before = flush_denormal();
    explicit DenormalMode(bool flush) { set_flush_denormal(flush); }
    ~DenormalMode() { set_flush_denormal(before); }
  } denormal_mode(options.flush_denormal);
  train.validate("training data");
  task.check_data(train, "training data");
  if (train.size() == 0) throw std::invalid_argument("train: the training data is empty");
  if (validation) {
    validation->validate("validation data");
    task.check_data(*validation, "validation data");
    validation->check_finite("validation data");
  }
  if (options.watch) {
    options.watch->validate("test data");
    task.check_data(*options.watch, "test data");
    options.watch->check_finite("test data");
  }
  if (options.epochs == 0) throw std::invalid_argument("train: epochs must be > 0");
  DataParallel* const group = options.parallel;
  const bool leader = !group || group->rank() == 0;  // logs and writes files
  std::ostream no_log(nullptr);
  std::ostream& log = !leader ? no_log : options.log ? *options.log : std::cout;
  std::vector<Var<float>> params = model.parameters();
  const std::unique_ptr<Optimizer<float>> optimizer_owner =
      make_optimizer(options.optimizer, model);
  Optimizer<float>& optimizer = *optimizer_owner;
  if (!(options.clip_grad_norm >= 0))
    throw std::invalid_argument("train: clip_grad_norm must be >= 0");
  if (group) agree(*group, train, validation, options);
  task.evaluate_with(group);
  DataLoader loader(train, {options.batch_size, options.shuffle, options.seed, false,
                            group ? group->rank() : 0, group ? group->world_size() : 1});
  // Checks the samples are images before anything changes.
  std::optional<Augmenter> augmenter;
  if (options.augmentation.enabled())
    augmenter.emplace(options.augmentation, train.sample_shape(), augmentation_seed(options.seed));
  const std::size_t steps_per_epoch = loader.batches();
  std::size_t total_steps = 0;
  if (__builtin_mul_overflow(steps_per_epoch, options.epochs, &total_steps))
    throw std::invalid_argument("train: " + std::to_string(steps_per_epoch) +
                                " batches per epoch times " + std::to_string(options.epochs) +
                                " epochs overflow 64-bit step counts");

  TrainResult result;
  TrainingState state;  // what a checkpoint carries beyond the weights
  std::vector<Tensor<float>> best_weights;
  if (!resume_from.empty()) {
    state = load_checkpoint(resume_from, model, optimizer, loader.rng());
    if (group)
      group->require_same("the checkpoint " + resume_from +
                              " (epoch, step, batches into the epoch, hash of the "
                              "parameters)",
                          {state.epoch, state.step, state.epoch_batches, parameters_hash(model)});
    result.history = state.history;
    result.best_epoch = state.best_epoch;
    result.best_val_loss = state.best_val_loss;
    best_weights = state.best_weights;
    if (state.epoch_batches >= steps_per_epoch)
      throw TrainingError(resume_from + ": the checkpoint stopped after batch " +
                          std::to_string(state.epoch_batches) + " of an epoch, but this run has " +
                          std::to_string(steps_per_epoch) +
                          " batches per epoch (other data or batch size?)");
    if (state.augmentation != options.augmentation.text())
      throw TrainingError(resume_from + ": the checkpoint's run augmented with \"" +
                          state.augmentation + "\", this run with \"" +
                          options.augmentation.text() +
                          "\" (a resumed run continues with its own augmentation)");
    if (augmenter) augmenter->rng().set_state(state.augmentation_rng);
    log << "resumed from " << resume_from << " after epoch " << state.epoch;
    if (state.epoch_batches)
      log << " and " << state.epoch_batches << " of " << steps_per_epoch << " batches of epoch "
          << state.epoch + 1;
    log << "\n";
  }
  task.stamp(state, resume_from);
  state.augmentation = options.augmentation.text();
  // The same model on every process, rank 0's weights (after the checkpoint) everywhere.
  if (group) group->attach(model);

  const bool bar = leader && (options.progress == TrainOptions::Progress::bar ||
                              (options.progress == TrainOptions::Progress::automatic && isatty(2)));
  std::size_t step = state.step;
  Batch batch;
  for (std::size_t epoch = state.epoch + 1; epoch <= options.epochs; ++epoch) {
    if (options.max_steps && step >= options.max_steps) break;
    model.train();
    const ShuffleRng epoch_start = loader.rng();  // what a checkpoint inside this epoch holds
    loader.start_epoch();
    // Resuming inside this epoch: the same order, without the batches already taken.
    const bool inside = epoch == state.epoch + 1 && state.epoch_batches > 0;
    std::size_t batch_index = inside ? state.epoch_batches : 0;
    // The running metrics of the batches taken before a resume count once: on rank 0.
    const bool carry = inside && leader;
    double loss_sum = carry ? state.epoch_loss_sum : 0;
    std::size_t seen = carry ? state.epoch_seen : 0;
    task.restart(carry ? &state : nullptr);
    loader.skip(batch_index);
    std::size_t seen_before = seen;  // samples of this epoch taken before a resume
    const auto start = Clock::now();
    ProgressBar progress(epoch, options.epochs, steps_per_epoch);
    double lr = optimizer.lr(0);
    while (loader.next(batch)) {
      if (options.max_steps && step >= options.max_steps) break;
      // Here, not before the check: the stream advances for the batches trained only.
      if (augmenter) augmenter->apply(batch);
      for (std::size_t g = 0; g < optimizer.group_count(); ++g)
        optimizer.set_lr(g, options.schedule.lr_at(optimizer.initial_lr(g), step, total_steps,
                                                   steps_per_epoch, state.plateau.reductions));
      lr = optimizer.lr(0);
      const std::size_t b = batch.size();  // this process's share of the batch (all, alone)
      // The step, as the math reads: forward, loss, backward, update, clear the gradients.
      // With a group, the gradients are averaged over the processes between backward and
      // update; a process whose share is empty (a batch smaller than the group) adds zeros.
      if (group) group->begin_step(b, batch.global_size);
      double value = 0;
      if (b > 0) {
        Var<float> out = model(Var<float>(batch.inputs));
        Var<float> loss = task.loss(out, batch);
        value = loss.item();
        if (!std::isfinite(value))
          throw TrainingError("the training loss became " +
                              std::string(std::isnan(value) ? "NaN" : "infinite") + " at epoch " +
                              std::to_string(epoch) + ", step " + std::to_string(batch_index + 1) +
                              " of " + std::to_string(steps_per_epoch) + " (learning rate " +
                              std::to_string(lr) + "); lower the learning rate or check the data");
        loss.backward();
        task.count(out.value(), batch);
      }
      if (group) group->end_step();
      if (options.clip_grad_norm > 0) clip_grad_norm(params, options.clip_grad_norm);
      optimizer.step();
      optimizer.zero_grad();
      ++step;
      ++batch_index;
      loss_sum += value * static_cast<double>(b);
      seen += b;
      if (bar) progress.update(batch_index, loss_sum / seen, seen);
    }
    if (bar) progress.finish();
    if (group) {  // the running metrics of the whole group
      std::vector<double> sums{loss_sum, static_cast<double>(seen),
                               static_cast<double>(seen_before)};
      group->sum(sums);
      task.sum_running(*group);
      loss_sum = sums[0];
      seen = static_cast<std::size_t>(std::llround(sums[1]));
      seen_before = static_cast<std::size_t>(std::llround(sums[2]));
      group->broadcast_buffers();  // rank 0's running statistics, for evaluation and saving
    }
    if (batch_index < steps_per_epoch) {  // max_steps stopped the run inside this epoch
      log << "stopped after step " << step << ", batch " << batch_index << " of " << steps_per_epoch
          << " of epoch " << epoch << "\n";
      state.step = step;
      state.epoch_batches = batch_index;
      state.epoch_loss_sum = loss_sum;
      task.save(state);
      state.epoch_seen = seen;
      if (augmenter) state.augmentation_rng = augmenter->rng().state();
      if (leader && !options.checkpoint_path.empty())
        save_checkpoint(options.checkpoint_path, model, optimizer, epoch_start, state);
      break;
    }

    EpochMetrics m;
    m.epoch = epoch;
    m.train_loss = loss_sum / static_cast<double>(seen);
    task.train_metrics(m, seen);
    m.lr = lr;
    m.seconds = seconds_since(start);
    m.samples_per_second = static_cast<double>(seen - seen_before) / m.seconds;
    m.val_loss = m.val_accuracy = m.test_loss = m.test_accuracy = std::nan("");
    bool improved = false;
    if (validation) {
      m.val_loss = task.evaluate(model, *validation, m, Split::validation);
      if (m.val_loss < result.best_val_loss) {
        result.best_val_loss = m.val_loss;
        result.best_epoch = epoch;
        best_weights = nn::state_values(model);
        improved = true;
      }
    }
    if (options.watch) {
      m.test_loss = task.evaluate(model, *options.watch, m, Split::test);
    }
    result.history.push_back(m);
    if (options.schedule.kind == LrSchedule::Kind::plateau)
      state.plateau.observe(validation ? m.val_loss : m.train_loss, options.schedule);

    std::ostringstream line;
    line.setf(std::ios::fixed);
    line.precision(4);
    line << "epoch " << epoch << "/" << options.epochs << "  train loss " << m.train_loss;
    task.describe(line, m, Split::train);
    if (validation) {
      line << "  val loss " << m.val_loss;
      task.describe(line, m, Split::validation);
    }
    if (options.watch) {
      line << "  test loss " << m.test_loss;
      task.describe(line, m, Split::test);
    }
    line.precision(1);
    line << "  " << m.seconds << " s  " << std::lround(m.samples_per_second) << " samples/s";
    log << line.str() << std::endl;

    if (leader && !options.metrics_path.empty())
      write_file_atomically(options.metrics_path, metrics_csv(result.history, task.task()));
    if (leader && !options.curves_path.empty())
      write_file_atomically(options.curves_path, curves_svg(result.history, task.task()));
    state.epoch = epoch;
    state.step = step;
    state.best_epoch = result.best_epoch;
    state.best_val_loss = result.best_val_loss;
    state.epochs_without_improvement =
        improved || !validation ? 0 : state.epochs_without_improvement + 1;
    state.history = result.history;
    state.best_weights = best_weights;
    state.epoch_batches = state.epoch_correct = state.epoch_seen = 0;
    state.epoch_loss_sum = 0;
    state.epoch_abs_error.clear();
    state.epoch_squared_error.clear();
    if (augmenter) state.augmentation_rng = augmenter->rng().state();
    if (leader && !options.checkpoint_path.empty())
      save_checkpoint(options.checkpoint_path, model, optimizer, loader.rng(), state);
    if (validation && options.patience && state.epochs_without_improvement >= options.patience) {
      log << "early stop: no better validation loss for " << options.patience
          << " epochs; keeping epoch " << result.best_epoch << "\n";
      result.stopped_early = true;
      break;
    }
  }
  if (validation && !best_weights.empty()) nn::set_state(model, best_weights);
  result.steps = step;
  return result;
}

}  // namespace

TrainResult train_classifier(nn::Module<float>& model, const Dataset& train,
                             const Dataset* validation, const TrainOptions& options,
                             const std::string& resume_from) {
  if (!(options.label_smoothing >= 0.0 && options.label_smoothing <= 1.0))
    throw std::invalid_argument("train: label_smoothing must be in [0, 1]");
  ClassificationLoop task(options.label_smoothing);
  return train_loop(model, train, validation, options, resume_from, task);
}

TrainResult train_regressor(nn::Module<float>& model, const Dataset& train,
                            const Dataset* validation, const TrainOptions& options,
                            const std::string& resume_from) {
  train.validate("training data");
  if (!train.regression() || train.size() == 0)
    throw std::invalid_argument(train.regression() ? "train: the training data is empty"
                                                   : "train: the training data have no targets");
  RegressionLoop task(train, options.loss);
  TrainResult result = train_loop(model, train, validation, options, resume_from, task);
  result.target_scaler = task.scaler();
  return result;
}

}  // namespace tapegrad
