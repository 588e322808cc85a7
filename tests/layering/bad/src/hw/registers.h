// An include that names no layer.
#pragma once
#include "registers_impl.h"
#include "stress/invariants.h"
