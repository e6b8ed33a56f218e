// Everything in tapegrad: tensors, the tape, the ops, the custom-op API and gradcheck.
#pragma once

#include "tapegrad/autodiff/functional.hpp"
#include "tapegrad/autodiff/grad.hpp"
#include "tapegrad/autodiff/gradcheck.hpp"
#include "tapegrad/autodiff/op.hpp"
#include "tapegrad/autodiff/ops.hpp"
#include "tapegrad/autodiff/tape.hpp"
#include "tapegrad/autodiff/tensor.hpp"
#include "tapegrad/autodiff/var.hpp"
