// Compiled against tapegrad::autodiff alone by the test build.layering: autodiff must not see
// layers.
#include "tapegrad/layers/module.hpp"
