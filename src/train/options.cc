// options.cc — see options.h.
#include "train/options.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <type_traits>

#include "core/error.h"
#include "core/io.h"

namespace manylm {

using nlohmann::json;

void bind_train_options(CLI::App& app, Config& c) {
  auto g = [&](const char* name, auto& field, const char* help) {
    CLI::Option* o = app.add_option(name, field, help)->capture_default_str();
    // Doubles in full (shortest round trip): CLI11's stream would keep 6 digits, and config.json is
    // written from these strings (lr 20/35 came back as 0.571429).
    if constexpr (std::is_same_v<std::decay_t<decltype(field)>, double>) o->default_str(fmt::format("{}", field));
    return o;
  };
  g("--data", c.data, "Data directory holding corpora (default: ./data, then ../shared/data)")->group("Data");
  g("--corpus", c.corpus, "Corpus folder under the data directory (with train.txt, valid.txt, test.txt)")->group("Data");
  g("--train", c.train, "Training text file (overrides the corpus)")->group("Data");
  g("--valid", c.valid, "Validation text file (overrides the corpus)")->group("Data");
  g("--test", c.test, "Test text file (overrides the corpus)")->group("Data");
  g("--tokens", c.tokens, "Token unit: word or char")->group("Data");
  g("--vocab-size", c.vocab_size, "Keep at most this many types, rarer words become <unk> (0: all)")->group("Data");
  g("--min-count", c.min_count, "Words seen fewer times become <unk>")->group("Data");
  g("--cache-dir", c.cache_dir, "Token-id cache directory (default: $MANYLM_CACHE, else $XDG_CACHE_HOME/manylm, else ~/.cache/manylm)")->group("Data");
  g("--cell", c.cell, "Recurrent cell: elman, lstm or gru")->group("Model");
  g("--activation", c.activation, "Elman activation: sigmoid, tanh or relu")->group("Model");
  g("--layers", c.layers, "Stacked recurrent layers (L)")->group("Model");
  g("--hidden", c.hidden, "Hidden units per layer (H)")->group("Model");
  g("--embed", c.embed, "Embedding size (E)")->group("Model");
  g("--init", c.init, "Initialize every parameter uniformly in [-init, init]")->group("Model");
  g("--init-from", c.init_from, "Start from the weights in this file (model.safetensors, best/average.safetensors or an epoch's copy of a run of the same model and vocabulary) instead of --init: warm start, fine-tuning")->group("Model");
  app.add_flag("--tied", c.tied, "Tie the decoder's weights to the embedding (Press & Wolf; needs --embed = --hidden)")
      ->default_str(c.tied ? "true" : "false")
      ->group("Model");
  g("--dropout", c.dropout, "Dropout probability on the non-recurrent connections (embedding, between layers, before the softmax)")->group("Model");
  g("--dropout-mask", c.dropout_mask, "standard (new mask every step) or variational (one mask per window, shared by its steps)")->group("Model");
  g("--batch", c.batch, "Batch lanes (B): parallel streams of the training text")->group("Training");
  g("--bptt", c.bptt, "Steps per window (T) of truncated backpropagation through time")->group("Training");
  g("--eval-batch", c.eval_batch, "Batch lanes for validation and test")->group("Training");
  g("--epochs", c.epochs, "Maximum passes over the training text")->group("Training");
  g("--lr", c.lr, "Learning rate (SGD), for the objective summed over steps and averaged over lanes")->group("Training");
  g("--optimizer", c.optimizer, "sgd, adam or adamw")->group("Training");
  g("--weight-decay", c.weight_decay, "Weight decay (sgd, adam: L2 in the gradient; adamw: decoupled)")->group("Training");
  g("--beta1", c.beta1, "Adam: first-moment decay")->group("Training");
  g("--beta2", c.beta2, "Adam: second-moment decay")->group("Training");
  g("--eps", c.eps, "Adam: denominator epsilon")->group("Training");
  g("--clip", c.clip, "Clip the global gradient norm to this (0: off)")->group("Training");
  g("--schedule", c.schedule, "Learning-rate schedule: constant, step, newbob or plateau")->group("Training");
  g("--decay", c.decay, "Divide the rate by this (step: each epoch after --decay-after; newbob: when decaying; plateau: after an epoch without a new best validation loss)")->group("Training");
  g("--decay-after", c.decay_after, "step schedule: epochs trained at the full rate before dividing starts")->group("Training");
  g("--patience", c.patience, "plateau schedule: epochs in a row without a new best validation loss tolerated before dividing (PyTorch's ReduceLROnPlateau)")->group("Training");
  g("--newbob-ratio", c.newbob_ratio, "newbob: minimum validation perplexity improvement ratio")->group("Training");
  app.add_flag("--keep-best", c.keep_best, "Keep the weights of the best validation epoch in best.safetensors; the final scores, eval and sample use them")
      ->default_str(c.keep_best ? "true" : "false")
      ->group("Training");
  g("--average-from", c.average_from, "From this epoch on, validate, keep and score the mean of the weights after every update (Polyak averaging, AWD-LSTM's ASGD; average.safetensors); 0: off")->group("Training");
  g("--average-nonmono", c.average_nonmono, "Instead of --average-from: start averaging after the epoch that makes the best validation loss this many epochs old (AWD-LSTM's NT-ASGD trigger); 0: off")->group("Training");
  g("--seed", c.seed, "Random seed: a run is a pure function of config, data, seed and thread count")->group("Training");
  g("--threads", c.threads, "Threads (0: all cores)")->group("Training");
  g("--gemm", c.gemm, "GEMM backend: onednn (oneDNN matmul), blas (OpenBLAS), libxsmm, blis, or auto (per shape, the fastest measured here; plan cached on disk)")->group("Training");
  g("--precision", c.precision, "Matrix products in fp32, or bf16 (bfloat16 operands, fp32 accumulation and master weights; needs AVX512_BF16)")->group("Training");
  g("--max-steps", c.max_steps, "Stop after this many updates, saving a checkpoint (0: no limit)")->group("Training");
  g("--grad-compress", c.grad_compress, "Gradient all-reduce under mpirun: none, fp16, int8, dyn8 (Dettmers) or threshold (Strom), with error feedback")->group("Distributed");
  g("--bucket-mb", c.bucket_mb, "Gradient all-reduce bucket size in MiB (launched as soon as backward finishes it)")->group("Distributed");
  g("--threshold-tau", c.threshold_tau, "threshold: fixed tau (0: adaptive, see --threshold-density)")->group("Distributed");
  g("--threshold-density", c.threshold_density, "threshold with adaptive tau: fraction of gradient values sent per step")->group("Distributed");
  app.add_flag("--deterministic", c.deterministic, "Sum gradients in rank order: bitwise reproducible whatever MPI's algorithm")
      ->default_str(c.deterministic ? "true" : "false")
      ->group("Distributed");
  g("--comm-thread", c.comm_thread, "true: a progress thread drives the all-reduce during backward; false: polled between layers")->group("Distributed");
  g("--checkpoint-minutes", c.checkpoint_minutes, "Save a checkpoint every this many minutes")->group("Run");
  g("--checkpoint-steps", c.checkpoint_steps, "Also save every this many updates (0: off)")->group("Run");
  g("--progress-seconds", c.progress_seconds, "Seconds between progress lines when stderr is not a terminal")->group("Run");
  g("--out", c.out, "Run directory for checkpoints and metrics (default: runs/<cell>-<time>)")->group("Run");
  g("--resume", c.resume, "Continue the run in this directory, bit-identically")->group("Run");
  app.add_flag("--json", c.json, "Print one JSON object with the results on stdout at the end")->group("Run");
}

namespace {
const std::set<std::string> kNotSaved = {"help", "config", "out", "resume", "json", "max-steps"};
}

std::string JsonConfigFormatter::to_config(const CLI::App* app, bool, bool, std::string) const {
  json j = json::object();
  for (const CLI::Option* opt : app->get_options()) {
    if (opt->get_lnames().empty()) continue;
    const std::string name = opt->get_lnames()[0];
    if (kNotSaved.count(name)) continue;
    const std::string v = opt->count() > 0 ? opt->results().back() : opt->get_default_str();
    const std::string type = opt->get_type_name();
    if (opt->get_expected_min() == 0) j[name] = (v == "true");  // a flag: its value is in default_str
    else if (type == "INT") j[name] = std::stoll(v);
    else if (type == "UINT") j[name] = std::stoull(v);
    else if (type == "FLOAT") j[name] = std::stod(v);
    else if (type == "BOOLEAN") j[name] = (v == "true" || v == "1" || v == "on");
    else j[name] = v;
  }
  return j.dump(2) + "\n";
}

std::vector<CLI::ConfigItem> JsonConfigFormatter::from_config(std::istream& input) const {
  json j = json::parse(input, nullptr, false);
  if (j.is_discarded() || !j.is_object()) throw CLI::ConversionError("--config: the file is not a JSON object");
  std::vector<CLI::ConfigItem> items;
  for (auto& [k, v] : j.items()) {
    CLI::ConfigItem it;
    it.name = k;
    if (v.is_string()) it.inputs = {v.get<std::string>()};
    else if (v.is_boolean()) it.inputs = {v.get<bool>() ? "true" : "false"};
    else if (v.is_number_unsigned()) it.inputs = {std::to_string(v.get<uint64_t>())};
    else if (v.is_number_integer()) it.inputs = {std::to_string(v.get<int64_t>())};
    else if (v.is_number()) it.inputs = {v.dump()};
    else if (v.is_null()) continue;
    else throw CLI::ConversionError("--config: key '" + k + "' must be a string, number or boolean");
    items.push_back(std::move(it));
  }
  return items;
}

void use_json_config(CLI::App& app) {
  app.config_formatter(std::make_shared<JsonConfigFormatter>());
  app.set_config("--config", "", "Read options from a JSON file whose keys are the long option names");
  app.allow_config_extras(CLI::config_extras_mode::error);
}

void apply_json_config(CLI::App& app) {
  const CLI::Option* config = app.get_config_ptr();
  if (!config || config->count() == 0) return;
  const std::string path = config->as<std::string>();
  std::istringstream in(read_file(path, "config"));
  try {
    for (const CLI::ConfigItem& item : JsonConfigFormatter().from_config(in)) {
      CLI::Option* opt = app.get_option_no_throw("--" + item.name);
      if (!opt || !opt->get_configurable())
        fail("{}: unknown option '{}' (keys are the long option names, without --)", path, item.name);
      if (opt->count() > 0) continue;  // given on the command line
      if (opt->get_expected_min() == 0) opt->add_result(opt->get_flag_value(item.name, item.inputs.at(0)));
      else opt->add_result(item.inputs);
      opt->run_callback();
    }
  } catch (const CLI::Error& e) {
    fail("{}: {}", path, e.what());
  }
}

std::string config_to_json(const Config& c) {
  Config copy = c;
  CLI::App app;
  bind_train_options(app, copy);
  app.config_formatter(std::make_shared<JsonConfigFormatter>());
  return app.config_to_str(true, false);
}

Config config_from_json_file(const std::string& path) {
  require_regular_file(path, "config");
  Config c;
  // As `train --config` reads it (a subcommand: apply_json_config names an unknown key and its file).
  CLI::App app;
  CLI::App* sub = app.add_subcommand("config");
  bind_train_options(*sub, c);
  use_json_config(*sub);
  try {
    std::vector<std::string> args = {"config", "--config", path};
    std::vector<std::string> rev(args.rbegin(), args.rend());
    app.parse(rev);
  } catch (const CLI::ParseError& e) {
    fail("{}: {}", path, e.what());
  }
  apply_json_config(*sub);
  return c;
}

}  // namespace manylm
