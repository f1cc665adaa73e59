// fuzz_util.h — what every libFuzzer target of fuzz/ shares: a scratch directory of its own (tmpfs when there is
// one) where the input is written as the file the reader under test opens, and the one rule of the targets: a
// reader may reject its input only with a UserError (manylm's one-line error, exit 2). Anything else that leaves
// the reader (another exception, a crash, a sanitizer report, a leak) is a bug, and libFuzzer reports it.
// Not a test framework: the targets are plain LLVMFuzzerTestOneInput functions.
#pragma once
#include <stdlib.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"

namespace manylm::fuzz {

// A directory of this process's own (libFuzzer's -jobs/-fork run several), removed at exit.
inline const std::string& scratch_dir() {
  static const struct Scratch {
    std::string dir;
    Scratch() {
      const std::filesystem::path shm = "/dev/shm";
      dir = ((std::filesystem::is_directory(shm) ? shm : std::filesystem::temp_directory_path()) / "manylm-fuzz-XXXXXX")
                .string();
      if (!::mkdtemp(dir.data())) std::abort();
    }
    ~Scratch() {
      std::error_code ignored;
      std::filesystem::remove_all(dir, ignored);
    }
  } scratch;
  return scratch.dir;
}

inline std::string_view bytes(const uint8_t* data, size_t size) { return {reinterpret_cast<const char*>(data), size}; }

// Writes `b` to `path` (replacing it); aborts if it cannot: the harness, not the reader, failed.
inline void put_file(const std::string& path, std::string_view b) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f || std::fwrite(b.data(), 1, b.size(), f) != b.size() || std::fclose(f) != 0) std::abort();
}

// Splits an input into the parts of a multi-file target at each occurrence of `sep` (at most `n` parts; the
// last one takes the rest). Seeds are the real files joined with `sep`.
inline std::vector<std::string_view> split(std::string_view in, std::string_view sep, size_t n) {
  std::vector<std::string_view> parts;
  while (parts.size() + 1 < n) {
    const size_t at = in.find(sep);
    if (at == std::string_view::npos) break;
    parts.push_back(in.substr(0, at));
    in.remove_prefix(at + sep.size());
  }
  parts.push_back(in);
  parts.resize(n);
  return parts;
}

// An invariant of the reader under test; aborts (libFuzzer reports a crash) with `what` when it does not hold.
inline void check(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "fuzz invariant violated: %s\n", what);
  std::abort();
}

// Runs `f`; a UserError is the reader rejecting bad input as it must. Returns whether `f` returned normally.
template <class F>
bool accepts(F&& f) {
  try {
    f();
    return true;
  } catch (const UserError&) {
    return false;
  }
}

}  // namespace manylm::fuzz
