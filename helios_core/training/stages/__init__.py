"""Per-stage losses: base (flow matching), mid (pyramid piecewise flow), distilled (ODE-pair regression)."""
