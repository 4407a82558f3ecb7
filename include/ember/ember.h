/* Ember: a cluster computing engine with the architecture of Apache Spark Core.
 * The one header a driver program includes. See docs/user-guide.md. */
#ifndef EMBER_EMBER_H
#define EMBER_EMBER_H

#define EMBER_VERSION_MAJOR  0
#define EMBER_VERSION_MINOR  1
#define EMBER_VERSION_PATCH  0
#define EMBER_VERSION_STRING "0.1.0"

#include "errors.h"
#include "conf.h"
#include "record.h"
#include "function.h"
#include "context.h"
#include "rdd.h"
#include "shared.h"

#endif
