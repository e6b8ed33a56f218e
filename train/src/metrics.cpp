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

std::string metrics_csv(const std::vector<EpochMetrics>& history) {
  std::ostringstream s;
  s.precision(9);
  s << "epoch,train_loss,train_accuracy,val_loss,val_accuracy,lr,seconds,samples_per_second,"
       "test_loss,test_accuracy\n";
  for (const EpochMetrics& m : history)
    s << m.epoch << ',' << m.train_loss << ',' << m.train_accuracy << ',' << m.val_loss << ','
      << m.val_accuracy << ',' << m.lr << ',' << m.seconds << ',' << m.samples_per_second << ','
      << m.test_loss << ',' << m.test_accuracy << '\n';
  return s.str();
}

std::vector<EpochMetrics> parse_metrics_csv(const std::string& text) {
  std::vector<EpochMetrics> history;
  std::istringstream in(text);
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    EpochMetrics m;
    double epoch = 0;
    std::replace(line.begin(), line.end(), ',', ' ');
    std::istringstream row(line);
    std::string field[10] = {"", "", "", "", "", "", "", "", "nan", "nan"};
    for (std::string& f : field)
      if (!(row >> f)) break;
    const std::size_t row_no = history.size() + 1;
    auto num = [&](const std::string& f) {
      if (f == "nan" || f == "-nan") return std::numeric_limits<double>::quiet_NaN();
      char* end = nullptr;
      const double v = std::strtod(f.c_str(), &end);
      if (f.empty() || *end != '\0')
        throw std::invalid_argument("row " + std::to_string(row_no) + ": \"" + f +
                                    "\" is not a number");
      return v;
    };
    epoch = num(field[0]);
    if (!(epoch >= 0 && epoch <= 1e15) || epoch != std::floor(epoch))
      throw std::invalid_argument("row " + std::to_string(row_no) + ": \"" + field[0] +
                                  "\" is not an epoch number");
    m.epoch = static_cast<std::size_t>(epoch);
    m.train_loss = num(field[1]);
    m.train_accuracy = num(field[2]);
    m.val_loss = num(field[3]);
    m.val_accuracy = num(field[4]);
    m.lr = num(field[5]);
    m.seconds = num(field[6]);
    m.samples_per_second = num(field[7]);
    m.test_loss = num(field[8]);
    m.test_accuracy = num(field[9]);
    history.push_back(m);
  }
  return history;
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

std::string curves_svg(const std::vector<EpochMetrics>& history) {
  std::ostringstream s;
  s.precision(6);
  s << "<?xml version='1.0' encoding='UTF-8'?>\n"
    << "<svg xmlns='http://www.w3.org/2000/svg' width='780' height='300' "
       "font-family='sans-serif'>\n<rect width='100%' height='100%' fill='white'/>\n";
  panel(s, 0, "loss", history,
        {{"train", "#1f77b4", &EpochMetrics::train_loss, false},
         {"validation", "#d62728", &EpochMetrics::val_loss, true},
         {"test", "#2ca02c", &EpochMetrics::test_loss, true}});
  panel(s, 390, "accuracy", history,
        {{"train", "#1f77b4", &EpochMetrics::train_accuracy, false},
         {"validation", "#d62728", &EpochMetrics::val_accuracy, true},
         {"test", "#2ca02c", &EpochMetrics::test_accuracy, true}});
  s << "</svg>\n";
  return s.str();
}

}  // namespace tapegrad
