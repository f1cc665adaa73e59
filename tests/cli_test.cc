// cli_test.cc — the real manylm binary end to end on tiny corpora in a fresh temporary directory:
// every kind of bad input (missing, unreadable, directory, empty, too small, NUL bytes, invalid UTF-8,
// truncated, foreign or mismatched checkpoints, bad option values, bad --config files, --out onto an
// existing run) must exit 2 with exactly one "manylm: error:" line naming the file or option, and leave
// an existing run directory byte-identical (or create nothing). Also --help, --json, --config with
// command-line overrides, and --resume reading the run's saved options. Not the data code's unit
// tests (data_test.cc).
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "cli/commands.h"
#include "cli_fixture.h"
#include "core/gemm.h"
#include "core/io.h"
#include "core/parallel.h"
#include "core/safetensors.h"
#include "test_util.h"

namespace manylm {
namespace {

using namespace cli_test;  // NOLINT: the fixture's names (cli_fixture.h)
namespace fs = std::filesystem;

// ---------------------------------------------------------------------------------------------
// Bad corpora: as a fresh run (nothing created) and resuming a finished run (left byte-identical),
// in each of the three roles.

class CliErrors : public CliTest {
 protected:
  // `bad` given as --train, --valid and --test in turn must fail naming `bad` (and, for --train, the
  // extra needles): a fresh --out is not created, a resumed run directory is not touched.
  void expect_bad_corpus(const std::string& bad, std::initializer_list<std::string> train_needles,
                         const Opts& extra = {}, const std::string& base_run = "word8") {
    const std::string run_dir = copy_run(base_run);
    const Files before = snapshot(run_dir);
    for (const char* role : {"--train", "--valid", "--test"}) {
      SCOPED_TRACE(role);
      const std::string fresh = dir_ + "/fresh";
      Result r = run("train", with(with(train_opts(suite_), extra), {{role, bad}, {"--out", fresh}}));
      expect_user_error(r, {bad});
      if (std::string(role) == "--train") expect_user_error(r, train_needles);
      EXPECT_FALSE(fs::exists(fresh)) << "a failed run created its --out directory";
      r = run("train", {{"--resume", run_dir}, {role, bad}});
      expect_user_error(r, {bad});
      EXPECT_EQ(snapshot(run_dir), before) << "a failed resume changed the run directory";
    }
  }
};

TEST_F(CliErrors, MissingFile) { expect_bad_corpus(dir_ + "/no-such-file.txt", {"No such file"}); }

TEST_F(CliErrors, UnreadableFile) {
  if (::geteuid() == 0) GTEST_SKIP() << "running as root: chmod 000 does not stop root from reading";
  const std::string p = write("locked.txt", corpus_text(400, 4));
  ASSERT_EQ(::chmod(p.c_str(), 0), 0);
  expect_bad_corpus(p, {"cannot read", "Permission denied"});
}

TEST_F(CliErrors, DirectoryWhereAFileIsExpected) {
  fs::create_directory(dir_ + "/corpus.txt");
  expect_bad_corpus(dir_ + "/corpus.txt", {"directory"});
}

TEST_F(CliErrors, EmptyCorpus) {
  expect_bad_corpus(write("empty.txt", ""), {"empty"});
  expect_bad_corpus(write("blank.txt", "  \t "), {});  // one line, no words: too small
}

TEST_F(CliErrors, CorpusTooSmallForOneBatch) {
  // 2 words and 1 <eos> cannot fill 2 streams (--batch 2, --eval-batch 2) of at least 2 tokens.
  expect_bad_corpus(write("small.txt", "a b\n"), {"too small", "--batch"});
}

TEST_F(CliErrors, NulBytes) {
  std::string text = corpus_text(400, 5);
  text[100] = '\0';
  const std::string p = write("nul.txt", text);
  expect_bad_corpus(p, {"NUL", "offset 100"});
  expect_bad_corpus(p, {"NUL", "offset 100"}, {{"--tokens", "char"}}, "char8");
}

TEST_F(CliErrors, InvalidUtf8InCharacterMode) {
  std::string text = corpus_text(400, 6);
  text[50] = '\xC3';  // a lead byte followed by an ASCII byte
  const std::string p = write("latin1.txt", text);
  expect_bad_corpus(p, {"UTF-8", "offset 51"}, {{"--tokens", "char"}}, "char8");
  const std::string t = write("truncated.txt", corpus_text(400, 7) + "\xE2\x82");
  expect_bad_corpus(t, {"truncated"}, {{"--tokens", "char"}}, "char8");
}

// Word mode: a word that is not UTF-8 (Latin-1 "café") would become a vocabulary entry JSON cannot hold.
TEST_F(CliErrors, InvalidUtf8InWordMode) {
  std::string text = corpus_text(400, 8);
  const size_t at = text.find(' ', 40) + 1;
  text.insert(at, "caf\xE9");
  const std::string p = write("latin1-words.txt", text);
  expect_bad_corpus(p, {"UTF-8", "offset " + std::to_string(at)});
  expect_user_error(run("sample", {{"--model", suite_ + "/word8"}, {"--prompt", "caf\xE9"}}), {"--prompt", "UTF-8"});
}

// ---------------------------------------------------------------------------------------------
// Bad checkpoints: resume, eval and sample all refuse them and leave the run directory as it was.

class CliCheckpoint : public CliTest {
 protected:
  void expect_refused(const std::string& run_dir, std::initializer_list<std::string> needles) {
    const Files before = snapshot(run_dir);
    const std::vector<std::pair<std::string, Opts>> commands = {
        {"train", {{"--resume", run_dir}}},
        {"train", {{"--resume", run_dir}, {"--epochs", "2"}}},
        {"eval", {{"--model", run_dir}, {"--text", suite_ + "/test.txt"}, {"--cache-dir", dir_ + "/cache"}}},
        {"eval", {{"--model", run_dir}, {"--per-word", dir_ + "/per-word.tsv"}}},
        {"sample", {{"--model", run_dir}, {"--length", "5"}}}};
    for (const auto& [cmd, opts] : commands) {
      SCOPED_TRACE(cmd + " " + opts.front().first);
      expect_user_error(run(cmd, opts), needles);
      EXPECT_EQ(snapshot(run_dir), before);
    }
    EXPECT_FALSE(fs::exists(dir_ + "/per-word.tsv"));
  }
};

// A hand-edited config.json: eval and sample name it (a zero --bptt used to divide by zero, an unknown key
// gave CLI11's "INI was not able to parse"); eval's outputs must not overwrite the text it scores.
TEST_F(CliCheckpoint, BadRunConfigAndOutputsOverTheText) {
  const std::string run_dir = copy_run("word8"), config = run_dir + "/config.json";
  const std::string good = read_bytes(config);
  auto edited = [&](const std::string& key, const std::string& value) {
    nlohmann::json j = nlohmann::json::parse(good);
    j[key] = nlohmann::json::parse(value);
    write_bytes(config, j.dump(2));
  };
  for (const auto& [key, value, needle] : std::vector<std::tuple<std::string, std::string, std::string>>{
           {"bptt", "0", "--bptt"},
           {"eval-batch", "0", "--eval-batch"},
           {"hidden", "-5", "--hidden"},
           {"cell", "\"foo\"", "--cell"},
           {"from-the-future", "1", "unknown option 'from-the-future'"}}) {
    SCOPED_TRACE(key);
    edited(key, value);
    expect_user_error(run("eval", {{"--model", run_dir}}), {config, needle});
    expect_user_error(run("sample", {{"--model", run_dir}}), {config, needle});
  }
  write_bytes(config, good);
  const std::string text = write("text.txt", corpus_text(50, 9));
  const std::string before = read_bytes(text);
  expect_user_error(run("eval", {{"--model", run_dir}, {"--text", text}, {"--per-word", text}}), {"--per-word", text});
  expect_user_error(run("eval", {{"--model", run_dir},
                                 {"--text", text},
                                 {"--sentences", dir_ + "/../" + fs::path(dir_).filename().string() + "/text.txt"}}),
                    {"--sentences"});
  expect_user_error(
      run("eval", {{"--model", run_dir}, {"--text", text}, {"--per-word", dir_ + "/o"}, {"--sentences", dir_ + "/o"}}),
      {"--sentences", "--per-word"});
  EXPECT_EQ(read_bytes(text), before);
  // Nor a file of the run: its weights, config, state or metrics would be overwritten by scores.
  for (const char* f : {"model.safetensors", "config.json", "state.safetensors", "metrics.jsonl", "vocab.json"}) {
    SCOPED_TRACE(f);
    const std::string path = run_dir + "/" + f, kept = read_bytes(path);
    expect_user_error(run("eval", {{"--model", run_dir}, {"--text", text}, {"--sentences", path}}),
                      {"--sentences", "is a file of the run"});
    expect_user_error(run("eval", {{"--model", run_dir}, {"--text", text}, {"--per-word", path}}),
                      {"--per-word", "is a file of the run"});
    EXPECT_EQ(read_bytes(path), kept);
  }
  expect_user_error(run("eval", {{"--model", run_dir}, {"--per-word", dir_ + "/no/such/dir/w.tsv"}}),
                    {dir_ + "/no/such/dir/w.tsv: cannot create"});
}

// One writer per run directory: while a process holds the run's lock (here the test itself, as a live trainer
// would), --resume and a new run onto it are refused with the holder's PID, and nothing in it changes.
TEST_F(CliCheckpoint, LiveRunIsLocked) {
  const std::string r = copy_run("word8");
  const Files before = snapshot(r);
  const std::string pid = std::to_string(::getpid());
  {
    DirLock held;
    held.acquire(r, "test", "");
    expect_user_error(run("train", {{"--resume", r}}), {"--resume", r + " is in use by process " + pid});
    EXPECT_EQ(snapshot(r), before);
    const std::string fresh = dir_ + "/fresh";
    fs::create_directories(fresh);
    DirLock held_fresh;
    held_fresh.acquire(fresh, "test", "");
    expect_user_error(run("train", with(train_opts(suite_), {{"--out", fresh}})),
                      {"--out", fresh + " is in use by process " + pid});
    EXPECT_FALSE(fs::exists(fresh + "/config.json"));
  }
  // Released (a dead holder releases it too): the run resumes.
  EXPECT_EQ(run("train", {{"--resume", r}}).status, 0);
}

TEST_F(CliCheckpoint, TruncatedModel) {
  const std::string r = copy_run("word8");
  const std::string model = read_bytes(r + "/model.safetensors");
  write_bytes(r + "/model.safetensors", model.substr(0, model.size() / 2));
  expect_refused(r, {r + "/model.safetensors", "truncated"});
  write_bytes(r + "/model.safetensors", model.substr(0, 5));  // not even the header length
  expect_refused(r, {r + "/model.safetensors", "truncated"});
  write_bytes(r + "/model.safetensors", "");
  expect_refused(r, {r + "/model.safetensors"});
}

// A weight that is NaN (a diverged run, a bit flip) is refused by resume, eval and sample, naming the file.
// The NaN is written with valid checksums (as a foreign tool could), so the check of the values is what refuses it.
TEST_F(CliCheckpoint, NonFiniteWeightsAreRefused) {
  const std::string r = copy_run("word8"), path = r + "/model.safetensors";
  SafeTensorsFile f = load_safetensors(path);
  f.tensors.at("rnn.weight_hh_l0").values.back() = std::numeric_limits<float>::quiet_NaN();
  std::map<std::string, const SafeTensor*> refs;
  for (const auto& [name, t] : f.tensors) refs[name] = &t;
  write_bytes(path, encode_safetensors(refs, f.metadata));
  expect_refused(r, {path, "not finite"});
}

// --max-steps at or below the step a run is resumed at would train nothing: an error, not a silent exit 0.
TEST_F(CliCheckpoint, MaxStepsBelowTheResumedStepIsAnError) {
  const std::string r = copy_run("word8");
  const Files before = snapshot(r);
  expect_user_error(run("train", {{"--resume", r}, {"--max-steps", "1"}}), {"--max-steps", "nothing would be trained"});
  EXPECT_EQ(snapshot(r), before);
}

TEST_F(CliCheckpoint, ForeignFileAsModel) {
  const std::string r = copy_run("word8");
  std::string junk(read_bytes(r + "/model.safetensors").size(), '\0');
  uint32_t x = 12345;
  for (char& c : junk) c = static_cast<char>((x = x * 1664525u + 1013904223u) >> 24);
  write_bytes(r + "/model.safetensors", junk);
  expect_refused(r, {r + "/model.safetensors"});
  // A JSON header of the right length that is not a safetensors header.
  std::string fake(8, '\0');
  fake[0] = 16;
  fake += "{\"a\": [1, 2, 3]}";
  ASSERT_EQ(fake.size(), 8u + 16u);
  write_bytes(r + "/model.safetensors", fake);
  expect_refused(r, {r + "/model.safetensors"});
}

TEST_F(CliCheckpoint, ModelOfAnotherShape) {
  const std::string r = copy_run("word8");
  fs::copy_file(suite_ + "/word12/model.safetensors", r + "/model.safetensors", fs::copy_options::overwrite_existing);
  expect_refused(r, {r + "/model.safetensors", "holds another model (hidden 12;"});
}

TEST_F(CliCheckpoint, TruncatedTrainingState) {
  const std::string r = copy_run("word8");
  const std::string state = read_bytes(r + "/state.safetensors");
  write_bytes(r + "/state.safetensors", state.substr(0, state.size() - 7));
  const Files before = snapshot(r);
  expect_user_error(run("train", {{"--resume", r}, {"--epochs", "2"}}), {r + "/state.safetensors"});
  EXPECT_EQ(snapshot(r), before);
}

// ---------------------------------------------------------------------------------------------
// Bad options

struct BadOption {
  std::string option, value, needle;
};

TEST_F(CliErrors, InvalidOptionValues) {
  const std::string run_dir = copy_run("word8");
  const Files before = snapshot(run_dir);
  for (const BadOption& b : std::vector<BadOption>{{"--hidden", "0", "--hidden"},
                                                   {"--hidden", "-3", "--hidden"},
                                                   {"--hidden", "abc", "--hidden"},
                                                   {"--hidden", "010", "decimal"},  // not 8 (base 0)
                                                   {"--seed", "0x10", "decimal"},
                                                   {"--batch", "0", "--batch"},
                                                   {"--bptt", "0", "--bptt"},
                                                   {"--lr", "nan", "--lr"},
                                                   {"--lr", "-1", "--lr"},
                                                   {"--lr", "inf", "--lr"},
                                                   {"--activation", "foo", "--activation"},
                                                   {"--cell", "foo", "--cell"},
                                                   {"--tokens", "foo", "--tokens"},
                                                   {"--schedule", "foo", "--schedule"},
                                                   {"--output", "foo", "--output"},
                                                   {"--cutoffs", "4,x", "--cutoffs"},
                                                   {"--cutoffs", "4,99", "--cutoffs"},
                                                   {"--sparse-updates", "foo", "--sparse-updates"},
                                                   {"--on-diverge", "foo", "--on-diverge"},
                                                   {"--max-rollbacks", "-1", "--max-rollbacks"},
                                                   {"--max-rollbacks", "61", "--max-rollbacks"},
                                                   {"--diverge-ratio", "0.5", "--diverge-ratio"},
                                                   {"--diverge-ratio", "nan", "--diverge-ratio"}}) {
    SCOPED_TRACE(b.option + " " + b.value);
    const std::string fresh = dir_ + "/fresh";
    expect_user_error(run("train", with(train_opts(suite_), {{b.option, b.value}, {"--out", fresh}})),
                      {b.needle, b.value});
    EXPECT_FALSE(fs::exists(fresh));
    expect_user_error(run("train", {{"--resume", run_dir}, {b.option, b.value}}), {b.needle});
    EXPECT_EQ(snapshot(run_dir), before);
  }
  // Unknown options and subcommands are usage errors too.
  expect_user_error(run("train", with(train_opts(suite_), {{"--hiden", "8"}, {"--out", dir_ + "/fresh"}})),
                    {"--hiden"});
  expect_user_error(run("trian", {}), {});
  EXPECT_FALSE(fs::exists(dir_ + "/fresh"));
  // eval and sample check theirs before writing anything.
  expect_user_error(run("eval", {{"--model", run_dir}, {"--batch", "-1"}}), {"--batch"});
  expect_user_error(run("sample", {{"--model", run_dir}, {"--temperature", "0"}}), {"--temperature"});
  expect_user_error(run("sample", {{"--model", run_dir}, {"--length", "0"}}), {"--length"});
  expect_user_error(run("sample", {{"--model", run_dir}, {"--top-k", "07"}}), {"--top-k", "decimal"});
  expect_user_error(run("bench gemm", {{"--bptt", "010"}}), {"--bptt", "decimal"});
  expect_user_error(run("eval", {{"--model", dir_ + "/no-run"}}), {"--model", dir_ + "/no-run"});
  expect_user_error(run("eval", {{"--model", run_dir}, {"--text", dir_ + "/none.txt"}}), {dir_ + "/none.txt"});
  EXPECT_EQ(snapshot(run_dir), before);
}

TEST_F(CliErrors, BadConfigFiles) {
  const std::string run_dir = copy_run("word8");
  const Files before = snapshot(run_dir);
  // Keys that the command line below does not give (it would win over the file).
  const std::string unknown = write("unknown.json", "{\"layers\": 1, \"hiddden\": 9}");
  const std::string malformed = write("malformed.json", "{\"layers\": 1,");
  const std::string not_object = write("array.json", "[1, 2]");
  const std::string bad_value = write("value.json", "{\"layers\": \"many\"}");
  const std::string nested = write("nested.json", "{\"layers\": {\"value\": 1}}");
  const std::string invalid = write("invalid.json", "{\"layers\": 0}");
  const std::string missing = dir_ + "/missing.json";
  for (const auto& [path, needle] : std::vector<std::pair<std::string, std::string>>{{unknown, "hiddden"},
                                                                                     {malformed, "JSON"},
                                                                                     {not_object, "JSON"},
                                                                                     {bad_value, "layers"},
                                                                                     {nested, "layers"},
                                                                                     {missing, "missing.json"}}) {
    SCOPED_TRACE(path);
    const std::string fresh = dir_ + "/fresh";
    expect_user_error(run("train", with(train_opts(suite_), {{"--config", path}, {"--out", fresh}})), {path, needle});
    EXPECT_FALSE(fs::exists(fresh));
    expect_user_error(run("train", {{"--resume", run_dir}, {"--config", path}}), {path});
    EXPECT_EQ(snapshot(run_dir), before);
  }
  // A well-formed file with a bad value fails like the option would.
  expect_user_error(run("train", with(train_opts(suite_), {{"--config", invalid}, {"--out", dir_ + "/fresh"}})),
                    {"--layers"});
  EXPECT_FALSE(fs::exists(dir_ + "/fresh"));
}

// An unknown name of an enum-like option (on the command line or in a --config file) names the option and
// the allowed values; --resume with another value of an option that defines the run (the table's
// fixed-on-resume ones) names the option and the run's config.json, and leaves the run as it was.
TEST_F(CliErrors, EnumValuesAndFixedOptionsOnResume) {
  const std::string run_dir = copy_run("word8");
  const Files before = snapshot(run_dir);
  for (const auto& [option, value, choices] : std::vector<std::tuple<std::string, std::string, std::string>>{
           {"--cell", "rnn", "elman, lstm, gru"},
           {"--optimizer", "Adam", "sgd, adam, adamw"},
           {"--dropout-mask", "none", "standard, variational"},
           {"--precision", "fp16", "fp32, bf16"},
           {"--grad-compress", "zip", "none, fp16, int8, dyn8, threshold"}}) {
    SCOPED_TRACE(option);
    expect_user_error(run("train", with(train_opts(suite_), {{option, value}, {"--out", dir_ + "/fresh"}})),
                      {option, "'" + value + "'", choices});
    const std::string cfg = write("enum.json", nlohmann::json{{option.substr(2), value}}.dump());
    expect_user_error(run("train", with(train_opts(suite_), {{"--config", cfg}, {"--out", dir_ + "/fresh"}})),
                      {cfg, option, choices});
    EXPECT_FALSE(fs::exists(dir_ + "/fresh"));
  }
  for (const auto& [option, value] : std::vector<std::pair<std::string, std::string>>{{"--cell", "lstm"},
                                                                                      {"--optimizer", "adam"},
                                                                                      {"--dropout-mask", "variational"},
                                                                                      {"--tokens", "char"},
                                                                                      {"--bptt", "6"},
                                                                                      {"--seed", "2"},
                                                                                      {"--tied", ""}}) {
    SCOPED_TRACE(option);
    expect_user_error(run("train", {{"--resume", run_dir}, {option, value}, {"--epochs", "2"}}),
                      {option, run_dir + "/config.json", "a resumed run keeps its settings"});
  }
  EXPECT_EQ(snapshot(run_dir), before);
  // What may change on resume does: a larger --epochs, another --threads.
  EXPECT_EQ(run("train", {{"--resume", run_dir}, {"--epochs", "2"}, {"--threads", "2"}}).status, 0);
}

TEST_F(CliErrors, OutOntoAnExistingRunWithoutResume) {
  const std::string run_dir = copy_run("word8");
  const Files before = snapshot(run_dir);
  expect_user_error(run("train", with(train_opts(suite_), {{"--out", run_dir}})), {"--out", run_dir, "--resume"});
  EXPECT_EQ(snapshot(run_dir), before);
  // Even when only one file of a run is there (vocab.json alone is not: a set-up that failed, guard_test.cc).
  fs::create_directory(dir_ + "/partial");
  write("partial/config.json", "{}");
  expect_user_error(run("train", with(train_opts(suite_), {{"--out", dir_ + "/partial"}})), {"--out"});
  EXPECT_EQ(snapshot(dir_ + "/partial"), (Files{{"config.json", "{}"}}));
  // --resume of something that is not a run.
  fs::create_directory(dir_ + "/empty-dir");
  expect_user_error(run("train", {{"--resume", dir_ + "/empty-dir"}}), {"--resume", dir_ + "/empty-dir"});
  EXPECT_TRUE(fs::is_empty(dir_ + "/empty-dir"));
}

// ---------------------------------------------------------------------------------------------
// What works

class CliRun : public CliTest {};

TEST_F(CliRun, HelpListsEveryOptionWithItsDefault) {
  // The options and defaults come from the same registration the binary uses: no list kept by hand.
  CLI::App app;
  add_train_command(app);
  add_eval_command(app);
  add_sample_command(app);
  const Result top = run("--help", {});
  EXPECT_EQ(top.status, 0) << top.err;
  for (const char* sub : {"train", "eval", "sample"}) EXPECT_NE(top.out.find(sub), std::string::npos) << top.out;
  for (const char* sub : {"train", "eval", "sample"}) {
    SCOPED_TRACE(sub);
    const Result r = run(sub, {{"--help", ""}});
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.err, "");
    int listed = 0, with_default = 0;
    for (const CLI::Option* opt : app.get_subcommand(sub)->get_options()) {
      if (opt->get_lnames().empty()) continue;
      const std::string name = "--" + opt->get_lnames()[0];
      EXPECT_NE(r.out.find(name), std::string::npos) << name << " missing from --help";
      ++listed;
      if (!opt->get_default_str().empty()) {
        const std::string type = opt->get_type_name();  // empty for flags
        const std::string shown = name + (type.empty() ? "" : " " + type) + "=" + opt->get_default_str();
        EXPECT_NE(r.out.find(shown), std::string::npos) << "'" << shown << "' missing from --help:\n" << r.out;
        ++with_default;
      }
    }
    // Guards against a vacuous pass (an empty option list).
    EXPECT_GE(listed, std::string(sub) == "train" ? 35 : 8);
    EXPECT_GE(with_default, std::string(sub) == "train" ? 20 : 1);
  }
}

// stdout holds exactly one line, a JSON object whose "command" is `command`.
nlohmann::json one_json_object(const Result& r, const std::string& command) {
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out.find('\n'), r.out.size() - 1) << "not exactly one line on stdout: " << r.out;
  nlohmann::json j = nlohmann::json::parse(r.out, nullptr, false);
  EXPECT_TRUE(j.is_object()) << r.out;
  if (!j.is_object()) return nlohmann::json::object();
  EXPECT_EQ(j.value("command", ""), command);
  return j;
}

TEST_F(CliRun, JsonPrintsExactlyOneObject) {
  const std::string out = dir_ + "/run";
  const nlohmann::json t =
      one_json_object(run("train", with(train_opts(suite_), {{"--out", out}, {"--json", ""}})), "train");
  EXPECT_EQ(t.value("run_dir", ""), out);
  EXPECT_EQ(t.value("epochs", 0), 1);
  EXPECT_GT(t.value("steps", 0), 0);
  EXPECT_TRUE(std::isfinite(t.value("test_ppl", NAN)));
  const nlohmann::json e = one_json_object(
      run("eval",
          {{"--model", out}, {"--text", suite_ + "/test.txt"}, {"--cache-dir", dir_ + "/cache"}, {"--json", ""}}),
      "eval");
  EXPECT_GT(e.value("tokens", 0), 100);
  EXPECT_EQ(e.value("oov", -1), 0);
  // The default text is the run's test file, scored as the trainer scored it.
  const nlohmann::json d = one_json_object(run("eval", {{"--model", out}, {"--threads", "1"}, {"--json", ""}}), "eval");
  EXPECT_DOUBLE_EQ(d.value("perplexity", 0.0), t.value("test_ppl", 1.0));
  const nlohmann::json s =
      one_json_object(run("sample", {{"--model", out}, {"--length", "7"}, {"--json", ""}}), "sample");
  EXPECT_TRUE(s.contains("text") && s["text"].is_string());
  EXPECT_EQ(s.value("tokens", 0), 7);
}

// More threads than the process's CPUs are capped with a note (a team larger than its CPUs waits at every
// barrier for threads that are not running); --threads-force keeps them.
TEST_F(CliRun, ThreadsAboveTheCpusAreCappedUnlessForced) {
  const std::string n = std::to_string(cpu_count() + 1), cpus = std::to_string(cpu_count());
  Result r = run("train", with(train_opts(suite_), {{"--out", dir_ + "/capped"}, {"--threads", n}}));
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.err.find(", " + cpus + " threads,"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("note: --threads " + n + " capped at the " + cpus + " CPUs"), std::string::npos) << r.err;
  r = run("train", with(train_opts(suite_), {{"--out", dir_ + "/forced"}, {"--threads", n}, {"--threads-force", ""}}));
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.err.find(", " + n + " threads,"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("capped"), std::string::npos) << r.err;
}

// A bf16 run is scored by eval in bf16, as the trainer scored it (eval builds the run's engine: backend and
// precision). Where the CPU has no AVX512_BF16 the run trains in fp32 and there is nothing to tell apart.
TEST_F(CliRun, EvalScoresABf16RunAsTheTrainerDid) {
  if (!bf16_supported()) GTEST_SKIP() << "no AVX512_BF16 on this CPU";
  const std::string out = dir_ + "/bf16";
  const nlohmann::json t = one_json_object(
      run("train",
          with(train_opts(suite_), {{"--out", out}, {"--gemm", "onednn"}, {"--precision", "bf16"}, {"--json", ""}})),
      "train");
  const nlohmann::json d = one_json_object(run("eval", {{"--model", out}, {"--threads", "1"}, {"--json", ""}}), "eval");
  EXPECT_DOUBLE_EQ(d.value("perplexity", 0.0), t.value("test_ppl", 1.0));
}

// train --json keeps its keys (and "gradients" only with ranks); config.json holds every saved option, enums
// by name.
TEST_F(CliRun, JsonResultAndConfigJsonKeepTheirKeys) {
  const std::string out = dir_ + "/run";
  const nlohmann::json t = one_json_object(
      run("train",
          with(train_opts(suite_), {{"--out", out}, {"--json", ""}, {"--optimizer", "adamw"}, {"--lr", "0.01"}})),
      "train");
  std::set<std::string> keys;
  for (const auto& [k, v] : t.items()) keys.insert(k);
  EXPECT_EQ(keys,
            (std::set<std::string>{
                "command",       "run_dir",          "train_ppl",     "valid_ppl",      "test_ppl",     "epochs",
                "best_epoch",    "averaged_updates", "steps",         "tokens_per_sec", "wall_seconds", "train_seconds",
                "input_seconds", "input_share",      "eval_batch",    "bptt",           "parameters",   "interrupted",
                "ranks",         "rollbacks",        "max_loss_ratio"}));
  EXPECT_EQ(t.value("ranks", 0), 1);
  EXPECT_EQ(t.value("interrupted", true), false);
  const nlohmann::json saved = nlohmann::json::parse(read_bytes(out + "/config.json"));
  EXPECT_EQ(saved.value("optimizer", ""), "adamw");
  EXPECT_EQ(saved.value("cell", ""), "elman");
  EXPECT_EQ(saved.value("gemm", ""), "onednn");
  EXPECT_EQ(saved.value("grad-compress", ""), "none");
  for (const char* unsaved : {"out", "resume", "json", "max-steps", "config"})
    EXPECT_FALSE(saved.contains(unsaved)) << unsaved;
  EXPECT_GE(saved.size(), 50u);
}

TEST_F(CliRun, ConfigFileWithCommandLineOverrides) {
  const std::string cfg = write("config.json", nlohmann::json{{"train", suite_ + "/train.txt"},
                                                              {"valid", suite_ + "/valid.txt"},
                                                              {"test", suite_ + "/test.txt"},
                                                              {"hidden", 5},
                                                              {"embed", 6},
                                                              {"batch", 2},
                                                              {"bptt", 4},
                                                              {"eval-batch", 2},
                                                              {"epochs", 1},
                                                              {"threads", 1},
                                                              {"seed", 7},
                                                              {"activation", "relu"},
                                                              {"lr", 0.5},
                                                              {"cache-dir", dir_ + "/cache"},
                                                              {"json", true}}
                                                   .dump());
  const std::string out = dir_ + "/run";
  const Result r = run("train", {{"--config", cfg}, {"--hidden", "7"}, {"--out", out}});
  const nlohmann::json j = one_json_object(r, "train");  // "json": true came from the file
  const nlohmann::json saved = nlohmann::json::parse(read_bytes(out + "/config.json"), nullptr, false);
  ASSERT_TRUE(saved.is_object());
  EXPECT_EQ(saved.value("hidden", 0), 7);  // the command line wins
  EXPECT_EQ(saved.value("embed", 0), 6);   // the rest comes from the file
  EXPECT_EQ(saved.value("bptt", 0), 4);
  EXPECT_EQ(saved.value("seed", 0), 7);
  EXPECT_EQ(saved.value("activation", ""), "relu");
  EXPECT_EQ(saved.value("lr", 0.0), 0.5);
  EXPECT_EQ(saved.value("schedule", ""), "step");  // and the defaults fill in what neither gives
  EXPECT_EQ(j.value("bptt", 0), 4);
  EXPECT_NE(r.err.find("1x7 (relu)"), std::string::npos) << r.err;
}

TEST_F(CliRun, ResumeReadsTheRunsOptionsAndContinuesBitIdentically) {
  const Opts two_epochs = with(train_opts(suite_), {{"--epochs", "2"}, {"--json", ""}});
  const std::string whole = dir_ + "/whole", parts = dir_ + "/parts";
  const nlohmann::json a = one_json_object(run("train", with(two_epochs, {{"--out", whole}})), "train");
  const Result first = run("train", with(two_epochs, {{"--out", parts}, {"--max-steps", "30"}}));
  EXPECT_EQ(one_json_object(first, "train").value("steps", 0), 30);
  // Nothing but --resume and the one option to change: the rest is read from parts/config.json.
  const nlohmann::json b =
      one_json_object(run("train", {{"--resume", parts}, {"--max-steps", "0"}, {"--json", ""}}), "train");
  EXPECT_EQ(b.value("steps", 0), a.value("steps", -1));
  EXPECT_EQ(b.value("test_ppl", 0.0), a.value("test_ppl", 1.0));
  EXPECT_EQ(read_bytes(parts + "/model.safetensors"), read_bytes(whole + "/model.safetensors"));
}

// A run made with relative paths (the default ./data search, a relative --out) continues and is scored
// from another working directory: config.json records the data directory it used as an absolute path.
TEST_F(CliRun, ResumeAndEvalWorkFromAnotherDirectory) {
  const std::string work = dir_ + "/work", elsewhere = dir_ + "/elsewhere";
  fs::create_directories(work + "/data/mini");
  fs::create_directories(elsewhere);
  for (const char* f : {"train.txt", "valid.txt", "test.txt"}) fs::copy(suite_ + "/" + f, work + "/data/mini/" + f);
  Opts o = with(train_opts(suite_), {{"--corpus", "mini"}, {"--out", "r"}, {"--max-steps", "10"}, {"--json", ""}});
  o.erase(std::remove_if(
              o.begin(), o.end(),
              [](const auto& kv) { return kv.first == "--train" || kv.first == "--valid" || kv.first == "--test"; }),
          o.end());
  EXPECT_EQ(one_json_object(run_in(work, "train", o), "train").value("steps", 0), 10);
  const auto config = nlohmann::json::parse(read_bytes(work + "/r/config.json"));
  EXPECT_TRUE(fs::path(config.value("data", "")).is_absolute()) << config.dump();
  EXPECT_TRUE(fs::equivalent(config.value("data", ""), work + "/data")) << config.dump();
  const nlohmann::json resumed = one_json_object(
      run_in(elsewhere, "train", {{"--resume", work + "/r"}, {"--max-steps", "14"}, {"--json", ""}}), "train");
  EXPECT_EQ(resumed.value("steps", 0), 14);
  const Result e = run_in(elsewhere, "eval", {{"--model", work + "/r"}, {"--json", ""}});
  EXPECT_EQ(e.status, 0) << e.err;
  const nlohmann::json ej = one_json_object(e, "eval");
  EXPECT_TRUE(fs::equivalent(ej.value("text", ""), work + "/data/mini/test.txt")) << ej.dump();
  EXPECT_GT(ej.value("perplexity", 0.0), 1.0);
}

}  // namespace
}  // namespace manylm

namespace manylm {
namespace {

using namespace cli_test;  // NOLINT
namespace fs = std::filesystem;

// Sampling and scoring work for every cell: --per-word has one line per token whose ln-probabilities
// give the reported perplexity, --sentences one score per input line, sampling is a function of the seed.
TEST_F(CliRun, SampleAndScoreEveryCell) {
  const std::string text = suite_ + "/test.txt";
  int lines = 0;
  for (char ch : read_bytes(text)) lines += ch == '\n';
  const Opts adaptive = {{"--output", "adaptive"}, {"--cutoffs", "4,9"}, {"--div-value", "2"}, {"--head-bias", ""}};
  for (auto [cell, extra] : std::vector<std::pair<std::string, Opts>>{
           {"elman", {}}, {"lstm", {}}, {"gru", {}}, {"lstm", adaptive}, {"gru", adaptive}}) {
    SCOPED_TRACE(cell + (extra.empty() ? "" : " adaptive"));
    const std::string out = dir_ + "/run-" + cell + (extra.empty() ? "" : "-adaptive");
    ASSERT_EQ(run("train", with(with(train_opts(suite_), extra), {{"--out", out}, {"--cell", cell}})).status, 0);
    const std::string pw = out + "-pw.tsv", sent = out + "-sent.txt";
    const nlohmann::json e =
        one_json_object(run("eval", {{"--model", out}, {"--text", text}, {"--per-word", pw}, {"--json", ""}}), "eval");
    std::istringstream in(read_bytes(pw));
    std::string word;
    double ln = 0, lg = 0, sum = 0;
    int64_t n = 0;
    while (in >> word >> ln >> lg) {
      EXPECT_LT(ln, 0.0);
      EXPECT_NEAR(lg, ln / std::log(10.0), 1e-5);
      sum += ln;
      ++n;
    }
    EXPECT_EQ(n, e.value("tokens", -1));
    EXPECT_NEAR(std::exp(-sum / n), e.value("perplexity", 0.0), 1e-3 * e.value("perplexity", 0.0));
    ASSERT_EQ(run("eval", {{"--model", out}, {"--text", text}, {"--sentences", sent}}).status, 0);
    std::istringstream sin(read_bytes(sent));
    int scored = 0;
    for (double v; sin >> v; ++scored) EXPECT_LT(v, 0.0);
    EXPECT_EQ(scored, lines);
    const Result a = run("sample", {{"--model", out}, {"--length", "12"}, {"--seed", "3"}, {"--top-k", "5"}});
    const Result b = run("sample", {{"--model", out}, {"--length", "12"}, {"--seed", "3"}, {"--top-k", "5"}});
    EXPECT_EQ(a.status, 0);
    EXPECT_FALSE(a.out.empty());
    EXPECT_EQ(a.out, b.out);
  }
  // A prompt's line end is <eos>, as in the corpus (it was dropped before, joining the lines).
  const auto words = nlohmann::json::parse(read_bytes(suite_ + "/word8/vocab.json"))["words"];
  const std::string w1 = words[5], w2 = words[6];
  const nlohmann::json j = one_json_object(
      run("sample",
          {{"--model", suite_ + "/word8"}, {"--prompt", w1 + "\r\n" + w2}, {"--length", "3"}, {"--json", ""}}),
      "sample");
  EXPECT_EQ(j.value("text", "").rfind(w1 + "\n" + w2, 0), 0u) << j.dump();
}

// `average`: the element-wise mean of weight files, which eval scores with --weights FILE; files of another
// model, an existing --out and a missing --weights file are refused.
TEST_F(CliRun, AverageWeightsAndEvalThem) {
  const std::string a = suite_ + "/word8/model.safetensors";
  const std::string run_b = dir_ + "/b";
  ASSERT_EQ(run("train", with(train_opts(suite_), {{"--out", run_b}, {"--seed", "2"}})).status, 0);
  const std::string b = run_b + "/model.safetensors", avg = dir_ + "/avg.safetensors";
  const nlohmann::json j =
      one_json_object(run("average", {{a, ""}, {b, ""}, {"--out", avg}, {"--json", ""}}), "average");
  const auto ta = load_safetensors(a).tensors, tb = load_safetensors(b).tensors;
  EXPECT_EQ(j.value("tensors", size_t{0}), ta.size());
  const SafeTensorsFile m = load_safetensors(avg);
  ASSERT_EQ(m.tensors.size(), ta.size());
  for (const auto& [name, t] : m.tensors)
    for (size_t k = 0; k < t.values.size(); ++k)
      ASSERT_FLOAT_EQ(t.values[k], 0.5f * (ta.at(name).values[k] + tb.at(name).values[k])) << name << "[" << k << "]";
  EXPECT_EQ(m.metadata.count("manylm.step"), 0u);
  EXPECT_NE(m.metadata.at("manylm.averaged_from").find("word8"), std::string::npos);
  const nlohmann::json e = one_json_object(
      run("eval",
          {{"--model", suite_ + "/word8"}, {"--weights", avg}, {"--text", suite_ + "/test.txt"}, {"--json", ""}}),
      "eval");
  EXPECT_EQ(e.value("weights", ""), avg);
  EXPECT_GT(e.value("perplexity", 0.0), 1.0);
  expect_user_error(run("average", {{a, ""}, {b, ""}, {"--out", avg}}), {avg, "exists"});
  expect_user_error(run("average", {{a, ""}, {suite_ + "/word12/model.safetensors", ""}, {"--out", dir_ + "/x"}}),
                    {"word12/model.safetensors", "another model"});
  EXPECT_FALSE(fs::exists(dir_ + "/x"));
  expect_user_error(run("eval", {{"--model", suite_ + "/word8"}, {"--weights", dir_ + "/none.safetensors"}}),
                    {dir_ + "/none.safetensors"});
}

// ---------------------------------------------------------------------------------------------
// The bench commands on tiny shapes: one JSON object each, every row's figures finite and positive.

// A bench --json figure: a JSON number (a number written as a string is a failure).
double num(const nlohmann::json& row, const char* key) {
  if (!row.contains(key) || !row[key].is_number()) {
    ADD_FAILURE() << key << " is not a JSON number in " << row.dump();
    return NAN;
  }
  return row[key].get<double>();
}

std::vector<nlohmann::json> bench_rows(const Result& r) {
  const nlohmann::json j = one_json_object(r, "bench");
  EXPECT_TRUE(j.contains("rows") && j["rows"].is_array() && !j["rows"].empty()) << r.out;
  if (!j.contains("rows") || !j["rows"].is_array()) return {};
  return j["rows"].get<std::vector<nlohmann::json>>();
}

TEST_F(CliRun, BenchPeakGemmRngAndTrainPrintTheirFigures) {
  const Opts one = {{"--threads-list", "1"}, {"--repeats", "1"}, {"--json", ""}};
  for (const auto& row : bench_rows(run("bench peak", one))) {
    EXPECT_GT(num(row, "fp32_gflops"), 1.0);
    EXPECT_GT(num(row, "triad_gbs"), 0.1);
    // The best library GEMM: a positive fraction of the FMA peak (it may pass 100 % only by noise).
    EXPECT_GT(num(row, "gemm_ceiling_gflops"), 1.0);
    EXPECT_GT(num(row, "gemm_ceiling_pct"), 1.0);
#ifndef __SANITIZE_ADDRESS__  // scripts/sanitize.sh: the peak loop is instrumented at -O1, the libraries are not
    EXPECT_LT(num(row, "gemm_ceiling_pct"), 200.0);
#endif
    EXPECT_NE(std::string("blas onednn blis libxsmm").find(row.value("gemm_ceiling_backend", "?")), std::string::npos);
  }
  const auto gemm = bench_rows(run("bench gemm", with(one, {{"--batch-list", "4"},
                                                            {"--hidden-list", "8"},
                                                            {"--bptt", "3"},
                                                            {"--vocab", "50"},
                                                            {"--backend-list", "blas,manylm"}})));
  std::map<std::string, int> chains;
  for (const auto& row : gemm) {
    ++chains[row.value("backend", "") + "/" + row.value("chain", "")];
    EXPECT_GT(num(row, "gflops"), 0.0) << row.dump();
    EXPECT_GT(num(row, "pct_peak"), 0.0) << row.dump();
  }
  for (const char* b : {"blas", "manylm"})
    for (const char* c : {"one-shape", "train-step", "recurrent-per-step", "input-time-batched"})
      EXPECT_GT(chains[std::string(b) + "/" + c], 0) << b << " " << c;
  for (const auto& row : bench_rows(run("bench rng", one))) EXPECT_GT(num(row, "ns_per_element"), 0.0) << row.dump();
  const std::string recipe = write("recipe.json", nlohmann::json{{"train", suite_ + "/train.txt"},
                                                                 {"valid", suite_ + "/valid.txt"},
                                                                 {"test", suite_ + "/test.txt"},
                                                                 {"cell", "lstm"},
                                                                 {"hidden", 8},
                                                                 {"embed", 8},
                                                                 {"batch", 2},
                                                                 {"bptt", 5},
                                                                 {"dropout", 0.5},
                                                                 {"average-from", 1},
                                                                 {"cache-dir", dir_ + "/cache"}}
                                                      .dump());
  for (const auto& row : bench_rows(
           run("bench train",
               with(one, {{"--recipe", recipe}, {"--steps", "2"}, {"--backend-list", "blas"}, {"--ceiling", ""}})))) {
    EXPECT_GT(num(row, "tokens_per_s"), 0.0) << row.dump();
    EXPECT_GT(num(row, "step_ms"), 0.0) << row.dump();
    EXPECT_GT(num(row, "ceiling_pct_peak"), 0.0) << row.dump();
    EXPECT_GT(num(row, "pct_of_ceiling"), 0.0) << row.dump();
    EXPECT_GE(num(row, "average_ms"), 0.0) << row.dump();  // a number, not n/a: the recipe averages its weights
  }
  // Sizes that would divide by zero or allocate nonsense are refused before anything is measured.
  expect_user_error(run("bench train", with(one, {{"--recipe", recipe}, {"--steps", "0"}})), {"--steps"});
  expect_user_error(run("bench gemm", with(one, {{"--bptt", "-1"}})), {"--bptt"});
  expect_user_error(run("bench gemm", with(one, {{"--vocab", "0"}})), {"--vocab"});
}

}  // namespace
}  // namespace manylm

namespace manylm {
namespace {

using namespace cli_test;  // NOLINT

// The adaptive softmax's keys in config files, as the issue names them: "cutoffs" as an array or a string;
// config.json keeps the array; --tied with an adaptive output is one line naming both options.
TEST_F(CliRun, AdaptiveOutputFromConfigKeys) {
  for (const std::string cutoffs : {"[4, 9]", "\"4,9\""}) {
    SCOPED_TRACE(cutoffs);
    const std::string cfg =
        write("adaptive.json", "{\"output\": \"adaptive\", \"cutoffs\": " + cutoffs + ", \"div-value\": 2}");
    const std::string out = dir_ + "/ad" + std::to_string(cutoffs.size());
    const Result r = run("train", with(train_opts(suite_), {{"--config", cfg}, {"--out", out}, {"--cell", "lstm"}}));
    ASSERT_EQ(r.status, 0) << r.err;
    const auto saved = nlohmann::json::parse(read_bytes(out + "/config.json"));
    EXPECT_EQ(saved["cutoffs"], nlohmann::json::parse("[4, 9]"));
    EXPECT_EQ(saved["output"], "adaptive");
    const auto st = read_bytes(out + "/model.safetensors");
    for (const char* name : {"decoder.head.weight", "decoder.tail.0.0.weight", "decoder.tail.1.1.weight"})
      EXPECT_NE(st.find(name), std::string::npos) << name;
    EXPECT_EQ(st.find("decoder.head.bias"), std::string::npos);
  }
  // A model that cannot fit in memory: one line before anything is allocated or written.
  expect_user_error(run("train", with(train_opts(suite_), {{"--hidden", "100000"}, {"--out", dir_ + "/huge"}})),
                    {"memory: the run needs ~", "GB available", "--allow-oversize"});
  EXPECT_FALSE(fs::exists(dir_ + "/huge"));
  expect_user_error(
      run("train", with(train_opts(suite_),
                        {{"--output", "adaptive"}, {"--cutoffs", "4,9"}, {"--tied", ""}, {"--out", dir_ + "/tied"}})),
      {"--tied", "--output adaptive"});
  EXPECT_FALSE(fs::exists(dir_ + "/tied"));
}

}  // namespace
}  // namespace manylm
