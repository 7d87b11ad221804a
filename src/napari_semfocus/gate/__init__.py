"""The acceptance gate: the threshold on the focus score that reaches a target precision
(:mod:`.calibrate`), the truth it is calibrated on (:mod:`.labels`), the gate file
(:mod:`.file`) and the precision-recall plot (:mod:`.plot`)."""
