// Metrics CSV, the SVG of the curves, and atomic file writes.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <sstream>

#include "helpers.hpp"
#include "tapegrad/train/metrics.hpp"

using namespace tapegrad;

namespace {
std::vector<EpochMetrics> sample_history() {
  std::vector<EpochMetrics> h;
  for (std::size_t e = 1; e <= 4; ++e) {
    EpochMetrics m;
    m.epoch = e;
    m.train_loss = 1.0 / static_cast<double>(e);
    m.train_accuracy = 0.5 + 0.1 * static_cast<double>(e);
    m.val_loss = e == 2 ? std::numeric_limits<double>::quiet_NaN() : 1.2 / static_cast<double>(e);
    m.val_accuracy = 0.45 + 0.1 * static_cast<double>(e);
    m.lr = 0.05;
    m.seconds = 2.5;
    m.samples_per_second = 24000;
    m.test_loss = 1.1 / static_cast<double>(e);
    m.test_accuracy = 0.4 + 0.1 * static_cast<double>(e);
    h.push_back(m);
  }
  return h;
}
}  // namespace

TEST_CASE("metrics: the CSV has a header and one row per epoch, and parses back") {
  const auto h = sample_history();
  const std::string csv = metrics_csv(h);
  CHECK(csv.rfind("epoch,train_loss,train_accuracy,val_loss,val_accuracy,lr,seconds,"
                  "samples_per_second,test_loss,test_accuracy\n",
                  0) == 0);
  CHECK(std::count(csv.begin(), csv.end(), '\n') == 5);
  const auto back = parse_metrics_csv(csv);
  REQUIRE(back.size() == 4);
  CHECK(back[2].epoch == 3);
  CHECK(back[2].train_loss == doctest::Approx(1.0 / 3));
  CHECK(std::isnan(back[1].val_loss));
  CHECK(back[3].samples_per_second == 24000);
  CHECK(back[3].test_accuracy == doctest::Approx(0.8));
  // Rows written before the test columns existed parse, with NaN there.
  const auto old = parse_metrics_csv(
      "epoch,train_loss,train_accuracy,val_loss,val_accuracy,lr,seconds,samples_per_second\n"
      "1,0.5,0.8,nan,nan,0.05,1.5,40000\n");
  REQUIRE(old.size() == 1);
  CHECK(old[0].samples_per_second == 40000);
  CHECK(std::isnan(old[0].test_loss));
}

TEST_CASE("metrics: the SVG is a standalone picture with both panels and all series") {
  const std::string svg = curves_svg(sample_history());
  CHECK(svg.rfind("<?xml", 0) == 0);
  CHECK(svg.find("<svg xmlns='http://www.w3.org/2000/svg'") != std::string::npos);
  CHECK(svg.find(">loss</text>") != std::string::npos);
  CHECK(svg.find(">accuracy</text>") != std::string::npos);
  std::size_t polylines = 0;
  for (std::size_t at = svg.find("<polyline"); at != std::string::npos;
       at = svg.find("<polyline", at + 1))
    ++polylines;
  CHECK(polylines == 6);                        // train, validation and test in each panel
  CHECK(svg.find("nan") == std::string::npos);  // the NaN validation loss is skipped
  CHECK(svg.find("<script") == std::string::npos);
  CHECK(svg.substr(svg.size() - 7) == "</svg>\n");
  // A single epoch still draws (a point per series).
  const std::string one = curves_svg({sample_history()[0]});
  CHECK(one.find("<circle") != std::string::npos);
}

TEST_CASE("metrics: the value axes are ticked at round values") {
  auto ticks_of = [](const std::string& svg) {
    std::vector<std::string> labels;
    for (std::size_t at = svg.find("text-anchor='end' font-size='11'>"); at != std::string::npos;
         at = svg.find("text-anchor='end' font-size='11'>", at + 1)) {
      const std::size_t from = svg.find('>', at) + 1;
      labels.push_back(svg.substr(from, svg.find('<', from) - from));
    }
    return labels;
  };
  // Losses 1/e for e = 1..4 (with the validation's 1.2 and the test's 1.1): the loss panel's range
  // is about 0.2..1.25, so ticks every 0.2 from 0.4; the accuracy panel's 0.48..0.92: every 0.1.
  const std::vector<std::string> labels = ticks_of(curves_svg(sample_history()));
  const std::vector<std::string> expected = {"0.4", "0.6", "0.8", "1.0", "1.2",
                                             "0.5", "0.6", "0.7", "0.8", "0.9"};
  CHECK(labels == expected);
}

TEST_CASE("metrics: atomic writes replace the file whole, and a failed write leaves it alone") {
  const std::string path = "/tmp/tapegrad_test_atomic.txt";
  write_file_atomically(path, "first");
  write_file_atomically(path, "second version");
  CHECK(test::read_file(path) == "second version");
  const std::string msg =
      test::error_of([] { write_file_atomically("/nonexistent-dir/x.csv", "data"); });
  CHECK(msg.find("/nonexistent-dir/x.csv: cannot write") != std::string::npos);
  std::remove(path.c_str());
}
