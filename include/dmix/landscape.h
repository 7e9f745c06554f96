// Loss landscapes (probe/landscape.h): the loss and accuracy of a model as its weights move,
// in eval mode with the running batch-norm statistics as trained. The sigma-curve adds
// Gaussian noise of growing standard deviation to every weight (the paper's Fig. 3b); 2-D
// surfaces follow the top-2 Hessian eigenvectors (Fig. 3a) or two filter-normalised random
// directions (Li et al. 2018); interpolation walks the line between two checkpoints. The
// centre of every grid is the plain evaluation loss, the weights come back bit-identical, and
// a seed fixes the noise and directions. Namespace dmix::probe; the calls below are
// shortcuts for one fixed batch.
//
//   dmix::probe::FixedBatch batch(images, labels);   // or LoaderBatches(loader): the whole split
//   auto curve = dmix::probe::sigma_curve(*model, batch, {});   // curve.sigmas, curve.loss_mean, ...
//   auto dirs = dmix::probe::eigen_directions(*model, batch);   // or random_directions(*model, {})
//   dmix::probe::SurfaceOptions grid;                           // 21 x 21 over [-0.1, 0.1]^2
//   auto surface = dmix::probe::surface_2d(*model, batch, dirs, grid);   // surface.loss[j * 21 + i]
//   auto line = dmix::probe::interpolate(*model_a, *model_b, batch, {}); // t in [-0.5, 1.5]
#pragma once
#include <cstdint>
#include <vector>

#include "nn/module.h"
#include "probe/hvp.h"
#include "probe/landscape.h"

namespace dmix {

// Mean loss on one batch after adding N(0, sigma^2) noise to every parameter, per sigma
// (default 0, 0.002, ..., 0.012), averaged over `draws` noise draws of the generator `seed`.
inline std::vector<double> loss_sigma_curve(nn::Module& model, const Tensor& inputs, const Tensor& targets,
                                            std::vector<double> sigmas = probe::linspace(0.0, 0.012, 7),
                                            int64_t draws = 5, uint64_t seed = 0) {
  probe::FixedBatch batch(inputs, targets);
  probe::SigmaOptions options;
  options.sigmas = std::move(sigmas);
  options.draws = draws;
  options.seed = seed;
  return probe::sigma_curve(model, batch, options).loss_mean;
}

// The loss on one batch over [-radius, radius]^2 (steps x steps points) along the top-2
// eigenvectors of its Hessian (unit vectors in parameter space), row-major over the second
// direction: value [j * steps + i] at coefficients (x_i, y_j).
inline probe::Surface loss_surface_eigen(nn::Module& model, const Tensor& inputs, const Tensor& targets,
                                         double radius = 0.1, int64_t steps = 21) {
  probe::FixedBatch batch(inputs, targets);
  probe::SurfaceOptions grid;
  grid.x = grid.y = probe::linspace(-radius, radius, steps);
  return probe::surface_2d(model, batch, probe::eigen_directions(model, batch), grid);
}

}  // namespace dmix
