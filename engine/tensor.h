// Tensor: a cheap handle to shared, contiguous, row-major storage with a shape, a dtype
// and a device. Copies of a Tensor share everything; reshape() is a free view. Tensors
// that take part in autograd carry the node that produced them (grad_fn) or, for leaves,
// a requires_grad flag and an accumulated .grad().
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/device.h"
#include "engine/dtype.h"

namespace dmix {

using Shape = std::vector<int64_t>;
std::string shape_str(const Shape& s);
int64_t shape_numel(const Shape& s);

namespace autograd { struct Node; }

// Raw memory on one device; freed when the last tensor using it goes away.
class Storage {
 public:
  Storage(size_t bytes, Device device);
  // Non-owning: wraps memory the caller keeps alive (from_blob).
  Storage(void* external, size_t bytes, Device device) : data_(external), bytes_(bytes), device_(device), owned_(false) {}
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }
  Device device() const { return device_; }

 private:
  void* data_ = nullptr;
  size_t bytes_ = 0;
  Device device_;
  bool owned_ = true;
};

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  int64_t offset = 0;  // in elements, for views that start inside the storage
  Shape shape;
  DType dtype = DType::f32;
  Device device;
  // autograd
  bool requires_grad = false;                    // leaves only
  std::shared_ptr<autograd::Node> grad_fn;       // non-leaves: the op that made this tensor
  int output_nr = 0;                             // which output of grad_fn this is
  std::shared_ptr<TensorImpl> grad;              // accumulated gradient of a leaf
};

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // ---- creation (never recorded by autograd) ----
  static Tensor empty(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu());
  static Tensor zeros(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu());
  static Tensor ones(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu());
  static Tensor full(const Shape& shape, double value, DType dtype = DType::f32, Device device = Device::cpu());
  static Tensor scalar(double value, DType dtype = DType::f32, Device device = Device::cpu());
  static Tensor arange(int64_t n, DType dtype = DType::i64, Device device = Device::cpu());
  // Copies host values into a new CPU tensor (T decides the dtype).
  template <class T> static Tensor from_vector(const std::vector<T>& values, const Shape& shape);
  // Wraps caller-owned host memory without copying; the caller keeps it alive.
  static Tensor from_blob(void* data, const Shape& shape, DType dtype);

  // ---- metadata ----
  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const { return impl().shape; }
  int64_t dim() const { return static_cast<int64_t>(impl().shape.size()); }
  int64_t size(int64_t d) const;  // negative d counts from the end
  int64_t numel() const { return shape_numel(impl().shape); }
  DType dtype() const { return impl().dtype; }
  Device device() const { return impl().device; }
  bool is_cpu() const { return device().is_cpu(); }
  bool is_cuda() const { return device().is_cuda(); }
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype()); }
  std::string str() const;  // "f32[2, 3] cpu"

  // ---- data ----
  void* raw_data() const;
  template <class T> T* data() const;  // checks the dtype; CPU or device pointer
  template <class T> std::vector<T> to_vector() const;  // copies to host, checks the dtype
  double item() const;                                  // one-element tensors

  // ---- views and copies ----
  Tensor reshape(const Shape& shape) const;   // free view; differentiable; one -1 allowed
  Tensor flatten(int64_t start_dim = 1) const;
  Tensor to(Device device) const;             // differentiable copy between devices
  Tensor to(DType dtype) const;               // differentiable cast between float types
  Tensor clone() const;                       // differentiable copy
  Tensor contiguous() const { return *this; } // storage is always contiguous
  Tensor detach() const;                      // same storage, cut from the graph

  // ---- in-place, for optimizers and running statistics (never recorded) ----
  // A Tensor is a handle, so these are const: they change the data, not the handle.
  const Tensor& copy_(const Tensor& src) const;
  const Tensor& fill_(double value) const;
  const Tensor& zero_() const { return fill_(0.0); }
  const Tensor& add_(const Tensor& other, double alpha = 1.0) const;  // this += alpha * other (same shape)
  const Tensor& mul_(double factor) const;

  // ---- autograd ----
  bool requires_grad() const;
  Tensor& set_requires_grad(bool on = true);
  bool is_leaf() const { return impl().grad_fn == nullptr; }
  Tensor grad() const;
  void set_grad(const Tensor& g);
  void zero_grad() { impl().grad.reset(); }
  const std::shared_ptr<autograd::Node>& grad_fn() const { return impl().grad_fn; }
  void backward(const Tensor& grad_output = Tensor(), bool create_graph = false) const;

  TensorImpl& impl() const;
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
  bool same(const Tensor& o) const { return impl_ == o.impl_; }

 private:
  std::shared_ptr<TensorImpl> impl_;
};

using TensorList = std::vector<Tensor>;

}  // namespace dmix
