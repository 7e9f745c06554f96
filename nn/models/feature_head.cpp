// Model kinds are recognised by dynamic_cast: the models already compute their pooled
// features in a features() of their own, so the split needs no change to them.
#include "nn/models/feature_head.h"

#include "engine/error.h"
#include "nn/models/preact_resnet.h"
#include "nn/models/pyramidnet.h"
#include "nn/models/resnet.h"
#include "nn/models/resnext.h"
#include "nn/models/wide_resnet.h"

namespace dmix::nn {
namespace {

template <class M>
bool split_as(Module& model, Linear* (*classifier)(M&), FeatureHead& out) {
  auto* m = dynamic_cast<M*>(&model);
  if (!m) return false;
  out.features = [m](const Tensor& x) { return m->features(x); };
  out.classifier = classifier(*m);
  return true;
}

bool split_sequential(Module& model, FeatureHead& out) {
  auto* seq = dynamic_cast<Sequential*>(&model);
  if (!seq || seq->size() == 0) return false;
  auto* last = dynamic_cast<Linear*>(&(*seq)[seq->size() - 1]);
  if (!last) return false;
  out.features = [seq](const Tensor& x) {
    Tensor h = x;
    for (size_t i = 0; i + 1 < seq->size(); ++i) h = (*seq)[i].forward(h);
    return h;
  };
  out.classifier = last;
  return true;
}

bool split(Module& model, FeatureHead& out) {
  return split_as<PyramidNet>(
             model, [](PyramidNet& m) { return m.fc.get(); }, out) ||
         split_as<ResNet>(
             model, [](ResNet& m) { return m.fc.get(); }, out) ||
         split_as<PreActResNet>(
             model, [](PreActResNet& m) { return m.linear.get(); }, out) ||
         split_as<WideResNet>(
             model, [](WideResNet& m) { return m.linear.get(); }, out) ||
         split_as<ResNeXt>(
             model, [](ResNeXt& m) { return m.classifier.get(); }, out) ||
         split_sequential(model, out);
}

}  // namespace

FeatureHead feature_head(Module& model) {
  FeatureHead head;
  check(split(model, head), "feature_head",
        "cannot find the penultimate features of this model: known are PyramidNet, ResNet, PreActResNet, "
        "WideResNet, ResNeXt and a Sequential ending in a Linear layer");
  return head;
}

bool has_feature_head(Module& model) {
  FeatureHead head;
  return split(model, head);
}

}  // namespace dmix::nn
