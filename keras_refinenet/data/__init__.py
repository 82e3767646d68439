"""Datasets, label tables and `tf.data` pipelines."""
