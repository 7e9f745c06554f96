// A loss written by the user with engine ops, its gradient, and an exact Hessian-vector
// product (the second derivative the autograd tape gives by differentiating the
// gradient again), checked against central finite differences in f64:
//   <grad L(w), v>  vs  (L(w + e v) - L(w - e v)) / 2e
//   H(w) v          vs  (grad L(w + e v) - grad L(w - e v)) / 2e
// The loss: logistic regression on random data with a quartic penalty,
//   L(w) = mean_i log(1 + exp(-y_i x_i.w)) + 0.01 sum_j w_j^4.
// Exits non-zero when either relative error is above 1e-6.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <vector>

#include <dmix/dmix.h>

using namespace dmix;

double max_abs_diff(const Tensor& a, const Tensor& b, double* scale) {
  const std::vector<double> x = a.to_vector<double>(), y = b.to_vector<double>();
  double diff = 0, largest = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    diff = std::max(diff, std::abs(x[i] - y[i]));
    largest = std::max(largest, std::abs(x[i]));
  }
  *scale = largest;
  return diff;
}

int main() try {
  Generator gen(42);
  const int64_t n = 64, d = 6;
  const Tensor X = gen.normal({n, d}, 0.0, 1.0, DType::f64);
  const Tensor y = sign(gen.normal({n, 1}, 0.0, 1.0, DType::f64));  // labels -1 / +1
  const auto loss_at = [&](const Tensor& w) {
    const Tensor margin = y * matmul(X, w);
    return mean(log(exp(-margin) + 1.0)) + sum(pow(w, 4.0)) * 0.01;
  };
  const auto grad_at = [&](const Tensor& w) { return autograd::grad({loss_at(w)}, {w})[0]; };
  const auto leaf = [](const Tensor& t) { return t.detach().clone().set_requires_grad(true); };

  Tensor w = leaf(gen.normal({d, 1}, 0.0, 0.5, DType::f64));
  const Tensor v = gen.normal({d, 1}, 0.0, 1.0, DType::f64);
  const double e = 1e-5;

  const Tensor g = grad_at(w);
  const Tensor Hv = autograd::hvp([&] { return loss_at(w); }, {w}, {v})[0];

  const double directional = sum(g * v).item();
  const double directional_fd = (loss_at(leaf(w + v * e)).item() - loss_at(leaf(w - v * e)).item()) / (2 * e);
  const double grad_error = std::abs(directional - directional_fd) / std::max(std::abs(directional), 1e-12);

  const Tensor Hv_fd = (grad_at(leaf(w + v * e)) - grad_at(leaf(w - v * e))) / (2 * e);
  double scale = 0;
  const double hvp_error = max_abs_diff(Hv, Hv_fd, &scale) / std::max(scale, 1e-12);

  std::printf("loss %.6f, |grad| %.4g\n", loss_at(w).item(), std::sqrt(sum(g * g).item()));
  std::printf("gradient: <g, v> = %.10f, finite difference %.10f, relative error %.2e\n", directional, directional_fd,
              grad_error);
  std::printf("Hessian-vector product: max |Hv| %.4g, relative error vs finite difference of gradients %.2e\n", scale,
              hvp_error);
  const bool ok = grad_error < 1e-6 && hvp_error < 1e-6;
  std::printf("%s\n", ok ? "ok" : "FAILED: error above 1e-6");
  return ok ? 0 : 1;
} catch (const std::exception& e) {
  std::fprintf(stderr, "hessian_vector_product: %s\n", e.what());
  return 1;
}
