// test_util.h — helpers shared by the test files: temporary directories and whole-file reads and writes, the
// UserError message a call throws, slices of the real
// Penn Treebank written to a directory, and the options of the Engine a test multiplies with. Not a
// fixture library.
#pragma once
#include <gtest/gtest.h>

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>

#include "core/engine.h"
#include "core/error.h"
#include "core/io.h"
#include "train/config.h"

namespace manylm::test_util {

// A new empty directory under the system's temporary directory, named manylm-<what>-XXXXXX.
inline std::string make_temp_dir(const std::string& what) {
  std::string tmpl = (std::filesystem::temp_directory_path() / ("manylm-" + what + "-XXXXXX")).string();
  if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
  return tmpl;
}

inline std::string read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), {}};
}

inline void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!f) throw std::runtime_error("cannot write " + path);
}

// The UserError message `f` throws; a test failure (and "") if it throws nothing or something else.
template <typename F>
std::string user_error(F&& f) {
  try {
    f();
  } catch (const UserError& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected a UserError, got another exception: " << e.what();
    return "";
  }
  ADD_FAILURE() << "expected a UserError, nothing was thrown";
  return "";
}

// PTB's file `f` in ./data or ../shared/data of the source tree; "" when absent (tests then skip).
inline std::string ptb_path(const std::string& f) {
  for (std::string d : {std::string(MANYLM_SOURCE_DIR) + "/data", std::string(MANYLM_SOURCE_DIR) + "/../shared/data"})
    if (path_exists(d + "/ptb/" + f)) return d + "/ptb/" + f;
  return "";
}

// Writes the first `train_lines` lines of PTB's train.txt and `other_lines` of valid.txt and test.txt to dir.
inline void write_ptb_slice(const std::string& dir, int train_lines, int other_lines) {
  for (std::string f : {"train.txt", "valid.txt", "test.txt"}) {
    std::ifstream in(ptb_path(f));
    std::ofstream out(dir + "/" + f);
    std::string line;
    for (int i = 0; i < (f == "train.txt" ? train_lines : other_lines) && std::getline(in, line); ++i)
      out << line << "\n";
  }
}

// A Config reading the slice written to dir, caching its ids there, writing its run to dir/out.
inline Config slice_config(const std::string& dir, const std::string& out) {
  Config c;
  c.train = dir + "/train.txt";
  c.valid = dir + "/valid.txt";
  c.test = dir + "/test.txt";
  c.cache_dir = dir + "/cache";
  c.out = dir + "/" + out;
  return c;
}

// The options of a test's Engine: `threads` (0: every CPU), the backend (Blas unless asked), fp32 unless asked.
inline EngineOptions engine_options(int threads = 0, GemmBackend backend = GemmBackend::Blas,
                                    Precision precision = Precision::Fp32) {
  EngineOptions o;
  o.threads = threads;
  o.backend = backend;
  o.precision = precision;
  return o;
}

}  // namespace manylm::test_util
