// dmix::Error, fail() and check() are defined in kernels/error.h, the lowest layer, so the
// kernels can report errors without including the engine. This header keeps the name the
// engine and the layers above it (and installed consumers' code) have always included.
#pragma once
#include "kernels/error.h"
