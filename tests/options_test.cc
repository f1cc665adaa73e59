// options_test.cc — the one table of training options (train/options.h) and the enums' name tables
// (core/names.h): a config.json as manylm wrote it before options were typed still loads, and writes back
// byte for byte; every option round-trips through config.json; the resume check refuses exactly the options
// the table marks fixed on resume; config-file errors name the file, the option and the allowed values; the
// training state keeps its JSON keys. Not the command line end to end (cli_test.cc).
#include <gtest/gtest.h>
#include <stdlib.h>

#include <set>
#include <string>
#include <type_traits>

#include "core/io.h"
#include "test_util.h"
#include "train/checkpoint.h"
#include "train/config.h"
#include "train/options.h"
#include "train/progress.h"

namespace manylm {
namespace {

using test_util::user_error;

// A config.json written by manylm before its options were typed (the commit before typed options; a gru with
// adam, plateau, variational dropout, --keep-best, blas, the largest seed), byte for byte.
constexpr const char* kOldConfigJson = R"({
  "activation": "tanh",
  "average-from": 0,
  "average-nonmono": 0,
  "batch": 4,
  "beta1": 0.9,
  "beta2": 0.999,
  "bptt": 7,
  "bucket-mb": 4.0,
  "cache-dir": "/data/ptb-slice/cache",
  "cell": "gru",
  "checkpoint-minutes": 10.0,
  "checkpoint-steps": 0,
  "clip": 5.0,
  "comm-thread": true,
  "corpus": "ptb",
  "data": "",
  "decay": 2.0,
  "decay-after": 4,
  "deterministic": false,
  "dropout": 0.2,
  "dropout-mask": "variational",
  "embed": 16,
  "epochs": 2,
  "eps": 1e-07,
  "eval-batch": 3,
  "gemm": "blas",
  "grad-compress": "none",
  "hidden": 16,
  "init": 0.1,
  "init-from": "",
  "keep-best": true,
  "layers": 1,
  "lr": 0.003,
  "min-count": 1,
  "newbob-ratio": 1.003,
  "optimizer": "adam",
  "patience": 0,
  "precision": "fp32",
  "progress-seconds": 10.0,
  "schedule": "plateau",
  "seed": 18446744073709551615,
  "test": "/data/ptb-slice/test.txt",
  "threads": 1,
  "threshold-density": 0.01,
  "threshold-tau": 0.0,
  "tied": false,
  "tokens": "word",
  "train": "/data/ptb-slice/train.txt",
  "valid": "/data/ptb-slice/valid.txt",
  "vocab-size": 0,
  "weight-decay": 0.0
}
)";

// state.safetensors' "manylm.train_state" as that run wrote it.
constexpr const char* kOldTrainState =
    R"({"average_count":0,"average_start":0,"best_epoch":2,"best_valid":5.133098146032079,"decaying":false,"epoch":2,"epoch_loss":0.0,"epoch_seconds":0.0,"epoch_tokens":0,"finished":true,"last_valid":5.133098146032079,"lr":0.003,"step":476,"stop":false,"train_seconds":0.07912305400000007,"train_tokens":13288,"window":0})";

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/manylm-options-test-XXXXXX";
    path = mkdtemp(tmpl);
  }
  ~TempDir() { std::system(("rm -rf " + path).c_str()); }
  std::string write(const std::string& name, const std::string& text) const {
    write_file_atomic(path + "/" + name, text);
    return path + "/" + name;
  }
};

// Another valid value for the option: the next name of an enum, a flipped bool, a larger number, a longer string.
void change(const TrainOption& o, Config& c) {
  std::visit(
      [&](auto field) {
        auto& v = c.*field;
        using T = std::remove_cvref_t<decltype(v)>;
        if constexpr (NamedEnum<T>) {
          const auto names = enum_names(T{});
          size_t i = 0;
          while (names[i].value != v) ++i;
          v = names[(i + 1) % names.size()].value;
        } else if constexpr (std::is_same_v<T, std::string>) {
          v += "x";
        } else if constexpr (std::is_same_v<T, bool>) {
          v = !v;
        } else if constexpr (std::is_same_v<T, std::vector<int64_t>>) {
          v.push_back(v.empty() ? 5 : v.back() + 7);
        } else if constexpr (std::is_integral_v<T>) {
          v = v + 3;
        } else {
          v = v * 2 + 0.25;
        }
      },
      o.field);
}

template <NamedEnum E>
void expect_table_round_trips(const char* option) {
  std::set<std::string> seen;
  for (const Named<E>& n : enum_names(E{})) {
    EXPECT_EQ(lookup_name<E>(n.name), n.value) << n.name;
    EXPECT_STREQ(name_of(n.value), n.name);
    EXPECT_TRUE(seen.insert(n.name).second) << n.name << " twice";
    EXPECT_EQ(parse_name<E>(n.name, option), n.value);
  }
  const std::string msg = user_error([&] { parse_name<E>("Nope", option); });
  for (const std::string& needle : {std::string(option) + ": ", std::string("'Nope'"), name_choices<E>()})
    EXPECT_NE(msg.find(needle), std::string::npos) << needle << " missing from: " << msg;
}

TEST(Names, EveryEnumTableRoundTripsAndNamesItsChoices) {
  expect_table_round_trips<Cell>("--cell");
  expect_table_round_trips<Activation>("--activation");
  expect_table_round_trips<TokenMode>("--tokens");
  expect_table_round_trips<DropoutMask>("--dropout-mask");
  expect_table_round_trips<OptimizerKind>("--optimizer");
  expect_table_round_trips<Schedule>("--schedule");
  expect_table_round_trips<GemmBackend>("--gemm");
  expect_table_round_trips<Precision>("--precision");
  expect_table_round_trips<Compress>("--grad-compress");
  expect_table_round_trips<Shuffle>("--shuffle");
  EXPECT_EQ(name_choices<Cell>(), "elman, lstm, gru");
}

TEST(Options, TableNamesAreUniqueAndDocumented) {
  std::set<std::string> names;
  for (const TrainOption& o : train_options()) {
    EXPECT_TRUE(names.insert(o.name).second) << o.name << " twice";
    EXPECT_EQ(find_train_option(o.name), &o);
    EXPECT_NE(std::string(o.help), "") << o.name;
    EXPECT_NE(std::string(o.group), "") << o.name;
    if (o.flag()) EXPECT_TRUE(std::holds_alternative<bool Config::*>(o.field)) << o.name << ": a flag sets a bool";
  }
  EXPECT_GE(names.size(), 50u);
  EXPECT_EQ(find_train_option("no-such-option"), nullptr);
}

// Old run directories still load: the config.json above reads into the typed Config, and writing that Config
// gives the same bytes back.
TEST(Options, ConfigJsonWrittenBeforeTypedOptionsStillLoads) {
  TempDir dir;
  const std::string path = dir.write("config.json", kOldConfigJson);
  const Config c = config_from_json_file(path);
  EXPECT_EQ(c.cell, Cell::Gru);
  EXPECT_EQ(c.activation, Activation::Tanh);
  EXPECT_EQ(c.tokens, TokenMode::Word);
  EXPECT_EQ(c.optimizer, OptimizerKind::Adam);
  EXPECT_EQ(c.schedule, Schedule::Plateau);
  EXPECT_EQ(c.dropout_mask, DropoutMask::Variational);
  EXPECT_EQ(c.gemm, GemmBackend::Blas);
  EXPECT_EQ(c.precision, Precision::Fp32);
  EXPECT_EQ(c.grad_compress, Compress::None);
  EXPECT_EQ(c.seed, 18446744073709551615ull);
  EXPECT_EQ(c.eps, 1e-7);
  EXPECT_EQ(c.lr, 0.003);
  EXPECT_TRUE(c.keep_best);
  EXPECT_TRUE(c.comm_thread);
  EXPECT_EQ(c.train, "/data/ptb-slice/train.txt");
  // Written back: the old keys and values, and the options added since at their defaults.
  nlohmann::json now = nlohmann::json::parse(config_to_json(c));
  for (const char* key :
       {"output", "cutoffs", "div-value", "head-bias", "sparse-updates", "shuffle", "shuffle-block", "comm-timeout",
        "on-diverge", "max-rollbacks", "diverge-ratio", "vocab-file", "vocab-format", "unk-token", "eos-token"})
    now.erase(key);
  EXPECT_EQ(now.dump(2) + "\n", kOldConfigJson);
  EXPECT_EQ(c.output, Output::Full);
  EXPECT_EQ(c.sparse_updates, SparseUpdates::Auto);
  EXPECT_EQ(c.shuffle, Shuffle::None) << "a run from before --shuffle read its text as it is";
  EXPECT_EQ(c.comm_timeout, 300);  // --comm-timeout came later: its default
  // An older one, from before --patience and averaging existed: the defaults fill in.
  nlohmann::json older = nlohmann::json::parse(kOldConfigJson);
  for (const char* key : {"patience", "average-from", "average-nonmono"}) older.erase(key);
  const Config o = config_from_json_file(dir.write("older.json", older.dump(2)));
  EXPECT_EQ(o.patience, 0);
  EXPECT_EQ(o.average_from, 0);
  EXPECT_EQ(o.cell, Cell::Gru);
}

// Every saved option, changed from its default, comes back from config.json; the others are not written.
TEST(Options, EveryOptionRoundTripsThroughConfigJson) {
  TempDir dir;
  Config c;
  for (const TrainOption& o : train_options()) change(o, c);
  const std::string text = config_to_json(c);
  const nlohmann::json j = nlohmann::json::parse(text);
  const Config back = config_from_json_file(dir.write("config.json", text));
  for (const TrainOption& o : train_options()) {
    SCOPED_TRACE(o.name);
    EXPECT_EQ(j.contains(o.name), o.saved());
    EXPECT_EQ(same_value(o, back, c), o.saved());  // unsaved ones keep their defaults
    if (o.saved()) EXPECT_EQ(j.at(o.name), option_json(o, c));
  }
}

// The resume check is the table's: exactly the options marked fixed_on_resume are refused with another value.
TEST(Options, ResumeRefusesExactlyTheOptionsFixedOnResume) {
  const Config saved;
  std::set<std::string> fixed;
  for (const TrainOption& o : train_options()) {
    SCOPED_TRACE(o.name);
    Config now = saved;
    change(o, now);
    ASSERT_FALSE(same_value(o, saved, now));
    if (!o.fixed_on_resume()) {
      EXPECT_NO_THROW(check_fixed_on_resume(saved, now, "run/config.json"));
      continue;
    }
    fixed.insert(o.name);
    const std::string msg = user_error([&] { check_fixed_on_resume(saved, now, "run/config.json"); });
    EXPECT_EQ(msg.rfind(std::string("--") + o.name + ": run/config.json", 0), 0u) << msg;
    EXPECT_NE(msg.find(option_text(o, saved)), std::string::npos) << msg;
  }
  // What defines a run's trajectory (the list run_training checked by hand before the table).
  EXPECT_EQ(fixed, (std::set<std::string>{"cell",         "activation",      "layers",    "hidden",       "embed",
                                          "tokens",       "batch",           "bptt",      "seed",         "dropout",
                                          "dropout-mask", "vocab-size",      "min-count", "optimizer",    "tied",
                                          "lr",           "average-nonmono", "output",    "cutoffs",      "div-value",
                                          "head-bias",    "sparse-updates",  "shuffle",   "shuffle-block"}));
  EXPECT_NO_THROW(check_fixed_on_resume(saved, saved, "run/config.json"));
}

TEST(Options, ConfigFileErrorsNameTheFileTheOptionAndTheChoices) {
  TempDir dir;
  struct Case {
    std::string json;
    std::vector<std::string> needles;
  };
  for (const Case& k : std::vector<Case>{{R"({"optimizer": "sgdd"})", {"--optimizer", "'sgdd'", "sgd, adam, adamw"}},
                                         {R"({"cell": 3})", {"--cell", "elman, lstm, gru"}},
                                         {R"({"layers": "many"})", {"--layers", "integer"}},
                                         {R"({"layers": 2.5})", {"--layers", "integer"}},
                                         {R"({"threads": 99999999999})", {"--threads", "integer"}},
                                         {R"({"seed": "-1x"})", {"--seed", "integer"}},
                                         {R"({"lr": true})", {"--lr", "number"}},
                                         {R"({"tied": "maybe"})", {"--tied", "true or false"}},
                                         {R"({"corpus": 5})", {"--corpus", "string"}},
                                         {R"({"cutoffs": "20,x"})", {"--cutoffs", "2000,10000"}},
                                         {R"({"cutoffs": [20, 1.5]})", {"--cutoffs", "integers"}},
                                         {R"({"hiddden": 9})", {"unknown option 'hiddden'"}},
                                         {R"([1, 2])", {"JSON object"}},
                                         {R"({"layers": 1,)", {"JSON object"}}}) {
    SCOPED_TRACE(k.json);
    const std::string path = dir.write("bad.json", k.json);
    const std::string msg = user_error([&] { config_from_json_file(path); });
    EXPECT_EQ(msg.rfind(path + ": ", 0), 0u) << msg;
    for (const std::string& n : k.needles) EXPECT_NE(msg.find(n), std::string::npos) << n << " missing from: " << msg;
  }
  // Numbers may come as strings, null means the default, and what the command line gave wins.
  Config c;
  c.hidden = 7;
  read_config_file(dir.write("ok.json", R"({"layers": "3", "lr": "0.25", "hidden": 9, "embed": null, "cell": "lstm"})"),
                   c, {"hidden"});
  EXPECT_EQ(c.layers, 3);
  EXPECT_EQ(c.lr, 0.25);
  EXPECT_EQ(c.hidden, 7);
  EXPECT_EQ(c.embed, Config{}.embed);
  EXPECT_EQ(c.cell, Cell::Lstm);
}

// A config file accepts what the command line accepts for the same option (CLI11's reading): boolean spellings,
// spaces and '+' around numbers, a negative unsigned seed wrapping as strtoull does (what the pre-table reader,
// which went through CLI11, accepted).
TEST(Options, ConfigFileAcceptsWhatTheCommandLineAccepts) {
  TempDir dir;
  Config c;
  read_config_file(dir.write("cli.json", R"({"seed": -1, "comm-thread": "off", "tied": 1, "keep-best": "yes",
                                               "deterministic": "On", "lr": "+0.5", "clip": " 2.5 ", "layers": " +3"})"),
                   c);
  EXPECT_EQ(c.seed, 18446744073709551615ull);
  EXPECT_FALSE(c.comm_thread);
  EXPECT_TRUE(c.tied);
  EXPECT_TRUE(c.keep_best);
  EXPECT_TRUE(c.deterministic);
  EXPECT_EQ(c.lr, 0.5);
  EXPECT_EQ(c.clip, 2.5);
  EXPECT_EQ(c.layers, 3);
  Config d;
  read_config_file(dir.write("cli2.json", R"({"seed": "-2", "tied": "F", "keep-best": 0})"), d);
  EXPECT_EQ(d.seed, 18446744073709551614ull);
  EXPECT_FALSE(d.tied);
  EXPECT_FALSE(d.keep_best);
}

// The training state keeps its keys: a checkpoint's state reads and writes back byte for byte; one from
// before --keep-best and averaging (no best_*, epoch_seconds, average_*) loads with their defaults; a loss
// that is not yet known (infinity) is written as null and read back.
TEST(Checkpoint, TrainStateJsonKeepsItsKeys) {
  const TrainState s = TrainState::from_json(kOldTrainState, "state.safetensors");
  EXPECT_EQ(s.step, 476);
  EXPECT_EQ(s.sched.best_epoch, 2);
  EXPECT_EQ(s.sched.lr, 0.003);
  EXPECT_TRUE(s.finished);
  // Written back: the old keys and values, and the divergence guard's (issue 21) at their defaults.
  nlohmann::json back = nlohmann::json::parse(s.to_json());
  EXPECT_EQ(back.at("rollbacks"), 0);
  EXPECT_EQ(back.at("running_loss"), 0.0);
  back.erase("rollbacks"), back.erase("running_loss");
  EXPECT_EQ(back.dump(), kOldTrainState);
  nlohmann::json old = nlohmann::json::parse(kOldTrainState);
  for (const char* key : {"best_valid", "best_epoch", "epoch_seconds", "average_count", "average_start"})
    old.erase(key);
  old["last_valid"] = nullptr;
  const TrainState o = TrainState::from_json(old.dump(), "state.safetensors");
  EXPECT_EQ(o.sched.best_epoch, 0);
  EXPECT_TRUE(std::isinf(o.sched.best_valid));
  EXPECT_TRUE(std::isinf(o.sched.last_valid));
  EXPECT_EQ(o.train_tokens, 13288);
  EXPECT_TRUE(nlohmann::json::parse(o.to_json()).at("last_valid").is_null());
  old.erase("step");
  const std::string msg = user_error([&] { TrainState::from_json(old.dump(), "state.safetensors"); });
  EXPECT_NE(msg.find("state.safetensors"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'step'"), std::string::npos) << msg;
}

// The start line names the activation where it is a choice (Elman), not for LSTM and GRU.
TEST(Progress, StartLineNamesTheActivationOnlyForElman) {
  Config c;
  c.cell = Cell::Elman, c.layers = 1, c.hidden = 200;
  EXPECT_NE(start_line(c, 10000, 5, 2, 1, 100, false, "r").find("elman 1x200 (tanh), vocab"), std::string::npos);
  c.cell = Cell::Lstm, c.layers = 2;
  EXPECT_NE(start_line(c, 10000, 5, 2, 1, 100, false, "r").find("lstm 2x200, vocab"), std::string::npos);
}

}  // namespace
}  // namespace manylm
