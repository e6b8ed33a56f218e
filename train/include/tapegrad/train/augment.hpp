// Training-time data augmentation of image samples: random horizontal flips and random
// translations with zero fill, drawn per sample from a seeded stream of their own.
//
// Per sample, in this order: the translation (torchvision RandomCrop(size, padding=P): the
// image padded by P zeros on every side, a window of the image's size cropped at a uniform
// offset (top, left) in [0, 2P]², i.e. the content moves down by P − top and right by P − left),
// then the flip (torchvision RandomHorizontalFlip(): each row's columns reversed with
// probability 1/2).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "tapegrad/train/dataset.hpp"

namespace tapegrad {

struct Augmentation {
  bool flip = false;      // reverse each image's columns with probability 1/2
  std::size_t shift = 0;  // translate by up to this many pixels on each axis (0: never)
  // The image a sample holds, [rows, columns] in row-major order, when the samples' own shape
  // is another one (e.g. [784]: a 28×28 image flattened for an MLP); empty: the samples' own
  // shape, which must then be [rows, columns].
  Shape image;

  bool enabled() const { return flip || shift > 0; }
  // Parses "none" or comma-separated parts, each at most once: "flip" and "shift:P" (P a whole
  // number of pixels >= 1). Throws std::invalid_argument naming the text and the valid parts.
  static Augmentation parse(const std::string& text);
  // "none", "flip", "shift:2" or "flip,shift:2" (parse reads it back).
  std::string text() const;
};

// Reverses the columns of each row of `image` [rows, columns] (row-major), in place.
void flip_columns(float* image, std::size_t rows, std::size_t columns);

// Moves the content of `image` [rows, columns] (row-major) `down` rows down and `right` columns
// right (negative: up, left), in place: out(r, c) = in(r − down, c − right), 0 where that lies
// outside the image.
void translate(float* image, std::size_t rows, std::size_t columns, std::ptrdiff_t down,
               std::ptrdiff_t right);

// The seed of the augmentation stream of a run whose shuffling seed is `seed`: a different
// stream from the shuffling's (SplitMix64 of the seed and a constant).
std::uint64_t augmentation_seed(std::uint64_t seed);

// Applies an Augmentation to batches, drawing from its own ShuffleRng (mt19937_64): for each
// sample of a batch, in order, two draws below 2P + 1 (top, left) when shifting, then one below
// 2 (flip when 1) when flipping, whatever the outcomes, so a sample always takes the same number
// of draws. Works in place: no allocation.
class Augmenter {
 public:
  // Throws std::invalid_argument, naming the augmentation and the shape, if the samples of
  // `sample_shape` are not images (augmentation.image empty and the shape not [rows, columns],
  // or augmentation.image of another number of values), or if the shift is not smaller than the
  // image's rows and columns.
  Augmenter(const Augmentation& augmentation, const Shape& sample_shape, std::uint64_t seed);

  // Augments batch.inputs in place. Draws for every sample of the whole batch
  // (batch.global_size samples, in order; 0: the batch is whole) and applies the draws of samples
  // [batch.global_offset, batch.global_offset + batch.size()) to this share's: every process of
  // a data-parallel group advances its stream alike, and a sample's transform does not depend
  // on the number of processes.
  void apply(Batch& batch);

  const Augmentation& augmentation() const { return augmentation_; }
  ShuffleRng& rng() { return rng_; }
  const ShuffleRng& rng() const { return rng_; }

 private:
  Augmentation augmentation_;
  std::size_t rows_ = 0, columns_ = 0;
  std::size_t draws_per_sample_ = 0;
  ShuffleRng rng_;
};

}  // namespace tapegrad
