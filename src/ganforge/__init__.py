"""ganforge: train GANs by backpropagation, watch the gradients, measure the images."""

__version__ = "0.1.0"
