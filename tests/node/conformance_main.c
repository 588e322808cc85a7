/* A C program that includes only the UAPI header (through conformance.c) and
 * runs the conformance sequences against the node named on its command line. */
#include <stdio.h>

#include "client/conformance.h"

int main(int argc, char** argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s NODE\n", argv[0]);
        return 2;
    }
    return gf_conformance_run(argv[1], stdout) == 0 ? 0 : 1;
}
