// Half of the PyTorch round trip (torch_interop.py is the other half), for the cnn-fashion model
// ("cnn") and the README's CNN with BatchNorm and a hidden fully-connected layer ("cnn_fc",
// cnn,norm=batch,fc=64 on the command line), both in evaluation mode.
//   write DIR: saves each model's parameters and buffers, an input and each output.
//   read DIR:  loads the parameters PyTorch wrote, and checks the outputs PyTorch computed.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>

#include "tapegrad/layers/layers.hpp"
#include "tapegrad/layers/safetensors.hpp"

using namespace tapegrad;

namespace {
std::shared_ptr<nn::Sequential<float>> build(const std::string& name, nn::Generator& g) {
  if (name == "cnn") return nn::cnn1d<float>({28, 64, 128}, 28, 10, 3, 2, g);
  return nn::cnn1d<float>({28, 64, 128}, 28, 10, 3, 2, g, {nn::Norm::batch, 0.0},
                          nn::Activation::relu, {64});
}
const char* const names[] = {"cnn", "cnn_fc"};
}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) return 2;
  const std::string mode = argv[1], dir = argv[2];
  nn::Generator g(mode == "write" ? 1 : 999);
  if (mode == "write") {
    Tensor<float> x(Shape{2, 28, 28});
    nn::normal(x, g, 0.0, 1.0);
    TensorFile io;
    io.tensors = {{"x", StoredTensor{x, {}, {}}}};
    for (const std::string name : names) {
      auto model = build(name, g);
      model->eval();
      nn::save_parameters(*model, dir + "/" + name + "_tapegrad.safetensors");
      io.tensors.push_back({"y_" + name, StoredTensor{(*model)(Var<float>(x)).value(), {}, {}}});
    }
    save_tensors(dir + "/io.safetensors", io);
    return 0;
  }
  const TensorFile io = load_tensors(dir + "/io.safetensors");
  const TensorFile expected = load_tensors(dir + "/torch_out.safetensors");
  int failures = 0;
  for (const std::string name : names) {
    auto model = build(name, g);
    model->eval();
    nn::load_parameters(*model, dir + "/" + name + "_torch.safetensors");
    const Tensor<float> y = (*model)(Var<float>(io.find("x")->f32)).value();
    const Tensor<float>& want = expected.find("y_" + name)->f32;
    double worst = 0;
    for (std::size_t k = 0; k < y.numel(); ++k)
      worst = std::max(worst, std::abs(double(y[k]) - want[k]));
    std::printf("%s: largest difference from PyTorch's output on its parameters: %g\n",
                name.c_str(), worst);
    failures += worst < 1e-4 ? 0 : 1;
  }
  return failures == 0 ? 0 : 1;
}
