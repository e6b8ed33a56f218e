// xtensor interop, and xtensor-blas as an independent oracle for matmul's BLAS path.
#include <xtensor-blas/xlinalg.hpp>
#include <xtensor/xrandom.hpp>

#include "helpers.hpp"
#include "tapegrad/xtensor.hpp"

using namespace tapegrad;

TEST_CASE("xtensor: a Tensor viewed as an xtensor expression and back") {
  Tensor<float> t({2, 3}, {1, 2, 3, 4, 5, 6});
  auto view = as_xtensor(t);
  CHECK(view(1, 2) == 6.f);
  view(0, 0) = 10.f;  // writes through: no copy
  CHECK(t[0] == 10.f);
  const Tensor<float> back = from_xtensor(xt::transpose(view) * 2.f);
  CHECK(back.shape() == Shape{3, 2});
  CHECK(back.at({2, 1}) == 12.f);
}

TEST_CASE("xtensor: matmul and its gradients agree with xt::linalg::dot in float and double") {
  const Tensor<double> a = test::random_tensor({64, 96}, 81), b = test::random_tensor({96, 48}, 82);
  const Tensor<double> g = test::random_tensor({64, 48}, 83);
  Var<double> av = Var<double>::parameter(a), bv = Var<double>::parameter(b);
  Var<double> c = matmul(av, bv);
  const auto xa = as_xtensor(a), xb = as_xtensor(b), xg = as_xtensor(g);
  test::check_close(c.value(), from_xtensor(xt::linalg::dot(xa, xb)), 1e-12);
  c.backward(g);
  test::check_close(av.grad(), from_xtensor(xt::linalg::dot(xg, xt::transpose(xb))), 1e-12);
  test::check_close(bv.grad(), from_xtensor(xt::linalg::dot(xt::transpose(xa), xg)), 1e-12);

  Tensor<float> af(a.shape()), bf(b.shape());
  std::copy(a.begin(), a.end(), af.begin());
  std::copy(b.begin(), b.end(), bf.begin());
  const Tensor<float> cf = matmul(Var<float>(af), Var<float>(bf)).value();
  test::check_close(cf, from_xtensor(xt::linalg::dot(as_xtensor(af), as_xtensor(bf))), 1e-5);
}
