#define FUSE_USE_VERSION 35
#include "node/fuse_workers.h"

#include <fuse_lowlevel.h>
#include <pthread.h>
#include <signal.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>

namespace gf::node {
namespace {

// Workers are woken from read(2) on /dev/fuse with this signal when stopping.
constexpr int kWakeSignal = SIGUSR1;

void ignore_signal(int) {}

}  // namespace

FuseWorkers::FuseWorkers(fuse_session* session, unsigned threads) : session_(session) {
    // A handler without SA_RESTART, so the signal interrupts read(2) on /dev/fuse.
    struct sigaction sa {};
    sa.sa_handler = ignore_signal;
    sigemptyset(&sa.sa_mask);
    ::sigaction(kWakeSignal, &sa, nullptr);

    for (unsigned i = 0; i < threads; ++i) {
        running_.fetch_add(1);
        threads_.emplace_back([this] {
            sigset_t set;
            sigemptyset(&set);
            sigaddset(&set, SIGINT);
            sigaddset(&set, SIGTERM);
            pthread_sigmask(SIG_BLOCK, &set, nullptr);
            sigemptyset(&set);
            sigaddset(&set, kWakeSignal);
            pthread_sigmask(SIG_UNBLOCK, &set, nullptr);

            fuse_buf buf{};
            while (!fuse_session_exited(session_)) {
                int res = fuse_session_receive_buf(session_, &buf);
                if (res == -EINTR) {
                    continue;
                }
                if (res <= 0) {
                    if (res < 0) {
                        fuse_session_exit(session_);  // connection gone (unmounted or aborted)
                    }
                    break;
                }
                fuse_session_process_buf(session_, &buf);
            }
            std::free(buf.mem);
            running_.fetch_sub(1);
        });
    }
}

void FuseWorkers::stop() {
    if (threads_.empty()) {
        return;
    }
    fuse_session_exit(session_);
    // Wake every worker blocked in read(2); one busy with a call finishes it first.
    // A thread that exited but is not joined yet is still a valid target.
    while (running_.load() > 0) {
        for (std::thread& t : threads_) {
            pthread_kill(t.native_handle(), kWakeSignal);
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    for (std::thread& t : threads_) {
        t.join();
    }
    threads_.clear();
}

}  // namespace gf::node
