// A std::mutex that clang's -Wthread-safety analysis understands, with the
// annotation macros. Under g++ the annotations compile to nothing.
#pragma once

#include <condition_variable>
#include <mutex>

#if defined(__clang__)
#define GF_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define GF_THREAD_ANNOTATION(x)
#endif

#define GF_CAPABILITY(x) GF_THREAD_ANNOTATION(capability(x))
#define GF_SCOPED_CAPABILITY GF_THREAD_ANNOTATION(scoped_lockable)
#define GF_GUARDED_BY(x) GF_THREAD_ANNOTATION(guarded_by(x))
#define GF_PT_GUARDED_BY(x) GF_THREAD_ANNOTATION(pt_guarded_by(x))
#define GF_REQUIRES(...) GF_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
#define GF_EXCLUDES(...) GF_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))
#define GF_ACQUIRE(...) GF_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#define GF_RELEASE(...) GF_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
#define GF_ACQUIRED_AFTER(...) GF_THREAD_ANNOTATION(acquired_after(__VA_ARGS__))
#define GF_NO_THREAD_SAFETY_ANALYSIS GF_THREAD_ANNOTATION(no_thread_safety_analysis)

namespace gf {

class GF_CAPABILITY("mutex") Mutex {
  public:
    void lock() GF_ACQUIRE() { m_.lock(); }
    void unlock() GF_RELEASE() { m_.unlock(); }
    // For condition variables; the caller holds the lock.
    std::mutex& native() { return m_; }

  private:
    std::mutex m_;
};

class GF_SCOPED_CAPABILITY MutexLock {
  public:
    explicit MutexLock(Mutex& m) GF_ACQUIRE(m) : m_(m) { m_.lock(); }
    ~MutexLock() GF_RELEASE() { m_.unlock(); }
    MutexLock(const MutexLock&) = delete;
    MutexLock& operator=(const MutexLock&) = delete;

  private:
    Mutex& m_;
};

}  // namespace gf
