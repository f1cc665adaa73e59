// synth_write.cc — see synth_corpus.h: write_synth_corpus, the files of a synthetic corpus. Each file is cut
// into chunks of about 64 Ki tokens; a round of chunks (two per thread) is generated in parallel into buffers,
// each buffer placed after the bytes already in its file, and written with pwrite in parallel. What a chunk
// holds depends on (seed, file, chunk) only, never on the round or the thread that made it. Not the model
// (synth_corpus.cc).
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <exception>
#include <filesystem>

#include "core/error.h"
#include "core/io.h"
#include "core/parallel.h"
#include "data/synth_corpus.h"

namespace manylm {

namespace {
namespace fs = std::filesystem;
constexpr int64_t kChunkTokens = 1 << 16;

struct OutFile {
  std::string path;
  int part;  // 0 train, 1 valid, 2 test
  int64_t tokens;
};

struct Chunk {
  size_t file;
  uint64_t index;  // within its file
  int64_t tokens, plant0, plant1;
  bool last;  // of its file
};

// The file's id in the Philox stream: valid 0, test 1, train shard s 2 + s (valid and test do not depend on the
// shard count).
uint64_t stream_file(const OutFile& f, size_t i) { return f.part == 0 ? i + 2 : static_cast<uint64_t>(f.part - 1); }

// Chunks of every file, even in size; the training ones get the planted ids [first, first + planted) in
// proportion to the training tokens before them.
std::vector<Chunk> plan_chunks(const std::vector<OutFile>& files, int64_t train_tokens, int64_t first,
                               int64_t planted) {
  std::vector<Chunk> out;
  int64_t before = 0;
  auto share = [&](int64_t t) {
    return first + static_cast<int64_t>(static_cast<__int128>(planted) * t / train_tokens);
  };
  for (size_t f = 0; f < files.size(); ++f) {
    const int64_t T = files[f].tokens, n = (T + kChunkTokens - 1) / kChunkTokens;
    for (int64_t c = 0; c < n; ++c) {
      Chunk k{f, static_cast<uint64_t>(c), T / n + (c < T % n ? 1 : 0), 0, 0, c == n - 1};
      if (files[f].part == 0) {
        k.plant0 = share(before);
        before += k.tokens;
        k.plant1 = share(before);
      }
      out.push_back(k);
    }
  }
  return out;
}

// fn(i) for each i in [0, n) on the team; the first exception (by index) is rethrown after all have run.
template <typename F>
void each_parallel(size_t n, F&& fn) {
  std::vector<std::exception_ptr> errors(n);
  parallel_for(static_cast<int64_t>(n), 2, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) try {
        fn(static_cast<size_t>(i));
      } catch (...) {
        errors[static_cast<size_t>(i)] = std::current_exception();
      }
  });
  for (const auto& e : errors)
    if (e) std::rethrow_exception(e);
}

struct Fds {
  std::vector<int> fd;
  ~Fds() {
    for (const int f : fd)
      if (f >= 0) ::close(f);
  }
};

// Generates and writes every chunk, round by round; fills the summary's words, lines, bytes and types.
void write_chunks(const SynthModel& m, const std::vector<OutFile>& files, const std::vector<Chunk>& chunks,
                  SynthSummary& sum) {
  const int threads = std::max(1, num_threads());
  const size_t round = 2 * static_cast<size_t>(threads);
  std::vector<std::string> text(round);
  std::vector<std::pair<int64_t, int64_t>> counts(round);
  std::vector<int64_t> offset(round), bytes(files.size(), 0);
  std::vector<std::vector<uint64_t>> seen(static_cast<size_t>(threads),
                                          std::vector<uint64_t>(static_cast<size_t>((m.vocab() + 63) / 64)));
  Fds fds{std::vector<int>(files.size(), -1)};
  for (size_t r = 0; r < chunks.size(); r += round) {
    const size_t n = std::min(round, chunks.size() - r);
    each_parallel(n, [&](size_t i) {
      const Chunk& c = chunks[r + i];
      const OutFile& f = files[c.file];
      uint64_t* mark = f.part == 0 ? seen[static_cast<size_t>(omp_get_thread_num()) % seen.size()].data() : nullptr;
      text[i].clear();
      counts[i] = m.write_chunk(stream_file(f, c.file), c.index, c.tokens, c.plant0, c.plant1, text[i], mark);
    });
    for (size_t i = 0; i < n; ++i) {
      const Chunk& c = chunks[r + i];
      const OutFile& f = files[c.file];
      if (fds.fd[c.file] < 0) fds.fd[c.file] = ::open(f.path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
      if (fds.fd[c.file] < 0) fail("{}: cannot create: {}", f.path, std::strerror(errno));
      offset[i] = bytes[c.file];
      bytes[c.file] += static_cast<int64_t>(text[i].size());
      sum.words[f.part] += counts[i].first;
      sum.lines[f.part] += counts[i].second;
      sum.bytes[f.part] += static_cast<int64_t>(text[i].size());
    }
    each_parallel(n, [&](size_t i) {
      const Chunk& c = chunks[r + i];
      for (size_t done = 0; done < text[i].size();) {
        const ssize_t w = ::pwrite(fds.fd[c.file], text[i].data() + done, text[i].size() - done,
                                   static_cast<off_t>(offset[i] + static_cast<int64_t>(done)));
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) fail("{}: write error: {}", files[c.file].path, std::strerror(w < 0 ? errno : ENOSPC));
        done += static_cast<size_t>(w);
      }
    });
    for (size_t i = 0; i < n; ++i) {
      const Chunk& c = chunks[r + i];
      if (!c.last) continue;
      const int fd = std::exchange(fds.fd[c.file], -1);
      if (::close(fd) != 0) fail("{}: write error: {}", files[c.file].path, std::strerror(errno));
    }
  }
  std::vector<uint64_t> all(seen[0].size(), 0);
  for (const auto& s : seen)
    for (size_t i = 0; i < all.size(); ++i) all[i] |= s[i];
  sum.types = 0;
  for (const uint64_t x : all) sum.types += std::popcount(x);
}

void fsync_path(const std::string& path, bool directory) {
  const int fd = ::open(path.c_str(), (directory ? O_RDONLY | O_DIRECTORY : O_RDONLY) | O_CLOEXEC);
  if (fd < 0) fail("{}: cannot open to flush: {}", path, std::strerror(errno));
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) fail("{}: cannot flush to disk: {}", path, std::strerror(err));
}

// --out must not exist, or be an empty directory; its parent is created. Fails before anything is written.
void check_out_dir(const std::string& dir, double bytes_needed) {
  struct stat st;
  if (::stat(dir.c_str(), &st) == 0) {
    if (!S_ISDIR(st.st_mode)) fail("--out: {} exists and is not a directory", dir);
    if (!fs::is_empty(dir)) fail("--out: {} exists and is not empty; choose a new directory", dir);
  }
  const std::string parent = fs::path(dir).parent_path().string();
  if (!parent.empty()) make_directories(parent);
  struct statvfs vfs;
  if (::statvfs(parent.empty() ? "." : parent.c_str(), &vfs) == 0) {
    const double free_bytes = static_cast<double>(vfs.f_bavail) * static_cast<double>(vfs.f_frsize);
    if (bytes_needed > free_bytes)
      fail("--out: the corpus needs about {:.1f} GB but {} has {:.1f} GB free", bytes_needed / 1e9,
           parent.empty() ? "." : parent, free_bytes / 1e9);
  }
}

// The first planted id: types expected fewer than kPlantBelow times in the training text are planted once
// each, but at most half as many as the expected words.
int64_t first_planted(const SynthModel& m, int64_t tokens) {
  const double L = (SynthModel::kMinLength + SynthModel::kMaxLength) / 2.0;
  const double words = static_cast<double>(tokens) * L / (L + 1);
  // word v's expected count words·z(v) = words / ((v + 1)·H) is below the threshold from v = ⌊words / (t·H)⌋ on
  const double from = std::floor(words * m.unigram(0) / SynthModel::kPlantBelow);
  const int64_t first = static_cast<int64_t>(std::min(from, static_cast<double>(m.vocab())));
  return std::max(first, m.vocab() - static_cast<int64_t>(words / 2));
}
}  // namespace

SynthSummary write_synth_corpus(const SynthModel& model, const SynthSpec& spec, const std::string& out) {
  check_synth_spec(spec);
  std::string dir = out;
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  if (dir.empty()) fail("--out: an empty path");
  SynthSummary sum{};
  const int64_t heldout = synth_heldout_tokens(spec.tokens);
  sum.tokens[0] = spec.tokens;
  sum.tokens[1] = sum.tokens[2] = heldout;
  const int64_t first = first_planted(model, spec.tokens);
  sum.planted = model.vocab() - first;
  const double L = (SynthModel::kMinLength + SynthModel::kMaxLength) / 2.0;
  check_out_dir(dir, static_cast<double>(spec.tokens + 2 * heldout) * L / (L + 1) * model.mean_word_bytes() +
                         9.0 * static_cast<double>(sum.planted));
  const std::string tmp = dir + ".tmp." + std::to_string(::getpid());
  std::vector<OutFile> files;
  for (int64_t s = 0; s < spec.shards; ++s)
    files.push_back({fmt::format("{}/train/{:05d}.txt", tmp, s), 0,
                     spec.tokens / spec.shards + (s < spec.tokens % spec.shards ? 1 : 0)});
  files.push_back({tmp + "/valid.txt", 1, heldout});
  files.push_back({tmp + "/test.txt", 2, heldout});
  if (::mkdir(tmp.c_str(), 0755) != 0) fail("{}: cannot create directory: {}", tmp, std::strerror(errno));
  try {
    make_directories(tmp + "/train");
    write_chunks(model, files, plan_chunks(files, spec.tokens, first, sum.planted), sum);
    for (const OutFile& f : files) fsync_path(f.path, false);
    fsync_path(tmp + "/train", true);
    fsync_path(tmp, true);
    if (is_directory(dir) && ::rmdir(dir.c_str()) != 0)
      fail("--out: {} cannot be replaced: {}", dir, std::strerror(errno));
    rename_synced(tmp, dir);
  } catch (...) {
    std::error_code ec;
    fs::remove_all(tmp, ec);
    throw;
  }
  return sum;
}

}  // namespace manylm
