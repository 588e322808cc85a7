// The device server's trace (docs/vm.md#trace): one event per thing a driver developer
// wants to see (a register access and what it meant, a config-space write, a placement, a
// reset, a stray access), each with a timestamp. Two forms of the same events: lines for
// people (`--trace`, on the log) and JSON lines for scripts (`--trace-json FILE`).
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "base/mutex.h"
#include "base/result.h"

namespace gf::vmm {

class TraceEvent {
  public:
    // `kind` names the event for scripts ("bar0_write", "config_write", ...).
    explicit TraceEvent(std::string_view kind);

    TraceEvent& field(std::string_view key, uint64_t value);
    TraceEvent& field(std::string_view key, std::string_view value);
    TraceEvent& flag(std::string_view key, bool value);
    TraceEvent& object(std::string_view key, nlohmann::ordered_json value);
    // Appends to the line people read.
    TraceEvent& say(std::string_view text);

    const std::string& text() const { return text_; }
    const nlohmann::ordered_json& fields() const { return fields_; }

  private:
    nlohmann::ordered_json fields_;
    std::string text_;
};

class Tracer {
  public:
    using Clock = std::chrono::steady_clock;
    // Lines go to `lines` (if set), JSON to `json` (if open; the tracer owns and flushes it).
    Tracer(std::function<void(std::string_view)> lines, std::unique_ptr<FILE, int (*)(FILE*)> json);
    // ENOENT, EACCES...: the JSON file cannot be created.
    static Result<std::unique_ptr<FILE, int (*)(FILE*)>> open_json(const std::string& path);

    void emit(const TraceEvent& event) GF_EXCLUDES(mutex_);
    // Seconds since the tracer began, as its events show them.
    double elapsed() const;

  private:
    const Clock::time_point start_ = Clock::now();
    const std::function<void(std::string_view)> lines_;
    Mutex mutex_;
    std::unique_ptr<FILE, int (*)(FILE*)> json_ GF_GUARDED_BY(mutex_);
};

// "0x1f"
std::string hex(uint64_t value);
// "ENOMEM" for 12, else the number.
std::string errno_name(uint64_t value);

}  // namespace gf::vmm
