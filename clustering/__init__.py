"""Clustering: the FAISS index, same-origin clustering, stable ids, open-set attribution, metrics."""
