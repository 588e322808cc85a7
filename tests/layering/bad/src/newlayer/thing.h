// A layer the table does not know.
#pragma once
#include "base/result.h"
