// comm.h — the MPI world as manylm uses it: started only when the process was launched by mpirun
// (so the same binary runs as one process without it), rank and size, and the few blocking
// collectives the trainer needs outside the gradient all-reduce (loss sums, broadcast of the
// vocabulary, gathering carried hidden state for a checkpoint). With one process every call is a no-op
// or a copy. Not the gradient reduction (reducer.h) and not the codecs (compress.h).
#pragma once
#include <cstdint>
#include <span>
#include <string>

namespace manylm {

// RAII for MPI_Init_thread / MPI_Finalize, owned by main(). Initializes MPI iff the environment says
// the process was started by mpirun (Open MPI's OMPI_COMM_WORLD_SIZE, or PMI_SIZE / PMIX_RANK).
class MpiSession {
 public:
  MpiSession(int* argc, char*** argv);
  ~MpiSession();
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;
  // Ends the whole job after a fatal error on this rank (MPI_Abort when several ranks run).
  [[noreturn]] static void abort_job(int code);

 private:
  bool started_ = false;
};

bool launched_by_mpirun();

// A view of MPI_COMM_WORLD (rank 0 of 1 when MPI is not running). Cheap to copy.
class Comm {
 public:
  static Comm world();
  int rank() const { return rank_; }
  int size() const { return size_; }
  bool root() const { return rank_ == 0; }
  bool distributed() const { return size_ > 1; }

  void barrier() const;
  // In place sums over ranks (fixed order is MPI's business: these are reporting values).
  void sum(std::span<double> v) const;
  void sum(std::span<int64_t> v) const;
  double max(double v) const;
  // Rank 0's string on every rank.
  std::string broadcast(const std::string& s) const;
  // Rank 0's values on every rank, in place.
  void broadcast(std::span<float> v) const;
  // Rows [r0, r1) of a (rows, cols) float matrix from every rank, assembled on rank 0 into `full`
  // (row ranges must tile [0, rows) in rank order). Other ranks' `full` is untouched.
  void gather_rows(const float* mine, int64_t r0, int64_t r1, int64_t cols, float* full) const;
  // FNV-1a of a buffer, compared across ranks: UserError naming `what` if any rank differs.
  void check_same(std::span<const float> v, const std::string& what) const;

 private:
  int rank_ = 0, size_ = 1;
};

}  // namespace manylm
