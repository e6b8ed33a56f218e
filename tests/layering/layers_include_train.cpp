// Compiled against tapegrad::layers alone by the test build.layering: layers must not see train.
#include "tapegrad/train/trainer.hpp"
