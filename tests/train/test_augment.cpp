// Data augmentation: the flip and the translation pixel by pixel, the draws' frequencies, the
// stream's determinism, shares of a batch, and the trainer's use of it (training batches only,
// reproducible, resumable).
#include <array>
#include <cstdio>
#include <sstream>

#include "helpers.hpp"
#include "tapegrad/layers/layers.hpp"
#include "tapegrad/layers/safetensors.hpp"
#include "tapegrad/train/augment.hpp"
#include "tapegrad/train/trainer.hpp"

using namespace tapegrad;

namespace {

// out(r, c) = in(r − down, c − right), 0 outside: the translation computed out of place.
std::vector<float> translated(const std::vector<float>& in, std::size_t rows, std::size_t columns,
                              std::ptrdiff_t down, std::ptrdiff_t right) {
  std::vector<float> out(rows * columns, 0.0f);
  for (std::ptrdiff_t r = 0; r < static_cast<std::ptrdiff_t>(rows); ++r)
    for (std::ptrdiff_t c = 0; c < static_cast<std::ptrdiff_t>(columns); ++c) {
      const std::ptrdiff_t sr = r - down, sc = c - right;
      if (sr >= 0 && sr < static_cast<std::ptrdiff_t>(rows) && sc >= 0 &&
          sc < static_cast<std::ptrdiff_t>(columns))
        out[r * columns + c] = in[sr * columns + sc];
    }
  return out;
}

// A batch of n images rows × columns, pixel k of image i holding 1 + k + 1000·i.
Batch numbered_batch(std::size_t n, std::size_t rows, std::size_t columns) {
  Batch b;
  b.inputs = Tensor<float>(Shape{n, rows, columns});
  for (std::size_t k = 0; k < b.inputs.numel(); ++k)
    b.inputs[k] = static_cast<float>(1 + k % (rows * columns) + 1000 * (k / (rows * columns)));
  b.labels.assign(n, 0);
  b.global_size = n;
  return b;
}

std::vector<float> image_of(const Batch& b, std::size_t i) {
  const std::size_t per = b.inputs.numel() / b.size();
  return std::vector<float>(b.inputs.data() + i * per, b.inputs.data() + (i + 1) * per);
}

}  // namespace

TEST_CASE("augment: parse reads every part and refuses a bad spec, listing the valid parts") {
  CHECK(!Augmentation::parse("none").enabled());
  CHECK(Augmentation::parse("none").text() == "none");
  const Augmentation f = Augmentation::parse("flip");
  CHECK((f.flip && f.shift == 0));
  const Augmentation s = Augmentation::parse("shift:2");
  CHECK((!s.flip && s.shift == 2));
  CHECK(Augmentation::parse("shift:3,flip").text() == "flip,shift:3");
  CHECK(Augmentation::parse("flip,shift:1").text() == "flip,shift:1");
  const std::string valid =
      " (valid: none, or comma-separated flip and shift:P with P a whole number of pixels >= 1)";
  const auto error = [](const std::string& text) {
    return test::error_of([&] { Augmentation::parse(text); });
  };
  CHECK(error("shfit:2") == "augmentation \"shfit:2\": unknown part \"shfit:2\"" + valid);
  CHECK(error("flip,shift:0") ==
        "augmentation \"flip,shift:0\": in \"shift:0\", \"0\" is not a whole number >= 1" + valid);
  CHECK(error("shift:-1").find("\"-1\" is not a whole number >= 1") != std::string::npos);
  CHECK(error("shift:").find("\"\" is not a whole number >= 1") != std::string::npos);
  CHECK(error("shift:99999999999").find("is not a whole number") != std::string::npos);
  CHECK(error("") == "augmentation \"\": an empty part" + valid);
  CHECK(error("flip,") == "augmentation \"flip,\": an empty part" + valid);
  CHECK(error("flip,flip") == "augmentation \"flip,flip\": \"flip\" is given twice" + valid);
  CHECK(error("shift:1,shift:2").find("\"shift\" is given twice") != std::string::npos);
  CHECK(error("none,flip") == "augmentation \"none,flip\": \"none\" goes alone" + valid);
  CHECK(error("Flip").find("unknown part \"Flip\"") != std::string::npos);
}

TEST_CASE("augment: flip_columns reverses each row and translate moves with zero fill") {
  std::vector<float> image{1, 2, 3, 4, 5, 6};  // 2 × 3
  flip_columns(image.data(), 2, 3);
  CHECK(image == std::vector<float>{3, 2, 1, 6, 5, 4});

  // 3 × 4: one row down, two columns left.
  std::vector<float> small{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  translate(small.data(), 3, 4, 1, -2);
  CHECK(small == std::vector<float>{0, 0, 0, 0, 3, 4, 0, 0, 7, 8, 0, 0});
  small = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  translate(small.data(), 3, 4, -1, 1);  // one up, one right
  CHECK(small == std::vector<float>{0, 5, 6, 7, 0, 9, 10, 11, 0, 0, 0, 0});

  // Every offset within and beyond a 4 × 5 image, against the out-of-place definition.
  std::vector<float> original(20);
  for (std::size_t k = 0; k < 20; ++k) original[k] = static_cast<float>(k + 1);
  for (std::ptrdiff_t down = -5; down <= 5; ++down)
    for (std::ptrdiff_t right = -6; right <= 6; ++right) {
      std::vector<float> moved = original;
      translate(moved.data(), 4, 5, down, right);
      INFO("down " << down << ", right " << right);
      CHECK(moved == translated(original, 4, 5, down, right));
    }
}

TEST_CASE("augment: each sample is cropped from its zero-padded image, then maybe flipped") {
  // The draws, replayed: per sample top and left below 2P + 1, then the flip below 2.
  const std::size_t p = 2, rows = 5, columns = 6, n = 40;
  Batch batch = numbered_batch(n, rows, columns);
  const Batch original = batch;
  Augmenter augmenter(Augmentation::parse("flip,shift:2"), Shape{rows, columns}, 17);
  augmenter.apply(batch);
  ShuffleRng replay(17);
  std::size_t flipped = 0, moved = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const auto top = static_cast<std::ptrdiff_t>(replay.below(2 * p + 1));
    const auto left = static_cast<std::ptrdiff_t>(replay.below(2 * p + 1));
    const bool flip = replay.below(2) == 1;
    // RandomCrop(padding=P): the window at (top, left) of the padded image.
    std::vector<float> expected(rows * columns, 0.0f);
    const std::vector<float> in = image_of(original, i);
    for (std::size_t r = 0; r < rows; ++r)
      for (std::size_t c = 0; c < columns; ++c) {
        const std::ptrdiff_t sr = static_cast<std::ptrdiff_t>(r) + top - 2;
        const std::ptrdiff_t sc = static_cast<std::ptrdiff_t>(c) + left - 2;
        if (sr >= 0 && sr < 5 && sc >= 0 && sc < 6) expected[r * columns + c] = in[sr * 6 + sc];
      }
    if (flip) flip_columns(expected.data(), rows, columns);
    INFO("sample " << i);
    CHECK(image_of(batch, i) == expected);
    flipped += flip;
    moved += top != 2 || left != 2;
  }
  CHECK(replay.state() == augmenter.rng().state());  // three draws per sample, no more
  CHECK(flipped > 0);
  CHECK(moved > 0);
}

TEST_CASE("augment: flip frequency and shift coverage over 4000 samples (fixed seed)") {
  const std::size_t n = 4000;
  Batch batch = numbered_batch(n, 5, 5);
  Augmenter flipper(Augmentation::parse("flip"), Shape{5, 5}, 3);
  flipper.apply(batch);
  std::size_t flipped = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const std::vector<float> image = image_of(batch, i);
    const float base = static_cast<float>(1000 * i);
    const bool is_flipped = image[0] == base + 5;
    CHECK((is_flipped || image[0] == base + 1));
    flipped += is_flipped;
  }
  CHECK(flipped > n * 47 / 100);  // binomial(4000, 1/2): sd 32
  CHECK(flipped < n * 53 / 100);

  // shift:2 on 5 × 5: the centre pixel (value 13) lands at (2 + down, 2 + right), always inside.
  batch = numbered_batch(n, 5, 5);
  Augmenter shifter(Augmentation::parse("shift:2"), Shape{5, 5}, 4);
  shifter.apply(batch);
  std::array<std::array<std::size_t, 5>, 5> count{};
  for (std::size_t i = 0; i < n; ++i) {
    const std::vector<float> image = image_of(batch, i);
    std::size_t found = 25, zeros = 0;
    for (std::size_t k = 0; k < 25; ++k) {
      if (image[k] == static_cast<float>(13 + 1000 * i)) found = k;
      zeros += image[k] == 0;
    }
    REQUIRE(found < 25);
    const std::ptrdiff_t down = static_cast<std::ptrdiff_t>(found / 5) - 2;
    const std::ptrdiff_t right = static_cast<std::ptrdiff_t>(found % 5) - 2;
    ++count[found / 5][found % 5];
    // Zero fill: exactly the pixels with no source.
    const std::size_t kept = (5 - std::abs(down)) * (5 - std::abs(right));
    CHECK(zeros == 25 - kept);
  }
  for (std::size_t r = 0; r < 5; ++r)
    for (std::size_t c = 0; c < 5; ++c) {
      INFO("down " << static_cast<int>(r) - 2 << ", right " << static_cast<int>(c) - 2);
      CHECK(count[r][c] > 110);  // 160 expected for each of the 25 offsets: sd 12.5
      CHECK(count[r][c] < 210);
    }
}

TEST_CASE("augment: a seed draws the same every time, and shares of a batch draw as the whole") {
  const Augmentation a = Augmentation::parse("flip,shift:1");
  Batch first = numbered_batch(10, 4, 4), second = first, other = first;
  Augmenter(a, Shape{4, 4}, 9).apply(first);
  Augmenter(a, Shape{4, 4}, 9).apply(second);
  Augmenter(a, Shape{4, 4}, 10).apply(other);
  CHECK(test::bit_identical(first.inputs, second.inputs));
  CHECK(!test::bit_identical(first.inputs, other.inputs));
  CHECK(augmentation_seed(0) != augmentation_seed(1));
  CHECK(augmentation_seed(5) != 5);

  // Three processes' shares (4, 3, 3) of the same batch, twice over: each share is augmented as
  // in the whole batch, and every stream ends where the whole batch's does.
  const Batch whole_original = numbered_batch(10, 4, 4);
  Augmenter whole(a, Shape{4, 4}, 21);
  std::array<Augmenter, 3> shares{Augmenter(a, Shape{4, 4}, 21), Augmenter(a, Shape{4, 4}, 21),
                                  Augmenter(a, Shape{4, 4}, 21)};
  for (int round = 0; round < 2; ++round) {
    Batch all = whole_original;
    whole.apply(all);
    for (std::size_t s = 0; s < 3; ++s) {
      const auto [lo, hi] = shard_range(10, s, 3);
      Batch share;
      share.inputs = Tensor<float>(Shape{hi - lo, 4, 4});
      for (std::size_t k = 0; k < share.inputs.numel(); ++k)
        share.inputs[k] = whole_original.inputs[lo * 16 + k];
      share.global_size = 10;
      share.global_offset = lo;
      shares[s].apply(share);
      for (std::size_t i = lo; i < hi; ++i) CHECK(image_of(share, i - lo) == image_of(all, i));
      CHECK(shares[s].rng().state() == whole.rng().state());
    }
  }
}

TEST_CASE("augment: samples that are not images, or too small for the shift, are refused") {
  const auto error = [](const Augmentation& a, const Shape& samples) {
    return test::error_of([&] { Augmenter(a, samples, 0); });
  };
  Augmentation flip = Augmentation::parse("flip");
  CHECK(error(flip, Shape{13}) ==
        "augmentation \"flip\": the samples of shape [13] are not images [rows, columns]");
  CHECK(error(flip, Shape{3, 28, 28}) ==
        "augmentation \"flip\": the samples of shape [3, 28, 28] are not images [rows, columns]");
  flip.image = Shape{28, 28};
  CHECK_NOTHROW(Augmenter(flip, Shape{784}, 0));
  CHECK(error(flip, Shape{783}) ==
        "augmentation \"flip\": images [28, 28] have 784 values, the samples of shape [783] "
        "have 783");
  flip.image = Shape{784};
  CHECK(error(flip, Shape{784}) ==
        "augmentation \"flip\": the image shape [784] is not [rows, columns]");
  CHECK(error(Augmentation::parse("shift:4"), Shape{4, 9}) ==
        "augmentation \"shift:4\": the shift must be smaller than the images [4, 9]");
  CHECK_NOTHROW(Augmenter(Augmentation::parse("shift:3"), Shape{4, 9}, 0));
}

namespace {

// Three classes of 6 × 6 images: a bright bar in the left, middle or right columns, with noise.
Dataset bars(std::size_t n, std::uint64_t seed) {
  nn::Generator g(seed);
  Dataset d;
  d.inputs = Tensor<float>(Shape{n, 36});  // flattened, as an MLP takes them
  d.classes = 3;
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t c = i % 3;
    for (std::size_t k = 0; k < 36; ++k) {
      const std::size_t column = k % 6;
      d.inputs[i * 36 + k] = static_cast<float>((column / 2 == c ? 1.0 : 0.0) + 0.2 * g.normal());
    }
    d.labels.push_back(static_cast<std::int64_t>(c));
  }
  return d;
}

std::shared_ptr<nn::Sequential<float>> mlp(std::uint64_t seed) {
  nn::Generator g(seed);
  return nn::mlp<float>({36, 16, 3}, nn::Activation::relu, g);
}

TrainOptions augmented(std::size_t epochs, const std::string& spec) {
  TrainOptions o;
  o.epochs = epochs;
  o.batch_size = 16;
  o.optimizer.lr = 0.05;
  o.optimizer.momentum = 0.9;
  o.seed = 8;
  o.augmentation = Augmentation::parse(spec);
  o.augmentation.image = Shape{6, 6};
  o.progress = TrainOptions::Progress::none;
  static std::ostringstream sink;
  o.log = &sink;
  return o;
}

bool same_parameters(nn::Module<float>& a, nn::Module<float>& b) {
  for (std::size_t i = 0; i < a.parameters().size(); ++i)
    if (!test::bit_identical(a.parameters()[i].value(), b.parameters()[i].value())) return false;
  return true;
}

}  // namespace

TEST_CASE(
    "augment: training is reproducible by seed and thread count, and never touches evaluation "
    "data") {
  const Dataset train = bars(96, 1), val = bars(30, 2), test_set = bars(30, 3);
  const Dataset train_copy = train, val_copy = val, test_copy = test_set;
  TrainOptions o = augmented(2, "flip,shift:1");
  o.watch = &test_set;
  auto a = mlp(4);
  const TrainResult ra = train_classifier(*a, train, &val, o);
  auto b = mlp(4);
  {
    test::ThreadCount two(2);
    train_classifier(*b, train, &val, o);
  }
  CHECK(same_parameters(*a, *b));
  TrainOptions reseeded = o;
  reseeded.seed = 9;
  auto c = mlp(4);
  train_classifier(*c, train, &val, reseeded);
  CHECK(!same_parameters(*a, *c));
  TrainOptions plain = o;
  plain.augmentation = Augmentation();
  auto d = mlp(4);
  const TrainResult rd = train_classifier(*d, train, &val, plain);
  CHECK(!same_parameters(*a, *d));
  CHECK(ra.history[0].train_loss != rd.history[0].train_loss);

  // The data sets are as given, and the logged validation and test losses are the plain
  // evaluation's (the model ends with the best epoch's weights: epoch 2's here or not, compare
  // with a run of one epoch).
  CHECK(test::bit_identical(train.inputs, train_copy.inputs));
  CHECK(test::bit_identical(val.inputs, val_copy.inputs));
  CHECK(test::bit_identical(test_set.inputs, test_copy.inputs));
  TrainOptions one = o;
  one.epochs = 1;
  auto e = mlp(4);
  const TrainResult re = train_classifier(*e, train, nullptr, one);
  CHECK(re.history[0].test_loss == evaluate_classifier(*e, test_set).loss);
  CHECK(re.history[0].test_accuracy == evaluate_classifier(*e, test_set).accuracy);
}

TEST_CASE("augment: the trainer refuses samples that are not images") {
  Dataset flat = bars(30, 5);
  TrainOptions o = augmented(1, "flip");
  o.augmentation.image = Shape{};
  auto m = mlp(6);
  CHECK(test::error_of([&] { train_classifier(*m, flat, nullptr, o); }) ==
        "augmentation \"flip\": the samples of shape [36] are not images [rows, columns]");
  o.augmentation.image = Shape{5, 7};
  CHECK(test::error_of([&] { train_classifier(*m, flat, nullptr, o); }) ==
        "augmentation \"flip\": images [5, 7] have 35 values, the samples of shape [36] have 36");
}

TEST_CASE("augment: a resumed run draws the augmentation of the uninterrupted one") {
  const Dataset train = bars(96, 11);  // 6 batches per epoch
  const std::string ckpt = "/tmp/tapegrad_test_ckpt_augment.safetensors";
  const TrainOptions o = augmented(3, "flip,shift:2");
  auto straight = mlp(12);
  const TrainResult full = train_classifier(*straight, train, nullptr, o);
  for (std::size_t stop : {6u, 9u}) {  // at the end of epoch 1, inside epoch 2
    INFO("stopped after step " << stop);
    TrainOptions first = o;
    first.checkpoint_path = ckpt;
    first.max_steps = stop;
    auto interrupted = mlp(12);
    train_classifier(*interrupted, train, nullptr, first);
    auto resumed = mlp(13);
    const TrainResult r = train_classifier(*resumed, train, nullptr, o, ckpt);
    CHECK(same_parameters(*resumed, *straight));
    REQUIRE(r.history.size() == full.history.size());
    CHECK(r.history[1].train_loss == full.history[1].train_loss);
  }

  // The shuffling stream is the same as without augmentation; the checkpoint names the
  // augmentation, and a run with another one is refused.
  const TensorFile saved = load_tensors(ckpt);
  CHECK(saved.metadata.at("augmentation") == "flip,shift:2");
  TrainOptions plain = o;
  plain.augmentation = Augmentation();
  plain.checkpoint_path = "/tmp/tapegrad_test_ckpt_augment_plain.safetensors";
  plain.max_steps = 9;
  auto unaugmented = mlp(12);
  train_classifier(*unaugmented, train, nullptr, plain);
  const TensorFile plain_saved = load_tensors(plain.checkpoint_path);
  CHECK(plain_saved.metadata.at("shuffle_rng") == saved.metadata.at("shuffle_rng"));
  CHECK(plain_saved.metadata.count("augmentation") == 0);
  auto other = mlp(13);
  TrainOptions flip_only = augmented(3, "flip");
  CHECK(test::error_of([&] { train_classifier(*other, train, nullptr, flip_only, ckpt); }) ==
        ckpt +
            ": the checkpoint's run augmented with \"flip,shift:2\", this run with \"flip\" (a "
            "resumed run continues with its own augmentation)");
  CHECK(test::error_of([&] {
          train_classifier(*other, train, nullptr, o, plain.checkpoint_path);
        }) == plain.checkpoint_path +
                  ": the checkpoint's run augmented with \"none\", this run with "
                  "\"flip,shift:2\" (a resumed run continues with its own augmentation)");

  // A malformed stream state or augmentation is refused, naming the field.
  const auto refused = [&](const std::string& key, const std::string& value) {
    TensorFile f = saved;
    f.metadata[key] = value;
    save_tensors(ckpt, f);
    auto fresh = mlp(14);
    return test::error_of([&] { train_classifier(*fresh, train, nullptr, o, ckpt); });
  };
  CHECK(refused("augmentation_rng", "garbage") ==
        ckpt + ": checkpoint field augmentation_rng: malformed generator state");
  CHECK(refused("augmentation", "flop")
            .rfind(ckpt + ": checkpoint field augmentation: augmentation \"flop\": unknown part",
                   0) == 0);
  std::remove(ckpt.c_str());
  std::remove(plain.checkpoint_path.c_str());
}
