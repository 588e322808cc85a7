#include "vmm/trace.h"

#include <cerrno>
#include <cinttypes>
#include <utility>

namespace gf::vmm {

std::string hex(uint64_t value) {
    char buf[24];
    std::snprintf(buf, sizeof buf, "0x%" PRIx64, value);
    return buf;
}

std::string errno_name(uint64_t value) {
    switch (value) {
        case 0:
            return "0";
        case EINVAL:
            return "EINVAL";
        case ENOMEM:
            return "ENOMEM";
        case ENOSPC:
            return "ENOSPC";
        case ENOSYS:
            return "ENOSYS";
        case EFAULT:
            return "EFAULT";
        case EIO:
            return "EIO";
        default:
            return std::to_string(value);
    }
}

TraceEvent::TraceEvent(std::string_view kind) {
    fields_["event"] = std::string(kind);
}

TraceEvent& TraceEvent::field(std::string_view key, uint64_t value) {
    fields_[std::string(key)] = value;
    return *this;
}

TraceEvent& TraceEvent::field(std::string_view key, std::string_view value) {
    fields_[std::string(key)] = std::string(value);
    return *this;
}

TraceEvent& TraceEvent::flag(std::string_view key, bool value) {
    fields_[std::string(key)] = value;
    return *this;
}

TraceEvent& TraceEvent::object(std::string_view key, nlohmann::ordered_json value) {
    fields_[std::string(key)] = std::move(value);
    return *this;
}

TraceEvent& TraceEvent::say(std::string_view text) {
    text_ += text;
    return *this;
}

Tracer::Tracer(std::function<void(std::string_view)> lines,
               std::unique_ptr<FILE, int (*)(FILE*)> json)
    : lines_(std::move(lines)), json_(std::move(json)) {}

Result<std::unique_ptr<FILE, int (*)(FILE*)>> Tracer::open_json(const std::string& path) {
    FILE* file = std::fopen(path.c_str(), "we");
    if (file == nullptr) {
        return fail(errno);
    }
    return std::unique_ptr<FILE, int (*)(FILE*)>(file, &std::fclose);
}

double Tracer::elapsed() const {
    return std::chrono::duration<double>(Clock::now() - start_).count();
}

void Tracer::emit(const TraceEvent& event) {
    const double t = elapsed();
    MutexLock lock(mutex_);
    if (lines_) {
        char stamp[32];
        std::snprintf(stamp, sizeof stamp, "[%12.6f] ", t);
        lines_(std::string(stamp) + event.text());
    }
    if (json_) {
        nlohmann::ordered_json line;
        // Microseconds as an integer: exact, and what scripts subtract.
        line["t_us"] = static_cast<uint64_t>(t * 1e6);
        for (const auto& [key, value] : event.fields().items()) {
            line[key] = value;
        }
        line["text"] = event.text();
        // Lines a script can tail while the VM runs.
        std::fputs(
            (line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n").c_str(),
            json_.get());
        std::fflush(json_.get());
    }
}

}  // namespace gf::vmm
