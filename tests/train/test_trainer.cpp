// The trainer: it learns, stops on NaN, resumes exactly, keeps the best model, writes its files.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <sstream>

#include "helpers.hpp"
#include "tapegrad/layers/dropout.hpp"
#include "tapegrad/layers/layers.hpp"
#include "tapegrad/layers/safetensors.hpp"
#include "tapegrad/train/trainer.hpp"

using namespace tapegrad;

namespace {
// Three Gaussian blobs in 2-D, one per class.
Dataset blobs(std::size_t n, std::uint64_t seed) {
  nn::Generator g(seed);
  Dataset d;
  d.inputs = Tensor<float>(Shape{n, 2});
  d.classes = 3;
  const float centres[3][2] = {{-2, 0}, {2, 0}, {0, 2.5f}};
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t c = i % 3;
    d.inputs[2 * i] = centres[c][0] + static_cast<float>(0.6 * g.normal());
    d.inputs[2 * i + 1] = centres[c][1] + static_cast<float>(0.6 * g.normal());
    d.labels.push_back(static_cast<std::int64_t>(c));
  }
  return d;
}
std::shared_ptr<nn::Sequential<float>> model(std::uint64_t seed) {
  nn::Generator g(seed);
  return nn::mlp<float>({2, 16, 3}, nn::Activation::relu, g);
}
TrainOptions quiet(std::size_t epochs) {
  TrainOptions o;
  o.epochs = epochs;
  o.batch_size = 16;
  o.optimizer.lr = 0.05;
  o.optimizer.momentum = 0.9;
  o.progress = TrainOptions::Progress::none;
  static std::ostringstream sink;
  o.log = &sink;
  return o;
}
}  // namespace

TEST_CASE("trainer: learns three blobs; evaluation counts agree with the confusion matrix") {
  const Dataset train = blobs(300, 1), test = blobs(150, 2);
  auto m = model(3);
  const TrainResult r = train_classifier(*m, train, nullptr, quiet(5));
  REQUIRE(r.history.size() == 5);
  CHECK(r.history.back().train_loss < r.history.front().train_loss);
  CHECK(r.steps == 5 * 19);  // ⌈300 / 16⌉ batches per epoch
  const Evaluation e = evaluate_classifier(*m, test);
  CHECK(e.accuracy > 0.95);
  std::size_t total = 0, diagonal = 0;
  for (std::size_t i = 0; i < 3; ++i)
    for (std::size_t j = 0; j < 3; ++j)
      total += e.confusion[i][j], diagonal += i == j ? e.confusion[i][j] : 0;
  CHECK(total == 150);
  CHECK(static_cast<double>(diagonal) / 150 == doctest::Approx(e.accuracy));
  CHECK(e.per_class_accuracy.size() == 3);
}

TEST_CASE(
    "trainer: the same seed gives bit-identical weights; a resumed run matches an uninterrupted "
    "one") {
  const Dataset train = blobs(120, 4), val = blobs(60, 5);
  const std::string ckpt = "/tmp/tapegrad_test_ckpt.safetensors";
  TrainOptions o = quiet(4);
  o.seed = 11;
  o.schedule = LrSchedule::parse("cosine,warmup:5");
  auto straight = model(6);
  const TrainResult full = train_classifier(*straight, train, &val, o);
  auto again = model(6);
  train_classifier(*again, train, &val, o);
  for (std::size_t i = 0; i < straight->parameters().size(); ++i)
    test::check_close(again->parameters()[i].value(), straight->parameters()[i].value(), 0);

  // Two epochs, saved; then a fresh model resumes from the checkpoint to epoch 4.
  TrainOptions first_half = o;
  first_half.checkpoint_path = ckpt;
  first_half.max_steps = 2 * 8;  // 120/16 → 8 batches per epoch
  auto interrupted = model(6);
  train_classifier(*interrupted, train, &val, first_half);
  auto resumed = model(99);  // different initial weights: the checkpoint must overwrite them
  const TrainResult r = train_classifier(*resumed, train, &val, o, ckpt);
  CHECK(r.history.size() == 4);
  CHECK(r.steps == full.steps);
  CHECK(r.best_epoch == full.best_epoch);
  for (std::size_t i = 0; i < straight->parameters().size(); ++i)
    test::check_close(resumed->parameters()[i].value(), straight->parameters()[i].value(), 0);
  std::remove(ckpt.c_str());
}

TEST_CASE("trainer: Adam with clipping, decay groups and a plateau schedule resumes exactly") {
  const Dataset train = blobs(120, 24), val = blobs(60, 25);
  const std::string ckpt = "/tmp/tapegrad_test_ckpt_adam.safetensors";
  TrainOptions o = quiet(6);
  o.optimizer.kind = OptimizerSpec::Kind::adamw;
  o.optimizer.lr = 0.02;
  o.optimizer.no_decay_bias_norm = true;
  o.clip_grad_norm = 0.5;
  o.schedule = LrSchedule::parse("plateau:0.5:0");
  o.schedule.threshold = 0.5;  // every epoch short of halving the loss is bad: reductions happen
  auto straight = model(26);
  const TrainResult full = train_classifier(*straight, train, &val, o);
  CHECK(full.history.back().lr < full.history.front().lr);  // the plateau schedule reduced
  TrainOptions first = o;
  first.checkpoint_path = ckpt;
  first.max_steps = 3 * 8 + 3;  // inside epoch 4
  auto interrupted = model(26);
  train_classifier(*interrupted, train, &val, first);
  auto resumed = model(27);
  train_classifier(*resumed, train, &val, o, ckpt);
  for (std::size_t i = 0; i < straight->parameters().size(); ++i)
    CHECK(test::bit_identical(resumed->parameters()[i].value(), straight->parameters()[i].value()));
  std::remove(ckpt.c_str());
}

TEST_CASE("trainer: a model with dropout resumes mid-epoch with the same random stream") {
  const Dataset train = blobs(120, 30);
  const std::string ckpt = "/tmp/tapegrad_test_ckpt_dropout.safetensors";
  auto dropout_model = [](std::uint64_t seed) {
    nn::Generator g(seed);
    auto m = std::make_shared<nn::Sequential<float>>();
    m->emplace<nn::Linear<float>>(2, 16, true, g).emplace<nn::ReLU<float>>();
    m->emplace<nn::Dropout<float>>(0.3, g).emplace<nn::Linear<float>>(16, 3, true, g);
    return m;
  };
  TrainOptions o = quiet(3);
  auto straight = dropout_model(31);
  train_classifier(*straight, train, nullptr, o);
  TrainOptions first = o;
  first.checkpoint_path = ckpt;
  first.max_steps = 11;  // inside epoch 2
  auto interrupted = dropout_model(31);
  train_classifier(*interrupted, train, nullptr, first);
  auto resumed = dropout_model(31);
  // Another stream state than the checkpoint's: the checkpoint must restore it.
  resumed->named_generators()[0].second->uniform();
  train_classifier(*resumed, train, nullptr, o, ckpt);
  for (std::size_t i = 0; i < straight->parameters().size(); ++i)
    CHECK(test::bit_identical(resumed->parameters()[i].value(), straight->parameters()[i].value()));
  std::remove(ckpt.c_str());
}

TEST_CASE("trainer: early stopping keeps the best epoch's weights") {
  // Validation labels are a rotation of the true ones: the better the model fits, the worse the
  // validation loss, so epoch 1 is the best and patience 1 stops after epoch 2.
  const Dataset train = blobs(120, 7);
  Dataset val = blobs(60, 8);
  for (std::int64_t& y : val.labels) y = (y + 1) % 3;
  TrainOptions o = quiet(10);
  o.patience = 1;
  auto m = model(9);
  const TrainResult r = train_classifier(*m, train, &val, o);
  CHECK(r.stopped_early);
  CHECK(r.best_epoch == 1);
  CHECK(r.history.size() == 2);
  TrainOptions one = quiet(1);
  auto reference = model(9);
  train_classifier(*reference, train, &val, one);
  for (std::size_t i = 0; i < m->parameters().size(); ++i)
    test::check_close(m->parameters()[i].value(), reference->parameters()[i].value(), 0);
}

TEST_CASE("trainer: a loss that becomes NaN stops training, naming epoch and step") {
  Dataset train = blobs(64, 10);
  train.inputs[2 * 40] = std::nanf("");  // sample 40 → batch 3 of epoch 1 without shuffling
  TrainOptions o = quiet(2);
  o.shuffle = false;
  auto m = model(11);
  const std::string msg = test::error_of([&] { train_classifier(*m, train, nullptr, o); });
  INFO(msg);
  CHECK(msg.find("the training loss became NaN at epoch 1, step 3 of 4") != std::string::npos);
}

TEST_CASE("trainer: metrics CSV and curves SVG are written each epoch; bad data is named") {
  const std::string csv = "/tmp/tapegrad_test_metrics.csv", svg = "/tmp/tapegrad_test_curves.svg";
  TrainOptions o = quiet(3);
  o.metrics_path = csv;
  o.curves_path = svg;
  auto m = model(12);
  const Dataset train = blobs(60, 13), val = blobs(30, 14);
  train_classifier(*m, train, &val, o);
  const std::string text = test::read_file(csv);
  CHECK(std::count(text.begin(), text.end(), '\n') == 4);
  CHECK(test::read_file(svg).find("<polyline") != std::string::npos);
  Dataset bad = blobs(30, 15);
  bad.labels[4] = 7;
  CHECK(test::error_of([&] {
          train_classifier(*m, bad, nullptr, o);
        }).find("label 7 of sample 4 is outside [0, 3)") != std::string::npos);
  std::remove(csv.c_str());
  std::remove(svg.c_str());
}

namespace {
// Rewrites one metadata field of the checkpoint at `path`.
void set_checkpoint_field(const std::string& path, const std::string& key,
                          const std::string& value) {
  TensorFile f = load_tensors(path);
  f.metadata[key] = value;
  save_tensors(path, f);
}
}  // namespace

TEST_CASE("trainer: a run stopped mid-epoch by max_steps resumes to bit-identical parameters") {
  const Dataset train = blobs(120, 16), val = blobs(30, 17);
  const std::string ckpt = "/tmp/tapegrad_test_ckpt_mid.safetensors";
  TrainOptions o = quiet(3);
  o.seed = 5;
  o.max_steps = 21;  // 8 batches per epoch: stops in epoch 3
  // Without augmentation, and with flips of each sample's two values as a 1 × 2 image.
  Augmentation flip = Augmentation::parse("flip");
  flip.image = Shape{1, 2};
  for (const Augmentation& augmentation : {Augmentation(), flip})
    for (const Dataset* v : {static_cast<const Dataset*>(nullptr), &val}) {
      INFO("augmentation " << augmentation.text() << (v ? ", with validation" : ""));
      o.augmentation = augmentation;
      auto straight = model(18);
      const TrainResult full = train_classifier(*straight, train, v, o);
      TrainOptions first = o;
      first.checkpoint_path = ckpt;
      first.max_steps = 13;  // 5 batches into epoch 2
      auto interrupted = model(18);
      const TrainResult part = train_classifier(*interrupted, train, v, first);
      CHECK(part.steps == 13);
      CHECK(part.history.size() == 1);  // epoch 2 is not complete
      auto resumed = model(77);
      const TrainResult r = train_classifier(*resumed, train, v, o, ckpt);
      CHECK(r.steps == 21);
      REQUIRE(r.history.size() == full.history.size());
      CHECK(r.history[1].train_loss == full.history[1].train_loss);
      for (std::size_t i = 0; i < straight->parameters().size(); ++i)
        test::check_close(resumed->parameters()[i].value(), straight->parameters()[i].value(), 0);
    }
  std::remove(ckpt.c_str());
}

TEST_CASE(
    "trainer: checkpoint fields out of range or malformed are refused, naming file and field") {
  const Dataset train = blobs(48, 19);
  const std::string ckpt = "/tmp/tapegrad_test_ckpt_fields.safetensors";
  TrainOptions o = quiet(1);
  o.checkpoint_path = ckpt;
  auto m = model(20);
  train_classifier(*m, train, nullptr, o);
  const TensorFile good = load_tensors(ckpt);
  auto refused = [&](const std::string& key, const std::string& value) {
    save_tensors(ckpt, good);
    set_checkpoint_field(ckpt, key, value);
    auto fresh = model(21);
    return test::error_of([&] { train_classifier(*fresh, train, nullptr, quiet(2), ckpt); });
  };
  CHECK(refused("epoch", "1e30") == ckpt + ": checkpoint field epoch: \"1e30\" is not a count");
  CHECK(refused("step", "18446744073709551616") ==
        ckpt + ": checkpoint field step: \"18446744073709551616\" is not a count");
  CHECK(refused("step", "-1") == ckpt + ": checkpoint field step: \"-1\" is not a count");
  CHECK(refused("shuffle_rng", "garbage") ==
        ckpt + ": checkpoint field shuffle_rng: malformed generator state");
  std::remove(ckpt.c_str());
}

TEST_CASE(
    "trainer: evaluation refuses non-finite weights or inputs and data the model cannot score") {
  const Dataset data = blobs(30, 22);
  auto m = model(23);
  m->parameters()[2].value()[4] = std::nanf("");
  CHECK(test::error_of([&] { evaluate_classifier(*m, data); }) ==
        "the model: parameter \"2.weight\" holds a non-finite value (nan) at element 4");
  auto ok = model(24);
  Dataset nan_input = data;
  nan_input.inputs[2 * 7 + 1] = std::nanf("");
  CHECK(test::error_of([&] { evaluate_classifier(*ok, nan_input); }) ==
        "evaluate: sample 7 has a non-finite input (nan)");
  // 100 000 classes for a 3-output model: refused before a 100 000² confusion matrix exists.
  Dataset many = data;
  many.classes = 100000;
  CHECK(test::error_of([&] { evaluate_classifier(*ok, many); }) ==
        "evaluate: the model's output has shape [30, 3] but the data has 100000 classes");
}

TEST_CASE("trainer: an empty training set or a step count beyond 64 bits is refused") {
  Dataset empty;
  empty.inputs = Tensor<float>(Shape{0, 2});
  empty.classes = 3;
  auto m = model(25);
  CHECK(test::error_of([&] { train_classifier(*m, empty, nullptr, quiet(1)); }) ==
        "train: the training data is empty");
  TrainOptions o = quiet(1);
  o.epochs = std::numeric_limits<std::size_t>::max() / 2;
  CHECK(test::error_of([&] {
          train_classifier(*m, blobs(48, 26), nullptr, o);
        }).find("train: 3 batches per epoch times") != std::string::npos);
}
