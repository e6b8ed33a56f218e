// Private text helpers of train/.
#pragma once

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

}  // namespace tapegrad::detail
