// Learning-rate schedules: the learning rate as a function of the training step t.
//   constant  η
//   step      η · γ^⌊t / (step_epochs · steps per epoch)⌋     (StepLR, stepped once per step)
//   cosine    η_min + (η − η_min)(1 + cos(π t / T)) / 2         (CosineAnnealingLR over T steps)
// Any of them may start with a linear warm-up over the first W steps, from η·warmup_start to
// η (LinearLR); t then counts from the warm-up's end and T = total steps − W, as PyTorch's
// SequentialLR([LinearLR, schedule], milestones=[W]) does: it restarts the second schedule at 0
// on reaching the milestone.
#pragma once

#include <cstddef>
#include <string>

namespace tapegrad {

struct LrSchedule {
  enum class Kind { constant, step, cosine };
  Kind kind = Kind::constant;
  std::size_t step_epochs = 5;  // step: decay every this many epochs
  double gamma = 0.5;           // step: factor per decay
  double min_lr = 0.0;          // cosine: final rate
  std::size_t warmup_steps = 0;
  double warmup_start = 0.1;  // warm-up starts at this fraction of the base rate

  // Parses "constant", "step[:EPOCHS[:GAMMA]]", "cosine[:MIN_LR]", each optionally followed by
  // ",warmup:STEPS"; throws std::invalid_argument naming the text on a bad value.
  static LrSchedule parse(const std::string& text);

  // The rate at global step `step` (0-based) of `total_steps`, with `steps_per_epoch` steps per
  // epoch, for base rate `base_lr`.
  double lr_at(double base_lr, std::size_t step, std::size_t total_steps,
               std::size_t steps_per_epoch) const;
};

}  // namespace tapegrad
