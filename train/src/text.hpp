// Private text helpers of train/.
#pragma once

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace tapegrad::detail {

// The fields of `s` between separators (empty fields kept): "a:b:" → {"a", "b", ""}.
inline std::vector<std::string> split(const std::string& s, char separator) {
  std::vector<std::string> parts;
  std::size_t start = 0;
  for (std::size_t i = 0; i <= s.size(); ++i)
    if (i == s.size() || s[i] == separator) {
      parts.push_back(s.substr(start, i - start));
      start = i + 1;
    }
  return parts;
}

// How a non-finite value reads in error messages: "nan", "inf" or "-inf".
inline const char* non_finite_text(double v) {
  return std::isnan(v) ? "nan" : v > 0 ? "inf" : "-inf";
}

// A double as exact text (hexadecimal floating point), so it reads back bit for bit.
inline std::string exact_text(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%a", v);
  return buf;
}

// Numbers as comma-separated exact text ("" for none).
template <class T>
std::string exact_list(const std::vector<T>& values) {
  std::string out;
  for (std::size_t i = 0; i < values.size(); ++i) out += (i ? "," : "") + exact_text(values[i]);
  return out;
}

// Parses what exact_list wrote (any decimal or hexadecimal numbers, NaN and infinities
// included); false if a field is empty or malformed.
inline bool parse_number_list(const std::string& text, std::vector<double>& out) {
  out.clear();
  if (text.empty()) return true;
  for (const std::string& f : split(text, ',')) {
    char* end = nullptr;
    const double v = std::strtod(f.c_str(), &end);
    if (f.empty() || *end != '\0') return false;
    out.push_back(v);
  }
  return true;
}

}  // namespace tapegrad::detail
