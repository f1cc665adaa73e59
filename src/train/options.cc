// options.cc — see options.h. The table below is the one place an option is declared.
#include "train/options.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cctype>
#include <charconv>
#include <limits>
#include <optional>
#include <type_traits>
#include <utility>

#include "core/error.h"
#include "core/io.h"

namespace manylm {

using nlohmann::json;

namespace {

// In --help's order: name, Config field, --help group, traits, help. kFixedOnResume: what defines the
// trajectory of a run (the model, the data it sees and in what order, the random numbers, the optimizer).
constexpr TrainOption kTrainOptions[] = {
    {"data", &Config::data, "Data", kPlain, "Data directory holding corpora (default: ./data, then ../shared/data)"},
    {"corpus", &Config::corpus, "Data", kPlain,
     "Corpus folder under the data directory (with train.txt, valid.txt, test.txt)"},
    {"train", &Config::train, "Data", kPlain, "Training text file (overrides the corpus)"},
    {"valid", &Config::valid, "Data", kPlain, "Validation text file (overrides the corpus)"},
    {"test", &Config::test, "Data", kPlain, "Test text file (overrides the corpus)"},
    {"tokens", &Config::tokens, "Data", kFixedOnResume, "Token unit: word or char"},
    {"vocab-size", &Config::vocab_size, "Data", kFixedOnResume,
     "Keep at most this many types, rarer words become <unk> (0: all)"},
    {"min-count", &Config::min_count, "Data", kFixedOnResume, "Words seen fewer times become <unk>"},
    // A resumed run reads its vocabulary from vocab.json: the file may have moved.
    {"vocab-file", &Config::vocab_file, "Data", kPlain,
     "A fixed vocabulary instead of one counted from the training text; ids keep the file's order, other words "
     "become the unknown word"},
    {"vocab-format", &Config::vocab_format, "Data", kPlain,
     "--vocab-file's layout: lines (one word per line), kaldi (words.txt: word id; <eps> and #0 skipped), lm1b "
     "(1b_word_vocab.txt: word count) or auto (detected)"},
    {"unk-token", &Config::unk_token, "Data", kPlain, "--vocab-file: its unknown word (e.g. <UNK>)"},
    {"eos-token", &Config::eos_token, "Data", kPlain, "--vocab-file: its line-end word (e.g. </S> or </s>)"},
    {"cache-dir", &Config::cache_dir, "Data", kPlain,
     "Token-id cache directory (default: $MANYLM_CACHE, else $XDG_CACHE_HOME/manylm, else ~/.cache/manylm)"},
    // The order of the text defines the trajectory; a resumed run rebuilds its epoch's order from the seed.
    {"shuffle", &Config::shuffle, "Data", kFixedOnResume,
     "Order of each epoch's training text: none (as it is, one contiguous stream: the PTB convention) or sentences "
     "(blocks of whole sentences in a new seeded order every epoch, for corpora of independent sentences)"},
    {"shuffle-block", &Config::shuffle_block, "Data", kFixedOnResume,
     "--shuffle sentences: a block holds whole sentences, at least this many tokens (1: every sentence is a block; "
     "the index takes about 40 bytes per block)"},
    {"cell", &Config::cell, "Model", kFixedOnResume, "Recurrent cell: elman, lstm or gru"},
    {"activation", &Config::activation, "Model", kFixedOnResume, "Elman activation: sigmoid, tanh or relu"},
    {"layers", &Config::layers, "Model", kFixedOnResume, "Stacked recurrent layers (L)"},
    {"hidden", &Config::hidden, "Model", kFixedOnResume, "Hidden units per layer (H)"},
    {"embed", &Config::embed, "Model", kFixedOnResume, "Embedding size (E)"},
    {"init", &Config::init, "Model", kPlain, "Initialize every parameter uniformly in [-init, init]"},
    {"init-from", &Config::init_from, "Model", kPlain,
     "Start from the weights in this file (model.safetensors, best/average.safetensors or an epoch's copy of a run of "
     "the same model and vocabulary) instead of --init: warm start, fine-tuning"},
    {"tied", &Config::tied, "Model", kFlag | kFixedOnResume,
     "Tie the decoder's weights to the embedding (Press & Wolf; needs --embed = --hidden)"},
    {"output", &Config::output, "Model", kFixedOnResume,
     "Output layer: full softmax, or adaptive (Grave et al.; PyTorch's AdaptiveLogSoftmaxWithLoss: exact "
     "probabilities, a fraction of the cost at large vocabularies)"},
    {"cutoffs", &Config::cutoffs, "Model", kFixedOnResume,
     "adaptive: word ids where the head's shortlist and each tail cluster end, ascending, e.g. 2000,10000 (ids are "
     "in descending count order)"},
    {"div-value", &Config::div_value, "Model", kFixedOnResume,
     "adaptive: tail cluster i projects the hidden units to H / div-value^(i+1)"},
    {"head-bias", &Config::head_bias, "Model", kFlag | kFixedOnResume, "adaptive: the head has a bias"},
    {"dropout", &Config::dropout, "Model", kFixedOnResume,
     "Dropout probability on the non-recurrent connections (embedding, between layers, before the softmax)"},
    {"dropout-mask", &Config::dropout_mask, "Model", kFixedOnResume,
     "standard (new mask every step) or variational (one mask per window, shared by its steps)"},
    {"batch", &Config::batch, "Training", kFixedOnResume, "Batch lanes (B): parallel streams of the training text"},
    {"bptt", &Config::bptt, "Training", kFixedOnResume,
     "Steps per window (T) of truncated backpropagation through time"},
    {"eval-batch", &Config::eval_batch, "Training", kPlain, "Batch lanes for validation and test"},
    {"epochs", &Config::epochs, "Training", kPlain, "Maximum passes over the training text"},
    // The current rate is part of the checkpointed schedule state; a new --lr would apply to some schedules and
    // not others, at once or only from the next epoch.
    {"lr", &Config::lr, "Training", kFixedOnResume,
     "Learning rate (SGD), for the objective summed over steps and averaged over lanes"},
    {"optimizer", &Config::optimizer, "Training", kFixedOnResume, "sgd, adam or adamw"},
    {"sparse-updates", &Config::sparse_updates, "Training", kFixedOnResume,
     "auto, on or off: keep the embedding's gradient as the rows a step touched and skip what it did not reach "
     "(exact for SGD, where auto turns it on; lazy Adam moments as PyTorch's SparseAdam with on)"},
    {"weight-decay", &Config::weight_decay, "Training", kPlain,
     "Weight decay (sgd, adam: L2 in the gradient; adamw: decoupled)"},
    {"beta1", &Config::beta1, "Training", kPlain, "Adam: first-moment decay"},
    {"beta2", &Config::beta2, "Training", kPlain, "Adam: second-moment decay"},
    {"eps", &Config::eps, "Training", kPlain, "Adam: denominator epsilon"},
    {"clip", &Config::clip, "Training", kPlain, "Clip the global gradient norm to this (0: off)"},
    {"schedule", &Config::schedule, "Training", kPlain, "Learning-rate schedule: constant, step, newbob or plateau"},
    {"decay", &Config::decay, "Training", kPlain,
     "Divide the rate by this (step: each epoch after --decay-after; newbob: when decaying; plateau: after an epoch "
     "without a new best validation loss)"},
    {"decay-after", &Config::decay_after, "Training", kPlain,
     "step schedule: epochs trained at the full rate before dividing starts"},
    {"patience", &Config::patience, "Training", kPlain,
     "plateau schedule: epochs in a row without a new best validation loss tolerated before dividing (PyTorch's "
     "ReduceLROnPlateau)"},
    {"newbob-ratio", &Config::newbob_ratio, "Training", kPlain,
     "newbob: minimum validation perplexity improvement ratio"},
    {"keep-best", &Config::keep_best, "Training", kFlag,
     "Keep the weights of the best validation epoch in best.safetensors; the final scores, eval and sample use them"},
    {"average-from", &Config::average_from, "Training", kPlain,
     "From this epoch on, validate, keep and score the mean of the weights after every update (Polyak averaging, "
     "AWD-LSTM's ASGD; average.safetensors); 0: off"},
    // Its trigger depends on the run's history. (--average-from may change on resume before averaging has
    // begun: train/resume.h.)
    {"average-nonmono", &Config::average_nonmono, "Training", kFixedOnResume,
     "Instead of --average-from: start averaging after the epoch that makes the best validation loss this many epochs "
     "old (AWD-LSTM's NT-ASGD trigger); 0: off"},
    {"seed", &Config::seed, "Training", kFixedOnResume,
     "Random seed: a run is a pure function of config, data, seed and thread count"},
    {"threads", &Config::threads, "Training", kPlain, "Threads (0: all cores)"},
    {"threads-force", &Config::threads_force, "Training", kFlag | kNotSaved,
     "Keep a --threads above the CPUs this process may use (otherwise capped to them, with a note)"},
    {"allow-oversize", &Config::allow_oversize, "Training", kFlag | kNotSaved,
     "Run even where the memory estimate (parameters, gradients, optimizer, activations) exceeds the memory this "
     "process may use (its cgroup's limit, else physical memory)"},
    {"gemm", &Config::gemm, "Training", kPlain,
     "GEMM backend: onednn (oneDNN matmul), blas (OpenBLAS), libxsmm, blis, or auto (per shape, the fastest measured "
     "here; plan cached on disk)"},
    {"precision", &Config::precision, "Training", kPlain,
     "Matrix products in fp32, or bf16 (bfloat16 operands, fp32 accumulation and master weights; needs AVX512_BF16)"},
    {"max-steps", &Config::max_steps, "Training", kNotSaved,
     "Stop after this many updates, saving a checkpoint (0: no limit)"},
    {"on-diverge", &Config::on_diverge, "Training", kPlain,
     "A step whose loss or gradient norm is not finite, or whose loss exceeds --diverge-ratio times the running loss, "
     "is never applied: rollback (reload the last checkpoint, halve the rate) or stop (exit 2)"},
    {"max-rollbacks", &Config::max_rollbacks, "Training", kPlain,
     "--on-diverge rollback: the rollbacks a run may take; the next divergence stops it (exit 2)"},
    {"diverge-ratio", &Config::diverge_ratio, "Training", kPlain,
     "A step's loss per token above this times both the running loss and ln V (a uniform guess) is a divergence (0: "
     "only non-finite losses)"},
    {"grad-compress", &Config::grad_compress, "Distributed", kPlain,
     "Gradient all-reduce under mpirun: none, fp16, int8, dyn8 (Dettmers) or threshold (Strom), with error feedback"},
    {"bucket-mb", &Config::bucket_mb, "Distributed", kPlain,
     "Gradient all-reduce bucket size in MiB (launched as soon as backward finishes it)"},
    {"threshold-tau", &Config::threshold_tau, "Distributed", kPlain,
     "threshold: fixed tau (0: adaptive, see --threshold-density)"},
    {"threshold-density", &Config::threshold_density, "Distributed", kPlain,
     "threshold with adaptive tau: fraction of gradient values sent per step"},
    {"deterministic", &Config::deterministic, "Distributed", kFlag,
     "Sum gradients in rank order: bitwise reproducible whatever MPI's algorithm"},
    {"comm-thread", &Config::comm_thread, "Distributed", kPlain,
     "true: a progress thread drives the all-reduce during backward; false: polled between layers"},
    {"comm-timeout", &Config::comm_timeout, "Distributed", kPlain,
     "Seconds a rank may wait for the others in a training step's collectives; then every rank stops with one line "
     "naming the rank that stopped answering and the checkpoint to resume from (0: no watchdog)"},
    {"checkpoint-minutes", &Config::checkpoint_minutes, "Run", kPlain, "Save a checkpoint every this many minutes"},
    {"checkpoint-steps", &Config::checkpoint_steps, "Run", kPlain, "Also save every this many updates (0: off)"},
    {"progress-seconds", &Config::progress_seconds, "Run", kPlain,
     "Seconds between progress lines when stderr is not a terminal"},
    {"out", &Config::out, "Run", kNotSaved, "Run directory for checkpoints and metrics (default: runs/<cell>-<time>)"},
    {"resume", &Config::resume, "Run", kNotSaved, "Continue the run in this directory, bit-identically"},
    {"json", &Config::json, "Run", kFlag | kNotSaved, "Print one JSON object with the results on stdout at the end"},
};

// Values in config files are read as CLI11 reads the same text on the command line, so that a file and the
// command line accept the same things: spaces around a number and a leading '+' are allowed, an unsigned
// integer given negative wraps as strtoull makes it (--seed -1 is 2^64 - 1), and a boolean may be
// true/false, 1/0, yes/no, on/off, enable/disable, t/f, y/n or +/- in any case.
template <class T>
bool parse_number(std::string s, T& v) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  size_t b = 0;
  while (b < s.size() && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  if (b < s.size() && s[b] == '+' && b + 1 < s.size() && s[b + 1] != '-') ++b;
  const char* first = s.data() + b;
  const char* last = s.data() + s.size();
  if constexpr (std::is_unsigned_v<T>) {
    if (first < last && *first == '-') {  // strtoull's reading of a negative number
      int64_t n = 0;
      const auto [end, ec] = std::from_chars(first, last, n);
      if (ec != std::errc() || end != last) return false;
      v = static_cast<T>(n);
      return true;
    }
  }
  const auto [end, ec] = std::from_chars(first, last, v);
  return ec == std::errc() && end == last && first != last;
}

std::optional<bool> flag_value(std::string s) {
  for (char& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  for (const char* t : {"true", "1", "yes", "on", "enable", "t", "y", "+"})
    if (s == t) return true;
  for (const char* f : {"false", "0", "no", "off", "disable", "f", "n", "-"})
    if (s == f) return false;
  return std::nullopt;
}

template <class T>
std::string integer_from_json(const json& j, T& v, const std::string& got) {
  if (j.is_number_unsigned() && std::in_range<T>(j.get<uint64_t>())) {
    v = static_cast<T>(j.get<uint64_t>());
  } else if (j.is_number_integer() && (std::is_unsigned_v<T> || std::in_range<T>(j.get<int64_t>()))) {
    v = static_cast<T>(j.get<int64_t>());  // negative into unsigned: wraps, as on the command line
  } else if (!(j.is_string() && parse_number(j.get<std::string>(), v))) {
    return "expected an integer " + got;
  }
  return {};
}

// A list of integers: a JSON array of them, or a string of them separated by commas ("2000,10000").
std::string int_list_from_json(const json& j, std::vector<int64_t>& v, const std::string& got) {
  std::vector<int64_t> out;
  const std::string bad = "expected integers, as [2000, 10000] or \"2000,10000\" " + got;
  if (j.is_array()) {
    for (const json& e : j) {
      int64_t n = 0;
      if (!integer_from_json(e, n, got).empty()) return bad;
      out.push_back(n);
    }
  } else if (j.is_string()) {
    const std::string s = j.get<std::string>();
    size_t b = 0;
    while (b <= s.size() && !s.empty()) {
      const size_t e = std::min(s.find(',', b), s.size());
      int64_t n = 0;
      if (!parse_number(s.substr(b, e - b), n)) return bad;
      out.push_back(n);
      b = e + 1;
    }
  } else {
    return bad;
  }
  v = std::move(out);
  return {};
}

// One value of type T from JSON, or the reason it is not one.
template <class T>
std::string from_json_value(const json& j, T& v) {
  const std::string got = "(got " + j.dump(-1, ' ', false, json::error_handler_t::replace) + ")";
  if constexpr (NamedEnum<T>) {
    const std::optional<T> e = j.is_string() ? lookup_name<T>(j.get<std::string>()) : std::nullopt;
    if (!e)
      return j.is_string() ? unknown_name_message<T>(j.get<std::string>())
                           : "expected one of " + name_choices<T>() + " " + got;
    v = *e;
  } else if constexpr (std::is_same_v<T, std::string>) {
    if (!j.is_string()) return "expected a string " + got;
    v = j.get<std::string>();
  } else if constexpr (std::is_same_v<T, bool>) {
    std::optional<bool> b;
    if (j.is_boolean())
      b = j.get<bool>();
    else if (j.is_number_integer())
      b = j.get<int64_t>() != 0;
    else if (j.is_string())
      b = flag_value(j.get<std::string>());
    if (!b) return "expected true or false " + got;
    v = *b;
  } else if constexpr (std::is_same_v<T, std::vector<int64_t>>) {
    return int_list_from_json(j, v, got);
  } else if constexpr (std::is_integral_v<T>) {
    return integer_from_json(j, v, got);
  } else {
    if (j.is_number())
      v = j.get<T>();
    else if (!(j.is_string() && parse_number(j.get<std::string>(), v)))
      return "expected a number " + got;
  }
  return {};
}

}  // namespace

std::span<const TrainOption> train_options() { return kTrainOptions; }

const TrainOption* find_train_option(const std::string& name) {
  for (const TrainOption& o : kTrainOptions)
    if (name == o.name) return &o;
  return nullptr;
}

json option_json(const TrainOption& o, const Config& c) {
  return std::visit(
      [&](auto field) -> json {
        if constexpr (NamedEnum<std::remove_cvref_t<decltype(c.*field)>>)
          return name_of(c.*field);
        else
          return c.*field;
      },
      o.field);
}

std::string option_text(const TrainOption& o, const Config& c) {
  return std::visit(
      [&](auto field) -> std::string {
        using T = std::remove_cvref_t<decltype(c.*field)>;
        if constexpr (NamedEnum<T>)
          return name_of(c.*field);
        else if constexpr (std::is_same_v<T, std::string>)
          return c.*field;
        else if constexpr (std::is_same_v<T, bool>)
          return c.*field ? "true" : "false";
        else if constexpr (std::is_same_v<T, std::vector<int64_t>>)
          return fmt::format("{}", fmt::join(c.*field, ","));
        else
          return fmt::format("{}", c.*field);  // doubles in full: the shortest text that reads back the same
      },
      o.field);
}

void set_option(const TrainOption& o, Config& c, const json& v) {
  const std::string why = std::visit([&](auto field) { return from_json_value(v, c.*field); }, o.field);
  if (!why.empty()) fail("--{}: {}", o.name, why);
}

bool same_value(const TrainOption& o, const Config& a, const Config& b) {
  return std::visit([&](auto field) { return a.*field == b.*field; }, o.field);
}

std::string config_to_json(const Config& c) {
  json j = json::object();
  for (const TrainOption& o : kTrainOptions)
    if (o.saved()) j[o.name] = option_json(o, c);
  return j.dump(2) + "\n";
}

void read_config_file(const std::string& path, Config& c, const std::set<std::string>& given) {
  require_regular_file(path, "config");
  const json j = json::parse(read_file(path, "config"), nullptr, false);
  if (j.is_discarded() || !j.is_object())
    fail("{}: not a JSON object of options (keys are the long option names, without --)", path);
  for (const auto& [key, value] : j.items()) {
    const TrainOption* o = find_train_option(key);
    if (!o) fail("{}: unknown option '{}' (keys are the long option names, without --)", path, key);
    if (given.count(key) || value.is_null()) continue;  // the command line wins; null: the default
    try {
      set_option(*o, c, value);
    } catch (const UserError& e) {
      fail("{}: {}", path, e.what());
    }
  }
}

Config config_from_json_file(const std::string& path) {
  Config c;
  read_config_file(path, c);
  return c;
}

void check_fixed_on_resume(const Config& saved, const Config& now, const std::string& path) {
  for (const TrainOption& o : kTrainOptions)
    if (o.fixed_on_resume() && !same_value(o, saved, now))
      fail("--{}: {} was trained with a different value ({}, not {}); a resumed run keeps its settings", o.name, path,
           option_text(o, saved), option_text(o, now));
}

}  // namespace manylm
