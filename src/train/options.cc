// options.cc — see options.h. The table below is the one place an option is declared.
#include "train/options.h"

#include <fmt/format.h>

#include <charconv>
#include <limits>
#include <type_traits>
#include <utility>

#include "core/error.h"
#include "core/io.h"

namespace manylm {

using nlohmann::json;

namespace {

constexpr TrainOption kTrainOptions[] = {
    {.name = "data", .field = &Config::data, .group = "Data",
     .help = "Data directory holding corpora (default: ./data, then ../shared/data)"},
    {.name = "corpus", .field = &Config::corpus, .group = "Data",
     .help = "Corpus folder under the data directory (with train.txt, valid.txt, test.txt)"},
    {.name = "train", .field = &Config::train, .group = "Data",
     .help = "Training text file (overrides the corpus)"},
    {.name = "valid", .field = &Config::valid, .group = "Data",
     .help = "Validation text file (overrides the corpus)"},
    {.name = "test", .field = &Config::test, .group = "Data",
     .help = "Test text file (overrides the corpus)"},
    {.name = "tokens", .field = &Config::tokens, .group = "Data", .fixed_on_resume = true,
     .help = "Token unit: word or char"},
    {.name = "vocab-size", .field = &Config::vocab_size, .group = "Data", .fixed_on_resume = true,
     .help = "Keep at most this many types, rarer words become <unk> (0: all)"},
    {.name = "min-count", .field = &Config::min_count, .group = "Data", .fixed_on_resume = true,
     .help = "Words seen fewer times become <unk>"},
    {.name = "cache-dir", .field = &Config::cache_dir, .group = "Data",
     .help = "Token-id cache directory (default: $MANYLM_CACHE, else $XDG_CACHE_HOME/manylm, else ~/.cache/manylm)"},
    {.name = "cell", .field = &Config::cell, .group = "Model", .fixed_on_resume = true,
     .help = "Recurrent cell: elman, lstm or gru"},
    {.name = "activation", .field = &Config::activation, .group = "Model", .fixed_on_resume = true,
     .help = "Elman activation: sigmoid, tanh or relu"},
    {.name = "layers", .field = &Config::layers, .group = "Model", .fixed_on_resume = true,
     .help = "Stacked recurrent layers (L)"},
    {.name = "hidden", .field = &Config::hidden, .group = "Model", .fixed_on_resume = true,
     .help = "Hidden units per layer (H)"},
    {.name = "embed", .field = &Config::embed, .group = "Model", .fixed_on_resume = true,
     .help = "Embedding size (E)"},
    {.name = "init", .field = &Config::init, .group = "Model",
     .help = "Initialize every parameter uniformly in [-init, init]"},
    {.name = "init-from", .field = &Config::init_from, .group = "Model",
     .help = "Start from the weights in this file (model.safetensors, best/average.safetensors or an epoch's copy of a run of the same model and vocabulary) instead of --init: warm start, fine-tuning"},
    {.name = "tied", .field = &Config::tied, .group = "Model", .flag = true, .fixed_on_resume = true,
     .help = "Tie the decoder's weights to the embedding (Press & Wolf; needs --embed = --hidden)"},
    {.name = "dropout", .field = &Config::dropout, .group = "Model", .fixed_on_resume = true,
     .help = "Dropout probability on the non-recurrent connections (embedding, between layers, before the softmax)"},
    {.name = "dropout-mask", .field = &Config::dropout_mask, .group = "Model", .fixed_on_resume = true,
     .help = "standard (new mask every step) or variational (one mask per window, shared by its steps)"},
    {.name = "batch", .field = &Config::batch, .group = "Training", .fixed_on_resume = true,
     .help = "Batch lanes (B): parallel streams of the training text"},
    {.name = "bptt", .field = &Config::bptt, .group = "Training", .fixed_on_resume = true,
     .help = "Steps per window (T) of truncated backpropagation through time"},
    {.name = "eval-batch", .field = &Config::eval_batch, .group = "Training",
     .help = "Batch lanes for validation and test"},
    {.name = "epochs", .field = &Config::epochs, .group = "Training",
     .help = "Maximum passes over the training text"},
    {.name = "lr", .field = &Config::lr, .group = "Training", .fixed_on_resume = true,
     .help = "Learning rate (SGD), for the objective summed over steps and averaged over lanes"},
    {.name = "optimizer", .field = &Config::optimizer, .group = "Training", .fixed_on_resume = true,
     .help = "sgd, adam or adamw"},
    {.name = "weight-decay", .field = &Config::weight_decay, .group = "Training",
     .help = "Weight decay (sgd, adam: L2 in the gradient; adamw: decoupled)"},
    {.name = "beta1", .field = &Config::beta1, .group = "Training",
     .help = "Adam: first-moment decay"},
    {.name = "beta2", .field = &Config::beta2, .group = "Training",
     .help = "Adam: second-moment decay"},
    {.name = "eps", .field = &Config::eps, .group = "Training",
     .help = "Adam: denominator epsilon"},
    {.name = "clip", .field = &Config::clip, .group = "Training",
     .help = "Clip the global gradient norm to this (0: off)"},
    {.name = "schedule", .field = &Config::schedule, .group = "Training",
     .help = "Learning-rate schedule: constant, step, newbob or plateau"},
    {.name = "decay", .field = &Config::decay, .group = "Training",
     .help = "Divide the rate by this (step: each epoch after --decay-after; newbob: when decaying; plateau: after an epoch without a new best validation loss)"},
    {.name = "decay-after", .field = &Config::decay_after, .group = "Training",
     .help = "step schedule: epochs trained at the full rate before dividing starts"},
    {.name = "patience", .field = &Config::patience, .group = "Training",
     .help = "plateau schedule: epochs in a row without a new best validation loss tolerated before dividing (PyTorch's ReduceLROnPlateau)"},
    {.name = "newbob-ratio", .field = &Config::newbob_ratio, .group = "Training",
     .help = "newbob: minimum validation perplexity improvement ratio"},
    {.name = "keep-best", .field = &Config::keep_best, .group = "Training", .flag = true,
     .help = "Keep the weights of the best validation epoch in best.safetensors; the final scores, eval and sample use them"},
    {.name = "average-from", .field = &Config::average_from, .group = "Training",
     .help = "From this epoch on, validate, keep and score the mean of the weights after every update (Polyak averaging, AWD-LSTM's ASGD; average.safetensors); 0: off"},
    {.name = "average-nonmono", .field = &Config::average_nonmono, .group = "Training", .fixed_on_resume = true,
     .help = "Instead of --average-from: start averaging after the epoch that makes the best validation loss this many epochs old (AWD-LSTM's NT-ASGD trigger); 0: off"},
    {.name = "seed", .field = &Config::seed, .group = "Training", .fixed_on_resume = true,
     .help = "Random seed: a run is a pure function of config, data, seed and thread count"},
    {.name = "threads", .field = &Config::threads, .group = "Training",
     .help = "Threads (0: all cores)"},
    {.name = "gemm", .field = &Config::gemm, .group = "Training",
     .help = "GEMM backend: onednn (oneDNN matmul), blas (OpenBLAS), libxsmm, blis, or auto (per shape, the fastest measured here; plan cached on disk)"},
    {.name = "precision", .field = &Config::precision, .group = "Training",
     .help = "Matrix products in fp32, or bf16 (bfloat16 operands, fp32 accumulation and master weights; needs AVX512_BF16)"},
    {.name = "max-steps", .field = &Config::max_steps, .group = "Training", .saved = false,
     .help = "Stop after this many updates, saving a checkpoint (0: no limit)"},
    {.name = "grad-compress", .field = &Config::grad_compress, .group = "Distributed",
     .help = "Gradient all-reduce under mpirun: none, fp16, int8, dyn8 (Dettmers) or threshold (Strom), with error feedback"},
    {.name = "bucket-mb", .field = &Config::bucket_mb, .group = "Distributed",
     .help = "Gradient all-reduce bucket size in MiB (launched as soon as backward finishes it)"},
    {.name = "threshold-tau", .field = &Config::threshold_tau, .group = "Distributed",
     .help = "threshold: fixed tau (0: adaptive, see --threshold-density)"},
    {.name = "threshold-density", .field = &Config::threshold_density, .group = "Distributed",
     .help = "threshold with adaptive tau: fraction of gradient values sent per step"},
    {.name = "deterministic", .field = &Config::deterministic, .group = "Distributed", .flag = true,
     .help = "Sum gradients in rank order: bitwise reproducible whatever MPI's algorithm"},
    {.name = "comm-thread", .field = &Config::comm_thread, .group = "Distributed",
     .help = "true: a progress thread drives the all-reduce during backward; false: polled between layers"},
    {.name = "checkpoint-minutes", .field = &Config::checkpoint_minutes, .group = "Run",
     .help = "Save a checkpoint every this many minutes"},
    {.name = "checkpoint-steps", .field = &Config::checkpoint_steps, .group = "Run",
     .help = "Also save every this many updates (0: off)"},
    {.name = "progress-seconds", .field = &Config::progress_seconds, .group = "Run",
     .help = "Seconds between progress lines when stderr is not a terminal"},
    {.name = "out", .field = &Config::out, .group = "Run", .saved = false,
     .help = "Run directory for checkpoints and metrics (default: runs/<cell>-<time>)"},
    {.name = "resume", .field = &Config::resume, .group = "Run", .saved = false,
     .help = "Continue the run in this directory, bit-identically"},
    {.name = "json", .field = &Config::json, .group = "Run", .flag = true, .saved = false,
     .help = "Print one JSON object with the results on stdout at the end"},
};

template <class T>
bool parse_number(const std::string& s, T& v) {
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() && end == s.data() + s.size();
}

// One value of type T from JSON, or the reason it is not one.
template <class T>
std::string from_json_value(const json& j, T& v) {
  const std::string got = "(got " + j.dump(-1, ' ', false, json::error_handler_t::replace) + ")";
  if constexpr (NamedEnum<T>) {
    const std::optional<T> e = j.is_string() ? lookup_name<T>(j.get<std::string>()) : std::nullopt;
    if (!e) return j.is_string() ? unknown_name_message<T>(j.get<std::string>()) : "expected one of " + name_choices<T>() + " " + got;
    v = *e;
  } else if constexpr (std::is_same_v<T, std::string>) {
    if (!j.is_string()) return "expected a string " + got;
    v = j.get<std::string>();
  } else if constexpr (std::is_same_v<T, bool>) {
    if (j.is_boolean()) v = j.get<bool>();
    else if (j == "true" || j == "false") v = j == "true";
    else return "expected true or false " + got;
  } else if constexpr (std::is_integral_v<T>) {
    const bool fits = j.is_number_unsigned() ? std::in_range<T>(j.get<uint64_t>())
                                             : j.is_number_integer() && std::in_range<T>(j.get<int64_t>());
    if (fits) v = j.get<T>();
    else if (!(j.is_string() && parse_number(j.get<std::string>(), v))) return "expected an integer " + got;
  } else {
    if (j.is_number()) v = j.get<T>();
    else if (!(j.is_string() && parse_number(j.get<std::string>(), v))) return "expected a number " + got;
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
        if constexpr (NamedEnum<std::remove_cvref_t<decltype(c.*field)>>) return name_of(c.*field);
        else return c.*field;
      },
      o.field);
}

std::string option_text(const TrainOption& o, const Config& c) {
  return std::visit(
      [&](auto field) -> std::string {
        using T = std::remove_cvref_t<decltype(c.*field)>;
        if constexpr (NamedEnum<T>) return name_of(c.*field);
        else if constexpr (std::is_same_v<T, std::string>) return c.*field;
        else if constexpr (std::is_same_v<T, bool>) return c.*field ? "true" : "false";
        else return fmt::format("{}", c.*field);  // doubles in full: the shortest text that reads back the same
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
    if (o.saved) j[o.name] = option_json(o, c);
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
    if (o.fixed_on_resume && !same_value(o, saved, now))
      fail("--{}: {} was trained with a different value ({}, not {}); a resumed run keeps its settings", o.name, path,
           option_text(o, saved), option_text(o, now));
}

}  // namespace manylm
