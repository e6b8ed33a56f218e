// Data-parallel training over MPI, run under mpirun with 1, 2 and 3 ranks (tests/CMakeLists.txt):
// N ranks end with the parameters of one process (up to float rounding), repeated runs are
// bit-identical, every rank holds the same weights, and ranks that disagree fail on every rank.
//
//   test_distributed [doctest options]   the suite, on every rank (a failure on any rank fails
//                                        every rank)
//   test_distributed fault-exit          rank 1 exits at once; the others wait in a collective
//   test_distributed fault-hang          rank 1 sleeps; the others wait in a collective
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "tapegrad/autodiff/losses.hpp"
#include "tapegrad/train/distributed.hpp"
#include "tapegrad/train/models.hpp"
#include "tapegrad/train/trainer.hpp"

using namespace tapegrad;

namespace {

Distributed* world = nullptr;

// n samples of `values` uniform values in [0, 1) and labels in [0, classes), from `seed`, the
// label depending on the inputs so that training has something to learn.
Dataset synthetic(std::size_t n, std::size_t values, std::size_t classes, std::uint64_t seed) {
  ShuffleRng rng(seed);
  Dataset d;
  d.inputs = Tensor<float>::zeros({n, values});
  d.classes = classes;
  for (std::size_t i = 0; i < n; ++i) {
    double s = 0;
    for (std::size_t k = 0; k < values; ++k) {
      const float v = static_cast<float>(rng.below(1 << 20)) / static_cast<float>(1 << 20);
      d.inputs[i * values + k] = v;
      if (k < 8) s += v;
    }
    d.labels.push_back(static_cast<std::int64_t>(std::fmod(s * 7.0, static_cast<double>(classes))));
  }
  return d;
}

struct Run {
  std::vector<Tensor<float>> state;  // parameters and buffers
  TrainResult result;
};

// `steps` steps of SGD with Nesterov momentum on `model_text`, alone or with `group`; from the
// checkpoint `resume` if not empty, writing `checkpoint` if not empty; with `augmentation`.
Run train(const std::string& model_text, const Dataset& data, std::size_t batch, std::size_t steps,
          DataParallel* group, const std::string& checkpoint = "", const std::string& resume = "",
          const Augmentation& augmentation = {}) {
  ModelSpec spec = build_model(model_text, 7);
  Dataset shaped = data;
  shape_for_model(shaped, spec, "synthetic");
  TrainOptions o;
  o.epochs = 1000;
  o.max_steps = steps;
  o.batch_size = batch;
  o.optimizer.lr = 0.05;
  o.optimizer.momentum = 0.9;
  o.optimizer.nesterov = true;
  o.optimizer.weight_decay = 5e-4;
  o.seed = 3;
  o.progress = TrainOptions::Progress::none;
  std::ostringstream log;
  o.log = &log;
  o.parallel = group;
  o.checkpoint_path = checkpoint;
  o.watch = &shaped;  // evaluated after every epoch (each rank its share)
  o.augmentation = augmentation;
  Run r;
  r.result = train_classifier(*spec.model, shaped, nullptr, o, resume);
  r.state = nn::state_values(*spec.model);
  return r;
}

// max |a − b| over every value, and max |a|.
std::pair<double, double> difference(const std::vector<Tensor<float>>& a,
                                     const std::vector<Tensor<float>>& b) {
  REQUIRE(a.size() == b.size());
  double diff = 0, scale = 0;
  for (std::size_t t = 0; t < a.size(); ++t) {
    REQUIRE(a[t].shape() == b[t].shape());
    for (std::size_t k = 0; k < a[t].numel(); ++k) {
      diff = std::max(diff, std::fabs(static_cast<double>(a[t][k]) - b[t][k]));
      scale = std::max(scale, std::fabs(static_cast<double>(a[t][k])));
    }
  }
  return {diff, scale};
}

bool bit_identical(const std::vector<Tensor<float>>& a, const std::vector<Tensor<float>>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t t = 0; t < a.size(); ++t)
    if (a[t].shape() != b[t].shape() ||
        std::memcmp(a[t].data(), b[t].data(), a[t].numel() * sizeof(float)) != 0)
      return false;
  return true;
}

std::uint64_t state_hash(const std::vector<Tensor<float>>& state) {
  std::uint64_t h = 1469598103934665603ULL;
  for (const Tensor<float>& t : state) {
    const auto* p = reinterpret_cast<const unsigned char*>(t.data());
    for (std::size_t i = 0; i < t.numel() * sizeof(float); ++i) h = (h ^ p[i]) * 1099511628211ULL;
  }
  return h;
}

// Relative to the largest parameter: what 50 steps of float rounding in another summation order
// may change (measured: below 1e-6 for these runs; docs/distributed.md).
constexpr double tolerance = 1e-5;

void check_equivalent(const std::string& model_text, const Dataset& data, std::size_t batch,
                      const Augmentation& augmentation = {}) {
  const Run alone = train(model_text, data, batch, 50, nullptr, "", "", augmentation);
  const Run together = train(model_text, data, batch, 50, world, "", "", augmentation);
  CHECK(together.result.steps == 50);
  const auto [diff, scale] = difference(alone.state, together.state);
  MESSAGE(model_text << ", batch " << batch << ", " << world->world_size()
                     << " ranks: max |difference| " << diff << " (largest value " << scale
                     << ", relative " << diff / scale << ")");
  CHECK(diff <= tolerance * scale);
  if (world->world_size() == 1) CHECK(bit_identical(alone.state, together.state));
  // Every rank ends with the same weights, and the same run again gives the same bits.
  CHECK_NOTHROW(world->require_same("the trained weights", {state_hash(together.state)}));
  const Run again = train(model_text, data, batch, 50, world, "", "", augmentation);
  CHECK(bit_identical(together.state, again.state));
  // The training and test metrics are the whole batch's and set's, as alone (up to rounding; an
  // accuracy may differ by one sample whose two largest scores are within rounding).
  REQUIRE(alone.result.history.size() == together.result.history.size());
  REQUIRE(!alone.result.history.empty());
  const double one = 1.0 / static_cast<double>(data.size()) + 1e-12;
  for (std::size_t e = 0; e < alone.result.history.size(); ++e) {
    const EpochMetrics& a = alone.result.history[e];
    const EpochMetrics& b = together.result.history[e];
    CHECK(b.train_loss == doctest::Approx(a.train_loss).epsilon(1e-5));
    CHECK(std::fabs(b.train_accuracy - a.train_accuracy) <= one);
    CHECK(b.test_loss == doctest::Approx(a.test_loss).epsilon(1e-5));
    CHECK(std::fabs(b.test_accuracy - a.test_accuracy) <= one);
  }
}

}  // namespace

TEST_CASE("MLP: N ranks train as one process, up to float rounding, after 50 steps") {
  // 97 samples in batches of 12: the epoch's last batch has 1 sample, so with 2 or 3 ranks some
  // ranks have an empty share; batch 10 does not divide among 3 ranks (4, 3, 3), batch 7 not
  // among 2 (4, 3).
  const Dataset data = synthetic(97, 16, 4, 1);
  for (std::size_t batch : {12u, 10u, 7u}) check_equivalent("mlp:16-32-24-4", data, batch);
}

TEST_CASE("CNN: N ranks train as one process, up to float rounding, after 50 steps") {
  const Dataset data = synthetic(40, 28 * 28, 10, 2);
  check_equivalent("cnn", data, 12);
}

TEST_CASE("augmentation: each rank augments its share as one process would") {
  // Every rank draws for the whole batch and applies its share's draws: the ranks train on the
  // augmented batches of one process. The samples' 16 values are 4 × 4 images.
  Augmentation a = Augmentation::parse("flip,shift:1");
  a.image = Shape{4, 4};
  const Dataset data = synthetic(97, 16, 4, 4);
  for (std::size_t batch : {12u, 7u}) check_equivalent("mlp:16-32-24-4", data, batch, a);
  // And a checkpoint inside an epoch resumes on any number of ranks with the same draws.
  const std::string path =
      "distributed_augment_" + std::to_string(world->world_size()) + ".safetensors";
  const Run whole = train("mlp:16-32-4", data, 10, 30, world, "", "", a);
  std::vector<double> barrier{0};
  train("mlp:16-32-4", data, 10, 15, world, path, "", a);
  world->sum(barrier);  // rank 0 has written the checkpoint
  const Run alone = train("mlp:16-32-4", data, 10, 30, nullptr, "", path, a);
  const Run together = train("mlp:16-32-4", data, 10, 30, world, "", path, a);
  const auto [diff, scale] = difference(whole.state, alone.state);
  CHECK(diff <= tolerance * scale);
  CHECK(bit_identical(whole.state, together.state));
  world->sum(barrier);  // every rank has read it
  if (world->rank() == 0) std::remove(path.c_str());
}

TEST_CASE("BatchNorm: local batch statistics; every rank ends with rank 0's weights and buffers") {
  // Batches of 12 in 96 samples: at least 4 samples per rank, as BatchNorm needs 2.
  const Dataset data = synthetic(96, 16, 4, 3);
  const Run r = train("mlp:16-32-4,norm=batch", data, 12, 20, world);
  CHECK_NOTHROW(world->require_same("the weights and buffers", {state_hash(r.state)}));
  if (world->world_size() == 1)
    CHECK(bit_identical(r.state, train("mlp:16-32-4,norm=batch", data, 12, 20, nullptr).state));
}

TEST_CASE("a checkpoint resumes on any number of ranks") {
  // Written by rank 0 of N ranks after 20 steps (inside an epoch), resumed by one process and
  // by N ranks; written by one process, resumed by N ranks: each ends as an uninterrupted run.
  const Dataset data = synthetic(97, 16, 4, 6);
  const std::string model = "mlp:16-32-4";
  const std::string path =
      "distributed_resume_" + std::to_string(world->world_size()) + ".safetensors";
  const Run whole = train(model, data, 10, 50, world);
  std::vector<double> barrier{0};
  train(model, data, 10, 20, world, path);
  world->sum(barrier);  // rank 0 has written the checkpoint
  const Run alone = train(model, data, 10, 50, nullptr, "", path);
  const Run together = train(model, data, 10, 50, world, "", path);
  CHECK(together.result.steps == 50);
  const auto [diff, scale] = difference(whole.state, alone.state);
  CHECK(diff <= tolerance * scale);
  CHECK(bit_identical(whole.state, together.state));
  world->sum(barrier);  // every rank has read it
  if (world->rank() == 0) train(model, data, 10, 20, nullptr, path);
  world->sum(barrier);
  const Run from_alone = train(model, data, 10, 50, world, "", path);
  const auto [diff2, scale2] = difference(whole.state, from_alone.state);
  CHECK(diff2 <= tolerance * scale2);
  world->sum(barrier);
  if (world->rank() == 0) std::remove(path.c_str());
}

TEST_CASE("buckets: after the first step, all but the first layer's leave during backward") {
  // mlp:16-32-24-4: layers of 544, 792 and 100 values; buckets of 1024 bytes (256 values).
  ModelSpec spec = build_model("mlp:16-32-24-4", 7);
  world->attach(*spec.model);
  const Dataset data = synthetic(24, 16, 4, 9);
  for (int step = 0; step < 3; ++step) {
    DataLoader loader(data, {24, false, 0, false, world->rank(), world->world_size()});
    loader.start_epoch();
    Batch batch;
    REQUIRE(loader.next(batch));
    world->begin_step(batch.size(), batch.global_size);
    softmax_cross_entropy((*spec.model)(Var<float>(batch.inputs)), batch.labels).backward();
    world->end_step();
    spec.model->zero_grad();
    if (step > 0) {
      // The first layer's weight and bias (one record) are final only when backward ends.
      CHECK(world->bucket_count() >= 4);
      CHECK(world->overlapped_buckets() >= world->bucket_count() - 2);
      CHECK(world->overlapped_buckets() < world->bucket_count());
    }
  }
}

TEST_CASE("Dropout: each rank draws masks of its own") {
  ModelSpec spec = build_model("mlp:16-32-4,dropout=0.5", 7);
  world->attach(*spec.model);
  const auto generators = spec.model->named_generators();
  REQUIRE(generators.size() == 1);
  const std::uint64_t state = std::hash<std::string>()(generators[0].second->state());
  if (world->world_size() == 1)
    CHECK_NOTHROW(world->require_same("the dropout stream", {state}));
  else
    CHECK_THROWS_AS(world->require_same("the dropout stream", {state}), DistributedError);
}

TEST_CASE("the ranks disagree: a different model, other data or options fail on every rank") {
  if (world->world_size() < 2) return;
  const bool odd = world->rank() == 1;
  const Dataset data = synthetic(60, 16, 4, 1);
  CHECK_THROWS_WITH_AS(train(odd ? "mlp:16-33-4" : "mlp:16-32-4", data, 12, 5, world),
                       doctest::Contains("the ranks disagree on the model"), DistributedError);
  CHECK_THROWS_WITH_AS(train("mlp:16-32-4", odd ? synthetic(61, 16, 4, 1) : data, 12, 5, world),
                       doctest::Contains("the ranks disagree on the data"), DistributedError);
  CHECK_THROWS_WITH_AS(train("mlp:16-32-4", data, odd ? 13 : 12, 5, world),
                       doctest::Contains("the ranks disagree on the training options"),
                       DistributedError);
  Augmentation flip = Augmentation::parse(odd ? "flip" : "flip,shift:1");
  flip.image = Shape{4, 4};
  CHECK_THROWS_WITH_AS(train("mlp:16-32-4", data, 12, 5, world, "", "", flip),
                       doctest::Contains("the ranks disagree on the augmentation"),
                       DistributedError);
  // Afterwards the group works again.
  CHECK_NOTHROW(train("mlp:16-32-4", data, 12, 5, world));
}

TEST_CASE("the user's own loop: begin_step / backward / end_step average the gradients") {
  ModelSpec spec = build_model("mlp:16-8-4", 11);
  world->attach(*spec.model);
  CHECK(world->bucket_count() >= 1);
  Dataset data = synthetic(9, 16, 4, 5);
  // Alone: the gradient of the mean loss over the 9 samples.
  ModelSpec alone = build_model("mlp:16-8-4", 11);
  Var<float> loss = softmax_cross_entropy((*alone.model)(Var<float>(data.inputs)), data.labels);
  loss.backward();
  DataLoader loader(data, {9, false, 0, false, world->rank(), world->world_size()});
  loader.start_epoch();
  Batch batch;
  REQUIRE(loader.next(batch));
  world->begin_step(batch.size(), batch.global_size);
  if (batch.size() > 0)
    softmax_cross_entropy((*spec.model)(Var<float>(batch.inputs)), batch.labels).backward();
  world->end_step();
  const auto a = alone.model->parameters();
  const auto b = spec.model->parameters();
  for (std::size_t i = 0; i < a.size(); ++i)
    for (std::size_t k = 0; k < a[i].numel(); ++k)
      CHECK(b[i].grad()[k] == doctest::Approx(a[i].grad()[k]).epsilon(1e-5));
  CHECK_THROWS_AS(world->end_step(), std::logic_error);
  CHECK_THROWS_AS(world->begin_step(3, 2), std::invalid_argument);
  std::vector<double> v{1.0, static_cast<double>(world->rank())};
  world->sum(v);
  const double n = static_cast<double>(world->world_size());
  CHECK(v[0] == n);
  CHECK(v[1] == n * (n - 1) / 2);
}

int main(int argc, char** argv) {
  DistributedOptions options;
  options.timeout_seconds = 60;
  if (argc == 2 && std::strncmp(argv[1], "fault-", 6) == 0) {
    options.timeout_seconds = 3;
    Distributed group(&argc, &argv, options);
    if (group.rank() == 1) {
      if (std::strcmp(argv[1], "fault-exit") == 0) std::_Exit(0);  // dies without a word
      ::sleep(60);                                                 // hangs
    }
    std::vector<double> v{1.0};
    group.sum(v);  // never completes
    std::fprintf(stderr, "rank %zu: the sum completed without rank 1\n", group.rank());
    return 0;
  }
  // A small bucket size: the models above spread over several buckets.
  options.bucket_bytes = 1024;
  Distributed group(&argc, &argv, options);
  world = &group;
  doctest::Context context(argc, argv);
  if (group.rank() != 0) context.setOption("out", "/dev/null");
  const int failed = context.run() != 0 ? 1 : 0;
  std::vector<double> failures{static_cast<double>(failed)};
  group.sum(failures);
  if (failures[0] > 0 && !failed)
    std::fprintf(stderr, "rank %zu: passed, but %g other rank(s) failed\n", group.rank(),
                 failures[0]);
  return failures[0] > 0 ? 1 : 0;
}
