// arena.h — one contiguous, aligned float block carved into named tensors from ONE {name, shape} table.
// The same table drives allocation, initialization, checkpoint I/O, gradient checks and the all-reduce:
// parameters, gradients and optimizer moments are Arenas built from the same table, so tensor k sits at
// the same offset in each. Not a general tensor library: no strides, no broadcasting, row-major only.
#pragma once
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace manylm {

struct TensorSpec {
  std::string name;            // e.g. "rnn.weight_hh_l0" (PyTorch state_dict names)
  std::vector<int64_t> shape;  // row-major, e.g. {H, H}
  int64_t numel() const {
    int64_t n = 1;
    for (auto d : shape) n *= d;
    return n;
  }
};

// A plain view: pointer plus the spec it was carved for.
struct TensorView {
  float* data = nullptr;
  const TensorSpec* spec = nullptr;
  int64_t numel() const { return spec->numel(); }
  int64_t rows() const { return spec->shape[0]; }
  int64_t cols() const { return spec->shape.size() > 1 ? spec->shape[1] : 1; }
  std::span<float> span() const { return {data, static_cast<size_t>(numel())}; }
};

class Arena {
 public:
  Arena() = default;
  explicit Arena(std::vector<TensorSpec> table);
  ~Arena();
  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;
  Arena(Arena&& o) noexcept;
  Arena& operator=(Arena&& o) noexcept;

  const std::vector<TensorSpec>& table() const { return table_; }
  size_t size() const { return size_; }  // floats, including alignment padding
  float* data() { return data_; }
  const float* data() const { return data_; }
  std::span<float> flat() { return {data_, size_}; }
  std::span<const float> flat() const { return {data_, size_}; }
  TensorView operator[](size_t k) const { return {data_ + offsets_[k], &table_[k]}; }
  TensorView get(const std::string& name) const;  // throws if absent
  int index_of(const std::string& name) const;    // -1 if absent
  size_t offset(size_t k) const { return offsets_[k]; }
  void zero();

 private:
  std::vector<TensorSpec> table_;
  std::vector<size_t> offsets_;
  size_t size_ = 0;
  float* data_ = nullptr;
};

// The same table under names with a prefix ("adam.m.", "average."): state kept beside the parameters.
std::vector<TensorSpec> prefixed_table(std::vector<TensorSpec> table, const std::string& prefix);

}  // namespace manylm
