// main.cc — manylm's entry point: parse the command line, run the chosen subcommand, turn errors into
// one line and an exit status (2: bad input or usage, 1: internal failure).
#include <fmt/format.h>

#include <chrono>
#include <cstring>
#include <map>
#include <new>
#include <string>
#include <thread>
#include <vector>

#include "cli/commands.h"
#include "core/error.h"
#include "mpi/comm.h"

namespace {
// Prints the error line and returns the exit status; under mpirun it ends the whole job (MPI_Abort),
// since the other ranks would otherwise wait for this one forever. Ranks other than 0 first give rank 0
// two seconds: when every rank hit the same bad input, rank 0's line is the only one printed.
int report_error(const std::string& prefix, const std::string& what, int code) {
  const manylm::Comm comm = manylm::Comm::world();
  if (!comm.distributed()) {
    fmt::print(stderr, "{}: {}\n", prefix, what);
    return code;
  }
  if (!comm.root()) std::this_thread::sleep_for(std::chrono::seconds(2));
  fmt::print(stderr, "{}{}: {}\n", prefix, comm.root() ? "" : fmt::format(" (rank {})", comm.rank()), what);
  std::fflush(stderr);
  manylm::MpiSession::abort_job(code);
}

// CLI11 reads integers with strtoll's base 0: `--epochs 010` would be 8 and `--seed 0x10` 16. Every integer
// option of every command (type INT or UINT, lists included) takes decimal digits only.
void decimal_integers_only(CLI::App* app) {
  static const CLI::Validator decimal(
      [](std::string& s) -> std::string {
        const size_t d = (!s.empty() && (s[0] == '+' || s[0] == '-')) ? 1 : 0;
        if (s.size() > d + 1 && s[d] == '0')
          return fmt::format("'{}' is not a decimal integer (a leading 0 would read it as octal or hex)", s);
        return {};
      },
      "", "decimal");
  for (CLI::Option* o : app->get_options())
    if (o->get_type_name() == "INT" || o->get_type_name() == "UINT") o->check(decimal);
  for (CLI::App* sub : app->get_subcommands({})) decimal_integers_only(sub);
}
}  // namespace

int main(int argc, char** argv) {
  using namespace manylm;
  MpiSession mpi(&argc, &argv);  // MPI only under mpirun: the same binary runs as one process without it
  CLI::App app{
      "manylm: recurrent neural network language models (Elman RNN, LSTM, GRU), trained fast on many-core CPUs"};
  app.name("manylm");
  app.require_subcommand(1);
  std::map<std::string, Runner> runners;
  try {
    runners["train"] = add_train_command(app);
    runners["eval"] = add_eval_command(app);
    runners["rescore"] = add_rescore_command(app);
    runners["sample"] = add_sample_command(app);
    runners["plot"] = add_plot_command(app);
    runners["average"] = add_average_command(app);
    runners["bench"] = add_bench_command(app);
    runners["corpus"] = add_corpus_command(app);
    decimal_integers_only(&app);
    std::vector<std::string> args(argv, argv + argc);
    if (args.size() > 1 && args[1].rfind("-", 0) != 0 && !runners.count(args[1]))
      fail(
          "unknown command '{}' (expected train, eval, rescore, sample, average, plot, bench or corpus; see manylm "
          "--help)",
          args[1]);
    std::vector<std::string> rev(args.rbegin(), args.rend() - 1);
    app.parse(rev);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help
    return report_error("manylm: error", e.what(), 2);
  } catch (const UserError& e) {
    return report_error("manylm: error", e.what(), 2);
  }
  for (auto* sub : app.get_subcommands()) {
    try {
      return runners.at(sub->get_name())();
    } catch (const UserError& e) {
      return report_error("manylm: error", e.what(), 2);
    } catch (const std::bad_alloc&) {
      return report_error(
          "manylm: error",
          "out of memory: the model, batch or window is too large for this machine (--hidden, --vocab-size, "
          "--batch, --bptt)",
          2);
    } catch (const std::exception& e) {
      return report_error("manylm: internal error", e.what(), 1);
    }
  }
  return 2;
}
