// Learning-rate schedules: the learning rate as a function of the training step t, for a base
// rate η (each parameter group's own initial rate).
//   constant     η
//   step         η · γ^⌊t / (step_epochs · steps per epoch)⌋   (StepLR, stepped once per step)
//   exponential  η · γ^⌊t / steps per epoch⌋                   (ExponentialLR, once per epoch)
//   cosine       η_min + (η − η_min)(1 + cos(π t / T)) / 2       (CosineAnnealingLR over T steps)
//   plateau      max(η · γ^r, η_min), r the reductions so far   (ReduceLROnPlateau, mode "min",
//                relative threshold): after each epoch, a loss below best · (1 − threshold) is
//                the new best; otherwise the epoch is bad, and more than `patience` bad epochs
//                in a row (outside `cooldown` epochs after a reduction) reduce once. It differs
//                from PyTorch in one respect: PyTorch skips a reduction smaller than 1e-8.
// Any of them may start with a linear warm-up over the first W steps, from η·warmup_start to
// η (LinearLR); t then counts from the warm-up's end and T = total steps − W, as PyTorch's
// SequentialLR([LinearLR, schedule], milestones=[W]) does: it restarts the second schedule at 0
// on reaching the milestone.
#pragma once

#include <cstddef>
#include <limits>
#include <string>

namespace tapegrad {

struct LrSchedule {
  enum class Kind { constant, step, exponential, cosine, plateau };
  Kind kind = Kind::constant;
  std::size_t step_epochs = 5;  // step: decay every this many epochs
  double gamma = 0.5;           // step, exponential, plateau: factor per decay
  double min_lr = 0.0;          // cosine: final rate; plateau: lowest rate
  std::size_t patience = 10;    // plateau: bad epochs tolerated before a reduction
  double threshold = 1e-4;      // plateau: relative improvement that counts
  std::size_t cooldown = 0;     // plateau: epochs after a reduction that are not counted
  std::size_t warmup_steps = 0;
  double warmup_start = 0.1;  // warm-up starts at this fraction of the base rate

  // Parses "constant", "step[:EPOCHS[:GAMMA]]", "exponential[:GAMMA]", "cosine[:MIN_LR]",
  // "plateau[:GAMMA[:PATIENCE[:MIN_LR]]]", each optionally followed by ",warmup:STEPS"; throws
  // std::invalid_argument naming the text on a bad value.
  static LrSchedule parse(const std::string& text);

  // The rate at global step `step` (0-based) of `total_steps`, with `steps_per_epoch` steps per
  // epoch, for base rate `base_lr`; `reductions` is the plateau schedule's count so far.
  double lr_at(double base_lr, std::size_t step, std::size_t total_steps,
               std::size_t steps_per_epoch, std::size_t reductions = 0) const;
};

// The plateau schedule's memory, carried from epoch to epoch (and in checkpoints).
struct PlateauState {
  double best = std::numeric_limits<double>::infinity();
  std::size_t bad_epochs = 0;
  std::size_t cooldown_left = 0;
  std::size_t reductions = 0;

  // Takes the loss of the epoch just ended (ReduceLROnPlateau.step(loss)); returns whether the
  // rate was reduced.
  bool observe(double loss, const LrSchedule& schedule);
};

}  // namespace tapegrad
