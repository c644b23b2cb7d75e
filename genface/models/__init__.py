"""Generative face models: plain ``nn.Module``s, one file per architecture, no Lightning."""
