// watchdog.h — ends a data-parallel job that would otherwise hang: a rank that waits in the step's collectives
// longer than --comm-timeout, that hears nothing from a peer for that long, or that learns a peer's process is
// gone, prints one line (what happened, which rank stopped answering, the last intact checkpoint and the command
// that resumes it) and exits with status 3; it first tells the other ranks, which print their own line and exit.
//
// The timer is armed only while this rank waits for the others in a training step (the gradient reduction's
// finish(), the embedding rows, the loss sum): never around rank 0's vocabulary pass, checkpoint writes or
// evaluation, and not in a session's first step (GEMM tuning). A heartbeat names the rank: every rank sends a
// small UDP datagram (its rank, step, whether it waits) to every other rank's address every `period` seconds from
// its own thread, independent of MPI (whose calls may be the ones hanging; MPI_THREAD_SERIALIZED forbids a
// second caller). A rank that computes, writes a checkpoint or tunes GEMMs keeps sending them, so a peer silent
// for the whole timeout ends the job wherever the ranks are (a checkpoint's barrier too).
// A peer whose process ended without saying goodbye makes its host answer with "port unreachable" (seen through
// IP_RECVERR): that is a rank killed outright. Where UDP between the nodes is blocked the timeout still ends
// the job; the line then says no heartbeat was ever received. Not the reduction itself (reducer.h).
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "mpi/comm.h"

namespace manylm {

constexpr int kCommFailureExit = 3;  // the exit status of a rank the watchdog stopped

struct WatchdogOptions {
  double timeout = 300;  // seconds a rank may wait in the step's collectives; <= 0: no watchdog
  double period = 0.25;  // seconds between heartbeats
};

class Watchdog {
 public:
  // Collective over `comm` (the ranks exchange their heartbeat addresses). With one rank, or a timeout <= 0,
  // it does nothing at all.
  Watchdog(const Comm& comm, const WatchdogOptions& o);
  Watchdog() = default;  // off
  ~Watchdog();           // tells the peers this rank leaves on purpose
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  bool on() const { return state_ != nullptr; }
  // The end of every line this rank would print (the trainer: the last intact checkpoint and how to resume).
  void set_note(std::string note);
  // The step this rank is in (shown in lines and sent in heartbeats).
  void set_step(int64_t step);
  // From now on arm() arms (the trainer calls it after a session's first step).
  void start_watching();

  // Armed while alive: this rank waits for the others in `what` ("the gradient reduction").
  class Armed {
   public:
    Armed(Armed&& o) noexcept : w_(o.w_) { o.w_ = nullptr; }
    Armed(const Armed&) = delete;
    Armed& operator=(const Armed&) = delete;
    ~Armed();

   private:
    friend class Watchdog;
    explicit Armed(Watchdog* w) : w_(w) {}
    Watchdog* w_;
  };
  [[nodiscard]] Armed arm(const char* what) { return arm(this, what); }
  // The same through a pointer that may be null (no watchdog: nothing armed).
  [[nodiscard]] static Armed arm(Watchdog* w, const char* what);

  struct State;  // the heartbeat thread's view (watchdog.cc)

 private:
  std::unique_ptr<State> state_;
  std::thread thread_;
};

// "rank 3" / "ranks 1, 4 and 7" (for the lines the watchdog prints).
std::string rank_list(const std::vector<int>& ranks);

}  // namespace manylm
