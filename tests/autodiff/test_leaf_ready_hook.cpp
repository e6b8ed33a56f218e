// detail::leaf_ready_hook: the reverse pass reports the records it walks, and after each one it
// has passed, every leaf whose lowest-index using record is at or above it holds its final
// gradient.
#include <doctest/doctest.h>

#include <vector>

#include "helpers.hpp"

using namespace tapegrad;

namespace {

struct Watch {
  std::vector<Var<float>> leaves;
  std::vector<std::size_t> first_use;  // per leaf
  std::vector<Tensor<float>> seen;     // per leaf: its gradient when reported final
  std::size_t begun = 0, count = 0;
  std::vector<std::size_t> done;
};

}  // namespace

TEST_CASE("leaf_ready_hook: a leaf's gradient is final once its lowest-index record is passed") {
  Var<float> w1 = Var<float>::parameter(test::random_tensor<float>({3, 4}, 1));
  Var<float> w2 = Var<float>::parameter(test::random_tensor<float>({4, 2}, 2));
  Var<float> b = Var<float>::parameter(test::random_tensor<float>({2}, 3));
  const Var<float> x(test::random_tensor<float>({5, 3}, 4));
  Watch watch;
  watch.leaves = {w1, w2, b};
  watch.seen.resize(3);
  detail::LeafReadyHook<float> hook;
  hook.context = &watch;
  hook.begin = [](void* c, const Record<float>* records, std::size_t count) {
    Watch& w = *static_cast<Watch*>(c);
    ++w.begun;
    w.count = count;
    w.first_use.assign(w.leaves.size(), count);
    for (std::size_t i = count; i-- > 0;)
      for (std::size_t k = 0; k < records[i].input_count; ++k)
        for (std::size_t l = 0; l < w.leaves.size(); ++l)
          if (records[i].inputs[k].get() == w.leaves[l].node()) w.first_use[l] = i;
  };
  hook.done = [](void* c, std::size_t record) {
    Watch& w = *static_cast<Watch*>(c);
    w.done.push_back(record);
    for (std::size_t l = 0; l < w.leaves.size(); ++l)
      if (w.first_use[l] == record) w.seen[l] = w.leaves[l].grad();  // a copy, now
  };
  // w1 is used twice, far apart: its first use is the lowest record of the graph.
  Var<float> h = relu(matmul(x, w1));
  Var<float> y = matmul(h, w2) + b;
  Var<float> loss = sum(y * y) + sum(matmul(x, w1));
  detail::leaf_ready_hook<float> = &hook;
  loss.backward();
  detail::leaf_ready_hook<float> = nullptr;
  CHECK(watch.begun == 1);
  REQUIRE(watch.count > 0);
  REQUIRE(watch.done.size() == watch.count);
  for (std::size_t j = 0; j < watch.done.size(); ++j)
    CHECK(watch.done[j] == watch.count - 1 - j);  // every record, newest first
  for (std::size_t l = 0; l < 3; ++l) {
    REQUIRE(watch.seen[l].defined());
    CHECK(test::bit_identical(watch.seen[l], watch.leaves[l].grad()));
  }
  // Unset: nothing is called.
  Var<float> again = sum(matmul(x, w1));
  again.backward();
  CHECK(watch.begun == 1);
}
