// checkpoint.cc — see checkpoint.h.
#include "train/checkpoint.h"

#include <fmt/format.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/crc32c.h"
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
  return path_exists(config()) || path_exists(model()) || path_exists(state()) || path_exists(best()) ||
         path_exists(average());
}

void remove_temporaries(const RunPaths& run, bool next) {
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(run.dir, ec)) {
    const std::string name = e.path().filename().string();
    const size_t t = name.rfind(".tmp.");
    const bool tmp = t != std::string::npos && t + 5 < name.size() &&
                     name.find_first_not_of("0123456789", t + 5) == std::string::npos;
    const bool half = next && name.size() > 5 && name.ends_with(".next");
    if ((tmp || half) && e.is_regular_file(ec)) std::filesystem::remove(e.path(), ec);
  }
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

std::string recorded_step(const std::string& path) {  // "" for a file that cannot be read (a stale leftover)
  try {
    const SafeTensorsFile f = load_safetensors(path);
    auto it = f.metadata.find("manylm.step");
    return it == f.metadata.end() ? std::string() : it->second;
  } catch (const UserError&) {
    return {};
  }
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
  try {
    write_file_synced(next_name(run.state()),
                      encode_arenas(state, {{"manylm.train_state", st.to_json()}, {"manylm.step", step}}));
  } catch (...) {  // a full disk: the model's half goes too, the previous pair stays as it was
    std::remove(next_name(run.model()).c_str());
    throw;
  }
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
  const std::string step = recorded_step(state_next);
  if (path_exists(run.model()) && !step.empty() && step == recorded_step(run.model())) {
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

// A weights file of this model: its recorded description (when it has one) matches, then the tensors fill `params`.
// `note` (when given) receives a warning line for a file written without checksums by an older manylm.
SafeTensorsFile load_weights(const std::string& path, Arena& params, const std::string& description,
                             std::string* note) {
  SafeTensorsFile f = load_safetensors(path);
  if (!description.empty()) check_described_model(f, path, description);
  fill_arena(f, params, path);
  if (note && !f.checksummed && note->empty())
    *note = fmt::format("warning: {}: written without checksums (by an older manylm): loaded unverified", path);
  return f;
}

int64_t load_best(const RunPaths& run, Arena& params, const std::string& description, std::string* note) {
  const SafeTensorsFile f = load_weights(run.best(), params, description, note);
  auto it = f.metadata.find("manylm.epoch");
  return it == f.metadata.end() ? 0 : std::atoll(it->second.c_str());
}

TrainState load_checkpoint(const RunPaths& run, Arena& params, const std::vector<Arena*>& state, Arena* average,
                           const std::string& description, std::string* note) {
  SafeTensorsFile m = load_weights(run.model(), params, description, note);
  if (state.empty()) return {};
  SafeTensorsFile s = load_safetensors(run.state());
  if (note && !s.checksummed && note->empty())
    *note = fmt::format("warning: {}: written without checksums (by an older manylm): loaded unverified", run.state());
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

void check_described_model(const SafeTensorsFile& f, const std::string& path, const std::string& expected) {
  const std::string d = described_model(f);
  if (d.empty()) return;  // not a manylm file (PyTorch's): the tensors' names and shapes decide
  const json got = json::parse(d, nullptr, false), want = json::parse(expected);
  if (!got.is_object()) fail("{}: its model description is not a JSON object: the file is damaged", path);
  for (const auto& [key, value] : got.items()) {
    if (!want.contains(key) || want[key] == value) continue;  // a key older files lack, or a match
    if (key == "vocab_crc32c")
      fail(
          "{}: was trained with another vocabulary (its CRC-32C {}, the run's vocab.json {}): the vocabulary was "
          "changed, or the file is of another run",
          path, value.dump(), want[key].dump());
    fail("{}: holds another model ({} {}; this run: {})", path, key, value.dump(), expected);
  }
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
  const std::string description = model_description(m.config, m.vocab);
  std::string note;
  if (file || average) {
    m.weights = file ? weights : run.average();
    load_weights(m.weights, m.params, description, &note);
  } else if (best) {
    m.weights = run.best();
    m.epoch = load_best(run, m.params, description, &note);
  } else {
    m.weights = run.model();
    load_checkpoint(run, m.params, {}, nullptr, description, &note);
  }

  if (!all_finite(m.params.data(), static_cast<int64_t>(m.params.size())))
    fail(
        "{}: holds weights that are not finite (NaN or inf): the run diverged; score an earlier checkpoint or "
        "retrain with a lower --lr",
        m.weights);
  if (!note.empty()) fmt::print(stderr, "manylm: {}\n", note);  // once the file is known good
  return m;
}
}  // namespace manylm

namespace manylm {
std::string model_description(const Config& c, const Vocab& vocab) {
  return nlohmann::json{{"cell", name_of(c.cell)},
                        {"activation", name_of(c.activation)},
                        {"tokens", name_of(c.tokens)},
                        {"vocab", vocab.size()},
                        {"vocab_crc32c", crc32c_hex(crc32c(vocab.to_json()))},
                        {"embed", c.embed},
                        {"hidden", c.hidden},
                        {"layers", c.layers}}
      .dump();
}

namespace {
void in_range(const std::string& path, const char* key, double v, double lo, double hi, const std::string& why = "") {
  if (!(v >= lo && v <= hi))  // NaN too
    fail("{}: training state '{}' is {}, outside {}..{}{}: the file is damaged or of another run", path, key, v, lo, hi,
         why);
}
}  // namespace

void check_train_state(const TrainState& st, const Config& c, int64_t windows, const std::string& path) {
  const auto d = [](int64_t v) { return static_cast<double>(v); };
  const double inf = std::numeric_limits<double>::infinity(), big = 9.0e15;  // integers a double holds exactly
  const double window_tokens = d(c.batch) * d(c.bptt);
  in_range(path, "step", d(st.step), 0, big);
  in_range(path, "epoch", d(st.epoch), 0, big);
  in_range(path, "window", d(st.window), 0, d(windows), fmt::format(" (the training text has {} windows)", windows));
  if (windows <= 0 || st.step < st.window || (st.step - st.window) % windows != 0 ||
      (st.step - st.window) / windows != st.epoch)  // step = epoch x windows + window, without overflow
    fail(
        "{}: training state says step {} at epoch {} window {}, but the training text has {} windows per epoch: the "
        "file is damaged or the run was trained on another text",
        path, st.step, st.epoch + 1, st.window, windows);
  in_range(path, "lr", st.sched.lr, std::numeric_limits<double>::min(), c.lr, " (--lr)");
  in_range(path, "last_valid", st.sched.last_valid, 0, inf);
  in_range(path, "best_valid", st.sched.best_valid, 0, inf);
  in_range(path, "best_epoch", d(st.sched.best_epoch), 0, d(st.epoch));
  in_range(path, "rollbacks", d(st.sched.rollbacks), 0, 60);
  in_range(path, "epoch_loss", st.epoch_loss, 0, big * 1e3);
  in_range(path, "epoch_tokens", d(st.epoch_tokens), 0, d(st.window) * window_tokens);
  in_range(path, "train_tokens", d(st.train_tokens), d(st.epoch_tokens), d(st.step) * window_tokens);
  in_range(path, "epoch_seconds", st.epoch_seconds, 0, big);
  in_range(path, "train_seconds", st.train_seconds, 0, big);
  in_range(path, "average_count", d(st.average_count), 0, d(st.step));
  in_range(path, "average_start", d(st.average_start), 0, d(st.epoch) + 2);
  in_range(path, "running_loss", st.running_loss, 0, big);
}
}  // namespace manylm
