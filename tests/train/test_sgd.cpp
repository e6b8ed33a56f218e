// SGD follows PyTorch's update rules; learning-rate schedules.
#include <iterator>
#include <utility>

#include "helpers.hpp"
#include "tapegrad/train/schedule.hpp"
#include "tapegrad/train/sgd.hpp"

using namespace tapegrad;

TEST_CASE("sgd: three steps match torch.optim.SGD for each option set") {
  // Reference values printed by PyTorch 1.13 (float64) for L = Σ p³ + Σ c ⊙ p, c = [1, 2, 3],
  // p₀ = [1, −2, 0.5], three steps.
  struct Case {
    SgdOptions options;
    double expected[3];
  };
  const Case cases[] = {
      {{0.1, 0, 0, false, 0}, {0.24590079999999997, -22.2549872, -0.4893737792968751}},
      {{0.1, 0.9, 0, false, 0}, {-0.5795072, -33.7698752, -1.475401123046875}},
      {{0.1, 0.9, 0, true, 0.01}, {-0.9407787136820649, -220.75853849170497, -2.9150050220017203}},
      {{0.05, 0.5, 0.3, false, 0.1},
       {0.4116261172491921, -6.055281061580026, -0.11313459533902627}},
  };
  for (const Case& c : cases) {
    Var<double> p = Var<double>::parameter(Tensor<double>({3}, {1.0, -2.0, 0.5}));
    const Var<double> coef(Tensor<double>({3}, {1, 2, 3}));
    SGD<double> opt({p}, c.options);
    for (int step = 0; step < 3; ++step) {
      opt.zero_grad();
      sum(p * p * p + coef * p).backward();
      opt.step();
    }
    for (std::size_t k = 0; k < 3; ++k)
      CHECK(p.value()[k] == doctest::Approx(c.expected[k]).epsilon(1e-12));
    CHECK(opt.state().counts == std::vector<std::pair<std::string, std::uint64_t>>{{"0.step", 3}});
  }
}

TEST_CASE("sgd: invalid options are refused with a reason") {
  Var<float> p = Var<float>::parameter(Tensor<float>::zeros({2}));
  CHECK(test::error_of([&] {
          SGD<float>({p}, {0.1, 0.0, 0.0, true, 0.0});
        }).find("Nesterov") != std::string::npos);
  CHECK(test::error_of([&] {
          SGD<float>({p}, {-1.0, 0.0, 0.0, false, 0.0});
        }).find("learning rate") != std::string::npos);
  Var<float> q = p * 2.f;
  CHECK(test::error_of([&] { SGD<float>({q}, {}); }).find("not a leaf") != std::string::npos);
}

TEST_CASE("sgd: momentum state can be saved and restored to continue identically") {
  auto run = [](int steps, SGD<double>* resume_from, Var<double>& p) {
    SGD<double> opt({p}, {0.05, 0.9, 0.0, true, 0.0});
    if (resume_from) opt.load_state(resume_from->state());
    for (int i = 0; i < steps; ++i) {
      opt.zero_grad();
      sum(p * p * p).backward();
      opt.step();
    }
    return opt;
  };
  Var<double> a = Var<double>::parameter(Tensor<double>({2}, {0.7, -0.3}));
  run(6, nullptr, a);
  Var<double> b = Var<double>::parameter(Tensor<double>({2}, {0.7, -0.3}));
  SGD<double> first = run(3, nullptr, b);
  run(3, &first, b);
  test::check_close(b.value(), a.value(), 0);
}

TEST_CASE("schedule: step, cosine and warm-up rates") {
  const LrSchedule step = LrSchedule::parse("step:2:0.1");
  CHECK(step.lr_at(1.0, 0, 100, 10) == 1.0);
  CHECK(step.lr_at(1.0, 19, 100, 10) == 1.0);
  CHECK(step.lr_at(1.0, 20, 100, 10) == doctest::Approx(0.1));
  CHECK(step.lr_at(1.0, 45, 100, 10) == doctest::Approx(0.01));
  const LrSchedule cosine = LrSchedule::parse("cosine:0.1");
  CHECK(cosine.lr_at(1.0, 0, 100, 10) == doctest::Approx(1.0));
  CHECK(cosine.lr_at(1.0, 50, 100, 10) == doctest::Approx(0.55));
  CHECK(cosine.lr_at(1.0, 100, 100, 10) == doctest::Approx(0.1));
  const LrSchedule warm = LrSchedule::parse("constant,warmup:10");
  CHECK(warm.lr_at(2.0, 0, 100, 10) == doctest::Approx(0.2));
  CHECK(warm.lr_at(2.0, 5, 100, 10) == doctest::Approx(1.1));
  CHECK(warm.lr_at(2.0, 10, 100, 10) == doctest::Approx(2.0));
  CHECK(test::error_of([] { LrSchedule::parse("linear"); }).find("\"linear\"") !=
        std::string::npos);
  CHECK(test::error_of([] { LrSchedule::parse("step:x"); }).find("\"x\" is not") !=
        std::string::npos);
}

TEST_CASE("schedule: step decay after a warm-up counts its epochs from the warm-up's end") {
  // PyTorch 1.13's learning rates over 50 steps (7 per epoch) for SGD(lr=0.1) with
  // SequentialLR([LinearLR(start_factor=0.1, total_iters=5), StepLR(step_size=2·7, gamma=0.1)],
  // milestones=[5]), both stepped once per step: each rate holds from its step to the next entry's
  // (the last entry only ends the list).
  const std::pair<std::size_t, double> torch_lr[] = {
      {0, 0.010000000000000002},    {1, 0.028000000000000004},
      {2, 0.046000000000000006},    {3, 0.064000000000000001},
      {4, 0.082000000000000003},    {5, 0.10000000000000001},
      {19, 0.010000000000000002},   {33, 0.0010000000000000002},
      {47, 0.00010000000000000003}, {50, 0}};
  const LrSchedule s = LrSchedule::parse("step:2:0.1,warmup:5");
  for (std::size_t i = 0; i + 1 < std::size(torch_lr); ++i)
    for (std::size_t step = torch_lr[i].first; step < torch_lr[i + 1].first; ++step) {
      INFO("step " << step);
      CHECK(s.lr_at(0.1, step, 50, 7) == doctest::Approx(torch_lr[i].second).epsilon(1e-12));
    }
}

TEST_CASE("schedule: exponential decay per epoch, as ExponentialLR") {
  const LrSchedule s = LrSchedule::parse("exponential:0.9");
  // PyTorch 1.13's ExponentialLR(gamma=0.9) over epochs 0..3: 1, 0.9, 0.81, 0.729.
  const double expected[] = {1.0, 0.9, 0.81, 0.7290000000000001};
  for (std::size_t epoch = 0; epoch < 4; ++epoch) {
    CHECK(s.lr_at(1.0, epoch * 10, 40, 10) == doctest::Approx(expected[epoch]).epsilon(1e-15));
    CHECK(s.lr_at(1.0, epoch * 10 + 9, 40, 10) == doctest::Approx(expected[epoch]).epsilon(1e-15));
  }
  CHECK(LrSchedule::parse("exponential").gamma == 0.9);
}

TEST_CASE("schedule: reduce on plateau follows ReduceLROnPlateau epoch by epoch") {
  const LrSchedule s = LrSchedule::parse("plateau:0.5:2:0.1");
  LrSchedule with_cooldown = s;
  with_cooldown.cooldown = 1;
  const double losses[] = {1.0, 0.9, 0.9, 0.95, 0.9, 0.89995, 0.8, 0.8, 0.8, 0.8, 0.8,
                           0.8, 0.8, 0.8, 0.8,  0.8, 0.8,     0.8, 0.8, 0.8, NAN, 0.1};
  // PyTorch 1.13: ReduceLROnPlateau(factor=0.5, patience=2, cooldown=1, min_lr=0.1), lr 1,
  // scheduler.step(loss) after each epoch; the rate then:
  const double expected[] = {1.0,  1.0,  1.0,   1.0,   0.5,   0.5,   0.5, 0.5, 0.5, 0.25, 0.25,
                             0.25, 0.25, 0.125, 0.125, 0.125, 0.125, 0.1, 0.1, 0.1, 0.1,  0.1};
  PlateauState state;
  for (std::size_t e = 0; e < sizeof losses / sizeof losses[0]; ++e) {
    state.observe(losses[e], with_cooldown);
    CHECK(with_cooldown.lr_at(1.0, 0, 100, 10, state.reductions) == expected[e]);
  }
  CHECK_THROWS_WITH(LrSchedule::parse("plateau:2"),
                    "schedule \"plateau:2\": the plateau factor must be < 1");
}
