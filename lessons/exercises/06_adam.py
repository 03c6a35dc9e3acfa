"""Exercise 06 (lesson 06): one step of Adam, with bias correction.

Check your work:   numpy-vae exercise 6

Adam (Kingma & Ba, 2015) keeps two running means per parameter, of the
gradient g and of its square, and steps by their ratio:

    m <- beta1 m + (1 - beta1) g
    v <- beta2 v + (1 - beta2) g^2
    param <- param - lr * m_hat / (sqrt(v_hat) + eps)

where m_hat and v_hat are m and v corrected for their start at zero.

    param, grad, m, v: arrays of one shape (any shape);  t: the step number, 1 for the first step

Task: work out m_hat and v_hat, then write one step.  Return new arrays
(param, m, v); the checker runs up to four steps from m = v = 0 against the
package's Adam.

Hints:
- After the first step, m = (1 - beta1) g: with beta1 = 0.9, a tenth of the
  gradient.  What factor undoes that?  After t steps of a constant g,
  m = (1 - beta1^t) g.
- With the correction, the first step moves every parameter by about lr.
- The package's version: numpy_vae/ops.py, adam_update (numpy_vae/optim.py, Adam).
"""

import numpy as np


def adam_step(param, grad, m, v, t, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
    """One Adam step; returns the new (param, m, v)."""
    raise NotImplementedError("return the tuple (param, m, v) after one step")
