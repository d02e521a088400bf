"""Model quality monitoring on the service's ports: the late-label join, the batch, the reaction to a breach.

numpy and the quality maths are imported inside the handlers, so importing ``modelpilot.service.*`` stays light.
"""
