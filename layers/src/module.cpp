#include "tapegrad/layers/module.hpp"

#include <algorithm>
#include <iomanip>
#include <sstream>
#include <stdexcept>

namespace tapegrad::nn {

template <class T>
std::vector<std::pair<std::string, Var<T>>> Module<T>::named_parameters() const {
  std::vector<std::pair<std::string, Var<T>>> all = params_;
  for (const auto& [child_name, child] : children_)
    for (auto& [name, p] : child->named_parameters()) all.emplace_back(child_name + "." + name, p);
  return all;
}

template <class T>
std::vector<std::pair<std::string, Buffer<T>>> Module<T>::named_buffers() const {
  std::vector<std::pair<std::string, Buffer<T>>> all = buffers_;
  for (const auto& [child_name, child] : children_)
    for (auto& [name, b] : child->named_buffers()) all.emplace_back(child_name + "." + name, b);
  return all;
}

template <class T>
std::vector<std::pair<std::string, Generator*>> Module<T>::named_generators() const {
  std::vector<std::pair<std::string, Generator*>> all = generators_;
  for (const auto& [child_name, child] : children_)
    for (auto& [name, g] : child->named_generators()) all.emplace_back(child_name + "." + name, g);
  return all;
}

template <class T>
std::vector<Var<T>> Module<T>::parameters() const {
  std::vector<Var<T>> all;
  for (auto& [name, p] : named_parameters()) all.push_back(p);
  return all;
}

template <class T>
std::size_t Module<T>::parameter_count() const {
  std::size_t n = 0;
  for (auto& [name, p] : named_parameters()) n += p.numel();
  return n;
}

// Walks the tree itself rather than through named_parameters(): no names, no vector, so a
// training step that calls it allocates nothing.
template <class T>
void Module<T>::zero_grad() {
  for (auto& [name, p] : params_) p.zero_grad();
  for (auto& [name, child] : children_) child->zero_grad();
}

template <class T>
void Module<T>::train(bool on) {
  training_ = on;
  for (auto& [name, child] : children_) child->train(on);
}

template <class T>
Var<T> Module<T>::register_parameter(const std::string& name, Tensor<T> value) {
  for (const auto& [existing, p] : params_)
    if (existing == name) throw std::logic_error("register_parameter: \"" + name + "\" twice");
  params_.emplace_back(name, Var<T>::parameter(std::move(value)));
  return params_.back().second;
}

template <class T>
void Module<T>::register_buffer(const std::string& name, Tensor<T>& tensor, bool is_count) {
  for (const auto& [existing, b] : buffers_)
    if (existing == name) throw std::logic_error("register_buffer: \"" + name + "\" twice");
  for (const auto& [existing, p] : params_)
    if (existing == name)
      throw std::logic_error("register_buffer: \"" + name + "\" is a parameter already");
  buffers_.emplace_back(name, Buffer<T>{&tensor, is_count});
}

template <class T>
void Module<T>::register_generator(const std::string& name, Generator& generator) {
  for (const auto& [existing, g] : generators_)
    if (existing == name) throw std::logic_error("register_generator: \"" + name + "\" twice");
  generators_.emplace_back(name, &generator);
}

template <class T>
void Module<T>::register_module(const std::string& name, std::shared_ptr<Module<T>> child) {
  if (!child) throw std::invalid_argument("register_module: \"" + name + "\" is null");
  children_.emplace_back(name, std::move(child));
}

template <class T>
std::string Module<T>::summary(const Shape& input) const {
  struct Row {
    std::string index, layer, shape;
    std::size_t params;
  };
  std::vector<Row> rows;
  Shape shape = input;
  if (children_.empty()) {
    shape = output_shape(shape);
    rows.push_back({"", name(), shape.to_string(), parameter_count()});
  } else {
    for (const auto& [child_name, child] : children_) {
      shape = child->output_shape(shape);
      rows.push_back({child_name, child->name(), shape.to_string(), child->parameter_count()});
    }
  }
  std::size_t w_index = 1, w_layer = 5, w_shape = 12;
  for (const Row& r : rows) {
    w_index = std::max(w_index, r.index.size());
    w_layer = std::max(w_layer, r.layer.size());
    w_shape = std::max(w_shape, r.shape.size());
  }
  std::ostringstream s;
  auto line = [&](const std::string& i, const std::string& l, const std::string& sh,
                  const std::string& p) {
    s << std::left << std::setw(static_cast<int>(w_index)) << i << "  "
      << std::setw(static_cast<int>(w_layer)) << l << "  " << std::setw(static_cast<int>(w_shape))
      << sh << "  " << std::right << std::setw(10) << p << "\n";
  };
  s << name() << " for input " << input.to_string() << "\n";
  line("#", "layer", "output shape", "parameters");
  for (const Row& r : rows) line(r.index, r.layer, r.shape, std::to_string(r.params));
  line("", "total", "", std::to_string(parameter_count()));
  return s.str();
}

template class Module<float>;
template class Module<double>;

}  // namespace tapegrad::nn
