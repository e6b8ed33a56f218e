// The trainer flushes denormals while it trains (TrainOptions::flush_denormal) and gives the
// caller's mode back afterwards.
#include <sstream>

#include "helpers.hpp"
#include "tapegrad/autodiff/threads.hpp"
#include "tapegrad/layers/activations.hpp"
#include "tapegrad/layers/layers.hpp"
#include "tapegrad/train/trainer.hpp"

using namespace tapegrad;

namespace {
// An identity layer that notes, at each forward pass, whether denormals are being flushed.
class DenormalProbe : public nn::Identity<float> {
 public:
  Var<float> forward(const Var<float>& x) override {
    (flush_denormal() ? flushed : kept) += 1;
    return x;
  }
  int flushed = 0, kept = 0;
};

Dataset two_classes() {
  Dataset d;
  d.inputs = Tensor<float>(Shape{8, 2});
  d.classes = 2;
  for (std::size_t i = 0; i < 8; ++i) {
    d.inputs[2 * i] = i % 2 ? 1.f : -1.f;
    d.inputs[2 * i + 1] = 0.5f;
    d.labels.push_back(static_cast<std::int64_t>(i % 2));
  }
  return d;
}
}  // namespace

TEST_CASE("trainer: flushes denormals while training unless told not to, then restores the mode") {
  const Dataset data = two_classes();
  for (bool flush : {true, false})
    for (bool caller : {false, true}) {
      CAPTURE(flush);
      CAPTURE(caller);
      nn::Generator g(1);
      auto model = std::make_shared<nn::Sequential<float>>();
      auto probe = std::make_shared<DenormalProbe>();
      model->add(probe);
      model->add(std::make_shared<nn::Linear<float>>(2, 2, true, g));
      TrainOptions o;
      o.epochs = 1;
      o.batch_size = 4;
      o.flush_denormal = flush;
      o.progress = TrainOptions::Progress::none;
      std::ostringstream sink;
      o.log = &sink;
      const bool supported = set_flush_denormal(caller);
      train_classifier(*model, data, nullptr, o);
      if (!supported) continue;                  // no such mode on this CPU: nothing to see
      CHECK(probe->flushed + probe->kept >= 2);  // two training batches at least
      CHECK((flush ? probe->kept : probe->flushed) == 0);
      CHECK(flush_denormal() == caller);
    }
  set_flush_denormal(false);
}
