// Private text helpers of train/.
#pragma once

#include <cmath>
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

}  // namespace tapegrad::detail
