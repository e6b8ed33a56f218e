#include "tapegrad/train/augment.hpp"

#include <algorithm>
#include <cstring>
#include <stdexcept>

#include "text.hpp"

namespace tapegrad {

namespace {
constexpr const char* valid_parts =
    "valid: none, or comma-separated flip and shift:P with P a whole number of pixels >= 1";
}  // namespace

Augmentation Augmentation::parse(const std::string& text) {
  const auto fail = [&](const std::string& why) {
    return std::invalid_argument("augmentation \"" + text + "\": " + why + " (" + valid_parts +
                                 ")");
  };
  Augmentation a;
  if (text == "none") return a;
  bool shift_seen = false;
  for (const std::string& part : detail::split(text, ',')) {
    if (part == "flip") {
      if (a.flip) throw fail("\"flip\" is given twice");
      a.flip = true;
    } else if (part.rfind("shift:", 0) == 0) {
      const std::string digits = part.substr(6);
      if (digits.empty() || digits.size() > 9 ||
          digits.find_first_not_of("0123456789") != std::string::npos || std::stoul(digits) == 0)
        throw fail("in \"" + part + "\", \"" + digits + "\" is not a whole number >= 1");
      if (shift_seen) throw fail("\"shift\" is given twice");
      shift_seen = true;
      a.shift = std::stoul(digits);
    } else if (part == "none") {
      throw fail("\"none\" goes alone");
    } else {
      throw fail(part.empty() ? "an empty part" : "unknown part \"" + part + "\"");
    }
  }
  return a;
}

std::string Augmentation::text() const {
  std::string out;
  if (flip) out = "flip";
  if (shift) out += (out.empty() ? "shift:" : ",shift:") + std::to_string(shift);
  return out.empty() ? "none" : out;
}

void flip_columns(float* image, std::size_t rows, std::size_t columns) {
  for (std::size_t r = 0; r < rows; ++r)
    std::reverse(image + r * columns, image + (r + 1) * columns);
}

void translate(float* image, std::size_t rows, std::size_t columns, std::ptrdiff_t down,
               std::ptrdiff_t right) {
  const auto n_rows = static_cast<std::ptrdiff_t>(rows);
  const auto n_columns = static_cast<std::ptrdiff_t>(columns);
  if (down >= n_rows || -down >= n_rows || right >= n_columns || -right >= n_columns) {
    std::fill(image, image + rows * columns, 0.0f);  // everything moved out
    return;
  }
  const std::size_t kept = static_cast<std::size_t>(n_columns - std::abs(right));
  const std::size_t to = right > 0 ? static_cast<std::size_t>(right) : 0;
  const std::size_t from = right < 0 ? static_cast<std::size_t>(-right) : 0;
  const auto write_row = [&](std::ptrdiff_t r) {
    float* out = image + r * n_columns;
    const std::ptrdiff_t source = r - down;
    if (source < 0 || source >= n_rows) {
      std::fill(out, out + columns, 0.0f);
      return;
    }
    std::memmove(out + to, image + source * n_columns + from, kept * sizeof(float));
    std::fill(out, out + to, 0.0f);
    std::fill(out + to + kept, out + columns, 0.0f);
  };
  // Row r reads row r − down: moving down, rows are written bottom up and moving up (or not at
  // all) top down, so every row is read before it is written.
  if (down > 0)
    for (std::ptrdiff_t r = n_rows - 1; r >= 0; --r) write_row(r);
  else
    for (std::ptrdiff_t r = 0; r < n_rows; ++r) write_row(r);
}

std::uint64_t augmentation_seed(std::uint64_t seed) {
  std::uint64_t z = (seed ^ 0x6175676d656e7400ULL) + 0x9e3779b97f4a7c15ULL;  // "augment\0"
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

Augmenter::Augmenter(const Augmentation& augmentation, const Shape& sample_shape,
                     std::uint64_t seed)
    : augmentation_(augmentation), rng_(seed) {
  const std::string what = "augmentation \"" + augmentation.text() + "\"";
  const bool given = augmentation.image.rank() > 0;
  const Shape& image = given ? augmentation.image : sample_shape;
  if (image.rank() != 2 || image[0] == 0 || image[1] == 0)
    throw std::invalid_argument(
        what + ": " +
        (given ? "the image shape " + image.to_string() + " is not [rows, columns]"
               : "the samples of shape " + sample_shape.to_string() +
                     " are not images [rows, columns]"));
  if (given && image.numel() != sample_shape.numel())
    throw std::invalid_argument(what + ": images " + image.to_string() + " have " +
                                std::to_string(image.numel()) + " values, the samples of shape " +
                                sample_shape.to_string() + " have " +
                                std::to_string(sample_shape.numel()));
  rows_ = image[0];
  columns_ = image[1];
  if (augmentation.shift >= rows_ || augmentation.shift >= columns_)
    throw std::invalid_argument(what + ": the shift must be smaller than the images " +
                                image.to_string());
  draws_per_sample_ = (augmentation.shift ? 2 : 0) + (augmentation.flip ? 1 : 0);
}

void Augmenter::apply(Batch& batch) {
  const std::size_t b = batch.size(), first = batch.global_offset;
  const std::size_t global = batch.global_size ? batch.global_size : b;
  if (first > global || b > global - first)
    throw std::invalid_argument("Augmenter: a share of " + std::to_string(b) + " samples at " +
                                std::to_string(first) + " of a batch of " + std::to_string(global));
  const std::size_t per = rows_ * columns_;
  if (b > 0 && batch.inputs.numel() != b * per)
    throw ShapeError("Augmenter: inputs of shape " + batch.inputs.shape().to_string() +
                     " are not " + std::to_string(b) + " images of " + std::to_string(rows_) + "x" +
                     std::to_string(columns_));
  const std::size_t p = augmentation_.shift;
  rng_.discard(first * draws_per_sample_);  // the samples before this share
  for (std::size_t i = 0; i < b; ++i) {
    float* image = batch.inputs.data() + i * per;
    if (p) {
      const std::size_t top = rng_.below(2 * p + 1), left = rng_.below(2 * p + 1);
      if (top != p || left != p)
        translate(image, rows_, columns_,
                  static_cast<std::ptrdiff_t>(p) - static_cast<std::ptrdiff_t>(top),
                  static_cast<std::ptrdiff_t>(p) - static_cast<std::ptrdiff_t>(left));
    }
    if (augmentation_.flip && rng_.below(2) == 1) flip_columns(image, rows_, columns_);
  }
  rng_.discard((global - first - b) * draws_per_sample_);  // the samples after it
}

}  // namespace tapegrad
