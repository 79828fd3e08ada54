/*
 * swarmhost plugin SDK — umbrella header. Include this one.
 * Plain C99; also valid C++. See docs/sdk.md for the contract in prose.
 */
#ifndef SWARMHOST_SWARMHOST_H
#define SWARMHOST_SWARMHOST_H

#include "abi.h"
#include "hook.h"
#include "middleware.h"
#include "provider.h"
#include "session_type.h"
#include "storage.h"

#endif /* SWARMHOST_SWARMHOST_H */
