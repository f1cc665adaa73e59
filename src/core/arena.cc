// arena.cc — see arena.h.
#include "core/arena.h"

#include <sys/mman.h>

#include <algorithm>
#include <cstdlib>
#include <new>
#include <stdexcept>
#include <utility>

#include "core/parallel.h"

namespace manylm {

namespace {
constexpr size_t kAlignFloats = 16;  // 64-byte alignment: every tensor starts on a cache line
constexpr size_t kHugePage = size_t{2} << 20, kHugeFrom = size_t{32} << 20;
}  // namespace

Arena::Arena(std::vector<TensorSpec> table) : table_(std::move(table)) {
  for (const auto& t : table_) {
    offsets_.push_back(size_);
    size_ += (static_cast<size_t>(t.numel()) + kAlignFloats - 1) / kAlignFloats * kAlignFloats;
  }
  size_t bytes = std::max<size_t>(size_, kAlignFloats) * sizeof(float);
  // Large blocks (a V × E table is gigabytes) on 2 MiB boundaries and backed by transparent huge pages where the
  // kernel allows it (`madvise` mode included): a step gathers rows scattered over the whole table, and with 4 KiB
  // pages nearly every row is a TLB miss.
  const bool huge = bytes >= kHugeFrom;
  if (huge) bytes = (bytes + kHugePage - 1) / kHugePage * kHugePage;
  data_ = static_cast<float*>(std::aligned_alloc(huge ? kHugePage : 64, bytes));
  if (!data_) throw std::bad_alloc();
  if (huge) ::madvise(data_, bytes, MADV_HUGEPAGE);  // advice only: a kernel without THP ignores it
  zero();
}

Arena::~Arena() { std::free(data_); }

Arena::Arena(Arena&& o) noexcept
    : table_(std::move(o.table_)), offsets_(std::move(o.offsets_)), size_(o.size_), data_(o.data_) {
  o.data_ = nullptr;
  o.size_ = 0;
}

Arena& Arena::operator=(Arena&& o) noexcept {
  if (this != &o) {
    std::free(data_);
    table_ = std::move(o.table_);
    offsets_ = std::move(o.offsets_);
    size_ = o.size_;
    data_ = o.data_;
    o.data_ = nullptr;
    o.size_ = 0;
  }
  return *this;
}

int Arena::index_of(const std::string& name) const {
  for (size_t k = 0; k < table_.size(); ++k)
    if (table_[k].name == name) return static_cast<int>(k);
  return -1;
}

TensorView Arena::get(const std::string& name) const {
  int k = index_of(name);
  if (k < 0) throw std::out_of_range("arena has no tensor " + name);
  return (*this)[k];
}

// Zeroed by the team with the static partition of the element-wise kernels (kernels.cc, optimizer.cc):
// the first touch of a fresh block places each thread's share of parameters, gradients, moments and
// activations on that thread's NUMA node of a multi-socket machine, where the bandwidth-bound passes
// (clip norm, update, element-wise ops) then read it.
void Arena::zero() {
  const int64_t n = static_cast<int64_t>(std::max<size_t>(size_, kAlignFloats));
  float* d = data_;
  parallel_for(n, (1 << 16) + 1, [=](int64_t b, int64_t e) {
#pragma omp simd
    for (int64_t i = b; i < e; ++i) d[i] = 0.0f;
  });
}

std::vector<TensorSpec> prefixed_table(std::vector<TensorSpec> table, const std::string& prefix) {
  for (auto& s : table) s.name = prefix + s.name;
  return table;
}

}  // namespace manylm
