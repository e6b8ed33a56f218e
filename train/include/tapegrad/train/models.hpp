// The models the `tapegrad` command builds from a text spec, and the default training recipe.
// clang-format off
//   mlp:784-256-128-10[,OPTION…]   an MLP with those layer sizes
//   cnn[:C1-C2…][,OPTION…]         the 1-D CNN of cnn-fashion: an image's 28 rows as channels,
//                                  its 28 columns as length; per conv layer (1 to 4) its output
//                                  channels, each layer Conv1d(k3) → ReLU → MaxPool1d(2)
//                                  (default cnn:64-128)
// options, comma-separated after the sizes:
//   act=NAME                       the hidden activation: relu (default), leaky_relu, elu,
//                                  gelu, silu, tanh, sigmoid (also mlp:SIZES:ACT)
//   norm=none|batch|layer          BatchNorm1d or LayerNorm before each hidden activation
//   dropout=P                      Dropout(P) after each hidden activation (MLP); in the CNN
//                                  after the flattening and after each fc layer's activation
//   fc=H1-H2…                      (CNN) hidden fully-connected layers between the flattened
//                                  convolutions and the classifier, each Linear → [norm] →
//                                  activation → [Dropout], as in the MLP
// e.g. mlp:784-512-256-10,act=tanh,norm=batch,dropout=0.2 or cnn,norm=batch,fc=128.
// clang-format on
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "tapegrad/layers/module.hpp"
#include "tapegrad/train/dataset.hpp"
#include "tapegrad/train/trainer.hpp"

namespace tapegrad {

struct ModelSpec {
  std::string text;
  std::shared_ptr<nn::Module<float>> model;
  Shape sample_shape;       // one input sample, e.g. [784] or [28, 28]
  std::size_t classes = 0;  // the model's outputs: the class labels it can score
  // [n, sample shape...]
  Shape batch_shape(std::size_t n) const;
};

inline constexpr const char* default_model = "mlp:784-256-128-10";
inline constexpr const char* model_help =
    "mlp:SIZES or cnn[:CHANNELS] (the 1-D CNN for 28x28 images; default cnn:64-128), each "
    "optionally followed by "
    ",act=relu|leaky_relu|elu|gelu|silu|tanh|sigmoid, ,norm=none|batch|layer, ,dropout=P "
    "and for the CNN ,fc=SIZES (hidden fully-connected layers before the classifier) "
    "(e.g. mlp:784-256-128-10,act=gelu,norm=batch,dropout=0.2 or cnn,norm=batch,fc=128)";

// Builds the model named by `text`, initialised from `seed`; throws naming the text if invalid.
ModelSpec build_model(const std::string& text, std::uint64_t seed);

// Gives `data`'s inputs the model's sample shape (same number of values per sample); throws,
// naming `source`, the model and both shapes, if the counts differ.
void shape_for_model(Dataset& data, const ModelSpec& spec, const std::string& source);

// The default recipe of `tapegrad train` (tuned for Fashion-MNIST; see README.md).
TrainOptions default_train_options();

}  // namespace tapegrad
