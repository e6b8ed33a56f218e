#include "tapegrad/train/trainer.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <sstream>

#include "tapegrad/autodiff/losses.hpp"
#include "tapegrad/autodiff/reduce.hpp"
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

TrainResult train_classifier(nn::Module<float>& model, const Dataset& train,
                             const Dataset* validation, const TrainOptions& options,
                             const std::string& resume_from) {
  train.validate("training data");
  if (train.size() == 0) throw std::invalid_argument("train: the training data is empty");
  if (validation) {
    validation->validate("validation data");
    validation->check_finite("validation data");
  }
  if (options.watch) {
    options.watch->validate("test data");
    options.watch->check_finite("test data");
  }
  if (options.epochs == 0) throw std::invalid_argument("train: epochs must be > 0");
  std::ostream& log = options.log ? *options.log : std::cout;
  std::vector<Var<float>> params = model.parameters();
  const std::unique_ptr<Optimizer<float>> optimizer_owner =
      make_optimizer(options.optimizer, model);
  Optimizer<float>& optimizer = *optimizer_owner;
  if (!(options.clip_grad_norm >= 0))
    throw std::invalid_argument("train: clip_grad_norm must be >= 0");
  DataLoader loader(train, {options.batch_size, options.shuffle, options.seed, false});
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
    result.history = state.history;
    result.best_epoch = state.best_epoch;
    result.best_val_loss = state.best_val_loss;
    best_weights = state.best_weights;
    if (state.epoch_batches >= steps_per_epoch)
      throw TrainingError(resume_from + ": the checkpoint stopped after batch " +
                          std::to_string(state.epoch_batches) + " of an epoch, but this run has " +
                          std::to_string(steps_per_epoch) +
                          " batches per epoch (other data or batch size?)");
    log << "resumed from " << resume_from << " after epoch " << state.epoch;
    if (state.epoch_batches)
      log << " and " << state.epoch_batches << " of " << steps_per_epoch << " batches of epoch "
          << state.epoch + 1;
    log << "\n";
  }

  const bool bar = options.progress == TrainOptions::Progress::bar ||
                   (options.progress == TrainOptions::Progress::automatic && isatty(2));
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
    double loss_sum = inside ? state.epoch_loss_sum : 0;
    std::size_t seen = inside ? state.epoch_seen : 0, correct = inside ? state.epoch_correct : 0;
    loader.skip(batch_index);
    const std::size_t seen_before = seen;  // samples of this epoch taken before a resume
    const auto start = Clock::now();
    ProgressBar progress(epoch, options.epochs, steps_per_epoch);
    double lr = optimizer.lr(0);
    while (loader.next(batch)) {
      if (options.max_steps && step >= options.max_steps) break;
      for (std::size_t g = 0; g < optimizer.group_count(); ++g)
        optimizer.set_lr(g, options.schedule.lr_at(optimizer.initial_lr(g), step, total_steps,
                                                   steps_per_epoch, state.plateau.reductions));
      lr = optimizer.lr(0);
      const std::size_t b = batch.size();
      // The step, as the math reads: forward, loss, backward, update, clear the gradients.
      Var<float> logits = model(Var<float>(batch.inputs));
      Var<float> loss = softmax_cross_entropy(logits, batch.labels);
      const double value = loss.item();
      if (!std::isfinite(value))
        throw TrainingError("the training loss became " +
                            std::string(std::isnan(value) ? "NaN" : "infinite") + " at epoch " +
                            std::to_string(epoch) + ", step " + std::to_string(batch_index + 1) +
                            " of " + std::to_string(steps_per_epoch) + " (learning rate " +
                            std::to_string(lr) + "); lower the learning rate or check the data");
      loss.backward();
      if (options.clip_grad_norm > 0) clip_grad_norm(params, options.clip_grad_norm);
      optimizer.step();
      optimizer.zero_grad();
      ++step;
      ++batch_index;
      loss_sum += value * static_cast<double>(b);
      correct += count_correct(logits.value(), batch.labels);
      seen += b;
      if (bar) progress.update(batch_index, loss_sum / seen, seen);
    }
    if (bar) progress.finish();
    if (batch_index < steps_per_epoch) {  // max_steps stopped the run inside this epoch
      log << "stopped after step " << step << ", batch " << batch_index << " of " << steps_per_epoch
          << " of epoch " << epoch << "\n";
      state.step = step;
      state.epoch_batches = batch_index;
      state.epoch_loss_sum = loss_sum;
      state.epoch_correct = correct;
      state.epoch_seen = seen;
      if (!options.checkpoint_path.empty())
        save_checkpoint(options.checkpoint_path, model, optimizer, epoch_start, state);
      break;
    }

    EpochMetrics m;
    m.epoch = epoch;
    m.train_loss = loss_sum / static_cast<double>(seen);
    m.train_accuracy = static_cast<double>(correct) / static_cast<double>(seen);
    m.lr = lr;
    m.seconds = seconds_since(start);
    m.samples_per_second = static_cast<double>(seen - seen_before) / m.seconds;
    m.val_loss = m.val_accuracy = m.test_loss = m.test_accuracy = std::nan("");
    bool improved = false;
    if (validation) {
      const Evaluation v = evaluate_classifier(model, *validation);
      m.val_loss = v.loss;
      m.val_accuracy = v.accuracy;
      if (v.loss < result.best_val_loss) {
        result.best_val_loss = v.loss;
        result.best_epoch = epoch;
        best_weights = nn::state_values(model);
        improved = true;
      }
    }
    if (options.watch) {
      const Evaluation t = evaluate_classifier(model, *options.watch);
      m.test_loss = t.loss;
      m.test_accuracy = t.accuracy;
    }
    result.history.push_back(m);
    if (options.schedule.kind == LrSchedule::Kind::plateau)
      state.plateau.observe(validation ? m.val_loss : m.train_loss, options.schedule);

    std::ostringstream line;
    line.setf(std::ios::fixed);
    line.precision(4);
    line << "epoch " << epoch << "/" << options.epochs << "  train loss " << m.train_loss
         << "  acc " << m.train_accuracy;
    if (validation) line << "  val loss " << m.val_loss << "  acc " << m.val_accuracy;
    if (options.watch) line << "  test loss " << m.test_loss << "  acc " << m.test_accuracy;
    line.precision(1);
    line << "  " << m.seconds << " s  " << std::lround(m.samples_per_second) << " samples/s";
    log << line.str() << std::endl;

    if (!options.metrics_path.empty())
      write_file_atomically(options.metrics_path, metrics_csv(result.history));
    if (!options.curves_path.empty())
      write_file_atomically(options.curves_path, curves_svg(result.history));
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
    if (!options.checkpoint_path.empty())
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

}  // namespace tapegrad
