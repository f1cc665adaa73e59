// resume.cc — see resume.h.
#include "train/resume.h"

#include <fmt/format.h>

#include <stdlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <system_error>

#include "core/error.h"
#include "core/io.h"
#include "core/safetensors.h"
#include "data/corpus.h"
#include "train/options.h"

namespace manylm {

namespace {

std::string default_run_dir(const Config& c) {
  std::time_t now = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%d-%H%M%S", std::localtime(&now));
  return fmt::format("runs/{}-{}", name_of(c.cell), buf);
}

// The config as the run directory records it: the data directory actually used (default search included)
// and explicit corpus files as absolute paths, so that --resume and eval work from any directory; on
// another machine --data (or --train/--valid/--test) on the command line overrides them.
Config with_absolute_data_paths(Config c) {
  auto absolute = [](const std::string& p) { return std::filesystem::absolute(p).lexically_normal().string(); };
  if (c.train.empty() || c.valid.empty() || c.test.empty()) c.data = absolute(resolve_data_dir(c.data));
  for (std::string* f : {&c.train, &c.valid, &c.test, &c.init_from, &c.vocab_file})
    if (!f->empty()) *f = absolute(*f);
  return c;
}

}  // namespace

RunOpening open_run(const Config& given, const Comm& comm) {
  RunOpening o{given, {}, {}};
  const Config& c = o.config;
  if (o.resuming()) {
    o.run.dir = c.resume;
    if (!is_directory(o.run.dir)) fail("--resume: {} is not a directory", o.run.dir);
    if (!c.out.empty() && c.out != c.resume) fail("--out: not with --resume (a resumed run stays in {})", c.resume);
    o.saved = config_from_json_file(o.run.config());
    check_fixed_on_resume(o.saved, c, o.run.config());
  } else {
    o.run.dir = comm.broadcast(c.out.empty() ? default_run_dir(c) : c.out);  // one clock decides the name
    if (comm.root() && o.run.holds_run())
      fail("--out: {} already holds a run; continue it with --resume {} or choose another --out", o.run.dir, o.run.dir);
  }
  c.validate();
  if (c.batch < comm.size())
    fail("--batch: {} lanes cannot be split over {} ranks (each rank needs at least one lane)", c.batch, comm.size());
  return o;
}

Recovery recover_run(const RunOpening& o, const Comm& comm) {
  Recovery r;
  if (!o.resuming()) return r;
  if (comm.root()) {
    r.note = recover_checkpoint(o.run);
    remove_temporaries(o.run, false);
    r.from_checkpoint = o.run.has_checkpoint();
    if (!r.from_checkpoint)
      r.note = fmt::format("note: {} has no checkpoint yet (the run stopped before its first); starting at step 0",
                           o.run.dir);
  }
  r.from_checkpoint = comm.broadcast(r.from_checkpoint ? "1" : "0") == "1";
  return r;
}

std::string reconcile_average_from(RunOpening& o, const TrainState& st, const Comm& comm) {
  const int64_t now = o.config.average_from, saved = o.saved.average_from;
  if (now == saved) return {};
  const bool before = now == 0 || now - 1 > st.epoch || (now - 1 == st.epoch && st.window == 0);
  if (st.average_count > 0 || !before)
    fail(
        "--average-from: {} was trained with {} and is in epoch {}; the setting can change only before averaging "
        "starts",
        o.run.config(), saved, st.epoch + 1);
  if (comm.root()) {
    o.saved.average_from = now;
    write_file_atomic(o.run.config(), config_to_json(o.saved));
  }
  return fmt::format("note: --average-from {} (was {}), recorded in {}", now, saved, o.run.config());
}

RunLock::RunLock(const RunOpening& o, const Comm& comm) {
  if (comm.root() && o.resuming())
    lock.acquire(o.run.dir, "--resume", "stop it first (Ctrl-C saves a checkpoint), then resume");
}

namespace {

// A new run's directory, made whole or not at all: config.json, vocab.json and corpus.json are written into a temporary
// sibling directory (locked from the start) that is renamed into place. false, having left nothing, when the
// directory appeared meanwhile (then the caller treats it as one that existed).
bool create_run_directory(const RunOpening& o, const std::string& config, const std::string& vocab,
                          const std::string& corpus, DirLock& lock) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::path(o.run.dir).lexically_normal();
  const fs::path parent = dir.parent_path().empty() ? fs::path(".") : dir.parent_path();
  make_directories(parent.string());
  std::string tmpl = (parent / ("." + dir.filename().string() + ".setup-XXXXXX")).string();
  if (!::mkdtemp(tmpl.data()))
    fail("--out: cannot create a directory in {}: {}", parent.string(), std::strerror(errno));
  try {
    lock.acquire(tmpl, "--out", "choose another --out");
    write_file_atomic(tmpl + "/vocab.json", vocab);
    write_file_atomic(tmpl + "/corpus.json", corpus);
    write_file_atomic(tmpl + "/config.json", config);
    if (::rename(tmpl.c_str(), o.run.dir.c_str()) != 0) {  // an existing directory that is not empty
      if (errno != EEXIST && errno != ENOTEMPTY && errno != EISDIR && errno != ENOTDIR)
        fail("--out: cannot create {}: {}", o.run.dir, std::strerror(errno));
      throw std::system_error(errno, std::generic_category());
    }
  } catch (const std::system_error&) {
    lock.release();
    std::error_code ec;
    fs::remove_all(tmpl, ec);
    return false;
  } catch (...) {
    lock.release();
    std::error_code ec;
    fs::remove_all(tmpl, ec);
    throw;
  }
  sync_parent_directory(o.run.dir);
  return true;
}

}  // namespace

bool write_run_start(const RunOpening& o, const Vocab& vocab, const std::string& corpus_json, DirLock& lock) {
  const std::string config = config_to_json(with_absolute_data_paths(o.config)), words = vocab.to_json();
  if (!o.resuming() && !is_directory(o.run.dir) && create_run_directory(o, config, words, corpus_json, lock))
    return true;
  if (o.resuming()) truncate_metrics(o.run, 0);
  if (!lock.held()) {  // a directory that exists (empty, or a dead trainer's leftovers)
    lock.acquire(o.run.dir, "--out", "choose another --out");
    if (o.run.holds_run())  // another trainer made its run here after open_run looked, and has finished
      fail("--out: {} already holds a run; continue it with --resume {} or choose another --out", o.run.dir, o.run.dir);
  }
  remove_temporaries(o.run, !o.resuming());
  // config.json last: a directory without it holds no run (RunPaths::holds_run), whatever else a failure left.
  try {
    write_file_atomic(o.run.vocab(), words);
    write_file_atomic(o.run.corpus(), corpus_json);
    write_file_atomic(o.run.config(), config);
  } catch (...) {
    if (!o.resuming()) {  // the directory as it was
      std::remove(o.run.vocab().c_str());
      std::remove(o.run.corpus().c_str());
    }
    throw;
  }
  return false;
}

namespace {

struct RecordedFile {
  int64_t bytes;
  std::string hash, name;
};

// An entry of a corpus record's file list; UserError naming `path` when it is not one.
RecordedFile recorded_file(const nlohmann::json& f, const std::string& path, const char* part) {
  const bool ok = f.is_object() && f.contains("bytes") && f["bytes"].is_number_integer() && f.contains("hash") &&
                  f["hash"].is_string();
  if (!ok) fail("{}: not a corpus record (a {} file without its bytes and hash)", path, part);
  const auto name = f.find("name");
  return {f["bytes"].get<int64_t>(), f["hash"].get<std::string>(),
          name != f.end() && name->is_string() ? name->get<std::string>() : "?"};
}

}  // namespace

std::pair<std::string, std::string> corpus_change(std::string_view recorded, const std::string& corpus_json,
                                                  const std::string& path) {
  const auto was = nlohmann::json::parse(recorded, nullptr, false);
  if (was.is_discarded() || !was.is_object()) fail("{}: not a corpus record (JSON)", path);
  const auto now = nlohmann::json::parse(corpus_json);
  for (const char* part : {"train", "valid", "test"}) {
    const auto p = was.find(part);
    if (p == was.end() || !p->is_object() || !p->contains("files")) continue;
    const auto& a = p->at("files");
    if (!a.is_array()) fail("{}: not a corpus record (the {} files are not a list)", path, part);
    const auto& b = now.at(part).at("files");
    std::string why;
    if (a.size() != b.size()) why = fmt::format("{} files, was {}", b.size(), a.size());
    for (size_t i = 0; why.empty() && i < a.size(); ++i) {
      const RecordedFile was_file = recorded_file(a[i], path, part);
      const auto bytes = b[i]["bytes"].get<int64_t>();
      const auto hash = b[i]["hash"].get<std::string>();
      if (was_file.bytes != bytes || was_file.hash != hash)
        why = fmt::format("{} is {} bytes with hash {}, was {} ({} bytes, hash {})", b[i]["name"].get<std::string>(),
                          bytes, hash, was_file.name, was_file.bytes, was_file.hash);
    }
    if (!why.empty()) return {part, why};
  }
  return {};
}

void check_corpus_unchanged(const RunOpening& o, const std::string& corpus_json) {
  if (!path_exists(o.run.corpus())) return;
  const auto [part, why] = corpus_change(read_file(o.run.corpus(), "corpus record"), corpus_json, o.run.corpus());
  if (!part.empty())
    fail(
        "--resume: the {} text of {} changed since the run began ({}); resume with the text it was trained on, or "
        "start a new run",
        part, o.run.dir, why);
}

void load_initial_weights(const std::string& path, Arena& params, const std::string& model_meta) {
  require_regular_file(path, "weights (--init-from)");
  try {  // equal shapes are not enough: the description must match (a tanh and a relu cell)
    load_weights(path, params, model_meta);
  } catch (const UserError& e) {
    fail("--init-from: {}", e.what());
  }
}

std::string residual_tag(int ranks, Compress codec, int64_t bucket_floats) {
  return fmt::format("{} ranks, {}, buckets of {} floats", ranks, name_of(codec), bucket_floats);
}

bool restore_residuals(const RunPaths& run, const NamedSpans& feedback, int64_t step, const std::string& tag,
                       const Comm& comm) {
  int64_t restored[1] = {load_residuals(run.residuals(comm.rank()), feedback, step, tag)};
  comm.sum(restored);
  if (restored[0] == comm.size()) return true;  // all ranks or none
  for (const auto& [name, span] : feedback) std::fill(span.begin(), span.end(), 0.0f);
  return false;
}

}  // namespace manylm
