#include "tapegrad/train/make_optimizer.hpp"

#include <stdexcept>

#include "tapegrad/train/adagrad.hpp"
#include "tapegrad/train/adam.hpp"
#include "tapegrad/train/rmsprop.hpp"
#include "tapegrad/train/sgd.hpp"

namespace tapegrad {
namespace {

constexpr OptimizerSpec::Kind kinds[] = {OptimizerSpec::Kind::sgd, OptimizerSpec::Kind::adam,
                                         OptimizerSpec::Kind::adamw, OptimizerSpec::Kind::rmsprop,
                                         OptimizerSpec::Kind::adagrad};

// The groups of the recipe: [decayed, not decayed] (the second left out when empty), each with
// options made by `options(decay)`.
template <class Options, class MakeOptions>
std::vector<ParamGroup<float, Options>> groups(const OptimizerSpec& spec,
                                               const nn::Module<float>& model, double decay,
                                               MakeOptions options) {
  if (!spec.no_decay_bias_norm) return {{model.parameters(), options(decay)}};
  std::vector<Var<float>> decayed, plain;
  for (const auto& [name, p] : model.named_parameters()) {
    const bool is_bias =
        name == "bias" || (name.size() > 5 && name.rfind(".bias") == name.size() - 5);
    (is_bias || p.shape().rank() <= 1 ? plain : decayed).push_back(p);
  }
  std::vector<ParamGroup<float, Options>> g;
  g.push_back({std::move(decayed), options(decay)});
  if (!plain.empty()) g.push_back({std::move(plain), options(0.0)});
  return g;
}

}  // namespace

OptimizerSpec::Kind OptimizerSpec::parse_kind(const std::string& name) {
  for (Kind k : kinds)
    if (name == name_of(k)) return k;
  throw std::invalid_argument("unknown optimizer \"" + name +
                              "\" (valid: sgd, adam, adamw, rmsprop, adagrad)");
}

const char* OptimizerSpec::name_of(Kind kind) {
  switch (kind) {
    case Kind::sgd:
      return "sgd";
    case Kind::adam:
      return "adam";
    case Kind::adamw:
      return "adamw";
    case Kind::rmsprop:
      return "rmsprop";
    case Kind::adagrad:
      return "adagrad";
  }
  return "";
}

std::unique_ptr<Optimizer<float>> make_optimizer(const OptimizerSpec& s,
                                                 const nn::Module<float>& model) {
  switch (s.kind) {
    case OptimizerSpec::Kind::sgd:
      return std::make_unique<SGD<float>>(
          groups<SgdOptions>(s, model, s.weight_decay.value_or(0.0), [&](double decay) {
            return SgdOptions{s.lr, s.momentum, s.dampening, s.nesterov, decay};
          }));
    case OptimizerSpec::Kind::adam:
    case OptimizerSpec::Kind::adamw: {
      const bool w = s.kind == OptimizerSpec::Kind::adamw;
      const double default_decay = w ? AdamW<float>::defaults().weight_decay : 0.0;
      auto g =
          groups<AdamOptions>(s, model, s.weight_decay.value_or(default_decay), [&](double decay) {
            return AdamOptions{s.lr, s.beta1, s.beta2, s.eps.value_or(1e-8), decay, s.amsgrad};
          });
      if (w) return std::make_unique<AdamW<float>>(std::move(g));
      return std::make_unique<Adam<float>>(std::move(g));
    }
    case OptimizerSpec::Kind::rmsprop:
      return std::make_unique<RMSprop<float>>(
          groups<RmspropOptions>(s, model, s.weight_decay.value_or(0.0), [&](double decay) {
            return RmspropOptions{s.lr,  s.alpha,    s.eps.value_or(1e-8),
                                  decay, s.momentum, s.centered};
          }));
    case OptimizerSpec::Kind::adagrad:
      return std::make_unique<Adagrad<float>>(
          groups<AdagradOptions>(s, model, s.weight_decay.value_or(0.0), [&](double decay) {
            return AdagradOptions{s.lr, s.lr_decay, decay, s.initial_accumulator_value,
                                  s.eps.value_or(1e-10)};
          }));
  }
  throw std::invalid_argument("make_optimizer: unknown kind");
}

}  // namespace tapegrad
