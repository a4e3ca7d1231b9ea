"""The local stack without Docker: real Apache Kafka (KRaft) from Maven jars and Debian's Redis."""
