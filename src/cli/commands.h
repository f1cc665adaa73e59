// commands.h — the subcommands of the manylm binary. Each add_*() registers its options on `app` and
// returns a runner to call if that subcommand was chosen; runners return the process exit status.
// User mistakes surface as UserError (one line, exit 2) — main() prints them. Not the trainer.
#pragma once
#include <CLI/CLI.hpp>
#include <functional>

namespace manylm {

using Runner = std::function<int()>;
Runner add_train_command(CLI::App& app);
Runner add_eval_command(CLI::App& app);
Runner add_rescore_command(CLI::App& app);
Runner add_sample_command(CLI::App& app);
Runner add_plot_command(CLI::App& app);
Runner add_average_command(CLI::App& app);
Runner add_bench_command(CLI::App& app);
Runner add_corpus_command(CLI::App& app);

}  // namespace manylm
