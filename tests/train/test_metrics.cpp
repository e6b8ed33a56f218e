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
    h.push_back(m);
  }
  return h;
}
}  // namespace

TEST_CASE("metrics: the CSV has a header and one row per epoch, and parses back") {
  const auto h = sample_history();
  const std::string csv = metrics_csv(h);
  CHECK(csv.rfind("epoch,train_loss,train_accuracy,val_loss,val_accuracy,lr,seconds,"
                  "samples_per_second\n",
                  0) == 0);
  CHECK(std::count(csv.begin(), csv.end(), '\n') == 5);
  const auto back = parse_metrics_csv(csv);
  REQUIRE(back.size() == 4);
  CHECK(back[2].epoch == 3);
  CHECK(back[2].train_loss == doctest::Approx(1.0 / 3));
  CHECK(std::isnan(back[1].val_loss));
  CHECK(back[3].samples_per_second == 24000);
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
  CHECK(polylines == 4);
  CHECK(svg.find("nan") == std::string::npos);  // the NaN validation loss is skipped
  CHECK(svg.find("<script") == std::string::npos);
  CHECK(svg.substr(svg.size() - 7) == "</svg>\n");
  // A single epoch still draws (a point per series).
  const std::string one = curves_svg({sample_history()[0]});
  CHECK(one.find("<circle") != std::string::npos);
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
