// Memory leaked on purpose (a thread left running at shutdown still uses it): tells
// LeakSanitizer so, where the build has it, so that the leak is not reported. What the object
// points to stays reachable through it.
#pragma once

#if defined(__SANITIZE_ADDRESS__)
#define GF_HAVE_LSAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(leak_sanitizer)
#define GF_HAVE_LSAN 1
#endif
#endif

#if defined(GF_HAVE_LSAN)
#include <sanitizer/lsan_interface.h>
#endif

namespace gf {

inline void leaked_on_purpose([[maybe_unused]] const void* object) {
#if defined(GF_HAVE_LSAN)
    __lsan_ignore_object(object);
#endif
}

}  // namespace gf
