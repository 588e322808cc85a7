// A fixed pool of threads serving one FUSE session: each reads a request from
// /dev/fuse and processes it, so one slow call does not stall the others.
// Stopping wakes threads blocked in read(2) with a signal, which libfuse's own
// loop offers no way to do from another thread.
#pragma once

#include <atomic>
#include <thread>
#include <vector>

struct fuse_session;

namespace gf::node {

class FuseWorkers {
  public:
    // Starts `threads` workers on `session` (which must outlive them). The
    // workers block SIGINT and SIGTERM: those belong to the daemon's main thread.
    FuseWorkers(fuse_session* session, unsigned threads);
    FuseWorkers(const FuseWorkers&) = delete;
    FuseWorkers& operator=(const FuseWorkers&) = delete;
    ~FuseWorkers() { stop(); }

    // Ends the session loop: calls being processed finish, then every worker
    // exits. Idempotent.
    void stop();

  private:
    fuse_session* session_;
    std::vector<std::thread> threads_;
    std::atomic<unsigned> running_{0};
};

}  // namespace gf::node
