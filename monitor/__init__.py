"""streamdrift: streaming drift, data-quality and fairness monitoring for ML systems on Kafka."""

__version__ = "0.1.0"
