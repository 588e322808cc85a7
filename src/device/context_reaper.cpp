#include "device/context_reaper.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <system_error>
#include <utility>

#include "base/leak.h"

namespace gf::device {

std::atomic<uint64_t> ContextReaper::abandoned_{0};

Result<std::unique_ptr<ContextReaper>> ContextReaper::create(std::chrono::milliseconds bound) {
    std::unique_ptr<ContextReaper> reaper(new ContextReaper(bound));
    try {
        reaper->thread_ = std::thread([raw = reaper.get()] { raw->run(); });
    } catch (const std::system_error& error) {
        return fail(error.code().value() != 0 ? error.code().value() : EAGAIN);
    }
    return reaper;
}

ContextReaper::~ContextReaper() {
    // The owner called shut_down(); this only covers a reaper that never ran one.
    if (thread_.joinable()) {
        (void)shut_down(Clock::now() + bound_);
    }
}

void ContextReaper::adopt(std::vector<std::unique_ptr<Context>> ended) {
    const Clock::time_point deadline = Clock::now() + bound_;
    {
        MutexLock lock(mutex_);
        for (auto& context : ended) {
            queue_.push_back(Pending{std::move(context), deadline});
        }
    }
    changed_.notify_all();
}

void ContextReaper::finish_now(std::vector<std::unique_ptr<Context>> ended) {
    const Clock::time_point deadline = Clock::now() + bound_;
    std::vector<std::unique_ptr<Context>> late;
    for (auto& context : ended) {
        if (!context->wait_stopped(deadline)) {
            log_overrun(*context, bound_);
            late.push_back(std::move(context));
        }
    }
    ended.clear();  // destroys the stopped ones
    if (!late.empty()) {
        MutexLock lock(mutex_);
        for (auto& context : late) {
            stragglers_.push_back(std::move(context));
        }
    }
    changed_.notify_all();
}

size_t ContextReaper::stalled() const {
    MutexLock lock(mutex_);
    return stragglers_.size();
}

void ContextReaper::log_overrun(const Context& context, std::chrono::milliseconds bound) {
    std::fprintf(stderr,
                 "goldfish: a type-%u context's thread did not stop within %lld ms; it has no "
                 "BAR1 access and is destroyed once it returns\n",
                 static_cast<unsigned>(context.type()), static_cast<long long>(bound.count()));
}

void ContextReaper::run() {
    // Stragglers are looked at again this often (they cost nothing meanwhile).
    const auto recheck = std::max(bound_, std::chrono::milliseconds(10));
    for (;;) {
        Pending next;
        {
            MutexLock lock(mutex_);
            while (!stop_ && queue_.empty()) {
                if (stragglers_.empty()) {
                    changed_.wait(mutex_);
                } else if (!changed_.wait_until(mutex_, Clock::now() + recheck)) {
                    break;
                }
            }
            if (stop_) {
                return;
            }
            if (!queue_.empty()) {
                next = std::move(queue_.front());
                queue_.pop_front();
            }
        }
        if (next.context) {
            if (next.context->wait_stopped(next.deadline)) {
                next.context.reset();  // its thread has returned: safe to destroy
            } else {
                log_overrun(*next.context, bound_);
                MutexLock lock(mutex_);
                stragglers_.push_back(std::move(next.context));
            }
        }
        collect_stopped_stragglers();
    }
}

void ContextReaper::collect_stopped_stragglers() {
    std::vector<std::unique_ptr<Context>> stragglers;
    {
        MutexLock lock(mutex_);
        stragglers.swap(stragglers_);
    }
    std::vector<std::unique_ptr<Context>> running;
    for (auto& context : stragglers) {
        // A deadline already past: only looks.
        if (!context->wait_stopped(Clock::time_point{})) {
            running.push_back(std::move(context));
        }
    }
    stragglers.clear();
    MutexLock lock(mutex_);
    for (auto& context : running) {
        stragglers_.push_back(std::move(context));
    }
}

size_t ContextReaper::shut_down(Clock::time_point deadline) {
    {
        MutexLock lock(mutex_);
        stop_ = true;
    }
    changed_.notify_all();
    // Its wait in progress ends by that context's deadline, which is no later than `deadline`
    // when the owner allows the bound from now.
    if (thread_.joinable()) {
        thread_.join();
    }
    std::vector<std::unique_ptr<Context>> left;
    {
        MutexLock lock(mutex_);
        for (Pending& pending : queue_) {
            left.push_back(std::move(pending.context));
        }
        queue_.clear();
        for (auto& context : stragglers_) {
            left.push_back(std::move(context));
        }
        stragglers_.clear();
    }
    size_t abandoned = 0;
    for (auto& context : left) {
        if (context->wait_stopped(deadline)) {
            context.reset();
            continue;
        }
        std::fprintf(stderr,
                     "goldfish: a type-%u context's thread is still running at the device's "
                     "end; it is left running and its context is not freed\n",
                     static_cast<unsigned>(context->type()));
        // Leaked on purpose: the thread may still use it.
        Context* left = context.release();
        leaked_on_purpose(left);
        left->abandon();
        ++abandoned;
    }
    abandoned_.fetch_add(abandoned, std::memory_order_relaxed);
    return abandoned;
}

uint64_t ContextReaper::abandoned_total() {
    return abandoned_.load(std::memory_order_relaxed);
}

}  // namespace gf::device
