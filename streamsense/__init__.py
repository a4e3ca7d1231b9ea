"""streamsense: streaming ML platform (Kafka in, TensorFlow workers, results through Redis).

The import names are ``streamsense.schemas`` (message contracts), ``streamsense.models`` (model
runtime and store) and ``streamsense.services`` (every service). Their folders stay at the top
of the repository, where the design card puts them; ``streamsense/schemas`` and its two
siblings are symbolic links to them, so a downstream application with its own ``schemas``
package can install streamsense and import both.
"""
