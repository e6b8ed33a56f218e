#include "tapegrad/train/models.hpp"

#include <stdexcept>
#include <vector>

#include "text.hpp"

#include "tapegrad/layers/layers.hpp"

namespace tapegrad {
namespace {

std::invalid_argument bad_model(const std::string& text, const std::string& why) {
  return std::invalid_argument("--model " + text + ": " + why + " (expected " + model_help + ")");
}

// "A-B-C" → {A, B, C}, each a positive integer; throws naming `text` otherwise.
std::vector<std::size_t> sizes_of(const std::string& text, const std::string& field) {
  std::vector<std::size_t> sizes;
  for (const std::string& f : detail::split(field, '-')) {
    std::size_t used = 0;
    unsigned long v = 0;
    try {
      v = std::stoul(f, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != f.size() || f.empty() || v == 0 || f[0] == '-' || f[0] == '+')
      throw bad_model(text, "\"" + f + "\" is not a positive layer size");
    sizes.push_back(v);
  }
  return sizes;
}

nn::Activation parse_activation(const std::string& text, const std::string& name) {
  using A = nn::Activation;
  std::string valid;
  for (A a : {A::relu, A::leaky_relu, A::elu, A::gelu, A::silu, A::tanh, A::sigmoid}) {
    if (name == nn::activation_name(a)) return a;
    valid += std::string(valid.empty() ? "" : ", ") + nn::activation_name(a);
  }
  throw bad_model(text, "unknown activation \"" + name + "\" (valid: " + valid + ")");
}

// The options after the first comma: act=…, norm=…, dropout=…, and for the CNN fc=….
struct Options {
  std::string activation = "relu";
  nn::BlockOptions block;
  std::vector<std::size_t> fc;  // the CNN's hidden fully-connected layers
};
Options parse_options(const std::string& text, const std::vector<std::string>& items) {
  Options o;
  for (const std::string& item : items) {
    const std::size_t eq = item.find('=');
    const std::string key = item.substr(0, eq),
                      value = eq == std::string::npos ? "" : item.substr(eq + 1);
    if (key == "act" && !value.empty()) {
      o.activation = value;
    } else if (key == "norm" && !value.empty()) {
      if (value == "batch")
        o.block.norm = nn::Norm::batch;
      else if (value == "layer")
        o.block.norm = nn::Norm::layer;
      else if (value != "none")
        throw bad_model(text, "unknown norm \"" + value + "\" (valid: none, batch, layer)");
    } else if (key == "fc" && !value.empty()) {
      o.fc = sizes_of(text, value);
    } else if (key == "dropout" && !value.empty()) {
      std::size_t used = 0;
      double p = -1;
      try {
        p = std::stod(value, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      if (used != value.size() || !(p >= 0 && p < 1))
        throw bad_model(text, "dropout \"" + value + "\" is not a probability in [0, 1)");
      o.block.dropout = p;
    } else {
      throw bad_model(text, "unknown option \"" + item +
                                "\" (valid: act=NAME, norm=none|batch|layer, dropout=P, fc=SIZES)");
    }
  }
  return o;
}

}  // namespace

Shape ModelSpec::batch_shape(std::size_t n) const {
  Shape s{n};
  for (std::size_t d : sample_shape) s.push_back(d);
  return s;
}

namespace {
ModelSpec build_model_unchecked(const std::string& text, std::uint64_t seed) {
  nn::Generator g(seed);
  ModelSpec spec;
  spec.text = text;
  std::vector<std::string> items = detail::split(text, ',');
  const std::vector<std::string> parts = detail::split(items[0], ':');
  items.erase(items.begin());
  if (parts[0] == "mlp") {
    if (parts.size() < 2 || parts.size() > 3) throw bad_model(text, "give the layer sizes");
    const std::vector<std::size_t> sizes = sizes_of(text, parts[1]);
    if (sizes.size() < 2) throw bad_model(text, "an MLP needs at least two sizes");
    Options o = parse_options(text, items);
    if (!o.fc.empty())
      throw bad_model(text, "fc= is an option of the CNN (an MLP's sizes list its hidden layers)");
    if (parts.size() == 3) o.activation = parts[2];  // the older form mlp:SIZES:ACT
    spec.model = nn::mlp<float>(sizes, parse_activation(text, o.activation), g, o.block);
    spec.sample_shape = Shape{sizes[0]};
    spec.classes = sizes.back();
    return spec;
  }
  if (parts[0] == "cnn") {
    // cnn:C1-C2-…: the conv layers' output channels (default 64-128); each layer's max-pool
    // halves the 28 columns, so at most 4 layers.
    if (parts.size() > 2) throw bad_model(text, "cnn takes one list of channel counts");
    std::vector<std::size_t> channels = {28, 64, 128};
    if (parts.size() == 2) {
      channels = {28};
      for (std::size_t c : sizes_of(text, parts[1])) channels.push_back(c);
      if (channels.size() > 5)
        throw bad_model(text, "at most 4 conv layers (each halves the 28 columns)");
    }
    const Options o = parse_options(text, items);
    spec.model = nn::cnn1d<float>(channels, 28, 10, 3, 2, g, o.block,
                                  parse_activation(text, o.activation), o.fc);
    spec.sample_shape = Shape{28, 28};
    spec.classes = 10;
    return spec;
  }
  throw bad_model(text, "unknown model \"" + parts[0] + "\"");
}
}  // namespace

ModelSpec build_model(const std::string& text, std::uint64_t seed) {
  try {
    return build_model_unchecked(text, seed);
  } catch (const std::bad_alloc&) {
    throw bad_model(text, "its parameters do not fit in this machine's memory");
  } catch (const ShapeError& e) {
    throw bad_model(text, e.what());
  }
}

void shape_for_model(Dataset& data, const ModelSpec& spec, const std::string& source) {
  const Shape have = data.sample_shape();
  if (have.numel() != spec.sample_shape.numel())
    throw ShapeError("model " + spec.text + " takes samples of shape " +
                     spec.sample_shape.to_string() + " (" +
                     std::to_string(spec.sample_shape.numel()) + " values) but " + source +
                     " has samples of shape " + have.to_string() + " (" +
                     std::to_string(have.numel()) + " values)");
  data.inputs.reshape_in_place(spec.batch_shape(data.size()));
}

TrainOptions default_train_options() {
  TrainOptions o;
  o.epochs = 15;
  o.batch_size = 64;
  o.optimizer.kind = OptimizerSpec::Kind::sgd;
  o.optimizer.lr = 0.05;
  o.optimizer.momentum = 0.9;
  o.optimizer.nesterov = true;
  o.optimizer.weight_decay = 5e-4;
  o.schedule = LrSchedule::parse("cosine");
  return o;
}

}  // namespace tapegrad
