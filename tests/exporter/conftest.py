import os
import sys

# exporter_support.py sits beside the tests (a unique name: tests/ holds other helper modules).
sys.path.insert(0, os.path.dirname(__file__))
