// dmix, one include: the whole public API of the library layers, plus the convenience
// calls of include/dmix/ that read like the `dmix` command line.
//
//   #include <dmix/dmix.h>
//
//   dmix::Device device = dmix::select_device("auto");
//   auto model = dmix::build_model({"pyramidnet11_a24", 10, 1}, device);
//   auto optimizer = dmix::make_optimizer("sgd", *model, 0.05, 5e-4);
//   dmix::Tensor x = dmix::tensor_view(host_pixels, {n, 1, 28, 28});  // no copy
//   double loss = dmix::train_step(*model, *optimizer, x, labels);
//   dmix::save_model("model.safetensors", *model, {"pyramidnet11_a24", 10, 1});
//
// Namespaces: dmix (tensors, ops, autograd as dmix::autograd, the helpers), dmix::nn
// (modules, layers, models, optimizers, schedules, checkpoints), dmix::augment (datasets,
// transforms, loader, mixing). docs/api.md in the source tree is the reference.
#pragma once

// engine: tensors, devices, randomness, autograd, every op, safetensors files
#include "engine/autograd.h"
#include "engine/device.h"
#include "engine/dtype.h"
#include "engine/error.h"
#include "engine/ops.h"
#include "engine/rng.h"
#include "engine/safetensors.h"
#include "engine/tensor.h"

// nn: modules and layers, the model registry and models, optimizers, schedules, checkpoints
#include "nn/checkpoint.h"
#include "nn/layers.h"
#include "nn/metrics.h"
#include "nn/models/flops.h"
#include "nn/models/preact_resnet.h"
#include "nn/models/pyramidnet.h"
#include "nn/models/registry.h"
#include "nn/models/resnet.h"
#include "nn/models/resnext.h"
#include "nn/models/wide_resnet.h"
#include "nn/module.h"
#include "nn/optim.h"
#include "nn/schedule.h"

// augment: datasets, per-sample transforms, the threaded loader, mixing, saliency
#include "augment/datasets.h"
#include "augment/loader.h"
#include "augment/mixing.h"
#include "augment/saliency.h"
#include "augment/transforms.h"

// the convenience layer
#include "dmix/attack.h"
#include "dmix/data.h"
#include "dmix/device.h"
#include "dmix/evaluation.h"
#include "dmix/hessian.h"
#include "dmix/landscape.h"
#include "dmix/model_io.h"
#include "dmix/nas.h"
#include "dmix/subsample.h"
#include "dmix/tensor_io.h"
#include "dmix/training.h"
#include "dmix/version.h"
