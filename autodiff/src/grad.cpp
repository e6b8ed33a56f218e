#include "tapegrad/autodiff/grad.hpp"

#include <stdexcept>
#include <string>

namespace tapegrad {
namespace {

template <class T>
std::string describe(const char* what, std::size_t k, const Var<T>& v) {
  return std::string(what) + " " + std::to_string(k) + " (shape " + v.shape().to_string() + ")";
}

}  // namespace

template <class T>
std::vector<Var<T>> grad(const std::vector<Var<T>>& outputs, const std::vector<Var<T>>& inputs,
                         const std::vector<Var<T>>& grad_outputs, const GradOptions& options) {
  if (outputs.empty()) throw std::invalid_argument("grad: no outputs given");
  if (!grad_outputs.empty() && grad_outputs.size() != outputs.size())
    throw std::invalid_argument("grad: " + std::to_string(outputs.size()) + " outputs but " +
                                std::to_string(grad_outputs.size()) + " grad_outputs");
  std::vector<Var<T>> seeds;
  seeds.reserve(outputs.size());
  for (std::size_t k = 0; k < outputs.size(); ++k) {
    if (!outputs[k].defined())
      throw std::invalid_argument("grad: output " + std::to_string(k) + " is undefined");
    if (!outputs[k].requires_grad())
      throw std::logic_error("grad: " + describe("output", k, outputs[k]) +
                             " does not require a gradient (no tracked value was used to "
                             "compute it, or its tape was released)");
    if (grad_outputs.empty()) {
      if (outputs[k].numel() != 1)
        throw ShapeError("grad: " + describe("output", k, outputs[k]) +
                         " is not a single element; pass grad_outputs");
      seeds.push_back(Var<T>(Tensor<T>::ones(outputs[k].shape())));
    } else {
      if (!grad_outputs[k].defined() || grad_outputs[k].shape() != outputs[k].shape())
        throw ShapeError("grad: grad_outputs " + std::to_string(k) + " has shape " +
                         (grad_outputs[k].defined() ? grad_outputs[k].shape().to_string()
                                                    : std::string("(undefined)")) +
                         ", output " + std::to_string(k) + " has shape " +
                         outputs[k].shape().to_string());
      seeds.push_back(grad_outputs[k]);
    }
  }
  for (std::size_t k = 0; k < inputs.size(); ++k) {
    if (!inputs[k].defined())
      throw std::invalid_argument("grad: input " + std::to_string(k) + " is undefined");
    if (!inputs[k].requires_grad())
      throw std::logic_error("grad: " + describe("input", k, inputs[k]) +
                             " does not require a gradient");
  }

  BackwardOptions pass;
  pass.create_graph = options.create_graph;
  pass.retain_graph = options.retain_graph.value_or(options.create_graph);
  auto reset = [&] {
    for (const Var<T>& in : inputs) {
      detail::Node<T>& n = *in.node();
      n.captured = false;
      n.pending = Tensor<T>();
      n.pending_graph.reset();
    }
  };
  for (const Var<T>& in : inputs) in.node()->captured = true;
  try {
    Tape<T>::current().backward(outputs, seeds, pass, true);
  } catch (...) {
    reset();
    throw;
  }
  std::vector<Var<T>> result(inputs.size());
  for (std::size_t k = 0; k < inputs.size(); ++k) {
    const detail::Node<T>& n = *inputs[k].node();
    if (options.create_graph && n.pending_graph)
      result[k] = Var<T>::from_node(n.pending_graph);
    else if (!options.create_graph && n.pending.defined())
      result[k] = Var<T>(n.pending);
  }
  reset();
  if (!options.allow_unused)
    for (std::size_t k = 0; k < inputs.size(); ++k)
      if (!result[k].defined())
        throw std::logic_error("grad: " + describe("input", k, inputs[k]) +
                               " is not used to compute the outputs (pass allow_unused to get "
                               "an undefined Var for it)");
  return result;
}

#define TAPEGRAD_INSTANTIATE(T)                                                             \
  template std::vector<Var<T>> grad(const std::vector<Var<T>>&, const std::vector<Var<T>>&, \
                                    const std::vector<Var<T>>&, const GradOptions&);
TAPEGRAD_INSTANTIATE(float)
TAPEGRAD_INSTANTIATE(double)
#undef TAPEGRAD_INSTANTIATE

}  // namespace tapegrad
