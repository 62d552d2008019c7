"""Small adapters for the domain's ports (domain/ports.py) that are neither a database nor
a broker: where CPU-heavy work runs, how export documents are made, and the keyphrase
library behind offline titles. Each imports from the domain only its models, value types,
errors and ports."""
