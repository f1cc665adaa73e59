// mpi_corpus.h — what the MPI training tests share: a slice of the real Penn Treebank in a directory every
// rank sees, the small LSTM configuration they train on it, and the per-step perplexities a run recorded.
// Not a fixture library.
#pragma once
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "../test_util.h"
#include "mpi/comm.h"
#include "train/config.h"

namespace manylm::mpi_test {

// A directory every rank sees (rank 0 makes it) with the first lines of PTB.
struct Corpus {
  std::string dir;
  Corpus() {
    const Comm comm = Comm::world();
    std::string d;
    if (comm.root()) {
      char tmpl[] = "/tmp/manylm-mpi-test-XXXXXX";
      d = mkdtemp(tmpl);
      test_util::write_ptb_slice(d, 3000, 400);
    }
    dir = comm.broadcast(d);
  }
  ~Corpus() {
    Comm::world().barrier();
    if (Comm::world().root()) std::system(("rm -rf " + dir).c_str());
  }
  Corpus(const Corpus&) = delete;
  Corpus& operator=(const Corpus&) = delete;
  Config config(const std::string& out) const {
    Config c = test_util::slice_config(dir, out);
    c.cell = Cell::Lstm;
    c.hidden = c.embed = 24;
    c.layers = 2;
    c.batch = 8;
    c.bptt = 6;
    c.eval_batch = 4;
    c.epochs = 5;
    c.lr = 1.0;
    c.dropout = 0.3;
    c.threads = 1;
    c.progress_seconds = 1e-9;  // a metrics record per step: that step's loss
    c.bucket_mb = 0.05;         // several buckets even for this small model
    return c;
  }
};

// Per-step perplexities from metrics.jsonl (type "train").
inline std::vector<double> step_ppl(const std::string& run) {
  std::vector<double> v;
  std::ifstream f(run + "/metrics.jsonl");
  std::string line;
  while (std::getline(f, line)) {
    auto j = nlohmann::json::parse(line);
    if (j["type"] == "train") v.push_back(j["ppl"].get<double>());
  }
  return v;
}

}  // namespace manylm::mpi_test
