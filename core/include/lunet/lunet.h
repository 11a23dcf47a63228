/* The lunet C API in one include. */
#ifndef LUNET_H
#define LUNET_H
#include "status.h"
#include "context.h"
#include "tensor.h"
#include "autograd.h"
#include "ops.h"
#include "init.h"
#include "data.h"
#include "pth.h"
#endif
