// A std::mutex and a std::shared_mutex that clang's -Wthread-safety analysis understands,
// with the annotation macros. Under g++ the annotations compile to nothing.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <shared_mutex>

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
#define GF_REQUIRES_SHARED(...) GF_THREAD_ANNOTATION(requires_shared_capability(__VA_ARGS__))
#define GF_EXCLUDES(...) GF_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))
#define GF_ACQUIRE(...) GF_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#define GF_ACQUIRE_SHARED(...) GF_THREAD_ANNOTATION(acquire_shared_capability(__VA_ARGS__))
#define GF_RELEASE(...) GF_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
#define GF_RELEASE_SHARED(...) GF_THREAD_ANNOTATION(release_shared_capability(__VA_ARGS__))
#define GF_ACQUIRED_AFTER(...) GF_THREAD_ANNOTATION(acquired_after(__VA_ARGS__))
// A getter that returns a reference to a capability: callers' expressions of it mean that one.
#define GF_RETURN_CAPABILITY(x) GF_THREAD_ANNOTATION(lock_returned(x))
// The caller promises the capability is held (a fact the analysis cannot see, e.g. that an
// object's lock is the one the caller took under another name).
#define GF_ASSERT_CAPABILITY(x) GF_THREAD_ANNOTATION(assert_capability(x))
#define GF_NO_THREAD_SAFETY_ANALYSIS GF_THREAD_ANNOTATION(no_thread_safety_analysis)

namespace gf {

class GF_CAPABILITY("mutex") Mutex {
  public:
    void lock() GF_ACQUIRE() { m_.lock(); }
    void unlock() GF_RELEASE() { m_.unlock(); }
    // For condition variables; the caller holds the lock.
    std::mutex& native() { return m_; }
    // Tells the analysis this lock is held here; checks nothing at run time.
    void assert_held() const GF_ASSERT_CAPABILITY(this) {}

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

// A condition variable over a Mutex. Callers loop on their condition themselves (a predicate
// lambda would be analysed as if no lock were held).
class CondVar {
  public:
    // Releases m while waiting; holds it again on return (spurious wakeups included).
    void wait(Mutex& m) GF_REQUIRES(m) {
        std::unique_lock<std::mutex> lock(m.native(), std::adopt_lock);
        cv_.wait(lock);
        lock.release();  // still held: ownership goes back to the caller's scope
    }
    // As wait(), but returns false once `deadline` has passed.
    bool wait_until(Mutex& m, std::chrono::steady_clock::time_point deadline) GF_REQUIRES(m) {
        std::unique_lock<std::mutex> lock(m.native(), std::adopt_lock);
        const bool in_time = cv_.wait_until(lock, deadline) == std::cv_status::no_timeout;
        lock.release();
        return in_time;
    }
    void notify_one() { cv_.notify_one(); }
    void notify_all() { cv_.notify_all(); }

  private:
    std::condition_variable cv_;
};

// A reader/writer lock: many holders share it, or one holds it exclusively.
class GF_CAPABILITY("shared_mutex") SharedMutex {
  public:
    void lock() GF_ACQUIRE() { m_.lock(); }
    void unlock() GF_RELEASE() { m_.unlock(); }
    void lock_shared() GF_ACQUIRE_SHARED() { m_.lock_shared(); }
    void unlock_shared() GF_RELEASE_SHARED() { m_.unlock_shared(); }

  private:
    std::shared_mutex m_;
};

class GF_SCOPED_CAPABILITY ReaderLock {
  public:
    explicit ReaderLock(SharedMutex& m) GF_ACQUIRE_SHARED(m) : m_(m) { m_.lock_shared(); }
    ~ReaderLock() GF_RELEASE() { m_.unlock_shared(); }
    ReaderLock(const ReaderLock&) = delete;
    ReaderLock& operator=(const ReaderLock&) = delete;

  private:
    SharedMutex& m_;
};

class GF_SCOPED_CAPABILITY WriterLock {
  public:
    explicit WriterLock(SharedMutex& m) GF_ACQUIRE(m) : m_(m) { m_.lock(); }
    ~WriterLock() GF_RELEASE() { m_.unlock(); }
    WriterLock(const WriterLock&) = delete;
    WriterLock& operator=(const WriterLock&) = delete;

  private:
    SharedMutex& m_;
};

}  // namespace gf
