// Every built-in differentiable op.
#pragma once

#include "tapegrad/autodiff/binary.hpp"
#include "tapegrad/autodiff/conv.hpp"
#include "tapegrad/autodiff/elementwise.hpp"
#include "tapegrad/autodiff/losses.hpp"
#include "tapegrad/autodiff/matmul.hpp"
#include "tapegrad/autodiff/normalization.hpp"
#include "tapegrad/autodiff/pool.hpp"
#include "tapegrad/autodiff/reduce.hpp"
#include "tapegrad/autodiff/reshape.hpp"
#include "tapegrad/autodiff/softmax.hpp"
#include "tapegrad/autodiff/threads.hpp"
