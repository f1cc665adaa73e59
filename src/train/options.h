// options.h — the ONE table of training options: for each, its --long-option name (also its key in JSON
// config files and in a run's config.json), the Config field it sets, its --help group and text, and
// whether a resumed run must keep it and whether config.json records it. Everything about options is read
// from this table: the command line (cli/options.h binds it to CLI11), config files and config.json
// (written and read here), the check that --resume changes nothing that defines the run's trajectory.
// Not a command-line parser (no CLI11 here) and not validation of values (Config::validate).
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <set>
#include <span>
#include <string>
#include <variant>

#include "train/config.h"

namespace manylm {

// The Config field an option sets: one member pointer per field type. Enums read and print their names.
using ConfigField =
    std::variant<std::string Config::*, bool Config::*, int Config::*, int64_t Config::*, uint64_t Config::*,
                 double Config::*, TokenMode Config::*, Cell Config::*, Activation Config::*, DropoutMask Config::*,
                 OptimizerKind Config::*, Schedule Config::*, GemmBackend Config::*, Precision Config::*,
                 Compress Config::*, Output Config::*, SparseUpdates Config::*, Shuffle Config::*, OnDiverge Config::*,
                 VocabFormat Config::*, std::vector<int64_t> Config::*>;

// What an option is besides its value (bits of TrainOption::traits).
enum OptionTraits : unsigned {
  kPlain = 0,
  kFlag = 1,           // given without a value (--tied); a bool field
  kFixedOnResume = 2,  // defines the run's trajectory: --resume refuses another value
  kNotSaved = 4,       // not in config.json: how this process runs, not what the run is
};

struct TrainOption {
  const char* name;  // --name
  ConfigField field;
  const char* group;  // of --help
  unsigned traits;    // OptionTraits
  const char* help;
  bool flag() const { return traits & kFlag; }
  bool fixed_on_resume() const { return traits & kFixedOnResume; }
  bool saved() const { return !(traits & kNotSaved); }
};

std::span<const TrainOption> train_options();
const TrainOption* find_train_option(const std::string& name);  // nullptr if none

// The option's value in `c` as config.json holds it (enums by name), and as text (--help's default).
nlohmann::json option_json(const TrainOption& o, const Config& c);
std::string option_text(const TrainOption& o, const Config& c);
// Sets the option in `c` from a JSON value (a number, string or boolean as config.json holds it; numbers
// may also be strings). UserError "--name: ..." for a value of the wrong type or an unknown name.
void set_option(const TrainOption& o, Config& c, const nlohmann::json& v);
bool same_value(const TrainOption& o, const Config& a, const Config& b);

// The saved options of `c` as config.json: a JSON object, keys sorted, two-space indent.
std::string config_to_json(const Config& c);
// Reads a JSON object of options (a --config file, a run's config.json) into `c`, skipping the names in
// `given` (given on the command line, which wins). UserError naming the file for a missing or malformed
// file, an unknown key or a bad value.
void read_config_file(const std::string& path, Config& c, const std::set<std::string>& given = {});
// A Config with the defaults and what the file at `path` sets.
Config config_from_json_file(const std::string& path);

// --resume: UserError naming the first fixed-on-resume option whose value differs between the run's saved
// config (read from `path`) and the one given now.
void check_fixed_on_resume(const Config& saved, const Config& now, const std::string& path);

}  // namespace manylm
