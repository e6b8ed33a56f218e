// Regression: CSV targets, standardisation on the training set, MAE/RMSE/R², multi-target
// training, exact resumption, model files with their standardisation, and the errors.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "helpers.hpp"
#include "tapegrad/layers/layers.hpp"
#include "tapegrad/layers/safetensors.hpp"
#include "tapegrad/train/checkpoint.hpp"
#include "tapegrad/train/model_file.hpp"
#include "tapegrad/train/readers.hpp"
#include "tapegrad/train/trainer.hpp"

using namespace tapegrad;

namespace {
std::string temp_path(const std::string& name) {
  return std::string(std::getenv("TMPDIR") ? std::getenv("TMPDIR") : "/tmp") +
         "/tapegrad_test_regression_" + name;
}
void write_text(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

// x1, x2 uniform in [−2, 2]; y = 50 + 10 sin(x1) + 5 x2 (tens), z = 1000 + 300 x1 x2 (hundreds):
// two targets of very different scales, one of them a product of the inputs.
std::string synthetic_csv(std::size_t n, std::uint64_t seed) {
  nn::Generator g(seed);
  std::ostringstream s;
  s.precision(9);
  s << "x1,y,x2,z\n";
  for (std::size_t i = 0; i < n; ++i) {
    const double x1 = 4 * g.uniform() - 2, x2 = 4 * g.uniform() - 2;
    s << x1 << ',' << 50 + 10 * std::sin(x1) + 5 * x2 << ',' << x2 << ',' << 1000 + 300 * x1 * x2
      << '\n';
  }
  return s.str();
}

Dataset read_targets(const std::string& name, const std::string& text,
                     std::vector<std::string> columns) {
  const std::string path = temp_path(name);
  write_text(path, text);
  CsvOptions o;
  o.regression = true;
  o.target_columns = std::move(columns);
  Dataset d = read_csv(path, o);
  std::remove(path.c_str());
  return d;
}

std::shared_ptr<nn::Sequential<float>> model(std::size_t in, std::size_t out, std::uint64_t seed) {
  nn::Generator g(seed);
  return nn::mlp<float>({in, 32, out}, nn::Activation::tanh, g);
}

TrainOptions quiet(std::size_t epochs) {
  TrainOptions o;
  o.epochs = epochs;
  o.batch_size = 16;
  o.optimizer.kind = OptimizerSpec::Kind::adam;
  o.optimizer.lr = 0.01;
  o.schedule = LrSchedule::parse("constant");
  o.progress = TrainOptions::Progress::none;
  static std::ostringstream sink;
  o.log = &sink;
  return o;
}

// A dataset of inputs [N, 1] and targets [N, K] from rows of values.
Dataset tiny(const std::vector<float>& inputs, const std::vector<std::vector<float>>& targets) {
  Dataset d;
  d.inputs = Tensor<float>::from(Shape{inputs.size(), 1}, inputs);
  std::vector<float> flat;
  for (const auto& row : targets) flat.insert(flat.end(), row.begin(), row.end());
  d.targets = Tensor<float>::from(Shape{targets.size(), targets[0].size()}, flat);
  return d;
}
}  // namespace

TEST_CASE("regression: a two-target nonlinear CSV problem is learned to a small RMSE") {
  const Dataset train = read_targets("train.csv", synthetic_csv(600, 1), {"y", "z"});
  const Dataset test = read_targets("test.csv", synthetic_csv(200, 2), {"y", "z"});
  REQUIRE(train.inputs.shape() == Shape{600, 2});
  REQUIRE(train.targets.shape() == Shape{600, 2});
  CHECK(train.target_names == std::vector<std::string>{"y", "z"});
  CHECK(train.labels.empty());
  auto m = model(2, 2, 3);
  TrainOptions o = quiet(40);
  const TrainResult r = train_regressor(*m, train, nullptr, o);
  const RegressionEvaluation e = evaluate_regressor(*m, test, r.target_scaler);
  INFO("R² y " << e.metrics.r2_per_target[0] << ", z " << e.metrics.r2_per_target[1]);
  // The targets' deviations are about 9.6 (y) and 400 (z): the RMSEs are a few percent of them.
  CHECK(e.metrics.rmse_per_target[0] < 0.5);
  CHECK(e.metrics.rmse_per_target[1] < 25);
  CHECK(e.metrics.r2_per_target[0] > 0.99);
  CHECK(e.metrics.r2_per_target[1] > 0.99);
  CHECK(e.metrics.r2 > 0.99);
  // The history's test-free epochs carry training metrics in the targets' units, no accuracy.
  CHECK(std::isnan(r.history.back().train_accuracy));
  CHECK(r.history.back().train_rmse < r.history.front().train_rmse);
  CHECK(r.history.back().train_r2 > 0.98);
}

TEST_CASE("regression: MAE, RMSE and R² agree with hand-computed values") {
  // Column 1: errors 0.5, 0, −1, 1 → MAE 2.5/4, RMSE √(2.25/4) = 0.75, ȳ = 2.5, SS_tot = 5,
  //           R² = 1 − 2.25/5 = 0.55.
  // Column 2: errors 0, −2, 3, 0 → MAE 5/4, RMSE √(13/4), ȳ = 25, SS_tot = 500, R² = 0.974.
  const Tensor<float> targets(Shape{4, 2}, {1, 10, 2, 20, 3, 30, 4, 40});
  const Tensor<float> predictions(Shape{4, 2}, {1.5f, 10, 2, 18, 2, 33, 5, 40});
  const RegressionMetrics r = regression_metrics(predictions, targets);
  CHECK(r.mae_per_target[0] == doctest::Approx(0.625));
  CHECK(r.mae_per_target[1] == doctest::Approx(1.25));
  CHECK(r.rmse_per_target[0] == doctest::Approx(0.75));
  CHECK(r.rmse_per_target[1] == doctest::Approx(std::sqrt(3.25)));
  CHECK(r.r2_per_target[0] == doctest::Approx(0.55));
  CHECK(r.r2_per_target[1] == doctest::Approx(0.974));
  CHECK(r.mae == doctest::Approx(0.9375));
  CHECK(r.rmse == doctest::Approx((0.75 + std::sqrt(3.25)) / 2));  // per column, then averaged
  CHECK(r.r2 == doctest::Approx(0.762));
  CHECK(total_sum_of_squares(targets) == std::vector<double>{5, 500});
  // A constant column: R² is 1 for exact predictions, 0 otherwise (scikit-learn's convention).
  const Tensor<float> flat(Shape{3, 1}, {2, 2, 2});
  CHECK(regression_metrics(flat, flat).r2 == 1.0);
  CHECK(regression_metrics(Tensor<float>(Shape{3, 1}, {2, 2, 3}), flat).r2 == 0.0);
  CHECK(test::error_of([&] { regression_metrics(flat, targets); }).find("[3, 1]") !=
        std::string::npos);
}

TEST_CASE("regression: evaluation un-standardises the model's outputs into the targets' units") {
  nn::Generator g(1);
  nn::Linear<float> identity(1, 1, true, g);
  identity.parameters()[0].value()[0] = 1;  // weight
  identity.parameters()[1].value()[0] = 0;  // bias
  Standardizer scaler{Tensor<float>(Shape{1}, {10}), Tensor<float>(Shape{1}, {2})};
  // Outputs z = inputs; predictions 10 + 2z = 10, 12, 8, 11 for targets 10, 13, 8, 11.
  const Dataset data = tiny({0, 1, -1, 0.5f}, {{10}, {13}, {8}, {11}});
  const RegressionEvaluation e = evaluate_regressor(identity, data, scaler);
  CHECK(e.metrics.mae == doctest::Approx(0.25));
  CHECK(e.metrics.rmse == doctest::Approx(0.5));
  CHECK(e.metrics.r2 == doctest::Approx(1 - 1.0 / 13));  // ȳ = 10.5, SS_tot = 13
  // The loss is on standardised targets (0, 1.5, −1, 0.5): MSE 0.25/4; L1 0.5/4; Huber 0.125/4.
  CHECK(e.loss == doctest::Approx(0.0625));
  CHECK(evaluate_regressor(identity, data, scaler, RegressionLoss::parse("l1")).loss ==
        doctest::Approx(0.125));
  CHECK(evaluate_regressor(identity, data, scaler, RegressionLoss::parse("huber")).loss ==
        doctest::Approx(0.03125));
  // Huber with δ = 0.25: the error 0.5 costs 0.25·(0.5 − 0.125) = 0.09375.
  CHECK(evaluate_regressor(identity, data, scaler, RegressionLoss::parse("huber", 0.25)).loss ==
        doctest::Approx(0.09375 / 4));
}

TEST_CASE("regression: the targets' μ and σ are fitted on the training set only") {
  // Column 1: 2, 4, 4, 4, 5, 5, 7, 9 → μ 5, σ 2 (population); column 2 constant → μ 3, σ 1.
  Dataset train = tiny({0, 1, 2, 3, 4, 5, 6, 7},
                       {{2, 3}, {4, 3}, {4, 3}, {4, 3}, {5, 3}, {5, 3}, {7, 3}, {9, 3}});
  train.target_names = {"a", "b"};
  Dataset val = tiny({0, 1}, {{1000, -50}, {2000, 70}});
  val.target_names = train.target_names;
  const std::string ckpt = temp_path("fit.safetensors");
  TrainOptions o = quiet(2);
  o.checkpoint_path = ckpt;
  o.batch_size = 4;
  auto m = model(1, 2, 4);
  const TrainResult r = train_regressor(*m, train, &val, o);
  CHECK(r.target_scaler.mean[0] == 5);
  CHECK(r.target_scaler.stddev[0] == 2);
  CHECK(r.target_scaler.mean[1] == 3);
  CHECK(r.target_scaler.stddev[1] == 1);
  const TensorFile f = load_tensors(ckpt);
  CHECK(f.metadata.at("task") == "regression");
  CHECK(f.metadata.at("target_mean") == "0x1.4p+2,0x1.8p+1");
  CHECK(f.metadata.at("target_std") == "0x1p+1,0x1p+0");
  // The validation set's own values show in its metrics: it is far from the training targets.
  CHECK(r.history.back().val_rmse > 500);
  std::remove(ckpt.c_str());
}

TEST_CASE("regression: resumed mid-epoch, the run is bit-identical, on any thread count") {
  const Dataset all = read_targets("resume.csv", synthetic_csv(150, 5), {"z", "y"});
  const auto parts = split_validation(all, 0.2, 7);  // lambdas below capture these by name
  const Dataset &train = parts.first, &val = parts.second;
  const std::string ckpt = temp_path("resume.safetensors");
  TrainOptions o = quiet(4);
  o.seed = 3;
  o.loss = RegressionLoss::parse("huber", 0.5);
  o.schedule = LrSchedule::parse("cosine,warmup:4");
  auto straight = model(2, 2, 8);
  const TrainResult full = [&] {
    test::ThreadCount one(1);
    return train_regressor(*straight, train, &val, o);
  }();
  {
    test::ThreadCount four(4);
    auto again = model(2, 2, 8);
    train_regressor(*again, train, &val, o);
    for (std::size_t i = 0; i < straight->parameters().size(); ++i)
      CHECK(test::bit_identical(again->parameters()[i].value(), straight->parameters()[i].value()));
  }
  TrainOptions first = o;
  first.checkpoint_path = ckpt;
  first.max_steps = 8 + 3;  // 120 samples / 16 → 8 batches per epoch: inside epoch 2
  auto interrupted = model(2, 2, 8);
  train_regressor(*interrupted, train, &val, first);
  CHECK(load_tensors(ckpt).metadata.at("epoch_abs_error").find(',') != std::string::npos);
  auto resumed = model(2, 2, 9);
  const TrainResult r = train_regressor(*resumed, train, &val, o, ckpt);
  REQUIRE(r.history.size() == full.history.size());
  CHECK(r.history[1].train_rmse == full.history[1].train_rmse);  // the running errors resumed
  CHECK(r.history[1].train_r2 == full.history[1].train_r2);
  // The history came from the checkpoint (its CSV keeps 9 significant digits).
  CHECK(r.history[0].val_r2 == doctest::Approx(full.history[0].val_r2).epsilon(1e-8));
  CHECK(r.best_epoch == full.best_epoch);
  for (std::size_t i = 0; i < straight->parameters().size(); ++i)
    CHECK(test::bit_identical(resumed->parameters()[i].value(), straight->parameters()[i].value()));

  // Other training targets (another μ), or a classification run, refuse the checkpoint.
  Dataset shifted = train;
  shifted.targets[0] += 1000;
  auto other = model(2, 2, 9);
  CHECK(test::error_of([&] { train_regressor(*other, shifted, &val, o, ckpt); }) ==
        ckpt +
            ": the checkpoint's target means and deviations differ from this training set's "
            "(other data?)");
  Dataset labelled;
  labelled.inputs = train.inputs;
  labelled.labels.assign(train.size(), 0);
  labelled.classes = 2;
  CHECK(test::error_of([&] { train_classifier(*other, labelled, nullptr, o, ckpt); }) ==
        ckpt + ": the checkpoint is of a regression run, this run is classification");
  std::remove(ckpt.c_str());
}

TEST_CASE("regression: the loader, subsets and splits keep targets beside their inputs") {
  Dataset d;
  d.inputs = Tensor<float>(Shape{37, 3});
  d.targets = Tensor<float>(Shape{37, 2});
  for (std::size_t i = 0; i < 37; ++i) {
    for (std::size_t f = 0; f < 3; ++f) d.inputs[3 * i + f] = static_cast<float>(i);
    d.targets[2 * i] = static_cast<float>(10 * i), d.targets[2 * i + 1] = -static_cast<float>(i);
  }
  d.validate("data");
  CHECK(d.size() == 37);
  CHECK(d.target_count() == 2);
  DataLoader loader(d, {8, true, 5, false});
  loader.start_epoch();
  Batch b;
  std::size_t seen = 0;
  while (loader.next(b)) {
    CHECK(b.labels.empty());
    REQUIRE(b.targets.shape() == Shape{b.size(), 2});
    for (std::size_t r = 0; r < b.size(); ++r) {
      CHECK(b.targets[2 * r] == 10 * b.inputs[3 * r]);
      CHECK(b.targets[2 * r + 1] == -b.inputs[3 * r]);
    }
    seen += b.size();
  }
  CHECK(seen == 37);
  const auto [fit, val] = split_validation(d, 0.25, 1);
  CHECK(fit.size() + val.size() == 37);
  for (const Dataset* part : {&fit, &val})
    for (std::size_t i = 0; i < part->size(); ++i)
      CHECK(part->targets[2 * i] == 10 * part->inputs[3 * i]);
  // Targets standardise and come back.
  const Standardizer s = Standardizer::fit(d.targets);
  Tensor<float> t = d.targets;
  s.standardize(t);
  s.unstandardize(t);
  test::check_close(t, d.targets, 1e-5);
}

TEST_CASE("regression: the model file keeps μ and σ as metadata, beside the model's own tensors") {
  const std::string path = temp_path("model.safetensors");
  auto m = model(3, 2, 10);
  RegressionModelInfo info;
  info.target_names = {"price", "area"};
  info.targets = {Tensor<float>(Shape{2}, {1e5f, 0.1f}), Tensor<float>(Shape{2}, {3e4f, 1.0f / 3})};
  info.inputs = {Tensor<float>(Shape{3}, {1, 2, 3}), Tensor<float>(Shape{3}, {4, 5, 6})};
  info.loss = RegressionLoss::parse("huber", 0.7);
  save_regression_model(path, *m, info);
  const TensorFile f = load_tensors(path);
  CHECK(f.tensors.size() == m->parameters().size());  // nothing beyond the state_dict
  CHECK(f.metadata.at("tapegrad.task") == "regression");
  CHECK(f.metadata.at("tapegrad.target_columns") == "price,area");
  CHECK(model_file_task(path) == Task::regression);
  auto back = model(3, 2, 11);
  const RegressionModelInfo got = load_regression_model(path, *back);
  CHECK(got.target_names == info.target_names);
  CHECK(test::bit_identical(got.targets.mean, info.targets.mean));
  CHECK(test::bit_identical(got.targets.stddev, info.targets.stddev));
  CHECK(test::bit_identical(got.inputs.stddev, info.inputs.stddev));
  CHECK(got.loss.kind == RegressionLoss::Kind::huber);
  CHECK(got.loss.huber_delta == 0.7);
  for (std::size_t i = 0; i < m->parameters().size(); ++i)
    CHECK(test::bit_identical(back->parameters()[i].value(), m->parameters()[i].value()));
  // A classification model file has none of it.
  nn::save_parameters(*m, path);
  CHECK(model_file_task(path) == Task::classification);
  CHECK(test::error_of([&] { load_regression_model(path, *back); }) ==
        path +
            ": metadata tapegrad.task is missing (was the file written by tapegrad train --task "
            "regression?)");
  std::remove(path.c_str());
}

TEST_CASE("regression: bad targets, columns and output widths are errors naming them") {
  const std::string p = temp_path("bad.csv");
  auto error_for = [&](const std::string& text, std::vector<std::string> columns = {}) {
    write_text(p, text);
    CsvOptions o;
    o.regression = true;
    o.target_columns = std::move(columns);
    return test::error_of([&] { read_csv(p, o); });
  };
  CHECK(error_for("a,b,y\n1,2,3\n1,2,abc\n") == p + ":3: column \"y\": \"abc\" is not a number");
  CHECK(error_for("a,b,y\n1,2,3\n1,2,inf\n") ==
        p + ":3: column \"y\": target \"inf\" is not finite");
  CHECK(error_for("a,y,b\n1,nan,3\n", {"y"}) ==
        p + ":2: column \"y\": target \"nan\" is not finite");
  CHECK(error_for("a,y,b\n1,1e39,3\n", {"y"}) ==
        p + ":2: column \"y\": \"1e39\" is outside the range of float");
  CHECK(error_for("a,b,y\n1,2,3\n", {"q"}) ==
        p + ": no column named \"q\" in the header (a, b, y)");
  CHECK(error_for("a,b,y\n1,2,3\n", {"y", "y"}) == p + ": target column \"y\" is named twice");
  CHECK(error_for("a,y\n1,2\n", {"a", "y"}) ==
        p + ": every column is a target: at least one feature column is needed");
  std::remove(p.c_str());

  // The model's output width must be the targets' count.
  Dataset data = tiny({0, 1, 2}, {{1, 2}, {2, 3}, {3, 5}});
  data.target_names = {"u", "v"};
  auto narrow = model(1, 3, 12);
  CHECK(test::error_of([&] { train_regressor(*narrow, data, nullptr, quiet(1)); }) ==
        "train: the model's output has shape [3, 3] but the data have 2 target columns (u, v): "
        "its output width must be the number of targets");
  CHECK(test::error_of([&] {
          evaluate_regressor(*narrow, data, Standardizer::fit(data.targets));
        }).find("evaluate: the model's output has shape [3, 3]") == 0);
  // Non-finite targets and labelled data are refused.
  Dataset nan_target = data;
  nan_target.targets[3] = std::nanf("");
  auto ok = model(1, 2, 13);
  CHECK(test::error_of([&] { train_regressor(*ok, data, &nan_target, quiet(1)); }) ==
        "validation data: sample 1 has a non-finite target (nan) in column \"v\"");
  Dataset labelled;
  labelled.inputs = data.inputs;
  labelled.labels = {0, 1, 0};
  labelled.classes = 2;
  CHECK(test::error_of([&] { train_regressor(*ok, labelled, nullptr, quiet(1)); }) ==
        "train: the training data have no targets");
  CHECK(test::error_of([&] { train_classifier(*ok, data, nullptr, quiet(1)); }) ==
        "training data: regression targets given to train_classifier");
  CHECK(test::error_of([] { RegressionLoss::parse("mae"); }) ==
        "unknown loss \"mae\" (valid: mse, l1, huber)");
}

TEST_CASE(
    "regression: the metrics CSV has the regression columns, parses back, and the curves "
    "show RMSE") {
  std::vector<EpochMetrics> h(3);
  for (std::size_t e = 0; e < 3; ++e) {
    h[e].epoch = e + 1;
    h[e].train_loss = 1.0 / (e + 1);
    h[e].train_accuracy = h[e].val_accuracy = h[e].test_accuracy = std::nan("");
    h[e].train_rmse = 3.0 - static_cast<double>(e);
    h[e].train_r2 = 0.5 + 0.1 * static_cast<double>(e);
    h[e].train_mae = 2;
    h[e].val_loss = h[e].val_mae = h[e].val_rmse = h[e].val_r2 = 0.25;
    h[e].test_loss = h[e].test_mae = h[e].test_rmse = h[e].test_r2 = 0.5;
  }
  const std::string csv = metrics_csv(h, Task::regression);
  CHECK(csv.rfind("epoch,train_loss,train_mae,train_rmse,train_r2,val_loss,val_mae,val_rmse,"
                  "val_r2,lr,seconds,samples_per_second,test_loss,test_mae,test_rmse,test_r2\n",
                  0) == 0);
  const std::vector<EpochMetrics> back = parse_metrics_csv(csv);
  REQUIRE(back.size() == 3);
  CHECK(back[2].train_rmse == 1);
  CHECK(back[1].train_r2 == doctest::Approx(0.6));
  CHECK(back[0].test_r2 == 0.5);
  CHECK(std::isnan(back[0].train_accuracy));
  // Classification's CSV is unchanged and its regression fields stay NaN.
  const std::vector<EpochMetrics> classified = parse_metrics_csv(metrics_csv(h));
  CHECK(std::isnan(classified[0].train_rmse));
  CHECK(test::error_of([] { parse_metrics_csv("epoch,train_loss,bogus\n1,2,3\n"); }) ==
        "header: unknown column \"bogus\"");
  CHECK(test::error_of([] { parse_metrics_csv("epoch,train_loss\n1,2,3\n"); }) ==
        "row 1: 3 fields, the header has 2");
  const std::string svg = curves_svg(h, Task::regression);
  CHECK(svg.find(">RMSE (the targets' units)</text>") != std::string::npos);
  CHECK(svg.find(">accuracy</text>") == std::string::npos);
  std::size_t polylines = 0;
  for (std::size_t at = svg.find("<polyline"); at != std::string::npos;
       at = svg.find("<polyline", at + 1))
    ++polylines;
  CHECK(polylines == 6);
}
