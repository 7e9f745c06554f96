// Trains a small PyramidNet on Fashion-MNIST with DCutMix (K = 3) and saves a checkpoint
// that `classify` and `dmix eval --weights` read.
//   train_fashion_mnist [limit (0: all 60000)] [epochs] [device: auto|cpu|cuda] [checkpoint path]
#include <cstdio>

#include <dmix/dmix.h>

int main(int argc, char** argv) try {
  dmix::set_flush_denormal();  // as the dmix program does: tiny gradients stay fast
  const int64_t limit = argc > 1 ? std::stoll(argv[1]) : 0;
  const int epochs = argc > 2 ? std::stoi(argv[2]) : 3;
  const dmix::Device device = dmix::select_device(argc > 3 ? argv[3] : "auto");
  const std::string out = argc > 4 ? argv[4] : "fashion_mnist.safetensors";

  auto train = dmix::load_dataset("fashion-mnist", "", true), test = dmix::load_dataset("fashion-mnist", "", false);
  dmix::augment::DataLoader train_loader(train, dmix::loader_options(train, true, 64, limit));
  dmix::augment::DataLoader test_loader(test, dmix::loader_options(test, false, 256, limit > 0 ? 1000 : 0));
  const dmix::ModelSpec spec{"pyramidnet11_a24", 10, 1};
  auto model = dmix::build_model(spec, device);
  auto optimizer = dmix::make_optimizer("sgd", *model, 0.05, 5e-4);
  auto schedule = dmix::nn::LrSchedule::parse("cosine", 0.05, epochs);
  auto mix = dmix::mix_options("dcutmix", 3, 1.0, train_loader.options().pipeline);

  for (int epoch = 0; epoch < epochs; ++epoch) {
    train_loader.start_epoch(epoch);
    double loss = 0;
    int64_t i = 0;
    for (dmix::augment::Batch b; train_loader.next(b); ++i) {
      optimizer->lr = schedule.lr_at(epoch + double(i) / double(train_loader.batches_per_epoch()));
      auto mixed = dmix::augment::mix_batch(b.images, b.labels, b.indices, 10, mix, dmix::default_generator());
      loss += dmix::train_step(*model, *optimizer, mixed.images, mixed.targets);
    }
    std::printf("epoch %d/%d: train loss %.4f, test accuracy %.2f%%\n", epoch + 1, epochs, loss / double(i),
                dmix::accuracy(*model, test_loader));
  }
  dmix::save_model(out, *model, spec, optimizer.get());
  std::printf("saved %s\n", out.c_str());
} catch (const std::exception& e) {
  std::fprintf(stderr, "train_fashion_mnist: %s\n", e.what());
  return 1;
}
