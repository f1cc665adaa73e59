// train_cmd.cc — `manylm train`: binds the training options, runs the trainer, prints the result.
#include <fmt/format.h>

#include <memory>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "mpi/comm.h"
#include "train/options.h"
#include "train/trainer.h"

namespace manylm {

Runner add_train_command(CLI::App& app) {
  auto* sub = app.add_subcommand("train", "Train a model (or continue one with --resume)");
  auto cfg = std::make_shared<Config>();
  bind_train_options(*sub, *cfg);
  use_json_config(*sub);
  return [cfg, sub] {
    apply_json_config(*sub);
    install_stop_signals();
    const TrainResult r = run_training(*cfg);
    if (cfg->json && Comm::world().root()) {
      nlohmann::json j = {{"command", "train"},     {"run_dir", r.run_dir},       {"train_ppl", r.train_ppl},
                          {"valid_ppl", r.valid_ppl}, {"test_ppl", r.test_ppl},     {"epochs", r.epochs}, {"best_epoch", r.best_epoch},
                          {"averaged_updates", r.averaged_updates},
                          {"steps", r.steps},         {"tokens_per_sec", r.tokens_per_sec},
                          {"wall_seconds", r.wall_seconds}, {"train_seconds", r.train_seconds}, {"eval_batch", r.eval_batch}, {"bptt", r.bptt},
                          {"parameters", r.params},   {"interrupted", r.interrupted}, {"ranks", r.ranks}};
      if (r.ranks > 1)
        j["gradients"] = {{"compress", cfg->grad_compress},           {"raw_bytes_per_step", r.raw_bytes_per_step},
                          {"payload_bytes_per_step", r.payload_bytes_per_step},
                          {"wire_bytes_per_step", r.wire_bytes_per_step}, {"comm_ms_per_step", r.comm_ms_per_step},
                          {"wait_ms_per_step", r.wait_ms_per_step}};
      fmt::print("{}\n", j.dump());
    }
    return r.interrupted ? 128 + r.signal : 0;
  };
}

}  // namespace manylm
