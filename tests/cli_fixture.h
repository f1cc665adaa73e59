// cli_fixture.h — the fixture of the tests that run the real manylm binary end to end (cli_test.cc,
// guard_test.cc): a suite directory with tiny corpora and three finished runs to copy from, a fresh temporary
// directory per test, running a command with its stdout and stderr captured, snapshots of a directory's files,
// and the check that a refusal is exactly one "manylm: error:" line with exit status 2. Not a test.
#pragma once
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <initializer_list>
#include <map>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "test_util.h"

namespace manylm::cli_test {

namespace fs = std::filesystem;
using Files = std::map<std::string, std::string>;  // relative path → bytes

inline std::string make_temp_dir() { return test_util::make_temp_dir("cli-test"); }
using test_util::read_bytes;
using test_util::write_bytes;

// Every regular file under `dir` with its bytes (a file added, removed or changed shows as a difference), but
// the run's lock file: a trainer that took the lock and then refused the run leaves it, empty of meaning.
inline Files snapshot(const std::string& dir) {
  Files out;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file() && e.path().filename() != ".lock")
      out[fs::relative(e.path(), dir).string()] = read_bytes(e.path().string());
  return out;
}

// Deterministic words: a few hundred of them over a 12-word vocabulary, 3 to 9 per line.
inline std::string corpus_text(int words, uint32_t seed) {
  static const char* kWords[] = {"the", "cat", "sat", "on", "mat", "a", "dog", "ran", "to", "house", "big", "small"};
  std::string s;
  uint32_t x = seed;
  auto next = [&] { return x = x * 1664525u + 1013904223u, x >> 16; };
  for (int n = 0; n < words;) {
    const int len = 3 + static_cast<int>(next() % 7);
    for (int i = 0; i < len; ++i, ++n) s += std::string(i ? " " : "") + kWords[next() % 12];
    s += "\n";
  }
  return s;
}

inline std::string quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

struct Result {
  int status = -1;  // exit status; 128 + signal if killed by one
  std::string out, err;
};

using Opts = std::vector<std::pair<std::string, std::string>>;  // ordered; value "" for a flag

class CliTest : public ::testing::Test {
 protected:
  // Shared by the whole suite: corpora and three finished runs to copy from.
  static inline std::string suite_;
  static void SetUpTestSuite() {
    suite_ = make_temp_dir();
    write_bytes(suite_ + "/train.txt", corpus_text(400, 1));
    write_bytes(suite_ + "/valid.txt", corpus_text(150, 2));
    write_bytes(suite_ + "/test.txt", corpus_text(150, 3));
    for (auto [name, extra] : std::vector<std::pair<std::string, Opts>>{
             {"word8", {}}, {"word12", {{"--hidden", "12"}}}, {"char8", {{"--tokens", "char"}}}}) {
      Opts o = extra;
      o.push_back({"--out", suite_ + "/" + name});
      const Result r = run_in(suite_, "train", with(train_opts(suite_), o));
      if (r.status != 0) throw std::runtime_error("cannot train the suite's " + name + " run: " + r.err);
    }
  }
  static void TearDownTestSuite() {
    std::error_code ec;
    fs::remove_all(suite_, ec);
  }

  void SetUp() override { dir_ = make_temp_dir(); }
  void TearDown() override {
    ::chmod(dir_.c_str(), 0700);
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  // The tiny training options of every run here.
  static Opts train_opts(const std::string& corpora) {
    return {{"--train", corpora + "/train.txt"},
            {"--valid", corpora + "/valid.txt"},
            {"--test", corpora + "/test.txt"},
            {"--hidden", "8"},
            {"--embed", "8"},
            {"--batch", "2"},
            {"--bptt", "5"},
            {"--epochs", "1"},
            {"--threads", "1"},
            {"--eval-batch", "2"},
            {"--cache-dir", corpora + "/cache"}};
  }
  // `base` with each option of `over` replacing the same option, or appended.
  static Opts with(Opts base, const Opts& over) {
    for (const auto& [k, v] : over) {
      bool found = false;
      for (auto& [bk, bv] : base)
        if (bk == k) bv = v, found = true;
      if (!found) base.push_back({k, v});
    }
    return base;
  }

  // Runs `manylm <command> <opts>` in directory `cwd`; stdout and stderr are captured in files.
  static Result run_in(const std::string& cwd, const std::string& command, const Opts& opts) {
    std::string cmd = "cd " + quote(cwd) + " && OMP_NUM_THREADS=1 MANYLM_CACHE=" + quote(cwd + "/default-cache") + " " +
                      quote(MANYLM_BINARY) + " " + command;
    for (const auto& [k, v] : opts) cmd += " " + quote(k) + (v.empty() ? "" : " " + quote(v));
    const std::string out = cwd + "/.stdout", err = cwd + "/.stderr";
    cmd += " >" + quote(out) + " 2>" + quote(err) + " </dev/null";
    const int st = std::system(cmd.c_str());
    Result r;
    r.status = WIFEXITED(st) ? WEXITSTATUS(st) : WIFSIGNALED(st) ? 128 + WTERMSIG(st) : -1;
    r.out = read_bytes(out);
    r.err = read_bytes(err);
    fs::remove(out);
    fs::remove(err);
    return r;
  }
  Result run(const std::string& command, const Opts& opts) const { return run_in(dir_, command, opts); }

  // A private copy of one of the suite's runs (run1, run2, ... in this test's directory).
  std::string copy_run(const std::string& name) {
    const std::string to = dir_ + "/run" + std::to_string(++copies_);
    fs::copy(suite_ + "/" + name, to, fs::copy_options::recursive);
    return to;
  }
  std::string write(const std::string& name, const std::string& bytes) const {
    write_bytes(dir_ + "/" + name, bytes);
    return dir_ + "/" + name;
  }

  std::string dir_;
  int copies_ = 0;
};

// Exit status 2, nothing on stdout, exactly one line on stderr: "manylm: error: ..." naming each needle.
inline void expect_user_error(const Result& r, std::initializer_list<std::string> needles) {
  EXPECT_EQ(r.status, 2) << r.err;
  EXPECT_EQ(r.out, "");
  ASSERT_FALSE(r.err.empty());
  EXPECT_EQ(r.err.rfind("manylm: error: ", 0), 0u) << r.err;
  EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << "not exactly one line: " << r.err;
  for (const auto& n : needles) EXPECT_NE(r.err.find(n), std::string::npos) << "'" << n << "' missing from: " << r.err;
}

}  // namespace manylm::cli_test
