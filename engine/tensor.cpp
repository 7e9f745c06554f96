#include "engine/tensor.h"

#include <cstdlib>
#include <cstring>
#include <sstream>

#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/host_allocator.h"
#include "engine/ops/common.h"
#include "engine/ops/elementwise.h"
#include "kernels/cpu/elementwise.h"
#include "kernels/cuda/build_config.h"
#include "kernels/cuda/elementwise.h"
#include "kernels/cuda/runtime.h"

namespace dmix {

std::string shape_str(const Shape& s) {
  std::ostringstream os;
  os << "[";
  for (size_t i = 0; i < s.size(); ++i) os << (i ? ", " : "") << s[i];
  os << "]";
  return os.str();
}

int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

// ---- Storage ----------------------------------------------------------------------

Storage::Storage(size_t bytes, Device device) : bytes_(bytes), device_(device) {
  if constexpr (kernels::cuda::kBuilt) {
    if (device.is_cuda()) {
      data_ = kernels::cuda::allocate(bytes, device.index);
      return;
    }
  }
  check_device("Storage", device);
  data_ = host_allocate(bytes);  // 64-byte aligned for AVX-512 loads
}

Storage::~Storage() {
  if (!owned_ || !data_) return;
  if constexpr (kernels::cuda::kBuilt) {
    if (device_.is_cuda()) {
      // A destructor must not throw; a failed release (driver gone at exit) only leaks.
      try {
        kernels::cuda::release(data_, device_.index);
      } catch (...) {
      }
      return;
    }
  }
  host_release(data_, bytes_);
}

// ---- creation -----------------------------------------------------------------------

namespace {

void check_shape(const char* op, const Shape& shape) {
  for (int64_t d : shape) check(d >= 0, op, "negative size in shape ", shape_str(shape));
}

// Calls fill(p, v) with p the buffer `data` typed as `dtype` and v `value` in that type:
// a CPU or a CUDA fill kernel.
template <class Fill>
void fill_typed(void* data, DType dtype, double value, Fill&& fill) {
  switch (dtype) {
    case DType::f32: return fill(static_cast<float*>(data), static_cast<float>(value));
    case DType::f64: return fill(static_cast<double*>(data), value);
    case DType::i64: return fill(static_cast<int64_t*>(data), static_cast<int64_t>(value));
    case DType::u8: return fill(static_cast<uint8_t*>(data), static_cast<uint8_t>(value));
    default: fail("fill", "unsupported dtype ", dtype_name(dtype));
  }
}

// Calls convert(x, y) with x and y the buffers typed as `from` and `to`: a CPU or a CUDA
// conversion kernel.
template <class From, class Convert>
void convert_to(const From* x, void* y, DType to, Convert&& convert) {
  switch (to) {
    case DType::f32: return convert(x, static_cast<float*>(y));
    case DType::f64: return convert(x, static_cast<double*>(y));
    case DType::i64: return convert(x, static_cast<int64_t*>(y));
    case DType::u8: return convert(x, static_cast<uint8_t*>(y));
    default: fail("to", "unsupported dtype ", dtype_name(to));
  }
}

template <class Convert>
void convert_typed(const void* x, DType from, void* y, DType to, Convert&& convert) {
  switch (from) {
    case DType::f32: return convert_to(static_cast<const float*>(x), y, to, convert);
    case DType::f64: return convert_to(static_cast<const double*>(x), y, to, convert);
    case DType::i64: return convert_to(static_cast<const int64_t*>(x), y, to, convert);
    case DType::u8: return convert_to(static_cast<const uint8_t*>(x), y, to, convert);
    default: fail("to", "unsupported dtype ", dtype_name(from));
  }
}

// y = x in y's dtype, elementwise; both on x's device.
void convert_elements(const Tensor& x, const Tensor& y) {
  const int64_t n = x.numel();
  if constexpr (kernels::cuda::kBuilt) {
    if (x.is_cuda()) {
      const int device = x.device().index;
      return convert_typed(x.raw_data(), x.dtype(), y.raw_data(), y.dtype(),
                           [&](auto* from, auto* to) { kernels::cuda::convert(from, to, n, device); });
    }
  }
  convert_typed(x.raw_data(), x.dtype(), y.raw_data(), y.dtype(),
                [&](auto* from, auto* to) { kernels::cpu::convert(from, to, n); });
}

void copy_bytes(void* dst, Device dst_dev, const void* src, Device src_dev, size_t bytes) {
  if (bytes == 0) return;
  if constexpr (kernels::cuda::kBuilt) {
    namespace cu = kernels::cuda;
    if (dst_dev.is_cuda() && src_dev.is_cpu()) return cu::copy_host_to_device(dst, src, bytes, dst_dev.index);
    if (dst_dev.is_cpu() && src_dev.is_cuda()) return cu::copy_device_to_host(dst, src, bytes, src_dev.index);
    if (dst_dev.is_cuda()) {
      check(dst_dev == src_dev, "copy", "copies between two GPUs are not supported yet (", src_dev, " -> ", dst_dev,
            ")");
      return cu::copy_device_to_device(dst, src, bytes, dst_dev.index);
    }
  }
  std::memcpy(dst, src, bytes);
}

}  // namespace

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  check_shape("empty", shape);
  check_device("empty", device);
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::make_shared<Storage>(static_cast<size_t>(shape_numel(shape)) * dtype_size(dtype), device);
  impl->shape = shape;
  impl->dtype = dtype;
  impl->device = device;
  return Tensor(std::move(impl));
}

Tensor Tensor::full(const Shape& shape, double value, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  t.fill_(value);
  return t;
}
Tensor Tensor::zeros(const Shape& shape, DType dtype, Device device) { return full(shape, 0.0, dtype, device); }
Tensor Tensor::ones(const Shape& shape, DType dtype, Device device) { return full(shape, 1.0, dtype, device); }
Tensor Tensor::scalar(double value, DType dtype, Device device) { return full({}, value, dtype, device); }

Tensor Tensor::arange(int64_t n, DType dtype, Device device) {
  std::vector<int64_t> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[i] = i;
  return from_vector(v, {n}).to(dtype).to(device);
}

template <class T>
Tensor Tensor::from_vector(const std::vector<T>& values, const Shape& shape) {
  check(static_cast<int64_t>(values.size()) == shape_numel(shape), "from_vector", values.size(),
        " values do not fill shape ", shape_str(shape));
  Tensor t = empty(shape, dtype_of<T>());
  if (!values.empty()) std::memcpy(t.raw_data(), values.data(), values.size() * sizeof(T));
  return t;
}
template Tensor Tensor::from_vector<float>(const std::vector<float>&, const Shape&);
template Tensor Tensor::from_vector<double>(const std::vector<double>&, const Shape&);
template Tensor Tensor::from_vector<int64_t>(const std::vector<int64_t>&, const Shape&);
template Tensor Tensor::from_vector<uint8_t>(const std::vector<uint8_t>&, const Shape&);

Tensor Tensor::from_blob(void* data, const Shape& shape, DType dtype) {
  check_shape("from_blob", shape);
  check(data != nullptr || shape_numel(shape) == 0, "from_blob", "null data pointer");
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::make_shared<Storage>(data, static_cast<size_t>(shape_numel(shape)) * dtype_size(dtype), Device::cpu());
  impl->shape = shape;
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

// ---- metadata and data ----------------------------------------------------------------

TensorImpl& Tensor::impl() const {
  if (!impl_) throw Error("tensor: use of an undefined tensor");
  return *impl_;
}

int64_t Tensor::size(int64_t d) const {
  const int64_t nd = dim();
  const int64_t w = d < 0 ? d + nd : d;
  check(w >= 0 && w < nd, "size", "dim ", d, " out of range for ", str());
  return impl().shape[w];
}

std::string Tensor::str() const {
  if (!defined()) return "undefined";
  std::ostringstream os;
  os << dtype_name(dtype()) << shape_str(shape()) << " " << device().str();
  return os.str();
}

void* Tensor::raw_data() const {
  const TensorImpl& i = impl();
  return static_cast<char*>(i.storage->data()) + i.offset * static_cast<int64_t>(dtype_size(i.dtype));
}

template <class T>
T* Tensor::data() const {
  check(dtype() == dtype_of<T>(), "data", "asked for ", dtype_name(dtype_of<T>()), " data of ", str());
  return static_cast<T*>(raw_data());
}
template float* Tensor::data<float>() const;
template double* Tensor::data<double>() const;
template int64_t* Tensor::data<int64_t>() const;
template uint8_t* Tensor::data<uint8_t>() const;

template <class T>
std::vector<T> Tensor::to_vector() const {
  check(dtype() == dtype_of<T>(), "to_vector", "asked for ", dtype_name(dtype_of<T>()), " values of ", str());
  std::vector<T> v(static_cast<size_t>(numel()));
  copy_bytes(v.data(), Device::cpu(), raw_data(), device(), nbytes());
  return v;
}
template std::vector<float> Tensor::to_vector<float>() const;
template std::vector<double> Tensor::to_vector<double>() const;
template std::vector<int64_t> Tensor::to_vector<int64_t>() const;
template std::vector<uint8_t> Tensor::to_vector<uint8_t>() const;

double Tensor::item() const {
  check(numel() == 1, "item", "needs a one-element tensor, got ", str());
  Tensor h = to(Device::cpu());
  switch (dtype()) {
    case DType::f32: return *h.data<float>();
    case DType::f64: return *h.data<double>();
    case DType::i64: return static_cast<double>(*h.data<int64_t>());
    case DType::u8: return *h.data<uint8_t>();
    default: fail("item", "unsupported dtype ", dtype_name(dtype()));
  }
}

// ---- views and copies -------------------------------------------------------------------

Tensor Tensor::reshape(const Shape& requested) const {
  Shape shape = requested;
  int64_t known = 1, infer = -1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      check(infer < 0, "reshape", "more than one -1 in ", shape_str(requested));
      infer = static_cast<int64_t>(i);
    } else {
      check(shape[i] >= 0, "reshape", "bad size in ", shape_str(requested));
      known *= shape[i];
    }
  }
  if (infer >= 0) {
    check(known > 0 && numel() % known == 0, "reshape", "cannot infer -1 of ", shape_str(requested), " for ", str());
    shape[infer] = numel() / known;
  }
  check(shape_numel(shape) == numel(), "reshape", "cannot view ", str(), " as ", shape_str(requested));
  auto view = std::make_shared<TensorImpl>();
  view->storage = impl().storage;
  view->offset = impl().offset;
  view->shape = shape;
  view->dtype = dtype();
  view->device = device();
  Tensor out(std::move(view));
  const Shape in_shape = this->shape();
  autograd::record("reshape", {*this}, {out}, [in_shape](const autograd::BackwardContext& ctx) {
    return TensorList{ctx.grad().reshape(in_shape)};
  });
  return out;
}

Tensor Tensor::flatten(int64_t start_dim) const {
  const int64_t nd = dim();
  const int64_t s = start_dim < 0 ? start_dim + nd : start_dim;
  check(s >= 0 && s <= nd, "flatten", "start_dim ", start_dim, " out of range for ", str());
  Shape shape(this->shape().begin(), this->shape().begin() + s);
  int64_t rest = 1;
  for (int64_t d = s; d < nd; ++d) rest *= this->shape()[d];
  shape.push_back(rest);
  return reshape(shape);
}

Tensor Tensor::to(Device target) const {
  if (target == device()) return *this;
  Tensor out = empty(shape(), dtype(), target);
  copy_bytes(out.raw_data(), target, raw_data(), device(), nbytes());
  const Device source = device();
  autograd::record("to_device", {*this}, {out}, [source](const autograd::BackwardContext& ctx) {
    return TensorList{ctx.grad().to(source)};
  });
  return out;
}

Tensor Tensor::to(DType target) const {
  if (target == dtype()) return *this;
  Tensor out = empty(shape(), target, device());
  convert_elements(*this, out);
  const DType source = dtype();
  if (is_floating(source) && is_floating(target)) {
    autograd::record("to_dtype", {*this}, {out}, [source](const autograd::BackwardContext& ctx) {
      return TensorList{ctx.grad().to(source)};
    });
  }
  return out;
}

Tensor Tensor::clone() const {
  Tensor out = empty(shape(), dtype(), device());
  copy_bytes(out.raw_data(), device(), raw_data(), device(), nbytes());
  autograd::record("clone", {*this}, {out}, [](const autograd::BackwardContext& ctx) { return TensorList{ctx.grad()}; });
  return out;
}

Tensor Tensor::detach() const {
  auto view = std::make_shared<TensorImpl>();
  view->storage = impl().storage;
  view->offset = impl().offset;
  view->shape = shape();
  view->dtype = dtype();
  view->device = device();
  return Tensor(std::move(view));
}

// ---- in-place ------------------------------------------------------------------------------

namespace {
void check_inplace(const char* op, const Tensor& t) {
  check(!(autograd::grad_mode_enabled() && t.requires_grad()), op,
        "in-place update of ", t.str(), " which requires grad; wrap it in autograd::NoGradGuard");
}
}  // namespace

const Tensor& Tensor::copy_(const Tensor& src) const {
  check_inplace("copy_", *this);
  check(src.shape() == shape(), "copy_", "shapes differ: ", str(), " <- ", src.str());
  Tensor s = src.dtype() == dtype() ? src : src.detach().to(dtype());
  copy_bytes(raw_data(), device(), s.raw_data(), s.device(), nbytes());
  return *this;
}

const Tensor& Tensor::fill_(double value) const {
  check_inplace("fill_", *this);
  const int64_t n = numel();
  if constexpr (kernels::cuda::kBuilt) {
    if (is_cuda()) {
      const int device_index = device().index;
      fill_typed(raw_data(), dtype(), value, [&](auto* p, auto v) { kernels::cuda::fill(p, v, n, device_index); });
      return *this;
    }
  }
  fill_typed(raw_data(), dtype(), value, [&](auto* p, auto v) { kernels::cpu::fill(p, v, n); });
  return *this;
}

const Tensor& Tensor::add_(const Tensor& other, double alpha) const {
  check_inplace("add_", *this);
  check(other.shape() == shape() && other.dtype() == dtype() && other.device() == device(), "add_",
        "operands differ: ", str(), " += ", other.str());
  check(dtype() == DType::f32 || dtype() == DType::f64, "add_", "expects f32 or f64, got ", str());
  detail::dispatch_float("add_", dtype(), [&](auto tag) {
    using T = decltype(tag);
    if constexpr (kernels::cuda::kBuilt) {
      if (is_cuda()) return kernels::cuda::axpy(T(alpha), other.data<T>(), data<T>(), numel(), device().index);
    }
    kernels::cpu::axpy(T(alpha), other.data<T>(), data<T>(), numel());
  });
  return *this;
}

const Tensor& Tensor::mul_(double factor) const {
  check_inplace("mul_", *this);
  check(dtype() == DType::f32 || dtype() == DType::f64, "mul_", "expects f32 or f64, got ", str());
  detail::dispatch_float("mul_", dtype(), [&](auto tag) {
    using T = decltype(tag);
    if constexpr (kernels::cuda::kBuilt) {
      if (is_cuda()) {
        return kernels::cuda::affine_scalar(data<T>(), T(factor), T(0), data<T>(), numel(), device().index);
      }
    }
    kernels::cpu::affine_scalar(data<T>(), T(factor), T(0), data<T>(), numel());
  });
  return *this;
}

// ---- autograd -------------------------------------------------------------------------------

bool Tensor::requires_grad() const { return impl().requires_grad || impl().grad_fn != nullptr; }

Tensor& Tensor::set_requires_grad(bool on) {
  check(is_leaf(), "set_requires_grad", "only leaves can be marked; ", str(), " was computed by ", impl().grad_fn->op);
  check(!on || is_floating(dtype()), "set_requires_grad", "only float tensors can require grad, got ", str());
  impl().requires_grad = on;
  return *this;
}

Tensor Tensor::grad() const { return impl().grad ? Tensor(impl().grad) : Tensor(); }

void Tensor::set_grad(const Tensor& g) {
  if (g.defined())
    check(g.shape() == shape(), "set_grad", "gradient ", g.str(), " does not match ", str());
  impl().grad = g.impl_ptr();
}

void Tensor::backward(const Tensor& grad_output, bool create_graph) const {
  autograd::backward({*this}, {grad_output}, create_graph);
}

}  // namespace dmix
