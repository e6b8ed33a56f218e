// Half of the layers' comparison with PyTorch (layers_interop.py is the other half).
//   write DIR: model A's initial parameters and ten batches, and its state after ten SGD steps in
//              training mode (BatchNorm's running statistics included); model B (every kind of
//              layer, in evaluation mode) with its parameters, buffers, an input and its output.
//   read DIR:  loads the parameters and buffers PyTorch wrote for model B, strictly, and checks
//              the output PyTorch computed with them.
#include <cmath>
#include <cstdio>
#include <string>

#include "tapegrad/layers/dropout.hpp"
#include "tapegrad/layers/layers.hpp"
#include "tapegrad/layers/normalization.hpp"
#include "tapegrad/layers/safetensors.hpp"
#include "tapegrad/tapegrad.hpp"
#include "tapegrad/train/sgd.hpp"

using namespace tapegrad;

namespace {

constexpr std::size_t steps = 10, batch = 16, features = 6, classes = 3;

// Linear(6, 8) → BatchNorm1d(8) → ReLU → Linear(8, 8) → LayerNorm(8) → Tanh → Linear(8, 3).
std::shared_ptr<nn::Sequential<float>> model_a(nn::Generator& g) {
  auto m = std::make_shared<nn::Sequential<float>>();
  m->emplace<nn::Linear<float>>(features, 8, true, g).emplace<nn::BatchNorm1d<float>>(8);
  m->emplace<nn::ReLU<float>>().emplace<nn::Linear<float>>(8, 8, true, g);
  m->emplace<nn::LayerNorm<float>>(Shape{8}).emplace<nn::Tanh<float>>();
  m->emplace<nn::Linear<float>>(8, classes, true, g);
  return m;
}

// Linear(6, 8) → BatchNorm1d(8) → LeakyReLU(0.1) → Dropout(0.3) → Linear(8, 8) →
// LayerNorm(8) → GELU → Linear(8, 8) → ELU(0.5) → Linear(8, 8) → SiLU → Linear(8, 8) →
// GELU(tanh) → Linear(8, 3) → LogSoftmax(1).
std::shared_ptr<nn::Sequential<float>> model_b(nn::Generator& g) {
  auto m = std::make_shared<nn::Sequential<float>>();
  m->emplace<nn::Linear<float>>(features, 8, true, g).emplace<nn::BatchNorm1d<float>>(8);
  m->emplace<nn::LeakyReLU<float>>(0.1).emplace<nn::Dropout<float>>(0.3, g);
  m->emplace<nn::Linear<float>>(8, 8, true, g).emplace<nn::LayerNorm<float>>(Shape{8});
  m->emplace<nn::GELU<float>>().emplace<nn::Linear<float>>(8, 8, true, g);
  m->emplace<nn::ELU<float>>(0.5).emplace<nn::Linear<float>>(8, 8, true, g);
  m->emplace<nn::SiLU<float>>().emplace<nn::Linear<float>>(8, 8, true, g);
  m->emplace<nn::GELU<float>>(GeluApproximation::tanh);
  m->emplace<nn::Linear<float>>(8, classes, true, g).emplace<nn::LogSoftmax<float>>(1);
  return m;
}

StoredTensor stored(const Tensor<float>& t) {
  StoredTensor s;
  s.f32 = t;
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) return 2;
  const std::string mode = argv[1], dir = argv[2];
  if (mode == "write") {
    nn::Generator g(5);
    auto a = model_a(g);
    nn::save_parameters(*a, dir + "/a_initial.safetensors");
    Tensor<float> x(Shape{steps, batch, features});
    nn::normal(x, g, 0.5, 1.5);
    Tensor<float> labels(Shape{steps, batch});
    for (float& y : labels) y = static_cast<float>(static_cast<int>(g.uniform() * classes));
    SGD<float> sgd(a->parameters(), {0.1, 0.0, 0.0, false, 0.0});
    for (std::size_t s = 0; s < steps; ++s) {
      Tensor<float> xs(Shape{batch, features});
      std::copy_n(x.data() + s * xs.numel(), xs.numel(), xs.data());
      std::vector<std::int64_t> ys(batch);
      for (std::size_t i = 0; i < batch; ++i)
        ys[i] = static_cast<std::int64_t>(labels[s * batch + i]);
      sgd.zero_grad();
      softmax_cross_entropy((*a)(Var<float>(xs)), ys).backward();
      sgd.step();
    }
    nn::save_parameters(*a, dir + "/a_trained.safetensors");

    auto b = model_b(g);
    auto& bn = static_cast<nn::BatchNorm1d<float>&>(*b->children()[1].second);
    nn::normal(bn.running_mean, g, 0.0, 0.5);
    nn::uniform(bn.running_var, g, 0.5, 2.0);
    bn.num_batches_tracked[0] = 7;
    b->eval();
    Tensor<float> xb(Shape{5, features});
    nn::normal(xb, g, 0.0, 1.0);
    nn::save_parameters(*b, dir + "/b_tapegrad.safetensors");
    TensorFile io;
    io.tensors = {{"x", stored(x)},
                  {"labels", stored(labels)},
                  {"xb", stored(xb)},
                  {"yb", stored((*b)(Var<float>(xb)).value())}};
    for (const auto& [index, layer] : b->children()) io.metadata["names"] += layer->name() + "\n";
    save_tensors(dir + "/io.safetensors", io);
    return 0;
  }
  nn::Generator g(99);
  auto b = model_b(g);
  b->eval();
  nn::load_parameters(*b, dir + "/b_torch.safetensors");
  const TensorFile io = load_tensors(dir + "/io.safetensors");
  const TensorFile expected = load_tensors(dir + "/b_torch_out.safetensors");
  const Tensor<float> y = (*b)(Var<float>(io.find("xb")->f32)).value();
  const Tensor<float>& want = expected.find("yb")->f32;
  double worst = 0;
  for (std::size_t k = 0; k < y.numel(); ++k)
    worst = std::max(worst, std::abs(double(y[k]) - want[k]));
  const auto& bn = static_cast<const nn::BatchNorm1d<float>&>(*b->children()[1].second);
  std::printf(
      "model B with PyTorch's parameters and buffers: largest output difference %g, "
      "num_batches_tracked %g\n",
      worst, double(bn.num_batches_tracked[0]));
  return worst < 1e-5 && bn.num_batches_tracked[0] == 12 ? 0 : 1;
}
