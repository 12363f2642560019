/* lmcore — everything a plugin may use.  Include this one header. */
#ifndef LMCORE_LMCORE_H
#define LMCORE_LMCORE_H

#include "architecture.h"
#include "communicator.h"
#include "config.h"
#include "dataset.h"
#include "device.h"
#include "file.h"
#include "hash.h"
#include "json.h"
#include "log.h"
#include "logger.h"
#include "memory.h"
#include "objective.h"
#include "optimizer.h"
#include "plugin.h"
#include "rng.h"
#include "safetensors.h"
#include "status.h"
#include "step.h"
#include "tensor.h"
#include "text_source.h"
#include "tokenizer.h"

#define LMCORE_VERSION_MAJOR 0
#define LMCORE_VERSION_MINOR 2
#define LMCORE_VERSION_PATCH 0
#define LMCORE_VERSION_STRING "0.2.0"

#endif
