"""The numerically stable building blocks several layers, losses and metrics share."""

from __future__ import annotations

import numpy as np


def sigmoid(x: np.ndarray) -> np.ndarray:
    """``1 / (1 + exp(-x))`` from ``exp(-|x|)``, which is in (0, 1] and never overflows."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def softmax(x: np.ndarray, axis: int = 1) -> np.ndarray:
    """``exp(x_i - max x) / sum_j exp(x_j - max x)`` along ``axis``."""
    z = x - x.max(axis=axis, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=axis, keepdims=True)
    return z


def log_softmax(x: np.ndarray, axis: int = 1) -> np.ndarray:
    """``x_i - max x - log sum_j exp(x_j - max x)`` along ``axis``: finite for logits of +-1000."""
    z = x - x.max(axis=axis, keepdims=True)
    z -= np.log(np.exp(z).sum(axis=axis, keepdims=True))
    return z


# W. J. Cody's rational approximations of erf (for |x| < 1) and erfc, as in Cephes' ndtr.c: exact to a few units
# in the last place of a float64 (numpy has no erf, and the project does not depend on scipy).
_ERF_T = (9.60497373987051638749E0, 9.00260197203842689217E1, 2.23200534594684319226E3,
          7.00332514112805075473E3, 5.55923013010394962768E4)
_ERF_U = (1.0, 3.35617141647503099647E1, 5.21357949780152679795E2, 4.59432382970980127987E3,
          2.26290000613890934246E4, 4.92673942608635921086E4)
_ERFC_P = (2.46196981473530512524E-10, 5.64189564831068821977E-1, 7.46321056442269912687E0,
           4.86371970985681366614E1, 1.96520832956077098242E2, 5.26445194995477358631E2,
           9.34528527171957607540E2, 1.02755188689515710272E3, 5.57535335369399327526E2)
_ERFC_Q = (1.0, 1.32281951154744992508E1, 8.67072140885989742329E1, 3.54937778887819891062E2,
           9.75708501743205489753E2, 1.82390916687909736289E3, 2.24633760818710981792E3,
           1.65666309194161350182E3, 5.57535340817727675546E2)
_ERFC_R = (5.64189583547755073984E-1, 1.27536670759978104416E0, 5.01905042251180477414E0,
           6.16021097993053585195E0, 7.40974269950448939160E0, 2.97886665372100240670E0)
_ERFC_S = (1.0, 2.26052863220117276590E0, 9.39603524938001434673E0, 1.20489539808096656605E1,
           1.70814450747565897222E1, 9.60896809063285878198E0, 3.36907645100081516050E0)


def erfc(x: np.ndarray) -> np.ndarray:
    """``erfc(x) = 1 - erf(x) = 2/sqrt(pi) int_x^inf exp(-t^2) dt``, element-wise (``math.erfc`` for
    arrays), accurate relative to itself where it is tiny (large ``x``)."""
    a = np.minimum(np.abs(x), 30.0)                 # erfc(30) is 0 to float64; keeps inf out of the rationals
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        z = x * x
        near = 1.0 - x * np.polyval(_ERF_T, z) / np.polyval(_ERF_U, z)                 # |x| < 1
        tail = np.exp(-z) * np.where(a < 8, np.polyval(_ERFC_P, a) / np.polyval(_ERFC_Q, a),
                                     np.polyval(_ERFC_R, a) / np.polyval(_ERFC_S, a))
        tail = np.where(x < 0, 2.0 - tail, tail)
    return np.where(a < 1, near, tail).astype(np.result_type(x, np.float32), copy=False)


def normal_cdf(x: np.ndarray) -> np.ndarray:
    """``Phi(x) = erfc(-x / sqrt(2)) / 2``, the standard normal CDF (accurate in both tails)."""
    return 0.5 * erfc(x * x.dtype.type(-1 / np.sqrt(2.0)))
