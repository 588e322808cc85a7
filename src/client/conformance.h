/* Conformance sequences for a goldfish address space node (docs/contexts.md#client-sequences,
 * without mmap), written in C against the UAPI header alone, so that the same
 * steps run from a C test program and from `goldfish-as selftest`. */
#ifndef GF_CLIENT_CONFORMANCE_H
#define GF_CLIENT_CONFORMANCE_H

#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Runs every step against the node at `node_path`, printing one
 * "PASS: <step>" or "FAIL: <step>: <detail>" line per step to `out`.
 * Returns the number of failed steps (0 when all pass). */
int gf_conformance_run(const char* node_path, FILE* out);

#ifdef __cplusplus
}
#endif

#endif
