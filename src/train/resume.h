// resume.h — opening a run directory, new or continued (--resume), and what a resume reconciles: the
// saved config against the one given now (the fixed-on-resume options of train/options.h), a save that was
// interrupted (completed or discarded), a --average-from changed before averaging began, and the
// data-parallel error-feedback residuals. Also the files a new run starts with. Not the checkpoint files'
// format (checkpoint.h) and not the training loop (trainer.cc).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "core/io.h"
#include "data/vocab.h"
#include "mpi/comm.h"
#include "train/checkpoint.h"
#include "train/config.h"

namespace manylm {

struct RunOpening {
  Config config;  // as given (--resume: the command line over the run's config.json), validated
  RunPaths run;
  Config saved;  // --resume: the run's config.json as it is on disk
  bool resuming() const { return !config.resume.empty(); }
};
// Writes nothing. UserError for --resume of something that is not a directory, --out with --resume, a
// fixed-on-resume option given another value, --out onto an existing run, an invalid option, or a --batch
// that cannot be split over the ranks. A new run's directory is named by rank 0's clock.
RunOpening open_run(const Config& given, const Comm& comm);

// The lock that keeps a second writer out of a run directory (core/io.h DirLock), held by rank 0 for the whole
// run (the other ranks write their residual files only in collective saves, while it holds it). --resume takes
// it at once, before anything in the directory is read or changed; a new run when its directory is created
// (write_run_start). UserError naming the holder's PID when a live trainer has it.
struct RunLock {
  DirLock lock;
  RunLock(const RunOpening& o, const Comm& comm);
};

// --resume: rank 0 completes or discards a save that was interrupted (recover_checkpoint); every rank
// learns whether there is a checkpoint. A run stopped before its first one starts again at step 0.
struct Recovery {
  bool from_checkpoint = false;
  std::string note;  // for the log, "" if nothing to say
};
Recovery recover_run(const RunOpening& o, const Comm& comm);

// After loading a checkpoint: --average-from may change on resume while the run has averaged nothing and
// would not have yet (the run is then the one it would have been with the new value from the start);
// rank 0 records it in config.json. UserError otherwise. Returns a note, "" when unchanged.
std::string reconcile_average_from(RunOpening& o, const TrainState& st, const Comm& comm);

// A new run, or a resume from before the first checkpoint (rank 0 only): the metrics of the earlier
// attempt go, the directory is created whole and locked (UserError if another trainer holds it, or made a run in
// it since open_run looked), with config.json (data paths made absolute), vocab.json and corpus.json. A new directory
// is made in a temporary sibling and renamed into place; in one that exists, config.json is written last (a directory
// without it holds no run). Returns whether this process created the directory.
bool write_run_start(const RunOpening& o, const Vocab& vocab, const std::string& corpus_json, DirLock& lock);

// --resume: UserError (one line) when the text differs from the one the run began with, as its corpus.json
// records it (each part's files by size and content hash, in order; names may change). Runs without one pass.
void check_corpus_unchanged(const RunOpening& o, const std::string& corpus_json);
// Its test: how the text as fingerprinted now (`corpus_json`, as train makes it) differs from the bytes of a
// corpus.json (`recorded`, trusted in nothing): {part, why}, or two empty strings when no part differs. UserError
// naming `path` when `recorded` is not a corpus record.
std::pair<std::string, std::string> corpus_change(std::string_view recorded, const std::string& corpus_json,
                                                  const std::string& path);

// --init-from: fills `params` from a weights file of the same model (`model_meta`, as the files record it).
void load_initial_weights(const std::string& path, Arena& params, const std::string& model_meta);

// Error feedback of a lossy --grad-compress: each rank's residuals in its own file, so that a resume on
// the same number of ranks is bit-identical. The tag says what gives them their meaning (rank count,
// scheme, bucket size); restore_residuals returns false, having zeroed them, unless every rank restored
// its own for this tag and step.
std::string residual_tag(int ranks, Compress codec, int64_t bucket_floats);
bool restore_residuals(const RunPaths& run, const NamedSpans& feedback, int64_t step, const std::string& tag,
                       const Comm& comm);

}  // namespace manylm
