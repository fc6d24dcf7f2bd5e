"""Deployment of evit_mm models: whole models with mmdeploy
(:mod:`.mmdeploy_export`, :mod:`.backends`)."""
