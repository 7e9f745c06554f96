// The split of a classification model into its feature extractor and its final Linear
// classifier: logits = classifier(features(x)), where features(x) is the (N, D)
// penultimate-layer activation (after global pooling). Analyses that look at the
// representation (the K-Center coreset of Sener & Savarese) or perturb the classifier's
// input (MC dropout on a model trained without dropout) need it.
//
// Known models: PyramidNet, ResNet, PreActResNet, WideResNet and ResNeXt (their own
// features() and fc / linear / classifier), and a Sequential whose last layer is a Linear
// (features = every layer before it). A model of another kind is a dmix::Error naming these.
#pragma once
#include <functional>

#include "engine/tensor.h"
#include "nn/layers.h"
#include "nn/module.h"

namespace dmix::nn {

struct FeatureHead {
  std::function<Tensor(const Tensor&)> features;  // x -> (N, D), the classifier's input
  Linear* classifier = nullptr;                   // D -> num_classes; owned by the model
};

// The split of `model`, which must outlive the result. Throws dmix::Error for a model of
// an unknown kind.
FeatureHead feature_head(Module& model);
bool has_feature_head(Module& model);

}  // namespace dmix::nn
