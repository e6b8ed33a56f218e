#include "tapegrad/train/metrics.hpp"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <sstream>
#include <stdexcept>

namespace tapegrad {

namespace {

struct Column {
  const char* name;
  double EpochMetrics::*field;  // null for the epoch number
};

// The CSV's columns of each task, in order.
const std::vector<Column>& columns(Task task) {
  using M = EpochMetrics;
  static const std::vector<Column> classification = {{"epoch", nullptr},
                                                     {"train_loss", &M::train_loss},
                                                     {"train_accuracy", &M::train_accuracy},
                                                     {"val_loss", &M::val_loss},
                                                     {"val_accuracy", &M::val_accuracy},
                                                     {"lr", &M::lr},
                                                     {"seconds", &M::seconds},
                                                     {"samples_per_second", &M::samples_per_second},
                                                     {"test_loss", &M::test_loss},
                                                     {"test_accuracy", &M::test_accuracy}};
  static const std::vector<Column> regression = {
      {"epoch", nullptr},           {"train_loss", &M::train_loss},
      {"train_mae", &M::train_mae}, {"train_rmse", &M::train_rmse},
      {"train_r2", &M::train_r2},   {"val_loss", &M::val_loss},
      {"val_mae", &M::val_mae},     {"val_rmse", &M::val_rmse},
      {"val_r2", &M::val_r2},       {"lr", &M::lr},
      {"seconds", &M::seconds},     {"samples_per_second", &M::samples_per_second},
      {"test_loss", &M::test_loss}, {"test_mae", &M::test_mae},
      {"test_rmse", &M::test_rmse}, {"test_r2", &M::test_r2}};
  return task == Task::regression ? regression : classification;
}

// The column named `name` of either task, or null.
const Column* find_column(const std::string& name) {
  for (Task task : {Task::classification, Task::regression})
    for (const Column& c : columns(task))
      if (name == c.name) return &c;
  return nullptr;
}

std::vector<std::string> csv_fields(const std::string& line) {
  std::vector<std::string> fields;
  std::size_t start = 0;
  for (std::size_t i = 0; i <= line.size(); ++i)
    if (i == line.size() || line[i] == ',') {
      std::string f = line.substr(start, i - start);
      while (!f.empty() && (f.back() == '\r' || f.back() == ' ')) f.pop_back();
      fields.push_back(f);
      start = i + 1;
    }
  return fields;
}

}  // namespace

std::string metrics_csv(const std::vector<EpochMetrics>& history, Task task) {
  const std::vector<Column>& cols = columns(task);
  std::ostringstream s;
  s.precision(9);
  for (std::size_t c = 0; c < cols.size(); ++c) s << (c ? "," : "") << cols[c].name;
  s << '\n';
  for (const EpochMetrics& m : history) {
    s << m.epoch;
    for (std::size_t c = 1; c < cols.size(); ++c) s << ',' << m.*(cols[c].field);
    s << '\n';
  }
  return s.str();
}

std::vector<EpochMetrics> parse_metrics_csv(const std::string& text) {
  std::vector<EpochMetrics> history;
  std::istringstream in(text);
  std::string line;
  std::getline(in, line);
  std::vector<const Column*> header;
  for (const std::string& name : csv_fields(line)) {
    const Column* c = find_column(name);
    if (!c) throw std::invalid_argument("header: unknown column \"" + name + "\"");
    header.push_back(c);
  }
  if (header.empty() || header[0]->field != nullptr)
    throw std::invalid_argument("header: the first column must be \"epoch\"");
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    const std::size_t row_no = history.size() + 1;
    const std::vector<std::string> field = csv_fields(line);
    if (field.size() != header.size())
      throw std::invalid_argument("row " + std::to_string(row_no) + ": " +
                                  std::to_string(field.size()) + " fields, the header has " +
                                  std::to_string(header.size()));
    auto num = [&](const std::string& f) {
      if (f == "nan" || f == "-nan") return std::numeric_limits<double>::quiet_NaN();
      char* end = nullptr;
      const double v = std::strtod(f.c_str(), &end);
      if (f.empty() || *end != '\0')
        throw std::invalid_argument("row " + std::to_string(row_no) + ": \"" + f +
                                    "\" is not a number");
      return v;
    };
    EpochMetrics m;
    // Columns the header lacks are NaN; the classification columns a regression history lacks
    // (the accuracies) likewise.
    m.train_accuracy = m.val_loss = m.val_accuracy = m.test_loss = m.test_accuracy =
        std::numeric_limits<double>::quiet_NaN();
    const double epoch = num(field[0]);
    if (!(epoch >= 0 && epoch <= 1e15) || epoch != std::floor(epoch))
      throw std::invalid_argument("row " + std::to_string(row_no) + ": \"" + field[0] +
                                  "\" is not an epoch number");
    m.epoch = static_cast<std::size_t>(epoch);
    for (std::size_t c = 1; c < header.size(); ++c) m.*(header[c]->field) = num(field[c]);
    history.push_back(m);
  }
  return history;
}

RegressionMetrics regression_metrics(const std::vector<double>& abs_error_sum,
                                     const std::vector<double>& squared_error_sum,
                                     const std::vector<double>& total_sum_of_squares,
                                     std::size_t n) {
  const std::size_t k = abs_error_sum.size();
  if (squared_error_sum.size() != k || total_sum_of_squares.size() != k)
    throw std::invalid_argument("regression_metrics: sums of different lengths");
  RegressionMetrics r;
  const double count = static_cast<double>(std::max<std::size_t>(1, n));
  for (std::size_t c = 0; c < k; ++c) {
    const double ss_res = squared_error_sum[c], ss_tot = total_sum_of_squares[c];
    r.mae_per_target.push_back(abs_error_sum[c] / count);
    r.rmse_per_target.push_back(std::sqrt(ss_res / count));
    r.r2_per_target.push_back(ss_tot > 0 ? 1 - ss_res / ss_tot : ss_res == 0 ? 1.0 : 0.0);
  }
  auto average = [&](const std::vector<double>& v) {
    double sum = 0;
    for (double x : v) sum += x;
    return k ? sum / static_cast<double>(k) : std::numeric_limits<double>::quiet_NaN();
  };
  r.mae = average(r.mae_per_target);
  r.rmse = average(r.rmse_per_target);
  r.r2 = average(r.r2_per_target);
  return r;
}

std::vector<double> total_sum_of_squares(const Tensor<float>& targets) {
  if (targets.rank() != 2)
    throw ShapeError("total_sum_of_squares: targets of shape " + targets.shape().to_string() +
                     " are not [N, K]");
  const std::size_t n = targets.dim(0), k = targets.dim(1);
  std::vector<double> mean(k, 0.0), ss(k, 0.0);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t c = 0; c < k; ++c) mean[c] += targets[i * k + c];
  for (double& m : mean) m /= static_cast<double>(std::max<std::size_t>(1, n));
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t c = 0; c < k; ++c) {
      const double d = targets[i * k + c] - mean[c];
      ss[c] += d * d;
    }
  return ss;
}

RegressionMetrics regression_metrics(const Tensor<float>& predictions,
                                     const Tensor<float>& targets) {
  if (targets.rank() != 2 || predictions.shape() != targets.shape())
    throw ShapeError("regression_metrics: predictions of shape " + predictions.shape().to_string() +
                     " for targets of shape " + targets.shape().to_string() +
                     " (both must be [N, K])");
  const std::size_t n = targets.dim(0), k = targets.dim(1);
  std::vector<double> abs_sum(k, 0.0), sq_sum(k, 0.0);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t c = 0; c < k; ++c) {
      const double e = static_cast<double>(predictions[i * k + c]) - targets[i * k + c];
      abs_sum[c] += std::fabs(e);
      sq_sum[c] += e * e;
    }
  return regression_metrics(abs_sum, sq_sum, total_sum_of_squares(targets), n);
}

namespace {

// Round tick values covering [lo, hi]: multiples of a step of 1, 2 or 5 times a power of ten,
// four to six of them.
std::vector<double> round_ticks(double lo, double hi) {
  const double raw = (hi - lo) / 6;
  const double power = std::pow(10.0, std::floor(std::log10(raw)));
  double step = power;
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (m * power >= raw) {
      step = m * power;
      break;
    }
  std::vector<double> ticks;
  for (double t = std::ceil(lo / step) * step; t <= hi + step * 1e-9; t += step)
    ticks.push_back(std::abs(t) < step * 1e-9 ? 0.0 : t);
  return ticks;
}

// Enough decimals to tell ticks `step` apart.
int tick_decimals(const std::vector<double>& ticks) {
  if (ticks.size() < 2) return 2;
  const double step = ticks[1] - ticks[0];
  return std::max(0, static_cast<int>(std::ceil(-std::log10(step) - 1e-9)));
}

struct Series {
  const char* label;
  const char* colour;
  double EpochMetrics::*field;
  bool dashed;
};

// One panel: axes, ticks, and a polyline per series that has finite values.
void panel(std::ostringstream& s, double x0, const char* title, const std::vector<EpochMetrics>& h,
           const std::vector<Series>& series) {
  const double w = 380, ht = 260, left = x0 + 55, top = 40, right = x0 + w - 15, bottom = 250;
  double lo = std::numeric_limits<double>::infinity(), hi = -lo;
  for (const EpochMetrics& m : h)
    for (const Series& se : series) {
      const double v = m.*(se.field);
      if (std::isfinite(v)) lo = std::min(lo, v), hi = std::max(hi, v);
    }
  if (!std::isfinite(lo)) lo = 0, hi = 1;
  if (hi - lo < 1e-12) hi = lo + 1;
  const double pad = 0.05 * (hi - lo);
  lo -= pad;
  hi += pad;
  const double n = std::max<double>(1, static_cast<double>(h.size()) - 1);
  auto px = [&](double i) { return left + (right - left) * i / n; };
  auto py = [&](double v) { return bottom - (bottom - top) * (v - lo) / (hi - lo); };
  s << "<text x='" << (left + right) / 2 << "' y='22' text-anchor='middle' font-size='15'>" << title
    << "</text>\n";
  s << "<rect x='" << left << "' y='" << top << "' width='" << right - left << "' height='"
    << bottom - top << "' fill='none' stroke='#888'/>\n";
  const std::vector<double> ticks = round_ticks(lo, hi);
  const int decimals = tick_decimals(ticks);
  for (double v : ticks) {
    s << "<text x='" << left - 6 << "' y='" << py(v) + 4 << "' text-anchor='end' font-size='11'>"
      << std::fixed;
    s.precision(decimals);
    s << v << "</text>\n";
    s.unsetf(std::ios::fixed);
    s.precision(6);
    s << "<line x1='" << left << "' x2='" << right << "' y1='" << py(v) << "' y2='" << py(v)
      << "' stroke='#eee'/>\n";
  }
  for (std::size_t i = 0; i < h.size(); ++i)
    s << "<text x='" << px(static_cast<double>(i)) << "' y='" << bottom + 15
      << "' text-anchor='middle' font-size='11'>" << h[i].epoch << "</text>\n";
  s << "<text x='" << (left + right) / 2 << "' y='" << ht + 20
    << "' text-anchor='middle' font-size='12'>epoch</text>\n";
  double legend_y = top + 14;
  for (const Series& se : series) {
    std::ostringstream pts;
    std::size_t count = 0;
    for (std::size_t i = 0; i < h.size(); ++i) {
      const double v = h[i].*(se.field);
      if (!std::isfinite(v)) continue;
      pts << px(static_cast<double>(i)) << ',' << py(v) << ' ';
      ++count;
    }
    if (count == 0) continue;
    s << "<polyline fill='none' stroke='" << se.colour << "' stroke-width='2'"
      << (se.dashed ? " stroke-dasharray='6,4'" : "") << " points='" << pts.str() << "'/>\n";
    if (count == 1)
      s << "<circle cx='" << pts.str().substr(0, pts.str().find(',')) << "' cy='"
        << pts.str().substr(pts.str().find(',') + 1) << "' r='3' fill='" << se.colour << "'/>\n";
    s << "<text x='" << right - 8 << "' y='" << legend_y
      << "' text-anchor='end' font-size='12' fill='" << se.colour << "'>" << se.label
      << "</text>\n";
    legend_y += 15;
  }
}

}  // namespace

std::string curves_svg(const std::vector<EpochMetrics>& history, Task task) {
  std::ostringstream s;
  s.precision(6);
  s << "<?xml version='1.0' encoding='UTF-8'?>\n"
    << "<svg xmlns='http://www.w3.org/2000/svg' width='780' height='300' "
       "font-family='sans-serif'>\n<rect width='100%' height='100%' fill='white'/>\n";
  panel(s, 0, "loss", history,
        {{"train", "#1f77b4", &EpochMetrics::train_loss, false},
         {"validation", "#d62728", &EpochMetrics::val_loss, true},
         {"test", "#2ca02c", &EpochMetrics::test_loss, true}});
  if (task == Task::regression)
    panel(s, 390, "RMSE (the targets' units)", history,
          {{"train", "#1f77b4", &EpochMetrics::train_rmse, false},
           {"validation", "#d62728", &EpochMetrics::val_rmse, true},
           {"test", "#2ca02c", &EpochMetrics::test_rmse, true}});
  else
    panel(s, 390, "accuracy", history,
          {{"train", "#1f77b4", &EpochMetrics::train_accuracy, false},
           {"validation", "#d62728", &EpochMetrics::val_accuracy, true},
           {"test", "#2ca02c", &EpochMetrics::test_accuracy, true}});
  s << "</svg>\n";
  return s.str();
}

}  // namespace tapegrad
