"""toxlab: the reproducible companion to *When Bad Data Leads to Good Models* (Li et al., ICML 2025)."""

__version__ = "0.1.0"
