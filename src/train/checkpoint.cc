// checkpoint.cc — see checkpoint.h.
#include "train/checkpoint.h"

#include <fmt/format.h>

#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"
#include "core/io.h"
#include "core/kernels.h"
#include "core/safetensors.h"

namespace manylm {

using nlohmann::json;

std::string TrainState::to_json() const {
  json j = json::object();
  fields(*this, JsonWriter{j});
  return j.dump();
}

TrainState TrainState::from_json(const std::string& text, const std::string& path) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) fail("{}: training state is not valid JSON", path);
  TrainState s;
  fields(s, JsonReader{j, path + ": malformed training state"});
  return s;
}

void TrainState::start_next_epoch(int64_t epochs) {
  epoch++;
  window = 0;
  epoch_loss = 0;
  epoch_tokens = 0;
  epoch_seconds = 0;
  if (epoch >= epochs || sched.stop) finished = true;
}

bool RunPaths::holds_run() const {
  return path_exists(config()) || path_exists(model()) || path_exists(state()) || path_exists(vocab()) ||
         path_exists(best()) || path_exists(average());
}

namespace {
// Weights as a PyTorch state_dict file (a tied decoder aliases the embedding), with manylm's metadata.
std::string encode_weights(const Arena& params, std::map<std::string, std::string> metadata,
                           const std::string& model_meta_json, bool tied) {
  std::map<std::string, std::string> aliases;
  if (tied) aliases["decoder.weight"] = "encoder.weight";
  metadata["format"] = "pt";
  metadata["manylm"] = model_meta_json;
  return encode_arenas({&params}, metadata, aliases);
}

std::string next_name(const std::string& path) { return path + ".next"; }

std::string recorded_step(const std::string& path) {
  const SafeTensorsFile f = load_safetensors(path);
  auto it = f.metadata.find("manylm.step");
  return it == f.metadata.end() ? std::string() : it->second;
}
}  // namespace

// The pair is replaced as one: both files are written under .next names and fsynced before either
// replaces its predecessor, so a crash or a full disk while writing leaves the previous pair whole; a crash
// between the two renames leaves state.safetensors.next of the model's step, which recover_checkpoint
// moves into place.
void save_checkpoint(const RunPaths& run, const Arena& params, const std::vector<const Arena*>& state,
                     const TrainState& st, const std::string& model_meta_json, bool tied) {
  const std::string step = std::to_string(st.step);
  write_file_synced(next_name(run.model()), encode_weights(params, {{"manylm.step", step}}, model_meta_json, tied));
  write_file_synced(next_name(run.state()),
                    encode_arenas(state, {{"manylm.train_state", st.to_json()}, {"manylm.step", step}}));
  rename_synced(next_name(run.model()), run.model());
  rename_synced(next_name(run.state()), run.state());
}

std::string recover_checkpoint(const RunPaths& run) {
  const std::string model_next = next_name(run.model()), state_next = next_name(run.state());
  if (path_exists(model_next)) {  // interrupted before the first rename: the previous pair is whole
    std::remove(model_next.c_str());
    std::remove(state_next.c_str());
    return fmt::format("note: {}: discarded a checkpoint whose saving was interrupted; resuming from the one before",
                       run.dir);
  }
  if (!path_exists(state_next)) return {};
  if (path_exists(run.model()) && recorded_step(state_next) == recorded_step(run.model())) {
    rename_synced(state_next, run.state());
    return fmt::format("note: {}: completed a checkpoint interrupted between its two renames", run.dir);
  }
  std::remove(state_next.c_str());
  return {};
}

bool RunPaths::has_checkpoint() const { return path_exists(model()) || path_exists(state()); }

void save_best(const RunPaths& run, const Arena& params, const TrainState& st, double valid_ppl,
               const std::string& model_meta_json, bool tied) {
  write_file_atomic(run.best(), encode_weights(params,
                                               {{"manylm.step", std::to_string(st.step)},
                                                {"manylm.epoch", std::to_string(st.sched.best_epoch)},
                                                {"manylm.valid_ppl", fmt::format("{:.6f}", valid_ppl)}},
                                               model_meta_json, tied));
}

int64_t load_best(const RunPaths& run, Arena& params) {
  SafeTensorsFile f = load_safetensors(run.best());
  fill_arena(f, params, run.best());
  auto it = f.metadata.find("manylm.epoch");
  return it == f.metadata.end() ? 0 : std::atoll(it->second.c_str());
}

TrainState load_checkpoint(const RunPaths& run, Arena& params, const std::vector<Arena*>& state, Arena* average) {
  SafeTensorsFile m = load_safetensors(run.model());
  fill_arena(m, params, run.model());
  if (state.empty()) return {};
  SafeTensorsFile s = load_safetensors(run.state());
  auto it = s.metadata.find("manylm.train_state");
  if (it == s.metadata.end()) fail("{}: not a manylm training-state file", run.state());
  if (m.metadata["manylm.step"] != s.metadata["manylm.step"])
    fail("{}: records step {} but {} records step {}: the checkpoint is incomplete (interrupted while saving)",
         run.state(), s.metadata["manylm.step"], run.model(), m.metadata["manylm.step"]);
  for (Arena* a : state) fill_arena(s, *a, run.state());
  TrainState st = TrainState::from_json(it->second, run.state());
  if (st.average_count > 0) {
    if (!average)
      fail("{}: the run has averaged its weights over {} updates (--average-from); a resumed run keeps its settings",
           run.state(), st.average_count);
    fill_arena(s, *average, run.state());
  }
  return st;
}

std::string described_model(const SafeTensorsFile& f) {
  auto it = f.metadata.find("manylm");
  return it == f.metadata.end() ? std::string() : it->second;
}

void save_average(const RunPaths& run, const Arena& average, const TrainState& st, int64_t from_epoch,
                  const std::string& model_meta_json, bool tied) {
  write_file_atomic(run.average(), encode_weights(average,
                                                  {{"manylm.step", std::to_string(st.step)},
                                                   {"manylm.average_from", std::to_string(from_epoch)},
                                                   {"manylm.average_count", std::to_string(st.average_count)}},
                                                  model_meta_json, tied));
}

void save_residuals(const std::string& path, const NamedSpans& state, int64_t step, const std::string& tag) {
  std::vector<SafeTensor> t;
  std::map<std::string, const SafeTensor*> named;
  t.reserve(state.size());
  for (const auto& [name, span] : state) {
    t.push_back({{static_cast<int64_t>(span.size())}, std::vector<float>(span.begin(), span.end())});
    named[name] = &t.back();
  }
  write_file_atomic(path,
                    encode_safetensors(named, {{"manylm.step", std::to_string(step)}, {"manylm.reduction", tag}}));
}

bool load_residuals(const std::string& path, const NamedSpans& state, int64_t step, const std::string& tag) {
  if (!path_exists(path)) return false;
  const SafeTensorsFile f = load_safetensors(path);
  auto meta = [&](const char* k) { return f.metadata.count(k) ? f.metadata.at(k) : std::string(); };
  if (meta("manylm.step") != std::to_string(step) || meta("manylm.reduction") != tag) return false;
  for (const auto& [name, span] : state) {
    auto it = f.tensors.find(name);
    if (it == f.tensors.end() || it->second.values.size() != span.size()) return false;
    std::copy(it->second.values.begin(), it->second.values.end(), span.begin());
  }
  return true;
}

void truncate_metrics(const RunPaths& run, int64_t step) {
  if (!path_exists(run.metrics())) return;
  std::istringstream in(read_file(run.metrics(), "metrics"));
  std::string line, kept;
  while (std::getline(in, line)) {
    json j = json::parse(line, nullptr, false);
    // Later records, and the final test record (the resumed run writes its own), go.
    if (j.is_object() && j.value("step", int64_t{0}) <= step && j.value("type", "") != "test") kept += line + "\n";
  }
  write_file_atomic(run.metrics(), kept);
}

}  // namespace manylm

#include "train/options.h"

namespace manylm {
LoadedModel load_run_model(const std::string& run_dir, const std::string& weights) {
  RunPaths run{run_dir};
  if (!is_directory(run_dir)) fail("--model: {} is not a run directory", run_dir);
  const bool file = weights != "auto" && weights != "best" && weights != "average" && weights != "last";
  if (file) require_regular_file(weights, "weights (--weights: auto, best, average, last or a file)");
  const bool best = weights == "best" || (weights == "auto" && path_exists(run.best()));
  const bool average = !best && (weights == "average" || (weights == "auto" && path_exists(run.average())));
  if (best && !path_exists(run.best()))
    fail("--weights best: {} has no best.safetensors (the run was trained without --keep-best)", run_dir);
  if (average && !path_exists(run.average()))
    fail(
        "--weights average: {} has no average.safetensors (the run was trained without --average-from, or has "
        "not finished an epoch of averaging)",
        run_dir);
  LoadedModel m;
  m.config = config_from_json_file(run.config());
  try {  // a hand-edited config.json must not crash eval (a zero --bptt divides by zero)
    m.config.validate();
  } catch (const UserError& e) {
    fail("{}: {}", run.config(), e.what());
  }
  m.vocab = Vocab::from_json(read_file(run.vocab(), "vocabulary"), run.vocab());
  m.shape = m.config.model_shape(m.vocab.size());
  m.params = Arena(param_table(m.shape));
  if (file || average) {
    m.weights = file ? weights : run.average();
    fill_arena(load_safetensors(m.weights), m.params, m.weights);
  } else if (best) {
    m.weights = run.best();
    m.epoch = load_best(run, m.params);
  } else {
    m.weights = run.model();
    load_checkpoint(run, m.params, {});
  }
  if (!all_finite(m.params.data(), static_cast<int64_t>(m.params.size())))
    fail(
        "{}: holds weights that are not finite (NaN or inf): the run diverged; score an earlier checkpoint or "
        "retrain with a lower --lr",
        m.weights);
  return m;
}
}  // namespace manylm
