"""Everything that turns a run folder, a reference layout or API arrays into checked `AttackInputs`.

checked (AttackInputs, AttackOptions and their checks), sources (which folder is read, and how), readers
(the LiRA reference code's layouts), normalise and arguments (API arrays and values), targets (which models
are targets), phi (the logit-scaled score), masking (an output defence applied before any attack),
target_model (a model trained elsewhere, appended to a run as its only target).
"""
