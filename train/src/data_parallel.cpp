#include "tapegrad/train/data_parallel.hpp"

#include <cstdlib>

namespace tapegrad {

std::size_t launcher_world_size() {
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE"}) {
    const char* value = std::getenv(name);
    if (!value || !*value) continue;
    char* end = nullptr;
    const unsigned long long n = std::strtoull(value, &end, 10);
    if (*end == '\0' && n > 0) return static_cast<std::size_t>(n);
  }
  return 1;
}

}  // namespace tapegrad
