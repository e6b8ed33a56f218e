// The profiler's FLOP counts: 2·m·n·k per product, forward and backward, for matmul, linear and
// conv1d (direct and im2col paths); none for ops that report none; mark() drops stray reports.
#include <sstream>

#include "helpers.hpp"
#include "tapegrad/autodiff/profiler.hpp"

using namespace tapegrad;

namespace {
const Profiler::OpStats& row(const std::vector<Profiler::OpStats>& rows, const std::string& op) {
  for (const auto& r : rows)
    if (r.op == op) return r;
  FAIL("no row for " << op);
  return rows.front();
}
}  // namespace

TEST_CASE("profiler flops: matmul counts 2mnk forward and the two products backward") {
  Var<float> a = Var<float>::parameter(Tensor<float>({3, 5}));
  Var<float> b = Var<float>::parameter(Tensor<float>({5, 7}));
  Profiler prof;
  sum(matmul(a, b)).backward();
  prof.stop();
  const auto rows = prof.stats();
  const Profiler::OpStats& mm = row(rows, "matmul");
  CHECK(mm.forward_flops == 2.0 * 3 * 5 * 7);
  CHECK(mm.backward_flops == 2 * 2.0 * 3 * 5 * 7);
  CHECK(row(rows, "sum").total_flops() == 0);
  CHECK(prof.total_flops() == 3 * 2.0 * 3 * 5 * 7);
}

TEST_CASE("profiler flops: linear on a constant input counts no input gradient") {
  Var<float> x(Tensor<float>({4, 6}));
  Var<float> w = Var<float>::parameter(Tensor<float>({2, 6}));
  Var<float> bias = Var<float>::parameter(Tensor<float>({2}));
  Profiler prof;
  sum(linear(x, w, bias)).backward();
  prof.stop();
  const auto rows = prof.stats();  // row() returns a reference into it
  const Profiler::OpStats& lin = row(rows, "linear");
  CHECK(lin.forward_flops == 2.0 * 4 * 6 * 2);
  CHECK(lin.backward_flops == 2.0 * 4 * 6 * 2);  // the weight gradient only
}

TEST_CASE("profiler flops: conv1d counts each pass, at stride 1 and 2") {
  for (std::size_t stride : {1, 2}) {
    CAPTURE(stride);
    Var<float> x = Var<float>::parameter(Tensor<float>({2, 3, 16}));
    Var<float> w = Var<float>::parameter(Tensor<float>({4, 3, 5}));
    Profiler prof;
    Var<float> y = conv1d(x, w, Var<float>(), stride, 2);
    const std::size_t l_out = y.shape()[2];
    sum(y).backward();
    prof.stop();
    const auto rows = prof.stats();  // row() returns a reference into it
    const Profiler::OpStats& c = row(rows, "conv1d");
    const double pass = 2.0 * 2 * 4 * static_cast<double>(l_out) * 3 * 5;
    CHECK(c.forward_flops == pass);
    CHECK(c.backward_flops == 2 * pass);
  }
}

TEST_CASE("profiler flops: mark() drops FLOP reported outside an op; off, nothing is kept") {
  detail::profile_flops(1e9);  // no profiler: nothing to record
  Var<float> a = Var<float>::parameter(Tensor<float>({2, 2}));
  Profiler prof;
  detail::profile_flops(123);
  Profiler::mark();
  Var<float> r = relu(a);
  prof.stop();
  CHECK(prof.total_flops() == 0);
  std::ostringstream out;
  prof.print(out);
  CHECK(out.str().find("gflop/s") != std::string::npos);
}
