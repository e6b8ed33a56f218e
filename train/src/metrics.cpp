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
  s << "epoch,train_loss,train_accuracy,val_loss,val_accuracy,lr,seconds,samples_per_second\n";
  for (const EpochMetrics& m : history)
    s << m.epoch << ',' << m.train_loss << ',' << m.train_accuracy << ',' << m.val_loss << ','
      << m.val_accuracy << ',' << m.lr << ',' << m.seconds << ',' << m.samples_per_second << '\n';
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
    std::string field[8];
    for (std::string& f : field) row >> f;
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
    history.push_back(m);
  }
  return history;
}

namespace {

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
  for (int t = 0; t <= 4; ++t) {
    const double v = lo + (hi - lo) * t / 4;
    s << "<text x='" << left - 6 << "' y='" << py(v) + 4 << "' text-anchor='end' font-size='11'>"
      << std::fixed;
    s.precision(3);
    s << v << "</text>\n";
    s.unsetf(std::ios::fixed);
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
         {"validation", "#d62728", &EpochMetrics::val_loss, true}});
  panel(s, 390, "accuracy", history,
        {{"train", "#1f77b4", &EpochMetrics::train_accuracy, false},
         {"validation", "#d62728", &EpochMetrics::val_accuracy, true}});
  s << "</svg>\n";
  return s.str();
}

}  // namespace tapegrad
