"""amazonei-setup: provision an EC2 instance with an Elastic Inference accelerator, and remove it again."""

__version__ = "0.1.0"
