// corpus.cc — see corpus.h.
#include "data/corpus.h"

#include <unistd.h>

#include <fmt/format.h>
#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "core/error.h"

namespace manylm {

namespace {
constexpr char kMagic[8] = {'M', 'L', 'M', 'T', 'O', 'K', '2', '\0'};  // 2: a lone CR ends a line
struct CacheHeader {
  char magic[8];
  uint64_t key;
  int64_t count;
  int64_t oov;
};
}  // namespace

TokenIds TokenIds::load(const std::string& path, const Vocab& vocab, const std::string& cache_dir) {
  const uint64_t key = fnv1a(token_mode_name(vocab.mode()), hash_file(path) ^ (vocab.hash() * 0x9E3779B97F4A7C15ull));
  const std::string cache_path = cache_dir.empty() ? "" : fmt::format("{}/{:016x}.ids", cache_dir, key);
  TokenIds t;
  if (!cache_path.empty() && path_exists(cache_path)) {
    try {  // an entry that cannot be mapped (a directory, unreadable) is rebuilt like a damaged one
      MappedFile m(cache_path);
      CacheHeader h;
      if (m.size() >= sizeof h) {
        std::memcpy(&h, m.data(), sizeof h);
        const auto* ids = reinterpret_cast<const int32_t*>(m.data() + sizeof h);
        // Every id is checked against the vocabulary: a damaged entry must not index out of the model. The
        // count is compared before it is multiplied (a damaged one must not wrap around).
        if (std::memcmp(h.magic, kMagic, 8) == 0 && h.key == key && h.count >= 0 &&
            static_cast<uint64_t>(h.count) == (m.size() - sizeof h) / sizeof(int32_t) &&
            m.size() == sizeof h + static_cast<size_t>(h.count) * sizeof(int32_t) &&
            std::all_of(ids, ids + h.count, [&](int32_t id) { return id >= 0 && id < vocab.size(); })) {
          t.map_ = std::move(m);
          t.data_ = ids;
          t.n_ = h.count;
          t.oov_ = h.oov;
          t.from_cache_ = true;
          return t;
        }
      }
    } catch (const UserError&) {}
    // A stale or damaged cache entry is rebuilt below; the text is the source of truth.
  }
  const int32_t eos = vocab.eos();
  const int32_t unk = vocab.unk();
  read_tokens(
      path, vocab.mode(),
      [&](std::string_view w) {
        int32_t id = vocab.find(w);
        if (id < 0) {
          id = unk;
          ++t.oov_;
        }
        t.owned_.push_back(id);
      },
      [&] { t.owned_.push_back(eos); });
  t.data_ = t.owned_.data();
  t.n_ = static_cast<int64_t>(t.owned_.size());
  if (!cache_path.empty()) {
    try {
      make_directories(cache_dir);
      CacheHeader h;
      std::memcpy(h.magic, kMagic, 8);
      h.key = key;
      h.count = t.n_;
      h.oov = t.oov_;
      std::string bytes(reinterpret_cast<const char*>(&h), sizeof h);
      bytes.append(reinterpret_cast<const char*>(t.owned_.data()), t.owned_.size() * sizeof(int32_t));
      write_file_atomic(cache_path, bytes);
    } catch (const UserError&) {
      // The cache is an optimisation: an unwritable cache directory must not stop training.
    }
  }
  return t;
}

std::string resolve_data_dir(const std::string& given) {
  if (!given.empty()) {
    if (!is_directory(given)) fail("--data: {} is not a directory", given);
    return given;
  }
  for (const char* d : {"data", "../shared/data"})
    if (is_directory(d)) return d;
  fail("--data: no data directory given, and neither ./data nor ../shared/data exists");
}

}  // namespace manylm
