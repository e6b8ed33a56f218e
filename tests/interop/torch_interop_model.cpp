// Half of the PyTorch round trip (torch_interop.py is the other half).
//   write DIR: saves the cnn-fashion model's parameters, an input and its output.
//   read DIR:  loads the parameters PyTorch wrote, and checks the output PyTorch computed.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>

#include "tapegrad/layers/layers.hpp"
#include "tapegrad/layers/safetensors.hpp"

using namespace tapegrad;

int main(int argc, char** argv) {
  if (argc != 3) return 2;
  const std::string mode = argv[1], dir = argv[2];
  nn::Generator g(mode == "write" ? 1 : 999);
  auto model = nn::cnn1d<float>({28, 64, 128}, 28, 10, 3, 2, g);
  if (mode == "write") {
    Tensor<float> x(Shape{2, 28, 28});
    nn::normal(x, g, 0.0, 1.0);
    nn::save_parameters(*model, dir + "/tapegrad.safetensors");
    TensorFile io;
    io.tensors = {{"x", StoredTensor{x, {}, {}}},
                  {"y", StoredTensor{(*model)(Var<float>(x)).value(), {}, {}}}};
    save_tensors(dir + "/io.safetensors", io);
    return 0;
  }
  nn::load_parameters(*model, dir + "/torch.safetensors");
  const TensorFile io = load_tensors(dir + "/io.safetensors");
  const TensorFile expected = load_tensors(dir + "/torch_out.safetensors");
  const Tensor<float> y = (*model)(Var<float>(io.find("x")->f32)).value();
  const Tensor<float>& want = expected.find("y")->f32;
  double worst = 0;
  for (std::size_t k = 0; k < y.numel(); ++k)
    worst = std::max(worst, std::abs(double(y[k]) - want[k]));
  std::printf("largest difference from PyTorch's output: %g\n", worst);
  return worst < 1e-4 ? 0 : 1;
}
