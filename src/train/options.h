// options.h — the ONE list of training options: bind_train_options() ties each Config field to its
// --long-option (with help and default). The same binding reads JSON config files (keys are the long
// option names), writes a run's config.json, and reads it back on --resume, so no second list exists.
// Not the command dispatch (cli/).
#pragma once
#include <CLI/CLI.hpp>
#include <string>

#include "train/config.h"

namespace manylm {

// Adds every Config option to `app` (capture_default_str: --help shows the values in `c`).
void bind_train_options(CLI::App& app, Config& c);

// CLI11 config formatter for JSON files: {"hidden": 200, "cell": "elman", ...}.
class JsonConfigFormatter : public CLI::Config {
 public:
  std::string to_config(const CLI::App* app, bool default_also, bool write_description,
                        std::string prefix) const override;
  std::vector<CLI::ConfigItem> from_config(std::istream& input) const override;
};
void use_json_config(CLI::App& app);  // installs the formatter and --config FILE
// Reads the --config FILE given to `app` into the options not given on the command line (which win).
// Call after parsing: CLI11 2.1 reads config files for the top-level app only, never for a subcommand
// such as `train`. UserError naming the file for a missing or malformed file or an unknown key.
void apply_json_config(CLI::App& app);

// Every option of `c` as a JSON object (without out/resume/config/json).
std::string config_to_json(const Config& c);
// Reads a JSON file written by config_to_json (or by hand) into a Config. UserError names the file.
Config config_from_json_file(const std::string& path);

}  // namespace manylm
