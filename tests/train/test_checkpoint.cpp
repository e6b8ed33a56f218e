// Checkpoints hold any optimiser's state by name; older SGD checkpoints still load.
#include <cstdio>

#include "helpers.hpp"
#include "tapegrad/layers/layers.hpp"
#include "tapegrad/layers/safetensors.hpp"
#include "tapegrad/train/adam.hpp"
#include "tapegrad/train/checkpoint.hpp"
#include "tapegrad/train/sgd.hpp"

using namespace tapegrad;

namespace {
std::shared_ptr<nn::Sequential<float>> small_model(std::uint64_t seed) {
  nn::Generator g(seed);
  return nn::mlp<float>({2, 4, 3}, nn::Activation::relu, g);
}
void train_steps(nn::Module<float>& m, Optimizer<float>& opt, int steps) {
  const Tensor<float> x = test::random_tensor<float>({6, 2}, 3);
  for (int s = 0; s < steps; ++s) {
    opt.zero_grad();
    softmax_cross_entropy(m(Var<float>(x)), {0, 1, 2, 0, 1, 2}).backward();
    opt.step();
  }
}
}  // namespace

TEST_CASE("checkpoint: Adam's state is saved by name and a resumed run continues bit for bit") {
  const std::string ckpt = "/tmp/tapegrad_test_checkpoint_adam.safetensors";
  auto straight = small_model(1);
  Adam<float> straight_opt(straight->parameters(), {0.01, 0.9, 0.99, 1e-8, 0.01, true});
  train_steps(*straight, straight_opt, 6);

  auto first = small_model(1);
  Adam<float> first_opt(first->parameters(), {0.01, 0.9, 0.99, 1e-8, 0.01, true});
  train_steps(*first, first_opt, 3);
  ShuffleRng rng;
  save_checkpoint(ckpt, *first, first_opt, rng, TrainingState{});
  const TensorFile file = load_tensors(ckpt);
  CHECK(file.metadata.at("optimizer") == "Adam");
  CHECK(file.metadata.at("optimizer.0.step") == "3");
  CHECK(file.find("optimizer.0.max_exp_avg_sq") != nullptr);

  auto resumed = small_model(2);
  Adam<float> resumed_opt(resumed->parameters(), {0.01, 0.9, 0.99, 1e-8, 0.01, true});
  load_checkpoint(ckpt, *resumed, resumed_opt, rng);
  train_steps(*resumed, resumed_opt, 3);
  for (std::size_t i = 0; i < straight->parameters().size(); ++i)
    CHECK(test::bit_identical(resumed->parameters()[i].value(), straight->parameters()[i].value()));

  // Into another optimiser: refused, naming both, and the model is left as it was.
  auto other = small_model(3);
  const Tensor<float> before = other->parameters()[0].value();
  SGD<float> sgd(other->parameters(), {0.1, 0.9, 0, false, 0});
  CHECK(test::error_of([&] { load_checkpoint(ckpt, *other, sgd, rng); }) ==
        ckpt +
            ": checkpoint field optimizer: the checkpoint holds the state of \"Adam\", but "
            "this run uses SGD");
  CHECK(test::bit_identical(other->parameters()[0].value(), before));
  std::remove(ckpt.c_str());
}

TEST_CASE("checkpoint: a format-2 checkpoint (SGD's momentum by parameter name) still loads") {
  const std::string ckpt = "/tmp/tapegrad_test_checkpoint_format2.safetensors";
  auto m = small_model(4);
  SGD<float> sgd(m->parameters(), {0.1, 0.9, 0, false, 0});
  train_steps(*m, sgd, 2);
  ShuffleRng rng;
  save_checkpoint(ckpt, *m, sgd, rng, TrainingState{});
  // Rewrite it as format 2 wrote it.
  TensorFile f = load_tensors(ckpt), old;
  const auto names = m->named_parameters();
  for (auto& [name, t] : f.tensors) {
    if (name.rfind("optimizer.", 0) != 0) {
      old.tensors.emplace_back(name, t);
      continue;
    }
    const std::size_t i = std::stoul(name.substr(10));
    old.tensors.emplace_back("momentum." + names[i].first, t);
  }
  for (const auto& [key, value] : f.metadata)
    if (key.rfind("optimizer", 0) != 0) old.metadata[key] = value;
  old.metadata["format"] = "tapegrad-checkpoint-2";
  old.metadata["optimizer_steps"] = "2";
  save_tensors(ckpt, old);

  auto resumed = small_model(5);
  SGD<float> resumed_sgd(resumed->parameters(), {0.1, 0.9, 0, false, 0});
  load_checkpoint(ckpt, *resumed, resumed_sgd, rng);
  const OptimizerState<float> a = sgd.state(), b = resumed_sgd.state();
  REQUIRE(a.tensors.size() == b.tensors.size());
  for (std::size_t i = 0; i < a.tensors.size(); ++i) {
    CHECK(a.tensors[i].first == b.tensors[i].first);
    CHECK(test::bit_identical(a.tensors[i].second, b.tensors[i].second));
  }
  CHECK(a.counts == b.counts);
  std::remove(ckpt.c_str());
}
