// options.h — the training options on the command line: every option of the one table (train/options.h)
// bound to its Config field with CLI11, an enum checked against its name table (an unknown value names the
// option and the allowed ones); then a --config FILE, or --resume's config.json, read through the same
// table into what the command line did not give. Not the table itself.
#pragma once
#include <CLI/CLI.hpp>
#include <string>

#include "train/config.h"

namespace manylm {

// Adds every training option to `app`, writing into `c` (--help shows the values in `c` as defaults), and
// --config FILE, writing its path into `config_file`.
void bind_train_options(CLI::App& app, Config& c, std::string& config_file);
// After parsing: reads `config_file` (with --resume and no --config: the run's config.json) into the options
// not given on the command line, which win. UserError naming the file.
void apply_config_file(const CLI::App& app, Config& c, const std::string& config_file);

}  // namespace manylm
