// corpus.cc — see corpus.h.
#include "data/corpus.h"

#include <glob.h>
#include <omp.h>
#include <sys/stat.h>

#include <fmt/format.h>
#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <exception>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>

#include "core/error.h"
#include "data/corpus_stats.h"
#include "data/shard_cache.h"
#include "data/word_table.h"

namespace manylm {

namespace {

uint64_t vocab_key(const Vocab& vocab) {
  return fnv1a(token_mode_name(vocab.mode()), vocab.hash() * 0x9E3779B97F4A7C15ull);
}

// A progress line on stderr every 10 s while a pass over `total` bytes runs, for passes of 256 MiB or more.
class ProgressMeter {
 public:
  ProgressMeter(std::string what, int64_t total) : what_(std::move(what)), total_(total) {
    if (total_ >= (int64_t{256} << 20) && !what_.empty()) thread_ = std::thread([this] { run(); });
  }
  ~ProgressMeter() {
    if (!thread_.joinable()) return;
    {
      std::lock_guard<std::mutex> l(m_);
      done_ = true;
    }
    cv_.notify_all();
    thread_.join();
    const double s = seconds();
    fmt::print(stderr, "{}: {:.1f} MB in {:.1f} s ({:.1f} MB/s)\n", what_, 1e-6 * static_cast<double>(bytes.load()), s,
               1e-6 * static_cast<double>(bytes.load()) / std::max(s, 1e-9));
  }
  std::atomic<int64_t> bytes{0};

 private:
  double seconds() const { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count(); }
  void run() {
    std::unique_lock<std::mutex> l(m_);
    while (!cv_.wait_for(l, std::chrono::seconds(10), [this] { return done_; })) {
      const double b = static_cast<double>(bytes.load()), s = seconds(), rate = b / std::max(s, 1e-9);
      fmt::print(stderr, "{}: {:.0f} of {:.0f} MB ({:.0f}%), {:.1f} MB/s, about {:.0f} s left\n", what_, 1e-6 * b,
                 1e-6 * static_cast<double>(total_), 100.0 * b / static_cast<double>(total_), 1e-6 * rate,
                 rate > 0 ? (static_cast<double>(total_) - b) / rate : 0.0);
    }
  }
  std::string what_;
  int64_t total_;
  std::chrono::steady_clock::time_point t0_ = std::chrono::steady_clock::now();
  std::mutex m_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;
};

int64_t total_bytes(const std::vector<std::string>& files) {
  int64_t t = 0;
  for (const auto& f : files) t += stamp_of(f).size;
  return t;
}

// fn(i) for every file index on the team's threads, one file at a time per thread (dynamic: files differ in
// size); the first failure in file order is rethrown.
template <class Fn>
void for_each_file(size_t n, Fn&& fn) {
  std::vector<std::exception_ptr> errors(n);
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t i = 0; i < static_cast<int64_t>(n); ++i) try {
      fn(static_cast<size_t>(i));
    } catch (...) {
      errors[static_cast<size_t>(i)] = std::current_exception();
    }
  for (const auto& e : errors)
    if (e) std::rethrow_exception(e);
}

}  // namespace

bool TokenIds::map_cached(const std::string& cache_path, uint64_t key, uint64_t hash, const Vocab& vocab) {
  if (!path_exists(cache_path)) return false;
  try {  // an entry that cannot be mapped (a directory, unreadable) is rebuilt like a damaged one
    MappedFile m(cache_path);
    IdsHeader h;
    if (m.size() < sizeof h) return false;
    std::memcpy(&h, m.data(), sizeof h);
    const auto* ids = reinterpret_cast<const int32_t*>(m.data() + sizeof h);
    // Every id is checked against the vocabulary: a damaged entry must not index out of the model. The count
    // is compared before it is multiplied (a damaged one must not wrap around).
    const int64_t V = vocab.size();
    if (std::memcmp(h.magic, kIdsMagic, 8) != 0 || h.key != key || h.content_hash != hash || h.count < 0 ||
        static_cast<uint64_t>(h.count) != (m.size() - sizeof h) / sizeof(int32_t) ||
        m.size() != sizeof h + static_cast<size_t>(h.count) * sizeof(int32_t) ||
        !std::all_of(ids, ids + h.count, [&](int32_t id) { return id >= 0 && id < V; }))
      return false;
    map_ = std::move(m);
    data_ = ids;
    n_ = h.count;
    oov_ = h.oov;
    from_cache_ = true;
    return true;
  } catch (const UserError&) {
    return false;
  }
}

// Reads the text once: ids into the cache file as they come (or into memory without a cache), its hash.
void TokenIds::encode(const std::string& path, const Vocab& vocab, const std::string& cache_path, uint64_t key,
                      std::atomic<int64_t>* bytes_read) {
  std::unique_ptr<IdsWriter> out;
  if (!cache_path.empty()) try {
      make_directories(cache_path.substr(0, cache_path.rfind('/')));
      out = std::make_unique<IdsWriter>(cache_path);
    } catch (const UserError&) {
      // The cache is an optimisation: an unwritable cache directory must not stop training.
    }
  const int32_t eos = vocab.eos(), unk = vocab.unk();
  auto push = [&](int32_t id) {
    if (out)
      out->push(id);
    else
      owned_.push_back(id);
  };
  const FileStamp before = stamp_of(path);
  const int64_t read_at = wall_ns();
  read_tokens(
      path, vocab.mode(),
      [&](std::string_view w) {
        int32_t id = vocab.find(w);
        if (id < 0) {
          id = unk;
          ++oov_;
        }
        push(id);
      },
      [&] { push(eos); }, ReadHooks{&hash_, bytes_read});
  record_hash(cache_path.empty() ? "" : cache_path.substr(0, cache_path.rfind('/')), path, before, read_at, hash_);
  if (out) {
    try {
      out->commit(key, oov_, hash_);
      out.reset();
      if (map_cached(cache_path, key, hash_, vocab)) {
        from_cache_ = false;
        return;
      }
    } catch (const UserError&) {}
    oov_ = 0;  // written but not mappable (a full disk, say): read again into memory
    encode(path, vocab, "", key, nullptr);
    return;
  }
  data_ = owned_.data();
  n_ = static_cast<int64_t>(owned_.size());
}

TokenIds TokenIds::load(const std::string& path, const Vocab& vocab, const std::string& cache_dir,
                        std::atomic<int64_t>* bytes_read) {
  require_regular_file(path, "corpus");
  TokenIds t;
  const FileStamp now = stamp_of(path);
  t.bytes_ = now.size;
  const uint64_t key = vocab_key(vocab);
  const std::string cache_path = cache_dir.empty() ? "" : ids_cache_path(cache_dir, path, key);
  if (!cache_path.empty() && path_exists(cache_path)) {
    std::optional<uint64_t> hash = recorded_hash(cache_dir, path, now);
    if (!hash) {  // not known from the file's stamp: read it (much faster than encoding it)
      const int64_t read_at = wall_ns();
      hash = hash_file(path);
      record_hash(cache_dir, path, now, read_at, *hash);
    }
    if (t.map_cached(cache_path, key, *hash, vocab)) {
      t.hash_ = *hash;
      if (bytes_read) bytes_read->fetch_add(now.size);
      return t;
    }
  }
  t.encode(path, vocab, cache_path, key, bytes_read);
  return t;
}

bool CorpusIds::from_cache() const {
  return std::all_of(parts_.begin(), parts_.end(), [](const TokenIds& t) { return t.from_cache(); });
}

size_t CorpusIds::encoded() const {
  return static_cast<size_t>(
      std::count_if(parts_.begin(), parts_.end(), [](const TokenIds& t) { return !t.from_cache(); }));
}

std::string CorpusIds::fingerprint() const {
  nlohmann::json files = nlohmann::json::array();
  for (size_t i = 0; i < parts_.size(); ++i)
    files.push_back({{"name", files_[i]},
                     {"bytes", parts_[i].bytes()},
                     {"hash", fmt::format("{:016x}", parts_[i].content_hash())},
                     {"tokens", parts_[i].size()}});
  return nlohmann::json{{"files", files}}.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

CorpusIds CorpusIds::load(const std::vector<std::string>& files, const Vocab& vocab, const std::string& cache_dir,
                          const std::string& what) {
  CorpusIds c;
  c.files_ = files;
  c.parts_.resize(files.size());
  {
    ProgressMeter meter(what, total_bytes(files));
    for_each_file(files.size(),
                  [&](size_t i) { c.parts_[i] = TokenIds::load(files[i], vocab, cache_dir, &meter.bytes); });
  }
  for (const TokenIds& t : c.parts_) {
    if (t.size() > 0) c.pieces_.push_back(t.ids());
    c.size_ += t.size();
    c.oov_ += t.oov();
  }
  return c;
}

namespace {

// The cache file of the vocabulary counted from files with these hashes and these settings.
std::string vocab_cache_path(const std::string& cache_dir, const std::vector<uint64_t>& hashes, TokenMode mode,
                             int64_t max_size, int64_t min_count) {
  uint64_t h = fnv1a(fmt::format("{} {} {} {}", token_mode_name(mode), max_size, min_count, hashes.size()));
  h = xxh64(hashes.data(), hashes.size() * sizeof(uint64_t), h);
  return fmt::format("{}/{:016x}.vocab", cache_dir, h);
}

// Counts every token of `files` (one file per thread at a time, each thread its own table, merged), with <eos>
// counting the line ends (word mode) and <unk> present; records each file's content hash in `hashes`.
std::vector<std::pair<std::string, int64_t>> count_words(const std::vector<std::string>& files, TokenMode mode,
                                                         const std::string& cache_dir, std::vector<uint64_t>& hashes) {
  struct Counts {
    WordTable words;
    std::vector<int64_t> n;  // by the table's index
    int64_t eols = 0;
  };
  std::vector<Counts> part(static_cast<size_t>(std::max(1, omp_get_max_threads())));
  {
    ProgressMeter meter("counting the vocabulary", total_bytes(files));
    for_each_file(files.size(), [&](size_t i) {
      Counts& c = part[static_cast<size_t>(omp_get_thread_num()) % part.size()];
      const FileStamp before = stamp_of(files[i]);
      const int64_t read_at = wall_ns();
      read_tokens(
          files[i], mode,
          [&](std::string_view w) {
            const auto k = static_cast<size_t>(c.words.insert(w));
            if (k == c.n.size()) c.n.push_back(0);
            ++c.n[k];
          },
          [&] { ++c.eols; }, ReadHooks{&hashes[i], &meter.bytes});
      record_hash(cache_dir, files[i], before, read_at, hashes[i]);
    });
  }
  Counts& all = part[0];
  for (size_t t = 1; t < part.size(); ++t) {
    for (size_t k = 0; k < part[t].words.size(); ++k) {
      const auto j = static_cast<size_t>(all.words.insert(part[t].words.word(static_cast<int32_t>(k))));
      if (j == all.n.size()) all.n.push_back(0);
      all.n[j] += part[t].n[k];
    }
    all.eols += part[t].eols;
    part[t] = Counts();
  }
  if (all.words.size() == 0 && all.eols == 0)
    fail("{}: empty corpus: no tokens", files.size() == 1 ? files[0] : files[0] + " …");
  for (const char* special : {Vocab::kEos, Vocab::kUnk}) {
    if (special == std::string_view(Vocab::kEos) && mode != TokenMode::Word) continue;
    const auto j = static_cast<size_t>(all.words.insert(special));
    if (j == all.n.size()) all.n.push_back(0);
    if (special == std::string_view(Vocab::kEos)) all.n[j] += all.eols;
  }
  std::vector<std::pair<std::string, int64_t>> items;
  items.reserve(all.words.size());
  for (size_t k = 0; k < all.words.size(); ++k)
    items.emplace_back(std::string(all.words.word(static_cast<int32_t>(k))), all.n[k]);
  part.clear();
  return items;
}

}  // namespace

Vocab count_vocabulary(const std::vector<std::string>& files, TokenMode mode, int64_t max_size, int64_t min_count,
                       const std::string& cache_dir) {
  std::vector<uint64_t> hashes(files.size());
  bool known = !cache_dir.empty();
  for (size_t i = 0; i < files.size() && known; ++i) {
    const auto h = recorded_hash(cache_dir, files[i], stamp_of(files[i]));
    known = h.has_value();
    if (known) hashes[i] = *h;
  }
  if (known) {
    const std::string p = vocab_cache_path(cache_dir, hashes, mode, max_size, min_count);
    if (path_exists(p)) try {
        return Vocab::from_json(read_file(p, "vocabulary cache"), p);
      } catch (const UserError&) {  // damaged: counted again below
      }
  }
  Vocab v = vocab_from_items(count_words(files, mode, cache_dir, hashes), mode, max_size, min_count);
  if (!cache_dir.empty()) try {
      make_directories(cache_dir);
      write_file_atomic(vocab_cache_path(cache_dir, hashes, mode, max_size, min_count), v.to_json());
    } catch (const UserError&) {}
  return v;
}

std::vector<std::string> corpus_paths(const std::string& spec, const std::string& option) {
  if (spec.empty()) fail("{}: no file given", option);
  if (spec.find_first_of("*?[") != std::string::npos && !path_exists(spec)) {
    glob_t g{};
    const int rc = ::glob(spec.c_str(), 0, nullptr, &g);
    std::vector<std::string> files;
    for (size_t i = 0; rc == 0 && i < g.gl_pathc; ++i) {
      struct stat st;
      if (::stat(g.gl_pathv[i], &st) == 0 && S_ISREG(st.st_mode)) files.emplace_back(g.gl_pathv[i]);
    }
    ::globfree(&g);
    if (files.empty()) fail("{}: no file matches {}", option, spec);
    std::sort(files.begin(), files.end());
    return files;
  }
  if (!path_exists(spec)) fail("{}: {}: No such file or directory", option, spec);
  std::vector<std::string> skipped;
  try {
    return corpus_files(spec, &skipped);
  } catch (const UserError& e) {
    fail("{}: {}", option, e.what());
  }
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
