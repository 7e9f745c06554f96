// Classifies images that a host program holds in its own float buffer: the buffer is
// wrapped as a tensor without a copy, run through a trained model, and the class
// probabilities are copied back into another host buffer.
//
//   classify CHECKPOINT [MODEL]   a checkpoint of `dmix train` or train_fashion_mnist
//                                 (MODEL: the registry name, needed for a plain state dict)
//   classify                      no file: builds a small network by hand from layers,
//                                 saves its weights as a plain state dict, loads them into
//                                 a second instance and classifies with that (untrained)
//
// The images here are the first Fashion-MNIST test images, taken as raw 8-bit pixels the
// way a camera or an image decoder hands them over, and normalised by the host code as
// the model was trained: (pixel / 255 - mean) / std per channel, layout (N, C, H, W).
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <dmix/dmix.h>

using namespace dmix;

// The hand-built network: PyTorch would name its parameters 0.weight, 1.running_mean, ...
std::shared_ptr<nn::Module> small_cnn() {
  return std::make_shared<nn::Sequential>(std::vector<std::shared_ptr<nn::Module>>{
      std::make_shared<nn::Conv2d>(nn::Conv2dConfig{1, 16, 3, /*stride=*/1, /*padding=*/1}),
      std::make_shared<nn::BatchNorm2d>(16), std::make_shared<nn::ReLU>(),
      std::make_shared<nn::MaxPool2d>(Pool2dOptions{}),
      std::make_shared<nn::Conv2d>(nn::Conv2dConfig{16, 32, 3, /*stride=*/1, /*padding=*/1}),
      std::make_shared<nn::BatchNorm2d>(32), std::make_shared<nn::ReLU>(), std::make_shared<nn::GlobalAvgPool>(),
      std::make_shared<nn::Linear>(32, 10)});
}

int main(int argc, char** argv) try {
  std::shared_ptr<nn::Module> model;
  if (argc > 1) {
    LoadedModel loaded = load_model(argv[1], ModelSpec{argc > 2 ? argv[2] : ""});
    std::printf("loaded %s: %s, %lld classes\n", argv[1], loaded.spec.name.c_str(), (long long)loaded.spec.num_classes);
    model = loaded.model;
  } else {
    const std::string path = (std::filesystem::temp_directory_path() / "dmix_small_cnn.safetensors").string();
    save_weights(path, *small_cnn());
    model = small_cnn();  // fresh weights, replaced by the saved ones next
    load_weights(path, *model);
    std::filesystem::remove(path);
    std::printf("hand-built network, %lld parameters, weights saved and loaded back\n",
                (long long)model->num_parameters());
  }

  // What the host program owns: n raw grey 28 x 28 images, and a float buffer for the model.
  const augment::Dataset test = load_dataset("fashion-mnist", "", false);
  const int64_t n = 8, C = 1, H = 28, W = 28;
  const uint8_t* pixels = test.images.data<uint8_t>();
  const augment::Pipeline eval = augment::eval_pipeline("fashion-mnist");
  std::vector<float> input(size_t(n * C * H * W));
  for (size_t i = 0; i < input.size(); ++i) input[i] = (pixels[i] / 255.0f - eval.mean[0]) / eval.std[0];

  Tensor x = tensor_view(input.data(), {n, C, H, W});  // no copy: the tensor reads `input`
  Tensor probabilities = predict_probabilities(*model, x);
  const int64_t classes = probabilities.size(1);
  check(classes == test.num_classes, "classify", "the model has ", classes, " classes, Fashion-MNIST ", test.num_classes);
  std::vector<float> host_probabilities(size_t(n * classes));
  copy_out(probabilities, host_probabilities.data(), host_probabilities.size());

  const std::vector<int64_t> labels = test.labels.to_vector<int64_t>();
  int64_t correct = 0;
  for (int64_t i = 0; i < n; ++i) {
    const float* p = &host_probabilities[size_t(i * classes)];
    int64_t best = 0;
    for (int64_t c = 1; c < classes; ++c) best = p[c] > p[best] ? c : best;
    correct += best == labels[size_t(i)];
    std::printf("image %lld: %-12s p=%.3f (true: %s)\n", (long long)i, test.class_names[size_t(best)].c_str(), p[best],
                test.class_names[size_t(labels[size_t(i)])].c_str());
  }
  std::printf("%lld of %lld correct\n", (long long)correct, (long long)n);
} catch (const std::exception& e) {
  std::fprintf(stderr, "classify: %s\n", e.what());
  return 1;
}
