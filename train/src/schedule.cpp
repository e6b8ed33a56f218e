#include "tapegrad/train/schedule.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <vector>

#include "text.hpp"

namespace tapegrad {
namespace {

constexpr double pi = 3.14159265358979323846;

double parse_number(const std::string& text, const std::string& field) {
  std::size_t used = 0;
  double v = 0;
  try {
    v = std::stod(field, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != field.size() || field.empty() || !std::isfinite(v) || v < 0)
    throw std::invalid_argument("schedule \"" + text + "\": \"" + field +
                                "\" is not a non-negative number");
  return v;
}

std::size_t parse_count(const std::string& text, const std::string& field) {
  const double v = parse_number(text, field);
  if (v != std::floor(v))
    throw std::invalid_argument("schedule \"" + text + "\": \"" + field +
                                "\" is not a whole number");
  return static_cast<std::size_t>(v);
}

}  // namespace

LrSchedule LrSchedule::parse(const std::string& text) {
  LrSchedule s;
  const std::vector<std::string> parts = detail::split(text, ',');
  for (std::size_t p = 0; p < parts.size(); ++p) {
    const std::vector<std::string> f = detail::split(parts[p], ':');
    if (p > 0) {
      if (f[0] != "warmup" || f.size() != 2)
        throw std::invalid_argument("schedule \"" + text + "\": expected \",warmup:STEPS\"");
      s.warmup_steps = parse_count(text, f[1]);
      continue;
    }
    if (f[0] == "constant" && f.size() == 1) {
      s.kind = Kind::constant;
    } else if (f[0] == "step" && f.size() <= 3) {
      s.kind = Kind::step;
      if (f.size() > 1) s.step_epochs = parse_count(text, f[1]);
      if (f.size() > 2) s.gamma = parse_number(text, f[2]);
      if (s.step_epochs == 0)
        throw std::invalid_argument("schedule \"" + text + "\": step epochs must be > 0");
    } else if (f[0] == "exponential" && f.size() <= 2) {
      s.kind = Kind::exponential;
      s.gamma = f.size() > 1 ? parse_number(text, f[1]) : 0.9;
    } else if (f[0] == "cosine" && f.size() <= 2) {
      s.kind = Kind::cosine;
      if (f.size() > 1) s.min_lr = parse_number(text, f[1]);
    } else if (f[0] == "plateau" && f.size() <= 4) {
      s.kind = Kind::plateau;
      s.gamma = f.size() > 1 ? parse_number(text, f[1]) : 0.1;
      if (f.size() > 2) s.patience = parse_count(text, f[2]);
      if (f.size() > 3) s.min_lr = parse_number(text, f[3]);
      if (s.gamma >= 1)
        throw std::invalid_argument("schedule \"" + text + "\": the plateau factor must be < 1");
    } else {
      throw std::invalid_argument(
          "schedule \"" + text +
          "\": expected constant, step[:EPOCHS[:GAMMA]], exponential[:GAMMA], cosine[:MIN_LR] "
          "or plateau[:GAMMA[:PATIENCE[:MIN_LR]]], optionally followed by ,warmup:STEPS");
    }
  }
  return s;
}

double LrSchedule::lr_at(double base_lr, std::size_t step, std::size_t total_steps,
                         std::size_t steps_per_epoch, std::size_t reductions) const {
  if (step < warmup_steps) {
    const double t = static_cast<double>(step) / static_cast<double>(warmup_steps);
    return base_lr * (warmup_start + (1 - warmup_start) * t);
  }
  switch (kind) {
    case Kind::constant:
      return base_lr;
    case Kind::step: {
      // Decays every step_epochs epochs' worth of steps, counted from the warm-up's end.
      std::size_t period = 0;
      if (__builtin_mul_overflow(step_epochs, steps_per_epoch, &period)) return base_lr;
      const std::size_t decays = period ? (step - warmup_steps) / period : 0;
      return base_lr * std::pow(gamma, static_cast<double>(decays));
    }
    case Kind::exponential: {
      const std::size_t epochs = steps_per_epoch ? (step - warmup_steps) / steps_per_epoch : 0;
      return base_lr * std::pow(gamma, static_cast<double>(epochs));
    }
    case Kind::plateau:
      return std::max(base_lr * std::pow(gamma, static_cast<double>(reductions)), min_lr);
    case Kind::cosine: {
      const std::size_t span = total_steps > warmup_steps ? total_steps - warmup_steps : 1;
      const double t = static_cast<double>(step - warmup_steps) / static_cast<double>(span);
      return min_lr + (base_lr - min_lr) * (1 + std::cos(pi * std::min(t, 1.0))) / 2;
    }
  }
  return base_lr;
}

bool PlateauState::observe(double loss, const LrSchedule& schedule) {
  if (loss < best * (1 - schedule.threshold)) {
    best = loss;
    bad_epochs = 0;
  } else {
    ++bad_epochs;
  }
  if (cooldown_left > 0) {
    --cooldown_left;
    bad_epochs = 0;
  }
  if (bad_epochs <= schedule.patience) return false;
  ++reductions;
  cooldown_left = schedule.cooldown;
  bad_epochs = 0;
  return true;
}

}  // namespace tapegrad
