// mpi_main.cc — main() of the MPI test binary, started by ctest through
// `mpirun --allow-run-as-root --oversubscribe -np N`. Every rank runs every test (the tests are
// collective); only rank 0 prints gtest's report, and the exit status is nonzero if any rank failed.
#include <gtest/gtest.h>
#include <mpi.h>

#include <cstdio>

#include "mpi/comm.h"

namespace {
// What ranks other than 0 print: their failures only, with the rank.
class RankFailures : public ::testing::EmptyTestEventListener {
 public:
  explicit RankFailures(int rank) : rank_(rank) {}
  void OnTestPartResult(const ::testing::TestPartResult& r) override {
    if (r.failed())
      std::fprintf(stderr, "[rank %d] %s:%d: Failure\n%s\n", rank_, r.file_name() ? r.file_name() : "?",
                   r.line_number(), r.summary());
  }

 private:
  int rank_;
};
}  // namespace

int main(int argc, char** argv) {
  manylm::MpiSession mpi(&argc, &argv);
  ::testing::InitGoogleTest(&argc, argv);
  const manylm::Comm comm = manylm::Comm::world();
  if (!comm.root()) {
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
    listeners.Append(new RankFailures(comm.rank()));
  }
  int failed = RUN_ALL_TESTS() != 0;
  if (comm.distributed()) MPI_Allreduce(MPI_IN_PLACE, &failed, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  return failed;
}
