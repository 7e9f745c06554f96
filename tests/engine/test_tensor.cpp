// Tensor handles: shapes, dtypes, views sharing storage, copies, device errors.
#include <doctest/doctest.h>

#include "engine/host_allocator.h"
#include "engine/ops.h"

using namespace dmix;

TEST_CASE("tensor: creation, shape and dtype") {
  Tensor t = Tensor::full({2, 3}, 1.5);
  CHECK(t.shape() == Shape{2, 3});
  CHECK(t.numel() == 6);
  CHECK(t.dtype() == DType::f32);
  CHECK(t.size(-1) == 3);
  CHECK(t.to_vector<float>() == std::vector<float>(6, 1.5f));
  CHECK(t.str() == "f32[2, 3] cpu");
  CHECK_THROWS_AS(t.size(2), Error);
  CHECK_THROWS_AS(t.data<double>(), Error);
  CHECK(Tensor::arange(4).to_vector<int64_t>() == std::vector<int64_t>{0, 1, 2, 3});
}

TEST_CASE("tensor: reshape is a view sharing storage; clone is a copy") {
  Tensor t = Tensor::zeros({2, 6});
  Tensor v = t.reshape({3, -1});
  CHECK(v.shape() == Shape{3, 4});
  Tensor c = t.clone();
  autograd::NoGradGuard g;
  t.fill_(2.0);
  CHECK(v.to_vector<float>()[5] == 2.0f);
  CHECK(c.to_vector<float>()[5] == 0.0f);
  CHECK_THROWS_AS(t.reshape({5, -1}), Error);
  CHECK(t.flatten().shape() == Shape{2, 6});
}

TEST_CASE("tensor: dtype conversion round trips and is differentiable between floats") {
  Tensor i = Tensor::from_vector<int64_t>({1, -2, 3}, {3});
  CHECK(i.to(DType::f32).to_vector<float>() == std::vector<float>{1, -2, 3});
  Tensor x = Tensor::from_vector<double>({0.5, 1.5}, {2}).set_requires_grad();
  sum(mul(x.to(DType::f32), x.to(DType::f32))).backward();
  CHECK(x.grad().dtype() == DType::f64);
  CHECK(x.grad().to_vector<double>() == std::vector<double>{1.0, 3.0});
}

TEST_CASE("tensor: from_blob wraps caller memory without copying") {
  std::vector<float> buf = {1, 2, 3, 4};
  Tensor t = Tensor::from_blob(buf.data(), {2, 2}, DType::f32);
  buf[3] = 9;
  CHECK(t.to_vector<float>()[3] == 9.0f);
}

TEST_CASE("tensor: a GPU request without a GPU is one clear error") {
  if (cuda_available()) return;  // this case is about machines without a GPU
  CHECK_THROWS_AS(Tensor::zeros({2}, DType::f32, Device::cuda(0)), Error);
  CHECK_THROWS_WITH_AS(Device::parse("gpu0"), "device: unknown device 'gpu0' (expected cpu, cuda or cuda:N)", Error);
  CHECK(Device::parse("cuda:1") == Device::cuda(1));
}

TEST_CASE("tensor: large host blocks are reused instead of fresh pages every step") {
  host_empty_cache();
  const auto before = host_memory_stats();
  for (int i = 0; i < 5; ++i) Tensor::zeros({1 << 20});  // 4 MiB, freed at the end of each iteration
  const auto after = host_memory_stats();
  CHECK(after.misses - before.misses == 1);
  CHECK(after.hits - before.hits == 4);
  Tensor t = Tensor::full({1 << 20}, 3.0);
  CHECK(t.to_vector<float>()[12345] == 3.0f);  // a reused block is fully rewritten
}
