// word_table.h — words to dense indices (0, 1, 2, … in insertion order), for the hot loops of counting and
// encoding a corpus: an open-addressing table of 32-byte slots (hash, length, index, and the word itself when
// it has at most 16 bytes), so that a lookup of a word outside the cache costs one cache miss, not the two or
// three of a node-based map (bucket, node, string). The words are also kept in one byte arena, in index order.
// Not a vocabulary (vocab.h uses it).
#pragma once
#include <cstdint>
#include <cstring>
#include <string_view>
#include <vector>

#include "core/io.h"

namespace manylm {

class WordTable {
 public:
  WordTable() { slots_.resize(kMinSlots); }
  size_t size() const { return spans_.size(); }
  std::string_view word(int32_t i) const {
    const auto [off, len] = spans_[static_cast<size_t>(i)];
    return {arena_.data() + off, len};
  }
  void reserve(size_t n) {
    while (slots_.size() < 2 * n) grow();
  }

  // The index of `w`, or -1.
  int32_t find(std::string_view w) const {
    const uint64_t h = hash(w);
    for (size_t i = h & (slots_.size() - 1);; i = (i + 1) & (slots_.size() - 1)) {
      const Slot& s = slots_[i];
      if (s.idx < 0) return -1;
      if (s.hash == h && same(s, w)) return s.idx;
    }
  }
  // The index of `w`, added as the next index if it is new.
  int32_t insert(std::string_view w) {
    const uint64_t h = hash(w);
    for (size_t i = h & (slots_.size() - 1);; i = (i + 1) & (slots_.size() - 1)) {
      Slot& s = slots_[i];
      if (s.idx >= 0) {
        if (s.hash == h && same(s, w)) return s.idx;
        continue;
      }
      const auto idx = static_cast<int32_t>(spans_.size());
      s.hash = h;
      s.len = static_cast<uint32_t>(w.size());
      s.idx = idx;
      const uint64_t off = arena_.size();
      arena_.insert(arena_.end(), w.begin(), w.end());
      spans_.emplace_back(off, static_cast<uint32_t>(w.size()));
      if (w.size() <= sizeof s.inl)
        std::memcpy(s.inl, w.data(), w.size());
      else
        std::memcpy(s.inl, &off, sizeof off);
      if (2 * spans_.size() > slots_.size()) grow();  // at most half full
      return idx;
    }
  }

 private:
  static constexpr size_t kMinSlots = 64;
  struct Slot {
    uint64_t hash = 0;
    uint32_t len = 0;
    int32_t idx = -1;  // -1: empty
    char inl[16];      // the word (at most 16 bytes), else its offset in the arena
  };
  static uint64_t hash(std::string_view w) { return xxh64(w.data(), w.size()); }
  bool same(const Slot& s, std::string_view w) const {
    if (s.len != w.size()) return false;
    if (w.size() <= sizeof s.inl) return std::memcmp(s.inl, w.data(), w.size()) == 0;
    uint64_t off;
    std::memcpy(&off, s.inl, sizeof off);
    return std::memcmp(arena_.data() + off, w.data(), w.size()) == 0;
  }
  void grow() {
    std::vector<Slot> old(slots_.size() * 2);
    old.swap(slots_);
    for (const Slot& s : old) {
      if (s.idx < 0) continue;
      size_t i = s.hash & (slots_.size() - 1);
      while (slots_[i].idx >= 0) i = (i + 1) & (slots_.size() - 1);
      slots_[i] = s;
    }
  }
  std::vector<Slot> slots_;
  std::vector<char> arena_;
  std::vector<std::pair<uint64_t, uint32_t>> spans_;  // (offset, length) of index i's word in the arena
};

}  // namespace manylm
