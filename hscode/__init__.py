"""hscode: assign Harmonized System customs codes to a product catalog."""

__version__ = "0.1.0"
