// Loss landscapes around a trained model: how the loss (and accuracy) changes when the
// weights move, as the paper's Fig. 3 and Li et al. (2018) draw it.
//
//   sigma_curve:   mean and std over draws of loss and accuracy after adding N(0, sigma^2)
//                  noise to every selected weight, for each sigma of a grid (Fig. 3b);
//   surface_2d:    loss and accuracy at theta + a d1 + b d2 on a grid of (a, b), for two
//                  directions from eigen_directions (the top-2 Hessian eigenvectors, Fig. 3a)
//                  or random_directions (Gaussian, filter-normalised as Li et al.);
//   interpolate:   loss and accuracy along theta(t) = (1 - t) theta_a + t theta_b between
//                  two checkpoints of one architecture.
//
// Every point is one evaluation of the model in eval mode over the batch source (running
// batch-norm statistics as trained, dropout off), the mean loss weighted by batch size,
// exactly as HessianOperator::loss() computes it. The centre of each grid (sigma = 0,
// (a, b) = (0, 0), t = 0) evaluates the untouched weights, so it equals the plain
// evaluation loss to the last bit. Noise and random directions come from a Philox
// Generator seeded by the options: a seed gives the same numbers on every run, thread count
// and device. The weights (and the model's train/eval mode) are put back bit-identical when
// the function returns or throws. A non-finite loss at any point is an error naming it.
// Cost: one forward pass over the batch source per grid point; memory: two extra copies of
// the selected weights (the original and the noise or one direction pair).
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "nn/module.h"
#include "probe/eigen.h"
#include "probe/hvp.h"

namespace dmix::probe {

// One batch's contribution to a point: its mean loss and how many samples the model got
// right (top-1; -1 where the loss has no notion of a right answer, e.g. a regression).
struct BatchScore {
  double loss = 0;
  int64_t correct = -1;
};
using ScoreFn = std::function<BatchScore(nn::Module& model, const augment::Batch& batch)>;
// Cross entropy on i64 labels, soft cross entropy on float targets (as classification_batch_loss),
// and top-1 hits against the label, or against the largest soft target.
BatchScore classification_batch_score(nn::Module& model, const augment::Batch& batch);

// The value of one point: mean loss over every sample the source yields, and the share
// right in [0, 1] (NaN where the score function counts no hits).
struct PointValue {
  double loss = 0;
  double accuracy = 0;
};
// The model as it stands, in eval mode (its mode is put back); no check on finiteness.
PointValue evaluate_point(nn::Module& model, BatchSource& batches, const ScoreFn& score = classification_batch_score);

// Called after each grid point: points done, points in all.
using LandscapeProgressFn = std::function<void(int64_t done, int64_t total)>;

// n evenly spaced values from lo to hi inclusive (n >= 2; n = 1 gives {lo}); values within
// 1e-12 of 0 or 1 snap to exactly 0 or 1, so a grid that straddles them hits the centre.
std::vector<double> linspace(double lo, double hi, int64_t n);

// The parameters a landscape moves: those that require grad, in registration order, or those
// under the given name prefixes (as HessianOptions::parameters); an error names an unused prefix.
struct NamedParameters {
  std::vector<std::string> names;
  TensorList tensors;
};
NamedParameters selected_parameters(const nn::Module& model, const std::vector<std::string>& prefixes);

// ---- the sigma-curve (Fig. 3b) ----
struct SigmaOptions {
  std::vector<double> sigmas = linspace(0.0, 0.012, 7);  // each >= 0; sigma = 0 is evaluated once
  int64_t draws = 5;                                     // noise draws per sigma > 0
  // Name prefixes of the parameters that get noise; empty: every parameter, as PyHessian's
  // "every weight" means, biases and batch-norm scales and shifts included (the running
  // statistics are buffers, never noised).
  std::vector<std::string> parameters;
  uint64_t seed = 0;
  ScoreFn score = classification_batch_score;
  LandscapeProgressFn progress;
};

struct SigmaCurve {
  std::vector<double> sigmas;
  // Per sigma: mean and standard deviation (over draws, n - 1 in the denominator; 0 for one draw).
  std::vector<double> loss_mean, loss_std, accuracy_mean, accuracy_std;
  // Per sigma, per draw (one value at sigma = 0).
  std::vector<std::vector<double>> loss_draws, accuracy_draws;
  PointValue center;       // the untouched weights
  int64_t parameters = 0;  // elements that got noise
  int64_t evaluations = 0;
};

// Draw d adds sigma * z_d, where z_d ~ N(0, I) is drawn once per draw and shared by every
// sigma (common random numbers: the curve of one draw is smooth in sigma, and two models of
// one architecture given the same seed see the same noise).
SigmaCurve sigma_curve(nn::Module& model, BatchSource& batches, const SigmaOptions& options = {});

// ---- directions of a 2-D surface ----
// Two directions in parameter space, one tensor per named parameter (shaped like it);
// parameters not named stay where they are.
struct DirectionPair {
  std::vector<std::string> names;
  TensorList d1, d2;
  std::vector<double> eigenvalues;  // eigen_directions: lambda_1 >= lambda_2; empty otherwise
  int64_t hvps = 0;                 // Hessian-vector products spent finding them
};

struct EigenDirectionOptions {
  HessianOptions hessian;  // eval mode and every parameter by default; its loss defines H
  // The solver (k is always 2). Default: Lanczos for the two algebraically largest eigenvalues,
  // the directions of sharpest positive curvature (at a minimum the same pair PyHessian's power
  // iteration finds by magnitude, from far fewer products); power iteration where the
  // parameters number 2 or fewer.
  EigenOptions eigen = [] {
    EigenOptions e;
    e.method = EigenMethod::lanczos;
    e.order = EigenOrder::largest_algebraic;
    return e;
  }();
};

// The top-2 eigenvectors of the Hessian of the loss over `batches`, as they come: unit L2 norm
// over all the selected parameters together, not rescaled, so that the grid's coefficients
// are distances in parameter space (PyHessian's recipe and the paper's Fig. 3a, lambda in
// [-0.1, 0.1]). Their signs are the solver's (fixed for a seed).
DirectionPair eigen_directions(nn::Module& model, BatchSource& batches, const EigenDirectionOptions& options = {});

struct RandomDirectionOptions {
  std::vector<std::string> parameters;  // name prefixes; empty: every parameter
  // Li et al.'s filter normalisation (norm='filter', ignore='biasbn'): every slice along dim 0
  // of a parameter of 2 or more dims (a conv's output filter, a linear layer's row) of the
  // N(0, I) draw is rescaled to the Frobenius norm of the same slice of the weights,
  // d_i * ||w_i|| / (||d_i|| + 1e-10); 1-D parameters (biases, batch-norm scales and shifts)
  // get a zero direction, so they stay as trained. false: the raw N(0, I) draws, 1-D included.
  bool filter_normalize = true;
  uint64_t seed = 0;
};
// d1 is drawn for every parameter in order, then d2.
DirectionPair random_directions(const nn::Module& model, const RandomDirectionOptions& options = {});

// ---- the 2-D surface (Fig. 3a) ----
struct SurfaceOptions {
  std::vector<double> x = linspace(-0.1, 0.1, 21);  // coefficients of d1
  std::vector<double> y = linspace(-0.1, 0.1, 21);  // coefficients of d2
  ScoreFn score = classification_batch_score;
  LandscapeProgressFn progress;
};

struct Surface {
  std::vector<double> x, y;
  // Row-major over y: loss[j * x.size() + i] is the value at theta + x[i] d1 + y[j] d2 (as
  // plot::Grid2d takes it).
  std::vector<double> loss, accuracy;
  PointValue center;  // the untouched weights
  int64_t evaluations = 0;
};

Surface surface_2d(nn::Module& model, BatchSource& batches, const DirectionPair& directions,
                   const SurfaceOptions& options = {});

// ---- interpolation between two checkpoints ----
struct InterpolationOptions {
  // Default [-0.5, 1.5] in steps of 0.1: beyond the segment the curve shows how each end's
  // basin walls rise, which [0, 1] alone (only the barrier between them) does not.
  std::vector<double> t = linspace(-0.5, 1.5, 21);
  // Floating-point buffers (batch norm's running mean and variance) follow the same line with
  // t clamped to [0, 1]: the end points are each checkpoint exactly, and outside the segment
  // the statistics stay the nearer end's (an extrapolated running variance can go negative).
  // false: every buffer stays model a's, so only t = 0 is a checkpoint's own evaluation.
  bool interpolate_buffers = true;
  ScoreFn score = classification_batch_score;
  LandscapeProgressFn progress;
};

struct Interpolation {
  std::vector<double> t, loss, accuracy;
  PointValue a, b;  // the values at t = 0 and t = 1: each checkpoint's own (with interpolate_buffers)
  int64_t evaluations = 0;
};

// Evaluates on `a`, whose weights move along the line and are put back afterwards; `b` is only
// read. Both must have the same parameters and buffers (names, shapes, dtypes, devices).
Interpolation interpolate(nn::Module& a, const nn::Module& b, BatchSource& batches,
                          const InterpolationOptions& options = {});

}  // namespace dmix::probe
